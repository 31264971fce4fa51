// Monitoring the latent solvers with a pack of callbacks: dpr(gen, loss, z0, opt, rng, cb...).
#pragma once

#include <cstdio>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "common.hpp"

namespace prilo {

/// What a callback sees after every step of a phase. For the magnitude phases (I, A, C, D)
/// `loss` is ‖|A x_j| − y_j‖² of every column before the step; for back-projections (B) it
/// is the phase's own objective ‖G(z0) − target‖² per column.
template <class T>
struct StepEvent {
  const PhaseRecord& phase;
  int step = 0;         ///< step within the phase (1-based)
  int global_step = 0;  ///< solver-wide count of magnitude steps (B steps do not advance it)
  const Vec<T>& loss;   ///< per column, on the host
};

/// A callback is any object with some of these members (none is required):
///   void begin_phase(const PhaseRecord&);
///   bool step_taken(const StepEvent<T>&);   // true: end this phase now (early stop)
///   void end_phase(const PhaseRecord&);     // phase.steps: the steps it actually ran
/// The solvers call them in the order the callbacks were passed, without virtual calls.
/// Callbacks that only look (History, PrintProgress) never change a result; EarlyStop
/// shortens phases, so its results differ from a run without it.
namespace callbacks {

/// Stops a phase once the batch's mean loss has not fallen by a relative `tolerance` for
/// `patience` consecutive steps (each phase judged on its own). The mean is over the columns
/// whose loss is finite: a column that has turned NaN does not stop the others' phase (and a
/// batch with no finite column stops after `patience` steps).
class EarlyStop {
 public:
  explicit EarlyStop(double tolerance = 1e-4, int patience = 20) : tolerance(tolerance), patience(patience) {
    // a relative fall of 1 (100 %) or more never happens: every phase would stop after `patience`
    if (!(tolerance >= 0 && tolerance < 1) || patience < 1)
      detail::fail("EarlyStop: tolerance must be in [0, 1) and patience >= 1, got ", tolerance, " and ", patience);
  }
  double tolerance;
  int patience;

  void begin_phase(const PhaseRecord&) {
    best_ = std::numeric_limits<double>::infinity();
    since_ = 0;
  }
  template <class T>
  bool step_taken(const StepEvent<T>& e) {
    double sum = 0;
    Eigen::Index finite = 0;
    for (Eigen::Index j = 0; j < e.loss.size(); ++j)
      if (std::isfinite(double(e.loss[j]))) {
        sum += double(e.loss[j]);
        ++finite;
      }
    const double m = finite ? sum / double(finite) : std::numeric_limits<double>::quiet_NaN();
    if (m < best_ * (1.0 - tolerance)) {
      best_ = m;
      since_ = 0;
      return false;
    }
    return ++since_ >= patience;
  }

 private:
  double best_ = std::numeric_limits<double>::infinity();
  int since_ = 0;
};

/// Records the batch's mean loss every `stride` steps of every phase, with the phase's name.
struct History {
  explicit History(int stride = 1) : stride(stride) {}
  int stride;
  struct Point {
    std::string phase;
    int step = 0;
    double mean_loss = 0;
  };
  std::vector<Point> points;

  template <class T>
  void step_taken(const StepEvent<T>& e) {
    if (stride > 0 && e.step % stride == 0) points.push_back({e.phase.name, e.step, prilo::detail::batch_mean(e.loss)});
  }
};

/// Prints "<phase> step k/n mean loss v" every `stride` steps, and each phase's end.
struct PrintProgress {
  int stride = 50;
  std::FILE* out = stderr;

  template <class T>
  void step_taken(const StepEvent<T>& e) {
    if (stride > 0 && e.step % stride == 0)
      std::fprintf(out, "  %-20s step %5d/%-5d mean loss %.6g\n", e.phase.name.c_str(), e.step, e.phase.steps,
                   prilo::detail::batch_mean(e.loss));
  }
  void end_phase(const PhaseRecord& p) { std::fprintf(out, "  %-20s done after %d steps\n", p.name.c_str(), p.steps); }
};

}  // namespace callbacks

namespace detail {

/// The pack of callbacks of one solve, called member by member where present.
template <class... C>
struct CallbackPack {
  std::tuple<C&...> cbs;

  static constexpr bool empty = sizeof...(C) == 0;

  void begin_phase(const PhaseRecord& p) {
    std::apply([&](auto&... c) { (call_begin(c, p), ...); }, cbs);
  }
  template <class T>
  bool step_taken(const StepEvent<T>& e) {
    bool stop = false;
    std::apply([&](auto&... c) { ((stop |= call_step(c, e)), ...); }, cbs);
    return stop;
  }
  void end_phase(const PhaseRecord& p) {
    std::apply([&](auto&... c) { (call_end(c, p), ...); }, cbs);
  }

 private:
  template <class X>
  static void call_begin(X& c, const PhaseRecord& p) {
    if constexpr (requires { c.begin_phase(p); }) c.begin_phase(p);
  }
  template <class X, class T>
  static bool call_step(X& c, const StepEvent<T>& e) {
    if constexpr (requires {
                    { c.step_taken(e) } -> std::same_as<bool>;
                  })
      return c.step_taken(e);
    else if constexpr (requires { c.step_taken(e); }) {
      c.step_taken(e);
      return false;
    } else
      return false;
  }
  template <class X>
  static void call_end(X& c, const PhaseRecord& p) {
    if constexpr (requires { c.end_phase(p); }) c.end_phase(p);
  }
};

}  // namespace detail
}  // namespace prilo

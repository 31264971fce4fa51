// Latent-space solvers: DPR (Hand et al.) and PRILO (intermediate layer optimisation).
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../concepts/generator.hpp"
#include "../concepts/loss.hpp"
#include "../concepts/noise_schedule.hpp"
#include "../concepts/projection.hpp"
#include "../exec/executor.hpp"
#include "../interrupt.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../optim/optimisers.hpp"
#include "../projection/blocks.hpp"
#include "../projection/l1_ball.hpp"
#include "../schedule/noise.hpp"
#include "callbacks.hpp"
#include "common.hpp"

namespace prilo {

/// The optimiser of a phase: Adam (Kingma & Ba) or plain projected gradient descent with
/// gradient noise (the paper's Eq. 10). Both project onto the phase's l1 ball after each step.
enum class Optimiser { adam, gradient_descent };

/// One projected-gradient phase: `steps` steps of `optimiser` with learning rate
/// `learning_rate`, each followed by the projection onto the l1 ball of radius `radius`
/// around the phase's centre (radius = +∞ or constrain = false: no projection).
template <class T>
struct PhaseOptions {
  int steps = 100;
  T radius = T(100);
  T learning_rate = T(0.1);
  bool constrain = true;
  bool enabled = true;
  Optimiser optimiser = Optimiser::adam;
  /// One radius per tensor of the optimised split state (Generator::blocks, e.g. z_i and z0
  /// of a style generator: the paper's Tables 9/10), each ball around its own part of the
  /// centre. Empty: one ball of `radius` around the whole state.
  std::vector<T> radii{};
};

/// Gradient noise of every phase: Welling–Teh σ_k² = η/(1+k)^γ, k counted per phase.
struct NoiseOptions {
  bool enabled = true;
  double eta = 0.02;
  double gamma = 0.55;
};

/// DPR: min_{z0} ‖|A G(z0)| − y‖² by projected Adam from the given start, in the l1 ball of
/// `phase.radius` around 0.
template <class T>
struct DprOptions {
  PhaseOptions<T> phase{.steps = 150, .radius = T(100), .learning_rate = T(0.1)};
  NoiseOptions noise{};
  int history_stride = 10;
  ProgressFn progress = {};
  ObserverFn<T> observe = {};  ///< called every history_stride steps (analysis, Figure 7)
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// One PRILO stage (the paper's Tables 7 and 8): repeated `repetitions` times, A optimises
/// z_layer in an l1 ball around its current value, B back-projects to z0 in an l1 ball around
/// 0, C refines z0 for the magnitude loss in an l1 ball around the back-projected z0.
template <class T>
struct PriloStage {
  int layer = 1;
  int repetitions = 1;
  PhaseOptions<T> forward{.steps = 150, .radius = T(50), .learning_rate = T(0.05)};  ///< A
  PhaseOptions<T> back{.steps = 100, .radius = T(100), .learning_rate = T(0.1)};     ///< B
  PhaseOptions<T> refine{.steps = 100, .radius = T(10), .learning_rate = T(0.05)};   ///< C
};

/// How a repetition of a stage ends, i.e. the two readings of the paper's Tables 7 and 8.
enum class PriloReading {
  /// A, then B (back-projection to z0) and C (refinement of z0), as Section 2.1 describes:
  /// the next forward phase starts from G_1^i(z0*). B and C can be switched off one by one
  /// (ablations); a repetition that runs neither leaves the state at z_i*, as `chained`.
  back_project_refine,
  /// Tables 7/8 read literally ("–" for B and C in the VAE runs): forward phases only, each
  /// continuing where the previous one ended. A repetition of stage i starts at the previous
  /// z_i* with its l1 ball re-centred there; the first repetition of stage i+1 starts at
  /// G_{i+1}(z_i*). The reconstruction is the image G_{i+1}^k(z_i*) of the last forward
  /// phase (or, with keep_best, the lowest-error image of the initial and forward phases).
  /// B and C options are ignored; stage layers must not decrease.
  chained,
};

template <class T>
struct PriloOptions {
  PhaseOptions<T> initial{.steps = 150, .radius = T(100), .learning_rate = T(0.1)};  ///< initial z0
  std::vector<PriloStage<T>> stages;
  NoiseOptions noise{};
  PriloReading reading = PriloReading::back_project_refine;
  /// Return, per image, the lowest magnitude error among the ends of the initial
  /// optimisation and of every repetition's z0 after B/C (PRILO's later stages can lose what an earlier one
  /// found; this uses only the measurements), and of every forward phase whose state carries
  /// on (chained reading, or B and C both off). false: the image of the last phase.
  bool keep_best = true;
  /// Also consider the range-extended images G_{i+1}^k(z_i*) that the forward phases (A)
  /// reach: keep, per image, whichever image (from z0 or from an A phase) has the lowest
  /// magnitude error. Off in the paper's method; measured in docs/results.md. With keep_best
  /// off, the candidates are the forward phases' images and the last phase's (not the earlier
  /// z0 images): the last phase's image unless a forward phase's is better.
  bool keep_best_range_extended = false;
  int history_stride = 10;
  ProgressFn progress = {};
  ObserverFn<T> observe = {};  ///< called every history_stride steps (analysis, Figure 7)
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// The paper's policies for the phases of a latent solver: the l1 ball of the phase's radius
/// around the phase's centre (no constraint when PhaseOptions::constrain is off) and
/// Welling–Teh gradient noise (none when NoiseOptions::enabled is off). A user's policy type
/// provides the same two static members (examples/custom_policy.cpp):
///   template <class T> static P projection(const PhaseOptions<T>&);  // P: ProjectionPolicy<P, T>
///   static N noise(const NoiseOptions&);                              // N: NoiseSchedule<N, T>
/// and is passed as the first template argument: prilo_solve<MyPolicies>(gen, loss, z0, opt, rng).
struct PaperPolicies {
  template <class T>
  static L1Ball<T> projection(const PhaseOptions<T>& ph) {
    return {.radius = ph.constrain ? ph.radius : std::numeric_limits<T>::infinity()};
  }
  static WellingTeh noise(const NoiseOptions& n) { return {.eta = n.enabled ? n.eta : 0.0, .gamma = n.gamma}; }
};

/// What dpr and prilo_solve require of their Policies argument.
template <class P, class T>
concept LatentPolicies = requires(const PhaseOptions<T>& ph, const NoiseOptions& n) {
  // the constraint set of a phase, from its options (radius, constrain)
  { P::template projection<T>(ph) } -> ProjectionPolicy<T>;
  // the gradient noise of every phase, from the solver's noise options
  { P::noise(n) } -> NoiseSchedule<T>;
};
static_assert(LatentPolicies<PaperPolicies, float> && LatentPolicies<PaperPolicies, double>);

namespace detail {

/// The paper's Adam of a phase (also what the solver benchmarks time).
template <class T>
Adam<T, L1Ball<T>, WellingTeh> make_adam(const PhaseOptions<T>& ph, const NoiseOptions& noise) {
  return {{.learning_rate = ph.learning_rate}, PaperPolicies::projection(ph), PaperPolicies::noise(noise)};
}

/// Calls f with the optimiser over the projection `proj` and the Policies' noise.
template <class T, Executor E, class P, class N, class F>
void with_optimiser_over(const E& ex, const PhaseOptions<T>& ph, P proj, N nz, F&& f) {
  if (ph.optimiser == Optimiser::adam) {
    Adam<T, P, N, E> opt({.learning_rate = ph.learning_rate}, std::move(proj), nz, ex);
    f(opt);
  } else {
    GradientDescent<T, P, N, E> opt({.learning_rate = ph.learning_rate}, std::move(proj), nz, ex);
    f(opt);
  }
}

/// Calls f with the phase's optimiser on executor ex over the Policies' projection and noise
/// for the phase: one constraint set for the whole state, or, with PhaseOptions::radii, one
/// per block of the state (`blocks`: the generator's tensors at the split point). The
/// choice is made once per phase, not per step.
template <class Policies, class T, Executor E, class F>
void with_optimiser(const E& ex, const PhaseOptions<T>& ph, const NoiseOptions& noise,
                    const std::vector<Eigen::Index>& blocks, F&& f) {
  auto nz = Policies::noise(noise);
  if (ph.radii.empty()) return with_optimiser_over(ex, ph, Policies::template projection<T>(ph), nz, f);
  if (ph.radii.size() != blocks.size())
    fail("phase radii: the split state has ", blocks.size(), " block(s) but ", ph.radii.size(), " radii were given");
  PhaseOptions<T> part = ph;
  if (blocks.size() == 1) {
    part.radius = ph.radii[0];
    return with_optimiser_over(ex, ph, Policies::template projection<T>(part), nz, f);
  }
  using P = decltype(Policies::template projection<T>(ph));
  BlockProjection<T, P> proj{blocks, {}};
  for (const T r : ph.radii) {
    part.radius = r;
    proj.parts.push_back(Policies::template projection<T>(part));
  }
  with_optimiser_over(ex, ph, std::move(proj), nz, f);
}

/// The tensors of a generator's state at split point i, as row counts: gen.blocks(i) when
/// the generator has several (e.g. {dim z_i, dim z0}), else one block of dim(i).
template <class G>
std::vector<Eigen::Index> state_blocks(const G& gen, int i) {
  if constexpr (requires {
                  { gen.blocks(i) } -> std::convertible_to<std::vector<Eigen::Index>>;
                })
    return gen.blocks(i);
  else
    return {gen.dim(i)};
}

/// gz ← the input VJP of tr's range for the output cotangent gy, into gz's buffer where the
/// generator can write there (nn::Sequential), else by assignment.
template <class G, class Tr, class M>
void input_vjp(const G& gen, const Tr& tr, const M& gy, M& gz) {
  if constexpr (requires { gen.vjp_input(tr, gy, gz); })
    gen.vjp_input(tr, gy, gz);
  else
    gz = gen.vjp_input(tr, gy);
}

/// The forward pass of a solver step on z through modules i … j−1, for a step that reads z in
/// this pass and in its VJP and changes it only after them: z is lent to the trace where the
/// generator can lend (nn::Sequential::forward_lent: no copy of the state per step) and given
/// back when the guard ends, also when the step throws; otherwise it is copied into the trace.
template <class G, class Tr, class M>
class StepForward {
 public:
  static constexpr bool lends = requires(const G& g, M& z, Tr& tr) {
    g.forward_lent(0, 0, z, tr);
    tr.give_back(z);
  };
  StepForward(const G& gen, int i, int j, M& z, Tr& tr) : z_(z), tr_(tr) {
    if constexpr (lends)
      gen.forward_lent(i, j, z, tr);
    else
      gen.forward(i, j, z, tr);
  }
  ~StepForward() {
    if constexpr (lends) tr_.give_back(z_);
  }
  StepForward(const StepForward&) = delete;
  StepForward& operator=(const StepForward&) = delete;

 private:
  M& z_;
  Tr& tr_;
};

/// Columns j where l(j) is lower than best(j) (lower_error: a NaN best is replaced), or with
/// `ties_to_new` where best(j) is not lower than l(j) (the new value wins ties, and a NaN best
/// gives way even to a NaN), updating best.
template <class T>
std::vector<Eigen::Index> improved_columns(const Vec<T>& l, Vec<T>& best, bool ties_to_new = false) {
  std::vector<Eigen::Index> cols;
  for (Eigen::Index j = 0; j < l.size(); ++j)
    if (ties_to_new ? !lower_error(best(j), l(j)) : lower_error(l(j), best(j))) {
      best(j) = l(j);
      cols.push_back(j);
    }
  return cols;
}

/// What every phase of one solve shares: the result it records into, the global step and
/// the monitoring hooks (the options' progress and observer, and the pack of callbacks).
template <class T, class... C>
struct PhaseContext {
  SolveResult<T>& res;
  int step = 0;
  int stride = 10;
  const ProgressFn& progress;
  const ObserverFn<T>& observe;
  const char* method;
  CallbackPack<C...> callbacks;
  std::stop_token stop;  ///< the solve's own stop request (its options' `stop`)

  /// Records a phase and tells the callbacks. The reference stays valid during the phase.
  PhaseRecord& begin(std::string name, char kind, int layer, int steps) {
    res.phases.push_back({std::move(name), kind, layer, steps, step});
    callbacks.begin_phase(res.phases.back());
    return res.phases.back();
  }
  /// After step k (0-based) of phase rec: true when a callback ends the phase.
  bool step_taken(const PhaseRecord& rec, int k, int global, const Vec<T>& loss) {
    if constexpr (CallbackPack<C...>::empty)
      return false;
    else
      return callbacks.step_taken(StepEvent<T>{rec, k + 1, global, loss});
  }
  /// Ends a phase that ran `steps` steps.
  void end(PhaseRecord& rec, int steps) {
    rec.steps = steps;
    callbacks.end_phase(rec);
  }
  bool due(int k) const { return stride > 0 && (k + 1) % stride == 0; }
};

/// Minimises the magnitude loss over the representation z at split point `layer`, starting
/// from z and staying in the l1 ball around `centre`. Returns the final per-column loss.
template <class Policies, Generator G, class L, class Ctx, class T = typename G::scalar,
          class M = generator_matrix_t<G>>
Vec<T> optimise_magnitude(const G& gen, int layer, const L& loss, M& z, const M& centre, const PhaseOptions<T>& ph,
                          const NoiseOptions& noise, Rng& rng, Ctx& ctx, std::string name, char kind) {
  const auto ex = executor_of(gen);
  start_phase(ex);  // (a device executor drops a count an interrupted phase left)
  PhaseRecord& rec = ctx.begin(std::move(name), kind, layer, ph.steps);
  typename G::trace_type tr;
  M gx, gz;
  Vec<T> l;
  int ran = 0;
  with_optimiser<Policies>(ex, ph, noise, state_blocks(gen, layer), [&](auto& opt) {
    for (int k = 0; k < ph.steps; ++k) {
      throw_if_stopped(ctx.method, ctx.stop);
      {
        const StepForward<G, typename G::trace_type, M> pass(gen, layer, gen.depth(), z, tr);
        l = loss.value_and_gradient(tr.output(), gx);
        if (ctx.observe && ctx.due(k)) {
          const Mat<T> x = to_host(ex, clone(ex, tr.output()));
          ctx.observe({rec, k + 1, ctx.step + 1, x, l});
        }
        input_vjp(gen, tr, gx, gz);
      }  // z given back
      opt.step(z, gz, centre, rng);
      ++ctx.step;
      ran = k + 1;
      record(ctx.res, ctx.step, l, ctx.stride);
      if (ctx.progress && ctx.due(k)) ctx.progress({ctx.method, rec.name, k + 1, ph.steps, detail::batch_mean(l)});
      if (ctx.step_taken(rec, k, ctx.step, l)) break;
    }
  });
  finish_phase(ex, rec.name.c_str());
  ctx.end(rec, ran);
  // per step: the forward pass and its input VJP through layers layer…k, the loss and its
  // gradient; then the closing evaluation
  const double B = double(z.cols()), fwd = forward_flops(gen, layer, gen.depth());
  rec.flops =
      double(ran) * B * (Flops{2 * fwd, 0} + loss_flops(loss, true)) + B * (Flops{fwd, 0} + loss_flops(loss, false));
  return loss.value(gen.forward_from(layer, z));
}

/// Back-projection (step B): min_{z0} ‖G_0^{layer}(z0) − target‖² in the l1 ball of radius
/// ph.radius around 0, from the start z0.
template <class Policies, Generator G, class L, class Ctx, class T = typename G::scalar,
          class M = generator_matrix_t<G>>
void back_project(const G& gen, int layer, const L& loss, const M& target, M& z0, const PhaseOptions<T>& ph,
                  const NoiseOptions& noise, Rng& rng, Ctx& ctx, std::string name) {
  const auto ex = executor_of(gen);
  start_phase(ex);  // (a device executor drops a count an interrupted phase left)
  PhaseRecord& rec = ctx.begin(std::move(name), 'B', layer, ph.steps);
  constexpr bool watched = !decltype(ctx.callbacks)::empty;
  int ran = 0;
  typename G::trace_type tr;
  M gz, diff;
  const M zero = zeros<T>(ex, z0.rows(), 1);
  with_optimiser<Policies>(ex, ph, noise, state_blocks(gen, 0), [&](auto& opt) {
    for (int k = 0; k < ph.steps; ++k) {
      throw_if_stopped(ctx.method, ctx.stop);
      gen.forward(0, layer, z0, tr);
      const bool report = ctx.progress && ctx.due(k);
      // diff = 2 (G(z0) − target), the gradient of the squared distance; (2d)² / 4 = d² exactly
      scaled_difference(ex, diff, tr.output(), target, T(2));
      Vec<T> dist;
      if (report || watched) dist = column_sq_norms(ex, diff) / T(4);
      const double mean_sq = report ? detail::batch_mean(dist) : 0.0;
      if (ctx.observe && ctx.due(k)) {
        const M x = gen.forward_from(0, z0);
        ctx.observe({rec, k + 1, ctx.step, to_host(ex, clone(ex, x)), loss.value(x)});
      }
      input_vjp(gen, tr, diff, gz);
      opt.step(z0, gz, zero, rng);
      ran = k + 1;
      if (report) ctx.progress({ctx.method, rec.name, k + 1, ph.steps, mean_sq});
      if constexpr (watched)
        if (ctx.step_taken(rec, k, ctx.step, dist)) break;
    }
  });
  finish_phase(ex, rec.name.c_str());
  ctx.end(rec, ran);
  rec.flops = Flops{double(ran) * double(z0.cols()) * 2 * forward_flops(gen, 0, layer), 0};  // forward + input VJP
}

/// The work of evaluating the images after split point i of B columns and their loss.
template <class G, class L>
Flops evaluation_flops(const G& gen, const L& loss, int i, Eigen::Index B) {
  return double(B) * (Flops{forward_flops(gen, i, gen.depth()), 0} + loss_flops(loss, false));
}

/// Adds the phases' work to what the solve counted between them.
template <class T>
SolveResult<T> total_flops(SolveResult<T> res) {
  for (const auto& ph : res.phases) res.flops += ph.flops;
  return res;
}

template <Generator G, class L, class T = typename G::scalar, class M = generator_matrix_t<G>>
SolveResult<T> finish(const G& gen, const L& loss, M z0, SolveResult<T> res) {
  const auto ex = executor_of(gen);
  M x = gen.forward_from(0, z0);
  res.magnitude_error = loss.value(x) / T(loss.op().output_size());
  res.flops += evaluation_flops(gen, loss, 0, z0.cols());
  res.x = to_host(ex, std::move(x));
  res.z = to_host(ex, std::move(z0));
  return total_flops(std::move(res));
}

/// The checks dpr and prilo_solve share, with messages that say what is missing.
template <class Policies, class G, class L, class T>
constexpr void check_latent_solver_arguments() {
  static_assert(Generator<G>, "latent solver: G must model prilo::Generator (see prilo/concepts/generator.hpp)");
  static_assert(Loss<L, generator_matrix_t<G>>,
                "latent solver: the loss must model prilo::Loss over the generator's matrix type (batch(), "
                "op().output_size(), value(x), value_and_gradient(x, grad); see prilo/concepts/loss.hpp)");
  static_assert(LatentPolicies<Policies, T>,
                "latent solver: Policies needs `template <class T> static P projection(const PhaseOptions<T>&)` "
                "returning a ProjectionPolicy and `static N noise(const NoiseOptions&)` returning a NoiseSchedule");
}

/// invalid_input unless the phase's step count is >= 0 (a negative one ran as 0 steps) and its
/// learning rate finite and >= 0; with `l1_radii` (the paper's policies: l1 balls), unless
/// its radius and per-tensor radii are >= 0 (+inf: no ball) where it is constrained (a user's
/// policy gives the radius its own meaning and checks it itself). Checked on entry, before any
/// phase runs (the optimiser and the ball would refuse them only when the phase is reached,
/// after the work before it).
template <class T>
void check_phase_options(const PhaseOptions<T>& ph, const char* solver, const char* phase, bool l1_radii = false) {
  if (ph.steps < 0) fail(solver, ": the ", phase, " phase's steps must be >= 0, got ", ph.steps);
  if (!(std::isfinite(ph.learning_rate) && ph.learning_rate >= 0))
    fail(solver, ": the ", phase, " phase's learning rate must be finite and >= 0, got ", ph.learning_rate);
  if (!l1_radii || !ph.constrain) return;
  if (!(ph.radius >= 0)) fail(solver, ": the ", phase, " phase's radius must be >= 0 (or +inf), got ", ph.radius);
  for (const T r : ph.radii)
    if (!(r >= 0)) fail(solver, ": the ", phase, " phase's radii must be >= 0 (or +inf), got ", r);
}
/// invalid_input unless the phase's per-tensor radii (when given) are one per tensor of the
/// generator's state at `layer`: checked on entry, not when the phase is reached.
template <Generator G, class T>
void check_phase_radii(const G& gen, int layer, const PhaseOptions<T>& ph, const char* solver, const char* phase) {
  if (ph.radii.empty()) return;
  const std::size_t tensors = state_blocks(gen, layer).size();
  if (ph.radii.size() != tensors)
    fail(solver, ": the ", phase, " phase gives ", ph.radii.size(), " radii, the generator's state at layer ", layer,
         " has ", tensors, " tensor(s)");
}
/// invalid_input unless enabled noise has a finite η ≥ 0 and a finite γ (a NaN γ gave NaN σ
/// from the second step on, which the optimisers read as "no noise"): checked on entry.
inline void check_noise_options(const NoiseOptions& n, const char* solver) {
  if (!n.enabled) return;
  if (!(std::isfinite(n.eta) && n.eta >= 0)) fail(solver, ": noise eta must be finite and >= 0, got ", n.eta);
  if (!std::isfinite(n.gamma)) fail(solver, ": noise gamma must be finite, got ", n.gamma);
}

/// check_phase_options for every phase of a PRILO run (its initial phase and each stage's A,
/// B and C) and check_noise_options for its noise.
template <class T>
void check_prilo_phases(const PriloOptions<T>& opt, bool l1_radii) {
  check_phase_options(opt.initial, "prilo", "initial", l1_radii);
  check_noise_options(opt.noise, "prilo");
  for (const auto& st : opt.stages) {
    check_phase_options(st.forward, "prilo", "forward (A)", l1_radii);
    check_phase_options(st.back, "prilo", "back-projection (B)", l1_radii);
    check_phase_options(st.refine, "prilo", "refinement (C)", l1_radii);
  }
}

}  // namespace detail

/// DPR (Hand, Leong & Voroninski 2018): projected Adam on z0 for ‖|A G(z0)| − y‖²; each
/// phase's constraint and noise come from `Policies` (PaperPolicies: l1 ball, Welling–Teh).
/// z0 holds one start per measurement column of `loss`, in the generator's matrix type (the
/// solve runs on the generator's executor). `callbacks...` (solvers/callbacks.hpp: e.g.
/// callbacks::EarlyStop, History, PrintProgress, or a user's) see every phase and step.
template <class Policies = PaperPolicies, Generator G, class L, class... Callbacks, class T = typename G::scalar>
SolveResult<T> dpr(const G& gen, const L& loss, std::type_identity_t<generator_matrix_t<G>> z0,
                   const DprOptions<T>& opt, Rng& rng, Callbacks&&... callbacks) {
  detail::check_latent_solver_arguments<Policies, G, L, T>();
  using M = generator_matrix_t<G>;
  const auto ex = executor_of(gen);
  require_shape(z0, gen.dim(0), loss.batch(), "dpr start z0");
  if constexpr (std::is_same_v<M, Mat<T>>) require_finite(z0, "dpr start z0");
  detail::check_phase_options(opt.phase, "dpr", "z0", std::is_same_v<Policies, PaperPolicies>);
  detail::check_phase_radii(gen, 0, opt.phase, "dpr", "z0");
  detail::check_noise_options(opt.noise, "dpr");
  SolveResult<T> res;
  detail::PhaseContext<T, std::remove_reference_t<Callbacks>...> ctx{
      res, 0, opt.history_stride, opt.progress, opt.observe, "dpr", {{callbacks...}}, opt.stop};
  const M zero = zeros<T>(ex, z0.rows(), 1);
  if (opt.phase.enabled)  // off: z0 as given, evaluated (an ablation's baseline)
    detail::optimise_magnitude<Policies>(gen, 0, loss, z0, zero, opt.phase, opt.noise, rng, ctx, "z0", 'D');
  return detail::finish(gen, loss, std::move(z0), std::move(res));
}

/// invalid_input unless every stage of `opt` splits a generator of `depth` layers at an
/// intermediate layer (1..depth-1) with repetitions >= 0, in an order the solve can run: a
/// forward phase without B and C after it (the chained reading, or both switched off) leaves the
/// solve at z_i, from where no later stage can go back to a lower layer. prilo_solve checks this
/// first; a program can call it after loading its generator, before any work. Every phase's
/// options too (detail::check_prilo_phases; the radii with `l1_radii`, the paper's policies).
template <class T>
void check_prilo_stages(const PriloOptions<T>& opt, int depth, bool l1_radii = false) {
  const bool chained = opt.reading == PriloReading::chained;
  detail::check_prilo_phases(opt, l1_radii);
  // the split point the solve will be at before each stage
  int state_layer = 0;
  for (const auto& st : opt.stages) {
    if (st.layer < 1 || st.layer >= depth)
      detail::fail("prilo: stage layer ", st.layer, " must be an intermediate split point in 1..", depth - 1);
    if (st.repetitions < 0) detail::fail("prilo: stage repetitions must be >= 0, got ", st.repetitions);
    if (st.repetitions == 0) continue;
    if (st.layer < state_layer)
      detail::fail(
          "prilo: stage layers must be non-decreasing after a forward-only stage (chained reading, or B and C "
          "off): layer ",
          st.layer, " after ", state_layer);
    state_layer = chained || (!st.back.enabled && !st.refine.enabled) ? st.layer : 0;
  }
}

/// invalid_input unless every phase of `opt` that runs gives as many per-tensor radii as gen's
/// state has tensors where the phase optimises (A: at its stage's layer; the initial phase, B
/// and C: at z0). prilo_solve checks this first; a program can call it after loading its
/// generator, before any work (prilo::check_stages does).
template <Generator G, class T>
void check_prilo_radii(const PriloOptions<T>& opt, const G& gen) {
  const bool chained = opt.reading == PriloReading::chained;
  detail::check_phase_radii(gen, 0, opt.initial, "prilo", "initial");
  for (const auto& st : opt.stages) {
    if (st.repetitions == 0) continue;
    if (st.forward.enabled) detail::check_phase_radii(gen, st.layer, st.forward, "prilo", "forward (A)");
    if (!chained && st.back.enabled) detail::check_phase_radii(gen, 0, st.back, "prilo", "back-projection (B)");
    if (!chained && st.refine.enabled) detail::check_phase_radii(gen, 0, st.refine, "prilo", "refinement (C)");
  }
}

/// PRILO: the initial optimisation of z0, then every stage in order, each repeated as
/// configured. In the default reading (PriloReading::back_project_refine) a repetition is A
/// (forward optimisation of z_i), B (back-projection) and C (refinement); any of them can be
/// disabled (PhaseOptions::enabled), as can the balls (constrain) and the noise. A
/// repetition that runs neither B nor C leaves the solve at z_i* (there is no z0 to go back
/// to), and the next forward phase continues from there; so does every repetition in the
/// chained reading (PriloReading::chained). When the solve ends at an intermediate z_i*, the
/// reconstruction is G_{i+1}^k(z_i*). `z` is the latent of the returned image when that image
/// comes from z0; where the image is a forward phase's range-extended G_{i+1}^k(z_i*) (which
/// no latent reproduces), `z` holds the best latent the z0 phases found (with keep_best) or
/// the start after the initial phase.
/// `phases` lists what ran, in order (with the steps each ran: a callback may end a phase
/// early). Executor and callbacks as for dpr.
template <class Policies = PaperPolicies, Generator G, class L, class... Callbacks, class T = typename G::scalar>
SolveResult<T> prilo_solve(const G& gen, const L& loss, std::type_identity_t<generator_matrix_t<G>> z0,
                           const PriloOptions<T>& opt, Rng& rng, Callbacks&&... callbacks) {
  detail::check_latent_solver_arguments<Policies, G, L, T>();
  using M = generator_matrix_t<G>;
  const auto ex = executor_of(gen);
  require_shape(z0, gen.dim(0), loss.batch(), "prilo start z0");
  if constexpr (std::is_same_v<M, Mat<T>>) require_finite(z0, "prilo start z0");
  const bool chained = opt.reading == PriloReading::chained;
  check_prilo_stages(opt, gen.depth(), std::is_same_v<Policies, PaperPolicies>);
  check_prilo_radii(opt, gen);
  SolveResult<T> res;
  detail::PhaseContext<T, std::remove_reference_t<Callbacks>...> ctx{
      res, 0, opt.history_stride, opt.progress, opt.observe, "prilo", {{callbacks...}}, opt.stop};
  const M zero = zeros<T>(ex, z0.rows(), 1);
  if (opt.initial.enabled)
    detail::optimise_magnitude<Policies>(gen, 0, loss, z0, zero, opt.initial, opt.noise, rng, ctx, "initial z0", 'I');
  M best_z = clone(ex, z0);
  // the images kept (keep_best, keep_best_range_extended): none is kept without either
  M best_x = opt.keep_best || opt.keep_best_range_extended ? gen.forward_from(0, z0) : M();
  const Eigen::Index B = z0.cols();
  // without keep_best the initial image is no candidate: only the forward phases' images (-rx,
  // or a state that carries on) compete with the last phase's (keep_x's `last`). NaN marks
  // "none yet": any image's error, a NaN one included for the last image, replaces it
  Vec<T> best_loss = Vec<T>::Constant(B, std::numeric_limits<T>::quiet_NaN());
  if (opt.keep_best) {
    best_loss = loss.value(best_x);
    res.flops += detail::evaluation_flops(gen, loss, 0, B);
  }
  bool kept_range_extended = false;  // some best_x came from a forward phase, not from a z0
  // x (from latent z, or from a forward phase where z is null) replaces the kept image of every
  // column it improves; with `last` (keep_best off: the last phase's image) unless the kept one
  // is strictly better
  auto keep_x = [&](const M& x, const M* z, int from, bool last = false) {
    res.flops += detail::evaluation_flops(gen, loss, from, B);
    const std::vector<Eigen::Index> better = detail::improved_columns(loss.value(x), best_loss, last);
    if (better.empty()) return;
    copy_columns(ex, best_x, x, better);
    if (z) copy_columns(ex, best_z, *z, better);
    kept_range_extended |= z == nullptr;
  };
  auto keep = [&] {
    if (opt.keep_best) keep_x(gen.forward_from(0, z0), &z0, 0);
  };
  // The state of the solve: z0 (at = 0) or an intermediate representation z_at that a
  // forward phase left without B or C after it.
  int at = 0;
  M z_at;
  for (const auto& st : opt.stages) {
    for (int rep = 0; rep < st.repetitions; ++rep) {
      // built with append: GCC 12 warns falsely (-Wrestrict, bug 105329) on "literal" + string
      std::string tag = "z";
      tag.append(std::to_string(st.layer))
          .append(" rep ")
          .append(std::to_string(rep + 1))
          .append("/")
          .append(std::to_string(st.repetitions));
      M zi = at == 0          ? gen.forward(0, st.layer, z0)
             : at == st.layer ? std::move(z_at)
                              : gen.forward(at, st.layer, z_at);
      if (at != st.layer) res.flops += Flops{double(B) * forward_flops(gen, at, st.layer), 0};
      const bool run_a = st.forward.enabled, run_b = !chained && st.back.enabled, run_c = !chained && st.refine.enabled;
      if (run_a) {
        const M centre = clone(ex, zi);
        detail::optimise_magnitude<Policies>(gen, st.layer, loss, zi, centre, st.forward, opt.noise, rng, ctx,
                                             std::string("A ").append(tag), 'A');
      }
      if (!run_b && !run_c) {
        // no way back to z0: the next forward phase continues from z_i*
        if (run_a && (opt.keep_best || opt.keep_best_range_extended))
          keep_x(gen.forward_from(st.layer, zi), nullptr, st.layer);
        at = st.layer;
        z_at = std::move(zi);
        continue;
      }
      if (run_a && opt.keep_best_range_extended) keep_x(gen.forward_from(st.layer, zi), nullptr, st.layer);
      at = 0;
      if (run_b)
        detail::back_project<Policies>(gen, st.layer, loss, zi, z0, st.back, opt.noise, rng, ctx,
                                       std::string("B ").append(tag));
      if (run_c) {
        const M centre = clone(ex, z0);
        detail::optimise_magnitude<Policies>(gen, 0, loss, z0, centre, st.refine, opt.noise, rng, ctx,
                                             std::string("C ").append(tag), 'C');
      }
      keep();
    }
  }
  const T m = T(loss.op().output_size());
  if (at > 0) {
    if (opt.keep_best || opt.keep_best_range_extended) {
      if (!opt.keep_best) keep_x(gen.forward_from(at, z_at), nullptr, at, true);
      res.x = to_host(ex, std::move(best_x));
      res.magnitude_error = best_loss / m;
    } else {
      M x = gen.forward_from(at, z_at);
      res.magnitude_error = loss.value(x) / m;
      res.flops += detail::evaluation_flops(gen, loss, at, B);
      res.x = to_host(ex, std::move(x));
    }
    res.z = to_host(ex, std::move(best_z));
    return detail::total_flops(std::move(res));
  }
  // every change of z0 (initial phase, B, C) was followed by keep(): nothing is left to keep
  if (opt.keep_best_range_extended || kept_range_extended) {
    // the image may come from an A phase (no latent reproduces it exactly): z is the latent
    // kept for it by the z0 phases
    if (!opt.keep_best) keep_x(gen.forward_from(0, z0), &z0, 0, true);
    res.x = to_host(ex, std::move(best_x));
    res.magnitude_error = best_loss / m;
    res.z = to_host(ex, std::move(best_z));
    return detail::total_flops(std::move(res));
  }
  return detail::finish(gen, loss, opt.keep_best ? std::move(best_z) : std::move(z0), std::move(res));
}

}  // namespace prilo

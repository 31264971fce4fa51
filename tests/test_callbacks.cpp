// The latent solvers' pack of callbacks: looking never changes a result, a stop ends the
// phase (and only it), and every phase is opened and closed once.
#include <doctest/doctest.h>

#include <cmath>
#include <prilo/solvers/callbacks.hpp>
#include <prilo/solvers/latent.hpp>

#include "bodies/latent_bodies.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_callbacks {

namespace {

using prilo::Mat;
using T = double;

prilo::PriloOptions<T> abc_options() {
  prilo::PriloOptions<T> o;
  o.initial.steps = 20;
  o.stages = {{.layer = 1,
               .repetitions = 2,
               .forward = {.steps = 20, .radius = T(5), .learning_rate = T(0.02)},
               .back = {.steps = 20, .radius = T(100), .learning_rate = T(0.05)},
               .refine = {.steps = 20, .radius = T(2), .learning_rate = T(0.02)}}};
  return o;
}

/// Counts the calls it gets and stops every phase after `stop_after` steps (0: never).
struct Counter {
  int stop_after = 0;
  int begins = 0, ends = 0, steps = 0, b_steps = 0;
  bool positive_losses = true;
  void begin_phase(const prilo::PhaseRecord&) { ++begins; }
  bool step_taken(const prilo::StepEvent<T>& e) {
    ++steps;
    if (e.phase.kind == 'B') ++b_steps;
    positive_losses &= (e.loss.array() >= 0).all() && e.loss.size() == 3;
    return stop_after > 0 && e.step >= stop_after;
  }
  void end_phase(const prilo::PhaseRecord&) { ++ends; }
};

TEST_CASE("an empty batch with callbacks and progress: nothing to solve, no mean of nothing read") {
  const bodies::Problem<T> p(0);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::DprOptions<T> d;
  d.phase.steps = 3;
  int reports = 0;
  d.progress = [&](const prilo::Progress& e) {
    ++reports;
    CHECK(std::isnan(e.mean_loss));  // NaN: no columns (Eigen's mean() of none read past them)
  };
  d.history_stride = 1;
  prilo::callbacks::History history(1);
  prilo::callbacks::EarlyStop stall(0, 2);
  prilo::Rng rng(1);
  const auto r = prilo::dpr(p.gen, loss, Mat<T>(6, 0), d, rng, history, stall);
  CHECK(r.x.cols() == 0);
  CHECK(reports > 0);
  REQUIRE_FALSE(history.points.empty());
  CHECK(std::isnan(history.points.front().mean_loss));
}

TEST_CASE("callbacks that only look leave dpr and prilo_solve bit-identical") {
  const bodies::Problem<T> p(3);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::Rng r0(3);
  const Mat<T> z0 = r0.normal_matrix<T>(6, 3);
  prilo::Rng a(1), b(1);
  const auto plain = prilo::prilo_solve(p.gen, loss, z0, abc_options(), a);
  prilo::callbacks::History history(5);
  Counter count;
  std::FILE* null = std::fopen("/dev/null", "w");
  REQUIRE(null);
  prilo::callbacks::PrintProgress print{.stride = 10, .out = null};
  const auto watched = prilo::prilo_solve(p.gen, loss, z0, abc_options(), b, history, count, print);
  std::fclose(null);
  CHECK(watched.x == plain.x);
  CHECK(watched.z == plain.z);
  // initial + 2 × (A, B, C) phases, 20 steps each
  CHECK(count.begins == 7);
  CHECK(count.ends == 7);
  CHECK(count.steps == 7 * 20);
  CHECK(count.b_steps == 2 * 20);
  CHECK(count.positive_losses);
  CHECK(history.points.size() == 7u * 4u);
  CHECK(history.points.front().phase == "initial z0");
}

TEST_CASE("a callback that stops ends each phase early, and the phase records say so") {
  const bodies::Problem<T> p(3);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::Rng r0(3);
  const Mat<T> z0 = r0.normal_matrix<T>(6, 3);
  prilo::Rng rng(1);
  Counter stop{.stop_after = 5};
  const auto r = prilo::prilo_solve(p.gen, loss, z0, abc_options(), rng, stop);
  REQUIRE(r.phases.size() == 7u);
  for (const auto& ph : r.phases) CHECK(ph.steps == 5);
  CHECK(stop.steps == 7 * 5);
  // DPR too, with a temporary callback
  prilo::DprOptions<T> d;
  d.phase.steps = 50;
  const auto r2 = prilo::dpr(p.gen, loss, z0, d, rng, Counter{.stop_after = 7});
  REQUIRE(r2.phases.size() == 1u);
  CHECK(r2.phases[0].steps == 7);
}

TEST_CASE("EarlyStop ends a phase once the mean loss stalls, not before") {
  const bodies::Problem<T> p(4);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::Rng r0(3);
  const Mat<T> z0 = r0.normal_matrix<T>(6, 4);
  prilo::DprOptions<T> d;
  d.phase = {.steps = 3000, .radius = T(100), .learning_rate = T(0.1)};
  d.noise.enabled = false;
  prilo::Rng a(1), b(1);
  const auto full = prilo::dpr(p.gen, loss, z0, d, a);
  prilo::callbacks::EarlyStop early(1e-3, 30);
  const auto stopped = prilo::dpr(p.gen, loss, z0, d, b, early);
  const int ran = stopped.phases[0].steps;
  CHECK(ran > 30);
  CHECK(ran < 3000);
  // what the last 3000 − ran steps would have gained is small relative to the start
  const double start = double(loss.value(p.gen.forward_from(0, z0)).mean());
  const double gap = double(stopped.magnitude_error.mean() - full.magnitude_error.mean()) * double(p.op.output_size());
  CHECK(gap < 0.05 * start);
  CHECK_THROWS_AS(prilo::callbacks::EarlyStop(-1.0, 3), prilo::invalid_input);
  // a column that has turned NaN does not stop the phase of the columns still falling
  prilo::callbacks::EarlyStop judge(1e-3, 3);
  const prilo::PhaseRecord phase{};
  judge.begin_phase(phase);
  prilo::Vec<T> l(2);
  for (int s = 1; s <= 10; ++s) {
    l << std::numeric_limits<T>::quiet_NaN(), T(1) / T(s);
    CHECK_FALSE(judge.step_taken(prilo::StepEvent<T>{phase, s, s, l}));
  }
  l.setConstant(std::numeric_limits<T>::quiet_NaN());  // nothing finite left: stops after `patience`
  CHECK_FALSE(judge.step_taken(prilo::StepEvent<T>{phase, 11, 11, l}));
  CHECK_FALSE(judge.step_taken(prilo::StepEvent<T>{phase, 12, 12, l}));
  CHECK(judge.step_taken(prilo::StepEvent<T>{phase, 13, 13, l}));
  // a relative fall of 100 % never happens: such a tolerance ended every phase after `patience` steps
  for (const double tol : {1.0, 5.0, HUGE_VAL, std::nan("")})
    CHECK_THROWS_WITH_AS(prilo::callbacks::EarlyStop(tol, 3), doctest::Contains("tolerance must be in [0, 1)"),
                         prilo::invalid_input);
}

}  // namespace

}  // namespace prilo_test_callbacks

// PRILO's two readings of the paper's Tables 7/8 (A/B/C against chained forward phases),
// the ablation switches and the optimiser choice, on a small generator with known answers.
#include <doctest/doctest.h>

#include <prilo/prilo.hpp>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_prilo_readings {

using namespace prilo;
using namespace prilo::nn;

namespace {
using T = double;

// A linear two-layer generator R^4 → R^6 → R^8 and m = 40 real Gaussian measurements:
// near the truth the magnitude loss over z1 is a smooth, well-conditioned least-squares
// problem, so what a phase can reach is decided by its l1 ball alone.
auto linear_generator(Rng& rng) {
  return make_sequential(4, Linear<T>(4, 6, rng), Linear<T>(6, 8, rng));
}

struct Problem {
  Rng rng{11};
  decltype(linear_generator(rng)) gen = linear_generator(rng);
  GaussianReal<T> op{40, 8, 5};
  Mat<T> z0 = rng.normal_matrix<T>(4, 3);
  Mat<T> z1_start = gen.forward(0, 1, z0);
  Mat<T> y;
  T radius = 0.4;

  // the truth lies at l1 distance 1.6·radius from G_1(z0): one ball cannot reach it, two can
  Problem() {
    Mat<T> d = rng.normal_matrix<T>(6, 3);
    for (Eigen::Index j = 0; j < d.cols(); ++j) d.col(j) *= 1.6 * radius / d.col(j).lpNorm<1>();
    y = measure(op, gen.forward_from(1, z1_start + d));
  }

  PriloOptions<T> options(int repetitions, PriloReading reading) const {
    PriloOptions<T> o;
    o.initial.enabled = false;
    o.noise.enabled = false;
    o.reading = reading;
    o.history_stride = 0;
    PriloStage<T> s;
    s.layer = 1;
    s.repetitions = repetitions;
    s.forward = {.steps = 3000, .radius = radius, .learning_rate = 0.003};
    o.stages = {s};
    return o;
  }
};

std::string kinds(const SolveResult<T>& r) {
  std::string s;
  for (const auto& p : r.phases) s += p.kind;
  return s;
}
}  // namespace

TEST_CASE("chained reading: a second forward phase continues from z1* and reaches what one ball cannot") {
  Problem p;
  MagnitudeLoss<GaussianReal<T>> loss(p.op, p.y);
  Rng rng(3);
  const auto one = prilo_solve(p.gen, loss, p.z0, p.options(1, PriloReading::chained), rng);
  const auto two = prilo_solve(p.gen, loss, p.z0, p.options(2, PriloReading::chained), rng);
  INFO("one phase " << one.magnitude_error.transpose() << ", two phases " << two.magnitude_error.transpose());
  CHECK(kinds(one) == "A");
  CHECK(kinds(two) == "AA");
  CHECK(one.magnitude_error.minCoeff() > 1e-6);
  CHECK(two.magnitude_error.maxCoeff() < 1e-8);  // exact up to rounding (GCC 4e-12, clang 5e-9)
  // the output is the forward phase's range-extended image, consistent with its error
  CHECK((loss.value(two.x) / T(40) - two.magnitude_error).cwiseAbs().maxCoeff() < 1e-12);
  // the A/B/C reading with B and C switched off carries z1* on in the same way (it used to
  // restart every repetition from G_1(z0))
  auto ab = p.options(2, PriloReading::back_project_refine);
  ab.stages[0].back.enabled = false;
  ab.stages[0].refine.enabled = false;
  Rng rng2(3);
  const auto a_only = prilo_solve(p.gen, loss, p.z0, ab, rng2);
  CHECK(kinds(a_only) == "AA");
  CHECK(a_only.magnitude_error.maxCoeff() < 1e-8);  // exact up to rounding (GCC 4e-12, clang 5e-9)
}

TEST_CASE("chained reading: keep_best off returns the last forward phase's image, stages cannot go back") {
  Problem p;
  MagnitudeLoss<GaussianReal<T>> loss(p.op, p.y);
  Rng rng(3);
  auto o = p.options(2, PriloReading::chained);
  o.keep_best = false;
  o.initial = {.steps = 5, .radius = 100, .learning_rate = 0.01};
  const auto r = prilo_solve(p.gen, loss, p.z0, o, rng);
  CHECK(kinds(r) == "IAA");
  CHECK(r.phases[1].first_step == 5);
  CHECK(r.phases[2].first_step == 3005);
  CHECK(r.magnitude_error.maxCoeff() < 1e-8);
  // in the chained reading a later stage may not return to an earlier split point
  Rng g2(1);
  auto three = make_sequential(4, Linear<T>(4, 6, g2), ReLU<T>{}, Linear<T>(6, 8, g2));
  auto bad = o;
  bad.stages = {PriloStage<T>{.layer = 2}, PriloStage<T>{.layer = 1}};
  CHECK_THROWS_WITH(prilo_solve(three, loss, p.z0, bad, rng), doctest::Contains("non-decreasing"));
  bad.reading = PriloReading::back_project_refine;
  bad.stages[0].forward.steps = bad.stages[1].forward.steps = 1;
  bad.stages[0].back.steps = bad.stages[1].back.steps = 1;
  bad.stages[0].refine.steps = bad.stages[1].refine.steps = 1;
  CHECK_NOTHROW(prilo_solve(three, loss, p.z0, bad, rng));
  // the same order with B and C off in the first stage cannot return to layer 1 either
  bad.stages[0].back.enabled = bad.stages[0].refine.enabled = false;
  CHECK_THROWS_WITH(prilo_solve(three, loss, p.z0, bad, rng), doctest::Contains("non-decreasing"));
}

TEST_CASE("keep-best returns a forward phase's image that later B/C phases do not beat") {
  Problem p;
  MagnitudeLoss<GaussianReal<T>> loss(p.op, p.y);
  auto o = p.options(2, PriloReading::back_project_refine);
  o.stages[0].back.enabled = o.stages[0].refine.enabled = false;  // A, A: reaches the truth
  PriloStage<T> later;  // then one short A/B/C repetition that cannot improve on it
  later.layer = 1;
  later.forward = {.steps = 1, .radius = p.radius, .learning_rate = 0.003};
  later.back = {.steps = 1, .radius = 100, .learning_rate = 0.003};
  later.refine = {.steps = 1, .radius = 1, .learning_rate = 0.003};
  o.stages.push_back(later);
  Rng rng(3);
  const auto r = prilo_solve(p.gen, loss, p.z0, o, rng);
  CHECK(kinds(r) == "AAABC");
  CHECK(r.magnitude_error.maxCoeff() < 1e-8);  // exact up to rounding (GCC 4e-12, clang 5e-9)
  CHECK((loss.value(r.x) / T(40) - r.magnitude_error).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("keep_best off with the range-extended images: the last phase's image unless an A image is better") {
  // measurements in the range of a small VAE decoder: C fits them closely, the one-step A phase not;
  // without keep_best the -rx candidates are the A images and the last phase's image, so the
  // result is never worse than the last phase's image alone (it was: the last z0 was not a
  // candidate, the initial image was)
  nn::Vae<T> vae{64, 16, 4, 3};
  const auto& gen = vae.decoder();
  Fourier2d<T> F(8, 8);
  Rng rng(1);
  const Mat<T> y = measure(F, gen.forward_from(0, random_latents(gen, 6, rng)));
  MagnitudeLoss<Fourier2d<T>> loss(F, y);
  const Mat<T> z0 = random_latents(gen, 6, rng);
  PriloOptions<T> o;
  o.initial.steps = 1;
  o.noise.enabled = false;
  o.history_stride = 0;
  o.keep_best = false;
  PriloStage<T> s{.layer = 1, .repetitions = 1};
  s.forward = {.steps = 1, .radius = 100, .learning_rate = 1e-4};
  s.back = {.steps = 50, .radius = 100, .learning_rate = 0.1};
  s.refine = {.steps = 400, .radius = 100, .learning_rate = 0.1};
  o.stages = {s};
  Rng r1(7), r2(7);
  const auto last = prilo_solve(gen, loss, z0, o, r1);
  o.keep_best_range_extended = true;
  const auto rx = prilo_solve(gen, loss, z0, o, r2);
  REQUIRE(last.magnitude_error.minCoeff() < 1e-20);  // C fitted image 0 exactly (the others to 1e-10 … 1e-4)
  for (Eigen::Index j = 0; j < 6; ++j) {
    CAPTURE(j);
    CHECK(rx.magnitude_error(j) <= last.magnitude_error(j));
  }
  CHECK((loss.value(rx.x) / T(64) - rx.magnitude_error).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("ablation switches change which phases run") {
  Problem p;
  MagnitudeLoss<GaussianReal<T>> loss(p.op, p.y);
  auto run = [&](auto edit) {
    auto o = p.options(2, PriloReading::back_project_refine);
    o.initial = {.steps = 3, .radius = 100, .learning_rate = 0.01};
    auto& s = o.stages[0];
    s.forward.steps = s.back.steps = s.refine.steps = 3;
    edit(o);
    Rng rng(2);
    return kinds(prilo_solve(p.gen, loss, p.z0, o, rng));
  };
  CHECK(run([](auto&) {}) == "IABCABC");
  CHECK(run([](auto& o) { o.stages[0].refine.enabled = false; }) == "IABAB");
  CHECK(run([](auto& o) { o.stages[0].back.enabled = false; }) == "IACAC");
  CHECK(run([](auto& o) { o.reading = PriloReading::chained; }) == "IAA");
  CHECK(run([](auto& o) {
          o.initial.enabled = false;
          o.stages.clear();
        }) == "");
  // no balls: the phases run unconstrained and reach the truth from the first A phase
  auto free_run = p.options(1, PriloReading::chained);
  free_run.stages[0].forward.constrain = false;
  Rng rng(3);
  CHECK(prilo_solve(p.gen, loss, p.z0, free_run, rng).magnitude_error.maxCoeff() <
        1e-8);  // exact up to rounding (GCC 4e-12, clang 5e-9)
}

TEST_CASE("projected gradient descent as a phase's optimiser") {
  Problem p;
  MagnitudeLoss<GaussianReal<T>> loss(p.op, p.y);
  auto o = p.options(2, PriloReading::chained);
  for (auto* ph : {&o.stages[0].forward}) {
    ph->optimiser = Optimiser::gradient_descent;
    ph->learning_rate = 0.2;
  }
  Rng rng(3);
  const auto gd = prilo_solve(p.gen, loss, p.z0, o, rng);
  CHECK(gd.magnitude_error.maxCoeff() < 1e-8);  // exact up to rounding (GCC 4e-12, clang 5e-9)
  // a step far too large for gradient descent diverges inside the ball: a different optimiser ran
  o.stages[0].forward.learning_rate = 50;
  o.keep_best = false;
  Rng rng2(3);
  CHECK(prilo_solve(p.gen, loss, p.z0, o, rng2).magnitude_error.minCoeff() > 1e-6);
}

}  // namespace prilo_test_prilo_readings

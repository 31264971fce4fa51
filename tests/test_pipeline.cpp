// The library's reconstruction calls (prilo/pipeline.hpp): restarts as columns, keep-best,
// block-0-only monitoring, and their errors.
#include <doctest/doctest.h>

#include <mutex>
#include <prilo/prilo.hpp>
#include <thread>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_pipeline {

using namespace prilo;

namespace {
using T = double;
struct Small {
  Rng rng{5};
  nn::Vae<T> vae{16, 12, 6, 3};  // data 16 = 4×4 images, hidden 12, latent 6
  Fourier2d<T> F{4, 4};
  Mat<T> x = vae.decoder().forward_from(0, rng.normal_matrix<T>(6, 5));
  Mat<T> y = measure(F, x);
};
}  // namespace

TEST_CASE("reconstruct_dpr keeps, per image, the restart of lowest magnitude error") {
  Small s;
  DprOptions<T> o;
  o.phase = {.steps = 30, .radius = 100, .learning_rate = 0.05};
  o.history_stride = 0;
  const RestartOptions ro{.restarts = 3, .blocks = {.blocks = 2, .min_columns = 1}, .keep_all = true};
  Rng rng(1);
  const auto r = reconstruct_dpr(s.vae.decoder(), s.F, s.y, LatentStart::random, MiiOptions{}, o, rng, ro);
  const Eigen::Index B = s.y.cols();
  REQUIRE(r.all.x.cols() == 3 * B);
  REQUIRE(r.best.x.cols() == B);
  for (Eigen::Index j = 0; j < B; ++j) {
    const int q = r.best.chosen_restart[std::size_t(j)];
    for (int k = 0; k < 3; ++k) CHECK(r.best.magnitude_error(j) <= r.all.magnitude_error(k * B + j));
    CHECK(r.best.magnitude_error(j) == r.all.magnitude_error(q * B + j));
    CHECK(r.best.x.col(j) == r.all.x.col(q * B + j));
  }
  // keep_all off: no per-restart copy
  Rng rng2(1);
  const auto lean = reconstruct_dpr(s.vae.decoder(), s.F, s.y, LatentStart::random, MiiOptions{}, o, rng2,
                                    RestartOptions{.restarts = 3, .blocks = {.blocks = 2, .min_columns = 1}});
  CHECK(lean.all.x.size() == 0);
  CHECK(lean.best.x == r.best.x);
}

TEST_CASE("solve_restarts reports progress from block 0 only, on the calling thread") {
  Small s;
  PriloOptions<T> o;
  o.initial = {.steps = 10, .radius = 100, .learning_rate = 0.05};
  o.stages = {PriloStage<T>{.layer = 1, .repetitions = 1}};
  o.stages[0].forward.steps = o.stages[0].back.steps = o.stages[0].refine.steps = 10;
  o.history_stride = 5;
  std::mutex mu;
  std::vector<std::thread::id> callers;
  std::vector<int> observed_columns;
  o.progress = [&](const Progress&) {
    std::lock_guard lock(mu);
    callers.push_back(std::this_thread::get_id());
  };
  o.observe = [&](const Snapshot<T>& snap) {
    std::lock_guard lock(mu);
    observed_columns.push_back(int(snap.x.cols()));
  };
  // the reports of one solve of the whole batch (a single block): how many one block makes
  Rng rng1(2);
  reconstruct_prilo(s.vae.decoder(), s.F, s.y, LatentStart::mii, MiiOptions{.candidates = 50}, o, rng1,
                    RestartOptions{.restarts = 3, .blocks = {.blocks = 1}});
  const std::size_t one_block_reports = callers.size();
  REQUIRE(one_block_reports > 0);
  callers.clear();
  observed_columns.clear();
  // two threads forced (with one, block 1 would run on the calling thread too), and blocks of
  // unequal width: 5 images × 3 restarts = 15 columns in blocks of 7 and 8, so the width of
  // what observe sees tells block 0 from block 1
  const test_support::ThreadGuard threads;
  cpu::set_threads(2);
  Rng rng(2);
  const auto r = reconstruct_prilo(s.vae.decoder(), s.F, s.y, LatentStart::mii, MiiOptions{.candidates = 50}, o, rng,
                                   RestartOptions{.restarts = 3, .blocks = {.blocks = 2, .min_columns = 1}});
  CHECK(r.best.x.cols() == s.y.cols());
  // as many progress reports as one block makes (not twice as many), all on the calling thread
  CHECK(callers.size() == one_block_reports);
  for (const auto& id : callers) CHECK(id == std::this_thread::get_id());
  REQUIRE(!observed_columns.empty());
  for (const int c : observed_columns) CHECK(c == 7);  // block 0's 7 columns, never block 1's 8
  CHECK(r.best.phases.size() == 4);                    // I, A, B, C
}

TEST_CASE("reconstruct_fienup and resolve from the library, bad restarts are refused") {
  Small s;
  FienupOptions<T> fo;
  fo.iterations = 50;
  fo.final_er = 10;
  fo.history_stride = 0;
  Rng rng(3);
  const auto h = reconstruct_fienup(s.F, s.y, true, fo, rng, RestartOptions{.restarts = 2});
  CHECK(h.best.x.cols() == s.y.cols());
  CHECK(h.best.x.minCoeff() >= 0.0);
  const auto r =
      resolve(s.vae, s.F, s.y, {&h.best.x}, ResolveOptions{.consistency_threshold = 0, .placement_weight = 1});
  // resolve only moves pixels: every choice has the solution's magnitudes
  MagnitudeLoss<Fourier2d<T>> loss(s.F, s.y);
  CHECK((r.magnitude_error - loss.value(h.best.x) / T(16)).cwiseAbs().maxCoeff() < 1e-12);
  CHECK_THROWS_WITH(reconstruct_fienup(s.F, s.y, true, fo, rng, RestartOptions{.restarts = 0}),
                    doctest::Contains("restarts"));
}

namespace {
struct NoNoisePolicies {  // a projection but no noise member: not LatentPolicies
  template <class T>
  static L2Ball<T> projection(const PhaseOptions<T>& ph) {
    return {.radius = ph.radius};
  }
};
struct L2Policies {  // a user's policies: l2 balls of the phase's radius, no gradient noise
  template <class T>
  static L2Ball<T> projection(const PhaseOptions<T>& ph) {
    return {.radius = ph.constrain ? ph.radius : std::numeric_limits<T>::infinity()};
  }
  static NoNoise noise(const NoiseOptions&) { return {}; }
};
}  // namespace
static_assert(LatentPolicies<PaperPolicies, float>);
static_assert(LatentPolicies<L2Policies, double>);
static_assert(!LatentPolicies<NoNoisePolicies, double>);

TEST_CASE("a user's policies change what the latent solvers project onto") {
  Small s;
  DprOptions<T> o;
  o.phase = {.steps = 50, .radius = 0.5, .learning_rate = 0.1};
  o.history_stride = 0;
  const Mat<T> z0 = Mat<T>::Zero(6, s.y.cols());
  MagnitudeLoss<Fourier2d<T>> loss(s.F, s.y);
  Rng r1(1), r2(1);
  const auto l1 = dpr(s.vae.decoder(), loss, z0, o, r1);
  const auto l2 = dpr<L2Policies>(s.vae.decoder(), loss, z0, o, r2);
  for (Eigen::Index j = 0; j < z0.cols(); ++j) {
    CHECK(l1.z.col(j).lpNorm<1>() <= 0.5 + 1e-9);  // the paper's l1 ball around 0
    CHECK(l2.z.col(j).norm() <= 0.5 + 1e-9);       // the user's l2 ball around 0
  }
  CHECK(l2.z.colwise().lpNorm<1>().maxCoeff() > 0.5 + 1e-6);  // outside the l1 ball: the l2 policy ran
}

}  // namespace prilo_test_pipeline

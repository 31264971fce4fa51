// The solver core on the CUDA executor: the test bodies every executor runs
// (tests/bodies/latent_bodies.hpp), and the device solvers against the CPU ones on identical
// inputs without noise. Compiling this file is itself the check that dpr, prilo_solve, MII
// and the pipeline instantiate with the CUDA executor; without a device the suite is skipped
// by main() in test_cuda.cu.
#include <doctest/doctest.h>

#include <prilo/backend/cuda.cuh>

#include "bodies/latent_bodies.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/cuda/CMakeLists.txt).
namespace prilo_test_cuda_solvers {

namespace {

using prilo::Mat;
using prilo::gpu::DeviceMatrix;

struct GpuBackend {
  template <class T, class... A>
  static prilo::gpu::Sequential<T, A...> generator(const prilo::nn::Sequential<T, prilo::nn::Dense<T, A>...>& host) {
    return prilo::gpu::Sequential<T, A...>(host);
  }
  template <class T>
  static prilo::gpu::Fourier2d<T> fourier(const prilo::Fourier2d<T>& op) {
    return prilo::gpu::Fourier2d<T>(op);
  }
  template <class T>
  static DeviceMatrix<T> upload(const Mat<T>& m) {
    return DeviceMatrix<T>(m);
  }
};

using GpuMlp = prilo::gpu::Sequential<float, prilo::nn::Relu, prilo::nn::Relu, prilo::nn::Sigmoid>;
static_assert(prilo::Generator<GpuMlp>);
static_assert(std::same_as<prilo::generator_matrix_t<GpuMlp>, DeviceMatrix<float>>);
static_assert(std::same_as<prilo::executor_of_t<GpuMlp>, prilo::gpu::CudaExecutor>);
static_assert(prilo::Loss<prilo::gpu::MagnitudeLoss<float>, DeviceMatrix<float>>);
static_assert(!prilo::Loss<prilo::gpu::MagnitudeLoss<float>, Mat<float>>, "a device loss does not take host batches");

TEST_CASE_TEMPLATE("Executor bodies on CUDA: DPR through the pipeline", T, float, double) {
  const Mat<T> gpu = bodies::dpr_pipeline_lowers_error<GpuBackend, T>();
  CHECK(gpu.allFinite());
}
TEST_CASE_TEMPLATE("Executor bodies on CUDA: PRILO-MII (chained) through the pipeline", T, float, double) {
  bodies::prilo_mii_pipeline_lowers_error<GpuBackend, T>();
}
TEST_CASE("Executor bodies on CUDA: a non-finite start is an error") {
  bodies::nonfinite_start_is_an_error<GpuBackend, double>();
}

TEST_CASE("dpr and prilo_solve on CUDA agree with the CPU without noise (double)") {
  using T = double;
  const bodies::Problem<T> p(4);
  const auto ggen = GpuBackend::generator(p.gen);
  const prilo::gpu::Fourier2d<T> gop(p.op);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> closs(p.op, p.y);
  const prilo::gpu::MagnitudeLoss<T> gloss(gop, p.y);
  prilo::Rng rng(4);
  const Mat<T> z0 = rng.normal_matrix<T>(6, 4);

  prilo::DprOptions<T> dopt;
  dopt.phase.steps = 60;
  dopt.noise.enabled = false;
  prilo::Rng r1(1), r2(1);
  const auto c = prilo::dpr(p.gen, closs, z0, dopt, r1);
  const auto g = prilo::dpr(ggen, gloss, DeviceMatrix<T>(z0), dopt, r2);
  CHECK((g.x - c.x).cwiseAbs().maxCoeff() < 1e-8);
  CHECK((g.magnitude_error - c.magnitude_error).cwiseAbs().maxCoeff() < 1e-10);

  prilo::PriloOptions<T> popt;  // the A/B/C reading
  popt.initial.steps = 30;
  popt.stages = {{.layer = 1,
                  .repetitions = 2,
                  .forward = {.steps = 30, .radius = T(5), .learning_rate = T(0.02)},
                  .back = {.steps = 30, .radius = T(100), .learning_rate = T(0.05)},
                  .refine = {.steps = 30, .radius = T(2), .learning_rate = T(0.02)}}};
  popt.noise.enabled = false;
  const auto cp = prilo::prilo_solve(p.gen, closs, z0, popt, r1);
  const auto gp = prilo::prilo_solve(ggen, gloss, DeviceMatrix<T>(z0), popt, r2);
  CHECK(cp.phases.size() == gp.phases.size());
  CHECK((gp.x - cp.x).cwiseAbs().maxCoeff() < 1e-7);
  CHECK((gp.z - cp.z).cwiseAbs().maxCoeff() < 1e-6);
}

TEST_CASE("MII scores on CUDA match the CPU's") {
  using T = double;
  const bodies::Problem<T> p(5);
  const prilo::gpu::Fourier2d<T> gop(p.op);
  prilo::Rng rng(8);
  const Mat<T> cand = p.gen.forward_from(0, rng.normal_matrix<T>(6, 70));
  const Mat<T> c = prilo::MagnitudeLoss<prilo::Fourier2d<T>>(p.op, p.y).scores(cand);
  const Mat<T> g = prilo::gpu::MagnitudeLoss<T>(gop, p.y).scores(DeviceMatrix<T>(cand));
  REQUIRE(g.rows() == 70);
  REQUIRE(g.cols() == 5);
  CHECK((g - c).cwiseAbs().maxCoeff() < 1e-10 * std::max(1.0, c.cwiseAbs().maxCoeff()));
}

TEST_CASE("BlockProjection on CUDA matches the CPU (per-block l1 balls of a split state)") {
  using T = double;
  prilo::Rng rng(3);
  const prilo::BlockProjection<T, prilo::L1Ball<T>> p{{50, 20}, {{.radius = 2.0}, {.radius = 0.5}}};
  Mat<T> x = rng.normal_matrix<T>(70, 33), c = rng.normal_matrix<T>(70, 1);
  DeviceMatrix<T> dx(x), dc(c);
  const prilo::gpu::CudaExecutor ex;
  project(ex, p, dx, dc);
  finish_phase(ex, "block projection");  // the CUDA form, by argument-dependent lookup
  p.project(x, c);
  CHECK((dx.download() - x).cwiseAbs().maxCoeff() < 1e-12);

  // the CPU form's checks, with its messages (a negative size passed the sum check before)
  const prilo::BlockProjection<T, prilo::L1Ball<T>> negative{{7, -2}, {{.radius = 1.0}, {.radius = 1.0}}};
  DeviceMatrix<T> d5 = DeviceMatrix<T>::zeros(5, 3), c5 = DeviceMatrix<T>::zeros(5, 1);
  Mat<T> h5 = Mat<T>::Zero(5, 3);
  CHECK_THROWS_WITH_AS(negative.project(h5, Mat<T>::Zero(5, 1)), doctest::Contains("block 1 has a negative size -2"),
                       prilo::invalid_input);
  CHECK_THROWS_WITH_AS(project(ex, negative, d5, c5), doctest::Contains("block 1 has a negative size -2"),
                       prilo::invalid_input);
  const prilo::BlockProjection<T, prilo::L1Ball<T>> short_sum{{3, 1}, {{.radius = 1.0}, {.radius = 1.0}}};
  CHECK_THROWS_WITH_AS(project(ex, short_sum, d5, c5), doctest::Contains("sum to 4 but the state has 5 rows"),
                       prilo::invalid_input);
}

TEST_CASE("solve_blocks on CUDA checks its ColumnBlockOptions before solving, as the CPU does") {
  struct Batch {  // solve_blocks reads only the batch size before solving
    Eigen::Index batch() const { return 8; }
  };
  const prilo::gpu::CudaExecutor ex;
  const Mat<double> start = Mat<double>::Zero(3, 8);
  prilo::Rng rng(1);
  bool solved = false;
  auto solve = [&](const Batch&, const DeviceMatrix<double>&, prilo::Rng&, prilo::ColumnBlock) {
    solved = true;
    return prilo::SolveResult<double>{};
  };
  auto run = [&](prilo::ColumnBlockOptions opt) {
    return prilo::gpu::solve_blocks(ex, Batch{}, start, rng, solve, opt);
  };
  CHECK_THROWS_WITH_AS(run({.parts = 0}), doctest::Contains("part 0 of 0 is not a valid part"), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(run({.blocks = -1}), doctest::Contains("blocks must be >= 0"), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(run({.min_columns = 0}), doctest::Contains("min_columns must be >= 1"), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(run({.part = 1}), doctest::Contains("part 1 of 1 is not a valid part"), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(run({.blocks = 2, .part = 1, .parts = 2}), doctest::Contains("CPU-only"), prilo::invalid_input);
  CHECK(!solved);
  run({.blocks = 3});  // a block count is no error: the device solves the batch as one
  CHECK(solved);
}

}  // namespace

}  // namespace prilo_test_cuda_solvers

// The executor layer on the CPU: the customisation points' contracts, and the test bodies
// every executor runs (tests/bodies/latent_bodies.hpp; the CUDA suite runs the same ones).
#include <doctest/doctest.h>

#include <prilo/exec/executor.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/projection/l1_ball.hpp>

#include "bodies/latent_bodies.hpp"

namespace {

using prilo::CpuExecutor;
using prilo::Mat;
using prilo::Vec;

struct CpuBackend {
  template <class G>
  static const G& generator(const G& host) {
    return host;
  }
  template <class T>
  static const prilo::Fourier2d<T>& fourier(const prilo::Fourier2d<T>& op) {
    return op;
  }
  template <class T>
  static Mat<T> upload(const Mat<T>& m) {
    return m;
  }
};

static_assert(prilo::Executor<CpuExecutor>);
static_assert(!prilo::Executor<int>);
static_assert(std::same_as<prilo::matrix_t<CpuExecutor, float>, Mat<float>>);
static_assert(prilo::Loss<prilo::MagnitudeLoss<prilo::Fourier2d<float>>, Mat<float>>);
static_assert(!prilo::Loss<prilo::Fourier2d<float>, Mat<float>>, "an operator is not a loss");

TEST_CASE_TEMPLATE("CPU customisation points keep their contracts", T, float, double) {
  const CpuExecutor ex;
  prilo::Rng rng(2);
  const Mat<T> a = rng.normal_matrix<T>(5, 4), b = rng.normal_matrix<T>(5, 4);
  Mat<T> d;
  scaled_difference(ex, d, a, b, T(2));
  CHECK(d.isApprox(T(2) * (a - b)));
  const Vec<T> n = column_sq_norms(ex, d);
  for (int j = 0; j < 4; ++j) CHECK(n(j) == doctest::Approx(double(d.col(j).squaredNorm())));
  Mat<T> dst = prilo::zeros<T>(ex, 5, 4);
  const std::vector<Eigen::Index> cols{1, 3};
  copy_columns(ex, dst, a, cols);
  CHECK(dst.col(1) == a.col(1));
  CHECK(dst.col(3) == a.col(3));
  CHECK(dst.col(0).isZero());
  CHECK_THROWS_AS(copy_columns(ex, dst, Mat<T>(Mat<T>::Zero(5, 3)), cols), prilo::invalid_input);
  Mat<T> part;
  copy_from_host(ex, part, a, 1, 2);
  CHECK(part == a.middleCols(1, 2));
  // noise: σ = 0 draws nothing, σ > 0 draws from the given stream reproducibly
  prilo::Rng r1(9), r2(9);
  Mat<T> g1 = Mat<T>::Zero(50, 40), g2 = g1;
  add_normal(ex, g1, T(0), r1);
  CHECK(g1.isZero());
  CHECK(r1.next_u64() == r2.next_u64());
  add_normal(ex, g1, T(0.5), r1);
  add_normal(ex, g2, T(0.5), r2);
  CHECK(g1 == g2);
  const double var = double((g1.array() - g1.mean()).square().mean());
  CHECK(var == doctest::Approx(0.25).epsilon(0.1));
}

TEST_CASE("Adam over the CPU executor is Adam: one step by hand") {
  prilo::Adam<double> adam({.learning_rate = 0.1});
  Mat<double> x(1, 1), g(1, 1), c = Mat<double>::Zero(1, 1);
  x << 1.0;
  g << 0.5;
  prilo::Rng rng(1);
  adam.step(x, g, c, rng);
  // m̂ = g, v̂ = g², step = α g / (|g| + ε)
  CHECK(x(0, 0) == doctest::Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-12));
}

TEST_CASE_TEMPLATE("Executor bodies on the CPU: DPR through the pipeline", T, float, double) {
  bodies::dpr_pipeline_lowers_error<CpuBackend, T>();
}
TEST_CASE_TEMPLATE("Executor bodies on the CPU: PRILO-MII (chained) through the pipeline", T, float, double) {
  bodies::prilo_mii_pipeline_lowers_error<CpuBackend, T>();
}
TEST_CASE("Executor bodies on the CPU: a non-finite start is an error") {
  bodies::nonfinite_start_is_an_error<CpuBackend, double>();
}

}  // namespace

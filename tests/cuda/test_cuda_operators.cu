// The device Gaussian operators and the one MagnitudeLoss class on the CUDA executor: the same
// loss values, gradients and MII scores as the CPU's for the real and complex Gaussian operators,
// and DPR through the pipeline on them. Skipped without a device (main() in test_cuda.cu).
#include <doctest/doctest.h>

#include <prilo/backend/cuda.cuh>
#include <prilo/pipeline.hpp>

#include "bodies/problem.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/cuda/CMakeLists.txt).
namespace prilo_test_cuda_operators {

namespace {

using prilo::Mat;
using prilo::Vec;
using prilo::gpu::DeviceMatrix;

static_assert(prilo::LossOperator<prilo::gpu::GaussianReal<float>>);
static_assert(prilo::LossOperator<prilo::gpu::GaussianComplex<float>>);
static_assert(prilo::HalfSpectrumOperator<prilo::gpu::Fourier2d<float>>);
static_assert(prilo::Loss<prilo::MagnitudeLoss<prilo::gpu::GaussianReal<float>>, DeviceMatrix<float>>);
static_assert(prilo::Loss<prilo::MagnitudeLoss<prilo::gpu::GaussianComplex<double>>, DeviceMatrix<double>>);
static_assert(std::same_as<prilo::executor_of_t<prilo::gpu::GaussianComplex<float>>, prilo::gpu::CudaExecutor>);

template <class T>
double rel_err(const Mat<T>& a, const Mat<T>& b) {
  return double((a - b).norm() / std::max(b.norm(), T(1e-30)));
}

template <class HostOp, class DeviceOp>
void check_loss_agrees(const HostOp& hop, const DeviceOp& dop, double tol) {
  using T = typename HostOp::scalar;
  prilo::Rng rng(11);
  const Mat<T> xt = rng.normal_matrix<T>(hop.input_size(), 5);
  const Mat<T> y = prilo::measure(hop, xt);
  const Mat<T> x = rng.normal_matrix<T>(hop.input_size(), 5);
  const prilo::MagnitudeLoss<HostOp> closs(hop, y);
  const prilo::MagnitudeLoss<DeviceOp> gloss(dop, y);
  Mat<T> cg;
  DeviceMatrix<T> gg;
  const Vec<T> cv = closs.value_and_gradient(x, cg);
  const Vec<T> gv = gloss.value_and_gradient(DeviceMatrix<T>(x), gg);
  CHECK(rel_err<T>(gv, cv) < tol);
  CHECK(rel_err<T>(gg.download(), cg) < tol);
  CHECK(rel_err<T>(gloss.value(DeviceMatrix<T>(x)), cv) < tol);
  // MII's scores: 40 candidates against the 5 measurements
  const Mat<T> cand = rng.normal_matrix<T>(hop.input_size(), 40);
  CHECK(rel_err<T>(gloss.scores(DeviceMatrix<T>(cand)), closs.scores(cand)) < tol);
}

TEST_CASE_TEMPLATE("Gaussian operators on CUDA: the loss, its gradient and MII scores agree with the CPU", T, float,
                   double) {
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-11;
  const prilo::GaussianReal<T> real(90, 36, 5);
  check_loss_agrees(real, prilo::gpu::GaussianReal<T>(real), tol);
  const prilo::GaussianComplex<T> cplx(70, 36, 6);
  check_loss_agrees(cplx, prilo::gpu::GaussianComplex<T>(cplx), tol);
}

TEST_CASE("DPR through the pipeline on the CUDA Gaussian operator matches the CPU without noise") {
  using T = double;
  const bodies::Problem<T> p(3);
  const prilo::GaussianComplex<T> hop(120, 36, 9);
  const Mat<T> y = prilo::measure(hop, p.x_true);
  const prilo::gpu::GaussianComplex<T> dop(hop);
  const prilo::gpu::Sequential<T, prilo::nn::Relu, prilo::nn::Sigmoid> ggen(p.gen);
  prilo::DprOptions<T> opt;
  opt.phase.steps = 50;
  opt.noise.enabled = false;
  prilo::Rng rng(2);
  const Mat<T> z0 = rng.normal_matrix<T>(6, 3);
  prilo::Rng r1(1), r2(1);
  const auto c = prilo::dpr(p.gen, prilo::MagnitudeLoss<prilo::GaussianComplex<T>>(hop, y), z0, opt, r1);
  const auto g =
      prilo::dpr(ggen, prilo::MagnitudeLoss<prilo::gpu::GaussianComplex<T>>(dop, y), DeviceMatrix<T>(z0), opt, r2);
  CHECK((g.x - c.x).cwiseAbs().maxCoeff() < 1e-8);
  CHECK((g.magnitude_error - c.magnitude_error).cwiseAbs().maxCoeff() < 1e-10);
}

}  // namespace

}  // namespace prilo_test_cuda_operators

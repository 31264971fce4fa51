// The style modules on the CUDA executor (gpu::Duplicate, gpu::Carry, gpu::Modulate) against the
// CPU modules on identical inputs (forward, input VJP, weight VJP), the device style decoder
// against the host one at every split point (values, VJPs, state blocks), PRILO through it with
// a radius per block against the CPU, and run_method's device placement on the style VAE.
// Skipped without a device (main() in test_cuda.cu).
#include <doctest/doctest.h>

#include <prilo/backend/cuda.cuh>
#include <prilo/methods.hpp>
#include <prilo/nn/style.hpp>
#include <prilo/nn/style_vae.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/random.hpp>
#include <prilo/solvers/latent.hpp>

#include "device_checks.cuh"

#include <algorithm>
#include <cmath>
#include <type_traits>

// Each test file in its own namespace, so that unity builds can combine them (tests/cuda/CMakeLists.txt).
namespace prilo_test_cuda_style {

namespace {

using prilo::Mat;
using prilo::gpu::DeviceMatrix;
using prilo_cuda_test::rel_err;
using prilo_cuda_test::tol;
namespace nn = prilo::nn;
namespace gpu = prilo::gpu;

// ---- the types ----

static_assert(std::is_same_v<gpu::Modulate<float, nn::Sigmoid, false>,
                             nn::Modulate<float, nn::Sigmoid, false, gpu::CudaExecutor>>);
static_assert(std::is_same_v<gpu::Carry<gpu::Dense<double>>::executor_type, gpu::CudaExecutor>);
static_assert(std::is_same_v<gpu::Carry<gpu::Dense<double>>::matrix_type, DeviceMatrix<double>>);
static_assert(std::is_same_v<nn::Carry<nn::Dense<double>>::matrix_type, Mat<double>>, "the host Carry stays on Mat");

using HostStyleDecoder = nn::StyleVae<float>::Decoder;
using GpuStyleDecoder = decltype(gpu::Sequential(std::declval<const HostStyleDecoder&>()));
static_assert(
    std::is_same_v<GpuStyleDecoder,
                   gpu::Sequential<float, gpu::Duplicate<float>, gpu::Carry<gpu::Dense<float>>,
                                   gpu::Modulate<float, nn::LeakyRelu>, gpu::Carry<gpu::ConvTranspose2d<float>>,
                                   gpu::Modulate<float, nn::LeakyRelu>, gpu::Carry<gpu::ConvTranspose2d<float>>,
                                   gpu::Modulate<float, nn::Sigmoid, false>>>,
    "the style decoder deduces its device modules");
static_assert(std::is_same_v<GpuStyleDecoder::host_type, HostStyleDecoder>);
static_assert(prilo::Generator<GpuStyleDecoder>);
static_assert(prilo::detail::can_place<gpu::OnDevice, HostStyleDecoder, prilo::Fourier2d<float>>);

/// Forward, input VJP (both forms) and, when the module has weights, the weight VJP of a device
/// module against the host module it was uploaded from.
template <class Host, class Device>
void check_pair(Host& host, Device& dev, Eigen::Index in_rows, Eigen::Index batch, std::uint64_t seed) {
  using T = typename Host::scalar;
  prilo::Rng rng(seed);
  const Mat<T> x = rng.normal_matrix<T>(in_rows, batch);
  Mat<T> y, gx, work;
  host.forward(x, y);
  const Mat<T> gy = rng.normal_matrix<T>(y.rows(), batch);
  host.backward_input(x, y, gy, gx, work);

  const DeviceMatrix<T> dx(x), dgy(gy), dyh(y);
  DeviceMatrix<T> dy, dgx, dwork, dgx2;
  dev.forward(dx, dy);
  CHECK(rel_err(dy.download(), y) < tol<T>());
  if constexpr (requires { dev.forward(dx, dy, dwork, std::declval<nn::Staging<DeviceMatrix<T>>&>()); }) {
    nn::Staging<DeviceMatrix<T>> st;
    DeviceMatrix<T> dy2;
    dev.forward(dx, dy2, dwork, st);  // the form gpu::Sequential calls, twice: buffers reused
    dev.forward(dx, dy2, dwork, st);
    CHECK(rel_err(dy2.download(), y) < tol<T>());
    dev.backward_input(dx, dyh, dgy, dgx2, dwork, st);
    CHECK(rel_err(dgx2.download(), gx) < tol<T>());
  }
  dev.backward_input(dx, dyh, dgy, dgx, dwork);
  CHECK(rel_err(dgx.download(), gx) < tol<T>());
  if constexpr (requires { host.grad_weight(); }) {
    host.zero_grad();
    host.backward(x, y, gy, nullptr, true);
    host.backward(x, y, gy, nullptr, true);  // twice: the gradients accumulate
    dev.zero_grad();
    dev.backward(dx, dyh, dgy, &dgx2, true);
    dev.backward(dx, dyh, dgy, nullptr, true);
    CHECK(rel_err(dgx2.download(), gx) < tol<T>());
    CHECK(rel_err(dev.grad_weight().download(), host.grad_weight()) < tol<T>());
    CHECK(rel_err(Mat<T>(dev.grad_bias().download()), Mat<T>(host.grad_bias())) < tol<T>());
  }
}

/// A small style VAE (8×8 images, latent 3; 3 maps of 2×2, then 2 of 4×4), as the CPU tests'.
template <class T>
nn::StyleVae<T> small_style_vae() {
  return nn::StyleVae<T>(nn::StyleVaeSizes{.image = {1, 8, 8}, .latent = 3, .channels1 = 2, .channels2 = 3}, 14);
}

}  // namespace

TEST_CASE_TEMPLATE("device style modules agree with the host ones", T, float, double) {
  prilo::Rng rng(21);
  SUBCASE("Duplicate") {
    nn::Duplicate<T> h(4);
    gpu::Duplicate<T> d(h);
    check_pair(h, d, 4, 7, 1);
  }
  SUBCASE("Carry of a dense layer (its weight gradients through the inner layer)") {
    nn::Carry<nn::Dense<T, nn::Relu>> h(nn::Dense<T, nn::Relu>(5, 6, rng), 3);
    gpu::Carry<gpu::Dense<T, nn::Relu>> d;
    d.upload(h);
    check_pair(h, d, 8, 5, 2);
    CHECK(d.output_blocks() == h.output_blocks());
    h.zero_grad();
    d.zero_grad();
    prilo::Rng r(3);
    const Mat<T> x = r.normal_matrix<T>(8, 5);
    Mat<T> y;
    h.forward(x, y);
    const Mat<T> gy = r.normal_matrix<T>(y.rows(), 5);
    h.backward(x, y, gy, nullptr, true);
    DeviceMatrix<T> dy;
    d.forward(DeviceMatrix<T>(x), dy);
    d.backward(DeviceMatrix<T>(x), dy, DeviceMatrix<T>(gy), nullptr, true);
    CHECK(rel_err(d.inner().grad_weight().download(), h.inner().grad_weight()) < tol<T>());
  }
  SUBCASE("Carry of a transposed convolution") {
    nn::Carry<nn::ConvTranspose2d<T>> h(nn::ConvTranspose2d<T>(nn::Shape3{3, 2, 2}, 2, 4, 2, 1, 0, rng), 3);
    gpu::Carry<gpu::ConvTranspose2d<T>> d;
    d.upload(h);
    check_pair(h, d, 12 + 3, 6, 4);
  }
  SUBCASE("Modulate, z0 carried (leaky ReLU)") {
    nn::Modulate<T, nn::LeakyRelu> h(3, 5, 4, rng);
    h.bias().setRandom();  // a non-zero shift and scale offset
    gpu::Modulate<T, nn::LeakyRelu> d(h);
    check_pair(h, d, 15 + 4, 9, 5);
  }
  SUBCASE("Modulate, the last layer (sigmoid, z0 dropped), more pixels than a block's threads") {
    nn::Modulate<T, nn::Sigmoid, false> h(2, 300, 3, rng);
    h.bias().setRandom();
    gpu::Modulate<T, nn::Sigmoid, false> d(h);
    check_pair(h, d, 600 + 3, 4, 6);
  }
}

TEST_CASE("device style modules reject bad shapes with the host modules' messages") {
  using T = float;
  prilo::Rng rng(2);
  const gpu::Modulate<T> m(nn::Modulate<T>(3, 5, 2, rng));
  DeviceMatrix<T> y;
  CHECK_THROWS_WITH_AS(m.forward(DeviceMatrix<T>::zeros(16, 2), y), doctest::Contains("Modulate input"),
                       prilo::invalid_input);
  const gpu::Duplicate<T> dup(nn::Duplicate<T>(4));
  CHECK_THROWS_WITH_AS(dup.forward(DeviceMatrix<T>::zeros(5, 2), y), doctest::Contains("Duplicate input"),
                       prilo::invalid_input);
  DeviceMatrix<T> dst(3, 2);
  CHECK_THROWS_WITH_AS(prilo::gpu::copy_rows(gpu::CudaExecutor{}, dst, 1, DeviceMatrix<T>::zeros(4, 2), 0, 3),
                       doctest::Contains("copy_rows"), prilo::invalid_input);
}

TEST_CASE_TEMPLATE("the device style decoder agrees with the host one at every split point", T, float, double) {
  auto vae = small_style_vae<T>();
  const auto& host = vae.decoder();
  const gpu::Sequential dev(host);
  CHECK(dev.blocks(3) == std::vector<Eigen::Index>{12, 3});  // {z_3: 3 maps of 2x2, z0}
  CHECK(dev.blocks(7) == std::vector<Eigen::Index>{64});     // the image, z0 dropped
  prilo_cuda_test::check_split_ranges<T>(host, dev, 9, 3);
}

TEST_CASE("the device style decoder's weight VJP agrees with the host one (double)") {
  using T = double;
  auto vae = small_style_vae<T>();
  auto& host = vae.decoder();
  gpu::Sequential dev(host);
  prilo::Rng rng(4);
  const Mat<T> z = rng.normal_matrix<T>(host.dim(0), 6);
  const Mat<T> gy = rng.normal_matrix<T>(host.dim(host.depth()), 6);
  typename std::decay_t<decltype(host)>::trace_type htr;
  gpu::Trace<T> dtr;
  host.forward(0, host.depth(), z, htr);
  dev.forward(0, host.depth(), DeviceMatrix<T>(z), dtr);
  host.zero_grad();
  dev.zero_grad();
  CHECK(rel_err(dev.vjp_weights(dtr, DeviceMatrix<T>(gy)).download(), host.vjp_weights(htr, gy)) < 1e-10);
  CHECK(rel_err(dev.layer<1>().inner().grad_weight().download(), host.module<1>().inner().grad_weight()) < 1e-10);
  CHECK(rel_err(dev.layer<2>().grad_weight().download(), host.module<2>().grad_weight()) < 1e-10);
  CHECK(rel_err(dev.layer<5>().inner().grad_weight().download(), host.module<5>().inner().grad_weight()) < 1e-10);
  CHECK(rel_err(dev.layer<6>().grad_weight().download(), host.module<6>().grad_weight()) < 1e-10);
  CHECK(rel_err(Mat<T>(dev.layer<6>().grad_bias().download()), Mat<T>(host.module<6>().grad_bias())) < 1e-10);
}

TEST_CASE("PRILO through the device style decoder, a radius per block, agrees with the CPU without noise (double)") {
  using T = double;
  auto vae = small_style_vae<T>();
  const auto& host = vae.decoder();
  const auto dev = gpu::OnDevice{}.generator(host);
  const prilo::Fourier2d<T> op(8, 8);
  const gpu::Fourier2d<T> gop(op);
  prilo::Rng rng(6);
  const Mat<T> y = op.apply(host(rng.normal_matrix<T>(3, 3))).cwiseAbs();
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> closs(op, y);
  const gpu::MagnitudeLoss<T> gloss(gop, y);
  const Mat<T> z0 = rng.normal_matrix<T>(3, 3);
  prilo::PriloOptions<T> opt;
  opt.initial.steps = 20;
  opt.noise.enabled = false;
  opt.reading = prilo::PriloReading::chained;
  opt.stages = {{.layer = 3, .repetitions = 1, .forward = {.steps = 30, .radius = 1, .learning_rate = T(0.05)}},
                {.layer = 5, .repetitions = 1, .forward = {.steps = 30, .radius = 1, .learning_rate = T(0.05)}}};
  opt.stages[0].forward.radii = {T(3), T(0.5)};
  opt.stages[1].forward.radii = {T(3), T(0.5)};
  prilo::Rng r1(1), r2(1);
  const auto c = prilo::prilo_solve(host, closs, z0, opt, r1);
  const auto g = prilo::prilo_solve(dev, gloss, DeviceMatrix<T>(z0), opt, r2);
  CHECK(c.phases.size() == g.phases.size());
  CHECK((g.x - c.x).cwiseAbs().maxCoeff() < 1e-7);
  CHECK((g.magnitude_error - c.magnitude_error).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("run_method on the device placement runs the style VAE (DPR-MII)") {
  using T = float;
  const auto vae = small_style_vae<T>();
  const prilo::Fourier2d<T> op(8, 8);
  prilo::Rng rng(8);
  const Mat<T> y = op.apply(vae.decoder()(rng.normal_matrix<T>(3, 2))).cwiseAbs();
  prilo::ReconstructionConfig<T> cfg;
  cfg.dpr.phase.steps = 20;
  cfg.mii.candidates = 64;
  const auto r = prilo::run_method(gpu::OnDevice{}, prilo::parse_method("dpr-mii"), vae, op, y, cfg);
  CHECK(r.best.x.rows() == 64);
  CHECK(r.best.x.cols() == 2);
  CHECK(r.best.x.allFinite());
}

}  // namespace prilo_test_cuda_style

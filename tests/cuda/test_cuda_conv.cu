// The convolution layers on the CUDA executor (gpu::Conv2d, gpu::ConvTranspose2d) against the
// CPU layers on identical inputs (forward, input VJP, weight VJP; random shapes with strides,
// padding and output padding; one block and several), the device conv decoder against the
// host one, and DPR through it against the CPU. Skipped without a device (main() in
// test_cuda.cu).
#include <doctest/doctest.h>

#include <prilo/backend/cuda.cuh>
#include <prilo/methods.hpp>
#include <prilo/nn/conv.hpp>
#include <prilo/nn/conv_vae.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/random.hpp>
#include <prilo/solvers/latent.hpp>

#include "device_checks.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>

// Each test file in its own namespace, so that unity builds can combine them (tests/cuda/CMakeLists.txt).
namespace prilo_test_cuda_conv {

namespace {

using prilo::Mat;
using prilo::Vec;
using prilo::gpu::DeviceMatrix;
using prilo_cuda_test::rel_err;
using prilo_cuda_test::tol;
namespace nn = prilo::nn;

// ---- the types ----

static_assert(
    std::is_same_v<prilo::gpu::Conv2d<float, nn::Relu>, nn::Conv2d<float, nn::Relu, prilo::gpu::CudaExecutor>>,
    "gpu::Conv2d is nn::Conv2d on the CUDA executor");
static_assert(std::is_same_v<prilo::gpu::ConvTranspose2d<double, nn::Sigmoid>::matrix_type, DeviceMatrix<double>>);
static_assert(std::is_same_v<prilo::gpu::ConvTranspose2d<double>::vector_type, DeviceMatrix<double>>);
static_assert(std::is_same_v<nn::Conv2d<float>::vector_type, Vec<float>>, "the CPU layer keeps its Vec bias");

using HostConvDecoder = nn::ConvVae<float>::Decoder;
using GpuConvDecoder = decltype(prilo::gpu::Sequential(std::declval<const HostConvDecoder&>()));
static_assert(
    std::is_same_v<GpuConvDecoder, prilo::gpu::Sequential<float, nn::Relu, prilo::gpu::ConvTranspose2d<float, nn::Relu>,
                                                          prilo::gpu::ConvTranspose2d<float, nn::Sigmoid>>>,
    "the conv decoder deduces its device modules (a dense layer spelled as its activation)");
static_assert(std::is_same_v<GpuConvDecoder::host_type, HostConvDecoder>);
static_assert(prilo::Generator<GpuConvDecoder>);
static_assert(std::same_as<prilo::generator_matrix_t<GpuConvDecoder>, DeviceMatrix<float>>);
static_assert(std::same_as<prilo::executor_of_t<GpuConvDecoder>, prilo::gpu::CudaExecutor>);
// a dense chain deduces the type it always had, and the two spellings of a dense chain agree
using HostMlp = nn::Sequential<float, nn::Dense<float, nn::Relu>, nn::Dense<float, nn::Sigmoid>>;
static_assert(std::is_same_v<decltype(prilo::gpu::Sequential(std::declval<const HostMlp&>())),
                             prilo::gpu::Sequential<float, nn::Relu, nn::Sigmoid>>);
static_assert(std::is_same_v<prilo::gpu::Sequential<float, prilo::gpu::Dense<float, nn::Relu>,
                                                    prilo::gpu::Dense<float, nn::Sigmoid>>::host_type,
                             HostMlp>);
// the placement takes the conv decoder (the style decoder: test_cuda_style.cu)
static_assert(prilo::detail::can_place<prilo::gpu::OnDevice, HostConvDecoder, prilo::Fourier2d<float>>);

// ---- the layers ----

struct ConvCase {
  nn::Shape3 in;
  Eigen::Index out_channels;
  int k, s, p, op;  // op: output padding (transposed convolutions only)
};

/// A random valid case: 1–4 channels, 3–9 pixels a side, kernel 1–4, stride 1–3, padding
/// below the kernel, output padding below the stride.
ConvCase random_case(prilo::Rng& rng, bool transposed) {
  auto pick = [&](int lo, int hi) { return lo + int(rng.uniform() * (hi - lo + 1)) % (hi - lo + 1); };
  for (;;) {
    ConvCase c{{pick(1, 4), pick(3, 9), pick(3, 9)}, pick(1, 4), pick(1, 4), pick(1, 3), 0, 0};
    c.p = pick(0, c.k - 1);
    c.op = transposed ? pick(0, c.s - 1) : 0;
    if (!transposed && (c.in.height + 2 * c.p < c.k || c.in.width + 2 * c.p < c.k)) continue;
    if (transposed &&
        ((c.in.height - 1) * c.s - 2 * c.p + c.k + c.op <= 0 || (c.in.width - 1) * c.s - 2 * c.p + c.k + c.op <= 0))
      continue;
    return c;
  }
}

/// Forward, input VJP (backward_input and backward without weights) and weight VJP of a device
/// layer against the host layer it was uploaded from, with `block` samples per device block
/// (0: one block).
template <class Host, class Device>
void check_layer_pair(Host& host, Device& dev, Eigen::Index batch, std::uint64_t seed) {
  using T = typename Host::scalar;
  prilo::Rng rng(seed);
  const Mat<T> x = rng.normal_matrix<T>(host.input_size(), batch);
  const Mat<T> gy = rng.normal_matrix<T>(host.output_size(), batch);
  Mat<T> y, gx, work;
  host.forward(x, y);
  host.backward_input(x, y, gy, gx, work);
  host.zero_grad();
  host.backward(x, y, gy, nullptr, true);
  host.backward(x, y, gy, nullptr, true);  // twice: the gradients accumulate

  const DeviceMatrix<T> dx(x), dgy(gy);
  DeviceMatrix<T> dy, dgx, dwork, dgx2;
  dev.forward(dx, dy);
  CHECK(rel_err(dy.download(), y) < tol<T>());
  DeviceMatrix<T> dy2;
  dev.forward(dx, dy2, dwork);  // the form gpu::Sequential calls, scratch in the trace
  CHECK(rel_err(dy2.download(), y) < tol<T>());
  const DeviceMatrix<T> dyh(y);  // the host output, so that act'(y) is the same on both
  dev.backward_input(dx, dyh, dgy, dgx, dwork);
  CHECK(rel_err(dgx.download(), gx) < tol<T>());
  dev.zero_grad();
  dev.backward(dx, dyh, dgy, &dgx2, true);
  dev.backward(dx, dyh, dgy, nullptr, true);
  CHECK(rel_err(dgx2.download(), gx) < tol<T>());
  CHECK(rel_err(dev.grad_weight().download(), host.grad_weight()) < tol<T>());
  CHECK(rel_err(Mat<T>(dev.grad_bias().download()), Mat<T>(host.grad_bias())) < tol<T>());
  dev.backward(dx, dyh, dgy, &dgx2, false);  // input VJP only: the weight gradients stay
  CHECK(rel_err(dgx2.download(), gx) < tol<T>());
  CHECK(rel_err(dev.grad_weight().download(), host.grad_weight()) < tol<T>());
}

template <class T, class Act>
void check_conv2d(const ConvCase& c, std::uint64_t seed) {
  CAPTURE(c.in.channels);
  CAPTURE(c.in.height);
  CAPTURE(c.in.width);
  CAPTURE(c.out_channels);
  CAPTURE(c.k);
  CAPTURE(c.s);
  CAPTURE(c.p);
  prilo::Rng rng(seed);
  nn::Conv2d<T, Act> host(c.in, c.out_channels, c.k, c.s, c.p, rng);
  prilo::gpu::Conv2d<T, Act> dev(host);
  CHECK(dev.output_shape() == host.output_shape());
  CHECK(dev.host_weight() == host.weight());
  CHECK(Mat<T>(dev.host_bias()) == Mat<T>(host.bias()));
  check_layer_pair(host, dev, 7, seed + 1);
  dev.set_block_samples(3);  // several device blocks, the last one short
  check_layer_pair(host, dev, 7, seed + 2);
  // download: the weights come back exactly
  nn::Conv2d<T, Act> back(c.in, c.out_channels, c.k, c.s, c.p, rng);
  dev.download(back);
  CHECK(back.weight() == host.weight());
  CHECK(back.bias() == host.bias());
}

template <class T, class Act>
void check_conv_transpose2d(const ConvCase& c, std::uint64_t seed) {
  CAPTURE(c.in.channels);
  CAPTURE(c.in.height);
  CAPTURE(c.in.width);
  CAPTURE(c.out_channels);
  CAPTURE(c.k);
  CAPTURE(c.s);
  CAPTURE(c.p);
  CAPTURE(c.op);
  prilo::Rng rng(seed);
  nn::ConvTranspose2d<T, Act> host(c.in, c.out_channels, c.k, c.s, c.p, c.op, rng);
  prilo::gpu::ConvTranspose2d<T, Act> dev(host);
  CHECK(dev.output_shape() == host.output_shape());
  CHECK(dev.output_padding() == host.output_padding());
  check_layer_pair(host, dev, 7, seed + 1);
  dev.set_block_samples(2);
  check_layer_pair(host, dev, 7, seed + 2);
  nn::ConvTranspose2d<T, Act> back(c.in, c.out_channels, c.k, c.s, c.p, c.op, rng);
  dev.download(back);
  CHECK(back.weight() == host.weight());
  CHECK(back.bias() == host.bias());
}

}  // namespace

TEST_CASE_TEMPLATE("gpu::Conv2d agrees with nn::Conv2d (forward, input and weight VJPs)", T, float, double) {
  // the shapes of the conv VAE's encoder, then random ones
  check_conv2d<T, nn::LeakyRelu>({{1, 28, 28}, 32, 4, 2, 1, 0}, 1);
  check_conv2d<T, nn::Relu>({{3, 9, 7}, 4, 3, 2, 1, 0}, 2);
  check_conv2d<T, nn::Identity>({{2, 5, 5}, 3, 3, 1, 1, 0}, 3);
  prilo::Rng rng(11);
  for (int i = 0; i < 12; ++i) {
    const ConvCase c = random_case(rng, false);
    switch (i % 4) {
      case 0: check_conv2d<T, nn::Identity>(c, 100 + i); break;
      case 1: check_conv2d<T, nn::Relu>(c, 100 + i); break;
      case 2: check_conv2d<T, nn::Sigmoid>(c, 100 + i); break;
      default: check_conv2d<T, nn::Tanh>(c, 100 + i); break;
    }
  }
}

TEST_CASE_TEMPLATE("gpu::ConvTranspose2d agrees with nn::ConvTranspose2d (forward, input and weight VJPs)", T, float,
                   double) {
  // the conv VAE decoder's shapes, output padding, then random ones
  check_conv_transpose2d<T, nn::Relu>({{64, 7, 7}, 32, 4, 2, 1, 0}, 1);
  check_conv_transpose2d<T, nn::Sigmoid>({{32, 14, 14}, 1, 4, 2, 1, 0}, 2);
  check_conv_transpose2d<T, nn::Identity>({{3, 3, 3}, 2, 3, 2, 1, 1}, 3);
  check_conv_transpose2d<T, nn::LeakyRelu>({{2, 4, 5}, 3, 3, 3, 0, 2}, 4);
  prilo::Rng rng(12);
  for (int i = 0; i < 12; ++i) {
    const ConvCase c = random_case(rng, true);
    switch (i % 4) {
      case 0: check_conv_transpose2d<T, nn::Identity>(c, 200 + i); break;
      case 1: check_conv_transpose2d<T, nn::Relu>(c, 200 + i); break;
      case 2: check_conv_transpose2d<T, nn::Sigmoid>(c, 200 + i); break;
      default: check_conv_transpose2d<T, nn::Tanh>(c, 200 + i); break;
    }
  }
}

TEST_CASE("gpu conv layers: wrong shapes are errors") {
  prilo::Rng rng(5);
  const nn::Conv2d<double> host({2, 5, 5}, 3, 3, 1, 1, rng);
  const prilo::gpu::Conv2d<double> dev(host);
  DeviceMatrix<double> y;
  CHECK_THROWS_AS(dev.forward(DeviceMatrix<double>(Mat<double>::Zero(49, 2)), y), prilo::invalid_input);
  nn::Conv2d<double> other({2, 6, 6}, 3, 3, 1, 1, rng);
  CHECK_THROWS_WITH(dev.download(other), doctest::Contains("another geometry"));
}

// ---- the conv decoder ----

namespace {

/// A small conv VAE (8×8 images, latent 5): decoder Dense(5 → 4·2·2) + ReLU →
/// ConvTranspose2d(4 → 3, k4 s2 p1) + ReLU → ConvTranspose2d(3 → 1, k4 s2 p1) + sigmoid.
template <class T>
nn::ConvVae<T> small_conv_vae() {
  return nn::ConvVae<T>(nn::ConvVaeSizes{.image = {1, 8, 8}, .latent = 5, .channels1 = 3, .channels2 = 4}, 7);
}

}  // namespace

TEST_CASE_TEMPLATE("the device conv decoder agrees with the host one at every split point", T, float, double) {
  auto vae = small_conv_vae<T>();
  const auto& host = vae.decoder();
  prilo_cuda_test::check_split_ranges<T>(host, prilo::gpu::Sequential(host), 9, 3);
}

TEST_CASE("the device conv decoder's weight VJP agrees with the host one (double)") {
  using T = double;
  auto vae = small_conv_vae<T>();
  auto& host = vae.decoder();
  prilo::gpu::Sequential dev(host);
  prilo::Rng rng(4);
  const Mat<T> z = rng.normal_matrix<T>(host.dim(0), 6);
  const Mat<T> gy = rng.normal_matrix<T>(host.dim(3), 6);
  typename std::decay_t<decltype(host)>::trace_type htr;
  prilo::gpu::Trace<T> dtr;
  host.forward(0, 3, z, htr);
  dev.forward(0, 3, DeviceMatrix<T>(z), dtr);
  host.zero_grad();
  dev.zero_grad();
  CHECK(rel_err(dev.vjp_weights(dtr, DeviceMatrix<T>(gy)).download(), host.vjp_weights(htr, gy)) < 1e-10);
  CHECK(rel_err(dev.layer<0>().grad_weight().download(), host.module<0>().grad_weight()) < 1e-10);
  CHECK(rel_err(dev.layer<1>().grad_weight().download(), host.module<1>().grad_weight()) < 1e-10);
  CHECK(rel_err(Mat<T>(dev.layer<1>().grad_bias().download()), Mat<T>(host.module<1>().grad_bias())) < 1e-10);
  CHECK(rel_err(dev.layer<2>().grad_weight().download(), host.module<2>().grad_weight()) < 1e-10);
  CHECK(rel_err(Mat<T>(dev.layer<2>().grad_bias().download()), Mat<T>(host.module<2>().grad_bias())) < 1e-10);
}

TEST_CASE("DPR and PRILO through the device conv decoder agree with the CPU without noise (double)") {
  using T = double;
  auto vae = small_conv_vae<T>();
  const auto& host = vae.decoder();
  const auto dev = prilo::gpu::OnDevice{}.generator(host);
  const prilo::Fourier2d<T> op(8, 8);
  const prilo::gpu::Fourier2d<T> gop(op);
  prilo::Rng rng(6);
  const Mat<T> x_true = host(rng.normal_matrix<T>(5, 3));
  const Mat<T> y = op.apply(x_true).cwiseAbs();
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> closs(op, y);
  const prilo::gpu::MagnitudeLoss<T> gloss(gop, y);
  const Mat<T> z0 = rng.normal_matrix<T>(5, 3);

  prilo::DprOptions<T> dopt;
  dopt.phase.steps = 60;
  dopt.noise.enabled = false;
  prilo::Rng r1(1), r2(1);
  const auto c = prilo::dpr(host, closs, z0, dopt, r1);
  const auto g = prilo::dpr(dev, gloss, DeviceMatrix<T>(z0), dopt, r2);
  CHECK((g.x - c.x).cwiseAbs().maxCoeff() < 1e-8);
  CHECK((g.magnitude_error - c.magnitude_error).cwiseAbs().maxCoeff() < 1e-10);

  prilo::PriloOptions<T> popt;  // chained: forward phases on z1 and z2
  popt.reading = prilo::PriloReading::chained;
  popt.initial.steps = 30;
  popt.stages = {{.layer = 1, .repetitions = 1, .forward = {.steps = 30, .radius = T(5), .learning_rate = T(0.02)}},
                 {.layer = 2, .repetitions = 1, .forward = {.steps = 30, .radius = T(5), .learning_rate = T(0.02)}}};
  popt.noise.enabled = false;
  const auto cp = prilo::prilo_solve(host, closs, z0, popt, r1);
  const auto gp = prilo::prilo_solve(dev, gloss, DeviceMatrix<T>(z0), popt, r2);
  CHECK(cp.phases.size() == gp.phases.size());
  CHECK((gp.x - cp.x).cwiseAbs().maxCoeff() < 1e-7);
}

TEST_CASE("run_method on the device placement runs the conv VAE (DPR-MII)") {
  using T = float;
  auto vae = small_conv_vae<T>();
  const prilo::Fourier2d<T> op(8, 8);
  prilo::Rng rng(8);
  const Mat<T> y = op.apply(vae.decoder()(rng.normal_matrix<T>(5, 2))).cwiseAbs();
  prilo::ReconstructionConfig<T> cfg;
  cfg.dpr.phase.steps = 20;
  cfg.mii.candidates = 64;
  const auto r = prilo::run_method(prilo::gpu::OnDevice{}, prilo::parse_method("dpr-mii"), vae, op, y, cfg);
  CHECK(r.best.x.rows() == 64);
  CHECK(r.best.x.cols() == 2);
  CHECK(r.best.x.allFinite());
}

}  // namespace prilo_test_cuda_conv

// Cross-backend tests of the CUDA backend: every GPU kernel against the CPU implementation on
// identical inputs (main.cu: without a usable CUDA device the suite prints a message and passes).
#include <doctest/doctest.h>

#include <prilo/backend/cuda.cuh>
#include <prilo/nn/linear.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/projection/l1_ball.hpp>
#include <prilo/random.hpp>
#include <prilo/schedule/noise.hpp>

#include "device_checks.cuh"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

// Each test file in its own namespace, so that unity builds can combine them (tests/cuda/CMakeLists.txt).
namespace prilo_test_cuda {

namespace {

using prilo::Mat;
using prilo::Vec;
using prilo::gpu::DeviceMatrix;
using prilo_cuda_test::rel_err;
using prilo_cuda_test::tol;

template <class T>
Mat<T> randn(prilo::Rng& rng, Eigen::Index r, Eigen::Index c, double sigma = 1.0) {
  return rng.normal_matrix<T>(r, c, sigma);
}

}  // namespace

static_assert(prilo::Backend<prilo::cuda>);
static_assert(std::is_same_v<prilo::cuda::matrix<float>, prilo::gpu::DeviceMatrix<float>>);

TEST_CASE("cuda backend tag") {
  CHECK(std::string(prilo::cuda::name) == "cuda");
  CHECK(prilo::cuda::threads() >= 1);
  CHECK(prilo::gpu::device_count() >= 1);
}

TEST_CASE_TEMPLATE("DeviceMatrix round trips real and complex batches", T, float, double) {
  prilo::Rng rng(1);
  const Mat<T> a = randn<T>(rng, 13, 7);
  DeviceMatrix<T> d(a);
  CHECK(d.rows() == 13);
  CHECK(d.cols() == 7);
  CHECK(d.download() == a);

  DeviceMatrix<T> moved = std::move(d);
  CHECK(d.data() == nullptr);
  CHECK(d.size() == 0);
  CHECK(moved.download() == a);
  DeviceMatrix<T> copy = moved.clone();
  CHECK(copy.download() == a);
  copy.set_zero();
  CHECK(copy.download().isZero(0));
  prilo::gpu::fill(copy, T(3));
  CHECK(prilo::gpu::sum(copy) == doctest::Approx(3.0 * 13 * 7));

  prilo::CMat<T> c(5, 4);
  for (Eigen::Index i = 0; i < c.size(); ++i) c.data()[i] = std::complex<T>(T(i), T(-2 * i));
  prilo::cuda::complex_matrix<T> dc(c);
  CHECK(dc.download() == c);

  DeviceMatrix<T> empty(0, 9);
  CHECK(empty.download().cols() == 9);
}

TEST_CASE("DeviceMatrix refuses a shape whose byte count overflows, before allocating") {
  const Eigen::Index big = Eigen::Index(1) << 40;
  CHECK_THROWS_WITH_AS(DeviceMatrix<float>(big, big), doctest::Contains("overflows the size in bytes"),
                       prilo::invalid_input);
  DeviceMatrix<double> m;
  CHECK_THROWS_AS(m.resize(std::numeric_limits<Eigen::Index>::max() / 8 + 1, 1), prilo::invalid_input);
  CHECK_THROWS_AS(m.resize(big, -1), prilo::invalid_input);
  CHECK(m.empty());
  CHECK(m.data() == nullptr);
  m.resize(big, 0);  // no bytes at all
  CHECK(m.rows() == big);
}

TEST_CASE("errors name the failing call") {
  void* p = nullptr;
  try {
    PRILO_CUDA_CHECK(cudaMalloc(&p, std::size_t(1) << 62));
    FAIL("expected cuda_error");
  } catch (const prilo::gpu::cuda_error& e) {
    CHECK(std::string(e.what()).find("cudaMalloc") != std::string::npos);
  }
  try {
    auto plan = prilo::gpu::FftPlan::many_2d(-1, 4, CUFFT_R2C, 1);
    FAIL("expected cuda_error");
  } catch (const prilo::gpu::cuda_error& e) {
    CHECK(std::string(e.what()).find("cufftMakePlanMany") != std::string::npos);
  }
  DeviceMatrix<float> x(3, 2), centre(3, 1), wrong(2, 2);
  CHECK_THROWS_AS(prilo::gpu::L1Ball<float>{}.project(x, centre), prilo::invalid_input);  // radius not set
  CHECK_THROWS_AS(prilo::gpu::L1Ball<float>{.radius = 1.f}.project(x, wrong), prilo::invalid_input);
}

TEST_CASE_TEMPLATE("gemm agrees with Eigen for every transpose", T, float, double) {
  prilo::Rng rng(2);
  const Eigen::Index m = 37, k = 53, n = 29;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const Mat<T> a = ta ? randn<T>(rng, k, m) : randn<T>(rng, m, k);
      const Mat<T> b = tb ? randn<T>(rng, n, k) : randn<T>(rng, k, n);
      Mat<T> c = randn<T>(rng, m, n);
      Mat<T> want = c;
      prilo::cpu::gemm(bool(ta), bool(tb), T(0.5), a, b, T(-2), want);
      DeviceMatrix<T> da(a), db(b), dc(c);
      prilo::cuda::gemm(bool(ta), bool(tb), T(0.5), da, db, T(-2), dc);
      CHECK(rel_err(dc.download(), want) < tol<T>());
      DeviceMatrix<T> fresh;
      prilo::gpu::BlasHandle h;
      prilo::gpu::gemm(h, bool(ta), bool(tb), T(1), da, db, T(0), fresh);
      Mat<T> want0(m, n);
      prilo::cpu::gemm(bool(ta), bool(tb), T(1), a, b, T(0), want0);
      CHECK(rel_err(fresh.download(), want0) < tol<T>());
    }
  }
  DeviceMatrix<T> a(3, 4), b(5, 2), c;
  CHECK_THROWS_AS(prilo::gpu::gemm(prilo::gpu::default_blas_handle(), false, false, T(1), a, b, T(0), c),
                  prilo::invalid_input);
  // C may not be A or B on any entry point (β = 0 would resize C, i.e. free A, before cuBLAS reads it)
  DeviceMatrix<T> sq = DeviceMatrix<T>::zeros(4, 4), other = DeviceMatrix<T>::zeros(4, 4);
  const T* before = sq.data();
  prilo::gpu::BlasHandle h;
  CHECK_THROWS_WITH_AS(prilo::gpu::gemm(h, false, false, T(1), sq, other, T(0), sq), doctest::Contains("also an input"),
                       prilo::invalid_input);
  CHECK_THROWS_WITH_AS(prilo::cuda::gemm(false, true, T(1), other, sq, T(1), sq), doctest::Contains("also an input"),
                       prilo::invalid_input);
  CHECK_THROWS_WITH_AS(gemm(prilo::gpu::CudaExecutor{}, true, false, T(1), sq, other, T(0), sq),
                       doctest::Contains("also an input"), prilo::invalid_input);
  CHECK(sq.data() == before);
  CHECK(sq.rows() == 4);
}

TEST_CASE_TEMPLATE("max_abs_diff does not hide a NaN, wherever it is", T, float, double) {
  prilo::Rng rng(9);
  const Mat<T> a = randn<T>(rng, 257, 9);
  const DeviceMatrix<T> da(a);
  CHECK(prilo::gpu::max_abs_diff(da, da) == T(0));
  for (const Eigen::Index at : {Eigen::Index(0), Eigen::Index(1), Eigen::Index(1000), a.size() - 1}) {
    CAPTURE(at);
    Mat<T> b = a;
    b.data()[at] = std::numeric_limits<T>::quiet_NaN();
    const DeviceMatrix<T> db(b);
    CHECK(std::isnan(prilo::gpu::max_abs_diff(da, db)));
    CHECK(std::isnan(prilo::gpu::max_abs_diff(db, da)));
  }
}

template <class T, class Act>
void check_dense(std::uint64_t seed) {
  prilo::Rng rng(seed);
  const Eigen::Index in = 70, out = 45, batch = 33;
  prilo::nn::Dense<T, Act> cpu(in, out, rng);
  prilo::gpu::Dense<T, Act> gpu(cpu);
  const Mat<T> x = randn<T>(rng, in, batch);
  const Mat<T> gy = randn<T>(rng, out, batch);

  Mat<T> y;
  cpu.forward(x, y);
  DeviceMatrix<T> dx(x), dy, dgy(gy), dgx;
  gpu.forward(dx, dy);
  CHECK(rel_err(dy.download(), y) < tol<T>());

  Mat<T> gx;
  cpu.zero_grad();
  cpu.backward(x, y, gy, &gx, true);
  cpu.backward(x, y, gy, nullptr, true);  // accumulates twice
  gpu.zero_grad();
  gpu.backward(dx, dy, dgy, &dgx, true);
  gpu.backward(dx, dy, dgy, nullptr, true);
  CHECK(rel_err(dgx.download(), gx) < tol<T>());
  CHECK(rel_err(gpu.grad_weight().download(), cpu.grad_weight()) < tol<T>());
  CHECK(rel_err(Vec<T>(gpu.grad_bias().download().col(0)), cpu.grad_bias()) < tol<T>());

  prilo::nn::Dense<T, Act> back(in, out, rng);
  gpu.download(back);
  CHECK(back.weight() == cpu.weight());
  CHECK(back.bias() == cpu.bias());

  // the input VJP alone agrees with the training one
  DeviceMatrix<T> dgx2, work;
  gpu.backward_input(dx, dy, dgy, dgx2, work);
  CHECK(prilo::gpu::max_abs_diff(dgx2, dgx) == T(0));

  // the same initial draws as the CPU layer, and work on another stream gives the same result
  prilo::Rng r1(seed + 50), r2(seed + 50);
  const prilo::nn::Dense<T, Act> drawn_cpu(in, out, r1);
  prilo::gpu::BlasHandle own;
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  own.set_stream(stream);
  prilo::gpu::CudaExecutor ex;
  ex.blas = &own;
  const prilo::gpu::Dense<T, Act> drawn_gpu(in, out, r2, ex);
  CHECK(drawn_gpu.host_weight() == drawn_cpu.weight());
  CHECK(Vec<T>(drawn_gpu.host_bias().col(0)) == drawn_cpu.bias());
  gpu.set_executor(ex);
  DeviceMatrix<T> dy2;
  gpu.forward(dx, dy2);
  CHECK(rel_err(dy2.download(stream), y) < tol<T>());
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

static_assert(std::is_same_v<prilo::gpu::Dense<float, prilo::nn::Relu>,
                             prilo::nn::Dense<float, prilo::nn::Relu, prilo::gpu::CudaExecutor>>,
              "gpu::Dense is nn::Dense on the CUDA executor");
static_assert(std::is_same_v<prilo::gpu::Dense<double>::vector_type, DeviceMatrix<double>>);

TEST_CASE_TEMPLATE("Dense forward/backward agree with prilo::nn::Dense", T, float, double) {
  SUBCASE("identity") {
    check_dense<T, prilo::nn::Identity>(3);
  }
  SUBCASE("relu") {
    check_dense<T, prilo::nn::Relu>(4);
  }
  SUBCASE("sigmoid") {
    check_dense<T, prilo::nn::Sigmoid>(5);
  }
  SUBCASE("tanh") {
    check_dense<T, prilo::nn::Tanh>(6);
  }
  SUBCASE("leaky relu") {
    check_dense<T, prilo::nn::LeakyRelu>(7);
  }
}

/// A ReLU module's input VJP with an infinite output cotangent at its dead units (y ≤ 0 in the
/// first act_rows rows of y, those the activation produced): the CPU's select gives 0 there, so
/// gx is finite, where gy·act'(y) would give inf·0 = NaN. The device must agree.
template <class Host, class Device>
void check_dead_relu_units(const Host& host, const Device& dev, Eigen::Index in_rows, Eigen::Index act_rows) {
  using T = typename Host::scalar;
  prilo::Rng rng(31);
  const Mat<T> x = randn<T>(rng, in_rows, 6);
  Mat<T> y, gx, work;
  host.forward(x, y);
  Mat<T> gy = randn<T>(rng, y.rows(), y.cols());
  int dead = 0;
  for (Eigen::Index j = 0; j < y.cols(); ++j)
    for (Eigen::Index i = 0; i < act_rows; ++i)
      if (!(y(i, j) > T(0))) {
        gy(i, j) = std::numeric_limits<T>::infinity();
        ++dead;
      }
  REQUIRE(dead > 0);
  host.backward_input(x, y, gy, gx, work);
  REQUIRE(gx.allFinite());
  DeviceMatrix<T> dgx, dwork;
  dev.backward_input(DeviceMatrix<T>(x), DeviceMatrix<T>(y), DeviceMatrix<T>(gy), dgx, dwork);
  const Mat<T> got = dgx.download();
  CHECK(got.allFinite());
  CHECK(rel_err(got, gx) < tol<T>());
}

TEST_CASE_TEMPLATE("a dead ReLU unit passes no cotangent back, infinite or NaN, as on the CPU", T, float, double) {
  namespace nn = prilo::nn;
  prilo::Rng rng(30);
  SUBCASE("Dense") {
    const nn::Dense<T, nn::Relu> h(7, 9, rng);
    check_dead_relu_units(h, prilo::gpu::Dense<T, nn::Relu>(h), 7, 9);
  }
  SUBCASE("Conv2d") {
    const nn::Conv2d<T, nn::Relu> h(nn::Shape3{2, 6, 6}, 3, 3, 1, 1, rng);
    check_dead_relu_units(h, prilo::gpu::Conv2d<T, nn::Relu>(h), 72, h.output_size(72));
  }
  SUBCASE("ConvTranspose2d") {
    const nn::ConvTranspose2d<T, nn::Relu> h(nn::Shape3{3, 2, 2}, 2, 4, 2, 1, 0, rng);
    check_dead_relu_units(h, prilo::gpu::ConvTranspose2d<T, nn::Relu>(h), 12, h.output_size(12));
  }
  SUBCASE("Modulate") {
    nn::Modulate<T, nn::Relu, false> h(3, 5, 4, rng);
    h.bias().setRandom();
    check_dead_relu_units(h, prilo::gpu::Modulate<T, nn::Relu, false>(h), 15 + 4, 15);
  }
}

TEST_CASE("gpu::Fourier2d refuses images of more than INT_MAX pixels, as the CPU operator does") {
  CHECK_THROWS_WITH_AS(prilo::Fourier2d<float>(65536, 65536), doctest::Contains("more than 2147483647 pixels"),
                       prilo::invalid_input);
  CHECK_THROWS_WITH_AS(prilo::gpu::Fourier2d<float>(65536, 65536), doctest::Contains("more than 2147483647 pixels"),
                       prilo::invalid_input);
  CHECK(prilo::gpu::Fourier2d<double>(46340, 46340).input_size() == Eigen::Index(46340) * 46340);
}

template <class T>
void check_fourier_loss(int h, int w, bool real_measurements, prilo::FourierScaling scaling) {
  CAPTURE(h);
  CAPTURE(w);
  CAPTURE(real_measurements);
  prilo::Rng rng(7 + h * 31 + w);
  const Eigen::Index batch = 19;
  prilo::Fourier2d<T> cpu_op(h, w, scaling);
  prilo::gpu::Fourier2d<T> gpu_op(cpu_op);
  Mat<T> y;
  if (real_measurements)
    y = prilo::measure(cpu_op, randn<T>(rng, cpu_op.input_size(), batch));
  else
    y = randn<T>(rng, cpu_op.output_size(), batch).cwiseAbs();
  const Mat<T> x = randn<T>(rng, cpu_op.input_size(), batch);

  prilo::MagnitudeLoss<prilo::Fourier2d<T>> cpu_loss(cpu_op, y);
  prilo::gpu::MagnitudeLoss<T> gpu_loss(gpu_op, y);
  CHECK(rel_err(gpu_loss.half_measurements().download(), cpu_loss.half_measurements()) < tol<T>());
  CHECK(rel_err(Vec<T>(gpu_loss.asymmetry().download().col(0)), cpu_loss.asymmetry()) < tol<T>());

  Mat<T> grad;
  const Vec<T> f = cpu_loss.value_and_gradient(x, grad);
  DeviceMatrix<T> dx(x), dgrad;
  const Vec<T> gf = gpu_loss.value_and_gradient(dx, dgrad);
  CHECK((gf - f).cwiseAbs().maxCoeff() / std::max(T(1), f.cwiseAbs().maxCoeff()) < tol<T>());
  CHECK(rel_err(dgrad.download(), grad) < tol<T>());
  const Vec<T> gv = gpu_loss.value(dx);
  CHECK((gv - f).cwiseAbs().maxCoeff() / std::max(T(1), f.cwiseAbs().maxCoeff()) < tol<T>());
  // repeated calls reuse the cached plan
  gpu_loss.value_and_gradient(dx, dgrad);
  CHECK(gpu_op.plans().size() == 2);
}

TEST_CASE_TEMPLATE("Fourier2d magnitude loss and gradient agree with the CPU", T, float, double) {
  for (const bool real_y : {true, false}) {
    check_fourier_loss<T>(28, 28, real_y, prilo::FourierScaling::unitary);
    check_fourier_loss<T>(7, 9, real_y, prilo::FourierScaling::unitary);
    check_fourier_loss<T>(6, 5, real_y, prilo::FourierScaling::none);
  }
}

template <class T>
void check_l1(Eigen::Index n, Eigen::Index batch, bool broadcast) {
  CAPTURE(n);
  CAPTURE(broadcast);
  prilo::Rng rng(11 + n);
  Mat<T> x = randn<T>(rng, n, batch, 2.0);
  const Mat<T> centre = randn<T>(rng, n, broadcast ? 1 : batch, 0.5);
  for (Eigen::Index j = 0; j < batch; j += 5) x.col(j) = centre.col(broadcast ? 0 : j) * T(1.0001);  // inside
  const T radius = T(0.3) * T(n);
  DeviceMatrix<T> dx(x), dc(centre);
  prilo::L1Ball<T>{.radius = radius}.project(x, centre);
  prilo::gpu::L1Ball<T>{.radius = radius}.project(dx, dc);
  const Mat<T> gx = dx.download();
  CHECK(rel_err(gx, x) < tol<T>());
  for (Eigen::Index j = 0; j < batch; j += 5) CHECK(gx.col(j) == x.col(j));  // untouched bit for bit
  for (Eigen::Index j = 0; j < batch; ++j)
    CHECK(double((gx.col(j) - centre.col(broadcast ? 0 : j)).cwiseAbs().sum()) <= double(radius) * (1 + 1e-4));
}

TEST_CASE_TEMPLATE("l1-ball projection agrees with the CPU default", T, float, double) {
  check_l1<T>(500, 64, false);
  check_l1<T>(500, 64, true);
  check_l1<T>(3, 10, false);
  check_l1<T>(4097, 7, false);

  prilo::Rng rng(12);
  const Mat<T> x = randn<T>(rng, 20, 4), c = randn<T>(rng, 20, 4);
  DeviceMatrix<T> dx(x), dc(c);
  prilo::gpu::L1Ball<T>{.radius = T(0)}.project(dx, dc);
  CHECK(dx.download() == c);

  Mat<T> bad = x;
  bad(3, 1) = std::numeric_limits<T>::quiet_NaN();
  DeviceMatrix<T> dbad(bad);
  DeviceMatrix<int> flag = DeviceMatrix<int>::zeros(1, 1);
  prilo::gpu::L1Ball<T>{.radius = T(1)}.project(dbad, dc, nullptr, flag.data());
  CHECK(flag.download()(0, 0) == 1);
}

TEST_CASE_TEMPLATE("Adam + l1 projection agrees with prilo::Adam without noise", T, float, double) {
  prilo::Rng rng(13);
  const Eigen::Index n = 100, batch = 32;
  Mat<T> x = randn<T>(rng, n, batch);
  const Mat<T> centre = randn<T>(rng, n, 1, 0.1);
  DeviceMatrix<T> dx(x), dc(centre), dg;
  prilo::AdamOptions<T> opt{.learning_rate = T(0.05)};
  prilo::Adam<T, prilo::L1Ball<T>> cpu(opt, prilo::L1Ball<T>{.radius = T(40)});
  prilo::gpu::Adam<T, prilo::gpu::L1Ball<T>> gpu(opt, prilo::gpu::L1Ball<T>{.radius = T(40)});
  prilo::Rng unused(1);  // no noise: neither optimiser draws
  for (int k = 0; k < 6; ++k) {
    const Mat<T> g = randn<T>(rng, n, batch);
    dg.upload(g);
    cpu.step(x, g, centre, rng);
    gpu.step(dx, dg, dc, unused);
  }
  CHECK(gpu.iteration() == cpu.iteration());
  CHECK(rel_err(dx.download(), x) < 10 * tol<T>());
}

TEST_CASE_TEMPLATE("gpu::L1Ball as the optimiser's projection reports non-finite columns to finish_phase", T, float,
                   double) {
  prilo::Rng rng(14);
  Mat<T> g = randn<T>(rng, 30, 4);
  g(2, 1) = std::numeric_limits<T>::quiet_NaN();
  const prilo::gpu::CudaExecutor ex;
  DeviceMatrix<T> dx(randn<T>(rng, 30, 4)), dg(g), dc = DeviceMatrix<T>::zeros(30, 1);
  prilo::gpu::Adam<T, prilo::gpu::L1Ball<T>> adam({.learning_rate = T(0.1)}, {.radius = T(1)}, {}, ex);
  prilo::Rng unused(1);
  adam.step(dx, dg, dc, unused);  // column 1 becomes NaN: counted on the device, as prilo::L1Ball's
  CHECK_THROWS_WITH_AS(finish_phase(ex, "phase"), doctest::Contains("phase: 1 column(s) became non-finite"),
                       prilo::invalid_input);
  finish_phase(ex, "next phase");  // the count was read and cleared
  const prilo::BlockProjection<T, prilo::gpu::L1Ball<T>> blocks{{10, 20}, {{.radius = T(1)}, {.radius = T(1)}}};
  project(ex, blocks, dx, dc);  // its parts count likewise
  CHECK_THROWS_AS(finish_phase(ex, "block phase"), prilo::invalid_input);
  // a phase that ended by an exception leaves its count: the next phase's start_phase drops it
  project(ex, prilo::L1Ball<T>{.radius = T(1)}, dx, dc);
  start_phase(ex);
  finish_phase(ex, "a fresh phase");
}

TEST_CASE("Adam gradient noise is seeded, N(0, sigma^2), and reproducible") {
  using T = double;
  const Eigen::Index n = 1000, batch = 200;
  const prilo::WellingTeh noise{.eta = 0.5, .gamma = 0.55};
  auto run = [&](std::uint64_t seed, Mat<T>& m) {
    DeviceMatrix<T> x = DeviceMatrix<T>::zeros(n, batch), g = DeviceMatrix<T>::zeros(n, batch), c;
    prilo::gpu::Adam<T, prilo::gpu::Unconstrained, prilo::WellingTeh> adam({}, {}, noise);
    prilo::Rng rng(seed);  // keys the device's Philox stream
    adam.step(x, g, c, rng);
    m = adam.first_moment().download();
    return x.download();
  };
  Mat<T> m1, m2, m3;
  const Mat<T> x1 = run(5, m1), x2 = run(5, m2), x3 = run(6, m3);
  CHECK(x1 == x2);
  CHECK(x1 != x3);
  const Mat<T> u = m1 / (1 - 0.9);  // the injected noise of step 0
  const double sigma = noise.sigma<double>(0);
  const double mean = u.mean();
  const double var = (u.array() - mean).square().mean();
  CHECK(std::abs(mean) < 5 * sigma / std::sqrt(double(u.size())));
  CHECK(var == doctest::Approx(sigma * sigma).epsilon(0.02));
}

TEST_CASE("gpu::Sequential's VJPs refuse a trace without a forward pass of the network, as nn::Sequential's do") {
  prilo::gpu::Sequential<float, prilo::nn::Relu> dev;
  prilo::nn::Sequential<float, prilo::nn::Dense<float, prilo::nn::Relu>> host;
  const DeviceMatrix<float> gy;
  const prilo::gpu::Trace<float> none;  // default-constructed: no activations
  CHECK_THROWS_WITH_AS(host.vjp_input(prilo::nn::Trace<float>{}, Mat<float>()),
                       doctest::Contains("the trace holds no forward pass of this network"), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(dev.vjp_input(none, gy), doctest::Contains("the trace holds no forward pass of this network"),
                       prilo::invalid_input);
  DeviceMatrix<float> out;
  CHECK_THROWS_AS(dev.vjp_input(none, gy, out), prilo::invalid_input);
  CHECK_THROWS_AS(dev.vjp_weights(none, gy), prilo::invalid_input);
  prilo::gpu::Trace<float> deeper;  // a trace of a two-module network: layers 0..2 of depth 1
  deeper.acts.resize(3);
  deeper.last = 2;
  CHECK_THROWS_WITH_AS(dev.vjp_input(deeper, gy), doctest::Contains("layers 0..2, depth 1"), prilo::invalid_input);
  deeper.first = 2;
  deeper.last = 1;
  CHECK_THROWS_AS(dev.vjp_weights(deeper, gy), prilo::invalid_input);
}

TEST_CASE("the GPU's measured FMA peak: the kernel did its work, the rate is under the chip's bound") {
  const prilo::gpu::PeakMeasurement m = prilo::gpu::measure_peak();
  CHECK(!m.device.empty());
  REQUIRE(m.rounds >= 16);
  // thread 0's sum is what the same chains give on the host (fmaf and std::fma round alike)
  const float host = prilo::gpu::peak_chain_sum(0.99999994f, 1e-7f, m.rounds, 0);
  CHECK(m.thread0_sum == doctest::Approx(host).epsilon(1e-6));
  // no CUDA chip has more than 128 FP32 lanes per multiprocessor: 2 FLOP per lane and cycle at
  // the maximum clock bound the rate from above (a miscounted FLOP total would exceed it)
  int dev = 0, sms = 0, khz = 0;
  PRILO_CUDA_CHECK(cudaGetDevice(&dev));
  PRILO_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  PRILO_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
  const double bound = double(sms) * 128 * 2 * double(khz) * 1e-6;  // GFLOP/s
  MESSAGE("GPU FP32 FMA peak: " << m.gflops << " GFLOP/s measured on " << m.device << ", bound " << bound);
  CHECK(m.gflops > 0);
  CHECK(m.gflops <= 1.02 * bound);
  prilo::gpu::EventTimer timer;  // the timer it measured with (and benchmarks/cuda's)
  timer.start();
  CHECK(timer.stop() >= 0.0);
}

}  // namespace prilo_test_cuda

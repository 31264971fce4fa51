// The library's element-wise passes in a translation unit built with a user's flags rather
// than prilo's own: this file is compiled with -O2 -fmath-errno (GCC's default errno
// semantics, the optimisation level of CMake's RelWithDebInfo) on top of the build's flags
// (benchmarks/CMakeLists.txt). Under these flags GCC does not vectorise a plain loop that calls
// std::sqrt (sqrt may set errno), and at -O2 it vectorises only loops it can prove free of
// aliasing without run-time checks; the library writes such passes on explicit SIMD vectors
// (prilo/fft/lanes.hpp) so that they keep their speed, and their bits, at any -O level and
// -ffp-contract or -f(no-)math-errno setting (not under -ffast-math). The vectors are the
// build's: -march=native here, as in prilo's own builds (AVX-512 on the machines measured);
// a user who builds without -march gets 128-bit ones.
//
// Methodology:
//  * adam/float/3136x256: the CPU executor's adam_update (σ = 0: read x, m, v, g, write x, m,
//    v) on 3136 × 256 floats (a conv VAE's split point of 64 × 7 × 7 maps for 256
//    image-restarts), one thread. ratio_min: the fastest round of adam_update against the
//    fastest round of the same update written as the plain loop (the formula of
//    tests/test_executor.cpp's reference) in this file, alternating (timing.hpp); below 1 means
//    the library's pass is faster. (Its bits are the tests' business: tests/test_executor.cpp
//    checks them against the formula with each multiply-add fused where the target has FMA;
//    the plain loop here is fused wherever the compiler chooses.)
//  * adam_noise/float/3136x256: the same with gradient noise drawn in the pass (σ = 0.01); the
//    plain loop adds the same draws (Rng::normal_block) block by block.
//  * conv_decoder/{forward,vjp_input}/float/b256/t1: the conv VAE's whole decoder at batch 256,
//    one thread, the same function as bench_conv's rows of the same name (conv_workloads.hpp;
//    bench_conv runs it with prilo's flags: compare the two binaries' GFLOPS in one sitting).
//  * mlp_decoder/{forward,vjp_input}/float/b1024/t1: the MLP VAE's decoder (100 → 500 → 500 →
//    784, ReLU, ReLU, sigmoid) at batch 1024, one thread: compare bench_mlp's
//    decoder/{forward,vjp_input}/float/b1024/t1 (the same network and batch; GFLOPS counts the
//    products). Its dense layers' bias + ReLU (bias_activation) run in Eigen packets, which at
//    -O2 GCC's plain loop did not (the output and the bias may alias).
//  * conv_enc1/{forward,train}/float/b256/t1: the conv VAE's first encoder layer, one thread
//    (conv_workloads.hpp); compare bench_conv's layer/enc1_conv_1x28x28_to_32x14x14/… rows.
//    The direct kernels keep their accumulators in registers through prilo::static_for, which
//    at -O2 GCC's loops of constant count did not, and their in-register transposes inline
//    (PRILO_FLATTEN), which at -O2 GCC called out of line.
//  * l1ball_centred/newton_inlined/float/6272x128/r10: the l1 policy L1Ball<float> in place on
//    128 columns of 6272 around their centres, the same function and data as bench_projection's
//    row of the same name (projection_workloads.hpp; compare the two binaries' times in one
//    sitting). Its passes run on the build's SIMD vectors (l1_ball.hpp), which at -O2 GCC's plain
//    loops of run-time length did not (the centred projection was 7x slower).
//  * loss_lanes/float/28x28/b1024/t1: the DFT magnitude loss and its gradient on
//    FourierEngine::lanes for 1024 images of 28 x 28, one thread; compare bench_fft_loss's row of
//    the same name. The lanes' butterflies and transposes are on prilo::static_for.
// Run: OMP_NUM_THREADS=1 ./bench_user_flags
#include <prilo/backend/cpu.hpp>
#include <prilo/exec/executor.hpp>
#include <prilo/nn/vae.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>

#include <benchmark/benchmark.h>

#include "conv_workloads.hpp"
#include "projection_workloads.hpp"
#include "timing.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace {

using namespace prilo_bench;
using T = float;
using Mat = prilo::Mat<T>;
using Index = Eigen::Index;

/// Adam's update as a plain loop over raw pointers (the library's form before it was written
/// on vectors; with -O3 -fno-math-errno GCC vectorises it).
void plain_adam(Mat& x, Mat& m, Mat& v, const Mat& g, const prilo::AdamStep<T>& c, T sigma, prilo::Rng& rng) {
  T* xd = x.data();
  T* md = m.data();
  T* vd = v.data();
  const T* gd = g.data();
  alignas(64) float u[prilo::Rng::kNormalBlock] = {};
  for (Index i0 = 0; i0 < x.size(); i0 += prilo::Rng::kNormalBlock) {
    const int len = int(std::min<Index>(prilo::Rng::kNormalBlock, x.size() - i0));
    if (sigma > T(0)) rng.normal_block(u, len);
    for (int k = 0; k < len; ++k) {
      const Index i = i0 + k;
      const T gi = sigma > T(0) ? gd[i] + sigma * u[k] : gd[i];
      md[i] = c.beta1 * md[i] + (T(1) - c.beta1) * gi;
      vd[i] = c.beta2 * vd[i] + (T(1) - c.beta2) * gi * gi;
      xd[i] -= c.learning_rate * (md[i] * c.c1) / (std::sqrt(vd[i] * c.c2) + c.epsilon);
    }
  }
}

void bm_adam(benchmark::State& state, Index rows, Index cols, T sigma) {
  prilo::cpu::set_threads(1);
  const prilo::CpuExecutor ex;
  prilo::Rng data(29);
  const Mat g = data.normal_matrix<T>(rows, cols);
  Mat x = data.normal_matrix<T>(rows, cols), m = Mat::Zero(rows, cols), v = Mat::Zero(rows, cols), scratch;
  const prilo::AdamStep<T> c{
      .beta1 = T(0.9), .beta2 = T(0.999), .c1 = T(1), .c2 = T(1), .learning_rate = T(1e-3), .epsilon = T(1e-8)};
  prilo::Rng rng(31);
  auto lib = [&] { prilo::adam_update(ex, x, m, v, g, c, sigma, rng, scratch); };
  auto plain = [&] { plain_adam(x, m, v, g, c, sigma, rng); };
  lib();
  const Times t0 = now();
  for (auto _ : state) {
    lib();
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  const Times tm = per_iteration(state, t0);
  state.counters["ratio_min"] = interleaved(plain, lib, tm.wall).ratio;
  state.SetItemsProcessed(state.iterations() * rows * cols);
}

/// The MLP VAE's decoder at batch 1024, one thread: work "forward" or "vjp_input".
void bm_mlp_decoder(benchmark::State& state, bool vjp) {
  prilo::cpu::set_threads(1);
  static prilo::nn::Vae<T> vae{784, 500, 100, 1};
  auto& dec = vae.decoder();
  prilo::Rng rng(7);
  const Mat z = rng.normal_matrix<T>(100, 1024), gy = rng.normal_matrix<T>(784, 1024);
  prilo::nn::Trace<T> tr;
  auto run = [&] {
    dec.forward(0, dec.depth(), z, tr);
    if (vjp) benchmark::DoNotOptimize(dec.vjp_input(tr, gy));
    benchmark::DoNotOptimize(tr.output().data());
    benchmark::ClobberMemory();
  };
  run();
  for (auto _ : state) run();
  state.counters["GFLOPS"] = benchmark::Counter(dec.flops(0, dec.depth()) * 1024.0 * (vjp ? 2 : 1),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

/// The DFT magnitude loss and its gradient on FourierEngine::lanes: 1024 images of 28 x 28.
void bm_loss_lanes(benchmark::State& state) {
  prilo::cpu::set_threads(1);
  constexpr Index b = 1024;
  const prilo::Fourier2d<T> op(28, 28, prilo::FourierScaling::unitary, prilo::FourierEngine::lanes);
  prilo::Rng rng(11);
  Mat x(op.input_size(), b), truth(op.input_size(), b), grad(op.input_size(), b);
  for (Index k = 0; k < x.size(); ++k) x.data()[k] = T(rng.uniform());
  for (Index k = 0; k < truth.size(); ++k) truth.data()[k] = T(rng.uniform());
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(op, prilo::measure(op, truth));
  benchmark::DoNotOptimize(loss.value_and_gradient(x, grad));  // warm-up
  for (auto _ : state) {
    auto l = loss.value_and_gradient(x, grad);
    benchmark::DoNotOptimize(l.data());
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * b);
}

const bool registered = [] {
  benchmark::RegisterBenchmark("adam/float/3136x256/t1", [](benchmark::State& s) {
    bm_adam(s, 3136, 256, T(0));
  })->UseRealTime();
  benchmark::RegisterBenchmark("adam_noise/float/3136x256/t1", [](benchmark::State& s) {
    bm_adam(s, 3136, 256, T(0.01));
  })->UseRealTime();
  for (const char* w : {"forward", "vjp_input"})
    benchmark::RegisterBenchmark(("conv_decoder/" + std::string(w) + "/float/b256/t1").c_str(),
                                 [w](benchmark::State& s) { conv_decoder(s, w, 1); })
        ->UseRealTime();
  for (const bool vjp : {false, true})
    benchmark::RegisterBenchmark(vjp ? "mlp_decoder/vjp_input/float/b1024/t1" : "mlp_decoder/forward/float/b1024/t1",
                                 [vjp](benchmark::State& s) { bm_mlp_decoder(s, vjp); })
        ->UseRealTime();
  for (const char* w : {"forward", "train"})
    benchmark::RegisterBenchmark(("conv_enc1/" + std::string(w) + "/float/b256/t1").c_str(), [w](benchmark::State& s) {
      conv_enc1(s, w, 1);
    })->UseRealTime();
  benchmark::RegisterBenchmark("l1ball_centred/newton_inlined/float/6272x128/r10", [](benchmark::State& s) {
    prilo_bench::l1ball_centred<T, prilo::L1Ball<T>>(s, T(0.1));
  })->UseRealTime();
  benchmark::RegisterBenchmark("loss_lanes/float/28x28/b1024/t1", bm_loss_lanes)->UseRealTime();
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

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
//    one thread, as bench_conv's rows of the same name (which run with prilo's flags: compare
//    the two binaries' GFLOPS in one sitting); its direct kernels keep their accumulators in
//    registers through prilo::static_for, which at -O2 GCC's loops of constant count did not.
// Run: OMP_NUM_THREADS=1 ./bench_user_flags
#include <prilo/backend/cpu.hpp>
#include <prilo/exec/executor.hpp>
#include <prilo/nn/conv_vae.hpp>

#include <benchmark/benchmark.h>

#include "timing.hpp"

#include <algorithm>
#include <cmath>

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

/// The conv VAE's decoder at batch 256 (bench_conv's bm_conv_decoder, one thread).
void bm_conv_decoder(benchmark::State& state, bool vjp) {
  prilo::cpu::set_threads(1);
  static prilo::nn::ConvVae<float> vae(prilo::nn::ConvVaeSizes{}, 3);
  auto& dec = vae.decoder();
  prilo::Rng rng(5);
  const Mat z = rng.normal_matrix<T>(100, 256), gy = rng.normal_matrix<T>(784, 256);
  prilo::nn::Trace<T> tr;
  auto run = [&] {
    dec.forward(0, dec.depth(), z, tr);
    if (vjp) benchmark::DoNotOptimize(dec.vjp_input(tr, gy));
  };
  run();
  for (auto _ : state) run();
  const double f = dec.flops(0, dec.depth()) * 256.0 * (vjp ? 2 : 1);
  state.counters["GFLOPS"] = benchmark::Counter(f, benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  benchmark::RegisterBenchmark("adam/float/3136x256/t1", [](benchmark::State& s) {
    bm_adam(s, 3136, 256, T(0));
  })->UseRealTime();
  benchmark::RegisterBenchmark("adam_noise/float/3136x256/t1", [](benchmark::State& s) {
    bm_adam(s, 3136, 256, T(0.01));
  })->UseRealTime();
  benchmark::RegisterBenchmark("conv_decoder/forward/float/b256/t1", [](benchmark::State& s) {
    bm_conv_decoder(s, false);
  })->UseRealTime();
  benchmark::RegisterBenchmark("conv_decoder/vjp_input/float/b256/t1", [](benchmark::State& s) {
    bm_conv_decoder(s, true);
  })->UseRealTime();
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

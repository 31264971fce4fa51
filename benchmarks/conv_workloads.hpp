// Workloads of the conv VAE that more than one benchmark binary times: bench_conv with prilo's
// flags, bench_user_flags with a user's (-O2 -fmath-errno). Each binary compiles these
// functions with its own flags (inline, in separate programs), so the two binaries' rows of the
// same name compare the flags, not the code.
#pragma once

#include <prilo/backend/cpu.hpp>
#include <prilo/nn/conv.hpp>
#include <prilo/nn/conv_vae.hpp>
#include <prilo/random.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace prilo_bench {

/// The conv VAE's whole decoder (dense 100 → 64×7×7, ConvTranspose2d to 32×14×14 and 1×28×28)
/// at batch 256 on `threads` threads: work "forward", "vjp_input" (forward + input VJP, the
/// solvers' step) or "vjp_weights" (forward + weight VJP, training) — the items
/// compare_pytorch.py times PyTorch on ("conv_decoder/…"). GFLOPS counts the products.
inline void conv_decoder(benchmark::State& state, const std::string& work, int threads) {
  const int products = work == "forward" ? 1 : work == "vjp_input" ? 2 : work == "vjp_weights" ? 3 : 0;
  if (products == 0) {
    std::fprintf(stderr, "conv_decoder: work must be forward, vjp_input or vjp_weights, got '%s'\n", work.c_str());
    std::exit(2);
  }
  prilo::cpu::set_threads(threads);
  static prilo::nn::ConvVae<float> vae(prilo::nn::ConvVaeSizes{}, 3);
  auto& dec = vae.decoder();
  prilo::Rng rng(5);
  const prilo::Mat<float> z = rng.normal_matrix<float>(100, 256);
  const prilo::Mat<float> gy = rng.normal_matrix<float>(784, 256);
  prilo::nn::Trace<float> tr;
  auto run = [&] {
    dec.forward(0, dec.depth(), z, tr);
    if (products == 2) benchmark::DoNotOptimize(dec.vjp_input(tr, gy));
    if (products == 3) benchmark::DoNotOptimize(dec.vjp_weights(tr, gy));
  };
  run();
  for (auto _ : state) run();
  state.counters["GFLOPS"] =
      benchmark::Counter(dec.flops(0, dec.depth()) * 256.0 * products, benchmark::Counter::kIsIterationInvariantRate);
  dec.zero_grad();
}

/// The conv VAE's first encoder layer (Conv2d<LeakyRelu> 1×28×28 → 32×14×14, k 4, s 2, p 1, on
/// the direct kernels' pixel and weight tiles) at batch 256 on `threads` threads: work "forward"
/// (the -resolve methods' and the LI starts' encoder) or "train" (forward, then the input and
/// weight VJPs). GFLOPS counts the products, as bench_conv's rows
/// layer/enc1_conv_1x28x28_to_32x14x14/… (which also honour PRILO_CONV_BLOCK and
/// PRILO_CONV_ALGORITHM; this layer takes its defaults: compare with those unset).
inline void conv_enc1(benchmark::State& state, const std::string& work, int threads) {
  const int products = work == "forward" ? 1 : work == "train" ? 3 : 0;
  if (products == 0) {
    std::fprintf(stderr, "conv_enc1: work must be forward or train, got '%s'\n", work.c_str());
    std::exit(2);
  }
  prilo::cpu::set_threads(threads);
  prilo::Rng rng(5);
  prilo::nn::Conv2d<float, prilo::nn::LeakyRelu> conv({1, 28, 28}, 32, 4, 2, 1, rng);
  const prilo::Mat<float> x = rng.normal_matrix<float>(conv.input_size(), 256);
  const prilo::Mat<float> gy = rng.normal_matrix<float>(conv.output_shape().size(), 256);
  prilo::Mat<float> y, gx;
  auto run = [&] {
    conv.forward(x, y);
    if (products == 3) conv.backward(x, y, gy, &gx, true);
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  };
  run();
  for (auto _ : state) run();
  state.counters["GFLOPS"] =
      benchmark::Counter(conv.flops_per_sample() * 256.0 * products, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace prilo_bench

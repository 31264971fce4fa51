// Benchmarks of the decoder MLP 100→500→500→784 (ReLU, ReLU, sigmoid) at batch 1024, float,
// against the bare Eigen matrix products of the same shapes and a large square GEMM ("peak").
//
// Methodology:
//  * Network: prilo::nn::Vae<float>(784, 500, 100, 1).decoder() (random initialisation; speed
//    does not depend on the weights). Input: N(0, 1) latents, 100 × 1024; output cotangent:
//    N(0, 1), 784 × 1024. The Trace is reused between iterations, as the solvers do.
//  * decoder_forward:      forward(0, 3, z, trace)
//    decoder_vjp_input:    forward + vjp_input (cotangent wrt the latent)         (solver step)
//    decoder_vjp_weights:  forward + vjp_weights (wrt the latent and the weights) (training)
//  * Baselines gemm_*: the bare products alone, into preallocated matrices (noalias):
//    forward W1 z, W2 h1, W3 h2; backward-input W3ᵀ g3, W2ᵀ g2, W1ᵀ g1; weights g3 h2ᵀ,
//    g2 h1ᵀ, g1 zᵀ (same shapes and transposition pattern as nn::Dense).
//  * ratio counter = wall time per iteration / the matching gemm_* baseline's (same threads),
//    measured in the same run; the baseline is registered immediately before. ratio_min:
//    alternating rounds of baseline and decoder after the timed loop, fastest round of each
//    (robust against other load on the machine: the headline figure). ratio_cpu: the
//    same with process CPU time (robust on a loaded machine for single-thread rows).
//  * FLOP counted as 2·m·n·k per product: forward 2·B·(100·500 + 500·500 + 500·784) = 1.417
//    GFLOP; vjp_input doubles it, vjp_weights triples it (bias, activations: not counted).
//    Counter GFLOPS = FLOP per second / 1e9.
//  * peak_gemm: C = A·B with 1024×1024 float matrices (2·1024³ FLOP), the practical single-core
//    FP32 peak of Eigen's GEMM on this CPU; pct_peak counters of the other rows refer to the
//    peak_gemm row of the same thread count.
//  * GFLOPS_best / pct_peak_best: from the fastest round (decoder, interleaved with its
//    baseline) and the fastest of 10 extra peak GEMMs: robust figures on a loaded machine.
//  * Threads 1 and 2 (prilo::cpu::set_threads: OpenMP and Eigen); wall-clock times.
//  * decoder_packed (builds with oneDNN): a solver step's decoder work at 128 columns, 1 thread,
//    with the weights packed (nn::Dense::pack_weights); ratio_min against the same decoder
//    unpacked, in alternating rounds.
// Run: OMP_NUM_THREADS=1 ./bench_mlp
#include <prilo/backend/cpu.hpp>
#include <prilo/nn/vae.hpp>
#include <prilo/random.hpp>

#include <benchmark/benchmark.h>

#include "timing.hpp"

#include <map>
#include <memory>
#include <string>

namespace {

using namespace prilo_bench;

using T = float;
using Mat = prilo::Mat<T>;
using Index = Eigen::Index;

constexpr Index kLatent = 100, kHidden = 500, kData = 784, kBatch = 1024;
constexpr double kForwardFlop = 2.0 * kBatch * (kLatent * kHidden + kHidden * kHidden + kHidden * kData);

enum class Work { forward, vjp_input, vjp_weights };
const char* name(Work w) {
  return w == Work::forward ? "forward" : (w == Work::vjp_input ? "vjp_input" : "vjp_weights");
}
double flop(Work w) {
  return kForwardFlop * (w == Work::forward ? 1 : (w == Work::vjp_input ? 2 : 3));
}

struct Setup {
  prilo::nn::Vae<T> vae{kData, kHidden, kLatent, 1};
  Mat z, gy;
  // bare-product buffers
  Mat w1, w2, w3, h1, h2, out, g1, g2, g3, gz, gw1, gw2, gw3;
  Setup() {
    prilo::Rng rng(7);
    z = rng.normal_matrix<T>(kLatent, kBatch);
    gy = rng.normal_matrix<T>(kData, kBatch);
    auto& d = vae.decoder();
    w1 = d.module<0>().weight();
    w2 = d.module<1>().weight();
    w3 = d.module<2>().weight();
    h1 = Mat(kHidden, kBatch);
    h2 = Mat(kHidden, kBatch);
    out = Mat(kData, kBatch);
    g3 = rng.normal_matrix<T>(kData, kBatch);
    g2 = Mat(kHidden, kBatch);
    g1 = Mat(kHidden, kBatch);
    gz = Mat(kLatent, kBatch);
    gw1 = Mat::Zero(kHidden, kLatent);
    gw2 = Mat::Zero(kHidden, kHidden);
    gw3 = Mat::Zero(kData, kHidden);
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

std::map<std::string, Times>& baseline_times() {
  static std::map<std::string, Times> m;
  return m;
}
std::map<int, double>& peak_gflops() {
  static std::map<int, double> m;
  return m;
}
std::map<int, double>& peak_best_gflops() {
  static std::map<int, double> m;
  return m;
}

void set_flops(benchmark::State& state, double flop_per_iter, double sec_per_iter, int threads) {
  state.counters["GFLOPS"] = flop_per_iter / sec_per_iter / 1e9;
  const auto pk = peak_gflops().find(threads);
  if (pk != peak_gflops().end()) state.counters["pct_peak"] = 100.0 * flop_per_iter / sec_per_iter / 1e9 / pk->second;
}

std::string key(Work w, int threads) {
  return std::string(name(w)) + "/t" + std::to_string(threads);
}

/// Bare Eigen products of one decoder pass (no bias, no activation).
void gemm_pass(Setup& s, Work w) {
  s.h1.noalias() = s.w1 * s.z;
  s.h2.noalias() = s.w2 * s.h1;
  s.out.noalias() = s.w3 * s.h2;
  if (w != Work::forward) {
    if (w == Work::vjp_weights) s.gw3.noalias() += s.g3 * s.h2.transpose();
    s.g2.noalias() = s.w3.transpose() * s.g3;
    if (w == Work::vjp_weights) s.gw2.noalias() += s.g2 * s.h1.transpose();
    s.g1.noalias() = s.w2.transpose() * s.g2;
    if (w == Work::vjp_weights) s.gw1.noalias() += s.g1 * s.z.transpose();
    s.gz.noalias() = s.w1.transpose() * s.g1;
  }
  benchmark::DoNotOptimize(s.out.data());
  benchmark::DoNotOptimize(s.gz.data());
  benchmark::ClobberMemory();
}

void bm_gemm(benchmark::State& state, Work w, int threads) {
  prilo::cpu::set_threads(threads);
  Setup& s = setup();
  const Times t0 = now();
  for (auto _ : state) {
    gemm_pass(s, w);
  }
  const Times t = per_iteration(state, t0);
  baseline_times()[key(w, threads)] = t;
  set_flops(state, flop(w), t.wall, threads);
}

/// The decoder itself.
void bm_decoder(benchmark::State& state, Work w, int threads) {
  prilo::cpu::set_threads(threads);
  Setup& s = setup();
  auto& dec = s.vae.decoder();
  prilo::nn::Trace<T> tr;
  Mat gz;
  auto pass = [&] {
    dec.forward(0, dec.depth(), s.z, tr);
    if (w == Work::vjp_input) gz = dec.vjp_input(tr, s.gy);
    if (w == Work::vjp_weights) gz = dec.vjp_weights(tr, s.gy);
    benchmark::DoNotOptimize(tr.output().data());
    benchmark::DoNotOptimize(gz.data());
    benchmark::ClobberMemory();
  };
  pass();  // warm-up: trace buffers
  const Times t0 = now();
  for (auto _ : state) pass();
  const Times t = per_iteration(state, t0);
  set_flops(state, flop(w), t.wall, threads);
  const auto it = baseline_times().find(key(w, threads));
  if (it != baseline_times().end()) {
    state.counters["ratio"] = t.wall / it->second.wall;
    state.counters["ratio_cpu"] = t.cpu / it->second.cpu;
    const Interleaved r = interleaved([&] { gemm_pass(s, w); }, pass, t.wall);
    state.counters["ratio_min"] = r.ratio;
    state.counters["GFLOPS_best"] = flop(w) / r.fn / 1e9;
    const auto pk = peak_best_gflops().find(threads);
    if (pk != peak_best_gflops().end()) state.counters["pct_peak_best"] = 100.0 * flop(w) / r.fn / 1e9 / pk->second;
  }
}

#if defined(PRILO_HAVE_ONEDNN)
/// A solver step's decoder work per thread (forward + vjp_input at 128 columns: 64 images × 4
/// restarts over 2 threads) with the weights packed once for oneDNN (nn::Dense::pack_weights)
/// against the same decoder unpacked (OpenBLAS or Eigen repacking them on every product).
/// ratio_min: packed / unpacked, fastest of alternating rounds in this run.
void bm_packed_step(benchmark::State& state, int threads) {
  prilo::cpu::set_threads(threads);
  Setup& s = setup();
  constexpr Index cols = 128;
  const Mat z = s.z.leftCols(cols), gy = s.gy.leftCols(cols);
  const auto& dec = s.vae.decoder();
  auto packed = dec;
  packed.pack_weights();
  prilo::nn::Trace<T> tr_plain, tr_packed;
  Mat gz_plain, gz_packed;
  const auto step = [&](const auto& d, prilo::nn::Trace<T>& tr, Mat& gz) {
    d.forward(0, d.depth(), z, tr);
    d.vjp_input(tr, gy, gz);
    benchmark::DoNotOptimize(gz.data());
    benchmark::ClobberMemory();
  };
  step(dec, tr_plain, gz_plain);
  step(packed, tr_packed, gz_packed);
  const Times t0 = now();
  for (auto _ : state) step(packed, tr_packed, gz_packed);
  const Times t = per_iteration(state, t0);
  const double f = flop(Work::vjp_input) * double(cols) / double(kBatch);
  set_flops(state, f, t.wall, threads);
  const Interleaved r =
      interleaved([&] { step(dec, tr_plain, gz_plain); }, [&] { step(packed, tr_packed, gz_packed); }, t.wall);
  state.counters["ratio_min"] = r.ratio;
  state.counters["GFLOPS_best"] = f / r.fn / 1e9;
  state.counters["GFLOPS_unpacked_best"] = f / r.base / 1e9;
}
#endif

/// Square 1024³ float GEMM: the practical FP32 peak of Eigen on this machine.
void bm_peak(benchmark::State& state, int threads) {
  prilo::cpu::set_threads(threads);
  constexpr Index n = 1024;
  prilo::Rng rng(3);
  const Mat a = rng.normal_matrix<T>(n, n), b = rng.normal_matrix<T>(n, n);
  Mat c(n, n);
  c.noalias() = a * b;  // warm-up
  const Times t0 = now();
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double gf = 2.0 * double(n) * n * n / per_iteration(state, t0).wall / 1e9;
  peak_gflops()[threads] = gf;
  state.counters["GFLOPS"] = gf;
  double best = 1e300;  // fastest of 10 extra calls (robust against other load)
  for (int r = 0; r < 10; ++r) {
    const Times t1 = now();
    c.noalias() = a * b;
    benchmark::ClobberMemory();
    best = std::min(best, now().wall - t1.wall);
  }
  peak_best_gflops()[threads] = 2.0 * double(n) * n * n / best / 1e9;
  state.counters["GFLOPS_best"] = peak_best_gflops()[threads];
}

const bool registered = [] {
  for (int t : {1, 2}) {
    const std::string ts = "/t" + std::to_string(t);
    benchmark::RegisterBenchmark(("peak_gemm/float/1024x1024x1024" + ts).c_str(), [t](benchmark::State& s) {
      bm_peak(s, t);
    })->UseRealTime();
    for (Work w : {Work::forward, Work::vjp_input, Work::vjp_weights}) {
      const std::string suffix = std::string("/") + name(w) + "/float/b1024" + ts;
      benchmark::RegisterBenchmark(("gemm" + suffix).c_str(), [w, t](benchmark::State& s) {
        bm_gemm(s, w, t);
      })->UseRealTime();
      benchmark::RegisterBenchmark(("decoder" + suffix).c_str(), [w, t](benchmark::State& s) {
        bm_decoder(s, w, t);
      })->UseRealTime();
    }
  }
#if defined(PRILO_HAVE_ONEDNN)
  benchmark::RegisterBenchmark("decoder_packed/step/float/b128/t1", [](benchmark::State& s) {
    bm_packed_step(s, 1);
  })->UseRealTime();
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

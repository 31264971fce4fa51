// The CPU's single-core peak FP32 rate, measured: independent chains of fused multiply-adds
// on the widest vectors the build targets (16 on AVX-512, 12 on AVX2 + FMA: as many as the
// registers hold, enough to cover the FMA latency on every current x86 core): the kernel of
// prilo::measure_peak_gflops (prilo/flops.hpp), which prilo-reconstruct's work table uses.
// benchmarks/make_tables.py states the decoder's products as a percentage of this figure
// (not of a GEMM's, which would only compare one GEMM with another).
#include <benchmark/benchmark.h>

#include <prilo/flops.hpp>

namespace {

void bm_peak_fma(benchmark::State& state) {
  constexpr long kRounds = 1;  // 4096 × kPeakVecChains chains of FMAs per call
  for (auto _ : state) {
    long rounds = kRounds;
    benchmark::DoNotOptimize(rounds);  // opaque: the (pure) call cannot be hoisted out of the loop
    float s = prilo::detail::fma_chains(rounds);
    benchmark::DoNotOptimize(s);
  }
  const double flop = 2.0 * prilo::detail::kPeakLanes * prilo::detail::kPeakVecChains * 4096 * kRounds;
  state.counters["GFLOPS"] = benchmark::Counter(flop * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(prilo::detail::kPeakIsa);
}

BENCHMARK(bm_peak_fma)->Name("peak_fma/float/t1")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

// The CPU's single-core peak FP32 rate, measured: 16 independent chains of fused
// multiply-adds on the widest vectors the build targets (AVX-512, else AVX2 + FMA), enough
// chains to cover the FMA latency on every current x86 core. benchmarks/make_tables.py
// states the decoder's products as a percentage of this figure (not of a GEMM's, which would
// only compare one GEMM with another).
#include <benchmark/benchmark.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

#if defined(__x86_64__) && defined(__AVX512F__)
using V = __m512;
constexpr int kLanes = 16;
inline V splat(float x) { return _mm512_set1_ps(x); }
inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline float lane0(V v) { return _mm512_cvtss_f32(v); }
constexpr const char* kIsa = "avx512";
#elif defined(__x86_64__) && defined(__FMA__)
using V = __m256;
constexpr int kLanes = 8;
inline V splat(float x) { return _mm256_set1_ps(x); }
inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline float lane0(V v) { return _mm256_cvtss_f32(v); }
constexpr const char* kIsa = "avx2_fma";
#else  // no FMA in the build's target (PRILO_NATIVE=OFF): scalar, labelled as such
using V = float;
constexpr int kLanes = 1;
inline V splat(float x) { return x; }
inline V fma(V a, V b, V c) { return a * b + c; }
inline float lane0(V v) { return v; }
constexpr const char* kIsa = "scalar (build without -march=native)";
#endif

void bm_peak_fma(benchmark::State& state) {
  constexpr int kChains = 16;
  constexpr long kInner = 4096;
  V acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = splat(0.5f + float(c));  // distinct: no chain can be merged
  const V a = splat(0.99999994f), b = splat(1e-7f);
  for (auto _ : state) {
    for (long i = 0; i < kInner; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], a, b);
    }
    benchmark::DoNotOptimize(acc);
  }
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += lane0(acc[c]);
  benchmark::DoNotOptimize(s);
  const double flop = 2.0 * kLanes * kChains * kInner;
  state.counters["GFLOPS"] = benchmark::Counter(flop * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(kIsa);
}

BENCHMARK(bm_peak_fma)->Name("peak_fma/float/t1")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

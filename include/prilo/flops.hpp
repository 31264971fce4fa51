// The FLOP account: what the solvers' products and FFTs cost, and the machine's measured
// peak to compare it with.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cache.hpp"
#include "core.hpp"
#include "parallel.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace prilo {

/// Floating-point operations, split by kind: products (dense matrix products in the
/// generator and in dense operators: 2 per multiply-add) and FFTs (the conventional
/// 2.5·N·log2(N) per real transform of N points). Element-wise passes (activations, Adam,
/// projections) are not counted: they are memory-bound, and a rate over them would flatter.
struct Flops {
  double products = 0;
  double fft = 0;
  double total() const { return products + fft; }
  Flops& operator+=(const Flops& o) {
    products += o.products;
    fft += o.fft;
    return *this;
  }
  friend Flops operator+(Flops a, const Flops& b) { return a += b; }
  friend Flops operator*(double s, Flops a) {
    a.products *= s;
    a.fft *= s;
    return a;
  }
};

/// Products of one forward pass through the layers between split points i and j, per
/// column: gen.flops(i, j) when the generator states it, else the dense-layer count
/// Σ_k 2·dim(k)·dim(k+1) (exact for chains of dense layers; a generator with other layers
/// should provide flops()). The input VJP of the same range costs the same.
template <class G>
double forward_flops(const G& gen, int i, int j) {
  if constexpr (requires {
                  { gen.flops(i, j) } -> std::convertible_to<double>;
                })
    return double(gen.flops(i, j));
  else {
    double f = 0;
    for (int k = i; k < j; ++k) f += 2.0 * double(gen.dim(k)) * double(gen.dim(k + 1));
    return f;
  }
}

/// One application of the operator to one column (op.flops() when it states it, else
/// a dense product: 2·m·n).
template <class Op>
Flops apply_flops(const Op& op) {
  if constexpr (requires {
                  { op.flops() } -> std::convertible_to<Flops>;
                })
    return op.flops();
  else
    return {2.0 * double(op.output_size()) * double(op.input_size()), 0.0};
}

/// One evaluation of a magnitude loss per column: the value needs A x, the gradient also Aᴴ r.
template <class Loss>
Flops loss_flops(const Loss& loss, bool gradient) {
  const Flops a = apply_flops(loss.op());
  return gradient ? 2.0 * a : a;
}

/// The conventional FFT count of one real transform of n points.
inline double real_fft_flops(double n) {
  return n > 1 ? 2.5 * n * std::log2(n) : 0.0;
}

namespace detail {
#if defined(__x86_64__) && defined(__AVX512F__)
using PeakVec = __m512;
inline constexpr int kPeakLanes = 16;
inline PeakVec peak_splat(float x) {
  return _mm512_set1_ps(x);
}
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline float peak_lane0(PeakVec v) {
  return _mm512_cvtss_f32(v);
}
inline constexpr const char* kPeakIsa = "avx512";
inline constexpr int kPeakVecChains = 16;  // of AVX-512's 32 vector registers
#elif defined(__x86_64__) && defined(__FMA__)
using PeakVec = __m256;
inline constexpr int kPeakLanes = 8;
inline PeakVec peak_splat(float x) {
  return _mm256_set1_ps(x);
}
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline float peak_lane0(PeakVec v) {
  return _mm256_cvtss_f32(v);
}
inline constexpr const char* kPeakIsa = "avx2_fma";
// 12, not 16: with 16 accumulators and the two operands AVX2's 16 registers spill (measured
// on a Zen 3 core: 59 GFLOP/s with 16 chains, 104 with 8 to 14); 12 chains still cover the
// FMA latency (4 cycles × 2 pipes)
inline constexpr int kPeakVecChains = 12;
#else
using PeakVec = float;
inline constexpr int kPeakLanes = 1;
inline PeakVec peak_splat(float x) {
  return x;
}
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) {
  return a * b + c;
}
inline float peak_lane0(PeakVec v) {
  return v;
}
inline constexpr const char* kPeakIsa = "scalar (build without -march=native)";
inline constexpr int kPeakVecChains = 12;
#endif

/// FP32 FLOPs of `rounds` × 4096 × kPeakVecChains independent FMA chains on the widest vectors
/// of the build.
inline float fma_chains(long rounds) {
  constexpr int kChains = kPeakVecChains;
  PeakVec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = peak_splat(0.5f + float(c));
  const PeakVec a = peak_splat(0.99999994f), b = peak_splat(1e-7f);
  for (long r = 0; r < rounds; ++r)
    for (int i = 0; i < 4096; ++i) {
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)  // nvcc and clang warn about it
#pragma GCC unroll 16
#endif
      for (int c = 0; c < kChains; ++c) acc[c] = peak_fma(acc[c], a, b);
    }
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += peak_lane0(acc[c]);
  return s;
}
}  // namespace detail

/// One measurement of the FMA peak: the rate, and the share of the time the measuring threads
/// were on a core (process CPU time over threads × wall time, for the trial kept; above 1
/// only by the clock's granularity). A share well below 1 means other work took the cores,
/// and the rate is low by about that much.
struct PeakMeasurement {
  double gflops = 0;
  double cpu_share = 1;
};

/// The FP32 fused-multiply-add peak of `threads` cores in GFLOP/s, measured: independent FMA
/// chains on the build's widest vectors (AVX-512, else AVX2 + FMA), on every thread at once
/// for about `seconds` (best of three trials). The same kernel as benchmarks/bench_peak.cpp.
/// Other load on the machine lowers it: measure on an idle machine (cpu_share tells).
inline PeakMeasurement measure_peak(int threads, double seconds = 0.3) {
  // a NaN or infinite duration was never reached: the doubling ran for hours
  if (!std::isfinite(seconds)) detail::fail("measure_peak: seconds must be finite, got ", seconds);
  threads = std::max(1, threads);
  constexpr int kChains = detail::kPeakVecChains;
  long rounds = 16;
  std::vector<float> sink(std::size_t(threads), 0.0f);  // one result per thread: no shared writes
  PeakMeasurement best{0, 0};
  int trials = 0;
  for (;;) {
    const std::clock_t c0 = std::clock();  // the process's CPU time, all threads
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(threads, threads, [&](Eigen::Index t) { sink[std::size_t(t)] += detail::fma_chains(rounds); });
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
    if (dt >= seconds / 3 || rounds > (1L << 30)) {  // long enough: keep the best of three trials
      const double flop = 2.0 * detail::kPeakLanes * kChains * 4096.0 * double(rounds) * threads;
      const double rate = flop / dt / 1e9;
      if (rate > best.gflops) best = {rate, cpu / (dt * threads)};
      if (++trials == 3) break;
    } else {
      rounds *= 2;
    }
  }
  volatile float keep = 0;
  for (const float v : sink) keep = keep + v;  // the chains' results are used
  return best;
}

/// measure_peak's rate alone.
inline double measure_peak_gflops(int threads, double seconds = 0.3) {
  return measure_peak(threads, seconds).gflops;
}

/// Where cached_peak_gflops keeps the peak of `threads` threads: $XDG_CACHE_HOME/prilo (or
/// ~/.cache/prilo)/peak-gflops-t<threads>.txt; empty when there is no cache directory.
inline std::filesystem::path peak_cache_file(int threads) {
  const std::filesystem::path dir = user_cache_dir();
  return dir.empty() ? dir : dir / ("peak-gflops-t" + std::to_string(threads) + ".txt");
}

/// What a cached peak was measured on: the build's peak kernel (detail::kPeakIsa) and the CPU
/// (vendor, family, model, stepping and model name of /proc/cpuinfo's first processor, or
/// "cpu unknown" where there is none). A home folder outlives its machine (a VM moved to
/// another host, a shared home on a cluster) and one machine runs builds with other vector
/// widths: a figure measured under another key would be another machine's or build's peak.
inline std::string peak_cache_key() {
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line) && !line.empty();) {  // the first processor's block
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(name.find_last_not_of(" \t") + 1);
    if (name == "vendor_id" || name == "cpu family" || name == "model" || name == "model name" || name == "stepping") {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      cpu += (cpu.empty() ? "" : ", ") + name + " " + value;
    }
  }
  return std::string(detail::kPeakIsa) + "; " + (cpu.empty() ? std::string("cpu unknown") : cpu);
}

/// The least CPU share (PeakMeasurement::cpu_share) at which a measured peak is cached.
inline constexpr double kPeakCacheMinCpuShare = 0.95;

/// The peak for `threads` threads, measured once per machine and build and kept in
/// peak_cache_file (the figure, then peak_cache_key() on the second line); a cache that cannot
/// be read or written, or whose key is not this machine's and build's (or that has none: the
/// files of earlier versions), only means measuring again. A measurement during which other
/// work took the cores (cpu_share below kPeakCacheMinCpuShare) is used for this run but not
/// cached, so the next run measures again. Delete the file to measure again
/// (prilo-reconstruct --peak-gflops overrides it). `measure(threads)` gives the PeakMeasurement
/// (measure_peak by default; tests give one of their own). `source`, when given, says where
/// the figure came from.
enum class PeakSource {
  cache,                ///< read from peak_cache_file
  measured_and_cached,  ///< measured now and written to peak_cache_file
  measured,             ///< measured now, not cached (no cache folder, a busy machine, a failed write)
};
template <class Measure>
double cached_peak_gflops(int threads, Measure&& measure, PeakSource* source = nullptr) {
  namespace fs = std::filesystem;
  const fs::path file = peak_cache_file(threads);
  const std::string key = peak_cache_key();
  const auto from = [&](PeakSource s) {
    if (source) *source = s;
  };
  if (!file.empty()) {
    std::ifstream in(file);
    double v = 0;
    std::string rest, cached_key;
    if (in >> v && std::getline(in, rest) && std::getline(in, cached_key) && cached_key == key && std::isfinite(v) &&
        v > 0) {
      from(PeakSource::cache);
      return v;
    }
  }
  const PeakMeasurement m = measure(threads);
  from(PeakSource::measured);
  if (!file.empty() && m.cpu_share >= kPeakCacheMinCpuShare) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    std::ofstream out(file);
    if (out && out << m.gflops << "\n" << key << "\n" && out.flush()) from(PeakSource::measured_and_cached);
  }
  return m.gflops;
}
inline double cached_peak_gflops(int threads, PeakSource* source = nullptr) {
  return cached_peak_gflops(
      threads, [](int t) { return measure_peak(t); }, source);
}

}  // namespace prilo

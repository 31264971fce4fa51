// Benchmarks of the l1-ball projection algorithms against one vectorised read pass (sum |x_i|).
//
// Methodology (see docs/projection.md):
//  * FRESH input on every call: for each (type, n) a pool of random N(0,1) vectors is generated
//    once, holding at least 64 vectors and at least 64 MiB (so that even for small n the pool is
//    larger than the last-level cache), and every iteration takes the next pool vector.
//  * No copy in the timed loop: the out-of-place form `algo(src, dst, n, r)` projects straight from
//    the pool vector into a destination buffer (the in-place form runs the same code with
//    dst == src). The baseline reads the same pool vectors and computes sum |x_i| with the
//    library's own vectorised kernel, so ratio = time(algo) / time(baseline) counts how many
//    "read passes" a projection costs, including its unavoidable final write.
//  * Radii r = 0.1 ||x||_1 ("r10") and 0.9 ||x||_1 ("r90"), computed per pool vector.
//  * Batch: 1024 columns of n = 500 per iteration (one column-major matrix from a pool of batches).
//  * l1ball_centred: the L1Ball policy in place on 128 centred columns of 6272 (a solver's
//    state), l1::newton inlined by the policy against the generic path around it.
// items_processed = elements projected, bytes_processed = bytes of input read once.
// Run: ./bench_projection --benchmark_format=console  (add --benchmark_filter=newton etc.)
#include <prilo/projection.hpp>

#include <benchmark/benchmark.h>

#include "projection_workloads.hpp"

#include <cstddef>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using Index = Eigen::Index;
using prilo_bench::l1ball_centred;
using prilo_bench::Pool;
using prilo_bench::pool;
using prilo_bench::set_counters;

template <class T>
using Kernel = void (*)(const T*, T*, Index, T);

/// Baseline: sum |x_i| over the next pool vector (one vectorised read pass).
template <class T>
void bm_read_pass(benchmark::State& state, Index n) {
  const Pool<T>& p = pool<T>(n);
  Index k = 0;
  for (auto _ : state) {
    T s = prilo::l1::detail::abs_sum(p.vec(k), n);
    benchmark::DoNotOptimize(s);
    if (++k == p.count) k = 0;
  }
  set_counters<T>(state, n);
}

/// Projection of the next pool vector into a destination buffer.
template <class T>
void bm_project(benchmark::State& state, Kernel<T> algo, Index n, bool large_radius) {
  const Pool<T>& p = pool<T>(n);
  const std::vector<T>& radii = large_radius ? p.r90 : p.r10;
  std::vector<T> dst(static_cast<std::size_t>(n));
  Index k = 0;
  for (auto _ : state) {
    algo(p.vec(k), dst.data(), n, radii[std::size_t(k)]);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
    if (++k == p.count) k = 0;
  }
  set_counters<T>(state, n);
}

constexpr Index kBatchN = 500, kBatchCols = 1024;

/// Baseline for a batch: sum |x_i| of each of the 1024 columns.
template <class T>
void bm_read_pass_batch(benchmark::State& state) {
  const Pool<T>& p = pool<T>(kBatchN, 4 * kBatchCols);
  Index k = 0;
  for (auto _ : state) {
    for (Index c = 0; c < kBatchCols; ++c) {
      T s = prilo::l1::detail::abs_sum(p.vec(k + c), kBatchN);
      benchmark::DoNotOptimize(s);
    }
    k += kBatchCols;
    if (k + kBatchCols > p.count) k = 0;
  }
  set_counters<T>(state, kBatchN * kBatchCols);
}

/// A batch of 1024 columns projected column by column into a 500 x 1024 destination matrix.
template <class T>
void bm_project_batch(benchmark::State& state, Kernel<T> algo, bool large_radius) {
  const Pool<T>& p = pool<T>(kBatchN, 4 * kBatchCols);
  const std::vector<T>& radii = large_radius ? p.r90 : p.r10;
  prilo::Mat<T> dst(kBatchN, kBatchCols);
  Index k = 0;
  for (auto _ : state) {
    for (Index c = 0; c < kBatchCols; ++c) algo(p.vec(k + c), dst.col(c).data(), kBatchN, radii[std::size_t(k + c)]);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
    k += kBatchCols;
    if (k + kBatchCols > p.count) k = 0;
  }
  set_counters<T>(state, kBatchN * kBatchCols);
}

/// l1::newton behind a function of its own, so that L1Ball over it takes the policy's generic
/// path (the centre subtracted, the algorithm, the centre added back: three passes around it).
template <class T>
void newton_generic(T* x, Index n, T r) {
  prilo::l1::newton(x, n, r);
}

template <class T>
void register_type(const std::string& tname) {
  const std::tuple<const char*, Kernel<T>> algos[] = {
      {"duchi", &prilo::l1::duchi<T>}, {"condat", &prilo::l1::condat<T>}, {"newton", &prilo::l1::newton<T>}};
  const Index sizes[] = {100, 500, 784, 4096, 65536, 1000000};
  for (Index n : sizes) {
    const std::string suffix = "/" + tname + "/n=" + std::to_string(n);
    benchmark::RegisterBenchmark(("read_pass" + suffix).c_str(), [n](benchmark::State& s) { bm_read_pass<T>(s, n); });
    for (const auto& [name, algo] : algos)
      for (bool large : {false, true})
        benchmark::RegisterBenchmark(
            (std::string(name) + suffix + (large ? "/r90" : "/r10")).c_str(),
            [algo = algo, n, large](benchmark::State& s) { bm_project<T>(s, algo, n, large); });
  }
  const std::string bsuffix = "/" + tname + "/batch500x1024";
  benchmark::RegisterBenchmark(("read_pass" + bsuffix).c_str(), [](benchmark::State& s) { bm_read_pass_batch<T>(s); });
  for (const auto& [name, algo] : algos)
    for (bool large : {false, true})
      benchmark::RegisterBenchmark((std::string(name) + bsuffix + (large ? "/r90" : "/r10")).c_str(),
                                   [algo = algo, large](benchmark::State& s) { bm_project_batch<T>(s, algo, large); });
  for (const T frac : {T(0.1), T(0.9)}) {
    const std::string rs = frac < T(0.5) ? "/r10" : "/r90";
    benchmark::RegisterBenchmark(("l1ball_centred/newton_inlined/" + tname + "/6272x128" + rs).c_str(),
                                 [frac](benchmark::State& s) { l1ball_centred<T, prilo::L1Ball<T>>(s, frac); })
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        ("l1ball_centred/newton_generic/" + tname + "/6272x128" + rs).c_str(),
        [frac](benchmark::State& s) { l1ball_centred<T, prilo::L1Ball<T, &newton_generic<T>>>(s, frac); })
        ->UseRealTime();
  }
}

const bool registered = [] {
  register_type<float>("float");
  register_type<double>("double");
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

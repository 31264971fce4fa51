// The l1 projection's workloads that more than one benchmark binary times: bench_projection with
// prilo's flags, bench_user_flags with a user's (-O2 -fmath-errno). Each binary compiles these
// functions with its own flags (inline, in separate programs), so the two binaries' rows of the
// same workload compare the flags, not the code or the data.
#pragma once

#include <prilo/projection.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <utility>
#include <vector>

namespace prilo_bench {

using Index = Eigen::Index;

/// A pool of `count` contiguous vectors of length n with two radii each.
template <class T>
struct Pool {
  Index n = 0, count = 0;
  std::vector<T> data;
  std::vector<T> r10, r90;
  const T* vec(Index k) const { return data.data() + k * n; }
};

template <class T>
inline const Pool<T>& pool(Index n, Index min_vectors = 64) {
  static std::map<std::pair<Index, Index>, std::unique_ptr<Pool<T>>> cache;
  auto& slot = cache[{n, min_vectors}];
  if (!slot) {
    constexpr std::size_t kMinBytes = std::size_t(64) << 20;
    const std::size_t per = std::size_t(n) * sizeof(T);
    const Index count = std::max<Index>(min_vectors, Index((kMinBytes + per - 1) / per));
    auto p = std::make_unique<Pool<T>>();
    p->n = n;
    p->count = count;
    p->data.resize(std::size_t(n * count));
    std::mt19937_64 gen(12345 + std::uint64_t(n));
    std::normal_distribution<T> normal(T(0), T(1));
    for (auto& v : p->data) v = normal(gen);
    for (Index k = 0; k < count; ++k) {
      const T norm = prilo::l1::detail::abs_sum(p->vec(k), n);
      p->r10.push_back(T(0.1) * norm);
      p->r90.push_back(T(0.9) * norm);
    }
    slot = std::move(p);
  }
  return *slot;
}

template <class T>
inline void set_counters(benchmark::State& state, Index elems) {
  state.SetItemsProcessed(state.iterations() * elems);
  state.SetBytesProcessed(state.iterations() * elems * Index(sizeof(T)));
}

/// The L1Ball policy in place on a solver's state: 128 columns of the conv VAE's z2 (6272
/// values; one thread's block of 64 images × 4 restarts), each around its centre, radius
/// `frac` of the first column's distance (the columns' distances differ by about 1 %, so every
/// column lies outside its ball). The state is refilled from a pool
/// outside the timed region before every projection. Policy: L1Ball<T> (l1::newton inlined) or
/// L1Ball<T, newton_generic> (the generic path around the same algorithm).
template <class T, class Policy>
void l1ball_centred(benchmark::State& state, T frac) {
  constexpr Index n = 6272, cols = 128;
  const Pool<T>& p = pool<T>(n, 4 * cols);
  prilo::Mat<T> x(n, cols), c(n, cols);
  std::mt19937_64 gen(7);
  std::normal_distribution<T> normal(T(0), T(0.5));
  for (Index k = 0; k < c.size(); ++k) c.data()[k] = normal(gen);
  Index k = 0;
  T radius = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (Index j = 0; j < cols; ++j) x.col(j) = c.col(j) + Eigen::Map<const prilo::Vec<T>>(p.vec((k + j) % p.count), n);
    radius = frac * (x - c).col(0).cwiseAbs().sum();
    k = (k + cols) % p.count;
    state.ResumeTiming();
    Policy{.radius = radius}.project(x, c);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  set_counters<T>(state, n * cols);
}

}  // namespace prilo_bench

// Timing helpers shared by the CPU benchmarks: wall and process-CPU clocks, per-iteration
// times of a Google Benchmark loop, and the interleaved fastest-round ratio.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace prilo_bench {

/// Wall and process CPU time (all threads), in seconds.
struct Times {
  double wall = 0, cpu = 0;
};
inline Times now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return {std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(),
          double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec)};
}
/// Times per iteration of the loop of `state` that started at t0.
inline Times per_iteration(const benchmark::State& state, const Times& t0) {
  const Times t1 = now();
  const double n = double(std::max<benchmark::IterationCount>(1, state.iterations()));
  return {(t1.wall - t0.wall) / n, (t1.cpu - t0.cpu) / n};
}

/// Robust ratio under other load: alternating rounds of `base` and `fn` (15 each, each round
/// at least 0.5 ms of back-to-back calls), ratio of the fastest round of `fn` to the fastest
/// round of `base`. Interference from other processes only adds time, so the minima of
/// interleaved rounds estimate the undisturbed ratio. Runs after the timed loop (not timed).
struct Interleaved {
  double ratio, base, fn;  ///< fastest-round ratio and the fastest per-call times (s)
};
template <class Base, class Fn>
Interleaved interleaved(Base&& base, Fn&& fn, double sec_per_iter) {
  const int n = std::max(1, int(0.5e-3 / std::max(sec_per_iter, 1e-9)));
  double best_base = 1e300, best_fn = 1e300;
  for (int r = 0; r < 15; ++r) {
    Times t0 = now();
    for (int i = 0; i < n; ++i) base();
    best_base = std::min(best_base, now().wall - t0.wall);
    t0 = now();
    for (int i = 0; i < n; ++i) fn();
    best_fn = std::min(best_fn, now().wall - t0.wall);
  }
  return {best_fn / best_base, best_base / n, best_fn / n};
}

}  // namespace prilo_bench

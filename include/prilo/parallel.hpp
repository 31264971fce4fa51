// Splitting batched work over columns between threads (OpenMP when the build enables it).
#pragma once

#include <algorithm>
#include <exception>

#include "core.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace prilo {

/// Threads available to a new parallel region here: OpenMP's maximum outside a parallel
/// region, 1 inside one (prilo never nests regions) or without OpenMP.
inline int max_threads() {
#if defined(_OPENMP)
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

namespace detail {
/// Runs call(), recording its exception in `error` if it throws and none is recorded yet (the
/// threads of a parallel loop share `error`; every item runs, the first failure is rethrown).
template <class F>
void keep_first_exception(std::exception_ptr& error, F&& call) {
  try {
    call();
  } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(prilo_parallel_for_error)
#endif
    if (!error) error = std::current_exception();
  }
}
}  // namespace detail

/// Calls f(i) for i = 0 … count−1 on up to `threads` OpenMP threads (thread t takes
/// i = t, t + threads, …, so i = 0 runs on the calling thread). Every call runs even if an
/// earlier one throws; the first exception recorded is then rethrown on the calling thread.
template <class F>
void parallel_for(Eigen::Index count, int threads, F&& f) {
  std::exception_ptr error;
  auto call = [&](Eigen::Index i) { detail::keep_first_exception(error, [&] { f(i); }); };
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (Eigen::Index i = 0; i < count; ++i) call(i);
  } else
#endif
  {
    (void)threads;
    for (Eigen::Index i = 0; i < count; ++i) call(i);
  }
  if (error) std::rethrow_exception(error);
}

/// Calls f(i, t) for i = 0 … count−1 on up to `threads` OpenMP threads, handing each thread the
/// next i as soon as it finishes its last (dynamic scheduling), with t in [0, threads) the
/// calling thread's index (for per-thread workspaces). For items of uneven cost, where a fixed
/// split leaves threads idle (-resolve's images: one solution's transforms or several).
/// Exceptions as in parallel_for.
template <class F>
void parallel_for_dynamic(Eigen::Index count, int threads, F&& f) {
  std::exception_ptr error;
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (Eigen::Index i = 0; i < count; ++i) {
      const int t = omp_get_thread_num();
      detail::keep_first_exception(error, [&] { f(i, t); });
    }
  } else
#endif
  {
    (void)threads;
    for (Eigen::Index i = 0; i < count; ++i) detail::keep_first_exception(error, [&] { f(i, 0); });
  }
  if (error) std::rethrow_exception(error);
}

/// Calls f(first_column, count) on contiguous column ranges covering [0, cols), one range
/// per thread, in parallel. Ranges are at least `min_cols` wide so small batches stay on one
/// thread. Exceptions thrown by f are rethrown on the calling thread.
template <class F>
void for_column_chunks(Eigen::Index cols, F&& f, Eigen::Index min_cols = 8) {
  if (cols <= 0) return;
  const Eigen::Index nt =
      std::max<Eigen::Index>(1, std::min<Eigen::Index>(max_threads(), cols / std::max<Eigen::Index>(1, min_cols)));
  if (nt == 1) return f(Eigen::Index(0), cols);
  parallel_for(nt, int(nt), [&](Eigen::Index t) {
    const Eigen::Index j0 = cols * t / nt, j1 = cols * (t + 1) / nt;
    f(j0, j1 - j0);
  });
}

}  // namespace prilo

// Splitting batched work over columns between threads (OpenMP when the build enables it).
#pragma once

#include <algorithm>

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

/// Calls f(first_column, count) on contiguous column ranges covering [0, cols), one range
/// per thread, in parallel. Ranges are at least `min_cols` wide so small batches stay on one
/// thread. Exceptions thrown by f are rethrown on the calling thread.
template <class F>
void for_column_chunks(Eigen::Index cols, F&& f, Eigen::Index min_cols = 8) {
  if (cols <= 0) return;
#if defined(_OPENMP)
  const Eigen::Index nt = std::max<Eigen::Index>(
      1, std::min<Eigen::Index>(max_threads(), cols / std::max<Eigen::Index>(1, min_cols)));
  if (nt > 1) {
    std::exception_ptr error;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (Eigen::Index t = 0; t < nt; ++t) {
      const Eigen::Index j0 = cols * t / nt, j1 = cols * (t + 1) / nt;
      try {
        f(j0, j1 - j0);
      } catch (...) {
#pragma omp critical(prilo_chunk_error)
        error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#else
  (void)min_cols;
#endif
  f(Eigen::Index(0), cols);
}

}  // namespace prilo

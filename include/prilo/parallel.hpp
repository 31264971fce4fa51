// Splitting batched work over columns between threads (OpenMP when the build enables it).
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <utility>
#include <vector>

#include "core.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define PRILO_HAS_MXCSR 1
#endif

namespace prilo {

namespace detail {
/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
inline constexpr unsigned kFtzDaz = 0x8040;
inline std::atomic<bool>& flush_denormals_flag() {
  static std::atomic<bool> on{true};
  return on;
}
}  // namespace detail

/// Whether prilo's work runs with denormal floats flushed to zero: the items of parallel_for,
/// parallel_for_dynamic and for_column_chunks (the solvers' column blocks, -resolve's images,
/// the transforms' column ranges) and run_method's calling thread, each for the duration of
/// the work (FlushDenormals), and the trainers with the threads of their threaded products
/// (FlushDenormalsTeam). On by default. On x86 cores a product or sum with a denormal
/// operand or result takes a microcode assist, and a reconstruction's cotangents and
/// moments reach that range (below 1.2e-38 in float): on an Intel Xeon VM a PRILO-MII run took
/// 1.8× the time with gradual underflow (benchmarks/README.md). Values that small are
/// rounding noise here; flushing them changes results only in the last bits, if at all.
/// Off: IEEE gradual underflow everywhere (the thread's own mode is left alone).
inline void set_flush_denormals(bool on) {
  detail::flush_denormals_flag().store(on, std::memory_order_relaxed);
}
inline bool flush_denormals() {
  return detail::flush_denormals_flag().load(std::memory_order_relaxed);
}

/// While alive, this thread flushes denormal results to zero and reads denormal operands as
/// zero (x86: MXCSR's FTZ and DAZ bits) when flush_denormals() is on; the destructor restores
/// the thread's previous mode, so the caller's own code keeps its own. Elsewhere (no MXCSR) it
/// does nothing. Not copyable: one guard, one thread.
class FlushDenormals {
 public:
  FlushDenormals() {
#if defined(PRILO_HAS_MXCSR)
    if (flush_denormals()) {
      saved_ = _mm_getcsr();
      _mm_setcsr(saved_ | detail::kFtzDaz);
      active_ = true;
    }
#endif
  }
  ~FlushDenormals() {
#if defined(PRILO_HAS_MXCSR)
    if (active_) _mm_setcsr(saved_);
#endif
  }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_ = 0;
  bool active_ = false;
};

/// Threads available to a new parallel region here: OpenMP's maximum outside a parallel
/// region, 1 inside one (prilo never nests regions) or without OpenMP.
inline int max_threads() {
#if defined(_OPENMP)
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/// FlushDenormals for work whose threads are not prilo's parallel helpers' items: while alive,
/// the calling thread and the threads of OpenMP's team flush denormals when flush_denormals()
/// is on, and the destructor restores each one's mode. The team is the one a parallel region
/// of max_threads() threads runs on; an OpenMP build of OpenBLAS (Debian's openblas-openmp,
/// the project's) runs its threaded products on the same pool threads. The trainers
/// (nn::train_vae, train_li_encoder, train_placement_scorer) run under one: their products
/// are the BLAS's own threaded calls, and on an Intel Xeon VM four epochs of the MLP VAE took
/// 1.8× the time with gradual underflow (benchmarks/README.md). Restoring relies on the
/// OpenMP runtime giving thread number t of consecutive teams of one size to the same pool
/// thread (GCC's and LLVM's runtimes do). Inside a parallel region it covers the calling
/// thread alone (max_threads() is 1 there). Not copyable.
class FlushDenormalsTeam {
 public:
  FlushDenormalsTeam() {
#if defined(PRILO_HAS_MXCSR)
    if (!flush_denormals()) return;
    saved_.assign(std::size_t(max_threads()), kUntouched);
    on_team([this](std::size_t t) {
      saved_[t] = _mm_getcsr();
      _mm_setcsr(saved_[t] | detail::kFtzDaz);
    });
#endif
  }
  ~FlushDenormalsTeam() {
#if defined(PRILO_HAS_MXCSR)
    if (!saved_.empty())
      on_team([this](std::size_t t) {
        if (saved_[t] != kUntouched) _mm_setcsr(saved_[t]);  // a thread the first team did not have: left alone
      });
#endif
  }
  FlushDenormalsTeam(const FlushDenormalsTeam&) = delete;
  FlushDenormalsTeam& operator=(const FlushDenormalsTeam&) = delete;

 private:
  /// f(t) on thread t of a team of saved_.size() threads, then f(0) on the caller outside the
  /// region: LLVM's runtime (libomp) gives the primary thread back, at a region's end, the
  /// MXCSR it had at the fork, so a change made inside the region would not last there (its
  /// workers take the primary's MXCSR at each fork as well; GCC's libgomp does neither).
  template <class F>
  void on_team(F&& f) {
#if defined(_OPENMP)
    if (saved_.size() > 1) {
#pragma omp parallel num_threads(int(saved_.size()))
      if (const int t = omp_get_thread_num(); t != 0) f(std::size_t(t));
    }
#endif
    f(0);
  }
  static constexpr unsigned kUntouched = ~0u;  // no MXCSR value: its bits 16–31 are reserved, zero
  std::vector<unsigned> saved_;                // each thread's mode before; empty: nothing was changed
};

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
/// Each call runs under FlushDenormals.
template <class F>
void parallel_for(Eigen::Index count, int threads, F&& f) {
  std::exception_ptr error;
  auto call = [&](Eigen::Index i) {
    const FlushDenormals flush;
    detail::keep_first_exception(error, [&] { f(i); });
  };
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
/// Exceptions and FlushDenormals as in parallel_for.
template <class F>
void parallel_for_dynamic(Eigen::Index count, int threads, F&& f) {
  std::exception_ptr error;
  auto call = [&](Eigen::Index i, int t) {
    const FlushDenormals flush;
    detail::keep_first_exception(error, [&] { f(i, t); });
  };
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (Eigen::Index i = 0; i < count; ++i) call(i, omp_get_thread_num());
  } else
#endif
  {
    (void)threads;
    for (Eigen::Index i = 0; i < count; ++i) call(i, 0);
  }
  if (error) std::rethrow_exception(error);
}

namespace detail {
/// Range t of nt (t < nt) of [0, cols), cut at multiples of `granule` (the last granule may be
/// short): [first, end). for_column_chunks' threads split columns by it with nt ≤ the number of
/// granules, so no range is empty; resolve's processes may be more than the granules, and then
/// some ranges are empty (first == end).
inline std::pair<Eigen::Index, Eigen::Index> granular_range(Eigen::Index cols, Eigen::Index granule, Eigen::Index t,
                                                            Eigen::Index nt) {
  const Eigen::Index units = (cols + granule - 1) / granule;
  return {std::min(cols, units * t / nt * granule), std::min(cols, units * (t + 1) / nt * granule)};
}
}  // namespace detail

/// Calls f(first_column, count) on contiguous column ranges covering [0, cols), one range
/// per thread, in parallel. Ranges are at least `min_cols` wide so small batches stay on one
/// thread (with a `granule` above 1 the last range holds what is left and may be narrower),
/// and every range starts at a multiple of `granule`: work that groups
/// columns from a range's start (the DFT loss's pairs and lane blocks) then groups them the
/// same way at every thread count, so its results do not depend on it. Exceptions thrown by f
/// are rethrown on the calling thread. Under FlushDenormals.
template <class F>
void for_column_chunks(Eigen::Index cols, F&& f, Eigen::Index min_cols = 8, Eigen::Index granule = 1) {
  if (cols <= 0) return;
  granule = std::max<Eigen::Index>(1, granule);
  const Eigen::Index units = (cols + granule - 1) / granule;  // the last one may be short
  const Eigen::Index nt = std::max<Eigen::Index>(
      1, std::min({Eigen::Index(max_threads()), cols / std::max<Eigen::Index>(1, min_cols), units}));
  if (nt == 1) {
    const FlushDenormals flush;
    return f(Eigen::Index(0), cols);
  }
  parallel_for(nt, int(nt), [&](Eigen::Index t) {  // nt ≤ units: no range is empty
    const auto [j0, j1] = detail::granular_range(cols, granule, t, nt);
    f(j0, j1 - j0);
  });
}

}  // namespace prilo

// The CPU backend tag: Eigen column-major batches, FFTW transforms, OpenMP over the batch.
#pragma once

#include <algorithm>
#include <string>
#include <thread>

#include "../core.hpp"
#include "../random.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace prilo {

/// Backend tag for the CPU: storage is prilo::Mat (Eigen, column-major, one sample per
/// column), dense products go to Eigen's GEMM, FFTs to FFTW (prilo/fft/fftw.hpp), and
/// batched work is split over columns with OpenMP when the build enables it.
struct cpu {
  static constexpr const char* name = "cpu";
  template <class T>
  using matrix = Mat<T>;
  template <class T>
  using complex_matrix = CMat<T>;
  using rng = Rng;

  /// The most threads set_threads takes: far above any core count the library is run on,
  /// and below the counts at which OpenMP runtimes fail to start their teams (libgomp crashes
  /// at 100000).
  static constexpr int max_threads = 1024;
  /// Threads used for batched work (OpenMP) and Eigen's GEMM (n < 1: 1). More than
  /// max_threads is invalid_input.
  static void set_threads(int n) {
    if (n > max_threads)
      throw invalid_input("threads: " + std::to_string(n) + " is more than " + std::to_string(max_threads) +
                          " (this machine has " + std::to_string(std::thread::hardware_concurrency()) + " cores)");
    n = std::max(1, n);
#if defined(_OPENMP)
    omp_set_num_threads(n);
#endif
    Eigen::setNbThreads(n);
  }
  static int threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }

  /// Asks glibc's allocator to keep freed memory in the process: blocks up to 512 MiB come
  /// from the heap instead of a fresh mmap each (32 MiB where a glibc refuses more), and the
  /// heap is given back to the system only past 1 GiB free at its top. Without it a temporary
  /// of a few MiB that a pass allocates and frees (a conv layer's trace, the VAE's ELBO over a
  /// block of -resolve's candidates) is a new mapping on every call, and every 4 KiB page of
  /// it a fault on first touch: the style VAE's chained LI with -avg-resolve spent about a
  /// fifth of its time in the kernel (benchmarks/README.md, glibc 2.36). A
  /// process-wide setting for programs, which then keep the peak memory they used; the
  /// library itself never calls it. Returns whether glibc took both settings (false on other
  /// C libraries, where it does nothing).
  static bool retain_freed_memory() {
#if defined(__GLIBC__)
    const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 512 << 20) == 1 || mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
    return mmap_ok && trim_ok;
#else
    return false;
#endif
  }

  /// C = alpha * op(A) * op(B) + beta * C.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, T alpha, const Mat<T>& a, const Mat<T>& b, T beta, Mat<T>& c) {
    if (beta == T(0)) {
      if (!trans_a && !trans_b)
        c.noalias() = alpha * a * b;
      else if (trans_a && !trans_b)
        c.noalias() = alpha * a.transpose() * b;
      else if (!trans_a)
        c.noalias() = alpha * a * b.transpose();
      else
        c.noalias() = alpha * a.transpose() * b.transpose();
    } else {
      c *= beta;
      if (!trans_a && !trans_b)
        c.noalias() += alpha * a * b;
      else if (trans_a && !trans_b)
        c.noalias() += alpha * a.transpose() * b;
      else if (!trans_a)
        c.noalias() += alpha * a * b.transpose();
      else
        c.noalias() += alpha * a.transpose() * b.transpose();
    }
  }
};

#ifndef PRILO_DEFAULT_BACKEND_CUDA
using default_backend = cpu;
#endif

}  // namespace prilo

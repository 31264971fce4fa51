// The CPU backend tag: Eigen column-major batches, FFTW transforms, OpenMP over the batch.
#pragma once

#include <algorithm>

#include "../core.hpp"
#include "../random.hpp"

#if defined(_OPENMP)
#include <omp.h>
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

  /// Threads used for batched work (OpenMP) and Eigen's GEMM.
  static void set_threads(int n) {
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

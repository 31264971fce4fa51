// cuBLAS handle (RAII, move-only) and column-major GEMM on DeviceMatrix batches.
#pragma once

#include "config.cuh"

#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "device_matrix.cuh"
#include "error.cuh"

namespace prilo::gpu {

/// Owns a cublasHandle_t. Move-only; bound to the device current at construction.
class BlasHandle {
 public:
  BlasHandle() { PRILO_CUBLAS_CHECK(cublasCreate(&h_)); }
  explicit BlasHandle(cudaStream_t stream) : BlasHandle() { set_stream(stream); }
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  BlasHandle(BlasHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  BlasHandle& operator=(BlasHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~BlasHandle() { reset(); }

  cublasHandle_t get() const { return h_; }
  void set_stream(cudaStream_t s) { PRILO_CUBLAS_CHECK(cublasSetStream(h_, s)); }
  cudaStream_t stream() const {
    cudaStream_t s = nullptr;
    PRILO_CUBLAS_CHECK(cublasGetStream(h_, &s));
    return s;
  }

 private:
  void reset() noexcept {
    if (h_) (void)cublasDestroy(h_);
    h_ = nullptr;
  }
  cublasHandle_t h_ = nullptr;
};

/// A per-host-thread handle for callers that do not manage their own (created on first use).
inline BlasHandle& default_blas_handle() {
  thread_local BlasHandle h;
  return h;
}

namespace detail {

/// A cuBLAS dimension: fails when it exceeds int.
inline int blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > std::int64_t(0x7fffffff)) ::prilo::detail::fail(what, ": dimension ", v, " exceeds cuBLAS's int");
  return int(v);
}

/// C ← α·op(A)·op(B) + β·C on raw column-major device arrays (op(A) m × k, op(B) k × n, none
/// empty) on handle h: the one call of cublas?gemm, every dimension checked to fit its int
/// (`what` names the caller in the message).
template <class T>
void blas_gemm(cublasHandle_t h, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
               const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc,
               const char* what) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: float or double");
  const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int im = blas_int(m, what), in = blas_int(n, what), ik = blas_int(k, what);
  const int ilda = blas_int(lda, what), ildb = blas_int(ldb, what), ildc = blas_int(ldc, what);
  if constexpr (std::is_same_v<T, float>)
    PRILO_CUBLAS_CHECK(cublasSgemm(h, ta, tb, im, in, ik, &alpha, a, ilda, b, ildb, &beta, c, ildc));
  else
    PRILO_CUBLAS_CHECK(cublasDgemm(h, ta, tb, im, in, ik, &alpha, a, ilda, b, ildb, &beta, c, ildc));
}

}  // namespace detail

/// C = alpha · op(A) · op(B) + beta · C (column-major, float or double). With beta == 0 C is
/// resized to op(A).rows × op(B).cols and its old contents are ignored; otherwise its shape
/// must already match. C must be another matrix than A and B (as on the CPU: resizing C could
/// free A's buffer, and cuBLAS does not multiply in place). Asynchronous on the handle's stream.
template <class T>
void gemm(BlasHandle& h, bool trans_a, bool trans_b, T alpha, const DeviceMatrix<T>& a, const DeviceMatrix<T>& b,
          T beta, DeviceMatrix<T>& c) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: float or double");
  if (&c == &a || &c == &b) ::prilo::detail::fail("gemm: the output C is also an input (A or B): give another matrix");
  const Eigen::Index m = trans_a ? a.cols() : a.rows();
  const Eigen::Index k = trans_a ? a.rows() : a.cols();
  const Eigen::Index kb = trans_b ? b.cols() : b.rows();
  const Eigen::Index n = trans_b ? b.rows() : b.cols();
  if (k != kb) ::prilo::detail::fail("gemm: inner dimensions differ: op(A) is ", m, "x", k, ", op(B) is ", kb, "x", n);
  if (beta == T(0))
    c.resize(m, n);
  else
    require_shape(c, m, n, "gemm output C");
  if (m == 0 || n == 0) return;
  if (k == 0) {  // empty product: C = beta · C
    if (beta == T(0)) {
      c.set_zero(h.stream());
      return;
    }
    const int size = detail::blas_int(c.size(), "gemm");
    if constexpr (std::is_same_v<T, float>)
      PRILO_CUBLAS_CHECK(cublasSscal(h.get(), size, &beta, c.data(), 1));
    else
      PRILO_CUBLAS_CHECK(cublasDscal(h.get(), size, &beta, c.data(), 1));
    return;
  }
  detail::blas_gemm(h.get(), trans_a, trans_b, m, n, k, alpha, a.data(), std::max<Eigen::Index>(1, a.rows()), b.data(),
                    std::max<Eigen::Index>(1, b.rows()), beta, c.data(), std::max<Eigen::Index>(1, c.rows()), "gemm");
}

}  // namespace prilo::gpu

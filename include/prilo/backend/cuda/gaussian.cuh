// Dense Gaussian measurement operators on the GPU: the device forms of prilo::GaussianReal and
// prilo::GaussianComplex, each application one cuBLAS product.
#pragma once

#include "config.cuh"

#include "../../flops.hpp"
#include "../../operators/gaussian.hpp"
#include "blas.cuh"
#include "device_matrix.cuh"
#include "executor.cuh"
#include "magnitude_loss.cuh"

namespace prilo::gpu {

/// y = |A x| with A ∈ ℝ^{m×n} on the device, uploaded from a host operator (so a seed gives
/// the same A on both executors). apply and the adjoint are single GEMMs on the executor's
/// cuBLAS handle; prilo::MagnitudeLoss<GaussianReal<T>> runs on it unchanged.
template <class T>
class GaussianReal {
 public:
  using scalar = T;
  explicit GaussianReal(const prilo::GaussianReal<T>& host, CudaExecutor ex = {})
      : a_(host.matrix(), ex.stream()), ex_(std::move(ex)) {}

  CudaExecutor executor() const { return ex_; }
  Eigen::Index input_size() const { return a_.cols(); }
  Eigen::Index output_size() const { return a_.rows(); }
  const DeviceMatrix<T>& matrix() const { return a_; }

  DeviceMatrix<T> apply(const DeviceMatrix<T>& x) const {
    require_shape(x, input_size(), x.cols(), "gpu::GaussianReal::apply input");
    DeviceMatrix<T> y(output_size(), x.cols());
    gemm(ex_.handle(), false, false, T(1), a_, x, T(0), y);
    return y;
  }
  /// Aᵀ u (the adjoint of a real operator, which is all a real image's gradient needs).
  DeviceMatrix<T> adjoint_real(const DeviceMatrix<T>& u) const {
    require_shape(u, output_size(), u.cols(), "gpu::GaussianReal::adjoint input");
    DeviceMatrix<T> x(input_size(), u.cols());
    gemm(ex_.handle(), true, false, T(1), a_, u, T(0), x);
    return x;
  }
  DeviceMatrix<T> adjoint(const DeviceMatrix<T>& u) const { return adjoint_real(u); }

 private:
  DeviceMatrix<T> a_;
  CudaExecutor ex_;
};

/// y = |A x| with A = A_re + i·A_im ∈ ℂ^{m×n} on the device. For real images the complex
/// product is one real product with the stacked matrix S = [A_re; A_im] (2m×n), giving the
/// real and imaginary parts as one SplitComplex batch; the real part of the adjoint,
/// A_reᵀ Re u + A_imᵀ Im u, is then Sᵀ applied to the stacked residual: one GEMM each way,
/// where the host operator runs two.
template <class T>
class GaussianComplex {
 public:
  using scalar = T;
  explicit GaussianComplex(const prilo::GaussianComplex<T>& host, CudaExecutor ex = {}) : ex_(std::move(ex)) {
    Mat<T> stacked(2 * host.output_size(), host.input_size());
    stacked.topRows(host.output_size()) = host.real_part();
    stacked.bottomRows(host.output_size()) = host.imag_part();
    s_.upload(stacked, ex_.stream());
  }

  CudaExecutor executor() const { return ex_; }
  Eigen::Index input_size() const { return s_.cols(); }
  Eigen::Index output_size() const { return s_.rows() / 2; }
  /// One application to a real column: one product with the 2m×n stacked matrix.
  Flops flops() const { return {4.0 * double(output_size()) * double(input_size()), 0.0}; }

  SplitComplex<T> apply(const DeviceMatrix<T>& x) const {
    require_shape(x, input_size(), x.cols(), "gpu::GaussianComplex::apply input");
    SplitComplex<T> y{DeviceMatrix<T>(s_.rows(), x.cols())};
    gemm(ex_.handle(), false, false, T(1), s_, x, T(0), y.parts);
    return y;
  }
  /// Re(Aᴴ u) = Sᵀ [Re u; Im u].
  DeviceMatrix<T> adjoint_real(const SplitComplex<T>& u) const {
    require_shape(u.parts, s_.rows(), u.cols(), "gpu::GaussianComplex::adjoint_real input");
    DeviceMatrix<T> x(input_size(), u.cols());
    gemm(ex_.handle(), true, false, T(1), s_, u.parts, T(0), x);
    return x;
  }

 private:
  DeviceMatrix<T> s_;
  CudaExecutor ex_;
};

}  // namespace prilo::gpu

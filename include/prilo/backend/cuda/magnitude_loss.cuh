// The fused DFT magnitude loss on the GPU: one R2C, one block-per-image residual kernel, one
// C2R — the half-spectrum symmetrised formulation of prilo::MagnitudeLoss<Fourier2d<T>>.
#pragma once

#include "config.cuh"

#include <cub/block/block_reduce.cuh>

#include <complex>
#include <cstdint>
#include <type_traits>

#include "../../operators/magnitude_loss.hpp"
#include "blas.cuh"
#include "device_matrix.cuh"
#include "error.cuh"
#include "executor.cuh"
#include "fft.cuh"

namespace prilo::gpu {

namespace detail {
template <class T>
struct complex2;
template <>
struct complex2<float> {
  using type = float2;
};
template <>
struct complex2<double> {
  using type = double2;
};
template <class T>
using complex2_t = typename complex2<T>::type;
}  // namespace detail

namespace kernels {

inline constexpr int kLossThreads = 256;

/// Per column j (one block each): ȳ_k = (y_k + y_{−k})/2 on the half spectrum and the
/// asymmetry Σ_k (y_k − ȳ_k)² over the full spectrum.
template <class T, int Threads>
__global__ void __launch_bounds__(Threads)
    symmetrise_magnitudes(const T* __restrict__ y, T* __restrict__ ybar, T* __restrict__ offset, int h, int w) {
  using Reduce = cub::BlockReduce<T, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int wh = w / 2 + 1;
  const std::int64_t j = blockIdx.x;
  const T* yc = y + j * std::int64_t(h) * w;
  T* yb = ybar + j * std::int64_t(h) * wh;
  T off = T(0);
  for (int i = threadIdx.x; i < h * w; i += Threads) {
    const int k1 = i / w, k2 = i % w;
    const T a = yc[i], b = yc[((h - k1) % h) * w + (w - k2) % w];
    const T mean = (a + b) / T(2);
    off += (a - mean) * (a - mean);
    if (k2 < wh) yb[k1 * wh + k2] = mean;
  }
  const T total = Reduce(tmp).Sum(off);
  if (threadIdx.x == 0) offset[j] = total;
}

/// Per column j (one block each), on the half spectrum X (unscaled DFT) of image j:
/// loss_j = Σ_i wt_i (|s X_i| − ȳ_i)² + offset_j, wt_i = 2 for bins standing for a conjugate
/// pair and 1 otherwise; with Gradient, X_i ← 2·s·(|sX_i| − ȳ_i)·sX_i/|sX_i| (0 where X_i = 0),
/// ready for one C2R giving the gradient.
template <class T, int Threads, bool Gradient>
__global__ void __launch_bounds__(Threads)
    half_spectrum_loss(detail::complex2_t<T>* __restrict__ X, const T* __restrict__ ybar, const T* __restrict__ offset,
                       T* __restrict__ loss, int h, int w, T s) {
  using Reduce = cub::BlockReduce<T, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int wh = w / 2 + 1, hn = h * wh;
  const bool even = w % 2 == 0;
  const std::int64_t j = blockIdx.x;
  detail::complex2_t<T>* xc = X + j * hn;
  const T* yb = ybar + j * hn;
  T acc = T(0);
  for (int i = threadIdx.x; i < hn; i += Threads) {
    const int k2 = i % wh;
    const T wt = (k2 == 0 || (even && k2 == w / 2)) ? T(1) : T(2);
    const detail::complex2_t<T> v = xc[i];
    const T re = v.x * s, im = v.y * s;
    const T a = sqrt(re * re + im * im);
    const T res = a - yb[i];
    acc += wt * res * res;
    if constexpr (Gradient) {
      const T f = a > T(0) ? T(2) * s * res / a : T(0);
      xc[i] = detail::complex2_t<T>{re * f, im * f};
    }
  }
  const T total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) loss[j] = total + offset[j];
}

/// Per candidate column c (one block each), on its half spectrum X: wa_i = wt_i·|s X_i| and
/// aa_c = Σ_i wt_i |s X_i|² (the weighted magnitudes and their weighted squared norm).
template <class T, int Threads>
__global__ void __launch_bounds__(Threads)
    weighted_magnitudes(const detail::complex2_t<T>* __restrict__ X, T* __restrict__ wa, T* __restrict__ aa, int h,
                        int w, T s) {
  using Reduce = cub::BlockReduce<T, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int wh = w / 2 + 1, hn = h * wh;
  const bool even = w % 2 == 0;
  const std::int64_t c = blockIdx.x;
  T acc = T(0);
  for (int i = threadIdx.x; i < hn; i += Threads) {
    const int k2 = i % wh;
    const T wt = (k2 == 0 || (even && k2 == w / 2)) ? T(1) : T(2);
    const detail::complex2_t<T> v = X[c * hn + i];
    const T re = v.x * s, im = v.y * s;
    const T a = sqrt(re * re + im * im);
    wa[c * hn + i] = wt * a;
    acc += wt * a * a;
  }
  const T total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) aa[c] = total;
}

/// Per measurement column j (one block each): yy_j = Σ_i wt_i ȳ_i² + offset_j.
template <class T, int Threads>
__global__ void __launch_bounds__(Threads)
    weighted_norms(const T* __restrict__ ybar, const T* __restrict__ offset, T* __restrict__ yy, int h, int w) {
  using Reduce = cub::BlockReduce<T, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int wh = w / 2 + 1, hn = h * wh;
  const bool even = w % 2 == 0;
  const std::int64_t j = blockIdx.x;
  T acc = T(0);
  for (int i = threadIdx.x; i < hn; i += Threads) {
    const int k2 = i % wh;
    const T wt = (k2 == 0 || (even && k2 == w / 2)) ? T(1) : T(2);
    const T v = ybar[j * hn + i];
    acc += wt * v * v;
  }
  const T total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) yy[j] = total + offset[j];
}

/// S(c, j) ← max(0, S(c, j) + aa_c + yy_j) over a p × B column-major matrix.
template <class T>
__global__ void add_norms_clamp(T* __restrict__ s, const T* __restrict__ aa, const T* __restrict__ yy, std::int64_t p,
                                std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const T v = s[k] + aa[k % p] + yy[k / p];
    s[k] = v > T(0) ? v : T(0);
  }
}

}  // namespace kernels

/// f(x) = Σ_k (|(F x)_k| − y_k)² per column with its gradient, for F a gpu::Fourier2d, computed
/// exactly as the CPU specialisation MagnitudeLoss<Fourier2d<T>> does (see its comment): the
/// measurements are symmetrised once (ȳ on the half spectrum plus a constant per column), then
/// each evaluation is one batched R2C, one kernel, and — for the gradient — one batched C2R.
/// Holds a reference to the operator, which must outlive the loss. Evaluations reuse one
/// scratch spectrum: do not evaluate one loss object from two host threads at once.
template <class T>
class MagnitudeLoss {
  static constexpr int kThreads = kernels::kLossThreads;

 public:
  using Op = Fourier2d<T>;
  using C = std::complex<T>;

  /// Measurements already on the device (h·w × B); taken as valid magnitudes (finite, ≥ 0)
  /// without a check, which would need a host round trip.
  MagnitudeLoss(const Op& op, DeviceMatrix<T> y, cudaStream_t stream = nullptr) : op_(&op), y_(std::move(y)) {
    init(stream);
  }
  /// Host measurements, validated as on the CPU (finite, non-negative), then uploaded.
  MagnitudeLoss(const Op& op, const Mat<T>& y, cudaStream_t stream = nullptr) : op_(&op) {
    require_magnitudes(y, "gpu magnitude loss measurements y");
    y_.upload(y, stream);
    init(stream);
  }

  const DeviceMatrix<T>& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }
  /// ȳ on the half spectrum (h·(w/2+1) × B) and Σ_k (y_k − ȳ_k)² per column (B × 1).
  const DeviceMatrix<T>& half_measurements() const { return ybar_; }
  const DeviceMatrix<T>& asymmetry() const { return offset_; }

  /// Per-column loss into `loss` (B × 1, device); asynchronous on `stream`.
  void value(const DeviceMatrix<T>& x, DeviceMatrix<T>& loss, cudaStream_t stream = nullptr) const {
    evaluate<false>(x, nullptr, loss, stream);
  }
  /// Per-column loss (B × 1) and gradient (h·w × B) on the device; asynchronous on `stream`.
  void value_and_gradient(const DeviceMatrix<T>& x, DeviceMatrix<T>& grad, DeviceMatrix<T>& loss,
                          cudaStream_t stream = nullptr) const {
    evaluate<true>(x, &grad, loss, stream);
  }
  /// Host conveniences: the per-column loss downloaded (synchronises).
  Vec<T> value(const DeviceMatrix<T>& x) const {
    DeviceMatrix<T> loss;
    value(x, loss);
    return loss.download().col(0);
  }
  Vec<T> value_and_gradient(const DeviceMatrix<T>& x, DeviceMatrix<T>& grad) const {
    DeviceMatrix<T> loss;
    value_and_gradient(x, grad, loss);
    return loss.download().col(0);
  }

  /// S(c, j) = ‖|F x_c| − y_j‖² for every candidate column x_c (device) against every
  /// measurement column, on the host (p × B): one batched R2C, one kernel and one GEMM on the
  /// weighted half spectrum, as the CPU's MagnitudeLoss<Fourier2d>::scores (MII).
  Mat<T> scores(const DeviceMatrix<T>& candidates, cudaStream_t stream = nullptr) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "gpu magnitude loss candidates");
    const Eigen::Index p = candidates.cols(), B = y_.cols();
    DeviceMatrix<T> s(p, B);
    if (p == 0 || B == 0) return s.download(stream);
    op_->forward_half(candidates, spec_, stream);
    DeviceMatrix<T> wa(op_->half_size(), p), aa(p, 1), yy(B, 1);
    kernels::weighted_magnitudes<T, kThreads>
        <<<unsigned(p), kThreads, 0, stream>>>(reinterpret_cast<const detail::complex2_t<T>*>(spec_.data()), wa.data(),
                                               aa.data(), op_->height(), op_->width(), op_->scale());
    PRILO_CUDA_CHECK_LAUNCH();
    kernels::weighted_norms<T, kThreads>
        <<<unsigned(B), kThreads, 0, stream>>>(ybar_.data(), offset_.data(), yy.data(), op_->height(), op_->width());
    PRILO_CUDA_CHECK_LAUNCH();
    // S = −2 waᵀ ȳ: wt·a·ȳ summed over the half spectrum is the weighted inner product
    BlasHandle& h = default_blas_handle();
    const cudaStream_t old = h.stream();
    h.set_stream(stream);
    gemm(h, true, false, T(-2), wa, ybar_, T(0), s);
    h.set_stream(old);
    const std::int64_t n = p * B;
    kernels::add_norms_clamp<T><<<::prilo::gpu::detail::grid_for(n), ::prilo::gpu::detail::kThreads, 0, stream>>>(
        s.data(), aa.data(), yy.data(), p, n);
    PRILO_CUDA_CHECK_LAUNCH();
    return s.download(stream);
  }

  /// What scores() costs for p candidates: p R2C transforms and the product on the half spectrum.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * op_->flops() + Flops{2.0 * double(p) * double(op_->half_size()) * double(y_.cols()), 0.0};
  }

  /// The executor the loss runs on (the legacy default stream, as its host conveniences).
  CudaExecutor executor() const { return {}; }

 private:
  void init(cudaStream_t stream) {
    require_shape(y_, op_->output_size(), y_.cols(), "gpu magnitude loss measurements y");
    ybar_.resize(op_->half_size(), y_.cols());
    offset_.resize(y_.cols(), 1);
    if (y_.cols() == 0) return;
    kernels::symmetrise_magnitudes<T, kThreads><<<unsigned(y_.cols()), kThreads, 0, stream>>>(
        y_.data(), ybar_.data(), offset_.data(), op_->height(), op_->width());
    PRILO_CUDA_CHECK_LAUNCH();
  }

  template <bool Gradient>
  void evaluate(const DeviceMatrix<T>& x, DeviceMatrix<T>* grad, DeviceMatrix<T>& loss, cudaStream_t stream) const {
    require_shape(x, op_->input_size(), y_.cols(), "gpu magnitude loss input x");
    loss.resize(x.cols(), 1);
    if (x.cols() == 0) {
      if (grad) grad->resize(x.rows(), 0);
      return;
    }
    op_->forward_half(x, spec_, stream);
    kernels::half_spectrum_loss<T, kThreads, Gradient><<<unsigned(x.cols()), kThreads, 0, stream>>>(
        reinterpret_cast<detail::complex2_t<T>*>(spec_.data()), ybar_.data(), offset_.data(), loss.data(),
        op_->height(), op_->width(), op_->scale());
    PRILO_CUDA_CHECK_LAUNCH();
    if constexpr (Gradient) op_->backward_half(spec_, *grad, stream);
  }

  const Op* op_;
  DeviceMatrix<T> y_, ybar_, offset_;
  mutable DeviceMatrix<C> spec_;
};

/// The device magnitude loss of a device DFT against host measurements (validated, then
/// uploaded): what the pipeline builds for a gpu::Fourier2d (found by argument-dependent lookup).
template <class T>
MagnitudeLoss<T> make_magnitude_loss(const Fourier2d<T>& op, const Mat<T>& y) {
  return MagnitudeLoss<T>(op, y);
}

}  // namespace prilo::gpu

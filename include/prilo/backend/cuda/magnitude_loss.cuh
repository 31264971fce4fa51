// The CUDA forms of the magnitude loss's customisation points (prilo/operators/magnitude_loss.hpp):
// for the DFT one R2C, one block-per-image residual kernel and one C2R (the half-spectrum
// symmetrised formulation), for dense operators one residual kernel between two cuBLAS products.
// The loss itself, prilo::MagnitudeLoss<Op>, is one class for both executors.
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

/// Per column j (one block each) of a real (Split = false: u is m×B) or split complex (Split =
/// true: u is 2m×B, real parts in rows [0, m), imaginary parts in rows [m, 2m)) batch:
/// loss_j = Σ_i (|u_ij| − y_ij)² and u_ij ← 2(|u_ij| − y_ij)·u_ij/|u_ij| (0 where u_ij = 0).
template <class T, int Threads, bool Split>
__global__ void __launch_bounds__(Threads)
    magnitude_residual(T* __restrict__ u, const T* __restrict__ y, T* __restrict__ loss, std::int64_t m) {
  using Reduce = cub::BlockReduce<T, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const std::int64_t j = blockIdx.x;
  T* uc = u + j * (Split ? 2 * m : m);
  const T* yc = y + j * m;
  T acc = T(0);
  for (std::int64_t i = threadIdx.x; i < m; i += Threads) {
    const T re = uc[i], im = Split ? uc[m + i] : T(0);
    const T a = Split ? sqrt(re * re + im * im) : fabs(re);
    const T res = a - yc[i];
    acc += res * res;
    const T f = a > T(0) ? T(2) * (res / a) : T(0);
    uc[i] = re * f;
    if constexpr (Split) uc[m + i] = im * f;
  }
  const T total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) loss[j] = total;
}

/// a_ij = |u_ij| of a real (m×B) or split complex (2m×B) batch.
template <class T, bool Split>
__global__ void magnitudes(const T* __restrict__ u, T* __restrict__ a, std::int64_t m, std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    if constexpr (Split) {
      const std::int64_t j = k / m, i = k % m;
      const T re = u[j * 2 * m + i], im = u[j * 2 * m + m + i];
      a[k] = sqrt(re * re + im * im);
    } else {
      a[k] = fabs(u[k]);
    }
  }
}

}  // namespace kernels

/// A batch of complex measurements with real and imaginary parts stacked: a 2m×B real matrix,
/// rows [0, m) the real parts, rows [m, 2m) the imaginary parts (what one product with the
/// stacked matrix [A_re; A_im] gives for real images; gpu::GaussianComplex::apply).
template <class T>
struct SplitComplex {
  using scalar = T;
  DeviceMatrix<T> parts;
  Eigen::Index rows() const { return parts.rows() / 2; }
  Eigen::Index cols() const { return parts.cols(); }
};

/// The per-column values on the host (synchronises the executor's stream).
template <class T>
Vec<T> to_host_column(const CudaExecutor& ex, DeviceMatrix<T>&& v) {
  return v.download(ex.stream()).col(0);
}

/// The CUDA form of magnitude_residual for a real batch u (m×B): one block per column.
template <class T>
void magnitude_residual(const CudaExecutor& ex, DeviceMatrix<T>& u, const DeviceMatrix<T>& y, DeviceMatrix<T>& loss) {
  require_shape(u, y.rows(), y.cols(), "gpu magnitude residual");
  loss.resize(u.cols(), 1);
  if (u.empty()) return;
  kernels::magnitude_residual<T, kernels::kLossThreads, false>
      <<<unsigned(u.cols()), kernels::kLossThreads, 0, ex.stream()>>>(u.data(), y.data(), loss.data(), u.rows());
  PRILO_CUDA_CHECK_LAUNCH();
}
/// The same for a split complex batch.
template <class T>
void magnitude_residual(const CudaExecutor& ex, SplitComplex<T>& u, const DeviceMatrix<T>& y, DeviceMatrix<T>& loss) {
  require_shape(u.parts, 2 * y.rows(), y.cols(), "gpu magnitude residual (split complex)");
  loss.resize(u.cols(), 1);
  if (u.parts.empty()) return;
  kernels::magnitude_residual<T, kernels::kLossThreads, true>
      <<<unsigned(u.cols()), kernels::kLossThreads, 0, ex.stream()>>>(u.parts.data(), y.data(), loss.data(), y.rows());
  PRILO_CUDA_CHECK_LAUNCH();
}

/// |u| element-wise (m×B).
template <class T>
DeviceMatrix<T> magnitudes_of(const CudaExecutor& ex, const DeviceMatrix<T>& u) {
  DeviceMatrix<T> a(u.rows(), u.cols());
  const std::int64_t n = a.size();
  if (n == 0) return a;
  kernels::magnitudes<T, false><<<::prilo::gpu::detail::grid_for(n), ::prilo::gpu::detail::kThreads, 0, ex.stream()>>>(
      u.data(), a.data(), u.rows(), n);
  PRILO_CUDA_CHECK_LAUNCH();
  return a;
}
template <class T>
DeviceMatrix<T> magnitudes_of(const CudaExecutor& ex, const SplitComplex<T>& u) {
  DeviceMatrix<T> a(u.rows(), u.cols());
  const std::int64_t n = a.size();
  if (n == 0) return a;
  kernels::magnitudes<T, true><<<::prilo::gpu::detail::grid_for(n), ::prilo::gpu::detail::kThreads, 0, ex.stream()>>>(
      u.parts.data(), a.data(), u.rows(), n);
  PRILO_CUDA_CHECK_LAUNCH();
  return a;
}

/// S(c, j) = max(0, ‖a_c‖² + ‖y_j‖² − 2 a_cᵀ y_j) on the host (p×B): one GEMM, two column
/// reductions and one element-wise pass on the device.
template <class T>
Mat<T> magnitude_scores(const CudaExecutor& ex, const DeviceMatrix<T>& a, const DeviceMatrix<T>& y) {
  const Eigen::Index p = a.cols(), B = y.cols();
  DeviceMatrix<T> s(p, B), aa(p, 1), yy(B, 1);
  if (p == 0 || B == 0) return s.download(ex.stream());
  constexpr int kT = kernels::kLossThreads;
  kernels::column_sq_norms<T, kT><<<unsigned(p), kT, 0, ex.stream()>>>(a.data(), aa.data(), a.rows());
  PRILO_CUDA_CHECK_LAUNCH();
  kernels::column_sq_norms<T, kT><<<unsigned(B), kT, 0, ex.stream()>>>(y.data(), yy.data(), y.rows());
  PRILO_CUDA_CHECK_LAUNCH();
  gemm(ex.handle(), true, false, T(-2), a, y, T(0), s);
  const std::int64_t n = p * B;
  kernels::add_norms_clamp<T><<<::prilo::gpu::detail::grid_for(n), ::prilo::gpu::detail::kThreads, 0, ex.stream()>>>(
      s.data(), aa.data(), yy.data(), p, n);
  PRILO_CUDA_CHECK_LAUNCH();
  return s.download(ex.stream());
}

/// ȳ on the half spectrum (h·(w/2+1) × B) and the asymmetry Σ_k (y_k − ȳ_k)² per column (B×1).
template <class T>
void symmetrise_half_spectrum(const CudaExecutor& ex, const Fourier2d<T>& op, const DeviceMatrix<T>& y,
                              DeviceMatrix<T>& ybar, DeviceMatrix<T>& offset) {
  ybar.resize(op.half_size(), y.cols());
  offset.resize(y.cols(), 1);
  if (y.cols() == 0) return;
  kernels::symmetrise_magnitudes<T, kernels::kLossThreads>
      <<<unsigned(y.cols()), kernels::kLossThreads, 0, ex.stream()>>>(y.data(), ybar.data(), offset.data(), op.height(),
                                                                      op.width());
  PRILO_CUDA_CHECK_LAUNCH();
}

/// The fused pass on CUDA: one batched R2C, one block-per-image kernel and, for the gradient,
/// one batched C2R, asynchronous on the executor's stream (the bin weights are recomputed in
/// the kernel; the host copy is the CPU's).
template <class T>
void half_spectrum_loss(const CudaExecutor& ex, const Fourier2d<T>& op, const DeviceMatrix<T>& x,
                        const DeviceMatrix<T>& ybar, const Vec<T>& /*weight*/, const DeviceMatrix<T>& offset,
                        DeviceMatrix<T>* grad, DeviceMatrix<T>& loss, DeviceMatrix<std::complex<T>>& spec) {
  loss.resize(x.cols(), 1);
  if (x.cols() == 0) {
    if (grad) grad->resize(x.rows(), 0);
    return;
  }
  const cudaStream_t stream = ex.stream();
  op.forward_half(x, spec, stream);
  auto* X = reinterpret_cast<detail::complex2_t<T>*>(spec.data());
  constexpr int kT = kernels::kLossThreads;
  if (grad)
    kernels::half_spectrum_loss<T, kT, true><<<unsigned(x.cols()), kT, 0, stream>>>(
        X, ybar.data(), offset.data(), loss.data(), op.height(), op.width(), op.scale());
  else
    kernels::half_spectrum_loss<T, kT, false><<<unsigned(x.cols()), kT, 0, stream>>>(
        X, ybar.data(), offset.data(), loss.data(), op.height(), op.width(), op.scale());
  PRILO_CUDA_CHECK_LAUNCH();
  if (grad) op.backward_half(spec, *grad, stream);
}

/// MII's scores on CUDA (host p×B): one batched R2C, one kernel for the weighted magnitudes and
/// their norms, one for the measurements' weighted norms, one GEMM on the weighted half spectrum.
template <class T>
Mat<T> half_spectrum_scores(const CudaExecutor& ex, const Fourier2d<T>& op, const DeviceMatrix<T>& candidates,
                            const DeviceMatrix<T>& ybar, const Vec<T>& /*weight*/, const DeviceMatrix<T>& offset,
                            DeviceMatrix<std::complex<T>>& spec) {
  const Eigen::Index p = candidates.cols(), B = ybar.cols();
  const cudaStream_t stream = ex.stream();
  DeviceMatrix<T> s(p, B);
  if (p == 0 || B == 0) return s.download(stream);
  op.forward_half(candidates, spec, stream);
  DeviceMatrix<T> wa(op.half_size(), p), aa(p, 1), yy(B, 1);
  constexpr int kT = kernels::kLossThreads;
  kernels::weighted_magnitudes<T, kT>
      <<<unsigned(p), kT, 0, stream>>>(reinterpret_cast<const detail::complex2_t<T>*>(spec.data()), wa.data(),
                                       aa.data(), op.height(), op.width(), op.scale());
  PRILO_CUDA_CHECK_LAUNCH();
  kernels::weighted_norms<T, kT>
      <<<unsigned(B), kT, 0, stream>>>(ybar.data(), offset.data(), yy.data(), op.height(), op.width());
  PRILO_CUDA_CHECK_LAUNCH();
  // S = −2 waᵀ ȳ: wt·a·ȳ summed over the half spectrum is the weighted inner product
  gemm(ex.handle(), true, false, T(-2), wa, ybar, T(0), s);
  const std::int64_t n = p * B;
  kernels::add_norms_clamp<T><<<::prilo::gpu::detail::grid_for(n), ::prilo::gpu::detail::kThreads, 0, stream>>>(
      s.data(), aa.data(), yy.data(), p, n);
  PRILO_CUDA_CHECK_LAUNCH();
  return s.download(stream);
}

/// The device DFT's magnitude loss: the one prilo::MagnitudeLoss class on the CUDA executor.
template <class T>
using MagnitudeLoss = ::prilo::MagnitudeLoss<Fourier2d<T>>;

}  // namespace prilo::gpu

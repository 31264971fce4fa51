// Fully connected layer on the GPU: y = act(W x + b) with cuBLAS GEMM and a fused bias +
// activation kernel; the same semantics as prilo::nn::Dense (prilo/nn/linear.hpp).
#pragma once

#include "config.cuh"

#include <cstdint>
#include <type_traits>

#include "../../nn/linear.hpp"
#include "blas.cuh"
#include "device_matrix.cuh"
#include "elementwise.cuh"
#include "error.cuh"

namespace prilo::gpu {

namespace kernels {

/// y_ij ← act(y_ij + b_i) over a rows × cols column-major matrix.
template <class T, class Act>
__global__ void bias_activation(T* __restrict__ y, const T* __restrict__ b, std::int64_t rows, std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x)
    y[k] = DeviceActivation<Act>::value(y[k] + b[k % rows]);
}

/// g ← gy ⊙ act'(y) (derivative written in terms of the output).
template <class T, class Act>
__global__ void activation_backward(const T* __restrict__ gy, const T* __restrict__ y, T* __restrict__ g,
                                    std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x)
    g[k] = gy[k] * DeviceActivation<Act>::derivative_from_output(y[k]);
}

}  // namespace kernels

/// y = act(W x + b) for a device batch x (one sample per column), W ∈ ℝ^{out×in}, bias a
/// out×1 device matrix. Backprop with g = gy ⊙ act'(y): ∂/∂x = Wᵀ g, ∂/∂W += g xᵀ,
/// ∂/∂b += Σ_columns g. Act is one of prilo::nn::{Identity, Relu, LeakyRelu, Sigmoid, Tanh}.
/// Work is queued on the BlasHandle's stream (default: the per-thread default handle).
template <class T, class Act = nn::Identity>
class Dense {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gpu::Dense: float or double");

 public:
  using scalar = T;
  using activation = Act;

  Dense() = default;
  /// Uploads the weights and bias of a CPU layer (gradients start at zero).
  explicit Dense(const nn::Dense<T, Act>& host) { upload(host); }
  /// The same initialisation as nn::Dense(in, out, rng) (drawn on the host, then uploaded).
  Dense(Eigen::Index in, Eigen::Index out, Rng& rng) : Dense(nn::Dense<T, Act>(in, out, rng)) {}

  void upload(const nn::Dense<T, Act>& host) {
    w_.upload(host.weight());
    b_.upload(Mat<T>(host.bias()));
    gw_ = DeviceMatrix<T>::zeros(w_.rows(), w_.cols());
    gb_ = DeviceMatrix<T>::zeros(b_.rows(), 1);
  }
  /// Copies the weights back into a CPU layer of the same shape.
  void download(nn::Dense<T, Act>& host) const {
    require_shape(host.weight(), w_.rows(), w_.cols(), "gpu::Dense::download weight");
    host.weight() = w_.download();
    host.bias() = b_.download().col(0);
  }

  Eigen::Index input_size() const { return w_.cols(); }
  Eigen::Index output_size() const { return w_.rows(); }
  DeviceMatrix<T>& weight() { return w_; }
  DeviceMatrix<T>& bias() { return b_; }
  const DeviceMatrix<T>& weight() const { return w_; }
  const DeviceMatrix<T>& bias() const { return b_; }
  const DeviceMatrix<T>& grad_weight() const { return gw_; }
  const DeviceMatrix<T>& grad_bias() const { return gb_; }

  void zero_grad(cudaStream_t stream = nullptr) {
    gw_.set_zero(stream);
    gb_.set_zero(stream);
  }

  void forward(const DeviceMatrix<T>& x, DeviceMatrix<T>& y, BlasHandle& h = default_blas_handle()) const {
    require_shape(x, w_.cols(), x.cols(), "gpu::Dense input");
    gemm(h, false, false, T(1), w_, x, T(0), y);
    if (y.empty()) return;
    const std::int64_t n = y.size();
    kernels::bias_activation<T, Act>
        <<<detail::grid_for(n), detail::kThreads, 0, h.stream()>>>(y.data(), b_.data(), y.rows(), n);
    PRILO_CUDA_CHECK_LAUNCH();
  }

  /// The input cotangent only, without touching the layer: gx = Wᵀ (gy ⊙ act'(y)), with
  /// `scratch` holding gy ⊙ act'(y) (const: a generator's VJP for reconstruction).
  void backward_input(const DeviceMatrix<T>& y, const DeviceMatrix<T>& gy, DeviceMatrix<T>& gx,
                      DeviceMatrix<T>& scratch, BlasHandle& h = default_blas_handle()) const {
    require_shape(y, w_.rows(), y.cols(), "gpu::Dense output y");
    require_shape(gy, w_.rows(), y.cols(), "gpu::Dense output gradient gy");
    const DeviceMatrix<T>* gp = &gy;
    if constexpr (!std::is_same_v<Act, nn::Identity>) {
      scratch.resize(gy.rows(), gy.cols());
      if (!scratch.empty()) {
        const std::int64_t n = gy.size();
        kernels::activation_backward<T, Act>
            <<<detail::grid_for(n), detail::kThreads, 0, h.stream()>>>(gy.data(), y.data(), scratch.data(), n);
        PRILO_CUDA_CHECK_LAUNCH();
      }
      gp = &scratch;
    }
    gemm(h, true, false, T(1), w_, *gp, T(0), gx);
  }

  /// Given input x, output y and output cotangent gy: writes ∂/∂x into *gx (if gx) and, if
  /// accumulate_weights, adds ∂/∂W and ∂/∂b to the gradient buffers.
  void backward(const DeviceMatrix<T>& x, const DeviceMatrix<T>& y, const DeviceMatrix<T>& gy, DeviceMatrix<T>* gx,
                bool accumulate_weights, BlasHandle& h = default_blas_handle()) {
    require_shape(y, w_.rows(), x.cols(), "gpu::Dense output y");
    require_shape(gy, w_.rows(), x.cols(), "gpu::Dense output gradient gy");
    const DeviceMatrix<T>* gp = &gy;
    if constexpr (!std::is_same_v<Act, nn::Identity>) {
      g_.resize(gy.rows(), gy.cols());
      if (!g_.empty()) {
        const std::int64_t n = gy.size();
        kernels::activation_backward<T, Act>
            <<<detail::grid_for(n), detail::kThreads, 0, h.stream()>>>(gy.data(), y.data(), g_.data(), n);
        PRILO_CUDA_CHECK_LAUNCH();
      }
      gp = &g_;
    }
    if (accumulate_weights) {
      gemm(h, false, true, T(1), *gp, x, T(1), gw_);
      // ∂/∂b += g · 1 (row sums as a GEMV with a ones vector)
      if (ones_.rows() != gp->cols()) {
        ones_.resize(gp->cols(), 1);
        fill(ones_, T(1), h.stream());
      }
      gemm(h, false, false, T(1), *gp, ones_, T(1), gb_);
    }
    if (gx) gemm(h, true, false, T(1), w_, *gp, T(0), *gx);
  }

 private:
  DeviceMatrix<T> w_, b_, gw_, gb_;
  DeviceMatrix<T> g_, ones_;  // scratch
};

/// y = W x + b on the GPU.
template <class T>
using Linear = Dense<T, nn::Identity>;

}  // namespace prilo::gpu

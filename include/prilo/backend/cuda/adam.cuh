// Adam on device batches with Welling–Teh gradient noise (Philox) and a device projection:
// the counterpart of prilo::Adam (prilo/optim/optimizers.hpp), one fused kernel per step.
#pragma once

#include "config.cuh"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../optim/optimizers.hpp"
#include "device_matrix.cuh"
#include "elementwise.cuh"
#include "error.cuh"
#include "l1_ball.cuh"
#include "random.cuh"

namespace prilo::gpu {

namespace kernels {

/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², x ← x − α (m·c₁)/(√(v·c₂) + ε), with
/// g = ∇ + σ·u, u ~ N(0, 1) drawn from Philox(seed, element, step) when Noise.
template <class T, bool Noise>
__global__ void adam_step(T* __restrict__ x, T* __restrict__ m, T* __restrict__ v, const T* __restrict__ grad,
                          std::int64_t n, T b1, T b2, T c1, T c2, T lr, T eps, T sigma, std::uint64_t seed,
                          std::uint64_t step) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    T g = grad[i];
    if constexpr (Noise) g += sigma * Philox::normal<T>(seed, std::uint64_t(i), step);
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    x[i] -= lr * (mi * c1) / (sqrt(vi * c2) + eps);
  }
}

}  // namespace kernels

/// Adam (Kingma & Ba 2015) with bias correction on a device batch, gradient noise from a
/// NoiseSchedule (NoNoise or WellingTeh: σ_k evaluated on the host for step k, the normals
/// drawn on the device) and a projection after every step (gpu::Unconstrained or
/// gpu::L1Ball). Same update as prilo::Adam; without noise the two agree to rounding.
/// Asynchronous on `stream`: no host round trip per step.
template <class T, class Projection = Unconstrained, class Noise = NoNoise>
class Adam {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gpu::Adam: float or double");

 public:
  Adam(AdamOptions<T> opt = {}, Projection proj = {}, Noise noise = {}) : opt_(opt), proj_(std::move(proj)), noise_(noise) {}
  void reset() {
    k_ = 0;
    m_.resize(0, 0);
    v_.resize(0, 0);
  }
  int iteration() const { return k_; }
  Projection& projection() { return proj_; }
  const DeviceMatrix<T>& first_moment() const { return m_; }
  const DeviceMatrix<T>& second_moment() const { return v_; }

  void step(DeviceMatrix<T>& x, const DeviceMatrix<T>& grad, const DeviceMatrix<T>& centre, Philox& rng,
            cudaStream_t stream = nullptr) {
    require_shape(grad, x.rows(), x.cols(), "gpu::Adam gradient");
    if (centre.size() != 0 && !(centre.rows() == x.rows() && (centre.cols() == x.cols() || centre.cols() == 1)))
      ::prilo::detail::fail("gpu::Adam centre: expected ", x.rows(), "x", x.cols(), " or ", x.rows(), "x1, got ",
                            centre.rows(), "x", centre.cols());
    if (m_.rows() != x.rows() || m_.cols() != x.cols()) {
      m_ = DeviceMatrix<T>::zeros(x.rows(), x.cols(), stream);
      v_ = DeviceMatrix<T>::zeros(x.rows(), x.cols(), stream);
    }
    T sigma = T(0);
    std::uint64_t step = 0;
    if constexpr (Noise::enabled) {
      sigma = noise_.template sigma<T>(k_);
      step = rng.next_step();
    }
    ++k_;
    const T b1 = opt_.beta1, b2 = opt_.beta2;
    const T c1 = T(1) / (T(1) - std::pow(b1, T(k_)));
    const T c2 = T(1) / (T(1) - std::pow(b2, T(k_)));
    const std::int64_t n = x.size();
    if (n > 0) {
      if (sigma > T(0))
        kernels::adam_step<T, true><<<detail::grid_for(n), detail::kThreads, 0, stream>>>(
            x.data(), m_.data(), v_.data(), grad.data(), n, b1, b2, c1, c2, opt_.learning_rate, opt_.epsilon, sigma,
            rng.seed(), step);
      else
        kernels::adam_step<T, false><<<detail::grid_for(n), detail::kThreads, 0, stream>>>(
            x.data(), m_.data(), v_.data(), grad.data(), n, b1, b2, c1, c2, opt_.learning_rate, opt_.epsilon, T(0),
            0, 0);
      PRILO_CUDA_CHECK_LAUNCH();
    }
    proj_.project(x, centre, stream);
  }

 private:
  AdamOptions<T> opt_;
  Projection proj_;
  Noise noise_;
  DeviceMatrix<T> m_, v_;
  int k_ = 0;
};

}  // namespace prilo::gpu

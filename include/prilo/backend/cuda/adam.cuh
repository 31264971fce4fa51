// The fused Adam kernel of the CUDA executor (adam_update in backend/cuda/executor.cuh):
// noise, moments and update in one pass; prilo::Adam (prilo/optim/optimisers.hpp) calls it.
#pragma once

#include "config.cuh"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "device_matrix.cuh"
#include "elementwise.cuh"
#include "error.cuh"
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

}  // namespace prilo::gpu

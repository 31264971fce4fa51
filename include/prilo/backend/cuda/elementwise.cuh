// Element-wise maps and reductions on DeviceMatrix (Thrust), launch helpers, device activations.
#pragma once

#include "config.cuh"

#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <cstdint>

#include "../../nn/activations.hpp"
#include "device_matrix.cuh"
#include "error.cuh"

namespace prilo::gpu {

namespace detail {
inline constexpr int kThreads = 256;
/// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned grid_for(std::int64_t n, int threads = kThreads) {
  const std::int64_t b = (n + threads - 1) / threads;
  return unsigned(std::clamp<std::int64_t>(b, 1, 65535LL * 8));
}

// Functors (not extended lambdas, so that users need no --extended-lambda flag).
template <class T>
struct axpy_op {
  T a;
  __host__ __device__ T operator()(T x, T y) const { return a * x + y; }
};
template <class T>
struct square_op {
  __host__ __device__ T operator()(T v) const { return v * v; }
};
template <class T>
struct abs_diff_at {
  const T* a;
  const T* b;
  __host__ __device__ T operator()(std::int64_t i) const { return a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]; }
};
/// The larger of a and b, or a NaN when either is one (thrust::maximum, lhs < rhs ? rhs : lhs,
/// drops a NaN right-hand operand, so a reduction's result would depend on its order).
template <class T>
struct nan_max_op {
  __host__ __device__ T operator()(T a, T b) const { return a != a ? a : (b != b || a < b) ? b : a; }
};
}  // namespace detail

/// Device versions of the activations of prilo/nn/activations.hpp (same formulas), with
/// cotangent(g, y) = g·act'(y) as nn::cotangent computes it: a select for Identity, ReLU and
/// LeakyReLU (a dead ReLU unit gives 0 for every g, NaN and infinite included).
template <class Act>
struct DeviceActivation;
template <>
struct DeviceActivation<nn::Identity> {
  template <class T>
  __host__ __device__ static T value(T v) {
    return v;
  }
  template <class T>
  __host__ __device__ static T derivative_from_output(T) {
    return T(1);
  }
  template <class T>
  __host__ __device__ static T cotangent(T g, T) {
    return g;
  }
};
template <>
struct DeviceActivation<nn::Relu> {
  template <class T>
  __host__ __device__ static T value(T v) {
    return v > T(0) ? v : T(0);
  }
  template <class T>
  __host__ __device__ static T derivative_from_output(T y) {
    return y > T(0) ? T(1) : T(0);
  }
  template <class T>
  __host__ __device__ static T cotangent(T g, T y) {
    return y > T(0) ? g : T(0);
  }
};
template <>
struct DeviceActivation<nn::LeakyRelu> {
  template <class T>
  __host__ __device__ static T value(T v) {
    return v > T(0) ? v : T(nn::LeakyRelu::slope) * v;
  }
  template <class T>
  __host__ __device__ static T derivative_from_output(T y) {
    return y > T(0) ? T(1) : T(nn::LeakyRelu::slope);
  }
  template <class T>
  __host__ __device__ static T cotangent(T g, T y) {
    return y > T(0) ? g : T(nn::LeakyRelu::slope) * g;
  }
};
template <>
struct DeviceActivation<nn::Sigmoid> {
  template <class T>
  __host__ __device__ static T value(T v) {
    return T(1) / (T(1) + exp(-v));
  }
  template <class T>
  __host__ __device__ static T derivative_from_output(T y) {
    return y * (T(1) - y);
  }
  template <class T>
  __host__ __device__ static T cotangent(T g, T y) {
    return g * derivative_from_output(y);
  }
};
template <>
struct DeviceActivation<nn::Tanh> {
  template <class T>
  __host__ __device__ static T value(T v) {
    return tanh(v);
  }
  template <class T>
  __host__ __device__ static T derivative_from_output(T y) {
    return T(1) - y * y;
  }
  template <class T>
  __host__ __device__ static T cotangent(T g, T y) {
    return g * derivative_from_output(y);
  }
};

/// Every entry set to v.
template <class T>
void fill(DeviceMatrix<T>& m, T v, cudaStream_t stream = nullptr) {
  if (m.empty()) return;
  thrust::fill(thrust::cuda::par.on(stream), m.data(), m.data() + m.size(), v);
}

/// y ← a·x + y (same shapes).
template <class T>
void axpy(T a, const DeviceMatrix<T>& x, DeviceMatrix<T>& y, cudaStream_t stream = nullptr) {
  require_shape(y, x.rows(), x.cols(), "axpy y");
  if (x.empty()) return;
  thrust::transform(thrust::cuda::par.on(stream), x.data(), x.data() + x.size(), y.data(), y.data(),
                    detail::axpy_op<T>{a});
}

/// Σ of all entries (synchronises the stream: the result is returned to the host).
template <class T>
T sum(const DeviceMatrix<T>& m, cudaStream_t stream = nullptr) {
  if (m.empty()) return T(0);
  return thrust::reduce(thrust::cuda::par.on(stream), m.data(), m.data() + m.size(), T(0), thrust::plus<T>());
}

/// Σ |m_i|² (synchronises the stream).
template <class T>
T squared_norm(const DeviceMatrix<T>& m, cudaStream_t stream = nullptr) {
  if (m.empty()) return T(0);
  return thrust::transform_reduce(thrust::cuda::par.on(stream), m.data(), m.data() + m.size(), detail::square_op<T>{},
                                  T(0), thrust::plus<T>());
}

/// max_i |a_i − b_i| (synchronises the stream): handy for comparing device results. NaN when
/// any difference is NaN.
template <class T>
T max_abs_diff(const DeviceMatrix<T>& a, const DeviceMatrix<T>& b, cudaStream_t stream = nullptr) {
  require_shape(b, a.rows(), a.cols(), "max_abs_diff b");
  if (a.empty()) return T(0);
  const T* bp = b.data();
  const T* ap = a.data();
  return thrust::transform_reduce(thrust::cuda::par.on(stream), thrust::counting_iterator<std::int64_t>(0),
                                  thrust::counting_iterator<std::int64_t>(a.size()), detail::abs_diff_at<T>{ap, bp},
                                  T(0), detail::nan_max_op<T>{});
}

}  // namespace prilo::gpu

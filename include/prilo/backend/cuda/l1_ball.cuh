// Batched exact projection onto l1 balls on the GPU: one thread block per column, the
// Newton/Michelot threshold iteration of prilo::l1::newton with CUB block reductions.
#pragma once

#include "config.cuh"

#include <cub/block/block_reduce.cuh>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "../../concepts/projection.hpp"
#include "device_matrix.cuh"
#include "error.cuh"

namespace prilo::gpu {

namespace kernels {

inline constexpr int kProjectThreads = 256;

template <class T>
struct SumCount {
  T sum;
  int count;
};
template <class T>
struct SumCountPlus {
  __device__ SumCount<T> operator()(const SumCount<T>& a, const SumCount<T>& b) const {
    return {a.sum + b.sum, a.count + b.count};
  }
};

/// Block j projects column j of x (n rows) onto { p : ‖p − c_j‖₁ ≤ r }, c_j the column j of
/// `centre` (or its only column when centre_ld == 0). With d = x_j − c_j:
///   ‖d‖₁ ≤ r: untouched (bit for bit); r = 0: x_j = c_j; otherwise
///   τ₀ = (‖d‖₁ − r)/n, τ_{k+1} = (Σ_{|d_i|>τ_k} |d_i| − r)/#{|d_i| > τ_k}, stopping when the
///   active count stops shrinking (exact: see prilo::l1::newton), then
///   x_i = c_i + sign(d_i)·max(|d_i| − τ, 0).
/// A column whose distance is NaN or infinite is left untouched and counted in *nonfinite.
/// Every pass re-reads the column from global memory (L1/L2 resident for typical n).
template <class T, int Threads>
__global__ void __launch_bounds__(Threads)
    l1_ball_project(T* __restrict__ x, const T* __restrict__ centre, std::int64_t n, std::int64_t centre_ld, T r,
                    int* __restrict__ nonfinite) {
  using Reduce = cub::BlockReduce<SumCount<T>, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ SumCount<T> result;
  const std::int64_t j = blockIdx.x;
  T* xj = x + j * n;
  const T* cj = centre + j * centre_ld;

  auto reduce_above = [&](T tau, bool all) {
    SumCount<T> local{T(0), 0};
    for (std::int64_t i = threadIdx.x; i < n; i += Threads) {
      const T a = fabs(xj[i] - cj[i]);
      if (all || a > tau) {
        local.sum += a;
        local.count += 1;
      }
    }
    const SumCount<T> total = Reduce(tmp).Reduce(local, SumCountPlus<T>());
    if (threadIdx.x == 0) result = total;
    __syncthreads();
    const SumCount<T> out = result;
    __syncthreads();  // tmp and result are reused by the next pass
    return out;
  };

  const T dist = reduce_above(T(0), true).sum;
  if (!isfinite(dist)) {
    if (threadIdx.x == 0 && nonfinite) atomicAdd(nonfinite, 1);
    return;
  }
  if (dist <= r) return;
  if (r == T(0)) {
    for (std::int64_t i = threadIdx.x; i < n; i += Threads) xj[i] = cj[i];
    return;
  }
  T tau = (dist - r) / T(n);
  std::int64_t count = n;
  for (;;) {  // the count strictly decreases, so at most n passes
    const SumCount<T> sc = reduce_above(tau, false);
    if (sc.count >= count || sc.count == 0) break;
    tau = (sc.sum - r) / T(sc.count);
    count = sc.count;
  }
  for (std::int64_t i = threadIdx.x; i < n; i += Threads) {
    const T d = xj[i] - cj[i];
    xj[i] = cj[i] + copysign(fmax(fabs(d) - tau, T(0)), d);
  }
}

}  // namespace kernels

/// The identity projection for device batches.
struct Unconstrained {
  template <class T>
  void project(DeviceMatrix<T>&, const DeviceMatrix<T>&, cudaStream_t = nullptr) const {}
};

/// Projection of every column x_j onto the l1 ball of the given radius around the centre
/// column c_j (centre n×B, or n×1 broadcast), the device counterpart of prilo::L1Ball<T>
/// (its default Newton/Michelot algorithm). Entirely on the device: no host round trip, the
/// call is asynchronous on `stream`. Columns already inside are untouched. Shapes and the
/// radius are checked on the host (invalid_input); a column with NaN/infinite values is left
/// unchanged and, when `nonfinite_count` (a device int) is given, counted there.
template <class T>
struct L1Ball {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gpu::L1Ball: float or double");
  T radius = std::numeric_limits<T>::quiet_NaN();

  void project(DeviceMatrix<T>& x, const DeviceMatrix<T>& centre, cudaStream_t stream = nullptr,
               int* nonfinite_count = nullptr) const {
    ::prilo::detail::require_radius(radius, "gpu::L1Ball");
    ::prilo::detail::require_centre_shape(x, centre, "gpu::L1Ball");
    if (x.rows() == 0 || x.cols() == 0) return;
    constexpr int threads = kernels::kProjectThreads;
    const std::int64_t ld = centre.cols() == 1 ? 0 : centre.rows();
    kernels::l1_ball_project<T, threads>
        <<<unsigned(x.cols()), threads, 0, stream>>>(x.data(), centre.data(), x.rows(), ld, radius, nonfinite_count);
    PRILO_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace prilo::gpu

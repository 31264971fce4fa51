// The CUDA executor and its forms of the customisation points of prilo/exec/executor.hpp and
// prilo/exec/kernels.hpp: the same contracts as the CPU forms, on device batches, asynchronous
// on the executor's stream.
#pragma once

#include "config.cuh"

#include <cuda_runtime.h>
#include <cub/block/block_reduce.cuh>

#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "../../exec/executor.hpp"
#include "../../optim/optimisers.hpp"
#include "../../projection/blocks.hpp"
#include "../../projection/l1_ball.hpp"
#include "../../projection/none.hpp"
#include "../../solvers/column_blocks.hpp"
#include "adam.cuh"
#include "backend.cuh"
#include "blas.cuh"
#include "device_matrix.cuh"
#include "elementwise.cuh"
#include "error.cuh"
#include "l1_ball.cuh"
#include "random.cuh"

namespace prilo::gpu {

/// The CUDA executor: batches are DeviceMatrix, products go to cuBLAS on `blas` (null: the
/// calling thread's default handle, on the legacy default stream), element-wise work and
/// reductions are kernels on the handle's stream, normal numbers come from Philox keyed by
/// draws of the host Rng (so a seed fixes a run on a given device). Copies share one state:
/// a device flag where kernels count non-finite columns, checked by finish_phase.
struct CudaExecutor {
  using backend = ::prilo::cuda;
  template <class T>
  using matrix = DeviceMatrix<T>;

  BlasHandle* blas = nullptr;

  BlasHandle& handle() const { return blas ? *blas : default_blas_handle(); }
  cudaStream_t stream() const { return handle().stream(); }
  /// The device counter of non-finite columns (allocated and zeroed on first use).
  int* nonfinite_counter() const {
    if (state_->counter.empty()) state_->counter = DeviceMatrix<int>::zeros(1, 1, stream());
    return state_->counter.data();
  }
  /// Reads and clears the counter (synchronises the stream).
  int take_nonfinite() const {
    if (state_->counter.empty()) return 0;
    int n = 0;
    PRILO_CUDA_CHECK(cudaMemcpyAsync(&n, state_->counter.data(), sizeof(int), cudaMemcpyDeviceToHost, stream()));
    PRILO_CUDA_CHECK(cudaStreamSynchronize(stream()));
    if (n != 0) state_->counter.set_zero(stream());
    return n;
  }

 private:
  struct State {
    DeviceMatrix<int> counter;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};
static_assert(Executor<CudaExecutor>);

namespace kernels {

template <class T>
__global__ void scaled_difference(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b, T s,
                                  std::int64_t n) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = s == T(1) ? a[i] - b[i] : (a[i] - b[i]) * s;
}

template <class T, int Threads>
__global__ void __launch_bounds__(Threads)
    column_sq_norms(const T* __restrict__ m, T* __restrict__ out, std::int64_t rows) {
  using Reduce = cub::BlockReduce<T, Threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const T* c = m + std::int64_t(blockIdx.x) * rows;
  T acc = T(0);
  for (std::int64_t i = threadIdx.x; i < rows; i += Threads) acc += c[i] * c[i];
  const T total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) out[blockIdx.x] = total;
}

template <class T>
__global__ void copy_columns(T* __restrict__ dst, const T* __restrict__ src, const std::int64_t* __restrict__ cols,
                             std::int64_t rows, std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t at = cols[k / rows] * rows + k % rows;
    dst[at] = src[at];
  }
}

template <class T>
__global__ void add_normal(T* __restrict__ g, T sigma, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    g[i] += sigma * Philox::normal<T>(seed, std::uint64_t(i), 0);
}

template <class T, bool Noise>
__global__ void gradient_step(T* __restrict__ x, const T* __restrict__ g, T lr, T sigma, std::int64_t n,
                              std::uint64_t seed) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    T gi = g[i];
    if constexpr (Noise) gi += sigma * Philox::normal<T>(seed, std::uint64_t(i), 0);
    x[i] -= lr * gi;
  }
}

/// y_ij ← act(y_ij + b_i) over a rows × cols column-major matrix.
template <class T, class Act>
__global__ void bias_activation(T* __restrict__ y, const T* __restrict__ b, std::int64_t rows, std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x)
    y[k] = DeviceActivation<Act>::value(y[k] + b[k % rows]);
}

/// g ← gy ⊙ act'(y) (derivative written in terms of the output; nn::cotangent's selects).
template <class T, class Act>
__global__ void activation_cotangent(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ g,
                                     std::int64_t n) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x)
    g[k] = DeviceActivation<Act>::cotangent(gy[k], y[k]);
}

/// gb_i ← gb_i + Σ_j g_ij. A block covers kRowTile consecutive rows (threadIdx.x: one row, so
/// a warp reads 32 consecutive entries of a column) and kColGroups strided column groups
/// (threadIdx.y), summed in shared memory in a fixed order: deterministic, no atomics.
inline constexpr int kRowTile = 32, kColGroups = 8;
template <class T>
__global__ void __launch_bounds__(kRowTile* kColGroups)
    add_row_sums(const T* __restrict__ g, T* __restrict__ gb, std::int64_t rows, std::int64_t cols) {
  __shared__ T part[kColGroups][kRowTile + 1];
  const std::int64_t i = std::int64_t(blockIdx.x) * kRowTile + threadIdx.x;
  T acc = T(0);
  if (i < rows)
    for (std::int64_t j = threadIdx.y; j < cols; j += kColGroups) acc += g[j * rows + i];
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && i < rows) {
    T s = part[0][threadIdx.x];
    for (int k = 1; k < kColGroups; ++k) s += part[k][threadIdx.x];
    gb[i] += s;
  }
}

}  // namespace kernels

// ---- customisation points, CUDA forms (found by argument-dependent lookup) ----

template <class T>
DeviceMatrix<T> zeros(const CudaExecutor& ex, Eigen::Index rows, Eigen::Index cols) {
  return DeviceMatrix<T>::zeros(rows, cols, ex.stream());
}

template <class T>
DeviceMatrix<T> clone(const CudaExecutor& ex, const DeviceMatrix<T>& m) {
  return m.clone(ex.stream());
}

template <class T>
void scaled_difference(const CudaExecutor& ex, DeviceMatrix<T>& out, const DeviceMatrix<T>& a, const DeviceMatrix<T>& b,
                       T s) {
  require_shape(b, a.rows(), a.cols(), "scaled_difference b");
  out.resize(a.rows(), a.cols());
  const std::int64_t n = a.size();
  if (n == 0) return;
  kernels::scaled_difference<T>
      <<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(out.data(), a.data(), b.data(), s, n);
  PRILO_CUDA_CHECK_LAUNCH();
}

template <class T>
Vec<T> column_sq_norms(const CudaExecutor& ex, const DeviceMatrix<T>& m) {
  DeviceMatrix<T> out(m.cols(), 1);
  if (m.cols() > 0) {
    constexpr int threads = 256;
    kernels::column_sq_norms<T, threads>
        <<<unsigned(m.cols()), threads, 0, ex.stream()>>>(m.data(), out.data(), m.rows());
    PRILO_CUDA_CHECK_LAUNCH();
  }
  return out.download(ex.stream()).col(0);
}

template <class T>
void copy_columns(const CudaExecutor& ex, DeviceMatrix<T>& dst, const DeviceMatrix<T>& src,
                  std::span<const Eigen::Index> cols) {
  require_shape(src, dst.rows(), dst.cols(), "copy_columns source");
  if (cols.empty() || dst.rows() == 0) return;
  static_assert(sizeof(Eigen::Index) == sizeof(std::int64_t));
  Mat<std::int64_t> host(std::int64_t(cols.size()), 1);
  for (std::size_t k = 0; k < cols.size(); ++k) {
    if (cols[k] < 0 || cols[k] >= dst.cols())
      ::prilo::detail::fail("copy_columns: column ", cols[k], " outside 0..", dst.cols() - 1);
    host(std::int64_t(k)) = cols[k];
  }
  const DeviceMatrix<std::int64_t> idx(host, ex.stream());
  const std::int64_t n = dst.rows() * std::int64_t(cols.size());
  kernels::copy_columns<T>
      <<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(dst.data(), src.data(), idx.data(), dst.rows(), n);
  PRILO_CUDA_CHECK_LAUNCH();
  PRILO_CUDA_CHECK(cudaStreamSynchronize(ex.stream()));  // idx is freed on return
}

template <class T>
Mat<T> to_host(const CudaExecutor& ex, const DeviceMatrix<T>& m) {
  return m.download(ex.stream());
}
template <class T>
DeviceMatrix<T> from_host(const CudaExecutor& ex, const Mat<T>& m) {
  return DeviceMatrix<T>(m, ex.stream());
}

template <class T>
void add_normal(const CudaExecutor& ex, DeviceMatrix<T>& g, T sigma, Rng& rng) {
  if (!(sigma > T(0)) || g.empty()) return;
  const std::int64_t n = g.size();
  kernels::add_normal<T><<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(g.data(), sigma, n, rng.next_u64());
  PRILO_CUDA_CHECK_LAUNCH();
}

/// One fused kernel: noise (Philox keyed by one draw of rng), moments and update.
template <class T>
void adam_update(const CudaExecutor& ex, DeviceMatrix<T>& x, DeviceMatrix<T>& m, DeviceMatrix<T>& v,
                 const DeviceMatrix<T>& grad, const AdamStep<T>& c, T sigma, Rng& rng, DeviceMatrix<T>&) {
  const std::int64_t n = x.size();
  if (n == 0) return;
  if (sigma > T(0))
    kernels::adam_step<T, true><<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(
        x.data(), m.data(), v.data(), grad.data(), n, c.beta1, c.beta2, c.c1, c.c2, c.learning_rate, c.epsilon, sigma,
        rng.next_u64(), 0);
  else
    kernels::adam_step<T, false><<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(
        x.data(), m.data(), v.data(), grad.data(), n, c.beta1, c.beta2, c.c1, c.c2, c.learning_rate, c.epsilon, T(0), 0,
        0);
  PRILO_CUDA_CHECK_LAUNCH();
}

template <class T>
void gradient_step(const CudaExecutor& ex, DeviceMatrix<T>& x, const DeviceMatrix<T>& grad, T learning_rate, T sigma,
                   Rng& rng, DeviceMatrix<T>&) {
  const std::int64_t n = x.size();
  if (n == 0) return;
  if (sigma > T(0))
    kernels::gradient_step<T, true><<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(
        x.data(), grad.data(), learning_rate, sigma, n, rng.next_u64());
  else
    kernels::gradient_step<T, false>
        <<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(x.data(), grad.data(), learning_rate, T(0), n, 0);
  PRILO_CUDA_CHECK_LAUNCH();
}

// -- the layers' customisation points (prilo/exec/kernels.hpp) --

/// C ← α·op(A)·op(B) + β·C with cuBLAS on the executor's handle (gpu::gemm: C resized when
/// β = 0; C another matrix than A and B, as on the CPU).
template <class T>
void gemm(const CudaExecutor& ex, bool trans_a, bool trans_b, T alpha, const DeviceMatrix<T>& a,
          const DeviceMatrix<T>& b, T beta, DeviceMatrix<T>& c) {
  gemm(ex.handle(), trans_a, trans_b, alpha, a, b, beta, c);
}

/// y_ij ← act(y_ij + b_i): one kernel (b is a y.rows() × 1 device matrix).
template <class T, class Act>
void bias_activation(const CudaExecutor& ex, Act, DeviceMatrix<T>& y, const DeviceMatrix<T>& b) {
  require_shape(b, y.rows(), 1, "bias_activation bias");
  if (y.empty()) return;
  const std::int64_t n = y.size();
  kernels::bias_activation<T, Act>
      <<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(y.data(), b.data(), y.rows(), n);
  PRILO_CUDA_CHECK_LAUNCH();
}

/// out ← gy ⊙ act'(y): one kernel (out resized to gy's shape).
template <class T, class Act>
void activation_cotangent(const CudaExecutor& ex, Act, const DeviceMatrix<T>& y, const DeviceMatrix<T>& gy,
                          DeviceMatrix<T>& out) {
  require_shape(y, gy.rows(), gy.cols(), "activation_cotangent y");
  out.resize(gy.rows(), gy.cols());
  if (out.empty()) return;
  const std::int64_t n = gy.size();
  kernels::activation_cotangent<T, Act>
      <<<detail::grid_for(n), detail::kThreads, 0, ex.stream()>>>(y.data(), gy.data(), out.data(), n);
  PRILO_CUDA_CHECK_LAUNCH();
}

/// gb ← gb + Σ_columns g: one deterministic kernel (gb is a g.rows() × 1 device matrix).
template <class T>
void add_row_sums(const CudaExecutor& ex, const DeviceMatrix<T>& g, DeviceMatrix<T>& gb) {
  require_shape(gb, g.rows(), 1, "add_row_sums gb");
  if (g.empty()) return;
  const auto blocks = unsigned((g.rows() + kernels::kRowTile - 1) / kernels::kRowTile);
  kernels::add_row_sums<T><<<blocks, dim3(kernels::kRowTile, kernels::kColGroups), 0, ex.stream()>>>(
      g.data(), gb.data(), g.rows(), g.cols());
  PRILO_CUDA_CHECK_LAUNCH();
}

/// Every entry of m set to zero (shape kept), on the stream.
template <class T>
void set_zero(const CudaExecutor& ex, DeviceMatrix<T>& m) {
  m.set_zero(ex.stream());
}

/// The paper's l1 ball: the batched device projection (gpu::L1Ball); a non-finite column is
/// counted on the device and raised by finish_phase, as the CPU form raises it at once.
template <class T>
void project(const CudaExecutor& ex, const ::prilo::L1Ball<T>& policy, DeviceMatrix<T>& x,
             const DeviceMatrix<T>& centre) {
  gpu::L1Ball<T>{.radius = policy.radius}.project(x, centre, ex.stream(), ex.nonfinite_counter());
}
/// The device l1 ball likewise: its non-finite columns counted for finish_phase.
template <class T>
void project(const CudaExecutor& ex, const gpu::L1Ball<T>& policy, DeviceMatrix<T>& x, const DeviceMatrix<T>& centre) {
  policy.project(x, centre, ex.stream(), ex.nonfinite_counter());
}
/// No constraint.
template <class T>
void project(const CudaExecutor&, const ::prilo::NoProjection&, DeviceMatrix<T>&, const DeviceMatrix<T>&) {}
/// A user's (or gpu::) policy with a device form: p.project(x, centre, stream).
template <class T, class P>
requires requires(const P& p, DeviceMatrix<T>& x, const DeviceMatrix<T>& c, cudaStream_t s) {
  p.project(x, c, s);
}
void project(const CudaExecutor& ex, const P& policy, DeviceMatrix<T>& x, const DeviceMatrix<T>& centre) {
  policy.project(x, centre, ex.stream());
}

template <class T>
void copy_from_host(const CudaExecutor& ex, DeviceMatrix<T>& dst, const Mat<T>& host, Eigen::Index first,
                    Eigen::Index cols) {
  if (first < 0 || cols < 0 || first + cols > host.cols())
    ::prilo::detail::fail("copy_from_host: columns ", first, "..", first + cols, " outside 0..", host.cols());
  dst.resize(host.rows(), cols);
  if (dst.empty()) return;
  PRILO_CUDA_CHECK(
      cudaMemcpyAsync(dst.data(), host.data() + first * host.rows(), dst.bytes(), cudaMemcpyHostToDevice, ex.stream()));
  PRILO_CUDA_CHECK(cudaStreamSynchronize(ex.stream()));
}

/// A batch of independent columns on the device is solved as one batch: the whole width is
/// what keeps the device busy (no column blocks, one call of solve with block 0 of 1).
template <class Loss, class T, class Solve>
SolveResult<T> solve_blocks(const CudaExecutor& ex, const Loss& loss, const Mat<T>& start, Rng& rng, Solve&& solve,
                            const ColumnBlockOptions& opt = {}) {
  require_shape(start, start.rows(), loss.batch(), "solve_blocks start");
  if (opt.parts > 1)
    ::prilo::detail::fail("solve_blocks: distributed runs (", opt.parts, " parts) are CPU-only for now");
  (void)::prilo::column_partition(loss.batch(), opt);  // the CPU's checks of opt, before the solve
  return solve(loss, from_host(ex, start), rng, ColumnBlock{0, 1, 0, loss.batch()});
}

/// A product of per-block sets on the device: each block of rows is gathered into a
/// contiguous batch (2-D copies on the stream), projected by its part's device form and
/// scattered back. Exact, like the CPU form; the copies cost two passes per block.
template <class T, class P>
void project(const CudaExecutor& ex, const ::prilo::BlockProjection<T, P>& policy, DeviceMatrix<T>& x,
             const DeviceMatrix<T>& centre) {
  ::prilo::detail::require_centre_shape(x, centre, "BlockProjection");
  if (policy.sizes.size() != policy.parts.size())
    ::prilo::detail::fail("BlockProjection: ", policy.sizes.size(), " block sizes but ", policy.parts.size(),
                          " projections");
  for (std::size_t k = 0; k < policy.sizes.size(); ++k)
    if (policy.sizes[k] < 0)
      ::prilo::detail::fail("BlockProjection: block ", k, " has a negative size ", policy.sizes[k]);
  Eigen::Index total = 0;
  for (const Eigen::Index n : policy.sizes) total += n;
  if (total != x.rows())
    ::prilo::detail::fail("BlockProjection: block sizes sum to ", total, " but the state has ", x.rows(), " rows");
  DeviceMatrix<T> xb, cb;
  auto gather = [&](DeviceMatrix<T>& dst, const DeviceMatrix<T>& src, Eigen::Index at, Eigen::Index n) {
    dst.resize(n, src.cols());
    if (dst.empty()) return;
    PRILO_CUDA_CHECK(cudaMemcpy2DAsync(dst.data(), std::size_t(n) * sizeof(T), src.data() + at,
                                       std::size_t(src.rows()) * sizeof(T), std::size_t(n) * sizeof(T),
                                       std::size_t(src.cols()), cudaMemcpyDeviceToDevice, ex.stream()));
  };
  Eigen::Index at = 0;
  for (std::size_t k = 0; k < policy.sizes.size(); ++k) {
    const Eigen::Index n = policy.sizes[k];
    gather(xb, x, at, n);
    gather(cb, centre, at, n);
    project(ex, policy.parts[k], xb, cb);
    if (!xb.empty())
      PRILO_CUDA_CHECK(cudaMemcpy2DAsync(x.data() + at, std::size_t(x.rows()) * sizeof(T), xb.data(),
                                         std::size_t(n) * sizeof(T), std::size_t(n) * sizeof(T), std::size_t(x.cols()),
                                         cudaMemcpyDeviceToDevice, ex.stream()));
    at += n;
  }
  PRILO_CUDA_CHECK(cudaStreamSynchronize(ex.stream()));  // xb and cb are freed on return
}

/// Synchronises the stream and raises what the kernels flagged.
inline void finish_phase(const CudaExecutor& ex, const char* what) {
  if (const int n = ex.take_nonfinite(); n != 0)
    ::prilo::detail::fail(what, ": ", n, " column(s) became non-finite (NaN or infinite) during the phase");
}
/// Begins a phase of work: drops what an earlier phase on a copy of this executor left flagged
/// when it ended by an exception (finish_phase never ran for it), so that finish_phase reports
/// only this phase's columns. Synchronises the stream when the flag exists.
inline void start_phase(const CudaExecutor& ex) {
  (void)ex.take_nonfinite();
}

/// prilo::Adam on the CUDA executor (one fused kernel per step plus the projection). With an l1
/// ball (prilo::L1Ball or gpu::L1Ball) a column that becomes non-finite is only counted on the
/// device: a caller that runs step() itself calls finish_phase(executor, what) after its steps
/// to have it raised (the solvers do at the end of each phase).
template <class T, class Projection = ::prilo::NoProjection, class Noise = NoNoise>
using Adam = ::prilo::Adam<T, Projection, Noise, CudaExecutor>;
/// prilo::GradientDescent on the CUDA executor.
template <class T, class Projection = ::prilo::NoProjection, class Noise = NoNoise>
using GradientDescent = ::prilo::GradientDescent<T, Projection, Noise, CudaExecutor>;

}  // namespace prilo::gpu

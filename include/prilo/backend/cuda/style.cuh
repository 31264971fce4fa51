// Style modules on the GPU: the CUDA forms of the style customisation points of
// prilo/nn/style.hpp (row-block copies as 2-D memcpys, the modulation and its VJP as kernels,
// the affine maps of z0 on cuBLAS), and gpu::Duplicate / gpu::Modulate / gpu::Carry, prilo::nn's
// style modules on the CUDA executor, so that the style decoder runs in gpu::Sequential.
#pragma once

#include "config.cuh"

#include <cuda_runtime.h>
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../../nn/style.hpp"
#include "dense.cuh"
#include "device_matrix.cuh"
#include "elementwise.cuh"
#include "error.cuh"
#include "executor.cuh"

namespace prilo::gpu {

namespace style_kernels {

/// out(i, j) = src(a + i, j) + src(b + i, j) for the n rows of out (Duplicate's VJP).
template <class T>
__global__ void add_row_blocks(T* __restrict__ out, const T* __restrict__ src, std::int64_t src_rows, std::int64_t a,
                               std::int64_t b, std::int64_t n, std::int64_t total) {
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t j = k / n, i = k % n;
    out[k] = src[j * src_rows + a + i] + src[j * src_rows + b + i];
  }
}

/// y(q, j) = act(x(q, j)·(1 + s(c, j)) + s(C + c, j)), c = q / P, for the C·P feature rows
/// (x and y with their own leading dimensions; s is 2C × B).
template <class T, class Act>
__global__ void modulate_forward(const T* __restrict__ x, std::int64_t x_rows, const T* __restrict__ s, std::int64_t C,
                                 std::int64_t P, std::int64_t B, T* __restrict__ y, std::int64_t y_rows) {
  const std::int64_t F = C * P, n = F * B;
  for (std::int64_t k = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t j = k / F, q = k % F, c = q / P;
    const T* sj = s + j * 2 * C;
    y[j * y_rows + q] = DeviceActivation<Act>::value(x[j * x_rows + q] * (T(1) + sj[c]) + sj[C + c]);
  }
}

/// One block per (channel c, sample j): g = gy ⊙ act'(y) over the channel's P pixels,
/// gx = g·(1 + s(c, j)) (when gx is given), gs(c, j) = Σ g·u, gs(C + c, j) = Σ g, summed by
/// cub's block reduction in a fixed order (deterministic, no atomics).
inline constexpr int kVjpThreads = 128;
template <class T, class Act>
__global__ void __launch_bounds__(kVjpThreads)
    modulate_vjp(const T* __restrict__ x, std::int64_t x_rows, const T* __restrict__ y, std::int64_t y_rows,
                 const T* __restrict__ gy, std::int64_t gy_rows, const T* __restrict__ s, std::int64_t C,
                 std::int64_t P, std::int64_t B, T* __restrict__ gx, std::int64_t gx_rows, T* __restrict__ gs) {
  using Reduce = cub::BlockReduce<T, kVjpThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  for (std::int64_t blk = blockIdx.x; blk < C * B; blk += gridDim.x) {
    const std::int64_t j = blk / C, c = blk % C;
    const T scale = T(1) + s[j * 2 * C + c];
    T a = T(0), g = T(0);
    for (std::int64_t q = c * P + threadIdx.x; q < (c + 1) * P; q += kVjpThreads) {
      const T gv = DeviceActivation<Act>::cotangent(gy[j * gy_rows + q], y[j * y_rows + q]);
      a += gv * x[j * x_rows + q];
      g += gv;
      if (gx) gx[j * gx_rows + q] = gv * scale;
    }
    const T sum_a = Reduce(tmp).Sum(a);
    __syncthreads();  // tmp is reused
    const T sum_g = Reduce(tmp).Sum(g);
    if (threadIdx.x == 0) {
      gs[j * 2 * C + c] = sum_a;
      gs[j * 2 * C + C + c] = sum_g;
    }
    __syncthreads();
  }
}

}  // namespace style_kernels

// ---- the style customisation points, CUDA forms (found by argument-dependent lookup) ----

/// dst rows [dst_row, dst_row + n) ← src rows [src_row, src_row + n): one 2-D copy on the stream.
template <class T>
void copy_rows(const CudaExecutor& ex, DeviceMatrix<T>& dst, Eigen::Index dst_row, const DeviceMatrix<T>& src,
               Eigen::Index src_row, Eigen::Index n) {
  ::prilo::detail::check_row_copy(dst.rows(), dst.cols(), dst_row, src.rows(), src.cols(), src_row, n);
  if (n == 0 || src.cols() == 0) return;
  PRILO_CUDA_CHECK(cudaMemcpy2DAsync(dst.data() + dst_row, std::size_t(dst.rows()) * sizeof(T), src.data() + src_row,
                                     std::size_t(src.rows()) * sizeof(T), std::size_t(n) * sizeof(T),
                                     std::size_t(src.cols()), cudaMemcpyDeviceToDevice, ex.stream()));
}

/// out ← src rows [a, a + n) + src rows [b, b + n): one kernel.
template <class T>
void add_row_blocks(const CudaExecutor& ex, DeviceMatrix<T>& out, const DeviceMatrix<T>& src, Eigen::Index a,
                    Eigen::Index b, Eigen::Index n) {
  ::prilo::detail::check_row_copy(n, src.cols(), 0, src.rows(), src.cols(), a, n);
  ::prilo::detail::check_row_copy(n, src.cols(), 0, src.rows(), src.cols(), b, n);
  out.resize(n, src.cols());
  if (out.empty()) return;
  const std::int64_t total = out.size();
  style_kernels::add_row_blocks<T><<<detail::grid_for(total), detail::kThreads, 0, ex.stream()>>>(
      out.data(), src.data(), src.rows(), a, b, n, total);
  PRILO_CUDA_CHECK_LAUNCH();
}

namespace style_detail {
/// st.a ← z0 (the bottom rows of x), st.b ← [γ; β] = W z0 + b (2C × B).
template <class T>
void style_values(const CudaExecutor& ex, const nn::ModulateShape& sh, const DeviceMatrix<T>& w,
                  const DeviceMatrix<T>& b, const DeviceMatrix<T>& x, nn::Staging<DeviceMatrix<T>>& st) {
  st.a.resize(sh.style, x.cols());
  copy_rows(ex, st.a, 0, x, sh.features(), sh.style);
  gemm(ex, false, false, T(1), w, st.a, T(0), st.b);
  bias_activation(ex, nn::Identity{}, st.b, b);
}
}  // namespace style_detail

/// nn::Modulate's forward: the style values (one GEMM and a bias pass), one kernel for the
/// modulated features, one 2-D copy for the carried z0.
template <class T, class Act, bool Carry>
void modulate_forward(const CudaExecutor& ex, Act, std::bool_constant<Carry>, const nn::ModulateShape& sh,
                      const DeviceMatrix<T>& w, const DeviceMatrix<T>& b, const DeviceMatrix<T>& x, DeviceMatrix<T>& y,
                      nn::Staging<DeviceMatrix<T>>& st) {
  style_detail::style_values(ex, sh, w, b, x, st);
  y.resize(sh.features() + (Carry ? sh.style : 0), x.cols());
  if (x.cols() == 0) return;
  style_kernels::modulate_forward<T, Act>
      <<<detail::grid_for(sh.features() * x.cols()), detail::kThreads, 0, ex.stream()>>>(
          x.data(), x.rows(), st.b.data(), sh.channels, sh.pixels, x.cols(), y.data(), y.rows());
  PRILO_CUDA_CHECK_LAUNCH();
  if constexpr (Carry) copy_rows(ex, y, sh.features(), x, sh.features(), sh.style);
}

/// nn::Modulate's VJPs: the style values, one kernel for ∂/∂u and the style cotangent gs
/// (per-channel sums), then ∂/∂z0 = Wᵀ gs (+ the carried cotangent) with one GEMM (st.c).
template <class T, class Act, bool Carry>
void modulate_vjp(const CudaExecutor& ex, Act, std::bool_constant<Carry>, const nn::ModulateShape& sh,
                  const DeviceMatrix<T>& w, const DeviceMatrix<T>& b, const DeviceMatrix<T>& x,
                  const DeviceMatrix<T>& y, const DeviceMatrix<T>& gy, DeviceMatrix<T>* gx, DeviceMatrix<T>& gs,
                  nn::Staging<DeviceMatrix<T>>& st) {
  require_shape(y, gy.rows(), gy.cols(), "Modulate output");
  style_detail::style_values(ex, sh, w, b, x, st);
  const Eigen::Index B = x.cols(), d = sh.style, F = sh.features();
  gs.resize(2 * sh.channels, B);
  if (gx) gx->resize(F + d, B);
  if (B == 0) return;
  const std::int64_t blocks = std::min<std::int64_t>(std::int64_t(sh.channels) * B, 65535LL * 8);
  style_kernels::modulate_vjp<T, Act><<<unsigned(blocks), style_kernels::kVjpThreads, 0, ex.stream()>>>(
      x.data(), x.rows(), y.data(), y.rows(), gy.data(), gy.rows(), st.b.data(), sh.channels, sh.pixels, B,
      gx ? gx->data() : nullptr, gx ? gx->rows() : 0, gs.data());
  PRILO_CUDA_CHECK_LAUNCH();
  if (!gx) return;
  if constexpr (Carry) {
    st.c.resize(d, B);
    copy_rows(ex, st.c, 0, gy, F, d);
    gemm(ex, true, false, T(1), w, gs, T(1), st.c);
  } else {
    gemm(ex, true, false, T(1), w, gs, T(0), st.c);
  }
  copy_rows(ex, *gx, F, st.c, 0, d);
}

/// ∂W += gs z0ᵀ (one GEMM) and ∂b += Σ_columns gs (one deterministic kernel), with st as
/// modulate_vjp left it: z0 already copied into st.a (nn::Modulate::backward calls the two in
/// turn with its own staging), so it is not copied again.
template <class T>
void modulate_accumulate(const CudaExecutor& ex, const nn::ModulateShape& sh, const DeviceMatrix<T>& gs,
                         const DeviceMatrix<T>& x, DeviceMatrix<T>& gw, DeviceMatrix<T>& gb,
                         nn::Staging<DeviceMatrix<T>>& st) {
  require_shape(st.a, sh.style, x.cols(), "modulate_accumulate: z0 staged by modulate_vjp");
  gemm(ex, false, true, T(1), gs, st.a, T(1), gw);
  add_row_sums(ex, gs, gb);
}

/// z → [z; z] on the GPU: prilo::nn::Duplicate on the CUDA executor.
template <class T>
using Duplicate = nn::Duplicate<T, CudaExecutor>;

/// [u; z0] → [act(u ⊙ (1 + γ(z0)) + β(z0)); z0] on the GPU: prilo::nn::Modulate on the CUDA
/// executor (built from a host modulation: `gpu::Modulate<T, Act> m(host)`).
template <class T, class Act = nn::LeakyRelu, bool CarryStyle = true>
using Modulate = nn::Modulate<T, Act, CarryStyle, CudaExecutor>;

/// [h; z0] → [Inner(h); z0] on the GPU: prilo::nn::Carry of a device module (gpu::Dense,
/// gpu::Conv2d, gpu::ConvTranspose2d); it runs on its inner module's executor.
template <class Inner>
using Carry = nn::Carry<Inner>;

}  // namespace prilo::gpu

// Convolution layers on the GPU: the CUDA forms of the convolution customisation points of
// prilo/nn/conv.hpp (im2col, col2im, stacking, bias + activation and per-channel sums as
// kernels, the products on cuBLAS), and gpu::Conv2d / gpu::ConvTranspose2d, prilo::nn's layers
// on the CUDA executor.
#pragma once

#include "config.cuh"

#include <cuda_runtime.h>
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../../nn/conv.hpp"
#include "blas.cuh"
#include "device_matrix.cuh"
#include "elementwise.cuh"
#include "error.cuh"
#include "executor.cuh"

namespace prilo::gpu {

namespace conv_kernels {

/// The geometry of nn::conv_detail::Geometry as plain integers for the kernels: input maps
/// C × H × W, output maps Ho × Wo, square kernel k, stride s, zero padding p. Output pixel
/// (oh, ow) reads input pixels (oh·s − p + kh, ow·s − p + kw), 0 ≤ kh, kw < k.
struct Geom {
  std::int64_t C, H, W, Ho, Wo;
  int k, s, p;
};
inline Geom geom(const nn::conv_detail::Geometry& g) {
  return {g.in.channels, g.in.height, g.in.width, g.out_h, g.out_w, g.k, g.s, g.p};
}

#define PRILO_GRID_STRIDE(i, n)                                                       \
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += std::int64_t(gridDim.x) * blockDim.x)

/// im2col of nb samples, sample by sample (the CPU forms interleave the samples instead,
/// nn::conv_detail; here consecutive threads read consecutive pixels): a is (nb·P) × (C·k²),
/// column-major with leading dimension nb·P (P = Ho·Wo):
/// a(j·P + oh·Wo + ow, (c·k + kh)·k + kw) = x_j(c, oh·s − p + kh, ow·s − p + kw), zero outside
/// the input; sample j's maps start at src + j·src_stride. One thread per entry of a.
template <class T>
__global__ void im2col(Geom g, const T* __restrict__ src, std::int64_t src_stride, std::int64_t nb, T* __restrict__ a) {
  const std::int64_t P = g.Ho * g.Wo, rows = nb * P, kk = std::int64_t(g.k) * g.k, n = rows * g.C * kk;
  PRILO_GRID_STRIDE(idx, n) {
    const std::int64_t r = idx % rows, col = idx / rows;
    const std::int64_t j = r / P, q = r % P, oh = q / g.Wo, ow = q % g.Wo;
    const std::int64_t c = col / kk, kh = (col / g.k) % g.k, kw = col % g.k;
    const std::int64_t ih = oh * g.s - g.p + kh, iw = ow * g.s - g.p + kw;
    a[idx] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? src[j * src_stride + (c * g.H + ih) * g.W + iw] : T(0);
  }
}

/// The adjoint of im2col as a gather, one thread per destination entry: dst_j(c, ih, iw) =
/// act(bias_c + Σ a(j·P + oh·Wo + ow, (c·k + kh)·k + kw)) over the (kh, kw), in increasing
/// order, with oh·s − p + kh = ih and ow·s − p + kw = iw (bias_c = 0 without Bias). The sum
/// runs in the order the CPU's nn::conv_detail::col2im_add adds into a pixel; no atomics.
template <class T, class Act, bool Bias>
__global__ void col2im(Geom g, const T* __restrict__ a, std::int64_t nb, const T* __restrict__ bias,
                       T* __restrict__ dst, std::int64_t dst_stride) {
  const std::int64_t HW = g.H * g.W, CHW = g.C * HW, P = g.Ho * g.Wo, lda = nb * P, n = nb * CHW;
  PRILO_GRID_STRIDE(idx, n) {
    const std::int64_t j = idx / CHW, rem = idx % CHW, c = rem / HW, pix = rem % HW, ih = pix / g.W, iw = pix % g.W;
    T acc = T(0);
    if constexpr (Bias) acc = bias[c];
    for (int kh = 0; kh < g.k; ++kh) {
      const std::int64_t t = ih + g.p - kh;  // = oh·s
      if (t < 0 || t % g.s != 0) continue;
      const std::int64_t oh = t / g.s;
      if (oh >= g.Ho) continue;
      for (int kw = 0; kw < g.k; ++kw) {
        const std::int64_t u = iw + g.p - kw;  // = ow·s
        if (u < 0 || u % g.s != 0) continue;
        const std::int64_t ow = u / g.s;
        if (ow >= g.Wo) continue;
        acc += a[(j * P + oh * g.Wo + ow) + ((c * g.k + kh) * g.k + kw) * lda];
      }
    }
    dst[j * dst_stride + rem] = DeviceActivation<Act>::value(acc);
  }
}

/// Stacks nb samples' maps: s(j·P + q, c) = src[j·src_stride + c·P + q] ((nb·P) × C,
/// column-major). One thread per entry of s.
template <class T>
__global__ void stack(const T* __restrict__ src, std::int64_t src_stride, std::int64_t nb, std::int64_t P,
                      std::int64_t C, T* __restrict__ s) {
  const std::int64_t rows = nb * P, n = rows * C;
  PRILO_GRID_STRIDE(idx, n) {
    const std::int64_t r = idx % rows, c = idx / rows, j = r / P, q = r % P;
    s[idx] = src[j * src_stride + c * P + q];
  }
}

/// The inverse of stack, with bias and activation when Bias (Conv2d's forward):
/// dst[j·dst_stride + c·P + q] = act(s(j·P + q, c) + bias_c). One thread per entry of dst.
template <class T, class Act, bool Bias>
__global__ void unstack(const T* __restrict__ s, std::int64_t nb, std::int64_t P, std::int64_t C,
                        const T* __restrict__ bias, T* __restrict__ dst, std::int64_t dst_stride) {
  const std::int64_t CP = C * P, n = nb * CP;
  PRILO_GRID_STRIDE(idx, n) {
    const std::int64_t j = idx / CP, rem = idx % CP, c = rem / P, q = rem % P;
    T v = s[c * nb * P + j * P + q];
    if constexpr (Bias) v += bias[c];
    dst[j * dst_stride + rem] = DeviceActivation<Act>::value(v);
  }
}

/// Conv2d's stacked cotangent: G(j·P + q, c) = gy_j(c, q)·act'(y_j(c, q)), gy and y with leading
/// dimension ld ((nb·P) × C, column-major). One thread per entry of G.
template <class T, class Act>
__global__ void stack_cotangent(const T* __restrict__ gy, const T* __restrict__ y, std::int64_t ld, std::int64_t nb,
                                std::int64_t P, std::int64_t C, T* __restrict__ g) {
  const std::int64_t rows = nb * P, n = rows * C;
  PRILO_GRID_STRIDE(idx, n) {
    const std::int64_t r = idx % rows, c = idx / rows, j = r / P, q = r % P;
    const std::int64_t at = j * ld + c * P + q;
    g[idx] = DeviceActivation<Act>::cotangent(gy[at], y[at]);
  }
}

#undef PRILO_GRID_STRIDE

/// gb_c += Σ_{j < samples, q < pixels} src[j·stride + c·pixels + q]: one block per channel c,
/// a fixed-order block reduction (deterministic, no atomics).
inline constexpr int kSumThreads = 256;
template <class T>
__global__ void __launch_bounds__(kSumThreads)
    add_channel_sums(const T* __restrict__ src, std::int64_t pixels, std::int64_t samples, std::int64_t stride,
                     T* __restrict__ gb) {
  using Reduce = cub::BlockReduce<T, kSumThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const std::int64_t c = blockIdx.x, total = samples * pixels;
  T acc = T(0);
  for (std::int64_t i = threadIdx.x; i < total; i += kSumThreads) {
    const std::int64_t j = i / pixels, q = i % pixels;
    acc += src[j * stride + c * pixels + q];
  }
  const T sum = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) gb[c] += sum;
}

}  // namespace conv_kernels

namespace conv_detail {

/// Scalars of scratch one block of samples may use on the device (2^26: 256 MiB of floats);
/// larger batches run as several blocks, one after the other on the stream.
inline constexpr std::int64_t kMaxScratch = std::int64_t(1) << 26;

/// Samples per device block: `forced` when positive (set_block_samples), else as many as fit
/// kMaxScratch, at least one.
inline std::int64_t block_samples(std::int64_t n, std::int64_t scratch_per_sample, Eigen::Index forced) {
  if (forced > 0) return std::min<std::int64_t>(forced, n);
  return std::clamp<std::int64_t>(kMaxScratch / std::max<std::int64_t>(1, scratch_per_sample), 1,
                                  std::max<std::int64_t>(1, n));
}

/// C ← α·op(A)·op(B) + β·C on raw column-major device arrays (op(A) m × k, op(B) k × n), on the
/// executor's cuBLAS handle and stream (gpu::detail::blas_gemm: dimensions checked).
template <class T>
void gemm(const CudaExecutor& ex, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0 || k == 0) ::prilo::detail::fail("conv gemm: empty product ", m, "x", k, " by ", k, "x", n);
  ::prilo::gpu::detail::blas_gemm(ex.handle().get(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                  "conv gemm");
}

/// Launches a grid-stride kernel over n entries on the executor's stream and checks the launch.
template <class Kernel, class... Args>
void launch(const CudaExecutor& ex, std::int64_t n, Kernel kernel, Args... args) {
  if (n <= 0) return;
  kernel<<<::prilo::gpu::detail::grid_for(n), ::prilo::gpu::detail::kThreads, 0, ex.stream()>>>(args...);
  PRILO_CUDA_CHECK_LAUNCH();
}

/// gb_c += the sum of channel c over samples and pixels (one block per channel).
template <class T>
void add_channel_sums(const CudaExecutor& ex, const T* src, std::int64_t channels, std::int64_t pixels,
                      std::int64_t samples, std::int64_t stride, T* gb) {
  if (channels <= 0 || pixels * samples <= 0) return;
  conv_kernels::add_channel_sums<T>
      <<<unsigned(channels), conv_kernels::kSumThreads, 0, ex.stream()>>>(src, pixels, samples, stride, gb);
  PRILO_CUDA_CHECK_LAUNCH();
}

}  // namespace conv_detail

// ---- the convolution layers' customisation points, CUDA forms (found by argument-dependent
// lookup; contracts in prilo/nn/conv.hpp) ----
//
// Each batch runs as blocks of samples (as many as fit conv_detail::kMaxScratch), one after
// the other on the executor's stream; per block the steps of the CPU form: im2col (or the
// stacked input), one cuBLAS product, and a kernel that scatters with bias and activation.
// The weight gradients accumulate straight into grads->weight (β = 1) and grads->bias (a
// per-channel block reduction), so ConvGradients' part_* scratch stays unused.

/// y ← act(W ∗ x + b) (gpu::Conv2d's forward), scratch in `work`.
template <class T, class Act>
void conv2d_forward(const CudaExecutor& ex, Act, const nn::conv_detail::Geometry& g, const DeviceMatrix<T>& w,
                    const DeviceMatrix<T>& b, const DeviceMatrix<T>& x, DeviceMatrix<T>& y, Eigen::Index block,
                    DeviceMatrix<T>& work) {
  require_shape(x, g.in.size(), x.cols(), "Conv2d input");
  const std::int64_t n = x.cols(), P = g.out_pixels(), K = g.patch(), Co = w.cols();
  require_shape(w, K, Co, "Conv2d weight");
  require_shape(b, Co, 1, "Conv2d bias");
  y.resize(Co * P, n);
  if (n == 0) return;
  const std::int64_t nb = conv_detail::block_samples(n, P * (K + Co), block);
  work.resize(nb * P * (K + Co), 1);
  T* a = work.data();      // im2col, (m·P) × K
  T* yb = a + nb * P * K;  // the product, (m·P) × C_out
  const conv_kernels::Geom gg = conv_kernels::geom(g);
  for (std::int64_t first = 0; first < n; first += nb) {
    const std::int64_t m = std::min(nb, n - first);
    conv_detail::launch(ex, m * P * K, conv_kernels::im2col<T>, gg, x.col(first), std::int64_t(x.rows()), m, a);
    conv_detail::gemm(ex, false, false, m * P, Co, K, T(1), a, m * P, w.data(), K, T(0), yb, m * P);
    conv_detail::launch(ex, m * Co * P, conv_kernels::unstack<T, Act, true>, static_cast<const T*>(yb), m, P, Co,
                        b.data(), y.col(first), std::int64_t(y.rows()));
  }
}
/// The same with scratch of its own (freed after the stream has finished with it).
template <class T, class Act>
void conv2d_forward(const CudaExecutor& ex, Act act, const nn::conv_detail::Geometry& g, const DeviceMatrix<T>& w,
                    const DeviceMatrix<T>& b, const DeviceMatrix<T>& x, DeviceMatrix<T>& y, Eigen::Index block) {
  DeviceMatrix<T> work;
  conv2d_forward(ex, act, g, w, b, x, y, block, work);
  PRILO_CUDA_CHECK(cudaStreamSynchronize(ex.stream()));  // work is freed on return
}

/// gx ← ∂/∂x (if gx) and, with grads, ∂W += im2col(x)ᵀ G and ∂b += Σ G (gpu::Conv2d's VJPs),
/// G = gy ⊙ act'(y) stacked; gx = col2im(G Wᵀ).
template <class T, class Act>
void conv2d_backward(const CudaExecutor& ex, Act, const nn::conv_detail::Geometry& g, const DeviceMatrix<T>& w,
                     const DeviceMatrix<T>& x, const DeviceMatrix<T>& y, const DeviceMatrix<T>& gy, DeviceMatrix<T>* gx,
                     DeviceMatrix<T>& work, const nn::ConvGradients<DeviceMatrix<T>, DeviceMatrix<T>>* grads,
                     Eigen::Index block) {
  const std::int64_t n = gy.cols(), P = g.out_pixels(), K = g.patch(), Co = w.cols();
  require_shape(gy, Co * P, n, "Conv2d output cotangent");
  require_shape(y, Co * P, n, "Conv2d output");
  if (grads || gx) require_shape(x, g.in.size(), n, "Conv2d input");
  if (grads) {
    require_shape(grads->weight, K, Co, "Conv2d weight gradient");
    require_shape(grads->bias, Co, 1, "Conv2d bias gradient");
  }
  if (gx) gx->resize(g.in.size(), n);
  if (n == 0 || (!grads && !gx)) return;
  const std::int64_t nb = conv_detail::block_samples(n, P * (Co + K), block);
  work.resize(nb * P * (Co + K), 1);
  T* gbuf = work.data();         // G, (m·P) × C_out
  T* abuf = gbuf + nb * P * Co;  // im2col(x) or G Wᵀ, (m·P) × K
  const conv_kernels::Geom gg = conv_kernels::geom(g);
  for (std::int64_t first = 0; first < n; first += nb) {
    const std::int64_t m = std::min(nb, n - first);
    conv_detail::launch(ex, m * P * Co, conv_kernels::stack_cotangent<T, Act>, gy.col(first), y.col(first),
                        std::int64_t(gy.rows()), m, P, Co, gbuf);
    if (grads) {
      conv_detail::launch(ex, m * P * K, conv_kernels::im2col<T>, gg, x.col(first), std::int64_t(x.rows()), m, abuf);
      conv_detail::gemm(ex, true, false, K, Co, m * P, T(1), abuf, m * P, gbuf, m * P, T(1), grads->weight.data(), K);
      conv_detail::add_channel_sums(ex, static_cast<const T*>(gbuf), Co, m * P, std::int64_t(1), std::int64_t(0),
                                    grads->bias.data());
    }
    if (gx) {
      conv_detail::gemm(ex, false, true, m * P, K, Co, T(1), gbuf, m * P, w.data(), K, T(0), abuf, m * P);
      conv_detail::launch(ex, m * g.in.size(), conv_kernels::col2im<T, nn::Identity, false>, gg,
                          static_cast<const T*>(abuf), m, static_cast<const T*>(nullptr), gx->col(first),
                          std::int64_t(gx->rows()));
    }
  }
}

/// y ← act(Wᵀ ⋆ x + b) (gpu::ConvTranspose2d's forward; g the adjoint convolution): per block
/// the stacked input times weight()ᵀ, gathered into the output maps by col2im with bias and
/// activation; scratch in `work`.
template <class T, class Act>
void conv_transpose2d_forward(const CudaExecutor& ex, Act, const nn::conv_detail::Geometry& g, const DeviceMatrix<T>& w,
                              const DeviceMatrix<T>& b, const DeviceMatrix<T>& x, DeviceMatrix<T>& y,
                              Eigen::Index block, DeviceMatrix<T>& work) {
  const std::int64_t Ci = w.cols(), P = g.out_pixels(), K = g.patch(), Co = g.in.channels, n = x.cols();
  require_shape(x, Ci * P, x.cols(), "ConvTranspose2d input");
  require_shape(w, K, Ci, "ConvTranspose2d weight");
  require_shape(b, Co, 1, "ConvTranspose2d bias");
  y.resize(g.in.size(), n);
  if (n == 0) return;
  const std::int64_t nb = conv_detail::block_samples(n, P * (K + Ci), block);
  work.resize(nb * P * (K + Ci), 1);
  T* bbuf = work.data();        // X Wᵀ, (m·P) × K
  T* sbuf = bbuf + nb * P * K;  // the stacked input X, (m·P) × C_in
  const conv_kernels::Geom gg = conv_kernels::geom(g);
  for (std::int64_t first = 0; first < n; first += nb) {
    const std::int64_t m = std::min(nb, n - first);
    conv_detail::launch(ex, m * P * Ci, conv_kernels::stack<T>, x.col(first), std::int64_t(x.rows()), m, P, Ci, sbuf);
    conv_detail::gemm(ex, false, true, m * P, K, Ci, T(1), sbuf, m * P, w.data(), K, T(0), bbuf, m * P);
    conv_detail::launch(ex, m * g.in.size(), conv_kernels::col2im<T, Act, true>, gg, static_cast<const T*>(bbuf), m,
                        b.data(), y.col(first), std::int64_t(y.rows()));
  }
}
/// The same with scratch of its own (freed after the stream has finished with it).
template <class T, class Act>
void conv_transpose2d_forward(const CudaExecutor& ex, Act act, const nn::conv_detail::Geometry& g,
                              const DeviceMatrix<T>& w, const DeviceMatrix<T>& b, const DeviceMatrix<T>& x,
                              DeviceMatrix<T>& y, Eigen::Index block) {
  DeviceMatrix<T> work;
  conv_transpose2d_forward(ex, act, g, w, b, x, y, block, work);
  PRILO_CUDA_CHECK(cudaStreamSynchronize(ex.stream()));  // work is freed on return
}

/// gx ← ∂/∂x (if gx) and, with grads, ∂W and ∂b added (gpu::ConvTranspose2d's VJPs): per
/// block, G = gy ⊙ act'(y), A = im2col(G), gx = A·W, ∂W += Aᵀ X (X the stacked input),
/// ∂b_c += Σ G over channel c's pixels and the samples.
template <class T, class Act>
void conv_transpose2d_backward(const CudaExecutor& ex, Act, const nn::conv_detail::Geometry& g,
                               const DeviceMatrix<T>& w, const DeviceMatrix<T>& x, const DeviceMatrix<T>& y,
                               const DeviceMatrix<T>& gy, DeviceMatrix<T>* gx, DeviceMatrix<T>& work,
                               const nn::ConvGradients<DeviceMatrix<T>, DeviceMatrix<T>>* grads, Eigen::Index block) {
  constexpr bool identity = std::is_same_v<Act, nn::Identity>;
  const std::int64_t n = gy.cols(), Ci = w.cols(), P = g.out_pixels(), K = g.patch(), Co = g.in.channels,
                     Po = g.in.pixels(), out_size = g.in.size();
  require_shape(gy, out_size, n, "ConvTranspose2d output cotangent");
  require_shape(y, out_size, n, "ConvTranspose2d output");
  if (grads || gx) require_shape(x, Ci * P, n, "ConvTranspose2d input");
  if (grads) {
    require_shape(grads->weight, K, Ci, "ConvTranspose2d weight gradient");
    require_shape(grads->bias, Co, 1, "ConvTranspose2d bias gradient");
  }
  if (gx) gx->resize(Ci * P, n);
  if (n == 0 || (!grads && !gx)) return;
  const std::int64_t nb = conv_detail::block_samples(n, P * (K + Ci) + (identity ? 0 : out_size), block);
  work.resize(nb * P * (K + Ci) + (identity ? 0 : nb * out_size), 1);
  T* abuf = work.data();         // im2col(G), (m·P) × K
  T* sbuf = abuf + nb * P * K;   // the stacked input or A·W, (m·P) × C_in
  T* gbuf = sbuf + nb * P * Ci;  // G in the samples' layout (not for the identity)
  const conv_kernels::Geom gg = conv_kernels::geom(g);
  for (std::int64_t first = 0; first < n; first += nb) {
    const std::int64_t m = std::min(nb, n - first);
    const T* gsrc = gy.col(first);
    if constexpr (!identity) {
      conv_detail::launch(ex, m * out_size, kernels::activation_cotangent<T, Act>, y.col(first), gy.col(first), gbuf,
                          m * out_size);
      gsrc = gbuf;
    }
    conv_detail::launch(ex, m * P * K, conv_kernels::im2col<T>, gg, gsrc, out_size, m, abuf);
    if (grads) {
      conv_detail::launch(ex, m * P * Ci, conv_kernels::stack<T>, x.col(first), std::int64_t(x.rows()), m, P, Ci, sbuf);
      conv_detail::gemm(ex, true, false, K, Ci, m * P, T(1), abuf, m * P, sbuf, m * P, T(1), grads->weight.data(), K);
      conv_detail::add_channel_sums(ex, gsrc, Co, Po, m, out_size, grads->bias.data());
    }
    if (gx) {
      conv_detail::gemm(ex, false, false, m * P, Ci, K, T(1), abuf, m * P, w.data(), K, T(0), sbuf, m * P);
      conv_detail::launch(ex, m * Ci * P, conv_kernels::unstack<T, nn::Identity, false>, static_cast<const T*>(sbuf), m,
                          P, Ci, static_cast<const T*>(nullptr), gx->col(first), std::int64_t(gx->rows()));
    }
  }
}

/// 2-D convolution on the GPU: prilo::nn::Conv2d on the CUDA executor (the same class template
/// as the CPU layer; the executor supplies the bodies above). Built from a CPU layer
/// (`gpu::Conv2d<T, Act> c(host)`, `c.upload(host)`), copied back with `c.download(host)`, or
/// drawn as nn::Conv2d(in, out_channels, k, s, p, rng) draws.
template <class T, class Act = nn::Identity>
using Conv2d = nn::Conv2d<T, Act, CudaExecutor>;

/// Transposed 2-D convolution on the GPU: prilo::nn::ConvTranspose2d on the CUDA executor.
template <class T, class Act = nn::Identity>
using ConvTranspose2d = nn::ConvTranspose2d<T, Act, CudaExecutor>;

}  // namespace prilo::gpu

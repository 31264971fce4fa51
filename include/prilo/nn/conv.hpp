// Convolutional layers: Conv2d and ConvTranspose2d (PyTorch's semantics), by im2col + GEMM (a
// Conv2d with a thin patch, C_in·k² ≤ 32, and the forward and input VJP of a ConvTranspose2d
// with at least 8 output channels by the register-tiled direct kernels of nn/conv_direct.hpp
// instead: nn::ConvAlgorithm), on any executor: the CPU forms of their customisation points
// are here, the CUDA forms in prilo/backend/cuda/conv.cuh.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../parallel.hpp"
#include "../random.hpp"
#include "activations.hpp"
#include "conv_direct.hpp"
#include "parameter.hpp"
#include "shape.hpp"
#include "weight_and_bias.hpp"

namespace prilo::nn {

/// How a Conv2d or ConvTranspose2d computes on the CPU (device executors ignore it):
///  * im2col_gemm: blocks of samples interleaved, their im2col matrix times the weights by one
///    BLAS product per block (nn::conv_detail) — for patches of many input channels; a
///    ConvTranspose2d's forward is the product followed by col2im;
///  * direct: a Conv2d one sample at a time, read from a zero-padded copy of its maps by
///    register-tiled kernels that write straight into its column (nn/conv_direct.hpp) — for
///    thin patches (a Conv2d from one channel), whose GEMMs would spend as long packing as
///    multiplying. A ConvTranspose2d's forward and input VJP by the interleaved kernels of
///    nn/conv_direct.hpp: blocks of samples in a zero frame, tiles of sample packets ×
///    channels, no im2col/col2im matrix and no BLAS call (its weight gradient stays a GEMM);
///  * automatic (the default): a Conv2d direct when the patch C_in·k² is at most
///    conv_detail::direct_max_patch; a ConvTranspose2d's forward by the interleaved kernels
///    when it has at least conv_detail::direct_min_transposed_channels output channels, and
///    with fewer one sample at a time as its adjoint Conv2d's direct input VJP (straight from
///    the sample's column to its output column, no BLAS: conv_transpose2d_forward_thin); its
///    input VJP by the interleaved kernels when it has as many input channels (the channels
///    each pass's tiles cover); else im2col_gemm.
/// Both give the same results up to rounding.
enum class ConvAlgorithm { automatic, im2col_gemm, direct };

namespace conv_detail {

using Index = Eigen::Index;

/// The largest patch (C_in·k²) that ConvAlgorithm::automatic computes directly (Conv2d).
inline constexpr Index direct_max_patch = 32;
/// The fewest channels with which ConvAlgorithm::automatic computes a pass of a
/// ConvTranspose2d by the interleaved kernels: their tiles cover 8 or 16 channels (the
/// forward's output channels, the input VJP's input channels), so a thinner side would spend
/// most of their multiplies on padding. The conv VAE's last layer, 32 → 1, takes them for its
/// input VJP (0.84–0.89 against 1.27 ms for 256 samples, one thread, on the Intel VM) but not
/// for its forward (3.9 against 1.2 ms), which automatic computes one sample at a time
/// instead (Geometry::transposed_thin: 1.00 against 1.17 ms for im2col + GEMM, bench_conv).
inline constexpr Index direct_min_transposed_channels = 8;

/// The geometry of one convolution (square kernel k, stride s, zero padding p): input maps
/// `in`, output maps of out_h × out_w pixels, output pixel (oh, ow) reading input pixels
/// (oh·s − p + kh, ow·s − p + kw) for 0 ≤ kh, kw < k; and how the CPU computes it.
struct Geometry {
  Shape3 in;
  Index out_h = 0, out_w = 0;
  int k = 1, s = 1, p = 0;
  ConvAlgorithm algorithm = ConvAlgorithm::automatic;
  Index out_pixels() const { return out_h * out_w; }
  /// Columns of the im2col matrix: C_in·k² (one per input channel and kernel offset).
  Index patch() const { return in.channels * k * k; }
  /// Whether the CPU takes the direct kernels (ConvAlgorithm).
  bool direct() const {
    return algorithm == ConvAlgorithm::direct || (algorithm == ConvAlgorithm::automatic && patch() <= direct_max_patch);
  }
  /// Whether the CPU takes the interleaved kernels for a pass of a ConvTranspose2d of this
  /// adjoint geometry whose tiles cover `channels` channels: its forward (its output channels,
  /// in.channels) or its input VJP (its input channels; ConvAlgorithm).
  bool transposed_direct(Index channels) const {
    return algorithm == ConvAlgorithm::direct ||
           (algorithm == ConvAlgorithm::automatic && channels >= direct_min_transposed_channels);
  }
  /// Whether the CPU computes the forward of a ConvTranspose2d of this adjoint geometry one
  /// sample at a time (conv_transpose2d_forward_thin): automatic, fewer output channels
  /// (in.channels) than the interleaved kernels take.
  bool transposed_thin(Index channels) const {
    return algorithm == ConvAlgorithm::automatic && channels < direct_min_transposed_channels;
  }
};

/// Output columns ow whose input column ow·s − p + kw lies in [0, width): [lo, hi).
inline void valid_range(Index width, Index out_w, int s, int p, int kw, Index& lo, Index& hi) {
  const Index first = p - kw;  // ow·s ≥ first
  lo = first > 0 ? (first + s - 1) / s : 0;
  const Index last = width - 1 + p - kw;  // ow·s ≤ last
  hi = last < 0 ? 0 : std::min<Index>(out_w, last / s + 1);
  if (hi < lo) hi = lo;
  lo = std::min(lo, out_w);
  hi = std::max(hi, lo);
}

/// The layers work on blocks of nb samples in the interleaved layout: the sample index
/// innermost, so that every pixel of a block is a run of nb contiguous values. A block of
/// maps (C maps of H × W pixels) is xt[((c·H + ih)·W + iw)·nb + j] = x_j(c, ih, iw): as a
/// column-major nb × (C·H·W) matrix, the transpose of the block's columns. The im2col matrix
/// of a block is A = (nb·P) × (C·k²), column-major, row q·nb + j for output pixel q of sample
/// j, and the product of A with the weights is then the block's output in the interleaved
/// layout again (a stacked (nb·P) × C_out matrix is an interleaved block of C_out maps). Maps
/// of 7 × 7 or 14 × 14 pixels make rows of 7–14 values in a per-sample layout; interleaved,
/// every copy and add in im2col and col2im moves nb values at once.
///
/// im2col of an interleaved block: a(q·nb + j, (c·k + kh)·k + kw) = x_j(c, oh·s − p + kh,
/// ow·s − p + kw) for q = oh·out_w + ow, zero outside the input.
template <class T>
void im2col(const Geometry& g, const T* xt, Index nb, T* a) {
  const Index H = g.in.height, W = g.in.width, Wo = g.out_w, lda = nb * g.out_pixels();
  for (Index c = 0; c < g.in.channels; ++c)
    for (int kh = 0; kh < g.k; ++kh)
      for (int kw = 0; kw < g.k; ++kw) {
        T* col = a + ((c * g.k + kh) * g.k + kw) * lda;
        Index lo, hi;
        valid_range(W, Wo, g.s, g.p, kw, lo, hi);
        for (Index oh = 0; oh < g.out_h; ++oh) {
          T* row = col + oh * Wo * nb;
          const Index ih = oh * g.s - g.p + kh;
          if (ih < 0 || ih >= H) {
            std::fill(row, row + Wo * nb, T(0));
            continue;
          }
          std::fill(row, row + lo * nb, T(0));
          const T* in = xt + ((c * H + ih) * W - g.p + kw) * nb;  // input column ow·s is in[ow·s·nb …]
          if (g.s == 1) {
            std::copy(in + lo * nb, in + hi * nb, row + lo * nb);
          } else if (nb == 1) {  // one sample (a block of one): single values, s apart
            for (Index ow = lo; ow < hi; ++ow) row[ow] = in[ow * g.s];
          } else {
            for (Index ow = lo; ow < hi; ++ow) std::copy(in + ow * g.s * nb, in + (ow * g.s + 1) * nb, row + ow * nb);
          }
          std::fill(row + hi * nb, row + Wo * nb, T(0));
        }
      }
}

/// The adjoint of im2col: adds each entry of a (laid out as above) to the interleaved input
/// pixel it was read from; entries that read the zero padding are dropped.
template <class T>
void col2im_add(const Geometry& g, const T* a, Index nb, T* xt) {
  const Index H = g.in.height, W = g.in.width, Wo = g.out_w, lda = nb * g.out_pixels();
  for (Index c = 0; c < g.in.channels; ++c)
    for (int kh = 0; kh < g.k; ++kh)
      for (int kw = 0; kw < g.k; ++kw) {
        const T* col = a + ((c * g.k + kh) * g.k + kw) * lda;
        Index lo, hi;
        valid_range(W, Wo, g.s, g.p, kw, lo, hi);
        for (Index oh = 0; oh < g.out_h; ++oh) {
          const Index ih = oh * g.s - g.p + kh;
          if (ih < 0 || ih >= H) continue;
          const T* row = col + oh * Wo * nb;
          T* out = xt + ((c * H + ih) * W - g.p + kw) * nb;
          for (Index ow = lo; ow < hi; ++ow) {
            T* o = out + ow * g.s * nb;
            const T* r = row + ow * nb;
            for (Index j = 0; j < nb; ++j) o[j] += r[j];
          }
        }
      }
}

/// dst = srcᵀ: src is rows × cols (column-major, leading dimension lds), dst cols × rows
/// (leading dimension ldd). Square tiles of one SIMD packet are transposed in registers
/// (direct::transpose_tile), the edges element by element.
template <class T>
PRILO_FLATTEN void transpose_into(const T* src, Index lds, Index rows, Index cols, T* dst, Index ldd) {
  constexpr int S = int(direct::lanes<T>);
  Index i0 = 0;
  if constexpr (S > 1) {
    const Index tile_rows = whole_blocks(rows, Index(S)), tile_cols = whole_blocks(cols, Index(S));
    for (; i0 < tile_rows; i0 += S) {
      Index j0 = 0;
      for (; j0 < tile_cols; j0 += S) direct::transpose_tile(src + i0 + j0 * lds, lds, dst + j0 + i0 * ldd, ldd);
      for (; j0 < cols; ++j0)
        for (Index i = i0; i < i0 + S; ++i) dst[j0 + i * ldd] = src[i + j0 * lds];
    }
  }
  for (; i0 < rows; ++i0)
    for (Index j = 0; j < cols; ++j) dst[j + i0 * ldd] = src[i0 + j * lds];
}

/// The CPU forms read their batches through views (column-major, columns any distance apart):
/// a Mat<T> binds as it is, and so does a block of its rows (Carry's feature rows of the
/// stacked columns [h; z0], read and written in place). Non-deduced, so that T comes from the
/// other arguments and a Mat<T> converts.
template <class T>
using ConstColumns = std::type_identity_t<Eigen::Ref<const Mat<T>>>;
template <class T>
using Columns = std::type_identity_t<Eigen::Ref<Mat<T>>>;

/// xt ← columns first … first + nb − 1 of x, interleaved (xt is nb × x.rows(), column-major).
template <class T>
void interleave(const ConstColumns<T>& x, Index first, Index nb, T* xt) {
  transpose_into(x.col(first).data(), x.outerStride(), x.rows(), nb, xt, nb);
}
/// The inverse: columns first … first + nb − 1 of x ← the interleaved block xt.
template <class T>
void deinterleave(const T* xt, Index first, Index nb, Columns<T> x) {
  transpose_into(xt, nb, nb, x.rows(), x.col(first).data(), x.outerStride());
}
/// gt ← gy ⊙ act'(y) on columns first … first + nb − 1, interleaved (the identity: gy's);
/// tmp: nb·gy.rows() scalars of scratch (not for the identity).
template <class Act, class T>
void interleave_cotangent(const ConstColumns<T>& gy, const ConstColumns<T>& y, Index first, Index nb, T* tmp, T* gt) {
  const T* g = gy.col(first).data();
  Index ld = gy.outerStride();
  if constexpr (!std::is_same_v<Act, Identity>) {
    apply_cotangent_columns<Act>(gy.middleCols(first, nb), y.middleCols(first, nb), tmp);
    g = tmp;
    ld = gy.rows();
  }
  transpose_into(g, ld, gy.rows(), nb, gt, nb);
}

/// dst[i] = act(src[i] + b) for i < n (dst may be src).
template <class Act, class T>
void bias_act(const T* src, T b, T* dst, Index n) {
  apply_affine_activation<Act>(src, T(1), b, dst, n);
}
/// Samples per block: about 400 GEMM rows (smaller products lose to their packing overhead),
/// rounded up to a multiple of `run` (8, or the floats of one SIMD packet where that is more:
/// every interleaved pixel is then whole packets, and transpose_into's register tiles apply),
/// at most 2^18 scalars of scratch (the target machine's L2 cache holds 1 MiB of floats) but
/// not below one run, and at least one block per thread when the batch allows.
inline Index block_samples(Index batch, Index rows_per_sample, Index scalars_per_sample, int threads, Index forced) {
  if (forced > 0) return std::min(forced, batch);
  constexpr Index run = std::max<Index>(8, Eigen::internal::packet_traits<float>::size);
  Index nb = (400 + rows_per_sample - 1) / rows_per_sample;
  nb = (nb + run - 1) / run * run;
  const Index fit = (Index(1) << 18) / std::max<Index>(1, scalars_per_sample);
  if (nb > fit) nb = std::max(run, fit / run * run);
  nb = std::min(nb, (batch + threads - 1) / threads);
  return std::max<Index>(1, nb);
}

/// Runs body(slot, first_sample, samples) over blocks of nb samples, on up to `threads` slots
/// in parallel (slot t takes blocks t, t + slots, …; each slot owns its scratch).
template <class F>
void for_blocks(Index batch, Index nb, int slots, F&& body) {
  const Index blocks = (batch + nb - 1) / nb;
  prilo::parallel_for(slots, slots, [&](Index t) {
    for (Index b = t; b < blocks; b += slots) {
      const Index first = b * nb;
      body(t, first, std::min(nb, batch - first));
    }
  });
}

inline int slots_for(Index batch, Index nb) {
  const Index blocks = (batch + nb - 1) / nb;
  return int(std::max<Index>(1, std::min<Index>(prilo::max_threads(), blocks)));
}

template <class T>
void init_uniform(T* data, Index n, double bound, Rng& rng) {
  for (Index i = 0; i < n; ++i) data[i] = T((2 * rng.uniform() - 1) * bound);
}

/// Checks the common hyperparameters of both layers.
inline void check_hyper(const char* layer, Index out_channels, int kernel, int stride, int padding) {
  if (out_channels <= 0) prilo::detail::fail(layer, ": out_channels must be positive, got ", out_channels);
  if (kernel <= 0) prilo::detail::fail(layer, ": kernel size must be positive, got ", kernel);
  if (stride <= 0) prilo::detail::fail(layer, ": stride must be positive, got ", stride);
  if (padding < 0) prilo::detail::fail(layer, ": padding must be non-negative, got ", padding);
  // the geometry's sizes (h + 2p, (h − 1)·s + k, …) are ints
  constexpr int kMax = 1 << 16;
  if (kernel > kMax || stride > kMax || padding > kMax)
    prilo::detail::fail(layer, ": kernel, stride and padding must be at most ", kMax, ", got ", kernel, ", ", stride,
                        ", ", padding);
}

/// Checks that the patch C·k² of `channels` channels (the weights' rows) fits Index.
inline void check_patch(const char* layer, Index channels, int kernel) {
  if (channels > std::numeric_limits<Index>::max() / (Index(kernel) * kernel))
    prilo::detail::fail(layer, ": a patch of ", channels, " channels with kernel ", kernel,
                        " (C·k²) exceeds the index type's range");
}

}  // namespace conv_detail

/// The weight-gradient buffers a layer's backward accumulates into: ∂W and ∂b, and scratch
/// for partial sums (on the CPU each thread's blocks sum into one column of part_weight and
/// part_bias, added to weight and bias at the end; a device form may leave them unused).
template <class M, class V>
struct ConvGradients {
  M& weight;
  V& bias;
  M& part_weight;
  M& part_bias;
};

}  // namespace prilo::nn

namespace prilo {

// ---------------------------------------------------------------------------------------
// The convolution layers' customisation points, CPU forms. nn::Conv2d and
// nn::ConvTranspose2d call these unqualified with their executor first (as nn::Dense calls
// gemm and bias_activation), so a device executor supplies its own forms
// (prilo/backend/cuda/conv.cuh) with the same contracts. The CPU forms: cache-sized blocks of
// samples on OpenMP's threads, each block interleaved (nn::conv_detail: the sample index
// innermost), its im2col (or its input as a matrix) times the weights with one product.
//
// Contracts (g: the convolution's geometry; for ConvTranspose2d the adjoint convolution's,
// output maps → input maps; `block`: samples per block, 0 = chosen from the shapes):
//  * conv2d_forward: y ← act(W ∗ x + b), y resized to C_out·P_out × n.
//  * conv2d_backward: with G = gy ⊙ act'(y), writes gx = ∂/∂x (if gx), and with grads adds
//    ∂W and ∂b to grads->weight and grads->bias; `work` is scratch.
//  * conv_transpose2d_forward / _backward: likewise for the transposed convolution.
// ---------------------------------------------------------------------------------------

namespace conv_cpu {
using nn::conv_detail::Geometry;

/// Threads for the direct kernels: one sample at a time, samples t, t + slots, … on slot t.
inline int direct_slots(Eigen::Index n) {
  return int(std::max<Eigen::Index>(1, std::min<Eigen::Index>(prilo::max_threads(), n)));
}

/// A sample's maps in a zero-padded frame, and where each tap reads it: the frame is C maps
/// of (H + 2p) × (W + 2p); output pixel (oh, ow) reads tap t = (c·k + kh)·k + kw at
/// (oh·s)·(W + 2p) + ow·s + off[t], off[t] = (c·(H + 2p) + kh)·(W + 2p) + kw. The direct kernels
/// read every input through it, with no bounds checks.
struct Frame {
  Eigen::Index channels, height, width, rows, cols;  // the maps, and the padded frame's extent
  int p;
  std::vector<Eigen::Index> off;
  explicit Frame(const Geometry& g)
      : channels(g.in.channels),
        height(g.in.height),
        width(g.in.width),
        rows(g.in.height + 2 * g.p),
        cols(g.in.width + 2 * g.p),
        p(g.p),
        off(static_cast<std::size_t>(g.patch())) {
    for (Eigen::Index c = 0; c < channels; ++c)
      for (int kh = 0; kh < g.k; ++kh)
        for (int kw = 0; kw < g.k; ++kw) off[std::size_t((c * g.k + kh) * g.k + kw)] = (c * rows + kh) * cols + kw;
  }
  Eigen::Index size() const { return channels * rows * cols; }
  /// Scalars to allocate per frame: size() and the slack the kernels may read past it.
  template <class T>
  Eigen::Index allocation(const Geometry& g) const {
    return size() + nn::conv_detail::direct::frame_slack<T>(g.s, g.k);
  }
  /// The frame's interior ← the maps x (the border left as it is: zero).
  template <class T>
  void fill(const T* x, T* frame) const {
    for (Eigen::Index c = 0; c < channels; ++c)
      for (Eigen::Index h = 0; h < height; ++h)
        std::copy(x + (c * height + h) * width, x + (c * height + h + 1) * width,
                  frame + (c * rows + h + p) * cols + p);
  }
  /// The maps x ← the frame's interior (what landed on the border is dropped).
  template <class T>
  void read(const T* frame, T* x) const {
    for (Eigen::Index c = 0; c < channels; ++c)
      for (Eigen::Index h = 0; h < height; ++h) {
        const T* f = frame + (c * rows + h + p) * cols + p;
        std::copy(f, f + width, x + (c * height + h) * width);
      }
  }
};

/// The weights as taps × channels (channel-fastest, rows Cp apart: Cp = C_out padded to whole
/// packets, the padding zero), the layout of the direct kernels.
template <class T>
Mat<T> taps_by_channels(const Mat<T>& w) {
  Mat<T> wt = Mat<T>::Zero(nn::conv_detail::direct::padded<T>(w.cols()), w.rows());
  wt.topRows(w.cols()) = w.transpose();
  return wt;
}

/// Conv2d's forward by the direct kernels (ConvAlgorithm::direct): per sample, its maps
/// copied into a zero-padded Frame and every output computed from the frame in register tiles
/// of pixels × channels (no im2col matrix), bias and activation applied in registers, each
/// tile transposed in registers and stored into the sample's column of y.
template <class Act, class T>
void conv2d_forward_direct(const Geometry& g, const Mat<T>& w, const Vec<T>& b,
                           const nn::conv_detail::ConstColumns<T>& x, nn::conv_detail::Columns<T> y) {
  namespace cd = nn::conv_detail;
  namespace dk = nn::conv_detail::direct;
  const Eigen::Index n = x.cols(), P = g.out_pixels(), K = g.patch(), Co = w.cols();
  const Frame f(g);
  const Mat<T> wt = taps_by_channels(w);
  Vec<T> bp = Vec<T>::Zero(wt.rows());
  bp.head(Co) = b;
  constexpr bool fused = nn::has_value_packet<Act, T>;
  const int slots = direct_slots(n);
  Mat<T> frames = Mat<T>::Zero(f.allocation<T>(g), slots);  // their borders stay zero
  prilo::parallel_for(slots, slots, [&](Eigen::Index t) {
    T* xp = frames.col(t).data();
    for (Eigen::Index j = t; j < n; j += slots) {
      f.fill(x.col(j).data(), xp);
      T* yj = y.col(j).data();
      dk::pixel_product<std::conditional_t<fused, Act, nn::Identity>>(xp, f.cols, g.out_h, g.out_w, g.s, f.off.data(),
                                                                      K, wt.data(), wt.rows(), bp.data(), Co, yj);
      if constexpr (!fused) cd::bias_act<Act>(yj, T(0), yj, Co * P);
    }
  });
}

/// One sample's maps ← the zero frame's interior after bm's columns (G·Wᵀ of the sample, one
/// column per tap, ld apart) are added into it at each tap's reads: the adjoint of the direct
/// forward's reads (what lands on the border is dropped). The frame is zero again after.
template <class T>
void add_taps_and_read(const Geometry& g, const Frame& f, const T* bm, Eigen::Index ld, T* frame, T* out) {
  if (g.s == 2 && g.k % 2 == 0) {
    // taps kw and kw + 1 (kw even) read alternate pixels of one run of a row: added together,
    // the run is read and written contiguously (each pixel still gets its taps in order)
    for (Eigen::Index tap = 0; tap < g.patch(); tap += 2)
      for (Eigen::Index oh = 0; oh < g.out_h; ++oh) {
        const T* b0 = bm + tap * ld + oh * g.out_w;
        const T* b1 = b0 + ld;
        T* ft = frame + f.off[std::size_t(tap)] + oh * 2 * f.cols;
        for (Eigen::Index ow = 0; ow < g.out_w; ++ow) {
          ft[2 * ow] += b0[ow];
          ft[2 * ow + 1] += b1[ow];
        }
      }
  } else {
    for (Eigen::Index tap = 0; tap < g.patch(); ++tap)
      for (Eigen::Index oh = 0; oh < g.out_h; ++oh) {
        const T* bt = bm + tap * ld + oh * g.out_w;
        T* ft = frame + f.off[std::size_t(tap)] + oh * g.s * f.cols;
        for (Eigen::Index ow = 0; ow < g.out_w; ++ow) ft[ow * g.s] += bt[ow];
      }
  }
  f.read(frame, out);
  std::fill(frame, frame + f.size(), T(0));  // the next sample's frame: zero borders
}

/// Conv2d's VJPs by the direct kernels, with conv2d_vjp's contract: per sample, G = gy ⊙ act'(y)
/// (pixels × C_out, each channel's pixels padded to whole packets); with Weights, ∂W += AᵀG
/// from the sample's Frame and G transposed (channels along the packets) into per-thread
/// accumulators (weight_product), ∂b += Σ G; gx = the frame's interior after G·Wᵀ
/// (small_product) is added into it tap by tap (the adjoint of the forward's reads).
template <bool Weights, class Act, class T>
void conv2d_vjp_direct(const Geometry& g, const Mat<T>& w, const nn::conv_detail::ConstColumns<T>& x,
                       const nn::conv_detail::ConstColumns<T>& y, const nn::conv_detail::ConstColumns<T>& gy,
                       nn::conv_detail::Columns<T>* gx, Mat<T>& work, Mat<T>* part_w, Mat<T>* part_b) {
  namespace cd = nn::conv_detail;
  namespace dk = nn::conv_detail::direct;
  const Eigen::Index n = gy.cols(), P = g.out_pixels(), K = g.patch(), Co = w.cols(), Cp = dk::padded<T>(Co),
                     ld = dk::padded<T>(P);
  const Frame f(g);
  const int slots = direct_slots(n);
  // per slot: G (ld × C_out: every channel's pixels start on a packet boundary), G·Wᵀ (ld × K),
  // with Weights Gᵀ (Cp × P) and the accumulators of ∂W (K × Cp) and ∂b (Cp), the frame; the
  // slots a whole number of packets long. G's padding rows stay zero.
  Eigen::Index per_slot = ld * (Co + K) + (Weights ? Cp * (P + K + 1) : 0) + f.size();
  per_slot = (per_slot + 2 * dk::lanes<T> - 1) / (2 * dk::lanes<T>)*(2 * dk::lanes<T>);
  work.setZero(per_slot, slots);
  if constexpr (Weights) {
    part_w->setZero(w.size(), slots);
    part_b->setZero(Co, slots);
  }
  prilo::parallel_for(slots, slots, [&](Eigen::Index t) {
    T* gm = work.col(t).data();
    T* bm = gm + ld * Co;
    [[maybe_unused]] T* gt = bm + ld * K;
    [[maybe_unused]] T* acc = gt + (Weights ? Cp * P : 0);
    [[maybe_unused]] T* accb = acc + (Weights ? Cp * K : 0);
    T* frame = accb + (Weights ? Cp : 0);
    for (Eigen::Index j = t; j < n; j += slots) {
      const T* gj = gy.col(j).data();
      const T* yj = y.col(j).data();
      for (Eigen::Index c = 0; c < Co; ++c) {
        if constexpr (std::is_same_v<Act, nn::Identity>)
          std::copy(gj + c * P, gj + (c + 1) * P, gm + c * ld);
        else
          nn::apply_cotangent<Act>(gj + c * P, yj + c * P, gm + c * ld, P);
      }
      if constexpr (Weights) {
        f.fill(x.col(j).data(), frame);
        cd::transpose_into(gm, ld, P, Co, gt, Cp);  // Gᵀ: channels along the packets
        dk::weight_product(frame, f.cols, g.out_h, g.out_w, g.s, f.off.data(), K, gt, Cp, acc);
        for (Eigen::Index c = 0; c < Co; ++c) accb[c] += Eigen::Map<const Vec<T>>(gm + c * ld, P).sum();
      }
      if (gx) {
        dk::small_product(gm, ld, P, Co, w.data(), K, 1, K, bm, ld);      // G·Wᵀ
        if constexpr (Weights) std::fill(frame, frame + f.size(), T(0));  // it holds x
        add_taps_and_read(g, f, bm, ld, frame, gx->col(j).data());
      }
    }
    if constexpr (Weights) {
      Eigen::Map<Mat<T>> pw(part_w->col(t).data(), K, Co);
      pw += Eigen::Map<const Mat<T>>(acc, Cp, K).topRows(Co).transpose();
      part_b->col(t) += Eigen::Map<const Vec<T>>(accb, Co);
    }
  });
}

/// ConvTranspose2d's forward one sample at a time (the rule: conv_detail::Geometry::
/// transposed_thin): its adjoint Conv2d's input VJP as conv2d_vjp_direct computes it, X·Wᵀ
/// (dk::small_product; pixels × taps) added tap by tap into a zero frame whose interior is
/// read into the sample's column (add_taps_and_read), then bias and activation on that column
/// while it is in cache. No interleaving, no
/// im2col/col2im matrix, no BLAS call: for thin outputs (few channels), where a block's GEMM is
/// short and its layout passes cost more than its products. X is read in place from the
/// sample's column: each channel's last packet runs into the next channel's pixels (or, for
/// the last channel, the next sample's column), rows the product computes and never stores;
/// a sample with too little of the batch after it to read (the last one always; any one when
/// the columns are shorter than a packet's overhang, as for 1×1 or 2×2 inputs) is copied to
/// scratch with each channel padded to whole packets.
template <class Act, class T>
void conv_transpose2d_forward_thin(const Geometry& g, const Mat<T>& w, const Vec<T>& b,
                                   const nn::conv_detail::ConstColumns<T>& x, nn::conv_detail::Columns<T> y) {
  namespace cd = nn::conv_detail;
  namespace dk = nn::conv_detail::direct;
  const Eigen::Index n = x.cols(), P = g.out_pixels(), K = g.patch(), Ci = w.cols(), Co = g.in.channels,
                     Po = g.in.pixels(), ld = dk::padded<T>(P);
  const Frame f(g);
  const int slots = direct_slots(n);
  // per slot: the last sample's X padded (ld × C_in; the padding rows stay zero), X·Wᵀ (ld × K),
  // the frame
  Eigen::Index per_slot = ld * (Ci + K) + f.size();
  per_slot = (per_slot + 2 * dk::lanes<T> - 1) / (2 * dk::lanes<T>)*(2 * dk::lanes<T>);
  Mat<T> work = Mat<T>::Zero(per_slot, slots);
  prilo::parallel_for(slots, slots, [&](Eigen::Index t) {
    T* xm = work.col(t).data();
    T* bm = xm + ld * Ci;
    T* frame = bm + ld * K;
    for (Eigen::Index j = t; j < n; j += slots) {
      const T* xj = x.col(j).data();
      Eigen::Index ldx = P;
      // the product reads (Ci − 1)·P + ld values from the sample's start: in place only where
      // the batch's memory holds them
      if ((n - 1 - j) * x.outerStride() + x.rows() < (Ci - 1) * P + ld) {
        for (Eigen::Index c = 0; c < Ci; ++c) std::copy(xj + c * P, xj + (c + 1) * P, xm + c * ld);
        xj = xm;
        ldx = ld;
      }
      dk::small_product(xj, ldx, P, Ci, w.data(), K, 1, K, bm, ld);  // X·Wᵀ
      T* yj = y.col(j).data();
      add_taps_and_read(g, f, bm, ld, frame, yj);
      for (Eigen::Index c = 0; c < Co; ++c) cd::bias_act<Act>(yj + c * Po, b(c), yj + c * Po, Po);
    }
  });
}

/// The VJPs of a Conv2d batch: gx (if gx) and, with Weights, the weight gradients of each
/// thread's blocks in the columns of *part_w (K·C_out × slots) and *part_b (C_out × slots).
/// Per block (interleaved, see nn::conv_detail): G = gy ⊙ act'(y) as an (m·P) × C_out matrix,
/// ∂W += im2col(x)ᵀ G, ∂b += Σ G, gx = col2im(G Wᵀ).
/// x, y and gy are read, and gx (of x's shape) written, through views (nn::conv_detail::Columns).
template <bool Weights, class Act, class T>
void conv2d_vjp(const Geometry& g_, const Mat<T>& w_, const nn::conv_detail::ConstColumns<T>& x,
                const nn::conv_detail::ConstColumns<T>& y, const nn::conv_detail::ConstColumns<T>& gy,
                nn::conv_detail::Columns<T>* gx, Mat<T>& work, Mat<T>* part_w, Mat<T>* part_b, Eigen::Index block_) {
  namespace cd = nn::conv_detail;
  const Eigen::Index n = gy.cols(), P = g_.out_pixels(), K = g_.patch(), Co = w_.cols(), N = g_.in.size();
  require_shape(gy, Co * P, n, "Conv2d output cotangent");
  require_shape(y, Co * P, n, "Conv2d output");
  if (Weights || gx) require_shape(x, N, n, "Conv2d input");
  if (gx) require_shape(*gx, N, n, "Conv2d input cotangent");
  if constexpr (Weights) {
    part_w->resize(w_.size(), 1);
    part_w->setZero();
    part_b->resize(Co, 1);
    part_b->setZero();
  }
  if (n == 0 || (!Weights && !gx)) return;
  if (g_.direct()) return conv2d_vjp_direct<Weights, Act>(g_, w_, x, y, gy, gx, work, part_w, part_b);
  const Eigen::Index nb = cd::block_samples(n, P, P * (K + Co) + N, prilo::max_threads(), block_);
  const int slots = cd::slots_for(n, nb);
  // per slot: G (nb·P × Co), A / B (nb·P × K), an interleaved input block (x's, then gx's),
  // and gy ⊙ act'(y) before it is interleaved (not for the identity)
  constexpr bool identity = std::is_same_v<Act, nn::Identity>;
  const Eigen::Index per_slot = nb * (P * (Co + K) + N + (identity ? 0 : P * Co));
  work.resize(per_slot, slots);
  if constexpr (Weights) {
    part_w->setZero(w_.size(), slots);
    part_b->setZero(Co, slots);
  }
  cd::for_blocks(n, nb, slots, [&](Eigen::Index t, Eigen::Index first, Eigen::Index m) {
    T* gbuf = work.col(t).data();
    T* abuf = gbuf + nb * P * Co;
    T* xbuf = abuf + nb * P * K;
    const T* gs = gbuf;
    if (identity && m == 1) {
      gs = gy.col(first).data();  // one sample: already P × C_out column-major
    } else {
      cd::interleave_cotangent<Act>(gy, y, first, m, xbuf + nb * N, gbuf);
    }
    const Eigen::Map<const Mat<T>> G(gs, m * P, Co);
    if constexpr (Weights) {
      const T* xt = x.col(first).data();
      if (m > 1) {
        cd::interleave(x, first, m, xbuf);
        xt = xbuf;
      }
      cd::im2col(g_, xt, m, abuf);
      const Eigen::Map<const Mat<T>> A(abuf, m * P, K);
      Eigen::Map<Mat<T>> gw(part_w->col(t).data(), K, Co);
      gw.noalias() += A.transpose() * G;
      part_b->col(t) += G.colwise().sum().transpose();
    }
    if (gx) {
      Eigen::Map<Mat<T>> B(abuf, m * P, K);
      B.noalias() = G * w_.transpose();
      T* gxt = m == 1 ? gx->col(first).data() : xbuf;
      std::fill(gxt, gxt + m * N, T(0));
      cd::col2im_add(g_, abuf, m, gxt);
      if (m > 1) cd::deinterleave(xbuf, first, m, *gx);
    }
  });
}

/// ConvTranspose2d's forward as the interleaved kernels read it (g: the adjoint convolution,
/// from the output maps C_out × Ho × Wo to the input's H × W; Ci input channels): output pixel
/// (oy, ox) of phase (oy mod s, ox mod s) adds input pixel ((oy + p − kh)/s, (ox + p − kw)/s)
/// through tap (kh, kw) for the taps whose divisions are exact, the same taps for every pixel
/// of a phase. The input frame pads the maps so that every such read lies inside it (zeros
/// where it falls outside the maps). kh and kw: each group's (phase's) taps.
struct TransposedForwardPlan {
  nn::conv_detail::direct::SampleFrame frame;
  nn::conv_detail::direct::SamplePlan plan;
  std::vector<int> kh, kw;  // per group, taps_max entries
};
inline TransposedForwardPlan transposed_forward_plan(const Geometry& g, Eigen::Index Ci) {
  using Eigen::Index;
  const int s = g.s;
  const Index H = g.out_h, W = g.out_w, Ho = g.in.height, Wo = g.in.width;
  // per phase ph of one axis: the taps k with (ph + p − k) divisible by s, and the input shift (ph + p − k)/s
  std::vector<std::vector<std::pair<int, Index>>> phase(static_cast<std::size_t>(s));
  for (int ph = 0; ph < s; ++ph)
    for (int k = 0; k < g.k; ++k)
      if (const int d = ph + g.p - k; ((d % s) + s) % s == 0) phase[std::size_t(ph)].push_back({k, Index(d / s)});
  // the input rows (columns) read: shift + o / s over the outputs o
  auto extent = [&](Index out, Index in, Index& lo, Index& hi) {
    lo = 0;
    hi = in - 1;
    for (Index o = 0; o < out; ++o)
      for (const auto& [k, d] : phase[std::size_t(o % s)]) {
        lo = std::min(lo, d + o / s);
        hi = std::max(hi, d + o / s);
      }
  };
  Index ylo, yhi, xlo, xhi;
  extent(Ho, H, ylo, yhi);
  extent(Wo, W, xlo, xhi);
  TransposedForwardPlan fp;
  fp.frame = {
      .channels = Ci, .height = H, .width = W, .top = -ylo, .left = -xlo, .fh = yhi - ylo + 1, .fw = xhi - xlo + 1};
  auto& pl = fp.plan;
  pl.depth = Ci;
  pl.channels = g.in.channels;
  for (const auto& ty : phase)
    for (const auto& tx : phase) pl.taps_max = std::max(pl.taps_max, Index(ty.size() * tx.size()));
  pl.taps.assign(std::size_t(s * s), 0);
  pl.off.assign(std::size_t(s * s * pl.taps_max), 0);
  fp.kh.assign(pl.off.size(), 0);
  fp.kw.assign(pl.off.size(), 0);
  for (int py = 0; py < s; ++py)
    for (int px = 0; px < s; ++px) {
      const std::size_t grp = std::size_t(py * s + px);
      Index t = 0;
      for (const auto& [kh, dy] : phase[std::size_t(py)])
        for (const auto& [kw, dx] : phase[std::size_t(px)]) {
          const std::size_t i = grp * std::size_t(pl.taps_max) + std::size_t(t++);
          pl.off[i] = dy * fp.frame.fw + dx;
          fp.kh[i] = kh;
          fp.kw[i] = kw;
        }
      pl.taps[grp] = t;
    }
  for (Index oy = 0; oy < Ho; ++oy)
    for (Index ox = 0; ox < Wo; ++ox) {
      pl.base.push_back((oy / s + fp.frame.top) * fp.frame.fw + ox / s + fp.frame.left);
      pl.group.push_back((oy % s) * s + ox % s);
    }
  return fp;
}

/// ConvTranspose2d's input VJP as the interleaved kernels read it: gx(ci, iy, ix) = Σ over the
/// output channels and taps (kh, kw) of G(co, iy·s − p + kh, ix·s − p + kw)·W — a strided
/// convolution of G = gy ⊙ act'(y), every input pixel with all k² taps, G in a frame padded by
/// p and as far as the last taps read.
struct TransposedInputPlan {
  nn::conv_detail::direct::SampleFrame frame;
  nn::conv_detail::direct::SamplePlan plan;
};
inline TransposedInputPlan transposed_input_plan(const Geometry& g, Eigen::Index Ci) {
  using Eigen::Index;
  const Index H = g.out_h, W = g.out_w, Ho = g.in.height, Wo = g.in.width;
  TransposedInputPlan ip;
  ip.frame = {.channels = g.in.channels,
              .height = Ho,
              .width = Wo,
              .top = g.p,
              .left = g.p,
              .fh = std::max(Ho - 1, (H - 1) * g.s - g.p + g.k - 1) + g.p + 1,
              .fw = std::max(Wo - 1, (W - 1) * g.s - g.p + g.k - 1) + g.p + 1};
  auto& pl = ip.plan;
  pl.depth = g.in.channels;
  pl.channels = Ci;
  pl.taps_max = Index(g.k) * g.k;
  pl.taps = {pl.taps_max};
  for (int kh = 0; kh < g.k; ++kh)
    for (int kw = 0; kw < g.k; ++kw) pl.off.push_back(kh * ip.frame.fw + kw);
  for (Index iy = 0; iy < H; ++iy)
    for (Index ix = 0; ix < W; ++ix) {
      pl.base.push_back(iy * g.s * ip.frame.fw + ix * g.s);
      pl.group.push_back(0);
    }
  return ip;
}

/// Samples a block of the interleaved kernels holds: two packets (float on AVX-512: 32).
template <class T>
inline constexpr Eigen::Index sample_run = 2 * nn::conv_detail::direct::lanes<T>;

/// ConvTranspose2d's forward by the interleaved kernels (ConvAlgorithm::direct): per block of
/// sample_run samples, the input interleaved into its frame, every output pixel computed in
/// tiles of samples × channels with bias and (where it has value_packet) activation in
/// registers, the block transposed back into y's columns.
template <class Act, class T>
void conv_transpose2d_forward_samples(const Geometry& g, const Mat<T>& w, const Vec<T>& b,
                                      const nn::conv_detail::ConstColumns<T>& x, nn::conv_detail::Columns<T> y) {
  namespace cd = nn::conv_detail;
  namespace dk = nn::conv_detail::direct;
  const Eigen::Index n = x.cols(), Ci = w.cols(), Co = g.in.channels, P = g.out_pixels(), No = g.in.size(),
                     run = sample_run<T>;
  const TransposedForwardPlan fp = transposed_forward_plan(g, Ci);
  const dk::SamplePlan& pl = fp.plan;
  const Eigen::Index ldw = dk::sample_ldw(Co), wg = Ci * pl.taps_max * ldw;
  Mat<T> wp = Mat<T>::Zero(wg, Eigen::Index(pl.taps.size()));  // per group: (tap, ci) rows of the channels
  for (std::size_t grp = 0; grp < pl.taps.size(); ++grp)
    for (Eigen::Index ci = 0; ci < Ci; ++ci)
      for (Eigen::Index t = 0; t < pl.taps[grp]; ++t) {
        const std::size_t i = grp * std::size_t(pl.taps_max) + std::size_t(t);
        T* row = wp.col(Eigen::Index(grp)).data() + (t * Ci + ci) * ldw;
        for (Eigen::Index co = 0; co < Co; ++co) row[co] = w((co * g.k + fp.kh[i]) * g.k + fp.kw[i], ci);
      }
  Vec<T> bp = Vec<T>::Zero(ldw);
  bp.head(Co) = b;
  constexpr bool fused = nn::has_value_packet<Act, T>;
  const int slots = cd::slots_for(n, run);
  const Eigen::Index frame = fp.frame.size(run);
  Mat<T> scratch(frame + (Ci * P + No) * run, slots);  // per slot: the frame, x interleaved, y interleaved
  cd::for_blocks(n, run, slots, [&](Eigen::Index t, Eigen::Index first, Eigen::Index m) {
    T* xf = scratch.col(t).data();
    T* xt = xf + frame;
    T* yt = xt + Ci * P * run;
    if (first < slots * run) fp.frame.clear_border(run, xf);  // the slot's first block
    if (m == run) {
      fp.frame.template fill_columns<nn::Identity>(x.col(first).data(), x.outerStride(), static_cast<const T*>(nullptr),
                                                   0, run, xf);
    } else {
      cd::interleave(x, first, m, xt);
      fp.frame.fill(xt, m, run, xf);
    }
    dk::sample_product<std::conditional_t<fused, Act, nn::Identity>>(pl, xf, run, wp.data(), ldw, bp.data(), yt);
    if constexpr (!fused) cd::bias_act<Act>(yt, T(0), yt, No * run);
    cd::transpose_into(yt, run, m, No, y.col(first).data(), y.outerStride());
  });
}

/// ConvTranspose2d's input VJP by the interleaved kernels (ConvAlgorithm::direct): per block,
/// G = gy ⊙ act'(y) interleaved into its frame, gx's pixels in tiles of samples × input
/// channels, transposed back into gx's columns. work: the slots' scratch.
template <class Act, class T>
void conv_transpose2d_input_samples(const Geometry& g, const Mat<T>& w, const nn::conv_detail::ConstColumns<T>& y,
                                    const nn::conv_detail::ConstColumns<T>& gy, nn::conv_detail::Columns<T>& gx,
                                    Mat<T>& work) {
  namespace cd = nn::conv_detail;
  namespace dk = nn::conv_detail::direct;
  const Eigen::Index n = gy.cols(), Ci = w.cols(), P = g.out_pixels(), No = g.in.size(), run = sample_run<T>;
  const TransposedInputPlan ip = transposed_input_plan(g, Ci);
  const Eigen::Index ldw = dk::sample_ldw(Ci);
  // row (co·k + kh)·k + kw of w (tap t = kh·k + kw of output channel co) as a run of the input
  // channels, in column t·C_out + co (sample_tile's tap-major order)
  const Eigen::Index taps = Eigen::Index(g.k) * g.k, Co = g.in.channels;
  Mat<T> wp = Mat<T>::Zero(ldw, w.rows());
  for (Eigen::Index co = 0; co < Co; ++co)
    for (Eigen::Index t = 0; t < taps; ++t) wp.col(t * Co + co).head(Ci) = w.row(co * taps + t).transpose();
  constexpr bool identity = std::is_same_v<Act, nn::Identity>;
  // whole blocks: the frame filled from the columns with G = gy ⊙ act'(y) taken on the way
  constexpr bool fused_fill = identity || nn::has_cotangent_packet<Act, T>;
  const int slots = cd::slots_for(n, run);
  const Eigen::Index frame = ip.frame.size(run);
  // per slot: the frame, G interleaved, G before it is interleaved (not for the identity), gx interleaved
  work.resize(frame + (No * (identity ? 1 : 2) + Ci * P) * run, slots);
  cd::for_blocks(n, run, slots, [&](Eigen::Index t, Eigen::Index first, Eigen::Index m) {
    T* gf = work.col(t).data();
    T* gt = gf + frame;
    T* tmp = gt + No * run;
    T* gxt = tmp + (identity ? 0 : No * run);
    if (first < slots * run) ip.frame.clear_border(run, gf);
    if (m == run && fused_fill) {
      if constexpr (fused_fill)
        ip.frame.template fill_columns<Act>(gy.col(first).data(), gy.outerStride(), y.col(first).data(),
                                            y.outerStride(), run, gf);
    } else {
      cd::interleave_cotangent<Act>(gy, y, first, m, tmp, gt);
      ip.frame.fill(gt, m, run, gf);
    }
    dk::sample_product<nn::Identity>(ip.plan, gf, run, wp.data(), ldw, static_cast<const T*>(nullptr), gxt);
    cd::transpose_into(gxt, run, m, Ci * P, gx.col(first).data(), gx.outerStride());
  });
}

/// The VJPs of a ConvTranspose2d batch (g_: the adjoint convolution): gx (if gx) and, with
/// Weights, the weight gradients of each thread's blocks in the columns of *part_w (K·C_in ×
/// slots) and *part_b (C_out × slots). Per block (interleaved): A = im2col(gy ⊙ act'(y)),
/// gx = A·W, ∂W += Aᵀ X (X the block's input as an (m·P) × C_in matrix), ∂b += Σ G.
/// Where g_ takes the interleaved kernels, gx comes from them (conv_transpose2d_input_samples)
/// and the GEMM path computes the weight gradients alone.
/// x, y and gy are read, and gx (of x's shape) written, through views (nn::conv_detail::Columns).
template <bool Weights, class Act, class T>
void conv_transpose2d_vjp(const Geometry& g_, const Mat<T>& w_, const nn::conv_detail::ConstColumns<T>& x,
                          const nn::conv_detail::ConstColumns<T>& y, const nn::conv_detail::ConstColumns<T>& gy,
                          nn::conv_detail::Columns<T>* gx, Mat<T>& work, Mat<T>* part_w, Mat<T>* part_b,
                          Eigen::Index block_) {
  namespace cd = nn::conv_detail;
  const nn::Shape3 in_{w_.cols(), g_.out_h, g_.out_w};
  const Eigen::Index n = gy.cols(), P = in_.pixels(), K = g_.patch(), Ci = in_.channels, Co = g_.in.channels,
                     Po = g_.in.pixels(), No = g_.in.size();
  constexpr bool identity = std::is_same_v<Act, nn::Identity>;
  require_shape(gy, No, n, "ConvTranspose2d output cotangent");
  require_shape(y, No, n, "ConvTranspose2d output");
  if (Weights || gx) require_shape(x, in_.size(), n, "ConvTranspose2d input");
  if (gx) require_shape(*gx, in_.size(), n, "ConvTranspose2d input cotangent");
  if constexpr (Weights) {
    part_w->setZero(w_.size(), 1);
    part_b->setZero(Co, 1);
  }
  if (n == 0 || (!Weights && !gx)) return;
  if (gx && g_.transposed_direct(Ci)) {
    // gx by the interleaved kernels, with or without the weight gradients (the same gx either
    // way); those stay im2col + GEMM: ∂W needs im2col(G) anyway
    if constexpr (Weights) {
      Geometry gemm = g_;
      gemm.algorithm = nn::ConvAlgorithm::im2col_gemm;
      conv_transpose2d_vjp<true, Act>(gemm, w_, x, y, gy, nullptr, work, part_w, part_b, block_);
    }
    return conv_transpose2d_input_samples<Act>(g_, w_, y, gy, *gx, work);
  }
  const Eigen::Index nb = cd::block_samples(n, P, P * (K + Ci) + No, prilo::max_threads(), block_);
  const int slots = cd::slots_for(n, nb);
  // per slot: A = im2col(G) (nb·P × K), an interleaved nb·P × C_in block (x for ∂W, then gx's),
  // G = gy ⊙ act'(y) interleaved, and G before it is interleaved (not for the identity)
  const Eigen::Index per_slot = nb * (P * (K + Ci) + No * (identity ? 1 : 2));
  work.resize(per_slot, slots);
  if constexpr (Weights) {
    part_w->setZero(w_.size(), slots);
    part_b->setZero(Co, slots);
  }
  cd::for_blocks(n, nb, slots, [&](Eigen::Index t, Eigen::Index first, Eigen::Index m) {
    T* abuf = work.col(t).data();
    T* sbuf = abuf + nb * P * K;
    const T* gt = gy.col(first).data();
    if (!identity || m > 1) {
      T* g = sbuf + nb * P * Ci;
      cd::interleave_cotangent<Act>(gy, y, first, m, g + nb * No, g);
      gt = g;
    }
    cd::im2col(g_, gt, m, abuf);
    const Eigen::Map<const Mat<T>> A(abuf, m * P, K);
    if constexpr (Weights) {
      const T* xs = x.col(first).data();
      if (m > 1) {
        cd::interleave(x, first, m, sbuf);
        xs = sbuf;
      }
      const Eigen::Map<const Mat<T>> X(xs, m * P, Ci);
      Eigen::Map<Mat<T>> gw(part_w->col(t).data(), K, Ci);
      gw.noalias() += A.transpose() * X;
      for (Eigen::Index c = 0; c < Co; ++c) (*part_b)(c, t) += Eigen::Map<const Vec<T>>(gt + c * Po * m, Po * m).sum();
    }
    if (gx) {
      if (m == 1) {
        Eigen::Map<Mat<T>> Gx(gx->col(first).data(), P, Ci);
        Gx.noalias() = A * w_;
      } else {
        Eigen::Map<Mat<T>> Gx(sbuf, m * P, Ci);
        Gx.noalias() = A * w_;
        cd::deinterleave(sbuf, first, m, *gx);
      }
    }
  });
}

/// The backward forms' weight gradients: with grads, runs vjp(std::true_type, part_w, part_b)
/// on grads' per-thread partial buffers and adds their columns to grads->weight and
/// grads->bias; without, vjp(std::false_type, nullptr, nullptr) (the input VJP alone).
template <class T, class Vjp>
void with_gradients(const nn::ConvGradients<Mat<T>, Vec<T>>* grads, Vjp&& vjp) {
  if (!grads) return vjp(std::false_type{}, static_cast<Mat<T>*>(nullptr), static_cast<Mat<T>*>(nullptr));
  vjp(std::true_type{}, &grads->part_weight, &grads->part_bias);
  grads->weight.reshaped() += grads->part_weight.rowwise().sum();
  grads->bias += grads->part_bias.rowwise().sum();
}

/// Calls f with gx as a view (resized to rows × cols first), or with a null view when gx is
/// null: the whole-matrix VJPs in terms of the view forms.
template <class T, class F>
void with_view(Mat<T>* gx, Eigen::Index rows, Eigen::Index cols, F&& f) {
  if (!gx) return f(static_cast<nn::conv_detail::Columns<T>*>(nullptr));
  gx->resize(rows, cols);
  nn::conv_detail::Columns<T> view(*gx);
  f(&view);
}
}  // namespace conv_cpu

/// y ← act(W ∗ x + b) (nn::Conv2d's forward) into a view of y's shape (C_out·P_out × n; a block
/// of rows of a larger matrix: Carry's), x read through a view: per block of samples
/// (interleaved), im2col times the weights, copied back to the samples' columns, then bias and
/// activation.
template <class T, class Act>
void conv2d_forward_into(const CpuExecutor&, Act, const nn::conv_detail::Geometry& g_, const Mat<T>& w_,
                         const Vec<T>& b_, const nn::conv_detail::ConstColumns<T>& x, nn::conv_detail::Columns<T> y,
                         Eigen::Index block_) {
  namespace cd = nn::conv_detail;
  require_shape(x, g_.in.size(), x.cols(), "Conv2d input");
  const Eigen::Index n = x.cols(), P = g_.out_pixels(), K = g_.patch(), Co = w_.cols(), N = g_.in.size();
  require_shape(y, Co * P, n, "Conv2d output");
  if (n == 0) return;
  if (g_.direct()) return conv_cpu::conv2d_forward_direct<Act>(g_, w_, b_, x, y);
  const Eigen::Index nb = cd::block_samples(n, P, P * (K + Co) + N, prilo::max_threads(), block_);
  const int slots = cd::slots_for(n, nb);
  const Eigen::Index per_slot = nb > 1 ? nb * (P * (K + Co) + N) : P * K;
  Mat<T> scratch(per_slot, slots);  // forward has no caller scratch: bounded by the block size
  cd::for_blocks(n, nb, slots, [&](Eigen::Index t, Eigen::Index first, Eigen::Index m) {
    T* a = scratch.col(t).data();
    const T* xt = x.col(first).data();
    if (m > 1) {
      T* xb = a + nb * P * (K + Co);
      cd::interleave(x, first, m, xb);
      xt = xb;
    }
    cd::im2col(g_, xt, m, a);
    const Eigen::Map<const Mat<T>> A(a, m * P, K);
    if (m == 1) {
      Eigen::Map<Mat<T>> Y(y.col(first).data(), P, Co);
      Y.noalias() = A * w_;
    } else {
      Eigen::Map<Mat<T>> Y(a + nb * P * K, m * P, Co);
      Y.noalias() = A * w_;
      cd::deinterleave(Y.data(), first, m, y);
    }
    for (Eigen::Index j = 0; j < m; ++j)
      for (Eigen::Index c = 0; c < Co; ++c) {
        T* yc = y.col(first + j).data() + c * P;
        cd::bias_act<Act>(yc, b_(c), yc, P);
      }
  });
}

/// y ← act(W ∗ x + b), y resized to C_out·P_out × n (conv2d_forward_into).
template <class T, class Act>
void conv2d_forward(const CpuExecutor& ex, Act act, const nn::conv_detail::Geometry& g_, const Mat<T>& w_,
                    const Vec<T>& b_, const Mat<T>& x, Mat<T>& y, Eigen::Index block_) {
  y.resize(w_.cols() * g_.out_pixels(), x.cols());
  conv2d_forward_into(ex, act, g_, w_, b_, x, y, block_);
}

/// gx ← ∂/∂x (if gx: a view of x's shape) and, with grads, ∂W and ∂b added to grads->weight and
/// grads->bias (nn::Conv2d's VJPs; x, y and gy read through views): per block, G = gy ⊙ act'(y)
/// interleaved, ∂W += im2col(x)ᵀ G, ∂b += Σ G, gx = col2im(G Wᵀ); per-thread partial
/// gradients summed at the end.
template <class T, class Act>
void conv2d_backward_into(const CpuExecutor&, Act, const nn::conv_detail::Geometry& g, const Mat<T>& w,
                          const nn::conv_detail::ConstColumns<T>& x, const nn::conv_detail::ConstColumns<T>& y,
                          const nn::conv_detail::ConstColumns<T>& gy, nn::conv_detail::Columns<T>* gx, Mat<T>& work,
                          const nn::ConvGradients<Mat<T>, Vec<T>>* grads, Eigen::Index block) {
  conv_cpu::with_gradients(grads, [&](auto weights, Mat<T>* part_w, Mat<T>* part_b) {
    conv_cpu::conv2d_vjp<decltype(weights)::value, Act>(g, w, x, y, gy, gx, work, part_w, part_b, block);
  });
}

/// The same with gx (if given) resized to x's shape.
template <class T, class Act>
void conv2d_backward(const CpuExecutor& ex, Act act, const nn::conv_detail::Geometry& g, const Mat<T>& w,
                     const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, Mat<T>& work,
                     const nn::ConvGradients<Mat<T>, Vec<T>>* grads, Eigen::Index block) {
  conv_cpu::with_view(gx, g.in.size(), gy.cols(), [&](nn::conv_detail::Columns<T>* view) {
    conv2d_backward_into(ex, act, g, w, x, y, gy, view, work, grads, block);
  });
}

/// y ← act(Wᵀ ⋆ x + b) (nn::ConvTranspose2d's forward; g_ the adjoint convolution) into a
/// view of y's shape (C_out·P_out × n; a block of rows of a larger matrix: Carry's): per block,
/// the interleaved input times weight()ᵀ, scattered into the output maps by col2im over the
/// bias, copied back to the samples' columns, then the activation.
template <class T, class Act>
void conv_transpose2d_forward_into(const CpuExecutor&, Act, const nn::conv_detail::Geometry& g_, const Mat<T>& w_,
                                   const Vec<T>& b_, const nn::conv_detail::ConstColumns<T>& x,
                                   nn::conv_detail::Columns<T> y, Eigen::Index block_) {
  namespace cd = nn::conv_detail;
  const nn::Shape3 in_{w_.cols(), g_.out_h, g_.out_w};
  require_shape(x, in_.size(), x.cols(), "ConvTranspose2d input");
  const Eigen::Index n = x.cols(), P = in_.pixels(), K = g_.patch(), Ci = in_.channels, Co = g_.in.channels,
                     Po = g_.in.pixels(), No = g_.in.size();
  require_shape(y, No, n, "ConvTranspose2d output");
  if (n == 0) return;
  if (g_.transposed_direct(Co)) return conv_cpu::conv_transpose2d_forward_samples<Act>(g_, w_, b_, x, y);
  if (g_.transposed_thin(Co)) return conv_cpu::conv_transpose2d_forward_thin<Act>(g_, w_, b_, x, y);
  const Eigen::Index nb = cd::block_samples(n, P, P * (K + Ci) + No, prilo::max_threads(), block_);
  const int slots = cd::slots_for(n, nb);
  const Eigen::Index per_slot = nb > 1 ? nb * (P * (K + Ci) + No) : P * K;
  Mat<T> scratch(per_slot, slots);  // forward has no caller scratch: bounded by the block size
  cd::for_blocks(n, nb, slots, [&](Eigen::Index t, Eigen::Index first, Eigen::Index m) {
    T* bbuf = scratch.col(t).data();
    const T* xs = x.col(first).data();
    T* yt = y.col(first).data();
    if (m > 1) {
      T* s = bbuf + nb * P * K;
      cd::interleave(x, first, m, s);
      xs = s;
      yt = s + nb * P * Ci;
    }
    const Eigen::Map<const Mat<T>> X(xs, m * P, Ci);
    Eigen::Map<Mat<T>> B(bbuf, m * P, K);
    B.noalias() = X * w_.transpose();
    for (Eigen::Index c = 0; c < Co; ++c) std::fill(yt + c * Po * m, yt + (c + 1) * Po * m, b_(c));
    cd::col2im_add(g_, bbuf, m, yt);
    if (m > 1) cd::deinterleave(yt, first, m, y);
    if constexpr (!std::is_same_v<Act, nn::Identity>) {
      for (Eigen::Index j = 0; j < m; ++j)
        cd::bias_act<Act>(y.col(first + j).data(), T(0), y.col(first + j).data(), No);
    }
  });
}

/// y ← act(Wᵀ ⋆ x + b), y resized to C_out·P_out × n (conv_transpose2d_forward_into).
template <class T, class Act>
void conv_transpose2d_forward(const CpuExecutor& ex, Act act, const nn::conv_detail::Geometry& g_, const Mat<T>& w_,
                              const Vec<T>& b_, const Mat<T>& x, Mat<T>& y, Eigen::Index block_) {
  y.resize(g_.in.size(), x.cols());
  conv_transpose2d_forward_into(ex, act, g_, w_, b_, x, y, block_);
}

/// gx ← ∂/∂x (if gx: a view of x's shape) and, with grads, ∂W and ∂b added
/// (nn::ConvTranspose2d's VJPs; x, y and gy read through views): per block,
/// A = im2col(gy ⊙ act'(y)), gx = A·W, ∂W += Aᵀ X (X the interleaved input), ∂b += Σ G.
/// (gx by the interleaved kernels where the layer takes them: ConvAlgorithm.)
template <class T, class Act>
void conv_transpose2d_backward_into(const CpuExecutor&, Act, const nn::conv_detail::Geometry& g, const Mat<T>& w,
                                    const nn::conv_detail::ConstColumns<T>& x,
                                    const nn::conv_detail::ConstColumns<T>& y,
                                    const nn::conv_detail::ConstColumns<T>& gy, nn::conv_detail::Columns<T>* gx,
                                    Mat<T>& work, const nn::ConvGradients<Mat<T>, Vec<T>>* grads, Eigen::Index block) {
  conv_cpu::with_gradients(grads, [&](auto weights, Mat<T>* part_w, Mat<T>* part_b) {
    conv_cpu::conv_transpose2d_vjp<decltype(weights)::value, Act>(g, w, x, y, gy, gx, work, part_w, part_b, block);
  });
}

/// The same with gx (if given) resized to x's shape.
template <class T, class Act>
void conv_transpose2d_backward(const CpuExecutor& ex, Act act, const nn::conv_detail::Geometry& g, const Mat<T>& w,
                               const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, Mat<T>& work,
                               const nn::ConvGradients<Mat<T>, Vec<T>>* grads, Eigen::Index block) {
  conv_cpu::with_view(gx, w.cols() * g.out_pixels(), gy.cols(), [&](nn::conv_detail::Columns<T>* view) {
    conv_transpose2d_backward_into(ex, act, g, w, x, y, gy, view, work, grads, block);
  });
}

}  // namespace prilo

namespace prilo::nn {

/// What Conv2d and ConvTranspose2d share: the weight and bias (WeightAndBias), the geometry
/// g_ of the convolution (ConvTranspose2d's: its adjoint, output maps → input maps) with the
/// channels of g_'s output side (maps_: Conv2d's output channels, ConvTranspose2d's input
/// channels, the weight's columns), the block size, backward()'s scratch, and the members
/// that run the executor's forms of the layer's customisation points: conv2d_* or, with
/// Transposed, conv_transpose2d_* (the CPU forms above; a device executor's found by
/// argument-dependent lookup). The two layers add their constructors and what is theirs alone.
template <class T, class Act, class Exec, bool Transposed>
class ConvLayer : public WeightAndBias<T, Exec> {
  using Base = WeightAndBias<T, Exec>;
  using Base::b_;
  using Base::ex_;
  using Base::gb_;
  using Base::gw_;
  using Base::w_;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Conv2d, ConvTranspose2d: float or double");
  static_assert(Executor<Exec>, "Conv2d, ConvTranspose2d: Exec must model prilo::Executor");
  using Gradients = ConvGradients<matrix_t<Exec, T>, vector_t<Exec, T>>;
  static constexpr const char* kName = Transposed ? "ConvTranspose2d" : "Conv2d";

 public:
  using scalar = T;
  using activation = Act;
  using executor_type = Exec;
  using matrix_type = matrix_t<Exec, T>;
  using vector_type = vector_t<Exec, T>;

  Shape3 input_shape() const { return Transposed ? side_maps() : g_.in; }
  Shape3 output_shape() const { return Transposed ? g_.in : side_maps(); }
  int kernel() const { return g_.k; }
  int stride() const { return g_.s; }
  int padding() const { return g_.p; }
  Eigen::Index input_size() const { return input_shape().size(); }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    require_constructed();
    const Shape3 s = input_shape();
    if (in >= 0 && in != s.size())
      detail::fail(kName, ": expects ", s.size(), " inputs (", s.channels, "x", s.height, "x", s.width, "), got ", in);
    return output_shape().size();
  }
  /// Products of one sample's forward pass (2 per multiply-add); each VJP costs the same.
  double flops_per_sample() const { return 2.0 * double(g_.out_pixels()) * double(g_.patch()) * double(maps_); }

  /// How the CPU computes (ConvAlgorithm; automatic by default; results the same up to
  /// rounding; copied with the layer, ignored by device executors). For benchmarks and tests.
  void set_algorithm(ConvAlgorithm a) { g_.algorithm = a; }
  ConvAlgorithm algorithm() const { return g_.algorithm; }
  /// Whether the CPU computes this layer's forward pass without im2col + GEMM (ConvAlgorithm):
  /// by the direct kernels, or for a ConvTranspose2d by the interleaved ones or one sample at
  /// a time (the thin rule).
  bool computes_directly() const {
    return Transposed ? g_.transposed_direct(g_.in.channels) || g_.transposed_thin(g_.in.channels) : g_.direct();
  }
  /// Whether it takes them for the input VJP (a ConvTranspose2d's may differ from its forward:
  /// ConvAlgorithm::automatic looks at the channels each pass's tiles cover).
  bool computes_input_vjp_directly() const { return Transposed ? g_.transposed_direct(maps_) : g_.direct(); }

  /// Samples per block (0: chosen from the shapes; results do not depend on it up to
  /// rounding). For benchmarks and tests.
  void set_block_samples(Eigen::Index nb) { block_ = std::max<Eigen::Index>(0, nb); }

  void forward(const matrix_type& x, matrix_type& y) const {
    require_constructed();
    if constexpr (Transposed)
      conv_transpose2d_forward(ex_, Act{}, g_, w_, b_, x, y, block_);
    else
      conv2d_forward(ex_, Act{}, g_, w_, b_, x, y, block_);
  }
  /// The forward pass with scratch in the caller's `work` (kept between calls), for executors
  /// whose forward needs scratch (the GPU's im2col matrix, or stacked input and product); on
  /// the CPU, forward(x, y).
  void forward(const matrix_type& x, matrix_type& y, matrix_type& work) const {
    require_constructed();
    if constexpr (!Transposed) {
      if constexpr (requires { conv2d_forward(ex_, Act{}, g_, w_, b_, x, y, block_, work); })
        conv2d_forward(ex_, Act{}, g_, w_, b_, x, y, block_, work);
      else
        forward(x, y);
    } else if constexpr (requires { conv_transpose2d_forward(ex_, Act{}, g_, w_, b_, x, y, block_, work); }) {
      conv_transpose2d_forward(ex_, Act{}, g_, w_, b_, x, y, block_, work);
    } else {
      forward(x, y);
    }
  }

  /// On the CPU: the forward pass into a view of y's shape, x read through a view (blocks of
  /// rows of larger matrices, as nn::Carry passes its stacked columns' feature rows: no
  /// copies); the same values as forward(x, y).
  void forward_into(const Eigen::Ref<const Mat<T>>& x,
                    Eigen::Ref<Mat<T>> y) const requires std::is_same_v<Exec, CpuExecutor> {
    require_constructed();
    if constexpr (Transposed)
      conv_transpose2d_forward_into(ex_, Act{}, g_, w_, b_, x, y, block_);
    else
      conv2d_forward_into(ex_, Act{}, g_, w_, b_, x, y, block_);
  }
  /// On the CPU: backward_input into a view of x's shape, x, y and gy read through views.
  void backward_input_into(const Eigen::Ref<const Mat<T>>& x, const Eigen::Ref<const Mat<T>>& y,
                           const Eigen::Ref<const Mat<T>>& gy, Eigen::Ref<Mat<T>> gx,
                           Mat<T>& work) const requires std::is_same_v<Exec, CpuExecutor> {
    vjps_into(x, y, gy, &gx, work, nullptr);
  }
  /// On the CPU: backward's VJPs with x, y and gy read through views and ∂/∂x written into a
  /// view of x's shape (if gx); mutating, one thread at a time.
  void backward_into(const Eigen::Ref<const Mat<T>>& x, const Eigen::Ref<const Mat<T>>& y,
                     const Eigen::Ref<const Mat<T>>& gy, Eigen::Ref<Mat<T>>* gx,
                     bool accumulate_weights) requires std::is_same_v<Exec, CpuExecutor> {
    const Gradients grads{gw_, gb_, part_w_, part_b_};
    vjps_into(x, y, gy, gx, work_, accumulate_weights ? &grads : nullptr);
  }

  /// Given input x, output y and output cotangent gy: writes ∂/∂x into *gx (if gx) and, if
  /// accumulate_weights, adds ∂/∂W and ∂/∂b to the gradient buffers. Mutating (member scratch
  /// and per-thread partial weight gradients), so one thread at a time.
  void backward(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx,
                bool accumulate_weights) {
    const Gradients grads{gw_, gb_, part_w_, part_b_};
    vjps(x, y, gy, gx, work_, accumulate_weights ? &grads : nullptr);
  }
  /// The input VJP alone, const and thread-safe: scratch in the caller's `work`.
  void backward_input(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type& gx,
                      matrix_type& work) const {
    vjps(x, y, gy, &gx, work, nullptr);
  }

 protected:
  template <class, class, class, bool>
  friend class ConvLayer;

  ConvLayer() = default;
  explicit ConvLayer(Exec ex) : Base(std::move(ex)) {}

  /// Becomes a copy of a layer on another executor (geometry, block size, weights and bias,
  /// through the host) with zero gradients.
  template <class From>
  void copy_from(const ConvLayer<T, Act, From, Transposed>& other) {
    g_ = other.g_;
    maps_ = other.maps_;
    block_ = other.block_;
    assign(other.host_weight(), other.host_bias());
  }
  /// Copies the weights and bias into a layer of the same geometry on another executor (its
  /// gradients untouched).
  template <class To>
  void copy_to(ConvLayer<T, Act, To, Transposed>& other) const {
    if (other.input_shape() != input_shape() || other.output_shape() != output_shape() || other.kernel() != kernel() ||
        other.stride() != stride() || other.padding() != padding())
      detail::fail(kName, "::download: the target layer has another geometry");
    other.assign_weights(this->host_weight(), this->host_bias());
  }

  /// Takes the geometry and the channels of its output side, and draws the weights (C·k² ×
  /// maps) and the bias as PyTorch does: U(−1/√fan_in, 1/√fan_in), fan_in = C·k², the weights'
  /// column-major entries first (on the host, in the same order for every executor).
  void initialise(const conv_detail::Geometry& g, Eigen::Index maps, Rng& rng) {
    g_ = g;
    maps_ = maps;
    Mat<T> w(g_.patch(), maps_);
    Vec<T> b(output_shape().channels);
    const double bound = 1.0 / std::sqrt(double(g_.patch()));
    conv_detail::init_uniform(w.data(), w.size(), bound, rng);
    conv_detail::init_uniform(b.data(), b.size(), bound, rng);
    assign(w, b);
  }

  /// Takes host weights (C·k² × maps_, C the channels of g_.in) and bias (one per output
  /// channel).
  void assign_weights(const Mat<T>& w, const Mat<T>& b) {
    require_shape(w, g_.patch(), maps_, Transposed ? "ConvTranspose2d weight" : "Conv2d weight");
    require_shape(b, output_shape().channels, 1, Transposed ? "ConvTranspose2d bias" : "Conv2d bias");
    this->store(w, b);
  }
  /// The same, with zero gradients of the same shapes.
  void assign(const Mat<T>& w, const Mat<T>& b) {
    assign_weights(w, b);
    this->reset_gradients();
  }

  conv_detail::Geometry g_;
  Eigen::Index maps_ = 0;
  Eigen::Index block_ = 0;

 private:
  /// The maps on g_'s output side: maps_ channels of g_.out_h × g_.out_w.
  Shape3 side_maps() const { return {maps_, g_.out_h, g_.out_w}; }
  /// Fails unless the layer has weights: a default-constructed one has no geometry, and its
  /// passes returned empty outputs or (ConvTranspose2d's VJPs) divided by zero. Once per call.
  void require_constructed() const {
    if (w_.cols() == 0) detail::fail(kName, ": the layer was default-constructed (no geometry or weights)");
  }
  /// The executor's backward form (whole matrices, gx resized).
  void vjps(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx, matrix_type& work,
            const Gradients* grads) const {
    require_constructed();
    if constexpr (Transposed)
      conv_transpose2d_backward(ex_, Act{}, g_, w_, x, y, gy, gx, work, grads, block_);
    else
      conv2d_backward(ex_, Act{}, g_, w_, x, y, gy, gx, work, grads, block_);
  }
  /// The CPU's backward form over views.
  void vjps_into(const Eigen::Ref<const Mat<T>>& x, const Eigen::Ref<const Mat<T>>& y,
                 const Eigen::Ref<const Mat<T>>& gy, Eigen::Ref<Mat<T>>* gx, Mat<T>& work,
                 const Gradients* grads) const {
    require_constructed();
    if constexpr (Transposed)
      conv_transpose2d_backward_into(ex_, Act{}, g_, w_, x, y, gy, gx, work, grads, block_);
    else
      conv2d_backward_into(ex_, Act{}, g_, w_, x, y, gy, gx, work, grads, block_);
  }

  matrix_type work_, part_w_, part_b_;  // scratch of backward()
};

/// 2-D convolution y = act(W ∗ x + b) over a batch of feature maps (one sample per column,
/// layout of Shape3), with PyTorch's nn.Conv2d semantics: square kernel k, stride s, zero
/// padding p, bias, dilation 1, groups 1. Output maps H_out = (H + 2p − k)/s + 1 (likewise W),
/// on executor Exec (the CPU by default; gpu::Conv2d is the CUDA instantiation).
///
/// Weights: weight() is a (C_in·k²) × C_out matrix whose column-major storage is PyTorch's
/// [C_out, C_in, k, k] tensor in PyTorch's (row-major) element order:
/// weight()((c_in·k + kh)·k + kw, c_out) = W_torch[c_out, c_in, kh, kw]; bias() has C_out
/// entries. Initialisation as PyTorch: W and b ~ U(−1/√fan_in, 1/√fan_in), fan_in = C_in·k²,
/// drawn on the host in the same order for every executor.
///
/// Computation (the executor's conv2d_forward and conv2d_backward): per block of samples, the
/// im2col matrix A ((samples·pixels_out) × C_in·k², column (c, kh, kw) the shifted input map)
/// times weight() gives every output channel as a contiguous column (the block interleaved:
/// nn::conv_detail), copied back into the samples' columns, then bias and activation. The
/// VJPs are the same products transposed: gx = col2im(G Wᵀ), ∂W = Aᵀ G, ∂b = Σ G, with
/// G = gy ⊙ act'(y) interleaved likewise. On the
/// CPU, blocks run in parallel on OpenMP's threads (one thread inside an enclosing parallel
/// region); forward and backward_input are const and thread-safe. The members shared with
/// ConvTranspose2d (shapes, passes, VJPs) are ConvLayer's.
template <class T, class Act = Identity, class Exec = CpuExecutor>
class Conv2d : public ConvLayer<T, Act, Exec, false> {
  using Base = ConvLayer<T, Act, Exec, false>;
  using Base::g_;

 public:
  Conv2d() = default;
  Conv2d(Shape3 in, Eigen::Index out_channels, int kernel, int stride, int padding, Rng& rng, Exec ex = {})
      : Base(std::move(ex)) {
    require_positive(in, "Conv2d input");
    conv_detail::check_hyper("Conv2d", out_channels, kernel, stride, padding);
    conv_detail::check_patch("Conv2d", in.channels, kernel);
    // the padded extents H + 2p and W + 2p below must stay inside Index
    constexpr Eigen::Index most = std::numeric_limits<Eigen::Index>::max();
    if (std::max(in.height, in.width) > most - 2 * Eigen::Index(padding))
      detail::fail("Conv2d: the padded input (", in.height, "x", in.width, " with padding ", padding,
                   ") exceeds the index type's range");
    if (in.height + 2 * padding < kernel || in.width + 2 * padding < kernel)
      detail::fail("Conv2d: kernel ", kernel, " is larger than the padded input ", in.height + 2 * padding, "x",
                   in.width + 2 * padding);
    const Eigen::Index oh = (in.height + 2 * padding - kernel) / stride + 1;
    const Eigen::Index ow = (in.width + 2 * padding - kernel) / stride + 1;
    require_positive(Shape3{out_channels, oh, ow}, "Conv2d output");
    this->initialise({.in = in, .out_h = oh, .out_w = ow, .k = kernel, .s = stride, .p = padding}, out_channels, rng);
  }
  /// The same layer on executor ex, copied through the host from a layer on another executor
  /// (e.g. gpu::Conv2d from nn::Conv2d); gradients start at zero.
  template <class From>
  requires(!std::is_same_v<From, Exec>) explicit Conv2d(const Conv2d<T, Act, From>& other, Exec ex = {})
      : Base(std::move(ex)) {
    upload(other);
  }

  /// Becomes a copy of a layer on another executor (geometry, weights and bias, through the
  /// host) with zero gradients: nn::Conv2d → gpu::Conv2d.
  template <class From>
  void upload(const Conv2d<T, Act, From>& other) {
    this->copy_from(other);
  }
  /// Copies the weights and bias into a layer of the same geometry on another executor (its
  /// gradients untouched): gpu::Conv2d → nn::Conv2d.
  template <class To>
  void download(Conv2d<T, Act, To>& other) const {
    this->copy_to(other);
  }
};

/// Transposed 2-D convolution y = act(Wᵀ ⋆ x + b) with PyTorch's nn.ConvTranspose2d
/// semantics (dilation 1, groups 1): the adjoint of the input map of a Conv2d from C_out maps
/// of H_out × W_out to C_in maps of H × W with the same kernel, stride and padding, plus bias.
/// H_out = (H − 1)·s − 2p + k + output_padding, output_padding < s (likewise W). On executor
/// Exec (the CPU by default; gpu::ConvTranspose2d is the CUDA instantiation).
///
/// Weights: weight() is a (C_out·k²) × C_in matrix whose column-major storage is PyTorch's
/// [C_in, C_out, k, k] tensor in PyTorch's element order:
/// weight()((c_out·k + kh)·k + kw, c_in) = W_torch[c_in, c_out, kh, kw] (the matrix of the
/// adjoint Conv2d, laid out as Conv2d::weight()); bias() has C_out entries. Initialisation as
/// PyTorch: W and b ~ U(−1/√fan_in, 1/√fan_in) with PyTorch's fan_in = weight.size(1)·k² =
/// C_out·k², drawn on the host in the same order for every executor.
///
/// Computation (the executor's conv_transpose2d_forward and conv_transpose2d_backward): per
/// block of samples, the interleaved input X ((samples·H·W) × C_in) times weight()ᵀ, scattered
/// into the output maps by col2im (the conv's input VJP); backward input = the conv forward
/// of G = gy ⊙ act'(y) (im2col(G) · weight()), ∂W = im2col(G)ᵀ X. The members shared with
/// Conv2d (shapes, passes, VJPs) are ConvLayer's.
template <class T, class Act = Identity, class Exec = CpuExecutor>
class ConvTranspose2d : public ConvLayer<T, Act, Exec, true> {
  using Base = ConvLayer<T, Act, Exec, true>;

 public:
  ConvTranspose2d() = default;
  ConvTranspose2d(Shape3 in, Eigen::Index out_channels, int kernel, int stride, int padding, int output_padding,
                  Rng& rng, Exec ex = {})
      : Base(std::move(ex)) {
    require_positive(in, "ConvTranspose2d input");
    conv_detail::check_hyper("ConvTranspose2d", out_channels, kernel, stride, padding);
    conv_detail::check_patch("ConvTranspose2d", out_channels, kernel);
    if (output_padding < 0 || output_padding >= stride)
      detail::fail("ConvTranspose2d: output_padding must be in [0, stride), got output_padding=", output_padding,
                   " with stride=", stride);
    // (H − 1)·s + k + output_padding (likewise W) must stay inside Index
    constexpr Eigen::Index most = std::numeric_limits<Eigen::Index>::max();
    const Eigen::Index grow = Eigen::Index(kernel) + output_padding;
    if (std::max(in.height, in.width) - 1 > (most - grow) / stride)
      detail::fail("ConvTranspose2d: the output of a ", in.height, "x", in.width, " input with kernel ", kernel,
                   " and stride ", stride, " exceeds the index type's range");
    const Eigen::Index oh = (in.height - 1) * stride - 2 * padding + kernel + output_padding;
    const Eigen::Index ow = (in.width - 1) * stride - 2 * padding + kernel + output_padding;
    if (oh <= 0 || ow <= 0)
      detail::fail("ConvTranspose2d: padding ", padding, " leaves no output (", oh, "x", ow, ") for a ", in.height, "x",
                   in.width, " input with kernel ", kernel, " and stride ", stride);
    require_positive(Shape3{out_channels, oh, ow}, "ConvTranspose2d output");
    op_ = output_padding;
    // the adjoint convolution: from the output maps (C_out × oh × ow) to the input's H × W
    this->initialise(
        {.in = {out_channels, oh, ow}, .out_h = in.height, .out_w = in.width, .k = kernel, .s = stride, .p = padding},
        in.channels, rng);
  }
  /// The same layer on executor ex, copied through the host from a layer on another executor
  /// (e.g. gpu::ConvTranspose2d from nn::ConvTranspose2d); gradients start at zero.
  template <class From>
  requires(!std::is_same_v<From, Exec>) explicit ConvTranspose2d(const ConvTranspose2d<T, Act, From>& other,
                                                                 Exec ex = {})
      : Base(std::move(ex)) {
    upload(other);
  }

  /// Becomes a copy of a layer on another executor (geometry, weights and bias, through the
  /// host) with zero gradients: nn::ConvTranspose2d → gpu::ConvTranspose2d.
  template <class From>
  void upload(const ConvTranspose2d<T, Act, From>& other) {
    op_ = other.output_padding();
    this->copy_from(other);
  }
  /// Copies the weights and bias into a layer of the same geometry on another executor (its
  /// gradients untouched): gpu::ConvTranspose2d → nn::ConvTranspose2d.
  template <class To>
  void download(ConvTranspose2d<T, Act, To>& other) const {
    if (other.output_padding() != output_padding())
      detail::fail("ConvTranspose2d::download: the target layer has another geometry");
    this->copy_to(other);
  }

  int output_padding() const { return op_; }

 private:
  int op_ = 0;
};

}  // namespace prilo::nn

// Register-tiled kernels for the convolutions whose products are too thin for a GEMM (a Conv2d
// with one input channel and a 4 × 4 kernel has an inner dimension of 16: a BLAS GEMM of that
// shape spends as long packing its operands as multiplying them). nn/conv.hpp's
// ConvAlgorithm::direct runs a Conv2d one sample at a time on these, reading the sample's maps
// from a zero-padded frame (no im2col matrix, no interleaving, no BLAS call):
//  * pixel_product: the forward, output channels along Eigen's SIMD packets, S pixels of an
//    output row × 8 channels in registers, bias and activation there, each S × S tile
//    transposed in registers and stored straight into the sample's column;
//  * weight_product: the weight gradient, channels along the packets, 4 taps × 2 channel
//    packets in registers over every pixel;
//  * small_product: a (pixels × depth) matrix times a (depth × outputs) one, pixels along the
//    packets, 3 packets × 4 outputs in registers (the input gradient's G·Wᵀ).
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../core.hpp"
#include "activations.hpp"

namespace prilo::nn::conv_detail::direct {

using Index = Eigen::Index;
namespace ei = Eigen::internal;

template <class T>
using Packet = typename ei::packet_traits<T>::type;
/// Scalars per packet (1 where Eigen does not vectorise T).
template <class T>
inline constexpr Index lanes = ei::unpacket_traits<Packet<T>>::size;

/// n rounded up to whole packets: the row stride of the kernels' scratch matrices, whose rows
/// n … padded(n) − 1 are kept at zero.
template <class T>
Index padded(Index n) {
  return (n + lanes<T> - 1) / lanes<T> * lanes<T>;
}

/// Keeps v in a vector register from here on, on AVX-512 builds. There, in tile, GCC folds the
/// loads of the input packets into the FMAs as memory operands, one per FMA: 12 loads of the
/// same 3 packets per step of the depth instead of 3 (most of them across two cache lines, the
/// input's columns, one per channel, starting 196 floats apart in the conv VAE), and the kernel
/// was load-bound: 2.6 µs for the conv VAE's 196×32 by 32×16 product, 1.2 µs with the packets
/// kept (a scratch program, Zen 5). An empty asm that takes and returns v makes the compiler
/// materialise it once; the arithmetic is unchanged. Not on AVX2 (the same time either way) nor
/// SSE2 (12 % slower with it: the 16 registers are all taken).
template <class P>
EIGEN_ALWAYS_INLINE void keep_in_register(P& v) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
  __asm__("" : "+v"(v));
#else
  (void)v;
#endif
}

/// One tile of out(q, o) = Σ_r in(q, r)·w[r·sr + o·so] for R packets of rows from q0
/// (in points at row q0 of column 0, out at row q0 of output column o0, w at o0's first weight)
/// and C outputs. `valid` rows from q0 are stored (the rest of the last packet is not written);
/// every packet of `in` read must exist (its rows padded to whole packets).
template <class T, int R, int C>
EIGEN_ALWAYS_INLINE void tile(const T* in, Index ldi, Index depth, const T* w, Index sr, Index so, T* out, Index ldo,
                              Index valid) {
  using P = Packet<T>;
  constexpr Index S = lanes<T>;
  P acc[R][C];
  static_for<R * C>([&](auto i) PRILO_INLINE_LAMBDA { acc[i / C][i % C] = ei::pset1<P>(T(0)); });
  for (Index k = 0; k < depth; ++k) {
    const T* ik = in + k * ldi;
    const T* wk = w + k * sr;
    P a[R];
    static_for<R>([&](auto r) PRILO_INLINE_LAMBDA {
      a[r] = ei::ploadu<P>(ik + r * S);
      keep_in_register(a[r]);
    });
    static_for<C>([&](auto c) PRILO_INLINE_LAMBDA {
      const P wc = ei::pset1<P>(wk[c * so]);
      static_for<R>([&](auto r) PRILO_INLINE_LAMBDA { acc[r][c] = ei::pmadd(a[r], wc, acc[r][c]); });
    });
  }
  static_for<R * C>([&](auto i) PRILO_INLINE_LAMBDA {
    constexpr int r = i / C, c = i % C;
    T* o = out + c * ldo + r * S;
    const Index v = valid - r * S;
    if (v >= S) {
      ei::pstoreu(o, acc[r][c]);
    } else if (v > 0) {
      T part[S];
      ei::pstoreu(part, acc[r][c]);
      std::copy(part, part + v, o);
    }
  });
}

/// C outputs (a panel of out's columns) over every row: tiles of R packets, then the rows left.
template <class T, int R, int C>
void panel(const T* in, Index ldi, Index rows, Index depth, const T* w, Index sr, Index so, T* out, Index ldo) {
  constexpr Index S = lanes<T>;
  Index q0 = 0;
  for (; q0 + R * S <= rows; q0 += R * S) tile<T, R, C>(in + q0, ldi, depth, w, sr, so, out + q0, ldo, R * S);
  // what is left: fewer than R packets (each read must lie within padded(rows))
  static_assert(R <= 3, "panel: the rows left are covered by tiles of 1 or 2 packets");
  const Index left = rows - q0;
  if (left > 2 * S) {
    tile<T, 3, C>(in + q0, ldi, depth, w, sr, so, out + q0, ldo, left);
  } else if (left > S) {
    tile<T, 2, C>(in + q0, ldi, depth, w, sr, so, out + q0, ldo, left);
  } else if (left > 0) {
    tile<T, 1, C>(in + q0, ldi, depth, w, sr, so, out + q0, ldo, left);
  }
}

/// out(q, o) = Σ_r in(q, r)·w[r·sr + o·so] for q < rows, o < outputs. `in` is column-major with leading dimension ldi ≥
/// rows, its rows up to padded(rows) readable (their values do not reach the rows stored; with ldi < padded(rows) they
/// are the next column's first rows); out column-major
/// with leading dimension ldo, rows ≥ `rows` not written. Tiles of 3 packets × 4 outputs: 12 accumulators, 3 loads and
/// 4 broadcasts per step of the depth (16 vector registers on AVX2).
template <class T>
void small_product(const T* in, Index ldi, Index rows, Index depth, const T* w, Index sr, Index so, Index outputs,
                   T* out, Index ldo) {
  constexpr int R = 3, C = 4;
  for (Index o0 = 0; o0 < outputs; o0 += C) {
    const T* wo = w + o0 * so;
    T* oo = out + o0 * ldo;
    switch (std::min<Index>(C, outputs - o0)) {
      case 4: panel<T, R, 4>(in, ldi, rows, depth, wo, sr, so, oo, ldo); break;
      case 3: panel<T, R, 3>(in, ldi, rows, depth, wo, sr, so, oo, ldo); break;
      case 2: panel<T, R, 2>(in, ldi, rows, depth, wo, sr, so, oo, ldo); break;
      default: panel<T, R, 1>(in, ldi, rows, depth, wo, sr, so, oo, ldo); break;
    }
  }
}

// PacketBlock of an x86 vector type (transpose_tile, the tiles): GCC warns that the type's
// attributes are dropped from the template argument (harmless: Eigen's own ptranspose overloads
// take the same type)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif
/// dst = srcᵀ for one S × S tile (S = lanes<T> > 1; column-major, leading dimensions lds, ldd),
/// in registers (Eigen's ptranspose: its caller takes PRILO_FLATTEN).
template <class T>
EIGEN_ALWAYS_INLINE void transpose_tile(const T* src, Index lds, T* dst, Index ldd) {
  using Pk = Packet<T>;
  constexpr int S = int(lanes<T>);
  ei::PacketBlock<Pk, S> b;  // b.packet[j]: column j of src, then row j
  static_for<S>([&](auto j) PRILO_INLINE_LAMBDA { b.packet[j] = ei::ploadu<Pk>(src + j * lds); });
  ei::ptranspose(b);
  static_for<S>([&](auto j) PRILO_INLINE_LAMBDA { ei::pstoreu(dst + j * ldd, b.packet[j]); });
}

/// One tile of Conv2d's forward: S = lanes<T> output pixels of one output row from (oh, ow0)
/// × CP packets of output channels from c0, the channels along the packets. Pixel i reads the
/// frame at xr[i·s + off[t]] (xr: the frame at input row oh·s, column ow0·s; Stride: s when it
/// is known at compile time, 0 to read s), acc(c, i) = bias[c] + Σ_t xr[i·s + off[t]]·wt[t·ldw +
/// c], then act, then each S × S block transposed in registers and stored as the channels'
/// rows of pixels: y[c·P + i] (y points at (c0, oh·out_w + ow0)) for i < pixels (all S when
/// `overlap`: the pixels past the row are written too, into later rows of the same channel,
/// which are written again afterwards) and c < channels_left (≤ CP·S). wt and bias point at
/// channel c0 and are padded to whole packets. Pixels past the row read past it in the frame
/// (the frame has slack for that); their lanes are never kept.
template <class Act, class T, int CP, int Stride>
EIGEN_ALWAYS_INLINE void pixel_tile(const T* xr, Index s, const Index* off, Index taps, const T* wt, Index ldw,
                                    const T* bias, T* y, Index P, Index pixels, bool overlap, Index channels_left) {
  using Pk = Packet<T>;
  constexpr int S = int(lanes<T>);
  const Index step = Stride > 0 ? Index(Stride) : s;
  // On static_for, as tile and sample_tile: at -O2 GCC kept the plain loops' accumulators in
  // memory (enc1's forward 2.3x slower). At -O3 the same speed as the plain loops, since
  // pixel_product is flattened: before, GCC had called ptranspose out of line from the larger
  // static_for code (5 % slower then).
  Pk acc[CP][S];
  static_for<CP>([&](auto c) PRILO_INLINE_LAMBDA {
    const Pk b0 = ei::ploadu<Pk>(bias + c * S);
    static_for<S>([&](auto i) PRILO_INLINE_LAMBDA { acc[c][i] = b0; });
  });
  for (Index t = 0; t < taps; ++t) {
    const T* wk = wt + t * ldw;
    const T* xt = xr + off[t];
    Pk wv[CP];
    static_for<CP>([&](auto c) PRILO_INLINE_LAMBDA { wv[c] = ei::ploadu<Pk>(wk + c * S); });
    static_for<S>([&](auto i) PRILO_INLINE_LAMBDA {
      const Pk xv = ei::pset1<Pk>(xt[i * step]);
      static_for<CP>([&](auto c) PRILO_INLINE_LAMBDA { acc[c][i] = ei::pmadd(xv, wv[c], acc[c][i]); });
    });
  }
  static_for<CP>([&](auto c) PRILO_INLINE_LAMBDA {
    ei::PacketBlock<Pk, S> block;
    static_for<S>([&](auto i) PRILO_INLINE_LAMBDA {
      if constexpr (has_value_packet<Act, T>)
        block.packet[i] = Act::template value_packet<T>(acc[c][i]);
      else
        block.packet[i] = acc[c][i];
    });
    if constexpr (S > 1) ei::ptranspose(block);
    const Index rows = std::min<Index>(S, channels_left - c * S);
    for (Index r = 0; r < rows; ++r) {
      T* yc = y + (c * S + r) * P;
      if (pixels == S || overlap) {
        ei::pstoreu(yc, block.packet[r]);
      } else {
        T part[S];
        ei::pstoreu(part, block.packet[r]);
        for (Index i = 0; i < pixels; ++i) yc[i] = part[i];
      }
    }
  });
}

template <class Act, class T, int CP>
EIGEN_ALWAYS_INLINE void pixel_tile_strided(const T* xr, Index s, const Index* off, Index taps, const T* wt, Index ldw,
                                            const T* bias, T* y, Index P, Index pixels, bool overlap,
                                            Index channels_left) {
  if (s == 2)
    pixel_tile<Act, T, CP, 2>(xr, s, off, taps, wt, ldw, bias, y, P, pixels, overlap, channels_left);
  else if (s == 1)
    pixel_tile<Act, T, CP, 1>(xr, s, off, taps, wt, ldw, bias, y, P, pixels, overlap, channels_left);
  else
    pixel_tile<Act, T, CP, 0>(xr, s, off, taps, wt, ldw, bias, y, P, pixels, overlap, channels_left);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The frame slack the direct kernels read past a frame (pixel_tile's pixels past a row).
template <class T>
Index frame_slack(Index s, int k) {
  return lanes<T> * s + k;
}

/// Conv2d's forward for one sample, straight into its column y (channels × P pixels, the
/// layout of nn::Shape3): y[c·P + oh·out_w + ow] = act(bias[c] + Σ_t xp[(oh·s)·row + ow·s +
/// off[t]]·wt[t·ldw + c]) for c < channels, where xp is the sample's zero-padded frame (rows
/// `row` apart, frame_slack readable values past it), off[t] tap t's offset, wt the weights as
/// taps × channels (rows ldw apart, channels padded to whole packets with zero weights and
/// bias). Tiles of S pixels of a row × CP packets of channels, CP·S accumulators (8 on AVX2
/// and SSE, 16 with AVX-512): per tap CP weight packets and S broadcasts at fixed offsets from
/// one pointer. Acts where Act has value_packet; otherwise the caller does.
template <class Act, class T>
void pixel_product(const T* xp, Index row, Index out_h, Index out_w, Index s, const Index* off, Index taps, const T* wt,
                   Index ldw, const T* bias, Index channels, T* y) {
  constexpr Index S = lanes<T>;
  constexpr int CP = S >= 8 ? 1 : int(8 / S);
  const Index P = out_h * out_w;
  auto rows = [&](auto cp, Index c0) PRILO_FLATTEN {
    for (Index oh = 0; oh < out_h; ++oh)
      for (Index ow0 = 0; ow0 < out_w; ow0 += S) {
        const Index q0 = oh * out_w + ow0;
        pixel_tile_strided<Act, T, decltype(cp)::value>(xp + oh * s * row + ow0 * s, s, off, taps, wt + c0, ldw,
                                                        bias + c0, y + c0 * P + q0, P, std::min(S, out_w - ow0),
                                                        q0 + S <= P, channels - c0);
      }
  };
  Index c0 = 0;
  for (; c0 + CP * S <= ldw; c0 += CP * S) rows(std::integral_constant<int, CP>{}, c0);
  for (; c0 < ldw; c0 += S) rows(std::integral_constant<int, 1>{}, c0);  // fewer than CP packets left
}

/// One tile of Conv2d's weight gradient: TT taps from t0 × CP packets of channels from c0,
/// acc[t·lda + c] += Σ_{oh, ow} xp[(oh·s)·row + ow·s + off[t]]·gt[(oh·out_w + ow)·ldg + c],
/// with gt the output cotangent as pixels × channels (channels along the packets, rows ldg
/// apart). off and acc point at t0's entries, gt and acc at channel c0.
template <class T, int TT, int CP>
EIGEN_ALWAYS_INLINE void weight_tile(const T* xp, Index row, Index out_h, Index out_w, Index s, const Index* off,
                                     const T* gt, Index ldg, T* acc, Index lda) {
  using Pk = Packet<T>;
  constexpr Index S = lanes<T>;
  Pk sum[TT][CP];
  static_for<TT * CP>([&](auto k) PRILO_INLINE_LAMBDA { sum[k / CP][k % CP] = ei::pset1<Pk>(T(0)); });
  const T* xt[TT];
  for (int t = 0; t < TT; ++t) xt[t] = xp + off[t];
  const T* gq = gt;
  for (Index oh = 0; oh < out_h; ++oh) {
    Index idx = oh * s * row;
    for (Index ow = 0; ow < out_w; ++ow, idx += s, gq += ldg) {
      Pk gv[CP];
      static_for<CP>([&](auto c) PRILO_INLINE_LAMBDA { gv[c] = ei::ploadu<Pk>(gq + c * S); });
      static_for<TT>([&](auto t) PRILO_INLINE_LAMBDA {
        const Pk xv = ei::pset1<Pk>(xt[t][idx]);
        static_for<CP>([&](auto c) PRILO_INLINE_LAMBDA { sum[t][c] = ei::pmadd(xv, gv[c], sum[t][c]); });
      });
    }
  }
  static_for<TT * CP>([&](auto k) PRILO_INLINE_LAMBDA {
    T* a = acc + (k / CP) * lda + (k % CP) * S;
    ei::pstoreu(a, ei::padd(ei::ploadu<Pk>(a), sum[k / CP][k % CP]));
  });
}

template <class T, int CP>
void weight_taps(const T* xp, Index row, Index out_h, Index out_w, Index s, const Index* off, Index taps, const T* gt,
                 Index ldg, T* acc, Index lda) {
  Index t = 0;
  for (; t + 4 <= taps; t += 4) weight_tile<T, 4, CP>(xp, row, out_h, out_w, s, off + t, gt, ldg, acc + t * lda, lda);
  switch (taps - t) {
    case 3: weight_tile<T, 3, CP>(xp, row, out_h, out_w, s, off + t, gt, ldg, acc + t * lda, lda); break;
    case 2: weight_tile<T, 2, CP>(xp, row, out_h, out_w, s, off + t, gt, ldg, acc + t * lda, lda); break;
    case 1: weight_tile<T, 1, CP>(xp, row, out_h, out_w, s, off + t, gt, ldg, acc + t * lda, lda); break;
    default: break;
  }
}

/// Conv2d's weight gradient for one sample, in the layout of pixel_product's weights:
/// acc[t·ldg + c] += Σ_{oh, ow} xp[(oh·s)·row + ow·s + off[t]]·gt[(oh·out_w + ow)·ldg + c] for
/// t < taps and every channel c < ldg (the channels padded to whole packets), where gt is the
/// sample's output cotangent as pixels × channels. Tiles of 4 taps × 2 channel packets (8
/// accumulators; per pixel 2 loads and 4 broadcasts), kept in registers over every pixel.
template <class T>
void weight_product(const T* xp, Index row, Index out_h, Index out_w, Index s, const Index* off, Index taps,
                    const T* gt, Index ldg, T* acc) {
  constexpr Index S = lanes<T>;
  Index c = 0;
  for (const Index pairs = whole_blocks(ldg, 2 * S); c < pairs; c += 2 * S)
    weight_taps<T, 2>(xp, row, out_h, out_w, s, off, taps, gt + c, ldg, acc + c, ldg);
  for (; c < ldg; c += S) weight_taps<T, 1>(xp, row, out_h, out_w, s, off, taps, gt + c, ldg, acc + c, ldg);
}

// ---------------------------------------------------------------------------------------
// ConvTranspose2d's direct kernels (ConvAlgorithm::direct): blocks of samples interleaved (the
// sample index innermost, nn::conv_detail's layout), every pixel a run of whole packets of
// samples, read from a zero frame around the maps. A tile is R packets of samples × C channels
// of one pixel, so every load is a packet of samples and every weight a broadcast; there is no
// im2col or col2im matrix (the GEMM path's (m·P) × (C·k²) matrices, four times the maps for
// k = 4, s = 2) and no BLAS call.

/// out[c·ldo + r·S] = act(bias[c] + Σ_{t < taps} Σ_{d < depth} x[off[t] + d·ldx + r·S] ·
/// w[(t·depth + d)·ldw + c]) for r < R, c < min(C, channels) (bias null: 0). w holds C readable
/// channels per row (padded with zeros), tap by tap. The taps outside and the depth inside: the
/// depth loop is the long one (the input channels, 32–64 in the conv VAE, against 4 or 16 taps),
/// and in a pixel-major frame (SampleFrame, ldx = run) its reads are contiguous.
template <class Act, class T, int R, int C>
EIGEN_ALWAYS_INLINE void sample_tile(const T* x, Index ldx, Index depth, const Index* off, Index taps, const T* w,
                                     Index ldw, const T* bias, T* out, Index ldo, Index channels) {
  using Pk = Packet<T>;
  constexpr Index S = lanes<T>;
  Pk acc[R][C];
  static_for<R * C>([&](auto i) PRILO_INLINE_LAMBDA { acc[i / C][i % C] = ei::pset1<Pk>(T(0)); });
  for (Index t = 0; t < taps; ++t) {
    const T* xt = x + off[t];
    const T* wt = w + t * depth * ldw;
    for (Index d = 0; d < depth; ++d) {
      Pk a[R];
      static_for<R>([&](auto r) PRILO_INLINE_LAMBDA { a[r] = ei::ploadu<Pk>(xt + d * ldx + r * S); });
      const T* wd = wt + d * ldw;
      static_for<C>([&](auto c) PRILO_INLINE_LAMBDA {
        const Pk wc = ei::pset1<Pk>(wd[c]);
        static_for<R>([&](auto r) PRILO_INLINE_LAMBDA { acc[r][c] = ei::pmadd(a[r], wc, acc[r][c]); });
      });
    }
  }
  static_for<C>([&](auto c) PRILO_INLINE_LAMBDA {
    if (c >= channels) return;
    const Pk b = ei::pset1<Pk>(bias ? bias[c] : T(0));
    static_for<R>([&](auto r) PRILO_INLINE_LAMBDA {
      ei::pstoreu(out + c * ldo + r * S, Act::template value_packet<T>(ei::padd(acc[r][c], b)));
    });
  });
}

/// The distance between two frame pixels of a pixel-major frame (SampleFrame) of `depth`
/// channels' runs of `run` samples, in scalars: the one definition the frame's writers and
/// sample_product's reads share. (A pad of one cache line where depth·run·sizeof(T) is a
/// multiple of 4096 bytes, so that fill_columns' stores, one frame pixel apart, would not share
/// cache sets, gave 1.008 of conv PRILO-MII's time: not taken, benchmarks/README.md.)
constexpr Index frame_pixel_stride(Index depth, Index run) {
  return depth * run;
}

/// Where the interleaved kernels read and what they compute, for every output pixel q of one
/// convolution-like map: its inputs are the frame pixels base[q] + off[g·taps_max + t] for the
/// taps t < taps[g] of its group g = group[q], weighted by the group's weights (taps[g] ×
/// depth rows of `channels` values, padded to ldw, row t·depth + d; depth: the input
/// channels, each a run further inside a frame pixel: SampleFrame). Offsets count frame
/// pixels; the kernels scale them by frame_pixel_stride(depth, run).
struct SamplePlan {
  Index depth = 0, channels = 0, taps_max = 0;
  std::vector<Index> base, group, taps, off;
  Index pixels() const { return Index(base.size()); }
};

// (PacketBlock in fill_columns, as above)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif
/// A block of maps (channels × height × width) inside a zero frame of fh × fw pixels, the maps
/// at (top, left), pixel-major: frame pixel p holds every channel's run of `run` samples,
/// channel c at p·stride + c·run (stride = frame_pixel_stride(channels, run) = channels·run). A
/// tile's reads for one tap then run through the depth contiguously (sample_tile): against the
/// channels a whole frame apart (the layout before), dec1's forward and its forward + input
/// VJP take 0.955 and 0.94 of the time (bench_conv's layer/dec1…/t1, the Intel VM), conv
/// PRILO-MII 0.957.
struct SampleFrame {
  Index channels = 0, height = 0, width = 0, top = 0, left = 0, fh = 0, fw = 0;
  Index pixels() const { return fh * fw; }
  Index stride(Index run) const { return frame_pixel_stride(channels, run); }
  Index size(Index run) const { return pixels() * stride(run); }
  /// The frame's border ← 0 (the interior is written by fill).
  template <class T>
  void clear_border(Index run, T* frame) const {
    const Index px = stride(run);  // one frame pixel: every channel's run
    for (Index h = 0; h < fh; ++h) {
      T* row = frame + h * fw * px;
      if (h < top || h >= top + height) {
        std::fill(row, row + fw * px, T(0));
      } else {
        std::fill(row, row + left * px, T(0));
        std::fill(row + (left + width) * px, row + fw * px, T(0));
      }
    }
  }
  /// The frame's interior ← columns 0 … run − 1 of g (each a sample's channels × height ×
  /// width values, ldg apart; run whole packets), straight into the interleaved layout:
  /// blocks of S pixels × S samples transposed in registers and stored at the pixels' places
  /// in the frame (one pass where interleaving and fill are two). Act other than the Identity
  /// (one with cotangent_packet): g ⊙ act'(y) on the way, y (Act's outputs) of g's shape, ldy
  /// apart (a third pass fewer).
  template <class Act, class T>
  PRILO_FLATTEN void fill_columns(const T* g, Index ldg, const T* y, Index ldy, Index run, T* frame) const {
    using Pk = Packet<T>;
    constexpr int S = int(lanes<T>);
    constexpr bool copy = std::is_same_v<Act, Identity>;
    static_assert(copy || has_cotangent_packet<Act, T>, "fill_columns: Act needs a cotangent_packet");
    const Index rows = channels * height * width, px = stride(run);
    Index c = 0, h = 0, w = 0;  // the map pixel of row i
    auto place = [&] {          // its place in the frame, then the next pixel's
      const Index d = ((h + top) * fw + left + w) * px + c * run;
      if (++w == width) {
        w = 0;
        if (++h == height) {
          h = 0;
          ++c;
        }
      }
      return d;
    };
    Index i = 0;
    for (const Index whole = whole_blocks(rows, Index(S)); i < whole; i += S) {
      Index dst[S];
      for (int r = 0; r < S; ++r) dst[r] = place();
      for (Index j0 = 0; j0 < run; j0 += S) {
        ei::PacketBlock<Pk, S> b;
        for (int j = 0; j < S; ++j) {
          const Pk v = ei::ploadu<Pk>(g + i + (j0 + j) * ldg);
          if constexpr (copy)
            b.packet[j] = v;
          else
            b.packet[j] = Act::template cotangent_packet<T>(v, ei::ploadu<Pk>(y + i + (j0 + j) * ldy));
        }
        if constexpr (S > 1) ei::ptranspose(b);
        for (int r = 0; r < S; ++r) ei::pstoreu(frame + dst[r] + j0, b.packet[r]);
      }
    }
    for (; i < rows; ++i) {
      const Index d = place();
      for (Index j = 0; j < run; ++j)
        frame[d + j] = copy ? g[i + j * ldg] : cotangent<Act>(g[i + j * ldg], y[i + j * ldy]);
    }
  }
  /// The frame's interior ← the interleaved block xt (m ≤ run samples a pixel); the lanes
  /// m … run − 1 ← 0.
  template <class T>
  void fill(const T* xt, Index m, Index run, T* frame) const {
    const Index px = stride(run);
    for (Index c = 0; c < channels; ++c)
      for (Index h = 0; h < height; ++h)
        for (Index w = 0; w < width; ++w) {
          const T* src = xt + ((c * height + h) * width + w) * m;
          T* dst = frame + ((h + top) * fw + left + w) * px + c * run;
          std::copy(src, src + m, dst);
          std::fill(dst + m, dst + run, T(0));
        }
  }
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The channels a sample tile covers: 16 with one packet of samples, 8 with two (16 and 32
/// accumulators: enough independent sums for two FMA units of latency 4 to 8, and no more
/// than the 32 vector registers of AVX-512 hold with the loads).
inline constexpr Index sample_tile_channels = 16;
inline Index sample_ldw(Index channels) {
  return (channels + sample_tile_channels - 1) / sample_tile_channels * sample_tile_channels;
}

/// Every output pixel of one block: out[(c·pixels + q)·run + j] for c < plan.channels, samples
/// j < run (run a multiple of the packet: the frame's and out's runs), from the pixel-major
/// frame (SampleFrame: its pixels frame_pixel_stride(plan.depth, run) apart), the groups'
/// weights w (plan.depth·plan.taps_max·ldw apart), bias (or null) and the activation where Act
/// has value_packet (the Identity else).
template <class Act, class T>
void sample_product(const SamplePlan& plan, const T* frame, Index run, const T* w, Index ldw, const T* bias, T* out) {
  constexpr Index S = lanes<T>;
  const Index P = plan.pixels(), ldx = run, px = frame_pixel_stride(plan.depth, run), ldo = P * run,
              wg = plan.depth * plan.taps_max * ldw;
  // the offsets in scalars: a few hundred values, against a block of millions of FMAs
  std::vector<Index> off(plan.off.size());
  for (std::size_t i = 0; i < off.size(); ++i) off[i] = plan.off[i] * px;
  for (Index q = 0; q < P; ++q) {
    const Index g = plan.group[std::size_t(q)], taps = plan.taps[std::size_t(g)];
    const T* xq = frame + plan.base[std::size_t(q)] * px;
    const Index* oq = off.data() + g * plan.taps_max;
    const T* wq = w + g * wg;
    Index j = 0;
    for (const Index pairs = whole_blocks(run, 2 * S); j < pairs; j += 2 * S)
      for (Index c = 0; c < plan.channels; c += 8)
        sample_tile<Act, T, 2, 8>(xq + j, ldx, plan.depth, oq, taps, wq + c, ldw, bias ? bias + c : nullptr,
                                  out + (c * P + q) * run + j, ldo, plan.channels - c);
    if (j < run)
      for (Index c = 0; c < plan.channels; c += 16)
        sample_tile<Act, T, 1, 16>(xq + j, ldx, plan.depth, oq, taps, wq + c, ldw, bias ? bias + c : nullptr,
                                   out + (c * P + q) * run + j, ldo, plan.channels - c);
  }
}

}  // namespace prilo::nn::conv_detail::direct

// Small 2-D DFTs computed across SIMD lanes: one image per lane, every lane the same
// butterflies, so no shuffles and no strided codelets. For the fused DFT loss of many small
// images (28×28 MNIST), where FFTW's codelets for non-powers of two run mostly scalar.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

// The vector width of the build: 512 bits with AVX-512, 256 with AVX, 128 otherwise (SSE2 and
// NEON; GCC and Clang lower the generic vectors to what the target has). Matching the target
// keeps the vectors in registers and their passing by value off the psABI's warnings. Each
// width has its own inline namespace, so that translation units built for different targets
// do not share (and the linker does not merge) definitions of different widths.
#if defined(__AVX512F__)
#define PRILO_LANE_BYTES 64
#define PRILO_LANE_NAMESPACE w512
#elif defined(__AVX__)
#define PRILO_LANE_BYTES 32
#define PRILO_LANE_NAMESPACE w256
#else
#define PRILO_LANE_BYTES 16
#define PRILO_LANE_NAMESPACE w128
#endif

namespace prilo::lanes {
inline namespace PRILO_LANE_NAMESPACE {

template <class T>
struct vector_of;
template <>
struct vector_of<float> {
  typedef float type __attribute__((vector_size(PRILO_LANE_BYTES)));
  typedef float unaligned __attribute__((vector_size(PRILO_LANE_BYTES), aligned(alignof(float)), may_alias));
};
template <>
struct vector_of<double> {
  typedef double type __attribute__((vector_size(PRILO_LANE_BYTES)));
  typedef double unaligned __attribute__((vector_size(PRILO_LANE_BYTES), aligned(alignof(double)), may_alias));
};
namespace detail {
// The permutes' index vectors: integers of the lanes' width.
template <class V>
struct mask_of;
template <>
struct mask_of<vector_of<float>::type> {
  using element = std::int32_t;
  typedef element type __attribute__((vector_size(PRILO_LANE_BYTES)));
};
template <>
struct mask_of<vector_of<double>::type> {
  using element = std::int64_t;
  typedef element type __attribute__((vector_size(PRILO_LANE_BYTES)));
};
}  // namespace detail

/// A vector of lanes<T> values of T, one per image.
template <class T>
using vec = typename vector_of<T>::type;
/// Images per vector.
template <class T>
inline constexpr int lanes = PRILO_LANE_BYTES / int(sizeof(T));

/// A vector with x in every lane: x − (+0), exact for every x in the default floating-point
/// environment (−0 included, which x + 0 would turn into +0). The zero is named: nvcc 13's front
/// end crashed on a V{} operand.
template <class V, class T>
[[gnu::always_inline]] inline V broadcast(T x) {
  const V zero = {};
  return x - zero;
}

/// The vector at p (any alignment of T), and the store: the one form of the lanes' unaligned
/// accesses (may_alias, so any T* can be read or written through it).
template <class T>
[[gnu::always_inline]] inline vec<T> load(const T* p) {
  return *reinterpret_cast<const typename vector_of<T>::unaligned*>(p);
}
template <class T>
[[gnu::always_inline]] inline void store(T* p, vec<T> v) {
  *reinterpret_cast<typename vector_of<T>::unaligned*>(p) = v;
}

/// The square root of every lane (the target's instruction where there is one).
template <class V>
[[gnu::always_inline]] inline V sqrt(V v) {
#if PRILO_LANE_BYTES == 64
  if constexpr (std::is_same_v<V, vec<float>>) return V(_mm512_sqrt_ps(__m512(v)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(_mm512_sqrt_pd(__m512d(v)));
#elif PRILO_LANE_BYTES == 32
  if constexpr (std::is_same_v<V, vec<float>>) return V(_mm256_sqrt_ps(__m256(v)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(_mm256_sqrt_pd(__m256d(v)));
#elif defined(__SSE2__)
  if constexpr (std::is_same_v<V, vec<float>>) return V(_mm_sqrt_ps(__m128(v)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(_mm_sqrt_pd(__m128d(v)));
#elif defined(__aarch64__) && defined(__ARM_NEON)
  if constexpr (std::is_same_v<V, vec<float>>) return V(vsqrtq_f32(float32x4_t(v)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(vsqrtq_f64(float64x2_t(v)));
#endif
  V r = v;
  for (int l = 0; l < int(sizeof(V) / sizeof(v[0])); ++l) r[l] = std::sqrt(v[l]);
  return r;
}

namespace detail {
/// r[c] = (a, b)[from(c)] for every lane c: a constant two-source permute (indices into a's lanes
/// followed by b's; from a captureless lambda). Clang's __builtin_shufflevector, GCC's
/// __builtin_shuffle (whose index vector folds to a constant at -O1 and above; nvcc's front end
/// passes it through, where it does not pass a pack expanded in the other).
template <class V, class F>
[[gnu::always_inline]] inline V shuffle2(V a, V b, [[maybe_unused]] F from) {  // Clang: F{} instead
  constexpr int L = int(sizeof(V) / sizeof(a[0]));
#if defined(__clang__)
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return V(__builtin_shufflevector(a, b, F{}(int(I))...));
  }
  (std::make_index_sequence<L>{});
#else
  typename mask_of<V>::type m;
  for (int c = 0; c < L; ++c) m[c] = from(c);
  return __builtin_shuffle(a, b, m);
#endif
}
}  // namespace detail

/// Interleaved complex values (re, im pairs) in two vectors a, b → their real parts and their
/// imaginary parts, each a vector (lanes in order: a's pairs, then b's).
template <class V>
[[gnu::always_inline]] inline void deinterleave(V a, V b, V& re, V& im) {
  re = detail::shuffle2(a, b, [](int c) { return 2 * c; });
  im = detail::shuffle2(a, b, [](int c) { return 2 * c + 1; });
}
/// deinterleave's inverse: real and imaginary parts → interleaved pairs in a, then b.
template <class V>
[[gnu::always_inline]] inline void interleave(V re, V im, V& a, V& b) {
  constexpr int L = int(sizeof(V) / sizeof(re[0]));
  a = detail::shuffle2(re, im, [](int c) { return (c & 1) ? L + c / 2 : c / 2; });
  b = detail::shuffle2(re, im, [](int c) { return (c & 1) ? L + L / 2 + c / 2 : L / 2 + c / 2; });
}

/// The lanes' bits as integers of their width (and back): a reinterpretation, not a conversion.
template <class V>
using bits_of = typename detail::mask_of<V>::type;
namespace detail {
/// Every bit but the sign bit set, in every lane.
template <class V>
[[gnu::always_inline]] inline bits_of<V> magnitude_bits() {
  return broadcast<bits_of<V>>(std::numeric_limits<typename mask_of<V>::element>::max());
}
}  // namespace detail
/// |v| in every lane: the sign bit cleared, as std::abs does (NaN payloads kept).
template <class V>
[[gnu::always_inline]] inline V abs(V v) {
  return V(bits_of<V>(v) & detail::magnitude_bits<V>());
}
/// std::copysign in every lane: m's magnitude with v's sign bit.
template <class V>
[[gnu::always_inline]] inline V copysign(V m, V v) {
  using M = bits_of<V>;
  const M magnitude = detail::magnitude_bits<V>();
  return V((M(m) & magnitude) | (M(v) & ~magnitude));
}

/// a·b + c in every lane: rounded once where the target has FMA instructions (what GCC's
/// default contraction makes of a·b + c there), twice where it has none; the same whatever the
/// optimisation level, -ffp-contract setting or compiler.
template <class V>
[[gnu::always_inline]] inline V fmadd(V a, V b, V c) {
#if defined(__FMA__) && PRILO_LANE_BYTES == 64
  if constexpr (std::is_same_v<V, vec<float>>) return V(_mm512_fmadd_ps(__m512(a), __m512(b), __m512(c)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(_mm512_fmadd_pd(__m512d(a), __m512d(b), __m512d(c)));
#elif defined(__FMA__) && PRILO_LANE_BYTES == 32
  if constexpr (std::is_same_v<V, vec<float>>) return V(_mm256_fmadd_ps(__m256(a), __m256(b), __m256(c)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(_mm256_fmadd_pd(__m256d(a), __m256d(b), __m256d(c)));
#elif defined(__FMA__)
  if constexpr (std::is_same_v<V, vec<float>>) return V(_mm_fmadd_ps(__m128(a), __m128(b), __m128(c)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(_mm_fmadd_pd(__m128d(a), __m128d(b), __m128d(c)));
#elif defined(__aarch64__) && defined(__ARM_NEON)  // vfmaq(c, a, b) = c + a·b, rounded once
  if constexpr (std::is_same_v<V, vec<float>>) return V(vfmaq_f32(float32x4_t(c), float32x4_t(a), float32x4_t(b)));
  if constexpr (std::is_same_v<V, vec<double>>) return V(vfmaq_f64(float64x2_t(c), float64x2_t(a), float64x2_t(b)));
#endif
  V r = c;
  for (int l = 0; l < int(sizeof(V) / sizeof(a[0])); ++l) r[l] = prilo::detail::fmadd(a[l], b[l], c[l]);
  return r;
}

namespace detail {
// One step of Eklundh's transpose: rows a = r[i] and b = r[i + B] (bit B of i clear) swap
// their B×B off-diagonal blocks: a[c] ← b[c − B] and b[c − B] ← a[c] for c with bit B set.
// Two constant two-source permutes (shuffle2: vpermt2ps with AVX-512).
template <int B, class V>
[[gnu::always_inline]] inline void swap_blocks(V& a, V& b) {
  constexpr int L = int(sizeof(V) / sizeof(a[0]));
  const V lo = shuffle2(a, b, [](int c) { return (c & B) ? c - B + L : c; });
  b = shuffle2(a, b, [](int c) { return (c & B) ? c + L : c + B; });
  a = lo;
}
template <int B, class V, int L>
[[gnu::always_inline]] inline void transpose_steps(V (&r)[L]) {
  static_for<L>([&](auto i) PRILO_INLINE_LAMBDA {
    if constexpr (!(decltype(i)::value & B)) swap_blocks<B>(r[i], r[i + B]);
  });
  if constexpr (B > 1) transpose_steps<B / 2>(r);
}
}  // namespace detail

/// r[i][c] ↔ r[c][i]: the L×L transpose of L vectors of L lanes, in registers (L·log₂L
/// two-source permutes).
template <class T>
[[gnu::always_inline]] inline void transpose(vec<T> (&r)[lanes<T>]) {
  if constexpr (lanes < T >> 1) detail::transpose_steps<lanes<T> / 2>(r);
}

/// out[p][l] = cols[l][p] for p < n, l < lanes<T>: L columns into lane-major vectors.
template <class T>
void gather_columns(const T* const* cols, std::ptrdiff_t n, vec<T>* out) {
  constexpr int L = lanes<T>;
  std::ptrdiff_t p = 0;
  for (const std::ptrdiff_t whole = whole_blocks(n, std::ptrdiff_t(L)); p < whole; p += L) {
    vec<T> r[L];
    static_for<L>([&](auto l) PRILO_INLINE_LAMBDA { r[l] = load(cols[l] + p); });
    transpose<T>(r);
    static_for<L>([&](auto c) PRILO_INLINE_LAMBDA { out[p + c] = r[c]; });
  }
  for (; p < n; ++p)
    for (int l = 0; l < L; ++l) out[p][l] = cols[l][p];
}

/// cols[l][p] = in[p][l] for p < n, l < lanes<T>: gather_columns' inverse.
template <class T>
void scatter_columns(const vec<T>* in, std::ptrdiff_t n, T* const* cols) {
  constexpr int L = lanes<T>;
  std::ptrdiff_t p = 0;
  for (const std::ptrdiff_t whole = whole_blocks(n, std::ptrdiff_t(L)); p < whole; p += L) {
    vec<T> r[L];
    static_for<L>([&](auto c) PRILO_INLINE_LAMBDA { r[c] = in[p + c]; });
    transpose<T>(r);
    static_for<L>([&](auto l) PRILO_INLINE_LAMBDA { store(cols[l] + p, r[l]); });
  }
  for (; p < n; ++p)
    for (int l = 0; l < L; ++l) cols[l][p] = in[p][l];
}

/// Whether n factors into 2, 3, 5 and 7 (the radices with butterflies here).
inline bool supported_length(int n) {
  if (n < 1) return false;
  for (int r : {2, 3, 5, 7})
    while (n % r == 0) n /= r;
  return n == 1;
}

/// One length-n DFT of complex vectors (real and imaginary parts in separate arrays), as a
/// self-sorting (Stockham) decimation in frequency: each stage of radix r splits a length-l
/// transform into r of length l/r, with twiddles e^{∓2πi·p·u/l}, and writes its outputs
/// where the next stage reads them in natural order; no bit reversal. Radices 4 first, then
/// 2, 3, 5, 7. Forward: e^{−2πi jk/n}, unscaled; inverse: e^{+2πi jk/n}, unscaled.
template <class T>
class Dft1d {
 public:
  using V = vec<T>;

  explicit Dft1d(int n) : n_(n) {
    if (!supported_length(n)) prilo::detail::fail("lanes::Dft1d: length ", n, " does not factor into 2, 3, 5 and 7");
    int l = n, s = 1;
    auto add = [&](int r) {
      const int m = l / r;
      stages_.push_back({r, m, s, tw_re_.size()});
      for (int p = 0; p < m; ++p)
        for (int u = 1; u < r; ++u) {
          const double a = 2.0 * std::numbers::pi * double(p) * double(u) / double(l);
          tw_re_.push_back(T(std::cos(a)));
          tw_im_.push_back(T(std::sin(a)));  // e^{−ia} = cos a − i·sin a: the sign is applied per direction
        }
      l = m;
      s *= r;
    };
    while (l % 4 == 0) add(4);
    for (int r : {2, 3, 5, 7})
      while (l % r == 0) add(r);
  }

  int size() const { return n_; }
  /// Vectors of workspace run() needs (two buffers of n complex values).
  std::size_t work_size() const { return 4 * std::size_t(n_); }

  /// out = DFT(in), in at (ir, ii)[k·is], out at (or_, oi)[k·os], k = 0…n−1; in may be out
  /// (every stage reads all its inputs before the last stage writes). work: work_size() vectors.
  template <bool Inverse>
  void run(const V* ir, const V* ii, std::ptrdiff_t is, V* or_, V* oi, std::ptrdiff_t os, V* work) const {
    if (stages_.empty()) {  // n = 1
      or_[0] = ir[0];
      oi[0] = ii[0];
      return;
    }
    V* bufs[2][2] = {{work, work + n_}, {work + 2 * n_, work + 3 * n_}};
    const V *xr = ir, *xi = ii;
    std::ptrdiff_t xs = is;
    for (std::size_t k = 0; k < stages_.size(); ++k) {
      const bool last = k + 1 == stages_.size();
      V* yr = last ? or_ : bufs[k % 2][0];
      V* yi = last ? oi : bufs[k % 2][1];
      const std::ptrdiff_t ys = last ? os : 1;
      const Stage& st = stages_[k];
      switch (st.r) {
        case 4: stage<4, Inverse>(st, xr, xi, xs, yr, yi, ys); break;
        case 2: stage<2, Inverse>(st, xr, xi, xs, yr, yi, ys); break;
        case 3: stage<3, Inverse>(st, xr, xi, xs, yr, yi, ys); break;
        case 5: stage<5, Inverse>(st, xr, xi, xs, yr, yi, ys); break;
        default: stage<7, Inverse>(st, xr, xi, xs, yr, yi, ys); break;
      }
      xr = yr;
      xi = yi;
      xs = ys;
    }
  }

 private:
  struct Stage {
    int r, m, s;
    std::size_t tw;  // the stage's first twiddle: m·(r−1) of them, p-major
  };

  // cos and sin of 2π·k/R, k = 0…R−1, for the odd radices' butterflies
  template <int R>
  struct Roots {
    T c[R], s[R];
    Roots() {
      for (int k = 0; k < R; ++k) {
        c[k] = T(std::cos(2.0 * std::numbers::pi * k / R));
        s[k] = T(std::sin(2.0 * std::numbers::pi * k / R));
      }
    }
  };

  // The DFT of R complex vectors in place (forward: e^{−2πi tu/R}).
  template <int R, bool Inverse>
  [[gnu::always_inline]] static inline void butterfly(V (&ar)[R], V (&ai)[R]) {
    if constexpr (R == 2) {
      const V r0 = ar[0] + ar[1], i0 = ai[0] + ai[1];
      ar[1] = ar[0] - ar[1];
      ai[1] = ai[0] - ai[1];
      ar[0] = r0;
      ai[0] = i0;
    } else if constexpr (R == 4) {
      const V sr = ar[0] + ar[2], si = ai[0] + ai[2], dr = ar[0] - ar[2], di = ai[0] - ai[2];
      const V tr = ar[1] + ar[3], ti = ai[1] + ai[3], er = ar[1] - ar[3], ei = ai[1] - ai[3];
      ar[0] = sr + tr;
      ai[0] = si + ti;
      ar[2] = sr - tr;
      ai[2] = si - ti;
      // forward: b1 = d − i·e, b3 = d + i·e; inverse the other way round
      if constexpr (!Inverse) {
        ar[1] = dr + ei;
        ai[1] = di - er;
        ar[3] = dr - ei;
        ai[3] = di + er;
      } else {
        ar[1] = dr - ei;
        ai[1] = di + er;
        ar[3] = dr + ei;
        ai[3] = di - er;
      }
    } else {
      // odd R: b_u = a0 + Σ_t cos(2πtu/R)(a_t + a_{R−t}) ∓ i·Σ_t sin(2πtu/R)(a_t − a_{R−t})
      static const Roots<R> roots;
      constexpr int H = (R - 1) / 2;
      V sr[H], si[H], dr[H], di[H];
      V b0r = ar[0], b0i = ai[0];
      static_for<H>([&](auto t1) PRILO_INLINE_LAMBDA {
        constexpr int t = decltype(t1)::value + 1;
        sr[t - 1] = ar[t] + ar[R - t];
        si[t - 1] = ai[t] + ai[R - t];
        dr[t - 1] = ar[t] - ar[R - t];
        di[t - 1] = ai[t] - ai[R - t];
        b0r += sr[t - 1];
        b0i += si[t - 1];
      });
      V outr[R], outi[R];
      const V zero = {};
      static_for<H>([&](auto u1) PRILO_INLINE_LAMBDA {
        constexpr int u = decltype(u1)::value + 1;
        V er = ar[0], ei = ai[0], fr = zero, fi = zero;
        static_for<H>([&](auto t1) PRILO_INLINE_LAMBDA {
          constexpr int t = decltype(t1)::value + 1, k = (t * u) % R;
          er += roots.c[k] * sr[t - 1];
          ei += roots.c[k] * si[t - 1];
          fr += roots.s[k] * dr[t - 1];
          fi += roots.s[k] * di[t - 1];
        });
        // forward: b_u = e − i·f, b_{R−u} = e + i·f
        if constexpr (!Inverse) {
          outr[u] = er + fi;
          outi[u] = ei - fr;
          outr[R - u] = er - fi;
          outi[R - u] = ei + fr;
        } else {
          outr[u] = er - fi;
          outi[u] = ei + fr;
          outr[R - u] = er + fi;
          outi[R - u] = ei - fr;
        }
      });
      ar[0] = b0r;
      ai[0] = b0i;
      static_for<R - 1>([&](auto u1) PRILO_INLINE_LAMBDA {
        ar[u1 + 1] = outr[u1 + 1];
        ai[u1 + 1] = outi[u1 + 1];
      });
    }
  }

  // One stage: for p < m, q < s: a_t = x[q + s(p + t·m)], b = DFT_R(a), y[q + s(R·p + u)] = b_u·w^{p·u}.
  template <int R, bool Inverse>
  void stage(const Stage& st, const V* xr, const V* xi, std::ptrdiff_t xs, V* yr, V* yi, std::ptrdiff_t ys) const {
    const int m = st.m, s = st.s;
    const T* twr = tw_re_.data() + st.tw;
    const T* twi = tw_im_.data() + st.tw;
    for (int p = 0; p < m; ++p) {
      for (int q = 0; q < s; ++q) {
        V ar[R], ai[R];
        static_for<R>([&](auto t) PRILO_INLINE_LAMBDA {
          const std::ptrdiff_t e = (q + std::ptrdiff_t(s) * (p + std::ptrdiff_t(t) * m)) * xs;
          ar[t] = xr[e];
          ai[t] = xi[e];
        });
        butterfly<R, Inverse>(ar, ai);
        const std::ptrdiff_t o = (q + std::ptrdiff_t(s) * R * p) * ys, os = std::ptrdiff_t(s) * ys;
        yr[o] = ar[0];
        yi[o] = ai[0];
        if (p == 0) {
          static_for<R - 1>([&](auto u1) PRILO_INLINE_LAMBDA {
            constexpr int u = decltype(u1)::value + 1;
            yr[o + u * os] = ar[u];
            yi[o + u * os] = ai[u];
          });
        } else {
          static_for<R - 1>([&](auto u1) PRILO_INLINE_LAMBDA {
            constexpr int u = decltype(u1)::value + 1;
            const T c = twr[p * (R - 1) + u - 1];
            const T sn = Inverse ? twi[p * (R - 1) + u - 1] : -twi[p * (R - 1) + u - 1];
            yr[o + u * os] = ar[u] * c - ai[u] * sn;
            yi[o + u * os] = ar[u] * sn + ai[u] * c;
          });
        }
      }
    }
  }

  int n_;
  std::vector<Stage> stages_;
  std::vector<T> tw_re_, tw_im_;
};

/// The 2-D DFT of h×w complex images, one per lane, stored as planes: element (k1, k2) of
/// every image at index k1·w + k2 of the real and the imaginary plane. In place, rows then
/// columns; unscaled in both directions.
template <class T>
class Dft2d {
 public:
  using V = vec<T>;

  Dft2d(int h, int w) : h_(h), w_(w), rows_(w), cols_(h) {}
  static bool supported(int h, int w) { return supported_length(h) && supported_length(w); }
  int height() const { return h_; }
  int width() const { return w_; }
  std::size_t work_size() const { return std::max(rows_.work_size(), cols_.work_size()); }

  template <bool Inverse>
  void run(V* re, V* im, V* work) const {
    for (int k1 = 0; k1 < h_; ++k1) {
      V* r = re + std::ptrdiff_t(k1) * w_;
      V* i = im + std::ptrdiff_t(k1) * w_;
      rows_.template run<Inverse>(r, i, 1, r, i, 1, work);
    }
    for (int k2 = 0; k2 < w_; ++k2) cols_.template run<Inverse>(re + k2, im + k2, w_, re + k2, im + k2, w_, work);
  }

 private:
  int h_, w_;
  Dft1d<T> rows_, cols_;
};

}  // namespace PRILO_LANE_NAMESPACE
}  // namespace prilo::lanes

// Exact Euclidean projection onto the l1 ball: Duchi (sort), Condat (2016) and the default Newton/Michelot kernel.
#pragma once

#include "../concepts/projection.hpp"
#include "../core.hpp"
#include "../fft/lanes.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

namespace prilo {

/// Algorithms projecting one contiguous column onto B_1(r) = { p : ||p||_1 <= r } (centred at 0).
///
/// For ||x||_1 > r > 0 the projection is the soft threshold
///
///     p_i = sign(x_i) * max(|x_i| - tau, 0),
///
/// where tau > 0 is the unique root of  f(tau) = sum_i max(|x_i| - tau, 0) = r.  All algorithms
/// below differ only in how they find tau; they share the same prologue and final write, so their
/// outputs agree to the rounding of tau.  Each comes in two forms:
///   * in place:      `l1::newton(x, n, r)`           (x overwritten with its projection);
///   * out of place:  `l1::newton(src, dst, n, r)`    (src untouched; dst may equal src).
/// T comes from the pointers: r may be any number that converts to it (`l1::newton(p, n, 1.0)` for float p).
/// Common behaviour: ||x||_1 <= r leaves the values bit-for-bit unchanged (copied when out of
/// place); r == 0 gives exactly 0; r < 0 or NaN, or a NaN/infinite input (or an l1 norm that
/// overflows) throws `invalid_input`.
namespace l1 {
namespace detail {

/// Independent accumulators per reduction: 128 bytes = 4 AVX2 (2 AVX-512) registers, enough to hide
/// the latency of the additions. Floating-point sums are not reassociated by the compiler without
/// -ffast-math, so the lanes are spelled out and the inner fixed-size loop is SLP-vectorised.
template <class T>
inline constexpr Eigen::Index kLanes = Eigen::Index(128 / sizeof(T));

/// Lanes of the masked pass. GCC 12 only turns the masked loop into clean vector code (compare,
/// and, add, subtract; no branches, no shuffles) for some lane counts; 32 was measured best for
/// both float and double at -O3 with AVX2 and AVX-512 (16 lanes of double fall back to branches).
inline constexpr Eigen::Index kMaskLanes = 32;

/// Integer of the same width as T, so that masks and counts share vector lanes.
template <class T>
using count_t = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;

/// Pairwise sum of a lane array (fixed size, so it is fully unrolled).
template <class T, Eigen::Index L>
inline T reduce_lanes(T (&a)[L]) {
  for (Eigen::Index w = L / 2; w > 0; w /= 2)
    for (Eigen::Index j = 0; j < w; ++j) a[j] += a[j + w];
  return a[0];
}

/// The passes below run on the build's SIMD vectors (prilo/fft/lanes.hpp) for float and double:
/// GCC vectorised their plain loops at -O3 but left them scalar at -O2, where a loop that needs
/// a run-time aliasing check or a scalar epilogue is not vectorised (a project compiling the
/// headers at -O2 ran the centred projection of 128 columns of 6272 7x slower). The reductions keep the
/// plain form's lanes: accumulator j is lane j mod V of vector j / V (V values a vector), each
/// added to in the same order, so the sums are the same bits; the element-wise passes are exact
/// either way. Other types take the plain loops.
template <class T>
inline constexpr bool on_vectors = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// Runs body(i0, k) for k < K over the whole blocks of K vectors (L = K·V values) of [0, n),
/// and returns where the tail begins.
template <class T, int K, class F>
[[gnu::always_inline]] inline Eigen::Index vector_blocks(Eigen::Index n, F&& body) {
  constexpr Eigen::Index L = Eigen::Index(K) * lanes::lanes<T>;
  const Eigen::Index whole = whole_blocks(n, L);
  for (Eigen::Index i = 0; i < whole; i += L)
    static_for<K>([&](auto k) PRILO_INLINE_LAMBDA { body(i + k * lanes::lanes<T>, k); });
  return whole;
}
/// The accumulators a[0..K) spilled into the plain form's lane array acc[0..K·V).
template <class T, int K, class V>
[[gnu::always_inline]] inline void spill(const V (&a)[K], T* acc) {
  for (int k = 0; k < K; ++k)
    for (int l = 0; l < lanes::lanes<T>; ++l) acc[k * lanes::lanes<T> + l] = a[k][l];
}

/// sum_i term(i) in the plain form's kLanes accumulators (value i into accumulator i mod kLanes,
/// then their pairwise sum), the whole blocks on vectors: fv(at) is the terms at at … at + V − 1
/// as a vector (a generic lambda, instantiated only for float and double), fs(i) the term at i.
template <class T, class FV, class FS>
[[gnu::always_inline]] inline T lane_sum(Eigen::Index n, FV&& fv, FS&& fs) {
  constexpr Eigen::Index L = kLanes<T>;
  T acc[L] = {};
  Eigen::Index i = 0;
  if constexpr (on_vectors<T>) {
    using V = lanes::vec<T>;
    constexpr int K = int(L / lanes::lanes<T>);
    const V zero = {};
    V a[K];
    for (V& v : a) v = zero;
    i = vector_blocks<T, K>(n, [&](Eigen::Index at, int k) PRILO_INLINE_LAMBDA { a[k] += fv(at); });
    spill<T>(a, acc);
  }
  for (; i < n; ++i) acc[i % L] += fs(i);  // the tail (i starts at a multiple of L), or every term
  return reduce_lanes(acc);
}

/// ||x||_1 = sum_i |x_i| in one vectorised read pass.
template <std::floating_point T>
PRILO_WIDE_VECTORS T abs_sum(const T* x, Eigen::Index n) {
  return lane_sum<T>(
      n, [&](auto at) PRILO_INLINE_LAMBDA { return lanes::abs(lanes::load(x + at)); },
      [&](Eigen::Index i) PRILO_INLINE_LAMBDA { return std::abs(x[i]); });
}

/// ||x - c||_1 in one read pass over both.
template <std::floating_point T>
PRILO_WIDE_VECTORS T abs_diff_sum(const T* x, const T* c, Eigen::Index n) {
  return lane_sum<T>(
      n, [&](auto at) PRILO_INLINE_LAMBDA { return lanes::abs(lanes::load(x + at) - lanes::load(c + at)); },
      [&](Eigen::Index i) PRILO_INLINE_LAMBDA { return std::abs(x[i] - c[i]); });
}

template <class T>
struct masked_sum {
  T sum;               ///< sum_{|x_i| > tau} |x_i|
  Eigen::Index count;  ///< #{ i : |x_i| > tau }
};

/// One branch-free pass: the sum and the number of the magnitudes strictly above tau (x finite).
/// Works on the IEEE bit patterns: for non-negative finite values and tau >= 0, |x_i| > tau iff
/// bits(|x_i|) > bits(tau) as integers, so the mask m = -(bits > tau_bits) is an all-ones/zero
/// integer that selects |x_i| with a bitwise and and counts with a subtraction (on vectors, the
/// comparison gives that mask directly).
template <std::floating_point T>
PRILO_WIDE_VECTORS masked_sum<T> sum_above(const T* x, Eigen::Index n, T tau) {
  using C = count_t<T>;
  constexpr Eigen::Index L = kMaskLanes;
  constexpr C abs_mask = std::numeric_limits<C>::max();          // clears the sign bit
  const C tau_bits = std::bit_cast<C>(tau > T(0) ? tau : T(0));  // -0.0 or tau < 0: compare with +0
  T acc[L] = {};
  C cnt[L] = {};
  const auto add = [&](Eigen::Index i, Eigen::Index j) PRILO_INLINE_LAMBDA {  // value i into lane j
    const C a = std::bit_cast<C>(x[i]) & abs_mask;
    const C m = -C(a > tau_bits);
    acc[j] += std::bit_cast<T>(C(a & m));
    cnt[j] -= m;
  };
  Eigen::Index i = 0;
  if constexpr (on_vectors<T>) {
    using V = lanes::vec<T>;
    using M = lanes::bits_of<V>;
    constexpr int K = int(L / lanes::lanes<T>);
    const V zero = {};
    const M none = {}, above = lanes::broadcast<M>(tau_bits), magnitude = lanes::broadcast<M>(abs_mask);
    V a[K];
    M c[K];
    for (int k = 0; k < K; ++k) {
      a[k] = zero;
      c[k] = none;
    }
    i = vector_blocks<T, K>(n, [&](Eigen::Index at, int k) PRILO_INLINE_LAMBDA {
      const M b = M(lanes::load(x + at)) & magnitude;
      const M m = b > above;  // -1 where |x| > tau, else 0
      a[k] += V(b & m);
      c[k] -= m;
    });
    spill<T>(a, acc);
    spill<C>(c, cnt);
  }
  for (; i < n; ++i) add(i, i % L);  // the tail (i starts at a multiple of L), or every value
  Eigen::Index k = 0;
  for (Eigen::Index j = 0; j < L; ++j) k += Eigen::Index(cnt[j]);
  return {reduce_lanes(acc), k};
}

/// sign(v) * max(|v| - tau, 0): the soft threshold of one value.
template <std::floating_point T>
inline T soft(T v, T tau) {
  return std::copysign(std::max(std::abs(v) - tau, T(0)), v);
}
/// dst_i = f(src_i, i) for i < n (dst may alias src): the element-wise passes, f a generic
/// lambda called on the build's vectors (lanes::vec<T>: the values at i … i + V − 1) where T
/// has them, and on single values of T for the rest (every value, for other types, where the
/// vector call is not instantiated).
template <class T, class F>
[[gnu::always_inline]] inline void map_values(const T* src, T* dst, Eigen::Index n, F&& f) {
  Eigen::Index i = 0;
  if constexpr (on_vectors<T>)
    for (const Eigen::Index whole = whole_blocks(n, Eigen::Index(lanes::lanes<T>)); i < whole; i += lanes::lanes<T>)
      lanes::store(dst + i, f(lanes::load(src + i), i));
  for (; i < n; ++i) dst[i] = f(src[i], i);
}
/// The values of the same type as v at c + i: a vector's worth, or one value.
template <class X, class T>
[[gnu::always_inline]] inline X values_at(const T* c, Eigen::Index i) {
  if constexpr (std::is_same_v<X, T>)
    return c[i];
  else
    return lanes::load(c + i);
}
/// soft(v, tau) for a value or in every lane of a vector (std::max(d, 0) as d < 0 ? 0 : d).
template <class X, class T>
[[gnu::always_inline]] inline X soft_of(X v, T tau) {
  if constexpr (std::is_same_v<X, T>) {
    return soft(v, tau);
  } else {
    const X zero = {};
    const X d = lanes::abs(v) - lanes::broadcast<X>(tau);
    return lanes::copysign(d < zero ? zero : d, v);
  }
}

/// dst_i = soft(src_i, tau)  (dst may alias src).
template <std::floating_point T>
PRILO_WIDE_VECTORS void soft_threshold(const T* src, T* dst, Eigen::Index n, T tau) {
  map_values(src, dst, n, [&](auto v, Eigen::Index) PRILO_INLINE_LAMBDA { return soft_of(v, tau); });
}

/// Per-thread scratch reused across calls (Duchi and Condat need O(n) work space).
template <class T>
inline std::vector<T>& scratch(Eigen::Index n) {
  thread_local std::vector<T> buf;
  if (buf.size() < std::size_t(n)) buf.resize(std::size_t(n));
  return buf;
}

/// Shared prologue. Returns ||src||_1 when a threshold must be found, or nothing when dst has
/// already been written (inside the ball, r == 0, or n == 0).
template <std::floating_point T>
inline std::optional<T> prologue(const T* src, T* dst, Eigen::Index n, T r, const char* who) {
  prilo::detail::require_radius(r, who);
  if (n < 0) prilo::detail::fail(who, ": length must be >= 0, got ", n);
  if (n == 0) return std::nullopt;
  const T norm = abs_sum(src, n);
  if (!std::isfinite(norm))
    prilo::detail::fail(who, ": input contains NaN or infinite values (or its l1 norm overflows)");
  if (norm <= r) {
    if (dst != src) std::copy(src, src + n, dst);
    return std::nullopt;
  }
  if (r == T(0)) {
    std::fill(dst, dst + n, T(0));
    return std::nullopt;
  }
  return norm;
}

/// Condat's threshold search on the magnitudes strictly above `lower`, which must satisfy
/// lower <= tau* (then every active magnitude takes part and the root is unchanged).
/// Condat, "Fast projection onto the simplex and the l1 ball", Math. Program. 158 (2016), Alg. 2:
///  1-2. one streaming pass keeps a candidate set v whose threshold rho = (sum(v) - r)/|v| is
///       updated online; an element y with y - r >= rho (alone it would need a larger threshold)
///       starts a fresh v and the old v is parked in a waiting list w;
///  3.   parked elements above rho rejoin v;
///  4.   Michelot passes over v drop elements <= rho (rho increases) until none is dropped.
/// v and w share one buffer: w = buf[0, t), v = buf[t, t + m).
template <std::floating_point T>
inline T condat_tau(const T* x, Eigen::Index n, T r, T lower) {
  std::vector<T>& buf = scratch<T>(n);
  Eigen::Index t = 0, m = 0;
  T rho = T(0);
  Eigen::Index i = 0;
  for (; i < n; ++i) {  // first element above `lower` seeds v
    const T y = std::abs(x[i]);
    if (y > lower) {
      buf[0] = y;
      m = 1;
      rho = y - r;
      ++i;
      break;
    }
  }
  for (; i < n; ++i) {  // step 2
    const T y = std::abs(x[i]);
    if (!(y > lower) || !(y > rho)) continue;
    rho += (y - rho) / T(m + 1);
    if (rho > y - r) {
      buf[std::size_t(t + m)] = y;
      ++m;
    } else {
      t += m;
      buf[std::size_t(t)] = y;
      m = 1;
      rho = y - r;
    }
  }
  if (m == 0) return lower;  // only when r is below the rounding of the magnitudes: all shrink to 0
  // Step 3: rejoin parked elements; the kept ones are compacted to the front, then v follows.
  Eigen::Index out = 0;
  for (Eigen::Index k = 0; k < t; ++k) {
    const T y = buf[std::size_t(k)];
    if (y > rho) {
      buf[std::size_t(out++)] = y;
      ++m;
      rho += (y - rho) / T(m);
    }
  }
  const Eigen::Index vlen = m - out;  // elements of the last v, stored at [t, t + vlen)
  std::copy(buf.begin() + t, buf.begin() + t + vlen, buf.begin() + out);
  // Step 4: Michelot clean-up with on-the-fly threshold updates.
  for (;;) {
    const Eigen::Index before = m;
    Eigen::Index keep = 0;
    for (Eigen::Index k = 0; k < before; ++k) {
      const T y = buf[std::size_t(k)];
      if (y > rho || m == 1) {
        buf[std::size_t(keep++)] = y;
      } else {
        --m;
        rho += (rho - y) / T(m);
      }
    }
    m = keep;
    if (m == before) break;
  }
  return rho;
}

/// Duchi et al.'s threshold: sort magnitudes decreasingly (u_1 >= u_2 >= ...), take the largest
/// k with u_k > (sum_{j<=k} u_j - r)/k, and tau = (sum_{j<=k} u_j - r)/k.
template <std::floating_point T>
inline T duchi_tau(const T* x, Eigen::Index n, T r) {
  std::vector<T>& u = scratch<T>(n);
  for (Eigen::Index i = 0; i < n; ++i) u[std::size_t(i)] = std::abs(x[i]);
  std::sort(u.begin(), u.begin() + n, std::greater<T>());
  // k = 1 always qualifies (u_1 - (u_1 - r) = r > 0); taking it unconditionally keeps a radius
  // below the rounding of u_1 from leaving tau unset.
  T cum = u[0], tau = u[0] - r;
  for (Eigen::Index k = 1; k < n; ++k) {
    cum += u[std::size_t(k)];
    const T cand = (cum - r) / T(k + 1);
    if (u[std::size_t(k)] > cand) tau = cand;
  }
  return tau;
}

/// Newton passes before falling back to Condat on the surviving elements (see newton()).
inline constexpr int kNewtonMaxPasses = 40;

/// Newton's threshold for src, whose l1 norm is `norm` (> r > 0, finite: what prologue
/// returns), with an explicit pass budget (tests use a tiny budget to exercise the fallback).
template <std::floating_point T>
T newton_tau(const T* src, Eigen::Index n, T r, T norm, int max_passes) {
  T tau = (norm - r) / T(n);
  Eigen::Index count = n;
  for (int pass = 0; pass < max_passes; ++pass) {
    const auto [s, k] = sum_above(src, n, tau);
    if (k >= count || k == 0) return tau;  // the active set no longer shrinks: tau is the fixed point
    tau = (s - r) / T(k);
    count = k;
  }
  return condat_tau(src, n, r, tau);
}

/// l1::newton with an explicit pass budget.
template <std::floating_point T>
void newton_impl(const T* src, T* dst, Eigen::Index n, T r, int max_passes) {
  const auto norm = prologue(src, dst, n, r, "l1::newton");
  if (!norm) return;
  soft_threshold(src, dst, n, newton_tau(src, n, r, *norm, max_passes));
}

}  // namespace detail

/// Reference algorithm (Duchi, Shalev-Shwartz, Singer, Chandra, ICML 2008): O(n log n) sort.
template <std::floating_point T>
void duchi(const T* src, T* dst, Eigen::Index n, std::type_identity_t<T> r) {
  const auto norm = detail::prologue(src, dst, n, r, "l1::duchi");
  if (!norm) return;
  detail::soft_threshold(src, dst, n, detail::duchi_tau(src, n, r));
}
template <std::floating_point T>
void duchi(T* x, Eigen::Index n, std::type_identity_t<T> r) {
  duchi(static_cast<const T*>(x), x, n, r);
}

/// Condat (2016) fast exact algorithm: one streaming pass plus short clean-up passes, O(n) observed.
template <std::floating_point T>
void condat(const T* src, T* dst, Eigen::Index n, std::type_identity_t<T> r) {
  const auto norm = detail::prologue(src, dst, n, r, "l1::condat");
  if (!norm) return;
  detail::soft_threshold(src, dst, n, detail::condat_tau(src, n, r, T(0)));
}
template <std::floating_point T>
void condat(T* x, Eigen::Index n, std::type_identity_t<T> r) {
  condat(static_cast<const T*>(x), x, n, r);
}

/// Default: Newton's method on f(tau) = sum_i max(|x_i| - tau, 0) - r (equivalently Michelot's
/// algorithm without compaction), every pass a branch-free vectorised read of the column:
///
///     tau_0     = (||x||_1 - r) / n,
///     tau_{k+1} = (sum_{|x_i| > tau_k} |x_i| - r) / #{ i : |x_i| > tau_k }.
///
/// Exactness: f is convex, piecewise linear and decreasing, and f(tau_0) >= ||x||_1 - n tau_0 = 0,
/// so tau_0 <= tau*. A Newton step from the left of the root of a convex decreasing function
/// stays on the left, so tau_k increases monotonically to tau* and the active set
/// A_k = {|x_i| > tau_k} shrinks. If A_{k+1} = A_k the next iterate equals tau_{k+1}: a fixed
/// point, where f(tau) = r exactly, i.e. tau = tau*. The set can shrink at most n - 1 times, so
/// the iteration is exact after finitely many passes (typically 3-8). In floating point the loop
/// stops as soon as the active set stops shrinking, so it always terminates; the returned tau
/// differs from the exact root only by the rounding of one sum and one division.
/// Safeguard: adversarial inputs can force O(n) passes; after kNewtonMaxPasses passes the
/// remaining elements (|x_i| > tau_k, a superset of the final support) go to Condat's search.
template <std::floating_point T>
void newton(const T* src, T* dst, Eigen::Index n, std::type_identity_t<T> r) {
  detail::newton_impl(src, dst, n, r, detail::kNewtonMaxPasses);
}
template <std::floating_point T>
void newton(T* x, Eigen::Index n, std::type_identity_t<T> r) {
  newton(static_cast<const T*>(x), x, n, r);
}

}  // namespace l1

namespace detail {
/// Whether two l1 algorithms are the same function: template arguments match by identity, where
/// comparing the pointers (A == B) is not a constant expression under every flag (GCC's
/// -fsanitize=undefined rejects it).
template <class T, void (*A)(T*, Eigen::Index, T), void (*B)(T*, Eigen::Index, T)>
struct same_l1_algorithm : std::false_type {};
template <class T, void (*A)(T*, Eigen::Index, T)>
struct same_l1_algorithm<T, A, A> : std::true_type {};
/// Whether Algo is l1::newton<T>, without instantiating l1::newton for the types its masked
/// pass (sum_above: IEEE bits as a 32- or 64-bit integer) does not take, such as long double,
/// whose L1Ball with l1::duchi or l1::condat would otherwise not compile.
template <class T, void (*Algo)(T*, Eigen::Index, T)>
constexpr bool is_l1_newton() {
  if constexpr (sizeof(T) == 4 || sizeof(T) == 8)
    return same_l1_algorithm<T, Algo, &l1::newton<T>>::value;
  else
    return false;
}
}  // namespace detail

/// Projection onto the l1 ball around each centre column c_j:
///
///     x_j  <-  argmin_{||p - c_j||_1 <= radius} ||p - x_j||_2 = c_j + P_{B_1(radius)}(x_j - c_j).
///
/// `Algo` is one of l1::newton (default), l1::condat, l1::duchi, e.g.
/// `L1Ball<float>{.radius = 100}` or `L1Ball<double, l1::condat>{.radius = 3}`.
/// Columns with ||x_j - c_j||_1 <= radius are left bit-for-bit unchanged; radius 0 sets x_j = c_j.
/// The radius defaults to NaN so that a forgotten radius throws rather than silently projecting.
template <std::floating_point T, void (*Algo)(T*, Eigen::Index, T) = &l1::newton<T>>
struct L1Ball {
  T radius = std::numeric_limits<T>::quiet_NaN();

  /// x_i ← x_i + c_i (Add) or x_i − c_i, on vectors (l1::detail's passes).
  template <bool Add>
  static void shift(T* x, const T* c, Eigen::Index n) {
    namespace ld = l1::detail;
    ld::map_values(x, x, n, [&](auto v, Eigen::Index i) PRILO_INLINE_LAMBDA {
      const auto ci = ld::values_at<decltype(v)>(c, i);
      if constexpr (Add)
        return v + ci;
      else
        return v - ci;
    });
  }
  /// x_i ← soft(x_i, tau) + c_i, on vectors.
  static void soft_and_shift(T* x, const T* c, Eigen::Index n, T tau) {
    namespace ld = l1::detail;
    ld::map_values(x, x, n, [&](auto v, Eigen::Index i) PRILO_INLINE_LAMBDA {
      return ld::soft_of(v, tau) + ld::values_at<decltype(v)>(c, i);
    });
  }

  PRILO_WIDE_VECTORS void project(Eigen::Ref<Mat<T>> x, const Eigen::Ref<const Mat<T>>& centre) const {
    detail::require_radius(radius, "L1Ball");
    detail::require_centre_shape(x, centre, "L1Ball");
    const Eigen::Index n = x.rows();
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      T* xj = x.col(j).data();
      const T* cj = centre.col(detail::centre_column(centre, j)).data();
      const T dist = l1::detail::abs_diff_sum(xj, cj, n);
      if (!std::isfinite(dist)) detail::fail_nonfinite_column("L1Ball", j, xj, cj, n);
      if (dist <= radius) continue;  // inside: untouched
      if (radius == T(0)) {
        std::copy(cj, cj + n, xj);
        continue;
      }
      shift<false>(xj, cj, n);  // xj − cj
      if constexpr (detail::is_l1_newton<T, Algo>()) {
        // l1::newton inlined, two passes fewer with the same bits: the norm of xj − cj is `dist`
        // (abs_diff_sum adds |x_i − c_i| as abs_sum adds the stored differences, lane for lane),
        // so the prologue's read pass is skipped, and the soft threshold and the centre's add
        // are one pass (p_i + c_i, the same addition the separate pass made)
        const T tau = l1::detail::newton_tau(xj, n, radius, dist, l1::detail::kNewtonMaxPasses);
        soft_and_shift(xj, cj, n, tau);
      } else {
        Algo(xj, n, radius);
        shift<true>(xj, cj, n);  // + cj
      }
    }
  }
};

}  // namespace prilo

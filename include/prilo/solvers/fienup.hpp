// Fienup's error reduction (ER) and hybrid input-output (HIO) for the non-oversampled DFT.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

#include "../fft/lanes.hpp"
#include "../interrupt.hpp"
#include "../operators/fourier.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../parallel.hpp"
#include "../random.hpp"
#include "common.hpp"

namespace prilo {

/// Options of ER and HIO (Fienup 1982).
template <class T>
struct FienupOptions {
  int iterations = 1000;   ///< total iterations, the ER tail included
  T beta = T(0.9);         ///< HIO feedback parameter β
  int final_er = 50;       ///< HIO only: finish with this many ER iterations
  T lo = T(0), hi = T(1);  ///< object-domain constraint: real values in [lo, hi]
  Vec<T> support;          ///< optional 0/1 support mask (n); empty = whole image (no support)
  int history_stride = 10;
  ProgressFn progress = {};
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

namespace detail {
template <class T>
T project_object(T v, T lo, T hi, bool in_support) {
  return in_support ? std::clamp(v, lo, hi) : T(0);
}

/// The magnitude projection of one column's half spectrum (hn bins, interleaved re, im):
/// X_k ← t_k·X_k/|X_k| with t_k = yb_k·inv_s, and X_k ← t_k where X_k = 0. |X_k| is
/// √(fma(re, re, im·im)), re·re fused where the target has FMA (what GCC's contraction made of
/// the plain loop this replaces, at -O2 and -O3: ER's and HIO's results are unchanged), now the
/// same at every optimisation level and, on x86 and AArch64, vectorised in every translation
/// unit, under -fmath-errno too (GCC vectorised the plain loop in some and not in others): on
/// the build's vectors (prilo/fft/lanes.hpp), the real and imaginary parts of L bins split into
/// two vectors and joined again afterwards. The division sees 1 in place of a zero |X_k|, whose bins are
/// then replaced, so no lane divides by zero.
template <class T>
void project_magnitudes(std::complex<T>* X, const T* yb, T inv_s, Eigen::Index hn) {
  T* p = reinterpret_cast<T*>(X);
  Eigen::Index i = 0;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    using V = lanes::vec<T>;
    constexpr int L = lanes::lanes<T>;
    const V zero = {}, one = lanes::broadcast<V>(T(1));
    for (const Eigen::Index whole = whole_blocks(hn, Eigen::Index(L)); i < whole; i += L) {
      T* q = p + 2 * i;
      V re, im;
      lanes::deinterleave(lanes::load(q), lanes::load(q + L), re, im);
      const V t = lanes::load(yb + i) * inv_s;
      const V a = lanes::sqrt(lanes::fmadd(re, re, im * im));
      const auto pos = a > zero;  // lane masks: the vector extensions' ?: selects lane by lane
      const V f = t / (pos ? a : one);
      V a0, a1;
      lanes::interleave(pos ? re * f : t, pos ? im * f : zero, a0, a1);
      lanes::store(q, a0);
      lanes::store(q + L, a1);
    }
  }
  for (; i < hn; ++i) {
    const T re = p[2 * i], im = p[2 * i + 1];
    const T a = std::sqrt(fmadd(re, re, im * im));
    const T target = yb[i] * inv_s;
    p[2 * i] = a > T(0) ? re * (target / a) : target;
    p[2 * i + 1] = a > T(0) ? im * (target / a) : T(0);
  }
}

/// The object-domain step of one column (n pixels, p its unnormalised c2r transform):
/// v = p_i·inv_n, pv = clamp(v, lo, hi) inside the support (support null: everywhere; 0
/// outside); ER (hio = false) x_i ← pv; HIO x_i ← pv where pv = v, else x_i − β(v − pv), the
/// product fused into the subtraction where the target has FMA (what GCC's contraction made of
/// the plain loop this replaces: the same results). Branch-free on the build's vectors: whether
/// GCC vectorised the plain loop depended on the translation unit (in some it stayed scalar,
/// with a data-dependent branch on pv = v, at -O2 and -O3; benchmarks/README.md).
template <class T>
void object_step(T* x, const T* p, const T* support, Eigen::Index n, T inv_n, T lo, T hi, bool hio, T beta) {
  Eigen::Index i = 0;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    using V = lanes::vec<T>;
    constexpr int L = lanes::lanes<T>;
    const V zero = {}, vlo = lanes::broadcast<V>(lo), vhi = lanes::broadcast<V>(hi), half = lanes::broadcast<V>(T(0.5)),
            minus_beta = lanes::broadcast<V>(-beta);
    for (const Eigen::Index whole = whole_blocks(n, Eigen::Index(L)); i < whole; i += L) {
      const V v = lanes::load(p + i) * inv_n;
      V pv = v < vlo ? vlo : (vhi < v ? vhi : v);  // std::clamp's order, lane by lane
      if (support) pv = lanes::load(support + i) > half ? pv : zero;
      if (hio) pv = pv == v ? pv : lanes::fmadd(minus_beta, v - pv, lanes::load(x + i));
      lanes::store(x + i, pv);
    }
  }
  for (; i < n; ++i) {
    const T v = p[i] * inv_n;
    const T pv = project_object(v, lo, hi, !support || support[i] > T(0.5));
    x[i] = (!hio || pv == v) ? pv : fmadd(-beta, v - pv, x[i]);
  }
}

/// invalid_input unless ER's or HIO's settings can run: iterations >= 1, a box [lo, hi] that
/// holds a finite value, HIO's beta finite and > 0, 0 <= final_er < iterations for HIO. fienup
/// checks them first; check_method does for a whole method list before any solving.
template <class T>
void check_fienup_options(const FienupOptions<T>& opt, bool hio) {
  if (opt.iterations < 1) fail("fienup: iterations must be >= 1, got ", opt.iterations);
  if (!(opt.lo <= opt.hi)) fail("fienup: need lo <= hi, got ", opt.lo, " > ", opt.hi);
  if (opt.lo == std::numeric_limits<T>::infinity() || opt.hi == -std::numeric_limits<T>::infinity())
    fail("fienup: the box [lo, hi] = [", opt.lo, ", ", opt.hi, "] holds no finite value");
  if (hio && (!(opt.beta > T(0)) || !std::isfinite(opt.beta)))
    fail("fienup: HIO's beta must be finite and > 0, got ", opt.beta);
  if (opt.final_er < 0) fail("fienup: final_er must be >= 0, got ", opt.final_er);
  if (hio && opt.final_er >= opt.iterations)
    fail("fienup: HIO's final_er (", opt.final_er, ") must be less than its iterations (", opt.iterations,
         "), or HIO runs no step of its own");
}
}  // namespace detail

/// ER (hio = false) or HIO (hio = true) for y = |F x| with F the unitary-or-not DFT of
/// `loss.op()`. Each iteration: x' = Re F⁻¹[ȳ ⊙ Fx/|Fx|] (the magnitude projection, done on
/// the half spectrum with r2c/c2r since x is real and ȳ is the symmetrised y), then the
/// object step: ER x ← P_C(x'); HIO x ← x' where x' ∈ C, else x − β(x' − P_C(x')), the
/// generalisation of Fienup's x − βx' to the box C = [lo, hi] (with support: 0 outside).
/// Without oversampling there is no support constraint worth the name, so C is the box.
/// The start x0 is supplied (one column per measurement column of the loss).
template <class T>
SolveResult<T> fienup(const MagnitudeLoss<Fourier2d<T>>& loss, std::type_identity_t<Mat<T>> x, bool hio,
                      const FienupOptions<T>& opt) {
  const auto& F = loss.op();
  require_shape(x, F.input_size(), loss.batch(), "fienup start x0");
  detail::check_fienup_options(opt, hio);
  if (opt.support.size() && opt.support.size() != F.input_size())
    detail::fail("fienup: support mask has ", opt.support.size(), " entries, expected ", F.input_size());
  for (Eigen::Index i = 0; i < opt.support.size(); ++i)
    if (opt.support(i) != T(0) && opt.support(i) != T(1))
      detail::fail("fienup: the support mask holds 0 or 1, found ", opt.support(i), " at pixel ", i);
  require_finite(x, "fienup start x0");
  const Eigen::Index n = F.input_size(), hn = F.half_size();
  const T s = F.scale(), inv_s = T(1) / s, inv_n = T(1) / T(n);
  const Mat<T>& yb = loss.half_measurements();
  auto supp = [&](Eigen::Index i) { return opt.support.size() == 0 || opt.support(i) > T(0.5); };
  SolveResult<T> res;
  CMat<T> X;
  Mat<T> xp;
  const int hio_iters = hio ? std::max(0, opt.iterations - opt.final_er) : 0;
  for (int it = 0; it < opt.iterations; ++it) {
    throw_if_stopped(hio ? "hio" : "er", opt.stop);
    F.forward_half(x, X);
    // magnitude projection: X ← (ȳ/s) · X/|X| (the unscaled spectrum of the scaled target)
    for_column_chunks(
        X.cols(),
        [&](Eigen::Index j0, Eigen::Index nb) {
          for (Eigen::Index j = j0; j < j0 + nb; ++j)
            detail::project_magnitudes(X.col(j).data(), yb.col(j).data(), inv_s, hn);
        },
        64);
    F.backward_half(X, xp);
    const bool hio_step = it < hio_iters;
    for_column_chunks(
        x.cols(),
        [&](Eigen::Index j0, Eigen::Index nb) {
          // c2r is unnormalised: F⁻¹ = backward / n. ER, or HIO where x' satisfies the
          // constraint: x ← P_C(x') (= x' there); elsewhere HIO's x − β(x' − P_C(x'))
          for (Eigen::Index j = j0; j < j0 + nb; ++j)
            detail::object_step(x.col(j).data(), xp.col(j).data(), opt.support.size() ? opt.support.data() : nullptr, n,
                                inv_n, opt.lo, opt.hi, hio_step, opt.beta);
        },
        64);
    if (opt.history_stride > 0 && (it + 1) % opt.history_stride == 0) {
      Vec<T> l = loss.value(x);
      detail::record(res, it + 1, l, opt.history_stride);
      if (opt.progress)
        opt.progress({hio ? "hio" : "er", hio_step ? "hio" : "er", it + 1, opt.iterations, detail::batch_mean(l)});
    }
  }
  // the final object-domain projection makes the output feasible
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < n; ++i) x(i, j) = detail::project_object(x(i, j), opt.lo, opt.hi, supp(i));
  res.magnitude_error = loss.value(x) / T(F.output_size());
  // an r2c and a c2r per iteration and column, and the closing evaluation
  const double cols = double(x.cols()), evals = opt.history_stride > 0 ? opt.iterations / opt.history_stride : 0;
  res.flops = Flops{0, (2.0 * opt.iterations + evals + 1) * cols * real_fft_flops(double(n))};
  res.x = std::move(x);
  return res;
}

/// A batch of random starts, uniform in [lo, hi].
template <class T>
Mat<T> uniform_start(Eigen::Index n, Eigen::Index cols, Rng& rng, T lo = T(0), T hi = T(1)) {
  if (n < 0 || cols < 0) detail::fail("uniform_start: sizes must be >= 0, got ", n, "x", cols);
  if (!(lo <= hi) || !std::isfinite(lo) || !std::isfinite(hi))
    detail::fail("uniform_start: need finite lo <= hi, got [", lo, ", ", hi, "]");
  Mat<T> x(n, cols);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = lo + (hi - lo) * T(rng.uniform());
  return x;
}

}  // namespace prilo

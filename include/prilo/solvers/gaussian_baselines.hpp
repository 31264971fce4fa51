// Classical Gaussian phase-retrieval baselines: spectral and orthogonality-promoting starts, Wirtinger flow, TAF.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../concepts/measurement_operator.hpp"
#include "../interrupt.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../random.hpp"
#include "common.hpp"

namespace prilo {

// Conventions. The operator is used only through apply, adjoint and its sizes, so that the
// solvers work for GaussianReal (A ∈ ℝ^{m×n}, A_ij ~ N(0, 1/m)) and GaussianComplex
// (A ∈ ℂ^{m×n}, E|A_ij|² = 1/m) alike. Row i of A is a_iᴴ, so (Ax)_i = a_iᴴx, and y_i = |a_iᴴx|
// are magnitudes (not squared). The unknown x is real: every matrix Aᴴ D A below is replaced by
// its real part Re(Aᴴ D A), applied as Re(Aᴴ[D (A v)]) (detail::real_adjoint, as in the
// magnitude loss), which is the quadratic form of Aᴴ D A restricted to real vectors. x is
// recoverable up to the global sign ±x only.
//
// The papers normalise a_i ~ N(0, I_n) and work with ψ_i = |ã_iᴴx| (TAF) or ψ_i² (WF). With the
// library's normalisation ã_i = √m a_i and ψ_i = √m y_i; every formula below is the papers'
// rewritten in these terms, so that the papers' step sizes keep their meaning. In particular
// E‖Ax‖² = ‖x‖² here, so ‖x‖ ≈ ‖y‖, the papers' norm estimate √(Σψ_i²/m) in the library's units.
//
// All columns of y (one per image) are solved together: every iteration is one apply and one
// adjoint on the whole batch.

/// Options of spectral_init (Candès, Li & Soltanolkotabi 2015, "Phase retrieval via Wirtinger
/// flow"): the leading eigenvector of Y = Σ_i w_i a_i a_iᴴ with w_i = y_i², by power iteration.
struct SpectralOptions {
  int iterations = 100;  ///< power iterations (≥ 1)
  /// Truncated spectral start of TWF (Chen & Candès 2015): only the measurements with
  /// y_i ≤ α·√(mean_k y_k²) enter Y (α = 3 in the paper). 0 (default): no truncation.
  double truncation = 0;
  /// Stop early when every column's direction changed by less than this in an iteration
  /// (1 − |⟨v_old, v_new⟩|); 0: always run `iterations`.
  double tolerance = 0;
  int progress_stride = 10;
  ProgressFn progress = {};
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// Options of orthogonality_init (TAF's orthogonality-promoting start, Wang, Giannakis & Eldar
/// 2018): the leading eigenvector of Y = Σ_{i∈I} a_i a_iᴴ/‖a_i‖² over the measurements I with the
/// largest ⌈fraction·m⌉ ratios y_i/‖a_i‖ (the rows most nearly parallel to x).
struct OrthogonalityOptions {
  int iterations = 100;         ///< power iterations (≥ 1)
  double fraction = 1.0 / 6.0;  ///< |I| = ⌈fraction·m⌉, in (0, 1]; 1/6 in the paper
  double tolerance = 0;         ///< as SpectralOptions::tolerance
  std::uint64_t seed = 0;       ///< start of the power iteration for the overload without an Rng
  int progress_stride = 10;
  ProgressFn progress = {};
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// Wirtinger flow (Candès, Li & Soltanolkotabi 2015). In the paper's terms, gradient descent on
/// f(x) = 1/(4m) Σ_i (|ã_iᴴx|² − ψ_i²)² with x_{t+1} = x_t − (μ_t/‖x_0‖²)·∇f(x_t) and
/// μ_t = min(1 − e^{−t/t0}, μ_max), t = 1, 2, …; in the library's units
///   x_{t+1} = x_t − (μ_t/‖x_0‖²)·m·Re Aᴴ[(|Ax_t|² − y²) ⊙ Ax_t],
/// which is gradient descent on (1/(2m))·Σ_i(|a_iᴴx|² − y_i²)² with step μ_t·m²/(2‖x_0‖²). For a
/// complex A it is the real part of the paper's complex (Wirtinger) step, the step restricted
/// to real x. Stability: near x the step contracts iff μ_max·λ_max(∇²f)/‖x_0‖² < 2. For real A,
/// E∇²f = 2(‖x‖²I + 2xxᵀ) (λ_max = 6‖x‖²), but the sample Hessian's λ_max is larger (8.7‖x‖² at
/// n = 64, m = 8n, measured), so μ_max = 0.2 needs ‖x_0‖² ≳ 0.87‖x‖²: a start whose norm is
/// more than ~7% low oscillates away from x after converging. The starts of this header are
/// about unbiased (spectral_init's norm was within 5% at m = 8n); lower μ_max otherwise.
/// Safeguard (prilo's, for m < n where the step above diverges): a step that would raise a
/// column's objective is not taken, and that column's step is halved from then on. Where the
/// plain schedule is stable and monotone (m ≫ n) the safeguard never acts.
template <class T>
struct WirtingerFlowOptions {
  int iterations = 500;  ///< gradient steps (≥ 0)
  T mu_max = T(0.2);     ///< μ_max (0.2 in the paper)
  T t0 = T(330);         ///< warm-up constant of μ_t (330 in the paper); ≤ 0: constant μ_t = μ_max
  int history_stride = 10;
  ProgressFn progress = {};
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// Truncated amplitude flow (Wang, Giannakis & Eldar 2018). In the paper's terms, truncated
/// gradient descent on ℓ(x) = 1/(2m) Σ_i (|ã_iᴴx| − ψ_i)² over I(x) = {i : |ã_iᴴx| ≥ ψ_i/(1+γ)}
/// with a constant step μ; in the library's units
///   x_{t+1} = x_t − μ·Re Aᴴ[1_I ⊙ (|Ax_t| − y) ⊙ Ax_t/|Ax_t|],   I = {i : |a_iᴴx_t| ≥ y_i/(1+γ)},
/// i.e. gradient descent with step μ on (1/2)·Σ_{i∈I}(|a_iᴴx| − y_i)² (half the magnitude loss).
/// Safeguard (prilo's, for m < n where the constant step diverges): a step that would raise a
/// column's amplitude loss Σ_i(|a_iᴴx| − y_i)² is not taken, and that column's step is halved
/// from then on; with m ≫ n near the solution it does not act.
template <class T>
struct AmplitudeFlowOptions {
  int iterations = 500;  ///< gradient steps (≥ 0)
  T step = T(0.6);       ///< μ: 0.6 in the paper for real Gaussian A
  T gamma = T(0.7);      ///< truncation γ (0.7 in the paper); +∞ keeps every term (plain amplitude flow)
  int history_stride = 10;
  ProgressFn progress = {};
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

namespace detail {

template <class S>
auto abs2_value(S v) {
  if constexpr (is_complex_v<S>)
    return v.real() * v.real() + v.imag() * v.imag();
  else
    return v * v;
}

/// Checks that y is a batch of magnitudes for op (m rows, finite, non-negative).
template <MeasurementOperator Op, class T>
void require_measurements(const Op& op, const Mat<T>& y, const char* what) {
  require_shape(y, op.output_size(), y.cols(), what);
  require_magnitudes(y, what);
}

/// Leading eigenvector, per column j, of M_j = Re(Aᴴ diag(w_j) A) with w_j ≥ 0 the j-th column
/// of w, by batched power iteration from the columns of v (overwritten with unit vectors).
/// M_j is symmetric positive semi-definite, so the iteration converges to the eigenvector of
/// the largest eigenvalue without sign oscillation, at the rate λ₂/λ₁. Returns the Rayleigh
/// quotients vᵀM v of the last iterate.
template <MeasurementOperator Op, class T = typename Op::scalar>
Vec<T> power_iteration(const Op& op, const Mat<T>& w, Mat<T>& v, int iterations, double tolerance,
                       const ProgressFn& progress, int stride, const char* method, const std::stop_token& stop) {
  using U = typename measurement_t<Op>::Scalar;
  for (Eigen::Index j = 0; j < v.cols(); ++j) {
    const T nv = v.col(j).norm();
    if (nv > T(0)) v.col(j) /= nv;
  }
  Vec<T> lambda = Vec<T>::Zero(v.cols());
  for (int it = 0; it < iterations; ++it) {
    throw_if_stopped(method, stop);
    measurement_t<Op> u = op.apply(v);
    u.array() *= w.array().template cast<U>();
    const Mat<T> mv = real_adjoint(op, u);
    bool converged = true;
    for (Eigen::Index j = 0; j < v.cols(); ++j) {
      lambda(j) = v.col(j).dot(mv.col(j));
      const T nrm = mv.col(j).norm();
      if (!(nrm > T(0)) || !std::isfinite(nrm)) continue;  // w_j = 0: keep the direction
      const T change = T(1) - std::abs(v.col(j).dot(mv.col(j))) / nrm;
      v.col(j) = mv.col(j) / nrm;
      if (!(double(change) <= tolerance)) converged = false;
    }
    const bool last = it + 1 == iterations || (tolerance > 0 && converged);
    if (progress && ((stride > 0 && (it + 1) % stride == 0) || last))
      progress({method, "power iteration", it + 1, iterations, batch_mean(lambda)});
    if (tolerance > 0 && converged) break;
  }
  return lambda;
}

/// Scales unit columns v_j to the papers' norm estimate λ_j = √(n·Σ_i y_ij² / Σ_i ‖a_i‖²)
/// (CLS 2015, eq. (2.2); TAF's √(Σψ_i²/m) is its value for E‖a_i‖² = n). With the library's
/// normalisation Σ_i ‖a_i‖² = ‖A‖_F² ≈ n, so λ_j ≈ ‖y_j‖ (E‖Ax‖² = ‖x‖²); the ratio makes the
/// estimate independent of how the operator is scaled. (‖y_j‖/‖A v_j‖ would be exact for
/// v_j ∥ x_j, but the leading eigenvector leans towards directions where ‖A v‖ is large, and
/// that estimate comes out about 10% low at m = 8n.)
template <MeasurementOperator Op, class T = typename Op::scalar>
void scale_to_norm_estimate(const Op& op, const Mat<T>& y, Mat<T>& v, const Vec<T>& row_norms2) {
  const T frob2 = row_norms2.sum();
  const T ratio = frob2 > T(0) ? T(op.input_size()) / frob2 : T(0);
  for (Eigen::Index j = 0; j < v.cols(); ++j) v.col(j) *= std::sqrt(ratio * y.col(j).squaredNorm());
}

/// ‖a_i‖², the squared norms of the rows of A: from the operator's matrix() when it has one,
/// otherwise matrix-free by applying A to blocks of the identity (n applies in all).
template <MeasurementOperator Op, class T = typename Op::scalar>
Vec<T> row_norms_squared(const Op& op) {
  if constexpr (requires { op.matrix().rowwise().squaredNorm(); }) {
    return Vec<T>(op.matrix().rowwise().squaredNorm());
  } else {
    const Eigen::Index n = op.input_size(), m = op.output_size(), block = 256;
    Vec<T> s = Vec<T>::Zero(m);
    for (Eigen::Index k0 = 0; k0 < n; k0 += block) {
      const Eigen::Index nb = std::min(block, n - k0);
      Mat<T> e = Mat<T>::Zero(n, nb);
      for (Eigen::Index c = 0; c < nb; ++c) e(k0 + c, c) = T(1);
      const measurement_t<Op> u = op.apply(e);
      s += u.cwiseAbs2().rowwise().sum();
    }
    return s;
  }
}

}  // namespace detail

/// Spectral start (Candès, Li & Soltanolkotabi 2015): per column y_j, the leading eigenvector v
/// of Re Y, Y = (1/m)·Σ_i y_i² a_i a_iᴴ (only the i with y_i ≤ α·√(mean y²) when
/// opt.truncation = α > 0), scaled to the norm estimate λ_j = √(n·‖y_j‖²/‖A‖_F²) ≈ ‖y_j‖ (see
/// detail::scale_to_norm_estimate). For real Gaussian A (a_i ~ N(0, I/m)),
/// m²·E[Y] = ‖x‖²I + 2xxᵀ, whose leading eigenvector is ±x/‖x‖ (eigenvalue ratio 3 to the
/// rest); for complex Gaussian A with real x, m²·E[Re Y] = ‖x‖²I + xxᵀ (ratio 2). Computed
/// matrix-free by batched power iteration from random starts drawn from rng: every iteration is
/// one apply and one adjoint on n×B. ‖A‖_F² comes from detail::row_norms_squared (op.matrix()
/// when the operator has one, else n applies). Returns the starts, n×B.
template <MeasurementOperator Op, class T = typename Op::scalar>
Mat<T> spectral_init(const Op& op, const std::type_identity_t<Mat<T>>& y, const SpectralOptions& opt, Rng& rng) {
  detail::require_measurements(op, y, "spectral_init measurements y");
  if (opt.iterations < 1) detail::fail("spectral_init: iterations must be >= 1, got ", opt.iterations);
  if (!(opt.truncation >= 0)) detail::fail("spectral_init: truncation must be >= 0 (0 = none), got ", opt.truncation);
  if (!(opt.tolerance >= 0)) detail::fail("spectral_init: tolerance must be >= 0, got ", opt.tolerance);
  Mat<T> w = y.array().square();
  if (opt.truncation > 0) {
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      const T bound = T(opt.truncation) * std::sqrt(w.col(j).mean());
      for (Eigen::Index i = 0; i < y.rows(); ++i)
        if (y(i, j) > bound) w(i, j) = T(0);
    }
  }
  w /= T(op.output_size());
  Mat<T> v = rng.normal_matrix<T>(op.input_size(), y.cols());  // normalised by the iteration
  detail::power_iteration(op, w, v, opt.iterations, opt.tolerance, opt.progress, opt.progress_stride, "spectral",
                          opt.stop);
  detail::scale_to_norm_estimate(op, y, v, detail::row_norms_squared(op));
  return v;
}

/// Orthogonality-promoting start of TAF (Wang, Giannakis & Eldar 2018): per column y_j, take the
/// ⌈fraction·m⌉ measurements with the largest y_i/‖a_i‖ (rows a_i nearly parallel to x, since
/// y_i/‖a_i‖ = ‖x‖·|cos∠(a_i, x)|), the leading eigenvector v of
/// Re Y, Y = (1/|I|)·Σ_{i∈I} a_i a_iᴴ/‖a_i‖², and scale it to the norm estimate
/// λ_j = √(n·‖y_j‖²/‖A‖_F²) ≈ ‖y_j‖ as spectral_init does. The weights do not involve y_i itself, which makes the start
/// insensitive to heavy-tailed y_i² (the reason for the method). ‖a_i‖ comes from
/// detail::row_norms_squared (op.matrix() if present, else n applies). Batched power iteration
/// from random starts drawn from rng. Returns the starts, n×B.
template <MeasurementOperator Op, class T = typename Op::scalar>
Mat<T> orthogonality_init(const Op& op, const std::type_identity_t<Mat<T>>& y, const OrthogonalityOptions& opt,
                          Rng& rng) {
  detail::require_measurements(op, y, "orthogonality_init measurements y");
  if (opt.iterations < 1) detail::fail("orthogonality_init: iterations must be >= 1, got ", opt.iterations);
  if (!(opt.fraction > 0 && opt.fraction <= 1))
    detail::fail("orthogonality_init: fraction must be in (0, 1], got ", opt.fraction);
  if (!(opt.tolerance >= 0)) detail::fail("orthogonality_init: tolerance must be >= 0, got ", opt.tolerance);
  const Eigen::Index m = op.output_size();
  const Eigen::Index k = std::clamp<Eigen::Index>(Eigen::Index(std::ceil(opt.fraction * double(m) - 1e-9)), 1, m);
  const Vec<T> rn2 = detail::row_norms_squared(op);
  Vec<T> inv_rn(m), inv_rn2(m);
  for (Eigen::Index i = 0; i < m; ++i) {
    inv_rn(i) = rn2(i) > T(0) ? T(1) / std::sqrt(rn2(i)) : T(0);  // a zero row never gets selected
    inv_rn2(i) = inv_rn(i) * inv_rn(i);
  }
  Mat<T> w = Mat<T>::Zero(m, y.cols());
  std::vector<Eigen::Index> idx(static_cast<std::size_t>(m));
  std::vector<T> ratio(static_cast<std::size_t>(m));
  for (Eigen::Index j = 0; j < y.cols(); ++j) {
    for (Eigen::Index i = 0; i < m; ++i) ratio[std::size_t(i)] = rn2(i) > T(0) ? y(i, j) * inv_rn(i) : T(-1);
    std::iota(idx.begin(), idx.end(), Eigen::Index(0));
    // largest ratios first; ties broken by index so that the selection is deterministic
    std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), [&](Eigen::Index a, Eigen::Index b) {
      const T ra = ratio[std::size_t(a)], rb = ratio[std::size_t(b)];
      return ra > rb || (ra == rb && a < b);
    });
    for (Eigen::Index t = 0; t < k; ++t) w(idx[std::size_t(t)], j) = inv_rn2(idx[std::size_t(t)]) / T(k);
  }
  Mat<T> v = rng.normal_matrix<T>(op.input_size(), y.cols());  // normalised by the iteration
  detail::power_iteration(op, w, v, opt.iterations, opt.tolerance, opt.progress, opt.progress_stride, "orthogonality",
                          opt.stop);
  detail::scale_to_norm_estimate(op, y, v, rn2);
  return v;
}

/// orthogonality_init with the power iteration started from Rng(opt.seed).
template <MeasurementOperator Op, class T = typename Op::scalar>
Mat<T> orthogonality_init(const Op& op, const std::type_identity_t<Mat<T>>& y, const OrthogonalityOptions& opt = {}) {
  Rng rng(opt.seed);
  return orthogonality_init(op, y, opt, rng);
}

namespace detail {
template <MeasurementOperator Op, class T = typename Op::scalar>
void require_start(const Op& op, const Mat<T>& y, const Mat<T>& x0, const char* what) {
  require_shape(x0, op.input_size(), y.cols(), what);
  require_finite(x0, what);
}

template <MeasurementOperator Op, class T = typename Op::scalar>
void flow_record(const MagnitudeLoss<Op>& loss, const Mat<T>& x, SolveResult<T>& res, int it, int iterations,
                 int stride, const ProgressFn& progress, const char* method) {
  if (stride <= 0 || it % stride != 0) return;
  const Vec<T> l = loss.value(x);
  record(res, it, l, stride);
  if (progress) progress({method, method, it, iterations, batch_mean(l)});
}

/// The safeguarded flows' state: x, u = Ax, the objective f = Σ_i r(u_i, y_i)² per column
/// and each column's step scale. step() tries x − g·diag(steps ⊙ scale) and keeps it in the
/// columns whose objective does not rise (NaN never does); the others halve their scale.
template <MeasurementOperator Op, class T, class Residual>
struct SafeguardedFlow {
  const Op& op;
  const Mat<T>& y;
  Residual residual;  ///< r(u_i, y_i): |u|² − y² (WF) or |u| − y (TAF)
  Mat<T> x;
  measurement_t<Op> u, w;
  Vec<T> f, scale;
  Mat<T> x_new;

  SafeguardedFlow(const Op& o, const Mat<T>& yy, Residual r, Mat<T> x0)
      : op(o), y(yy), residual(r), x(std::move(x0)), u(op.apply(x)), f(objective(u)), scale(Vec<T>::Ones(x.cols())) {}

  Vec<T> objective(const measurement_t<Op>& v) const {
    Vec<T> out(v.cols());
    for (Eigen::Index j = 0; j < v.cols(); ++j) {
      T acc = 0;
      for (Eigen::Index i = 0; i < v.rows(); ++i) {
        const T r = residual(v(i, j), y(i, j));
        acc += r * r;
      }
      out(j) = acc;
    }
    return out;
  }

  void step(const Mat<T>& g, const Vec<T>& steps) {
    x_new.noalias() = x - g * steps.cwiseProduct(scale).asDiagonal();
    w = op.apply(x_new);
    const Vec<T> f_new = objective(w);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      if (f_new(j) <= f(j)) {  // false for NaN: a non-finite step is never taken
        x.col(j) = x_new.col(j);
        u.col(j) = w.col(j);
        f(j) = f_new(j);
      } else {
        scale(j) *= T(0.5);
      }
    }
  }
};

template <MeasurementOperator Op, class T = typename Op::scalar>
SolveResult<T> flow_finish(const MagnitudeLoss<Op>& loss, Mat<T> x, SolveResult<T> res) {
  res.magnitude_error = loss.value(x) / T(loss.op().output_size());
  res.x = std::move(x);
  return res;
}
}  // namespace detail

/// Wirtinger flow from the starts x0 (n×B, one per column of y; e.g. spectral_init), with the
/// update and step schedule of WirtingerFlowOptions. The step is normalised per column by
/// ‖x0_j‖² (by ‖y_j‖², the norm estimate, where x0_j = 0). Returns x (n×B), the magnitude
/// error ‖|Ax_j| − y_j‖²/m per column, and the magnitude loss every history_stride steps.
template <MeasurementOperator Op, class T = typename Op::scalar>
SolveResult<T> wirtinger_flow(const Op& op, const std::type_identity_t<Mat<T>>& y, std::type_identity_t<Mat<T>> x0,
                              const WirtingerFlowOptions<T>& opt = {}) {
  detail::require_measurements(op, y, "wirtinger_flow measurements y");
  detail::require_start(op, y, x0, "wirtinger_flow start x0");
  if (opt.iterations < 0) detail::fail("wirtinger_flow: iterations must be >= 0, got ", opt.iterations);
  if (!(opt.mu_max > T(0)) || !std::isfinite(opt.mu_max))
    detail::fail("wirtinger_flow: mu_max must be positive and finite, got ", opt.mu_max);
  if (std::isnan(opt.t0) || opt.t0 == std::numeric_limits<T>::infinity())
    detail::fail("wirtinger_flow: t0 must be a number below +inf (<= 0: constant step), got ", opt.t0);
  const MagnitudeLoss<Op> loss(op, y);
  const Eigen::Index m = op.output_size(), B = y.cols();
  const Mat<T> y2 = y.array().square();
  Vec<T> inv_norm2(B);
  for (Eigen::Index j = 0; j < B; ++j) {
    T n0 = x0.col(j).squaredNorm();
    if (!(n0 > T(0))) n0 = y.col(j).squaredNorm();
    inv_norm2(j) = n0 > T(0) ? T(m) / n0 : T(0);  // the factor m of the update folded in
  }
  // the WF objective (up to the constant 1/(2m)) and its safeguard
  detail::SafeguardedFlow flow(
      op, y, [](auto v, T yi) { return detail::abs2_value(v) - yi * yi; }, std::move(x0));
  SolveResult<T> res;
  measurement_t<Op> w;
  for (int t = 1; t <= opt.iterations; ++t) {
    w = flow.u;
    for (Eigen::Index j = 0; j < B; ++j)
      for (Eigen::Index i = 0; i < m; ++i) w(i, j) *= detail::abs2_value(flow.u(i, j)) - y2(i, j);
    const T mu = opt.t0 > T(0) ? std::min(T(1) - std::exp(-T(t) / opt.t0), opt.mu_max) : opt.mu_max;
    throw_if_stopped("wf", opt.stop);
    flow.step(detail::real_adjoint(op, w), mu * inv_norm2);
    detail::flow_record(loss, flow.x, res, t, opt.iterations, opt.history_stride, opt.progress, "wf");
  }
  return detail::flow_finish(loss, std::move(flow.x), std::move(res));
}

/// Truncated amplitude flow from the starts x0 (n×B, one per column of y; e.g.
/// orthogonality_init), with the update of AmplitudeFlowOptions. Where a_iᴴx = 0 the term's
/// direction Ax/|Ax| is taken as 0, as in the magnitude loss. Returns x (n×B), the magnitude
/// error ‖|Ax_j| − y_j‖²/m per column, and the magnitude loss every history_stride steps.
template <MeasurementOperator Op, class T = typename Op::scalar>
SolveResult<T> truncated_amplitude_flow(const Op& op, const std::type_identity_t<Mat<T>>& y,
                                        std::type_identity_t<Mat<T>> x0, const AmplitudeFlowOptions<T>& opt = {}) {
  detail::require_measurements(op, y, "truncated_amplitude_flow measurements y");
  detail::require_start(op, y, x0, "truncated_amplitude_flow start x0");
  if (opt.iterations < 0) detail::fail("truncated_amplitude_flow: iterations must be >= 0, got ", opt.iterations);
  if (!(opt.step > T(0)) || !std::isfinite(opt.step))
    detail::fail("truncated_amplitude_flow: step must be positive and finite, got ", opt.step);
  if (!(opt.gamma >= T(0))) detail::fail("truncated_amplitude_flow: gamma must be >= 0, got ", opt.gamma);
  using U = typename measurement_t<Op>::Scalar;
  const MagnitudeLoss<Op> loss(op, y);
  const Eigen::Index m = op.output_size(), B = y.cols();
  const T inv_1pg = std::isinf(opt.gamma) ? T(0) : T(1) / (T(1) + opt.gamma);
  // the amplitude loss Σ_i (|a_iᴴx| − y_i)² per column is the safeguard's measure
  detail::SafeguardedFlow flow(
      op, y, [](auto v, T yi) { return detail::abs_value(v) - yi; }, std::move(x0));
  SolveResult<T> res;
  const Vec<T> steps = Vec<T>::Constant(B, opt.step);
  measurement_t<Op> w;
  for (int t = 1; t <= opt.iterations; ++t) {
    w = flow.u;
    for (Eigen::Index j = 0; j < B; ++j) {
      for (Eigen::Index i = 0; i < m; ++i) {
        const T a = detail::abs_value(w(i, j));
        const bool keep = a > T(0) && a >= y(i, j) * inv_1pg;
        w(i, j) = keep ? w(i, j) * ((a - y(i, j)) / a) : U(0);
      }
    }
    throw_if_stopped("taf", opt.stop);
    flow.step(detail::real_adjoint(op, w), steps);
    detail::flow_record(loss, flow.x, res, t, opt.iterations, opt.history_stride, opt.progress, "taf");
  }
  return detail::flow_finish(loss, std::move(flow.x), std::move(res));
}

}  // namespace prilo

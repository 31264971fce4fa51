// The magnitude loss ‖|Ax| − y‖² and its gradient, once for every operator, fused for the DFT.
#pragma once

#include <algorithm>

#include "../concepts/measurement_operator.hpp"
#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../flops.hpp"
#include "../parallel.hpp"
#include "fourier.hpp"

namespace prilo {

namespace detail {
template <class T>
T abs_value(T v) {
  return std::abs(v);
}
template <class T>
T abs_value(std::complex<T> v) {
  return std::sqrt(v.real() * v.real() + v.imag() * v.imag());
}
template <class Op, class U>
auto real_adjoint(const Op& op, const U& r) {
  if constexpr (requires { op.adjoint_real(r); }) {
    return op.adjoint_real(r);
  } else if constexpr (is_complex_v<typename U::Scalar> ||
                       is_complex_v<typename std::decay_t<decltype(op.adjoint(r))>::Scalar>) {
    using T = typename Op::scalar;
    return Mat<T>(op.adjoint(r).real());
  } else {
    return op.adjoint(r);
  }
}
}  // namespace detail

/// The loss's per-column values on executor E: a host vector on the CPU, a B×1 matrix elsewhere.
template <class E, class T>
using loss_column_t = std::conditional_t<std::is_same_v<E, CpuExecutor>, Vec<T>, matrix_t<E, T>>;

/// An operator the loss can evaluate on its executor's batches (matrix_t<executor_of_t<Op>, T>):
/// a MeasurementOperator on the CPU, or a device operator with the same members.
template <class Op>
concept ExecutorMeasurementOperator = requires {
  typename Op::scalar;
}
&&requires(const Op& op, const matrix_t<executor_of_t<Op>, typename Op::scalar>& x) {
  { op.input_size() } -> std::convertible_to<Eigen::Index>;
  { op.output_size() } -> std::convertible_to<Eigen::Index>;
  op.apply(x);
};

/// A 2-D DFT of real images that works on half spectra (r2c / c2r): what the fused loss needs.
template <class Op>
concept HalfSpectrumOperator = requires {
  typename Op::scalar;
}
&&requires(const Op& op) {
  { op.input_size() } -> std::convertible_to<Eigen::Index>;
  { op.output_size() } -> std::convertible_to<Eigen::Index>;
  { op.height() } -> std::convertible_to<int>;
  { op.width() } -> std::convertible_to<int>;
  { op.half_size() } -> std::convertible_to<Eigen::Index>;
  { op.scale() } -> std::convertible_to<typename Op::scalar>;
  { op.flops() } -> std::convertible_to<Flops>;
};

/// What MagnitudeLoss takes: a general operator or a half-spectrum DFT, on any executor.
template <class Op>
concept LossOperator = ExecutorMeasurementOperator<Op> || HalfSpectrumOperator<Op>;

/// f(x) = Σ_k (|(Ax)_k| − y_k)², per column of a batch, with gradient ∇f = 2·Re(Aᴴ[(|Ax| − y) ⊙
/// Ax/|Ax|]) (Ax/|Ax| taken as 0 where Ax = 0, a valid subgradient choice). One class for every
/// operator and executor (the CPU's, CUDA's): the loss is written once over the customisation
/// points magnitude_residual, magnitude_scores and (for half-spectrum DFTs, below)
/// symmetrise_half_spectrum, half_spectrum_loss and half_spectrum_scores, whose forms each
/// executor supplies. Holds a reference to the operator, which must outlive the loss.
template <class Op>
class MagnitudeLoss;

/// The general operator: apply, one residual pass, the real part of the adjoint.
template <class Op>
requires(ExecutorMeasurementOperator<Op> && !HalfSpectrumOperator<Op>) class MagnitudeLoss<Op> {
 public:
  using T = typename Op::scalar;
  using executor_type = executor_of_t<Op>;
  using matrix_type = matrix_t<executor_type, T>;

  /// Host measurements, validated (finite, non-negative), then moved to the operator's executor.
  MagnitudeLoss(const Op& op, Mat<T> y) : op_(&op) {
    require_shape(y, op.output_size(), y.cols(), "magnitude loss measurements y");
    require_magnitudes(y, "magnitude loss measurements y");
    y_ = from_host(executor(), std::move(y));
  }

  executor_type executor() const { return executor_of(*op_); }
  const matrix_type& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }

  /// Per-column loss of a batch x with as many columns as y, on the host.
  Vec<T> value(const matrix_type& x) const { return evaluate(x, nullptr); }
  /// Per-column loss on the host; writes the gradient (n×B) into grad.
  Vec<T> value_and_gradient(const matrix_type& x, matrix_type& grad) const { return evaluate(x, &grad); }

  /// Magnitudes |Ax| of a batch (m×B).
  matrix_type magnitudes(const matrix_type& x) const { return magnitudes_of(executor(), op_->apply(x)); }

  /// What scores() costs for p candidates: p applications and the p×m by m×B product.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * apply_flops(*op_) + Flops{2.0 * double(p) * double(op_->output_size()) * double(y_.cols()), 0.0};
  }

  /// S(c, j) = ‖|A x_c| − y_j‖² for every candidate column x_c against every measurement
  /// column y_j, on the host (p×B), as one matrix product: ‖a_c‖² + ‖y_j‖² − 2 a_cᵀ y_j.
  Mat<T> scores(const matrix_type& candidates) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "magnitude loss candidates");
    return magnitude_scores(executor(), magnitudes(candidates), y_);
  }

 private:
  Vec<T> evaluate(const matrix_type& x, matrix_type* grad) const {
    require_shape(x, op_->input_size(), y_.cols(), "magnitude loss input x");
    const auto ex = executor();
    auto u = op_->apply(x);
    loss_column_t<executor_type, T> loss;
    magnitude_residual(ex, u, y_, loss);  // u ← 2(|u| − y) u/|u|
    if (grad) *grad = detail::real_adjoint(*op_, u);
    return to_host_column(ex, std::move(loss));
  }

  const Op* op_;
  matrix_type y_;
};

/// The fused DFT path. For real x the spectrum is Hermitian, |X_k| = |X_{−k}|, so
/// Σ_k (|X_k| − y_k)² = Σ_k (|X_k| − ȳ_k)² + Σ_k (y_k − ȳ_k)² with ȳ_k = (y_k + y_{−k})/2.
/// The loss is then evaluated on the half spectrum of one r2c transform (bins that stand
/// for a conjugate pair weighted 2) and the gradient 2·s·DFTᴴ r comes from one c2r
/// transform of the Hermitian residual r: one FFT pair per image, no full spectrum. The
/// executor supplies the fused pass (half_spectrum_loss): FFTW on column blocks that stay in
/// cache on the CPU, cuFFT and one block-per-image kernel on CUDA.
template <HalfSpectrumOperator Op>
class MagnitudeLoss<Op> {
 public:
  using T = typename Op::scalar;
  using C = std::complex<T>;
  using executor_type = executor_of_t<Op>;
  using matrix_type = matrix_t<executor_type, T>;
  using column_type = loss_column_t<executor_type, T>;

  /// Host measurements, validated (finite, non-negative), then moved to the operator's executor.
  MagnitudeLoss(const Op& op, Mat<T> y) : op_(&op) {
    require_shape(y, op.output_size(), y.cols(), "magnitude loss measurements y");
    require_magnitudes(y, "magnitude loss measurements y");
    y_ = from_host(executor(), std::move(y));
    init();
  }
  /// Measurements already on a device executor, taken as valid magnitudes (finite, ≥ 0)
  /// without a check, which would need a host round trip.
  template <class M>
  requires(!std::is_same_v<M, Mat<T>> && std::is_same_v<M, matrix_type>) MagnitudeLoss(const Op& op, M y)
      : op_(&op), y_(std::move(y)) {
    require_shape(y_, op.output_size(), y_.cols(), "magnitude loss measurements y");
    init();
  }

  executor_type executor() const { return executor_of(*op_); }
  const matrix_type& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }
  /// Half-spectrum symmetrised magnitudes ȳ (h·(w/2+1) × B) and the bin weights (1 or 2, host).
  const matrix_type& half_measurements() const { return ybar_; }
  const Vec<T>& half_weights() const { return weight_; }
  /// Σ_k (y_k − ȳ_k)² per column: zero for magnitudes of a real image.
  const column_type& asymmetry() const { return offset_; }

  Vec<T> value(const matrix_type& x) const { return evaluate(x, nullptr); }
  Vec<T> value_and_gradient(const matrix_type& x, matrix_type& grad) const { return evaluate(x, &grad); }
  /// The per-column loss left on the executor (asynchronous on a device): for loops that
  /// read the values only now and then.
  void value(const matrix_type& x, column_type& loss) const { run(x, nullptr, loss); }
  void value_and_gradient(const matrix_type& x, matrix_type& grad, column_type& loss) const { run(x, &grad, loss); }
  /// Magnitudes |F x| of a batch (h·w × B), on the CPU.
  Mat<T> magnitudes(const Mat<T>& x) const requires std::is_same_v<matrix_type, Mat<T>> {
    return op_->apply(x).cwiseAbs();
  }

  /// What scores() costs for p candidates: p r2c transforms and the product on the half spectrum.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * op_->flops() + Flops{2.0 * double(p) * double(op_->half_size()) * double(y_.cols()), 0.0};
  }

  /// S(c, j) = ‖|F x_c| − y_j‖² for all candidates against all measurements, on the host
  /// (p×B), from one r2c per candidate and one matrix product on the weighted half spectrum.
  Mat<T> scores(const matrix_type& candidates) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "magnitude loss candidates");
    return half_spectrum_scores(executor(), *op_, candidates, ybar_, weight_, offset_, spec_);
  }

 private:
  void init() {
    const int w = op_->width(), wh = w / 2 + 1;
    weight_.resize(op_->half_size());
    for (Eigen::Index i = 0; i < weight_.size(); ++i) {
      const int k2 = int(i % wh);
      weight_(i) = (k2 == 0 || (w % 2 == 0 && k2 == w / 2)) ? T(1) : T(2);
    }
    symmetrise_half_spectrum(executor(), *op_, y_, ybar_, offset_);
  }
  void run(const matrix_type& x, matrix_type* grad, column_type& loss) const {
    require_shape(x, op_->input_size(), y_.cols(), "magnitude loss input x");
    half_spectrum_loss(executor(), *op_, x, ybar_, weight_, offset_, grad, loss, spec_);
  }
  Vec<T> evaluate(const matrix_type& x, matrix_type* grad) const {
    column_type loss;
    run(x, grad, loss);
    return to_host_column(executor(), std::move(loss));
  }

  const Op* op_;
  matrix_type y_, ybar_;
  Vec<T> weight_;
  column_type offset_;
  // a device executor's spectrum workspace (the CPU keeps one per thread instead, so that
  // threads may evaluate one loss at once)
  mutable matrix_t<executor_type, C> spec_;
};

// ---- The CPU forms of the loss's customisation points ----

/// The per-column values on the host (a move on the CPU).
template <class T>
Vec<T> to_host_column(const CpuExecutor&, Vec<T>&& v) {
  return std::move(v);
}

/// loss_j = Σ_i (|u_ij| − y_ij)² and u_ij ← 2(|u_ij| − y_ij)·u_ij/|u_ij| (0 where u_ij = 0):
/// the residual whose real adjoint is the gradient. u real or complex.
template <class U, class T>
void magnitude_residual(const CpuExecutor&, Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic>& u, const Mat<T>& y,
                        Vec<T>& loss) {
  loss.resize(u.cols());
  for (Eigen::Index j = 0; j < u.cols(); ++j) {
    T acc = 0;
    for (Eigen::Index i = 0; i < u.rows(); ++i) {
      const U v = u(i, j);
      const T a = detail::abs_value(v);
      const T res = a - y(i, j);
      acc += res * res;
      // 2·(v·(res/a)) written as v·(2·(res/a)): both products by 2 are exact, so this is bit
      // for bit the former 2·Aᴴ(v·(res/a)) with the factor moved into the residual
      u(i, j) = a > T(0) ? v * (T(2) * (res / a)) : U(0);
    }
    loss(j) = acc;
  }
}

/// |u| element-wise.
template <class U>
auto magnitudes_of(const CpuExecutor&, const Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic>& u) {
  using T = typename Eigen::NumTraits<U>::Real;
  return Mat<T>(u.cwiseAbs());
}

/// S(c, j) = max(0, ‖a_c‖² + ‖y_j‖² − 2 a_cᵀ y_j) for magnitudes a (m×p) against y (m×B).
template <class T>
Mat<T> magnitude_scores(const CpuExecutor&, const Mat<T>& a, const Mat<T>& y) {
  Mat<T> s(a.cols(), y.cols());
  s.noalias() = T(-2) * a.transpose() * y;
  s.colwise() += a.colwise().squaredNorm().transpose();
  s.rowwise() += y.colwise().squaredNorm();
  return s.cwiseMax(T(0));
}

/// ȳ on the half spectrum and the asymmetry Σ_k (y_k − ȳ_k)² per column.
template <class T>
void symmetrise_half_spectrum(const CpuExecutor&, const Fourier2d<T>& op, const Mat<T>& y, Mat<T>& ybar,
                              Vec<T>& offset) {
  const int h = op.height(), w = op.width(), wh = w / 2 + 1;
  ybar.resize(op.half_size(), y.cols());
  offset.resize(y.cols());
  for (Eigen::Index j = 0; j < y.cols(); ++j) {
    T off = 0;
    for (int k1 = 0; k1 < h; ++k1) {
      for (int k2 = 0; k2 < w; ++k2) {
        const T a = y(k1 * w + k2, j), b = y(((h - k1) % h) * w + (w - k2) % w, j);
        const T mean = (a + b) / 2;
        off += (a - mean) * (a - mean);
        if (k2 < wh) ybar(k1 * wh + k2, j) = mean;
      }
    }
    offset(j) = off;
  }
}

namespace detail {
/// Loss terms of one column's half spectrum p (interleaved re, im; hn bins), overwriting p
/// with the residual r_k = 2·s·(|s X_k| − ȳ_k)·s X_k/|s X_k| (0 where X_k = 0). Written as a
/// fixed number of independent lanes so that the compiler vectorises the loop (sqrt and
/// division included, -fno-math-errno): a single running sum would be a serial reduction,
/// which GCC does not reassociate. The division never sees a zero (a blend picks 1 first) and
/// the factor is masked to 0 afterwards, so no lane can trap or produce inf/NaN.
template <class T>
T half_spectrum_residual(T* p, const T* yb, const T* wt, Eigen::Index hn, T s) {
  constexpr Eigen::Index L = Eigen::Index(64 / sizeof(T));
  T acc[L] = {};
  const T two_s = T(2) * s;
  auto lane = [&](Eigen::Index i, T& a_acc) {
    const T re = p[2 * i] * s, im = p[2 * i + 1] * s;
    const T a = std::sqrt(re * re + im * im);
    const T res = a - yb[i];
    a_acc += wt[i] * res * res;
    const T f0 = two_s * res / (a > T(0) ? a : T(1));
    const T f = a > T(0) ? f0 : T(0);
    p[2 * i] = re * f;
    p[2 * i + 1] = im * f;
  };
  Eigen::Index i = 0;
  for (; i + L <= hn; i += L)
    for (Eigen::Index j = 0; j < L; ++j) lane(i + j, acc[j]);
  for (Eigen::Index j = 0; i + j < hn; ++j) lane(i + j, acc[j]);
  for (Eigen::Index w = L / 2; w > 0; w /= 2)
    for (Eigen::Index j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}
}  // namespace detail

/// The fused pass on the CPU. One parallel region for the whole evaluation: each thread takes a
/// range of columns and runs r2c, the residual pass and c2r on blocks of columns small enough
/// (≤ 256 KiB of spectrum) to stay in cache between the three, with the operator's cached
/// batched plans and a spectrum workspace of its own (the `spec` argument is for device
/// executors). Same transforms and arithmetic as forward_half + residual + backward_half.
template <class T>
void half_spectrum_loss(const CpuExecutor&, const Fourier2d<T>& op, const Mat<T>& x, const Mat<T>& ybar,
                        const Vec<T>& weight, const Vec<T>& offset, Mat<T>* grad, Vec<T>& loss, CMat<T>& /*spec*/) {
  using C = std::complex<T>;
  thread_local CMat<T> spec;
  CMat<T>& X = spec;
  const Eigen::Index n = op.input_size(), hn = op.half_size(), cols = x.cols();
  X.resize(hn, cols);
  if (grad) grad->resize(n, cols);
  const T s = op.scale();
  loss.resize(cols);
  const bool unaligned = grad ? op.needs_unaligned_plans({x.data(), X.data(), grad->data()})
                              : op.needs_unaligned_plans({x.data(), X.data()});
  const Eigen::Index block = std::clamp<Eigen::Index>(Eigen::Index(262144 / (std::size_t(hn) * sizeof(C))), 1, 64);
  const auto& plans = op.plans();
  for_column_chunks(
      cols,
      [&](Eigen::Index j0, Eigen::Index nb) {
        for (Eigen::Index b0 = j0; b0 < j0 + nb; b0 += block) {
          const int m = int(std::min(block, j0 + nb - b0));
          plans.get(fftw::Kind::r2c, m, unaligned).execute(x.col(b0).data(), X.col(b0).data());
          for (Eigen::Index j = b0; j < b0 + m; ++j)
            loss(j) = detail::half_spectrum_residual(reinterpret_cast<T*>(X.col(j).data()), ybar.col(j).data(),
                                                     weight.data(), hn, s) +
                      offset(j);
          if (grad) plans.get(fftw::Kind::c2r, m, unaligned).execute(X.col(b0).data(), grad->col(b0).data());
        }
      },
      16);
}

/// MII's scores on the CPU: one r2c per candidate (per-thread workspaces: MII calls this chunk
/// after chunk with the same shapes) and one product on the weighted half spectrum.
template <class T>
Mat<T> half_spectrum_scores(const CpuExecutor&, const Fourier2d<T>& op, const Mat<T>& candidates, const Mat<T>& ybar,
                            const Vec<T>& weight, const Vec<T>& offset, CMat<T>& /*spec*/) {
  thread_local CMat<T> X;
  thread_local Mat<T> a, wa;
  op.forward_half(candidates, X);
  a = (X.real().array().square() + X.imag().array().square()).sqrt().matrix() * op.scale();  // not hypot: vectorises
  wa = a.array().colwise() * weight.array();
  Mat<T> s(a.cols(), ybar.cols());
  s.noalias() = T(-2) * wa.transpose() * ybar;
  s.colwise() += (wa.array() * a.array()).colwise().sum().matrix().transpose();
  const Vec<T> yy = (ybar.array().square().colwise() * weight.array()).colwise().sum().transpose() + offset.array();
  s.rowwise() += yy.transpose();
  return s.cwiseMax(T(0));
}

/// Deduction guide helper: make_loss(op, y).
template <LossOperator Op>
MagnitudeLoss<Op> make_loss(const Op& op, Mat<typename Op::scalar> y) {
  return MagnitudeLoss<Op>(op, std::move(y));
}

/// Measurements y = |Ax| of a batch of signals.
template <MeasurementOperator Op>
Mat<typename Op::scalar> measure(const Op& op, const Mat<typename Op::scalar>& x) {
  return op.apply(x).cwiseAbs();
}

}  // namespace prilo

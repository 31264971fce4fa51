// The magnitude loss ‖|Ax| − y‖² and its gradient, once for every operator, fused for the DFT.
#pragma once

#include <algorithm>

#include "../concepts/measurement_operator.hpp"
#include "../core.hpp"
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

/// f(x) = Σ_k (|(Ax)_k| − y_k)², per column of a batch, with gradient
/// ∇f = 2·Re(Aᴴ[(|Ax| − y) ⊙ Ax/|Ax|]), where Ax/|Ax| is taken as 0 where Ax = 0 (a valid
/// subgradient choice). Holds a reference to the operator, which must outlive the loss.
template <MeasurementOperator Op>
class MagnitudeLoss {
 public:
  using T = typename Op::scalar;

  MagnitudeLoss(const Op& op, Mat<T> y) : op_(&op), y_(std::move(y)) {
    require_shape(y_, op.output_size(), y_.cols(), "magnitude loss measurements y");
    require_magnitudes(y_, "magnitude loss measurements y");
  }

  const Mat<T>& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }

  /// Per-column loss of a batch x with as many columns as y.
  Vec<T> value(const Mat<T>& x) const { return evaluate(x, nullptr); }
  /// Per-column loss; writes the gradient (n×B) into grad.
  Vec<T> value_and_gradient(const Mat<T>& x, Mat<T>& grad) const { return evaluate(x, &grad); }

  /// Magnitudes |Ax| of a batch (m×B).
  Mat<T> magnitudes(const Mat<T>& x) const { return op_->apply(x).cwiseAbs(); }

  /// What scores() costs for p candidates: p applications and the p×m by m×B product.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * apply_flops(*op_) + Flops{2.0 * double(p) * double(op_->output_size()) * double(y_.cols()), 0.0};
  }

  /// S(c, j) = ‖|A x_c| − y_j‖² for every candidate column x_c against every measurement
  /// column y_j, as one matrix product: ‖a_c‖² + ‖y_j‖² − 2 a_cᵀ y_j.
  Mat<T> scores(const Mat<T>& candidates) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "magnitude loss candidates");
    const Mat<T> a = magnitudes(candidates);
    Mat<T> s(a.cols(), y_.cols());
    s.noalias() = T(-2) * a.transpose() * y_;
    s.colwise() += a.colwise().squaredNorm().transpose();
    s.rowwise() += y_.colwise().squaredNorm();
    return s.cwiseMax(T(0));
  }

 private:
  Vec<T> evaluate(const Mat<T>& x, Mat<T>* grad) const {
    require_shape(x, op_->input_size(), y_.cols(), "magnitude loss input x");
    auto u = op_->apply(x);
    using U = typename decltype(u)::Scalar;
    Vec<T> loss(x.cols());
    for (Eigen::Index j = 0; j < u.cols(); ++j) {
      T acc = 0;
      for (Eigen::Index i = 0; i < u.rows(); ++i) {
        const U v = u(i, j);
        const T a = detail::abs_value(v);
        const T res = a - y_(i, j);
        acc += res * res;
        u(i, j) = a > T(0) ? v * (res / a) : U(0);
      }
      loss(j) = acc;
    }
    if (grad) *grad = T(2) * detail::real_adjoint(*op_, u);
    return loss;
  }

  const Op* op_;
  Mat<T> y_;
};

/// The fused DFT path. For real x the spectrum is Hermitian, |X_k| = |X_{−k}|, so
/// Σ_k (|X_k| − y_k)² = Σ_k (|X_k| − ȳ_k)² + Σ_k (y_k − ȳ_k)² with ȳ_k = (y_k + y_{−k})/2.
/// The loss is then evaluated on the half spectrum of one r2c transform (bins that stand
/// for a conjugate pair weighted 2) and the gradient 2·s·DFTᴴ r comes from one c2r
/// transform of the Hermitian residual r: one FFT pair per image, no full spectrum.
template <class T>
class MagnitudeLoss<Fourier2d<T>> {
 public:
  using Op = Fourier2d<T>;
  using C = std::complex<T>;

  MagnitudeLoss(const Op& op, Mat<T> y) : op_(&op), y_(std::move(y)) {
    require_shape(y_, op.output_size(), y_.cols(), "magnitude loss measurements y");
    require_magnitudes(y_, "magnitude loss measurements y");
    const int h = op.height(), w = op.width(), wh = w / 2 + 1;
    ybar_.resize(op.half_size(), y_.cols());
    offset_.resize(y_.cols());
    weight_.resize(op.half_size());
    for (int k1 = 0; k1 < h; ++k1)
      for (int k2 = 0; k2 < wh; ++k2) weight_(k1 * wh + k2) = (k2 == 0 || (w % 2 == 0 && k2 == w / 2)) ? T(1) : T(2);
    for (Eigen::Index j = 0; j < y_.cols(); ++j) {
      T off = 0;
      for (int k1 = 0; k1 < h; ++k1) {
        for (int k2 = 0; k2 < w; ++k2) {
          const T a = y_(k1 * w + k2, j), b = y_(((h - k1) % h) * w + (w - k2) % w, j);
          const T mean = (a + b) / 2;
          off += (a - mean) * (a - mean);
          if (k2 < wh) ybar_(k1 * wh + k2, j) = mean;
        }
      }
      offset_(j) = off;
    }
  }

  const Mat<T>& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }
  /// Half-spectrum symmetrised magnitudes ȳ and the bin weights (1 or 2).
  const Mat<T>& half_measurements() const { return ybar_; }
  const Vec<T>& half_weights() const { return weight_; }
  /// Σ_k (y_k − ȳ_k)² per column: zero for magnitudes of a real image.
  const Vec<T>& asymmetry() const { return offset_; }

  Vec<T> value(const Mat<T>& x) const { return evaluate(x, nullptr); }
  Vec<T> value_and_gradient(const Mat<T>& x, Mat<T>& grad) const { return evaluate(x, &grad); }
  Mat<T> magnitudes(const Mat<T>& x) const { return op_->apply(x).cwiseAbs(); }

  /// What scores() costs for p candidates: p r2c transforms and the product on the half spectrum.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * op_->flops() + Flops{2.0 * double(p) * double(op_->half_size()) * double(ybar_.cols()), 0.0};
  }

  /// S(c, j) = ‖|F x_c| − y_j‖² for all candidates against all measurements, from one r2c
  /// per candidate and one matrix product on the weighted half spectrum.
  Mat<T> scores(const Mat<T>& candidates) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "magnitude loss candidates");
    // per-thread workspaces: MII calls this chunk after chunk with the same shapes
    thread_local CMat<T> X;
    thread_local Mat<T> a, wa;
    op_->forward_half(candidates, X);
    a = (X.real().array().square() + X.imag().array().square()).sqrt().matrix() *
        op_->scale();  // not hypot: vectorises
    wa = a.array().colwise() * weight_.array();
    Mat<T> s(a.cols(), y_.cols());
    s.noalias() = T(-2) * wa.transpose() * ybar_;
    s.colwise() += (wa.array() * a.array()).colwise().sum().matrix().transpose();
    const Vec<T> yy =
        (ybar_.array().square().colwise() * weight_.array()).colwise().sum().transpose() + offset_.array();
    s.rowwise() += yy.transpose();
    return s.cwiseMax(T(0));
  }

 private:
  /// Loss terms of one column's half spectrum p (interleaved re, im; hn bins), overwriting p
  /// with the residual r_k = 2·s·(|s X_k| − ȳ_k)·s X_k/|s X_k| (0 where X_k = 0). Written as a
  /// fixed number of independent lanes so that the compiler vectorises the loop (sqrt and
  /// division included, -fno-math-errno): a single running sum would be a serial reduction,
  /// which GCC does not reassociate. The division never sees a zero (a blend picks 1 first) and
  /// the factor is masked to 0 afterwards, so no lane can trap or produce inf/NaN.
  static T residual_column(T* p, const T* yb, const T* wt, Eigen::Index hn, T s) {
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

  /// One parallel region for the whole evaluation: each thread takes a range of columns and
  /// runs r2c, the residual pass and c2r on blocks of columns small enough (≤ 256 KiB of
  /// spectrum) to stay in cache between the three, with the operator's cached batched plans.
  /// Same transforms and the same arithmetic as forward_half + pass + backward_half.
  Vec<T> evaluate(const Mat<T>& x, Mat<T>* grad) const {
    require_shape(x, op_->input_size(), y_.cols(), "magnitude loss input x");
    thread_local CMat<T> spec;
    CMat<T>& X = spec;
    const Eigen::Index n = op_->input_size(), hn = op_->half_size(), cols = x.cols();
    X.resize(hn, cols);
    if (grad) grad->resize(n, cols);
    const T s = op_->scale();
    Vec<T> loss(cols);
    const bool unaligned = grad ? op_->needs_unaligned_plans({x.data(), X.data(), grad->data()})
                                : op_->needs_unaligned_plans({x.data(), X.data()});
    const Eigen::Index block = std::clamp<Eigen::Index>(Eigen::Index(262144 / (std::size_t(hn) * sizeof(C))), 1, 64);
    const auto& plans = op_->plans();
    for_column_chunks(
        cols,
        [&](Eigen::Index j0, Eigen::Index nb) {
          for (Eigen::Index b0 = j0; b0 < j0 + nb; b0 += block) {
            const int m = int(std::min(block, j0 + nb - b0));
            plans.get(fftw::Kind::r2c, m, unaligned).execute(x.col(b0).data(), X.col(b0).data());
            for (Eigen::Index j = b0; j < b0 + m; ++j)
              loss(j) =
                  residual_column(reinterpret_cast<T*>(X.col(j).data()), ybar_.col(j).data(), weight_.data(), hn, s) +
                  offset_(j);
            if (grad) plans.get(fftw::Kind::c2r, m, unaligned).execute(X.col(b0).data(), grad->col(b0).data());
          }
        },
        16);
    return loss;
  }

  const Op* op_;
  Mat<T> y_, ybar_;
  Vec<T> weight_, offset_;
};

/// Deduction guide helper: make_loss(op, y).
template <MeasurementOperator Op>
MagnitudeLoss<Op> make_loss(const Op& op, Mat<typename Op::scalar> y) {
  return MagnitudeLoss<Op>(op, std::move(y));
}

/// Measurements y = |Ax| of a batch of signals.
template <MeasurementOperator Op>
Mat<typename Op::scalar> measure(const Op& op, const Mat<typename Op::scalar>& x) {
  return op.apply(x).cwiseAbs();
}

}  // namespace prilo

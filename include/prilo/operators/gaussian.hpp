// Dense Gaussian measurement operators: real A ~ N(0, 1/m) and complex with Re, Im ~ N(0, 1/(2m)).
#pragma once

#include "../core.hpp"
#include "../flops.hpp"
#include "../random.hpp"

namespace prilo {

/// y = |A x| with A ∈ ℝ^{m×n}, A_ij ~ N(0, 1/m) i.i.d., drawn from a seeded Rng so that a
/// seed reproduces the operator. apply and adjoint are single GEMMs over the batch (two, one
/// for each part, for complex batches: so that it composes with complex-valued operators on
/// either side, compose(ComplexMask, GaussianReal) or compose(GaussianReal, ComplexMask)).
template <class T>
class GaussianReal {
 public:
  using scalar = T;
  GaussianReal(Eigen::Index m, Eigen::Index n, std::uint64_t seed) {
    if (m <= 0 || n <= 0) detail::fail("GaussianReal: sizes must be positive, got m=", m, " n=", n);
    Rng rng(seed);
    a_ = rng.normal_matrix<T>(m, n, 1.0 / std::sqrt(double(m)));
  }
  explicit GaussianReal(Mat<T> a) : a_(std::move(a)) {
    if (a_.size() == 0) detail::fail("GaussianReal: the matrix is empty (", a_.rows(), "x", a_.cols(), ")");
    require_finite(a_, "GaussianReal matrix");
  }

  Eigen::Index input_size() const { return a_.cols(); }
  Eigen::Index output_size() const { return a_.rows(); }
  const Mat<T>& matrix() const { return a_; }

  Mat<T> apply(const Mat<T>& x) const {
    require_shape(x, input_size(), x.cols(), "GaussianReal::apply input");
    Mat<T> y(output_size(), x.cols());
    y.noalias() = a_ * x;
    return y;
  }
  CMat<T> apply(const CMat<T>& x) const {
    require_shape(x, input_size(), x.cols(), "GaussianReal::apply input");
    return parts(a_, x);
  }
  /// Other expressions (blocks, Maps, columns, products, Arrays), real or complex.
  template <class D>
  auto apply(const Eigen::DenseBase<D>& x) const {
    return apply(as_batch<T>(x));
  }
  Mat<T> adjoint(const Mat<T>& u) const {
    require_shape(u, output_size(), u.cols(), "GaussianReal::adjoint input");
    Mat<T> x(input_size(), u.cols());
    x.noalias() = a_.transpose() * u;
    return x;
  }
  CMat<T> adjoint(const CMat<T>& u) const {
    require_shape(u, output_size(), u.cols(), "GaussianReal::adjoint input");
    return parts(a_.transpose(), u);
  }
  template <class D>
  auto adjoint(const Eigen::DenseBase<D>& u) const {
    return adjoint(as_batch<T>(u));
  }

 private:
  // M·u for a real matrix and a complex batch: one real product for each part
  template <class M>
  static CMat<T> parts(const M& m, const CMat<T>& u) {
    Mat<T> re(m.rows(), u.cols()), im(m.rows(), u.cols());
    re.noalias() = m * u.real();
    im.noalias() = m * u.imag();
    CMat<T> out(m.rows(), u.cols());
    out.real() = re;
    out.imag() = im;
    return out;
  }

  Mat<T> a_;
};

/// y = |A x| with A = A_re + i·A_im ∈ ℂ^{m×n}, entries of A_re and A_im ~ N(0, 1/(2m)), so
/// E|A_ij|² = 1/m. Stored as two real matrices: a real batch needs two real GEMMs, and the
/// real part of the adjoint (all the magnitude gradient needs) two more.
template <class T>
class GaussianComplex {
 public:
  using scalar = T;
  GaussianComplex(Eigen::Index m, Eigen::Index n, std::uint64_t seed) {
    if (m <= 0 || n <= 0) detail::fail("GaussianComplex: sizes must be positive, got m=", m, " n=", n);
    Rng rng(seed);
    const double s = 1.0 / std::sqrt(2.0 * double(m));
    re_ = rng.normal_matrix<T>(m, n, s);
    im_ = rng.normal_matrix<T>(m, n, s);
  }

  Eigen::Index input_size() const { return re_.cols(); }
  Eigen::Index output_size() const { return re_.rows(); }
  CMat<T> matrix() const {
    return re_.template cast<std::complex<T>>() + std::complex<T>(0, 1) * im_.template cast<std::complex<T>>();
  }
  const Mat<T>& real_part() const { return re_; }
  /// One application to a real column: two real products (real and imaginary parts).
  Flops flops() const { return {4.0 * double(output_size()) * double(input_size()), 0.0}; }
  const Mat<T>& imag_part() const { return im_; }

  CMat<T> apply(const Mat<T>& x) const {
    require_shape(x, input_size(), x.cols(), "GaussianComplex::apply input");
    Mat<T> r(output_size(), x.cols()), i(output_size(), x.cols());
    r.noalias() = re_ * x;
    i.noalias() = im_ * x;
    CMat<T> y(output_size(), x.cols());
    y.real() = r;
    y.imag() = i;
    return y;
  }
  CMat<T> apply(const CMat<T>& x) const {
    require_shape(x, input_size(), x.cols(), "GaussianComplex::apply input");
    return matrix() * x;
  }
  /// Other expressions (blocks, Maps, columns, products, Arrays), real or complex.
  template <class D>
  CMat<T> apply(const Eigen::DenseBase<D>& x) const {
    return apply(as_batch<T>(x));
  }
  CMat<T> adjoint(const CMat<T>& u) const {
    require_shape(u, output_size(), u.cols(), "GaussianComplex::adjoint input");
    const Mat<T> ur = u.real(), ui = u.imag();
    CMat<T> x(input_size(), u.cols());
    x.real() = re_.transpose() * ur + im_.transpose() * ui;
    x.imag() = re_.transpose() * ui - im_.transpose() * ur;
    return x;
  }
  /// Re(Aᴴ u) = A_reᵀ Re u + A_imᵀ Im u: the part of the adjoint a real-image gradient uses.
  Mat<T> adjoint_real(const CMat<T>& u) const {
    require_shape(u, output_size(), u.cols(), "GaussianComplex::adjoint_real input");
    const Mat<T> ur = u.real(), ui = u.imag();
    Mat<T> x(input_size(), u.cols());
    x.noalias() = re_.transpose() * ur;
    x.noalias() += im_.transpose() * ui;
    return x;
  }

 private:
  Mat<T> re_, im_;
};

}  // namespace prilo

// Compile-time composition of measurement operators, with zero padding and complex masks.
#pragma once

#include <utility>

#include "../core.hpp"
#include "../flops.hpp"

namespace prilo {

/// The composition Outer ∘ Inner: apply(x) = Outer(Inner(x)), adjoint(u) = Innerᴴ(Outerᴴ(u)).
/// Both operators are stored by value and called directly: no virtual dispatch. apply and
/// adjoint take only the batches the chain accepts (constrained, so that MeasurementOperator
/// answers false for a chain that does not fit instead of failing inside it).
template <class Outer, class Inner>
class Composed {
 public:
  static_assert(std::is_same_v<typename Outer::scalar, typename Inner::scalar>,
                "compose: both operators must have the same scalar type (float or double)");
  using scalar = typename Inner::scalar;
  Composed(Outer outer, Inner inner) : outer_(std::move(outer)), inner_(std::move(inner)) {
    if (outer_.input_size() != inner_.output_size())
      detail::fail("compose: the outer operator takes ", outer_.input_size(), " values but the inner one produces ",
                   inner_.output_size());
  }
  Eigen::Index input_size() const { return inner_.input_size(); }
  Eigen::Index output_size() const { return outer_.output_size(); }
  const Outer& outer() const { return outer_; }
  const Inner& inner() const { return inner_; }
  /// Both parts' costs (the FLOP account).
  Flops flops() const { return apply_flops(outer_) + apply_flops(inner_); }

  template <class X>
  requires requires(const Outer& o, const Inner& i, const X& x) { o.apply(i.apply(x)); }
  auto apply(const X& x) const { return outer_.apply(inner_.apply(x)); }
  template <class U>
  requires requires(const Outer& o, const Inner& i, const U& u) { i.adjoint(o.adjoint(u)); }
  auto adjoint(const U& u) const { return inner_.adjoint(outer_.adjoint(u)); }

 private:
  Outer outer_;
  Inner inner_;
};

/// compose(a, b) = a ∘ b (b is applied first).
template <class Outer, class Inner>
Composed<Outer, Inner> compose(Outer outer, Inner inner) {
  return {std::move(outer), std::move(inner)};
}

/// Zero padding of an h×w image (row-major) into the top-left corner of an H×W canvas:
/// the usual oversampling in front of a DFT. Its adjoint is the crop.
template <class T>
class ZeroPad {
 public:
  using scalar = T;
  ZeroPad(int h, int w, int padded_h, int padded_w) : h_(h), w_(w), ph_(padded_h), pw_(padded_w) {
    if (h <= 0 || w <= 0 || padded_h < h || padded_w < w)
      detail::fail("ZeroPad: need 0 < h <= padded_h and 0 < w <= padded_w, got ", h, "x", w, " into ", padded_h, "x",
                   padded_w);
  }
  Eigen::Index input_size() const { return Eigen::Index(h_) * w_; }
  Eigen::Index output_size() const { return Eigen::Index(ph_) * pw_; }
  Flops flops() const { return {}; }  ///< a copy, no arithmetic

  /// Any batch (a matrix, a block, a Map, an expression) of real or complex values.
  template <class D>
  Mat<typename D::Scalar> apply(const Eigen::MatrixBase<D>& x) const {
    using S = typename D::Scalar;
    require_shape(x, input_size(), x.cols(), "ZeroPad::apply input");
    Mat<S> y = Mat<S>::Zero(output_size(), x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (int r = 0; r < h_; ++r)
        y.col(j).segment(Eigen::Index(r) * pw_, w_) = x.col(j).segment(Eigen::Index(r) * w_, w_);
    return y;
  }
  template <class D>
  Mat<typename D::Scalar> adjoint(const Eigen::MatrixBase<D>& u) const {
    using S = typename D::Scalar;
    require_shape(u, output_size(), u.cols(), "ZeroPad::adjoint input");
    Mat<S> x(input_size(), u.cols());
    for (Eigen::Index j = 0; j < u.cols(); ++j)
      for (int r = 0; r < h_; ++r)
        x.col(j).segment(Eigen::Index(r) * w_, w_) = u.col(j).segment(Eigen::Index(r) * pw_, w_);
    return x;
  }

 private:
  int h_, w_, ph_, pw_;
};

/// Element-wise multiplication by a fixed complex mask (a coded-diffraction pattern):
/// (Mx)_i = m_i x_i, (Mᴴu)_i = conj(m_i) u_i.
template <class T>
class ComplexMask {
 public:
  using scalar = T;
  explicit ComplexMask(Vec<std::complex<T>> mask) : mask_(std::move(mask)) {
    if (mask_.size() == 0) detail::fail("ComplexMask: the mask is empty");
    require_finite(mask_, "ComplexMask mask");
  }
  /// A random unit-modulus (phase-only) mask from a seed.
  static ComplexMask random_phase(Eigen::Index n, std::uint64_t seed);

  Eigen::Index input_size() const { return mask_.size(); }
  Eigen::Index output_size() const { return mask_.size(); }
  const Vec<std::complex<T>>& mask() const { return mask_; }
  Flops flops() const { return {}; }  ///< element-wise, not counted

  /// Any batch of real or complex values of the mask's precision.
  template <class D>
  CMat<T> apply(const Eigen::MatrixBase<D>& x) const {
    using S = typename D::Scalar;
    static_assert(std::is_same_v<S, T> || std::is_same_v<S, std::complex<T>>,
                  "ComplexMask::apply: the batch's scalar must be the mask's precision, real or complex");
    require_shape(x, input_size(), x.cols(), "ComplexMask::apply input");
    return (x.template cast<std::complex<T>>().array().colwise() * mask_.array()).matrix();
  }
  CMat<T> adjoint(const CMat<T>& u) const {
    require_shape(u, output_size(), u.cols(), "ComplexMask::adjoint input");
    return (u.array().colwise() * mask_.conjugate().array()).matrix();
  }

 private:
  Vec<std::complex<T>> mask_;
};

}  // namespace prilo

#include "../random.hpp"

template <class T>
prilo::ComplexMask<T> prilo::ComplexMask<T>::random_phase(Eigen::Index n, std::uint64_t seed) {
  if (n < 1) detail::fail("ComplexMask::random_phase: the mask size must be >= 1, got ", n);
  Rng rng(seed);
  Vec<std::complex<T>> m(n);
  for (Eigen::Index i = 0; i < n; ++i) m(i) = std::polar(T(1), T(2 * std::numbers::pi * rng.uniform()));
  return ComplexMask(std::move(m));
}

// Public test helpers: finite-difference gradient checks and adjoint (dot-product) tests.
#pragma once

#include <functional>

#include "../core.hpp"
#include "../random.hpp"

namespace prilo::testing {

struct GradientCheck {
  double max_abs_error = 0;  ///< max |analytic − numeric| over the probed directions
  double max_rel_error = 0;  ///< the same relative to max(|analytic|, |numeric|, 1e-12 scale)
  bool ok = false;
};

/// Compares the directional derivatives ⟨∇f(x), d⟩ of an analytic gradient with central
/// differences (f(x + εd) − f(x − εd)) / 2ε along `directions` random unit directions.
/// f returns a scalar; grad fills the gradient (same shape as x).
template <class T>
GradientCheck check_gradient(const std::function<T(const Mat<T>&)>& f, const std::function<void(const Mat<T>&, Mat<T>&)>& grad,
                             const Mat<T>& x, Rng& rng, int directions = 8, T eps = T(1e-6), double tolerance = 1e-6) {
  Mat<T> g;
  grad(x, g);
  require_shape(g, x.rows(), x.cols(), "check_gradient: gradient");
  GradientCheck r;
  for (int t = 0; t < directions; ++t) {
    Mat<T> d = rng.normal_matrix<T>(x.rows(), x.cols());
    d /= d.norm();
    const double analytic = double((g.array() * d.array()).sum());
    const double numeric = (double(f(x + eps * d)) - double(f(x - eps * d))) / (2.0 * double(eps));
    const double err = std::abs(analytic - numeric);
    const double scale = std::max({std::abs(analytic), std::abs(numeric), double(g.norm()) * 1e-3, 1e-12});
    r.max_abs_error = std::max(r.max_abs_error, err);
    r.max_rel_error = std::max(r.max_rel_error, err / scale);
  }
  r.ok = r.max_rel_error <= tolerance;
  return r;
}

/// Dot-product test of an adjoint: returns |⟨Ax, u⟩ − ⟨x, Aᴴu⟩| / (‖Ax‖‖u‖) for random x, u
/// (complex inner product ⟨a, b⟩ = Σ conj(a) b). For real x this holds exactly, whether the
/// adjoint returns real or complex values.
template <class Op>
double check_adjoint(const Op& op, Eigen::Index batch, Rng& rng) {
  using T = typename Op::scalar;
  const Mat<T> x = rng.normal_matrix<T>(op.input_size(), batch);
  const auto ax = op.apply(x);
  using U = typename std::decay_t<decltype(ax)>::Scalar;
  Mat<U> u(ax.rows(), ax.cols());
  for (Eigen::Index i = 0; i < u.size(); ++i) {
    if constexpr (is_complex_v<U>) u.data()[i] = U(T(rng.normal()), T(rng.normal()));
    else u.data()[i] = U(rng.normal());
  }
  const auto ahu = op.adjoint(u);
  std::complex<double> lhs = 0, rhs = 0;
  for (Eigen::Index i = 0; i < ax.size(); ++i)
    lhs += std::conj(std::complex<double>(ax.data()[i])) * std::complex<double>(u.data()[i]);
  for (Eigen::Index i = 0; i < x.size(); ++i) rhs += double(x.data()[i]) * std::complex<double>(ahu.data()[i]);
  return std::abs(lhs - rhs) / (double(ax.norm()) * double(u.norm()) + 1e-300);
}

}  // namespace prilo::testing

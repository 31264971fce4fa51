// Public test helpers: finite-difference gradient checks and adjoint (dot-product) tests,
// and conformance checkers that a user runs on his own generators, operators and projections.
#pragma once

#include <algorithm>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include "../concepts/generator.hpp"
#include "../concepts/measurement_operator.hpp"
#include "../concepts/projection.hpp"
#include "../core.hpp"
#include "../operators/magnitude_loss.hpp"
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
GradientCheck check_gradient(const std::function<T(const Mat<T>&)>& f,
                             const std::function<void(const Mat<T>&, Mat<T>&)>& grad, const Mat<T>& x, Rng& rng,
                             int directions = 8, T eps = T(1e-6), double tolerance = 1e-6) {
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
    if constexpr (is_complex_v<U>)
      u.data()[i] = U(T(rng.normal()), T(rng.normal()));
    else
      u.data()[i] = U(rng.normal());
  }
  const auto ahu = op.adjoint(u);
  std::complex<double> lhs = 0, rhs = 0;
  for (Eigen::Index i = 0; i < ax.size(); ++i)
    lhs += std::conj(std::complex<double>(ax.data()[i])) * std::complex<double>(u.data()[i]);
  for (Eigen::Index i = 0; i < x.size(); ++i) rhs += double(x.data()[i]) * std::complex<double>(ahu.data()[i]);
  return std::abs(lhs - rhs) / (double(ax.norm()) * double(u.norm()) + 1e-300);
}

/// Outcome of a conformance check: ok, the worst relative error seen, and what failed.
struct Conformance {
  bool ok = true;
  double worst = 0;
  std::string failures;  ///< one line per failed property, empty when ok

  void expect(bool cond, double err, const std::string& what) {
    worst = std::max(worst, err);
    if (!cond) {
      ok = false;
      failures += what + "\n";
    }
  }
};

/// A generator's contract, checked in double precision (use T = double): for every pair of
/// split points 0 ≤ i < j ≤ depth, (1) the sub-range forward composes, G_{j}^{k}(G_{i+1}^{j}(z_i))
/// = G_{i+1}^{k}(z_i); (2) the traced forward returns the same output; (3) vjp_input matches
/// central differences of ⟨c, G_{i+1}^{j}(z_i)⟩ along random directions; (4) vjp_weights
/// returns the same input cotangent; (5) where the generator has vjp_input(tr, gy, gx), it
/// writes into a reused buffer what vjp_input returns. Inputs z_i are images of random latents (z_0 ~ N(0, I)).
template <Generator G>
Conformance check_generator(G& gen, Eigen::Index batch, Rng& rng, double tolerance = 1e-6) {
  using T = typename G::scalar;
  Conformance r;
  const int k = gen.depth();
  for (int i = 0; i < k; ++i) {
    const Mat<T> zi = gen.forward(0, i, rng.normal_matrix<T>(gen.dim(0), batch));
    for (int j = i + 1; j <= k; ++j) {
      std::ostringstream at;
      at << "split " << i << "→" << j << ": ";
      const Mat<T> out = gen.forward(i, j, zi);
      const Mat<T> whole = gen.forward_from(i, zi), rest = gen.forward_from(j, out);
      const double comp = double((whole - rest).norm()) / (double(whole.norm()) + 1e-300);
      r.expect(comp <= tolerance, comp, at.str() + "forward(i, j) then forward_from(j) differs from forward_from(i)");
      typename G::trace_type tr;
      gen.forward(i, j, zi, tr);
      const double traced = double((tr.output() - out).norm()) / (double(out.norm()) + 1e-300);
      r.expect(traced <= tolerance, traced, at.str() + "the traced forward differs from the plain one");
      const Mat<T> c = rng.normal_matrix<T>(out.rows(), out.cols());
      auto f = [&](const Mat<T>& z) { return T((gen.forward(i, j, z).array() * c.array()).sum()); };
      auto g = [&](const Mat<T>& z, Mat<T>& out_g) {
        typename G::trace_type t;
        gen.forward(i, j, z, t);
        out_g = gen.vjp_input(t, c);
      };
      const auto gc = check_gradient<T>(f, g, zi, rng, 6, T(1e-6), tolerance);
      r.expect(gc.ok, gc.max_rel_error,
               at.str() + "vjp_input disagrees with finite differences (" + std::to_string(gc.max_rel_error) + ")");
      const Mat<T> vi = gen.vjp_input(tr, c), vw = gen.vjp_weights(tr, c);
      const double same = double((vi - vw).norm()) / (double(vi.norm()) + 1e-300);
      r.expect(same <= tolerance, same, at.str() + "vjp_weights returns another input cotangent than vjp_input");
      if constexpr (requires(Mat<T> & o) { gen.vjp_input(tr, c, o); }) {
        // (5) the in-place form into a buffer of another shape, then into its own (as a
        // solver reuses it step after step), writes what the returning form returns
        Mat<T> into = Mat<T>::Constant(vi.rows() + 1, 2, std::numeric_limits<T>::quiet_NaN());
        gen.vjp_input(tr, c, into);
        gen.vjp_input(tr, c, into);
        const bool equal = into.rows() == vi.rows() && into.cols() == vi.cols() && into == vi;
        r.expect(equal, equal ? 0.0 : 1.0, at.str() + "vjp_input into a reused buffer differs from vjp_input");
      }
    }
  }
  return r;
}

/// A measurement operator's contract (T = double): the adjoint passes the dot-product test,
/// and the magnitude loss's gradient built on it matches central differences at random x.
template <MeasurementOperator Op>
Conformance check_operator(const Op& op, Eigen::Index batch, Rng& rng, double tolerance = 1e-6) {
  using T = typename Op::scalar;
  Conformance r;
  const double adj = check_adjoint(op, batch, rng);
  r.expect(adj <= tolerance, adj, "adjoint fails the dot-product test (" + std::to_string(adj) + ")");
  const Mat<T> x = rng.normal_matrix<T>(op.input_size(), batch);
  // measurements of another image, so that the loss and its gradient are not zero
  const MagnitudeLoss<Op> loss(op, measure(op, Mat<T>(rng.normal_matrix<T>(op.input_size(), batch))));
  auto f = [&](const Mat<T>& v) { return T(loss.value(v).sum()); };
  auto g = [&](const Mat<T>& v, Mat<T>& out) { loss.value_and_gradient(v, out); };
  // a step of 1e-5: the central difference's rounding error (about ε_mach·|loss|/step) stays well
  // under the tolerance for losses of a few thousand, and its truncation error (step²) too, the
  // loss being smooth away from zero magnitudes
  const auto gc = check_gradient<T>(f, g, x, rng, 6, T(1e-5), tolerance * 10);
  r.expect(
      gc.ok, gc.max_rel_error,
      "the magnitude loss's gradient disagrees with finite differences (" + std::to_string(gc.max_rel_error) + ")");
  return r;
}

/// A projection policy's contract on n×batch batches around random centres: P(x) is in the
/// set (P(P(x)) = P(x)), points of the set are left unchanged, the variational inequality
/// ⟨x − P(x), q − P(x)⟩ ≤ 0 holds for points q = P(w) of the set, and P is non-expansive.
template <class T, ProjectionPolicy<T> P>
Conformance check_projection(const P& proj, Eigen::Index n, Eigen::Index batch, Rng& rng, double tolerance = 1e-9) {
  Conformance r;
  const Mat<T> centre = rng.normal_matrix<T>(n, batch);
  for (double scale : {0.1, 1.0, 10.0}) {
    const Mat<T> x = centre + T(scale) * rng.normal_matrix<T>(n, batch);
    Mat<T> px = x;
    proj.project(px, centre);
    Mat<T> ppx = px;
    proj.project(ppx, centre);
    const double idem = double((ppx - px).norm()) / (double(px.norm()) + 1e-300);
    r.expect(idem <= tolerance, idem, "P(P(x)) differs from P(x) at scale " + std::to_string(scale));
    for (int t = 0; t < 4; ++t) {
      Mat<T> q = centre + T(scale) * rng.normal_matrix<T>(n, batch);
      const Mat<T> w = q;
      proj.project(q, centre);
      for (Eigen::Index j = 0; j < batch; ++j) {
        const double vi = double((x.col(j) - px.col(j)).dot(q.col(j) - px.col(j)));
        const double sc = double((x.col(j) - px.col(j)).norm() * (q.col(j) - px.col(j)).norm()) + 1e-300;
        r.expect(vi / sc <= tolerance * 1e3, std::max(0.0, vi / sc),
                 "variational inequality <x - P(x), q - P(x)> <= 0 fails (" + std::to_string(vi / sc) + ")");
        const double ne = double((px.col(j) - q.col(j)).norm()) - double((x.col(j) - w.col(j)).norm());
        r.expect(ne <= tolerance * (1 + double((x.col(j) - w.col(j)).norm())), std::max(0.0, ne),
                 "P is expansive (" + std::to_string(ne) + ")");
      }
    }
  }
  return r;
}

}  // namespace prilo::testing

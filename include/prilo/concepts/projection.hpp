// The ProjectionPolicy concept (constraint sets for the latent code) and the checks every policy shares.
#pragma once

#include "../core.hpp"

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>

namespace prilo {

/// A projection policy maps every column x_j of a batch to its Euclidean projection onto a
/// closed convex set C(c_j) placed around the matching column c_j of a centre matrix:
///
///     x_j  <-  P_{C(c_j)}(x_j) = argmin_{p in C(c_j)} ||p - x_j||_2 .
///
/// Semantic contract (not checkable by the compiler, but relied on by the solvers and tested):
///  * `centre` is either n x m (one centre per column of the n x m batch `x`) or n x 1, in which
///    case that single column is broadcast to every column of `x`.  Any other shape throws
///    `invalid_input` naming both shapes, for every policy (even one that ignores the centre's
///    values), so switching policies never changes which calls are valid.
///  * A column already inside its set (by the policy's own rounded distance) is left
///    bit-for-bit unchanged. A projected column is inside only up to rounding: the balls'
///    computed distance of P(x) can exceed r by a few units of the last place of the sum
///    (relative 1e-5 for float, 1e-14 for double at n = 1000, measured), so P(P(x)) may differ
///    from P(x) in the last bits; solvers and tests compare with a tolerance.
///  * Parameters that make the set meaningless (negative or NaN radius, lo > hi, ...) throw
///    `invalid_input` naming the parameter and the problem.
template <class P, class T>
concept ProjectionPolicy =
    // Projections are Euclidean projections in R^n: the scalar is a real floating-point type.
    std::floating_point<T> &&
    // Policies are small parameter structs held by value inside solvers.
    std::copy_constructible<P> && requires(const P& p, Eigen::Ref<Mat<T>> x, const Eigen::Ref<const Mat<T>>& centre) {
  // Projects each column of x in place around the matching (or the single, broadcast)
  // column of centre. Callable on a const policy: projecting has no hidden state.
  { p.project(x, centre) } -> std::same_as<void>;
};

namespace detail {

/// Throws unless `centre` is rows(x) x cols(x) or rows(x) x 1 (broadcast).
template <class DX, class DC>
void require_centre_shape(const DX& x, const DC& centre, const char* who) {
  const bool rows_ok = centre.rows() == x.rows();
  const bool cols_ok = centre.cols() == x.cols() || centre.cols() == 1;
  if (!rows_ok || !cols_ok)
    fail(who, ": shape mismatch: x is ", x.rows(), "x", x.cols(), " but centre is ", centre.rows(), "x", centre.cols(),
         " (expected ", x.rows(), "x", x.cols(), " or ", x.rows(), "x1 to broadcast)");
}

/// Index of the centre column that goes with column j of x (0 when the centre is broadcast).
template <class DC>
Eigen::Index centre_column(const DC& centre, Eigen::Index j) {
  return centre.cols() == 1 ? Eigen::Index{0} : j;
}

/// Throws unless r is a valid ball radius: not NaN and r >= 0 (+infinity is allowed: no constraint).
template <class T>
void require_radius(T r, const char* who) {
  if (std::isnan(r)) fail(who, ": radius is NaN (was it set?)");
  if (r < T(0)) fail(who, ": radius must be >= 0, got ", r);
}

/// The error for column j of a ball's batch whose distance to its centre is not finite: NaN or
/// infinite values in x or in the centre, or (both finite) a distance beyond T's range.
template <class T>
[[noreturn]] void fail_nonfinite_column(const char* who, Eigen::Index j, const T* xj, const T* cj, Eigen::Index n) {
  const auto finite = [n](const T* p) { return std::all_of(p, p + n, [](T v) { return std::isfinite(v); }); };
  if (!finite(xj)) fail(who, ": column ", j, " of x contains NaN or infinite values");
  if (!finite(cj)) fail(who, ": column ", j, " of the centre contains NaN or infinite values");
  fail(who, ": column ", j, " of x and its centre are finite but too far apart: their distance overflows (beyond ",
       std::numeric_limits<T>::max(), ")");
}

}  // namespace detail
}  // namespace prilo

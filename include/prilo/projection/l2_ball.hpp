// Euclidean projection onto the l2 ball around each centre column (closed form, overflow-safe norm).
#pragma once

#include "../concepts/projection.hpp"
#include "../core.hpp"

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>

namespace prilo {

/// Projection onto the l2 ball of radius r around each centre column c_j:
///
///     x_j  <-  x_j                                  if ||x_j - c_j||_2 <= r   (bit-for-bit),
///     x_j  <-  c_j + r (x_j - c_j) / ||x_j - c_j||_2   otherwise.
///
/// The norm is computed with a power-of-two rescaling, so neither overflow nor underflow of the
/// squares changes the inside/outside decision. r = 0 sets x_j = c_j; r = +infinity is a no-op.
/// Usage: `L2Ball<double>{.radius = 5}`. The radius defaults to NaN (throws if never set).
template <std::floating_point T>
struct L2Ball {
  T radius = std::numeric_limits<T>::quiet_NaN();

  void project(Eigen::Ref<Mat<T>> x, const Eigen::Ref<const Mat<T>>& centre) const {
    detail::require_radius(radius, "L2Ball");
    detail::require_centre_shape(x, centre, "L2Ball");
    const Eigen::Index n = x.rows();
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      T* xj = x.col(j).data();
      const T* cj = centre.col(detail::centre_column(centre, j)).data();
      // Pass 1: m = max_i |x_i - c_i| (also detects NaN / infinity).
      T m = T(0);
      bool finite = true;
      for (Eigen::Index i = 0; i < n; ++i) {
        const T d = std::abs(xj[i] - cj[i]);
        finite = finite && std::isfinite(d);
        m = std::max(m, d);
      }
      if (!finite) detail::fail_nonfinite_column("L2Ball", j, xj, cj, n);
      if (m == T(0)) continue;  // x_j == c_j: inside every ball
      // Pass 2: ||d||_2 = 2^e * ||d / 2^e||_2 with 2^e ~ m (exact scaling).
      const int e = std::ilogb(m);
      T ss = T(0);
      for (Eigen::Index i = 0; i < n; ++i) {
        const T d = std::scalbn(xj[i] - cj[i], -e);
        ss += d * d;
      }
      const T dist = std::scalbn(std::sqrt(ss), e);
      if (dist <= radius) continue;  // inside: untouched
      if (radius == T(0)) {
        std::copy(cj, cj + n, xj);
        continue;
      }
      const T s = radius / dist;
      for (Eigen::Index i = 0; i < n; ++i) xj[i] = cj[i] + (xj[i] - cj[i]) * s;
    }
  }
};

}  // namespace prilo

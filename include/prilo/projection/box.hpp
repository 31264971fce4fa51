// Projection onto a box [lo, hi]^n (element-wise clamp); the centre's values are not used.
#pragma once

#include "../concepts/projection.hpp"
#include "../core.hpp"

#include <cmath>
#include <concepts>
#include <limits>

namespace prilo {

/// Projection onto the box { p : lo <= p_i <= hi }, i.e. the element-wise clamp
///
///     x_i  <-  min(max(x_i, lo), hi).
///
/// The box is absolute: the centre argument's values are ignored, but its shape is still checked
/// like every policy's (n x m or n x 1), so policies stay interchangeable. Entries already inside
/// are untouched bit-for-bit; NaN entries stay NaN. Usage: `Box<float>{.lo = 0, .hi = 1}`;
/// an omitted bound is unbounded (+-infinity). lo > hi or a NaN bound throws invalid_input.
template <std::floating_point T>
struct Box {
  T lo = -std::numeric_limits<T>::infinity();
  T hi = std::numeric_limits<T>::infinity();

  void project(Eigen::Ref<Mat<T>> x, const Eigen::Ref<const Mat<T>>& centre) const {
    if (std::isnan(lo) || std::isnan(hi)) detail::fail("Box: bound is NaN (lo = ", lo, ", hi = ", hi, ")");
    if (lo > hi) detail::fail("Box: empty box, lo = ", lo, " > hi = ", hi);
    // no finite value lies in [+inf, hi] or [lo, -inf]: every entry would become ±inf
    if (lo == std::numeric_limits<T>::infinity() || hi == -std::numeric_limits<T>::infinity())
      detail::fail("Box: the box holds no finite value (lo = ", lo, ", hi = ", hi, ")");
    detail::require_centre_shape(x, centre, "Box");
    const Eigen::Index n = x.rows();
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      T* xj = x.col(j).data();
      for (Eigen::Index i = 0; i < n; ++i) {
        const T v = xj[i];
        xj[i] = v < lo ? lo : (v > hi ? hi : v);
      }
    }
  }
};

}  // namespace prilo

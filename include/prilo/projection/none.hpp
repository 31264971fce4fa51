// The identity projection (unconstrained latent code), for any floating-point type.
#pragma once

#include "../concepts/projection.hpp"
#include "../core.hpp"

namespace prilo {

/// No constraint: C = R^n, so P_C(x) = x and x is never touched. The centre's shape is still
/// checked like every policy's (n x m or n x 1), so policies stay interchangeable.
/// Satisfies ProjectionPolicy<NoProjection, T> for every floating-point T.
struct NoProjection {
  template <class X, class C>
  void project(X&& x, const C& centre) const {
    detail::require_centre_shape(x, centre, "NoProjection");
  }
};

}  // namespace prilo

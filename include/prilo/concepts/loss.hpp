// Concept of a per-column loss f(x) = ‖|A x_j| − y_j‖² that the latent solvers minimise.
#pragma once

#include <concepts>

#include "../core.hpp"

namespace prilo {

/// The scalar of a batch type: Eigen's M::Scalar, or M::scalar (device matrices).
template <class M>
struct batch_scalar {
  using type = typename M::scalar;
};
template <class M>
requires requires {
  typename M::Scalar;
}
struct batch_scalar<M> {
  using type = typename M::Scalar;
};
template <class M>
using batch_scalar_t = typename batch_scalar<M>::type;

/// A Loss evaluates one value per column of a batch of images x (matrix type M, on the
/// loss's executor) against its measurements, with the gradient. Every member the latent
/// solvers use is listed here.
template <class L, class M>
concept Loss = requires(const L& l, const M& x, M& grad) {
  // the number of measurement columns, i.e. the batch it expects;
  { l.batch() } -> std::convertible_to<Eigen::Index>;
  // the measurement operator, whose output_size() m normalises the magnitude error (/ m);
  { l.op().output_size() } -> std::convertible_to<Eigen::Index>;
  // the per-column values, on the host (B numbers: what keep-best and the reports need);
  { l.value(x) } -> std::convertible_to<Vec<batch_scalar_t<M>>>;
  // the same and the gradient with respect to x (same shape as x) on the loss's executor.
  { l.value_and_gradient(x, grad) } -> std::convertible_to<Vec<batch_scalar_t<M>>>;
};

}  // namespace prilo

// Concept of a linear measurement operator A acting on batches of real images.
#pragma once

#include <concepts>

#include "../core.hpp"

namespace prilo {

/// A MeasurementOperator maps a batch of real signals (one per column) to measurements
/// Ax, real or complex, and back through its adjoint.
template <class Op>
concept MeasurementOperator = requires(const Op& op, const Mat<typename Op::scalar>& x) {
  // the real scalar type of the signals (float or double);
  typename Op::scalar;
  // n, the length of one signal (a column of x);
  { op.input_size() } -> std::convertible_to<Eigen::Index>;
  // m, the number of measurements of one signal;
  { op.output_size() } -> std::convertible_to<Eigen::Index>;
  // Ax for a batch: an m×B matrix of real or complex values;
  op.apply(x);
  // Aᴴu for a batch of measurements of the type apply returns: an n×B matrix whose real
  // part is what a gradient with respect to a real signal needs.
  op.adjoint(op.apply(x));
};

/// The type of Ax for operator Op.
template <class Op>
using measurement_t =
    std::decay_t<decltype(std::declval<const Op&>().apply(std::declval<const Mat<typename Op::scalar>&>()))>;

}  // namespace prilo

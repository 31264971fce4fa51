// The tensors every layer with a weight matrix and a bias vector keeps (Dense, Conv2d,
// ConvTranspose2d), on any executor: storage, gradients, host copies and the parameter list,
// written once.
#pragma once

#include <type_traits>
#include <utility>

#include "../core.hpp"
#include "../exec/executor.hpp"
#include "parameter.hpp"

namespace prilo::nn {

/// A weight matrix (matrix_t<Exec, T>), a bias (vector_t<Exec, T>: prilo::Vec on the CPU, an
/// n×1 device matrix on the GPU), their gradients and the executor they live on. The layers
/// derive from it and keep their geometry and shape checks: they store host tensors through
/// store() after checking them against their own shapes, and reset_gradients() when the
/// gradients start again.
template <class T, class Exec>
class WeightAndBias {
 public:
  using matrix_type = matrix_t<Exec, T>;
  using vector_type = vector_t<Exec, T>;

  /// The weights and the bias as host matrices (a copy; the bias as a column).
  Mat<T> host_weight() const { return to_host(ex_, w_); }
  Mat<T> host_bias() const {
    if constexpr (std::is_same_v<vector_type, Vec<T>>)
      return Mat<T>(b_);
    else
      return to_host(ex_, b_);
  }

  const Exec& executor() const { return ex_; }
  /// Work of later calls runs on ex (e.g. a generator's stream); the tensors stay where they are.
  void set_executor(Exec ex) { ex_ = std::move(ex); }

  matrix_type& weight() { return w_; }
  vector_type& bias() { return b_; }
  const matrix_type& weight() const { return w_; }
  const vector_type& bias() const { return b_; }
  const matrix_type& grad_weight() const { return gw_; }
  const vector_type& grad_bias() const { return gb_; }

  /// The weight and bias with their gradients, named "weight" and "bias" (host executors).
  ParamList<T> parameters() requires std::is_same_v<matrix_type, Mat<T>> { return weight_and_bias(w_, gw_, b_, gb_); }
  void zero_grad() {
    set_zero(ex_, gw_);
    set_zero(ex_, gb_);
  }

 protected:
  WeightAndBias() = default;
  explicit WeightAndBias(Exec ex) : ex_(std::move(ex)) {}

  /// Takes host weights and bias (already checked against the layer's shapes) onto the executor.
  void store(const Mat<T>& w, const Mat<T>& b) {
    w_ = from_host(ex_, w);
    b_ = from_host(ex_, b);
  }
  /// Zero gradients of the stored tensors' shapes.
  void reset_gradients() {
    gw_ = zeros<T>(ex_, w_.rows(), w_.cols());
    gb_ = zeros<T>(ex_, b_.rows(), 1);
  }

  matrix_type w_;
  vector_type b_;
  matrix_type gw_;
  vector_type gb_;
  [[no_unique_address]] Exec ex_;
};

}  // namespace prilo::nn

// The tensors every layer with a weight matrix and a bias vector keeps (Dense, Conv2d,
// ConvTranspose2d), on any executor: storage, gradients, host copies and the parameter list,
// written once.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../exec/packed_weights.hpp"
#include "parameter.hpp"

namespace prilo::detail {
/// Where a layer keeps its packed weights (prilo/exec/packed_weights.hpp): a shared, immutable
/// snapshot for float layers on the CPU when the build has oneDNN (PRILO_HAVE_ONEDNN), else
/// nothing.
struct NoPackedWeights {
  void reset() {}
  explicit operator bool() const { return false; }
};
template <class T, class Exec>
struct PackedSlot {
  using type = NoPackedWeights;
};
#if defined(PRILO_HAVE_ONEDNN)
template <>
struct PackedSlot<float, CpuExecutor> {
  using type = std::shared_ptr<const onednn::PackedWeights>;
};
#endif
/// Whether layers of scalar T on Exec can pack their weights in this build.
template <class T, class Exec>
inline constexpr bool can_pack_weights = !std::is_same_v<typename PackedSlot<T, Exec>::type, NoPackedWeights>;
}  // namespace prilo::detail

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

  /// Mutable access: drops the packed weights (a layer's pack_weights), which could go stale.
  matrix_type& weight() {
    packed_.reset();
    return w_;
  }
  vector_type& bias() { return b_; }
  const matrix_type& weight() const { return w_; }
  const vector_type& bias() const { return b_; }
  const matrix_type& grad_weight() const { return gw_; }
  const vector_type& grad_bias() const { return gb_; }

  /// The weight and bias with their gradients, named "weight" and "bias" (host executors).
  /// (Drops the packed weights, as weight() does.)
  ParamList<T> parameters() requires std::is_same_v<matrix_type, Mat<T>> {
    packed_.reset();
    return weight_and_bias(w_, gw_, b_, gb_);
  }
  void zero_grad() {
    set_zero(ex_, gw_);
    set_zero(ex_, gb_);
  }

 protected:
  WeightAndBias() = default;
  explicit WeightAndBias(Exec ex) : ex_(std::move(ex)) {}

  /// Takes host weights and bias (already checked against the layer's shapes) onto the executor.
  void store(const Mat<T>& w, const Mat<T>& b) {
    packed_.reset();
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
  /// A snapshot of w_ packed for its products (set by the layer's pack_weights), or empty.
  [[no_unique_address]] typename detail::PackedSlot<T, Exec>::type packed_;
};

}  // namespace prilo::nn

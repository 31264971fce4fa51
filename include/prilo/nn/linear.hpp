// Fully connected layers: Linear (y = Wx + b) and Dense (y = act(Wx + b), fused), written once
// over the executor's customisation points.
#pragma once

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../random.hpp"
#include "activations.hpp"
#include "parameter.hpp"
#include "weight_and_bias.hpp"

namespace prilo::nn {

/// y = act(W x + b) for a batch x (one sample per column), W ∈ ℝ^{out×in}, on executor Exec
/// (the CPU by default; gpu::Dense is the CUDA instantiation). With Act = Identity this is a
/// plain Linear layer. Backprop, with g = gy ⊙ act'(y): ∂/∂x = Wᵀ g, ∂/∂W = g xᵀ,
/// ∂/∂b = Σ_columns g. Initialisation as PyTorch's nn.Linear: W and b ~ U(−1/√in, 1/√in),
/// drawn on the host in the same order for every executor.
///
/// The bodies below are the only ones: they call the executor's customisation points
/// (gemm, bias_activation, activation_cotangent, add_row_sums, set_zero; prilo/exec/kernels.hpp
/// and backend/cuda/executor.cuh), so the backend supplies kernels and nothing else. Forward is
/// one GEMM and one bias + activation call; the input VJP one activation pass (none for the
/// identity) and one GEMM. The weights are matrix_t<Exec, T>, the bias vector_t<Exec, T>
/// (prilo::Vec on the CPU, an out×1 device matrix on the GPU).
template <class T, class Act = Identity, class Exec = CpuExecutor>
class Dense : public WeightAndBias<T, Exec> {
  using Base = WeightAndBias<T, Exec>;
  using Base::b_;
  using Base::ex_;
  using Base::gb_;
  using Base::gw_;
  using Base::packed_;
  using Base::w_;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Dense: float or double");
  static_assert(Executor<Exec>, "Dense: Exec must model prilo::Executor");

 public:
  using scalar = T;
  using activation = Act;
  using executor_type = Exec;
  using matrix_type = matrix_t<Exec, T>;
  using vector_type = vector_t<Exec, T>;

  Dense() = default;
  Dense(Eigen::Index in, Eigen::Index out, Rng& rng, Exec ex = {}) : Base(std::move(ex)) {
    if (in <= 0 || out <= 0) detail::fail("Dense: sizes must be positive, got in=", in, " out=", out);
    Mat<T> w(out, in);
    Vec<T> b(out);
    const double bound = 1.0 / std::sqrt(double(in));
    for (Eigen::Index j = 0; j < in; ++j)
      for (Eigen::Index i = 0; i < out; ++i) w(i, j) = T((2 * rng.uniform() - 1) * bound);
    for (Eigen::Index i = 0; i < out; ++i) b(i) = T((2 * rng.uniform() - 1) * bound);
    assign(w, b);
  }
  /// The same layer on executor ex, copied through the host from a layer on another executor
  /// (e.g. gpu::Dense from nn::Dense); gradients start at zero.
  template <class From>
  requires(!std::is_same_v<From, Exec>) explicit Dense(const Dense<T, Act, From>& other, Exec ex = {})
      : Base(std::move(ex)) {
    upload(other);
  }

  /// Copies the weights and bias of a layer on another executor (through the host) and
  /// clears the gradients: nn::Dense → gpu::Dense.
  template <class From>
  void upload(const Dense<T, Act, From>& other) {
    assign(other.host_weight(), other.host_bias());
  }
  /// Copies the weights and bias into a layer of the same shape on another executor (its
  /// gradients untouched): gpu::Dense → nn::Dense.
  template <class To>
  void download(Dense<T, Act, To>& other) const {
    require_shape(other.weight(), w_.rows(), w_.cols(), "Dense::download weight");
    other.assign_weights(this->host_weight(), this->host_bias());
  }

  Eigen::Index input_size() const { return w_.cols(); }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    require_constructed();
    if (in >= 0 && in != w_.cols()) detail::fail("Dense: expects ", w_.cols(), " inputs, got ", in);
    return w_.rows();
  }

  /// Packs a snapshot of the weights for the products of forward, forward_into and the input
  /// VJPs (oneDNN's matmul with the weights in its own layout, prilo/exec/packed_weights.hpp):
  /// a BLAS call repacks them for every product, and in a reconstruction they never change.
  /// The same products up to rounding (the sums run in another order). weight(), parameters()
  /// and the assignments drop the snapshot; changes made later through references taken
  /// earlier are not seen, so pack again after them (OnHost packs a copy of the decoder per
  /// run_method). Exists where the build can (float on the CPU with PRILO_HAVE_ONEDNN:
  /// detail::can_pack_weights).
  void pack_weights() requires detail::can_pack_weights<T, Exec> {
    // spelled through the slot's type, so that builds without oneDNN never name the class
    using Slot = typename detail::PackedSlot<T, Exec>::type;
    packed_ = std::make_shared<typename Slot::element_type>(w_);
  }
  bool weights_packed() const { return bool(packed_); }

  void forward(const matrix_type& x, matrix_type& y) const {
    require_constructed();
    require_shape(x, w_.cols(), x.cols(), "Dense layer input");
    weight_product(false, x, y);
    bias_activation(ex_, Act{}, y, b_);
  }

  /// On the CPU: the forward pass into a view of y's shape (out × x.cols()), x read through a
  /// view: blocks of rows of larger matrices, as nn::Carry passes its stacked columns' feature
  /// rows, with no copies. The same products and passes as forward(x, y), so the same values.
  void forward_into(const Eigen::Ref<const Mat<T>>& x,
                    Eigen::Ref<Mat<T>> y) const requires std::is_same_v<Exec, CpuExecutor> {
    require_constructed();
    require_shape(x, w_.cols(), x.cols(), "Dense layer input");
    require_shape(y, w_.rows(), x.cols(), "Dense layer output");
    weight_product_into(false, x, y);
    bias_activation(ex_, Act{}, y, b_);
  }
  /// On the CPU: backward_input's gx = Wᵀ (gy ⊙ act'(y)) into a view of x's shape, x, y and gy
  /// read through views (forward_into's counterpart; g formed in `work` unless the identity).
  void backward_input_into(const Eigen::Ref<const Mat<T>>&, const Eigen::Ref<const Mat<T>>& y,
                           const Eigen::Ref<const Mat<T>>& gy, Eigen::Ref<Mat<T>> gx,
                           Mat<T>& work) const requires std::is_same_v<Exec, CpuExecutor> {
    require_constructed();
    require_shape(gy, w_.rows(), gy.cols(), "Dense output cotangent gy");
    require_shape(gx, w_.cols(), gy.cols(), "Dense input cotangent gx");
    weight_product_into(true, cotangent(y, gy, work), gx);
  }

  /// On the CPU: backward's VJPs with x, y and gy read through views and ∂/∂x written into a view
  /// of x's shape (if gx); mutating, one thread at a time.
  void backward_into(const Eigen::Ref<const Mat<T>>& x, const Eigen::Ref<const Mat<T>>& y,
                     const Eigen::Ref<const Mat<T>>& gy, Eigen::Ref<Mat<T>>* gx,
                     bool accumulate_weights) requires std::is_same_v<Exec, CpuExecutor> {
    require_constructed();
    require_shape(x, w_.cols(), x.cols(), "Dense layer input");
    require_shape(gy, w_.rows(), x.cols(), "Dense output cotangent gy");
    if (gx) require_shape(*gx, w_.cols(), x.cols(), "Dense input cotangent gx");
    const auto& g = cotangent(y, gy, work_);
    if (accumulate_weights) {
      gw_.noalias() += g * x.transpose();
      gb_ += g.rowwise().sum();
    }
    if (gx) weight_product_into(true, g, *gx);
  }

  /// Given input x, output y and output cotangent gy: writes ∂/∂x into *gx (if gx) and, if
  /// accumulate_weights, adds ∂/∂W and ∂/∂b to the gradient buffers. Mutating, so one thread
  /// at a time: g = gy ⊙ act'(y) is formed in a member scratch matrix.
  void backward(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx,
                bool accumulate_weights) {
    require_constructed();
    require_shape(x, w_.cols(), x.cols(), "Dense layer input");
    require_shape(gy, w_.rows(), x.cols(), "Dense output cotangent gy");
    const matrix_type& g = cotangent(y, gy, work_);
    if (accumulate_weights) {
      gemm(ex_, false, true, T(1), g, x, T(1), gw_);
      add_row_sums(ex_, g, gb_);
    }
    if (gx) weight_product(true, g, *gx);
  }
  /// The input VJP alone, gx = Wᵀ (gy ⊙ act'(y)): const and thread-safe, g formed in the
  /// caller's `work` (kept between calls: no allocation once it has the batch's shape).
  void backward_input(const matrix_type&, const matrix_type& y, const matrix_type& gy, matrix_type& gx,
                      matrix_type& work) const {
    require_constructed();
    require_shape(gy, w_.rows(), gy.cols(), "Dense output cotangent gy");
    weight_product(true, cotangent(y, gy, work), gx);
  }

 private:
  template <class, class, class>
  friend class Dense;

  /// Fails unless the layer has weights: a default-constructed one has none, and its passes
  /// returned empty outputs. Once per call.
  void require_constructed() const {
    if (w_.cols() == 0) detail::fail("Dense: the layer was default-constructed (no weights)");
  }

  /// Takes host weights (out×in) and bias (out×1).
  void assign_weights(const Mat<T>& w, const Mat<T>& b) {
    require_shape(b, w.rows(), 1, "Dense bias");
    this->store(w, b);
  }
  /// The same, with zero gradients of the same shapes.
  void assign(const Mat<T>& w, const Mat<T>& b) {
    assign_weights(w, b);
    this->reset_gradients();
  }
  /// y = W x (transposed: Wᵀ x), y resized: with the packed weights if there are, else the
  /// executor's GEMM.
  void weight_product(bool transposed, const matrix_type& x, matrix_type& y) const {
    if constexpr (detail::can_pack_weights<T, Exec>) {
      if (packed_) {  // packing implies the CPU, whose _into form takes it
        y.resize(transposed ? w_.cols() : w_.rows(), x.cols());
        weight_product_into(transposed, x, y);
        return;
      }
    }
    gemm(ex_, transposed, false, T(1), w_, x, T(0), y);
  }
  /// The same into a view of y's shape, x a view (the CPU's _into members).
  void weight_product_into(bool transposed, const Eigen::Ref<const Mat<T>>& x, Eigen::Ref<Mat<T>> y) const {
    if constexpr (detail::can_pack_weights<T, Exec>) {
      if (packed_) {
        packed_->product(transposed, x, y);
        return;
      }
    }
    if (transposed)
      y.noalias() = w_.transpose() * x;
    else
      y.noalias() = w_ * x;
  }
  /// g = gy ⊙ act'(y), written into work (gy itself for the identity: no pass); y and gy
  /// whole matrices or, on the CPU, views (the _into members).
  template <class M>
  const auto& cotangent([[maybe_unused]] const M& y, const M& gy, [[maybe_unused]] matrix_type& work) const {
    if constexpr (std::is_same_v<Act, Identity>) {
      return gy;
    } else {
      require_shape(y, gy.rows(), gy.cols(), "Dense output y");
      activation_cotangent(ex_, Act{}, y, gy, work);
      return work;
    }
  }

  matrix_type work_;  // scratch of backward()
};

/// y = W x + b.
template <class T>
using Linear = Dense<T, Identity>;

}  // namespace prilo::nn

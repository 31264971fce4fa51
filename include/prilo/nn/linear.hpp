// Fully connected layers: Linear (y = Wx + b) and Dense (y = act(Wx + b), fused).
#pragma once

#include <string>

#include "../core.hpp"
#include "../random.hpp"
#include "activations.hpp"
#include "parameter.hpp"

namespace prilo::nn {

/// y = act(W x + b) for a batch x (one sample per column), W ∈ ℝ^{out×in}. With
/// Act = Identity this is a plain Linear layer. Backprop, with g = gy ⊙ act'(y):
/// ∂/∂x = Wᵀ g, ∂/∂W = g xᵀ, ∂/∂b = Σ_columns g. Initialisation as PyTorch's nn.Linear:
/// W and b ~ U(−1/√in, 1/√in).
template <class T, class Act = Identity>
class Dense {
 public:
  using scalar = T;
  using activation = Act;

  Dense() = default;
  Dense(Eigen::Index in, Eigen::Index out, Rng& rng)
      : w_(out, in), b_(out), gw_(Mat<T>::Zero(out, in)), gb_(Vec<T>::Zero(out)) {
    if (in <= 0 || out <= 0) detail::fail("Dense: sizes must be positive, got in=", in, " out=", out);
    const double bound = 1.0 / std::sqrt(double(in));
    for (Eigen::Index j = 0; j < in; ++j)
      for (Eigen::Index i = 0; i < out; ++i) w_(i, j) = T((2 * rng.uniform() - 1) * bound);
    for (Eigen::Index i = 0; i < out; ++i) b_(i) = T((2 * rng.uniform() - 1) * bound);
  }

  Eigen::Index input_size() const { return w_.cols(); }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != w_.cols()) detail::fail("Dense: expects ", w_.cols(), " inputs, got ", in);
    return w_.rows();
  }
  Mat<T>& weight() { return w_; }
  Vec<T>& bias() { return b_; }
  const Mat<T>& weight() const { return w_; }
  const Vec<T>& bias() const { return b_; }
  const Mat<T>& grad_weight() const { return gw_; }
  const Vec<T>& grad_bias() const { return gb_; }

  void forward(const Mat<T>& x, Mat<T>& y) const {
    require_shape(x, w_.cols(), x.cols(), "Dense layer input");
    y.resize(w_.rows(), x.cols());
    y.noalias() = w_ * x;
    if constexpr (std::is_same_v<Act, Sigmoid>) {
      // Eigen's exp is vectorised; a scalar std::exp loop costs ~20 % of the decoder forward
      y.colwise() += b_;
      y.array() = T(1) / (T(1) + (-y.array()).exp());
    } else if constexpr (std::is_same_v<Act, Tanh>) {
      y.colwise() += b_;
      y.array() = y.array().tanh();
    } else {
      const Eigen::Index rows = y.rows();
      for (Eigen::Index j = 0; j < y.cols(); ++j) {
        T* c = y.col(j).data();
        const T* b = b_.data();
        for (Eigen::Index i = 0; i < rows; ++i) c[i] = Act::value(c[i] + b[i]);
      }
    }
  }

  /// Given input x, output y and output cotangent gy: writes ∂/∂x into *gx (if gx) and, if
  /// accumulate_weights, adds ∂/∂W and ∂/∂b to the gradient buffers. Mutating, so one thread
  /// at a time: g = gy ⊙ act'(y) is formed in a member scratch matrix.
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool accumulate_weights) {
    const Mat<T>& g = activation_cotangent(y, gy, work_);
    if (accumulate_weights) {
      gw_.noalias() += g * x.transpose();
      gb_ += g.rowwise().sum();
    }
    if (gx) {
      gx->resize(w_.cols(), gy.cols());
      gx->noalias() = w_.transpose() * g;
    }
  }
  /// The input VJP alone, gx = Wᵀ (gy ⊙ act'(y)): const and thread-safe, g formed in the
  /// caller's `work` (kept between calls: no allocation once it has the batch's shape).
  void backward_input(const Mat<T>&, const Mat<T>& y, const Mat<T>& gy, Mat<T>& gx, Mat<T>& work) const {
    const Mat<T>& g = activation_cotangent(y, gy, work);
    gx.resize(w_.cols(), gy.cols());
    gx.noalias() = w_.transpose() * g;
  }

  ParamList<T> parameters() {
    ParamList<T> p;
    p.push_back({"weight", Eigen::Map<Mat<T>>(w_.data(), w_.rows(), w_.cols()),
                 Eigen::Map<Mat<T>>(gw_.data(), gw_.rows(), gw_.cols())});
    p.push_back({"bias", Eigen::Map<Mat<T>>(b_.data(), b_.rows(), 1), Eigen::Map<Mat<T>>(gb_.data(), gb_.rows(), 1)});
    return p;
  }
  void zero_grad() {
    gw_.setZero();
    gb_.setZero();
  }

 private:
  /// gy ⊙ act'(y), written into work (gy itself for the identity).
  const Mat<T>& activation_cotangent([[maybe_unused]] const Mat<T>& y, const Mat<T>& gy,
                                     [[maybe_unused]] Mat<T>& work) const {
    if constexpr (std::is_same_v<Act, Identity>) {
      return gy;
    } else {
      work.resize(gy.rows(), gy.cols());
      const Eigen::Index n = gy.size();
      const T* yd = y.data();
      const T* gd = gy.data();
      T* out = work.data();
      for (Eigen::Index i = 0; i < n; ++i) out[i] = gd[i] * Act::derivative_from_output(yd[i]);
      return work;
    }
  }

  Mat<T> w_;
  Vec<T> b_;
  Mat<T> gw_;
  Vec<T> gb_;
  Mat<T> work_;  // scratch of backward()
};

/// y = W x + b.
template <class T>
using Linear = Dense<T, Identity>;

}  // namespace prilo::nn

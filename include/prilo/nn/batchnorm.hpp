// Batch normalisation over feature maps (BatchNorm2d), with an explicit training/inference mode.
#pragma once

#include <cmath>
#include <string>

#include "../core.hpp"
#include "parameter.hpp"
#include "shape.hpp"

namespace prilo::nn {

/// Which statistics a batch-normalisation layer normalises with.
enum class NormMode {
  training,   ///< the batch's own per-channel mean and (biased) variance, back-propagated through
  inference,  ///< the running statistics: a fixed per-channel affine map y = a_c x + b_c
};

/// Per-channel batch normalisation of C feature maps of H×W pixels (the layout of
/// nn/shape.hpp), with PyTorch's BatchNorm2d semantics: for channel c, over the N = B·H·W
/// values of the batch's B samples,
///
///     y = γ_c (x − μ_c) / √(σ²_c + eps) + β_c,
///
/// γ "weight" (initially 1) and β "bias" (initially 0) trainable, eps = 1e-5. A layer over
/// Shape3{C, 1, 1} is BatchNorm1d (one value per channel and sample).
///
/// Modes. The Module contract wants a const, thread-safe forward, so the mode is an explicit
/// flag that the layer's owner sets (set_mode), never something forward switches:
///  * NormMode::training: μ_c and σ²_c are the batch's mean and biased variance, and both
///    VJPs differentiate through them (a sample's output depends on the whole batch). The
///    running statistics advance in the mutating backward when it accumulates weight
///    gradients, i.e. once per training step, as PyTorch's training forward does:
///    running ← (1 − momentum)·running + momentum·batch, momentum = 0.1, with the unbiased
///    variance N/(N − 1)·σ²_c. update_running_statistics(x) does the same on its own.
///  * NormMode::inference (the default, the form a trained generator is used in): μ_c and σ²_c
///    are the buffers "running_mean" (initially 0) and "running_var" (initially 1), so the
///    layer is the per-channel affine map y = a_c x + b_c, a_c = γ_c / √(var_c + eps),
///    b_c = β_c − a_c·mean_c (inference_scale(), inference_shift()): each sample on its own,
///    which reconstruction needs. Its backward leaves the running statistics alone.
template <class T>
class BatchNorm2d {
 public:
  using scalar = T;

  BatchNorm2d() = default;
  explicit BatchNorm2d(Shape3 shape, double momentum = 0.1, double eps = 1e-5)
      : shape_(shape), momentum_(momentum), eps_(eps) {
    require_positive(shape, "BatchNorm2d");
    if (!(momentum >= 0 && momentum <= 1)) detail::fail("BatchNorm2d: momentum must be in [0, 1], got ", momentum);
    // 1/√(var + eps) needs var + eps > 0 for a constant channel (var = 0), in T: a positive
    // eps that rounds to 0 in float gives 0·∞ = NaN there, and an infinite one (or one beyond
    // float's range) zeroes every output but the bias
    if (const T e = T(eps); !(e > 0 && std::isfinite(e)))
      detail::fail("BatchNorm2d: eps must be positive and finite in the layer's scalar type, got ", eps);
    const Eigen::Index c = shape.channels;
    gamma_ = Vec<T>::Ones(c);
    beta_ = Vec<T>::Zero(c);
    ggamma_ = Vec<T>::Zero(c);
    gbeta_ = Vec<T>::Zero(c);
    running_mean_ = Vec<T>::Zero(c);
    running_var_ = Vec<T>::Ones(c);
  }

  Shape3 input_shape() const { return shape_; }
  Shape3 output_shape() const { return shape_; }
  /// No products (prilo/flops.hpp counts matrix products): Sequential::flops adds 0 here, not
  /// the dense count it assumes for a module that does not say.
  double flops_per_sample() const { return 0; }
  Eigen::Index output_size(Eigen::Index in) const {
    if (in != shape_.size())
      detail::fail("BatchNorm2d: expects ", shape_.size(), " inputs (", shape_.channels, "x", shape_.height, "x",
                   shape_.width, "), got ", in);
    return in;
  }
  NormMode mode() const { return mode_; }
  void set_mode(NormMode m) { mode_ = m; }
  double momentum() const { return momentum_; }
  double eps() const { return eps_; }

  Vec<T>& weight() { return gamma_; }
  Vec<T>& bias() { return beta_; }
  const Vec<T>& weight() const { return gamma_; }
  const Vec<T>& bias() const { return beta_; }
  Vec<T>& running_mean() { return running_mean_; }
  Vec<T>& running_var() { return running_var_; }
  const Vec<T>& running_mean() const { return running_mean_; }
  const Vec<T>& running_var() const { return running_var_; }
  const Vec<T>& grad_weight() const { return ggamma_; }
  const Vec<T>& grad_bias() const { return gbeta_; }

  /// a_c = γ_c / √(running_var_c + eps): the inference form's per-channel scale.
  Vec<T> inference_scale() const {
    Vec<T> a(gamma_.size());
    for (Eigen::Index c = 0; c < a.size(); ++c) {
      check_running(c);
      a(c) = gamma_(c) / std::sqrt(running_var_(c) + T(eps_));
    }
    return a;
  }
  /// b_c = β_c − a_c·running_mean_c: the inference form's per-channel shift.
  Vec<T> inference_shift() const { return beta_ - inference_scale().cwiseProduct(running_mean_); }

  void forward(const Mat<T>& x, Mat<T>& y) const {
    check_input(x, "BatchNorm2d input");
    const Eigen::Index P = shape_.pixels();
    y.resize(x.rows(), x.cols());
    for (Eigen::Index c = 0; c < shape_.channels; ++c) {
      T mean, invstd;
      statistics(x, c, mean, invstd);
      const T a = gamma_(c) * invstd, b = beta_(c) - a * mean;
      y.middleRows(c * P, P).array() = a * x.middleRows(c * P, P).array() + b;
    }
  }

  /// gx = (∂y/∂x)ᵀ gy. In training mode, with x̂ the normalised input,
  /// gx = γ/√(σ² + eps) · (gy − mean(gy) − x̂·mean(gy ⊙ x̂)) per channel; in inference mode
  /// gx = a_c·gy. Const: the per-channel sums are formed in `work` (2×C).
  void backward_input(const Mat<T>& x, const Mat<T>&, const Mat<T>& gy, Mat<T>& gx, Mat<T>& work) const {
    check_input(x, "BatchNorm2d input");
    require_shape(gy, x.rows(), x.cols(), "BatchNorm2d output cotangent");
    channel_sums(x, gy, work);
    input_cotangent(x, gy, work, gx);
  }

  /// As backward_input into *gx (if gx); if accumulate_weights, adds ∂/∂γ = Σ gy ⊙ x̂ and
  /// ∂/∂β = Σ gy to the gradients and, in training mode, advances the running statistics
  /// with this batch (once per training step).
  void backward(const Mat<T>& x, const Mat<T>&, const Mat<T>& gy, Mat<T>* gx, bool accumulate_weights) {
    check_input(x, "BatchNorm2d input");
    require_shape(gy, x.rows(), x.cols(), "BatchNorm2d output cotangent");
    channel_sums(x, gy, work_);
    if (gx) input_cotangent(x, gy, work_, *gx);
    if (accumulate_weights) {
      gbeta_ += work_.row(0).transpose();
      ggamma_ += work_.row(1).transpose();
      if (mode_ == NormMode::training) update_running_statistics(x);
    }
  }

  /// running ← (1 − momentum)·running + momentum·(batch mean, unbiased batch variance).
  void update_running_statistics(const Mat<T>& x) {
    check_input(x, "BatchNorm2d input");
    const Eigen::Index P = shape_.pixels();
    const double n = double(P) * double(x.cols());
    if (n < 2) detail::fail("BatchNorm2d: running statistics need more than one value per channel, got ", n);
    for (Eigen::Index c = 0; c < shape_.channels; ++c) {
      const auto blk = x.middleRows(c * P, P).template cast<double>().array();
      const double mean = blk.sum() / n;
      const double var = (blk - mean).square().sum() / (n - 1);
      running_mean_(c) = T((1 - momentum_) * double(running_mean_(c)) + momentum_ * mean);
      running_var_(c) = T((1 - momentum_) * double(running_var_(c)) + momentum_ * var);
    }
  }

  ParamList<T> parameters() {
    ParamList<T> p;
    p.push_back({"weight", Eigen::Map<Mat<T>>(gamma_.data(), gamma_.size(), 1),
                 Eigen::Map<Mat<T>>(ggamma_.data(), ggamma_.size(), 1)});
    p.push_back({"bias", Eigen::Map<Mat<T>>(beta_.data(), beta_.size(), 1),
                 Eigen::Map<Mat<T>>(gbeta_.data(), gbeta_.size(), 1)});
    return p;
  }
  BufferList<T> buffers() {
    BufferList<T> b;
    b.push_back({"running_mean", Eigen::Map<Mat<T>>(running_mean_.data(), running_mean_.size(), 1)});
    b.push_back({"running_var", Eigen::Map<Mat<T>>(running_var_.data(), running_var_.size(), 1)});
    return b;
  }
  void zero_grad() {
    ggamma_.setZero();
    gbeta_.setZero();
  }

 private:
  void check_input(const Mat<T>& x, const char* what) const {
    if (shape_.size() == 0) detail::fail("BatchNorm2d: the layer was default-constructed (no shape)");
    require_shape(x, shape_.size(), x.cols(), what);
    if (mode_ == NormMode::training && shape_.pixels() * x.cols() < 2)
      detail::fail("BatchNorm2d: training mode needs more than one value per channel (", x.cols(), " samples of ",
                   shape_.pixels(), " pixels); use NormMode::inference for single values");
  }

  /// invalid_input when the running statistics of channel c are not finite or the variance is
  /// negative (set so, or read from a damaged weights file: every output of the channel would
  /// be NaN).
  void check_running(Eigen::Index c) const {
    if (!(running_var_(c) >= T(0) && std::isfinite(running_var_(c)) && std::isfinite(running_mean_(c))))
      detail::fail("BatchNorm2d: the running statistics of channel ", c, " are invalid (mean ", running_mean_(c),
                   ", variance ", running_var_(c), "; the variance must be finite and >= 0)");
  }
  /// Mean and 1/√(var + eps) that channel c is normalised with in the current mode.
  void statistics(const Mat<T>& x, Eigen::Index c, T& mean, T& invstd) const {
    if (mode_ == NormMode::inference) {
      mean = running_mean_(c);
      check_running(c);
      invstd = T(1) / std::sqrt(running_var_(c) + T(eps_));
      return;
    }
    const Eigen::Index P = shape_.pixels();
    const auto blk = x.middleRows(c * P, P).array();
    const T n = T(P * x.cols());
    mean = blk.sum() / n;
    const T var = (blk - mean).square().sum() / n;  // biased, as PyTorch normalises with
    invstd = T(1) / std::sqrt(var + T(eps_));
  }

  /// work (4×C): Σ gy, Σ gy ⊙ x̂, mean and 1/√(var + eps) of each channel.
  void channel_sums(const Mat<T>& x, const Mat<T>& gy, Mat<T>& work) const {
    const Eigen::Index P = shape_.pixels();
    work.resize(4, shape_.channels);
    for (Eigen::Index c = 0; c < shape_.channels; ++c) {
      T mean, invstd;
      statistics(x, c, mean, invstd);
      const auto g = gy.middleRows(c * P, P).array();
      work(0, c) = g.sum();
      work(1, c) = (g * (x.middleRows(c * P, P).array() - mean)).sum() * invstd;
      work(2, c) = mean;
      work(3, c) = invstd;
    }
  }

  void input_cotangent(const Mat<T>& x, const Mat<T>& gy, const Mat<T>& work, Mat<T>& gx) const {
    const Eigen::Index P = shape_.pixels();
    gx.resize(x.rows(), x.cols());
    const T n = T(P * x.cols());
    for (Eigen::Index c = 0; c < shape_.channels; ++c) {
      const T mean = work(2, c), invstd = work(3, c), a = gamma_(c) * invstd;
      auto out = gx.middleRows(c * P, P).array();
      if (mode_ == NormMode::inference) {
        out = a * gy.middleRows(c * P, P).array();
      } else {
        const T mg = work(0, c) / n, mgx = work(1, c) / n;
        out = a * (gy.middleRows(c * P, P).array() - mg - (x.middleRows(c * P, P).array() - mean) * (invstd * mgx));
      }
    }
  }

  Shape3 shape_;
  double momentum_ = 0.1, eps_ = 1e-5;
  NormMode mode_ = NormMode::inference;
  Vec<T> gamma_, beta_, ggamma_, gbeta_, running_mean_, running_var_;
  Mat<T> work_;  // scratch of backward()
};

}  // namespace prilo::nn

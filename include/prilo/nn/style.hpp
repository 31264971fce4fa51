// Style modules: generators that feed the latent z0 into every layer (the paper's StyleGAN
// runs, Tables 9/10), built from ordinary modules in an nn::Sequential.
#pragma once

#include <cmath>
#include <vector>

#include "../core.hpp"
#include "../random.hpp"
#include "activations.hpp"
#include "parameter.hpp"
#include "shape.hpp"

namespace prilo::nn {

/// A style generator carries z0 beside the features: between modules, one sample is the column
/// [h; z0] (the features h first, then the d rows of z0), so that a split point holds the two
/// tensors {z_i, z0} and PRILO optimises both, each in its own l1 ball
/// (PhaseOptions::radii, Sequential::blocks). Three modules build such a chain:
///   Duplicate (z0 → [z0; z0]), Carry<Inner> ([h; z0] → [Inner(h); z0]) and Modulate
///   ([u; z0] → [act(u ⊙ (1 + γ(z0)) + β(z0)); z0], per-channel scale and shift from an affine map
///   of z0: the feature-wise affine injection that plays the part of StyleGAN's modulation).
/// Their VJPs are exact; the cotangent of z0 collects every layer's contribution through the
/// carried rows.

/// z → [z; z]: the start of a style chain (the second copy is the carried z0).
template <class T>
class Duplicate {
 public:
  using scalar = T;
  Duplicate() = default;
  explicit Duplicate(Eigen::Index dim) : d_(dim) {
    if (dim <= 0) detail::fail("Duplicate: size must be positive, got ", dim);
  }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != d_) detail::fail("Duplicate: expects ", d_, " inputs, got ", in);
    return 2 * d_;
  }
  double flops_per_sample() const { return 0; }
  /// The state after this module: the features (a copy of z0) and the carried z0.
  std::vector<Eigen::Index> output_blocks() const { return {d_, d_}; }

  void forward(const Mat<T>& x, Mat<T>& y) const {
    require_shape(x, d_, x.cols(), "Duplicate input");
    y.resize(2 * d_, x.cols());
    y.topRows(d_) = x;
    y.bottomRows(d_) = x;
  }
  void backward_input(const Mat<T>&, const Mat<T>&, const Mat<T>& gy, Mat<T>& gx, Mat<T>&) const {
    require_shape(gy, 2 * d_, gy.cols(), "Duplicate output cotangent");
    gx = gy.topRows(d_) + gy.bottomRows(d_);
  }
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool) {
    Mat<T> work;
    if (gx) backward_input(x, y, gy, *gx, work);
  }
  ParamList<T> parameters() { return {}; }
  void zero_grad() {}

 private:
  Eigen::Index d_ = 0;
};

/// [h; z0] → [Inner(h); z0]: any module applied to the features, z0 carried unchanged (the
/// cotangent of z0 passes through). Inner is a Module (Dense, Conv2d, ConvTranspose2d, …).
/// The features are copied out of and into the stacked columns (one pass each way).
template <class Inner>
class Carry {
 public:
  using scalar = typename Inner::scalar;
  using T = scalar;
  Carry() = default;
  Carry(Inner inner, Eigen::Index style_dim) : inner_(std::move(inner)), d_(style_dim) {
    if (style_dim <= 0) detail::fail("Carry: the carried z0 must have positive size, got ", style_dim);
    in_ = inner_.input_size();
    out_ = inner_.output_size(in_);
  }
  Inner& inner() { return inner_; }
  const Inner& inner() const { return inner_; }
  Eigen::Index style_dim() const { return d_; }
  Eigen::Index input_size() const { return in_ + d_; }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != in_ + d_)
      detail::fail("Carry: expects ", in_, " feature rows and ", d_, " rows of z0, got ", in, " rows");
    return out_ + d_;
  }
  std::vector<Eigen::Index> output_blocks() const { return {out_, d_}; }
  /// The inner module's products (its flops_per_sample(), else the dense count).
  double flops_per_sample() const {
    if constexpr (requires { inner_.flops_per_sample(); })
      return double(inner_.flops_per_sample());
    else
      return 2.0 * double(in_) * double(out_);
  }

  void forward(const Mat<T>& x, Mat<T>& y) const {
    require_shape(x, in_ + d_, x.cols(), "Carry input [h; z0]");
    const Mat<T> h = x.topRows(in_);
    Mat<T> u;
    inner_.forward(h, u);
    y.resize(out_ + d_, x.cols());
    y.topRows(out_) = u;
    y.bottomRows(d_) = x.bottomRows(d_);
  }
  void backward_input(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>& gx, Mat<T>& work) const {
    require_shape(gy, out_ + d_, x.cols(), "Carry output cotangent");
    const Mat<T> h = x.topRows(in_), u = y.topRows(out_), gu = gy.topRows(out_);
    Mat<T> gh;
    inner_.backward_input(h, u, gu, gh, work);
    gx.resize(in_ + d_, x.cols());
    gx.topRows(in_) = gh;
    gx.bottomRows(d_) = gy.bottomRows(d_);
  }
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool accumulate_weights) {
    require_shape(gy, out_ + d_, x.cols(), "Carry output cotangent");
    const Mat<T> h = x.topRows(in_), u = y.topRows(out_), gu = gy.topRows(out_);
    Mat<T> gh;
    inner_.backward(h, u, gu, gx ? &gh : nullptr, accumulate_weights);
    if (gx) {
      gx->resize(in_ + d_, x.cols());
      gx->topRows(in_) = gh;
      gx->bottomRows(d_) = gy.bottomRows(d_);
    }
  }
  ParamList<T> parameters() { return inner_.parameters(); }
  BufferList<T> buffers() { return buffers_of(inner_); }
  void zero_grad() { inner_.zero_grad(); }

 private:
  Inner inner_;
  Eigen::Index d_ = 0, in_ = 0, out_ = 0;
};

/// [u; z0] → [act(u_c ⊙ (1 + γ_c(z0)) + β_c(z0)); z0] for the C channels of P pixels of u
/// (Shape3 layout: channel c is rows c·P … c·P + P − 1), with [γ; β] = W z0 + b, W ∈ ℝ^{2C×d}.
/// W starts as PyTorch's Linear (U(±1/√d)) and b at zero, so that every scale starts near 1.
/// With Carry = false the output is the modulated features alone (the generator's last layer:
/// the image). Backprop with g = gy ⊙ act'(y): ∂/∂u = g ⊙ (1 + γ), ∂/∂γ_c = Σ_p g u,
/// ∂/∂β_c = Σ_p g, ∂/∂z0 = Wᵀ[∂γ; ∂β] (+ the carried cotangent), ∂/∂W = [∂γ; ∂β] z0ᵀ.
template <class T, class Act = LeakyRelu, bool CarryStyle = true>
class Modulate {
 public:
  using scalar = T;
  using activation = Act;
  Modulate() = default;
  Modulate(Eigen::Index channels, Eigen::Index pixels, Eigen::Index style_dim, Rng& rng)
      : c_(channels),
        p_(pixels),
        d_(style_dim),
        w_(2 * channels, style_dim),
        b_(Vec<T>::Zero(2 * channels)),
        gw_(Mat<T>::Zero(2 * channels, style_dim)),
        gb_(Vec<T>::Zero(2 * channels)) {
    if (channels <= 0 || pixels <= 0 || style_dim <= 0)
      detail::fail("Modulate: sizes must be positive, got channels=", channels, " pixels=", pixels,
                   " style=", style_dim);
    const double bound = 1.0 / std::sqrt(double(style_dim));
    for (Eigen::Index j = 0; j < w_.cols(); ++j)
      for (Eigen::Index i = 0; i < w_.rows(); ++i) w_(i, j) = T((2 * rng.uniform() - 1) * bound);
  }
  Modulate(Shape3 features, Eigen::Index style_dim, Rng& rng)
      : Modulate(features.channels, features.pixels(), style_dim, rng) {}

  Eigen::Index features() const { return c_ * p_; }
  Eigen::Index input_size() const { return c_ * p_ + d_; }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != c_ * p_ + d_)
      detail::fail("Modulate: expects ", c_ * p_, " feature rows and ", d_, " rows of z0, got ", in, " rows");
    return c_ * p_ + (CarryStyle ? d_ : 0);
  }
  std::vector<Eigen::Index> output_blocks() const {
    if constexpr (CarryStyle)
      return {c_ * p_, d_};
    else
      return {c_ * p_};
  }
  Mat<T>& weight() { return w_; }
  Vec<T>& bias() { return b_; }
  /// The affine map of z0 (the element-wise modulation is not counted, as no activation is).
  double flops_per_sample() const { return 2.0 * double(w_.rows()) * double(d_); }

  void forward(const Mat<T>& x, Mat<T>& y) const {
    require_shape(x, c_ * p_ + d_, x.cols(), "Modulate input [u; z0]");
    const Mat<T> s = style(x);
    y.resize(output_size(), x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const T* u = x.col(j).data();
      T* out = y.col(j).data();
      for (Eigen::Index c = 0; c < c_; ++c) {
        const T scale = T(1) + s(c, j), shift = s(c_ + c, j);
        for (Eigen::Index q = c * p_; q < (c + 1) * p_; ++q) out[q] = Act::value(u[q] * scale + shift);
      }
    }
    if constexpr (CarryStyle) y.bottomRows(d_) = x.bottomRows(d_);
  }
  void backward_input(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>& gx, Mat<T>& work) const {
    vjp(x, y, gy, &gx, work);
  }
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool accumulate_weights) {
    Mat<T> gs;
    vjp(x, y, gy, gx, gs);
    if (accumulate_weights) {
      gw_.noalias() += gs * x.bottomRows(d_).transpose();
      gb_ += gs.rowwise().sum();
    }
  }
  ParamList<T> parameters() { return weight_and_bias(w_, gw_, b_, gb_); }
  void zero_grad() {
    gw_.setZero();
    gb_.setZero();
  }

 private:
  /// [γ; β] = W z0 + b for every column (2C × B).
  Mat<T> style(const Mat<T>& x) const {
    Mat<T> s(2 * c_, x.cols());
    s.noalias() = w_ * x.bottomRows(d_);
    s.colwise() += b_;
    return s;
  }
  /// gx (if given) and the style cotangent [∂γ; ∂β] into gs (2C × B).
  void vjp(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, Mat<T>& gs) const {
    require_shape(x, c_ * p_ + d_, x.cols(), "Modulate input [u; z0]");
    require_shape(gy, output_size(), x.cols(), "Modulate output cotangent");
    const Mat<T> s = style(x);
    gs.resize(2 * c_, x.cols());
    if (gx) gx->resize(c_ * p_ + d_, x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const T* u = x.col(j).data();
      const T* yo = y.col(j).data();
      const T* g = gy.col(j).data();
      T* out = gx ? gx->col(j).data() : nullptr;
      for (Eigen::Index c = 0; c < c_; ++c) {
        const T scale = T(1) + s(c, j);
        T gscale = 0, gshift = 0;
        for (Eigen::Index q = c * p_; q < (c + 1) * p_; ++q) {
          const T gv = g[q] * Act::derivative_from_output(yo[q]);
          gscale += gv * u[q];
          gshift += gv;
          if (out) out[q] = gv * scale;
        }
        gs(c, j) = gscale;
        gs(c_ + c, j) = gshift;
      }
    }
    if (gx) {
      auto gz = gx->bottomRows(d_);
      gz.noalias() = w_.transpose() * gs;
      if constexpr (CarryStyle) gz += gy.bottomRows(d_);
    }
  }

  Eigen::Index c_ = 0, p_ = 0, d_ = 0;
  Mat<T> w_;
  Vec<T> b_;
  Mat<T> gw_;
  Vec<T> gb_;
};

}  // namespace prilo::nn

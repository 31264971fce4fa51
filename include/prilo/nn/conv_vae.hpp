// A convolutional VAE whose decoder is DCGAN-like (issue 12): z0 → dense → feature maps →
// transposed convolutions → image.
#pragma once

#include <algorithm>
#include <array>
#include <utility>

#include "../core.hpp"
#include "../random.hpp"
#include "conv.hpp"
#include "linear.hpp"
#include "sequential.hpp"
#include "shape.hpp"
#include "vae.hpp"

namespace prilo::nn {

/// The sizes a ConvVae is built from: the image shape (C×H×W, H and W multiples of 4), the
/// latent size and the channels of the two feature-map levels (32 at H/2×W/2, 64 at H/4×W/4
/// for MNIST's 1×28×28: 14×14 and 7×7).
struct ConvVaeSizes {
  Shape3 image{1, 28, 28};
  Eigen::Index latent = 100;
  Eigen::Index channels1 = 32;  ///< feature maps at half resolution
  Eigen::Index channels2 = 64;  ///< feature maps at quarter resolution
  friend bool operator==(const ConvVaeSizes&, const ConvVaeSizes&) = default;
};

/// Encoder: Conv2d(C→c1, k4, s2, p1)+ReLU → Conv2d(c1→c2, k4, s2, p1)+ReLU → Linear(c2·H/4·W/4
/// → 2·latent) = (μ, log σ²). Decoder, the generator: Dense(latent → c2·H/4·W/4)+ReLU →
/// ConvTranspose2d(c2→c1, k4, s2, p1)+ReLU → ConvTranspose2d(c1→C, k4, s2, p1)+Sigmoid. The
/// flat vectors between dense and convolutional layers are feature maps already (the layout of
/// nn/shape.hpp), so no reshape module is needed and the decoder's split points are exactly
/// z0 (latent), z1 (c2 maps of H/4×W/4: 64·7·7 for MNIST), z2 (c1 maps of H/2×W/2: 32·14·14)
/// and x. No batch normalisation: the decoder is the same function in training and in
/// reconstruction, and has no split point inside a dense/conv + norm pair.
///
/// Loss per image, as nn::Vae's: the negative ELBO BCE(x, x̂) + KL(N(μ, σ²) ‖ N(0, I)),
/// x̂ clamped to [1e-6, 1 − 1e-6] in the BCE, reparameterised z = μ + σ ⊙ ε with the caller's ε.
template <class T>
class ConvVae {
 public:
  using scalar = T;
  using Encoder = Sequential<T, Conv2d<T, Relu>, Conv2d<T, Relu>, Linear<T>>;
  using Decoder = Sequential<T, Dense<T, Relu>, ConvTranspose2d<T, Relu>, ConvTranspose2d<T, Sigmoid>>;
  using Loss = typename Vae<T>::Loss;

  ConvVae() = default;
  ConvVae(const ConvVaeSizes& s, std::uint64_t seed) : sizes_(s) {
    require_positive(s.image, "ConvVae image");
    if (s.image.height % 4 != 0 || s.image.width % 4 != 0)
      detail::fail("ConvVae: image height and width must be multiples of 4, got ", s.image.height, "x", s.image.width);
    if (s.latent <= 0 || s.channels1 <= 0 || s.channels2 <= 0)
      detail::fail("ConvVae: latent and channel counts must be positive, got latent ", s.latent, ", channels ",
                   s.channels1, " and ", s.channels2);
    Rng rng(seed);
    const Shape3 half{s.channels1, s.image.height / 2, s.image.width / 2};
    const Shape3 quarter{s.channels2, s.image.height / 4, s.image.width / 4};
    Conv2d<T, Relu> e0(s.image, s.channels1, 4, 2, 1, rng);
    Conv2d<T, Relu> e1(half, s.channels2, 4, 2, 1, rng);
    encoder_ = Encoder(s.image.size(), std::move(e0), std::move(e1), Linear<T>(quarter.size(), 2 * s.latent, rng));
    Dense<T, Relu> d0(s.latent, quarter.size(), rng);
    ConvTranspose2d<T, Relu> d1(quarter, s.channels1, 4, 2, 1, 0, rng);
    ConvTranspose2d<T, Sigmoid> d2(half, s.image.channels, 4, 2, 1, 0, rng);
    decoder_ = Decoder(s.latent, std::move(d0), std::move(d1), std::move(d2));
    if (decoder_.dim(3) != s.image.size())
      detail::fail("ConvVae: the decoder produces ", decoder_.dim(3), " values, not the image's ", s.image.size());
  }

  const ConvVaeSizes& sizes() const { return sizes_; }
  Eigen::Index data_dim() const { return sizes_.image.size(); }
  Eigen::Index latent_dim() const { return sizes_.latent; }
  Encoder& encoder() { return encoder_; }
  Decoder& decoder() { return decoder_; }
  const Encoder& encoder() const { return encoder_; }
  const Decoder& decoder() const { return decoder_; }

  /// μ and log σ² of q(z | x) for a batch.
  std::pair<Mat<T>, Mat<T>> encode(const Mat<T>& x) const {
    Mat<T> h = encoder_(x);
    return {h.topRows(latent_dim()), h.bottomRows(latent_dim())};
  }

  /// Loss of a batch x with reparameterisation noise eps (latent × B). If `accumulate`, adds
  /// the gradient of the batch-mean loss to the weights' gradient buffers.
  Loss loss(const Mat<T>& x, const Mat<T>& eps, bool accumulate) {
    require_shape(x, data_dim(), x.cols(), "ConvVae input");
    require_shape(eps, latent_dim(), x.cols(), "ConvVae reparameterisation noise");
    const Eigen::Index B = x.cols(), L = latent_dim();
    encoder_.forward(0, encoder_.depth(), x, etr_);
    const Mat<T>& h = etr_.output();
    const auto mu = h.topRows(L);
    const auto logvar = h.bottomRows(L);
    const Mat<T> sigma = (logvar.array() * T(0.5)).exp().matrix();
    const Mat<T> z = mu + sigma.cwiseProduct(eps);
    decoder_.forward(0, decoder_.depth(), z, dtr_);
    const Mat<T>& xh = dtr_.output();
    const T lo = T(1e-6), hi = T(1) - T(1e-6);
    Mat<T> gx(xh.rows(), B);
    T bce = 0;
    for (Eigen::Index j = 0; j < B; ++j)
      for (Eigen::Index i = 0; i < xh.rows(); ++i) {
        const T p = std::clamp(xh(i, j), lo, hi), t = x(i, j);
        bce -= t * std::log(p) + (T(1) - t) * std::log(T(1) - p);
        // d/dp of the clamped BCE; zero where the clamp is active
        gx(i, j) = (xh(i, j) > lo && xh(i, j) < hi) ? (p - t) / (p * (T(1) - p)) / T(B) : T(0);
      }
    const T kl = T(-0.5) * (T(1) + logvar.array() - mu.array().square() - logvar.array().exp()).sum();
    Loss out;
    out.bce = bce / T(B);
    out.kl = kl / T(B);
    out.total = out.bce + out.kl;
    if (accumulate) {
      const Mat<T> gz = decoder_.vjp_weights(dtr_, gx);
      // z = μ + exp(logvar/2) ε; KL/B adds μ/B and ½(exp(logvar) − 1)/B
      Mat<T> gh(2 * L, B);
      gh.topRows(L) = gz + mu / T(B);
      gh.bottomRows(L) = (gz.array() * eps.array() * sigma.array() * T(0.5)).matrix() +
                         ((logvar.array().exp() - T(1)) * T(0.5) / T(B)).matrix();
      encoder_.vjp_weights(etr_, gh);
    }
    return out;
  }

  /// Per-image negative ELBO estimate with the given noise (no gradients).
  Vec<T> negative_elbo(const Mat<T>& x, const Mat<T>& eps) const {
    require_shape(x, data_dim(), x.cols(), "ConvVae input");
    require_shape(eps, latent_dim(), x.cols(), "ConvVae reparameterisation noise");
    auto [mu, logvar] = encode(x);
    const Mat<T> z = mu + (logvar.array() * T(0.5)).exp().matrix().cwiseProduct(eps);
    const Mat<T> xh = decoder_(z);
    const T lo = T(1e-6), hi = T(1) - T(1e-6);
    Vec<T> out(x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      T s = 0;
      for (Eigen::Index i = 0; i < x.rows(); ++i) {
        const T p = std::clamp(xh(i, j), lo, hi), t = x(i, j);
        s -= t * std::log(p) + (T(1) - t) * std::log(T(1) - p);
      }
      s += T(-0.5) * (T(1) + logvar.col(j).array() - mu.col(j).array().square() - logvar.col(j).array().exp()).sum();
      out(j) = s;
    }
    return out;
  }

  /// Encoder then decoder tensors, "encoder.<module>.<name>" and "decoder.…" (the keys of
  /// the weights files: "decoder.1.weight").
  ParamList<T> parameters() {
    ParamList<T> p;
    for (auto& q : encoder_.parameters()) p.push_back({"encoder." + q.name, q.value, q.grad});
    for (auto& q : decoder_.parameters()) p.push_back({"decoder." + q.name, q.value, q.grad});
    return p;
  }
  /// Saved non-trainable tensors, named likewise (none in these layers).
  BufferList<T> buffers() {
    BufferList<T> b;
    for (auto& q : encoder_.buffers()) b.push_back({"encoder." + q.name, q.value});
    for (auto& q : decoder_.buffers()) b.push_back({"decoder." + q.name, q.value});
    return b;
  }
  void zero_grad() {
    encoder_.zero_grad();
    decoder_.zero_grad();
  }

 private:
  ConvVaeSizes sizes_;
  Encoder encoder_;
  Decoder decoder_;
  Trace<T> etr_, dtr_;
};

/// Mean negative ELBO of a data set, one reparameterisation sample per image, the noise
/// drawn from Rng(seed) block by block: the protocol of mean_negative_elbo for nn::Vae.
template <class T>
double mean_negative_elbo(const ConvVae<T>& vae, const Mat<T>& x, std::uint64_t seed, Eigen::Index block = 1000) {
  Rng rng(seed);
  double total = 0;
  for (Eigen::Index j = 0; j < x.cols(); j += block) {
    const Eigen::Index nb = std::min(block, x.cols() - j);
    const Mat<T> eps = rng.normal_matrix<T>(vae.latent_dim(), nb);
    total += double(vae.negative_elbo(x.middleCols(j, nb), eps).sum());
  }
  return total / double(x.cols());
}

}  // namespace prilo::nn

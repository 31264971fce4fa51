// A convolutional VAE whose decoder is DCGAN-like (issue 12): z0 → dense → feature maps →
// transposed convolutions → image.
#pragma once

#include <algorithm>
#include <array>
#include <string>
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

/// A Gaussian-latent, Bernoulli-likelihood VAE over any encoder chain (data → (μ, log σ²), 2·latent
/// rows) and decoder chain (latent → data, a sigmoid image): the loss, its gradient, the
/// per-image negative ELBO and the named tensors that nn::ConvVae and nn::StyleVae share (they
/// differ in the layers they build only).
///
/// Loss per image, as nn::Vae's: the negative ELBO BCE(x, x̂) + KL(N(μ, σ²) ‖ N(0, I)),
/// x̂ clamped to [1e-6, 1 − 1e-6] in the BCE, reparameterised z = μ + σ ⊙ ε with the caller's ε.
template <class T, class EncoderT, class DecoderT>
class EncoderDecoderVae {
 public:
  using scalar = T;
  using Encoder = EncoderT;
  using Decoder = DecoderT;
  using Loss = typename Vae<T>::Loss;

  Eigen::Index data_dim() const { return data_; }
  Eigen::Index latent_dim() const { return latent_; }
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
    check_inputs(x, eps);
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
    check_inputs(x, eps);
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

  EncoderDecoderVae() = default;
  /// `name` prefixes the shape errors ("ConvVae input"); the encoder must map data to
  /// 2·latent values and the decoder latent to data.
  EncoderDecoderVae(Encoder e, Decoder d, Eigen::Index data, Eigen::Index latent, const char* name)
      : encoder_(std::move(e)), decoder_(std::move(d)), data_(data), latent_(latent), name_(name) {
    if (encoder_.dim(encoder_.depth()) != 2 * latent)
      detail::fail(name_, ": the encoder produces ", encoder_.dim(encoder_.depth()),
                   " values, not 2 x latent = ", 2 * latent);
    if (decoder_.dim(0) != latent || decoder_.dim(decoder_.depth()) != data)
      detail::fail(name_, ": the decoder maps ", decoder_.dim(0), " to ", decoder_.dim(decoder_.depth()),
                   " values, not latent ", latent, " to the image's ", data);
  }

 private:
  void check_inputs(const Mat<T>& x, const Mat<T>& eps) const {
    require_shape(x, data_dim(), x.cols(), (std::string(name_) + " input").c_str());
    require_shape(eps, latent_dim(), x.cols(), (std::string(name_) + " reparameterisation noise").c_str());
  }

  Encoder encoder_;
  Decoder decoder_;
  Eigen::Index data_ = 0, latent_ = 0;
  const char* name_ = "VAE";
  Trace<T> etr_, dtr_;
};

/// The encoder of nn::ConvVae and nn::StyleVae: Conv2d(C→c1, k4, s2, p1)+ReLU → Conv2d(c1→c2,
/// k4, s2, p1)+ReLU → Linear(c2·H/4·W/4 → 2·latent) = (μ, log σ²).
template <class T>
using ConvEncoder = Sequential<T, Conv2d<T, Relu>, Conv2d<T, Relu>, Linear<T>>;

namespace conv_vae_detail {
/// Checks the sizes of a ConvVae / StyleVae (`name`: whose) before any layer is built.
inline void check_sizes(const ConvVaeSizes& s, const char* name) {
  require_positive(s.image, (std::string(name) + " image").c_str());
  if (s.image.height % 4 != 0 || s.image.width % 4 != 0)
    detail::fail(name, ": image height and width must be multiples of 4, got ", s.image.height, "x", s.image.width);
  if (s.latent <= 0 || s.channels1 <= 0 || s.channels2 <= 0)
    detail::fail(name, ": latent and channel counts must be positive, got latent ", s.latent, ", channels ",
                 s.channels1, " and ", s.channels2);
}
/// The feature maps at half and quarter resolution: c1 × H/2 × W/2 and c2 × H/4 × W/4.
inline Shape3 half_maps(const ConvVaeSizes& s) {
  return {s.channels1, s.image.height / 2, s.image.width / 2};
}
inline Shape3 quarter_maps(const ConvVaeSizes& s) {
  return {s.channels2, s.image.height / 4, s.image.width / 4};
}
/// The convolutional encoder, its weights drawn from rng.
template <class T>
ConvEncoder<T> conv_encoder(const ConvVaeSizes& s, Rng& rng) {
  Conv2d<T, Relu> e0(s.image, s.channels1, 4, 2, 1, rng);
  Conv2d<T, Relu> e1(half_maps(s), s.channels2, 4, 2, 1, rng);
  return ConvEncoder<T>(s.image.size(), std::move(e0), std::move(e1),
                        Linear<T>(quarter_maps(s).size(), 2 * s.latent, rng));
}
}  // namespace conv_vae_detail

/// Encoder: nn::ConvEncoder (Conv2d(C→c1, k4, s2, p1)+ReLU → Conv2d(c1→c2, k4, s2, p1)+ReLU →
/// Linear(c2·H/4·W/4 → 2·latent) = (μ, log σ²)). Decoder, the generator: Dense(latent →
/// c2·H/4·W/4)+ReLU → ConvTranspose2d(c2→c1, k4, s2, p1)+ReLU → ConvTranspose2d(c1→C, k4, s2,
/// p1)+Sigmoid. The flat vectors between dense and convolutional layers are feature maps
/// already (the layout of nn/shape.hpp), so no reshape module is needed and the decoder's split
/// points are exactly z0 (latent), z1 (c2 maps of H/4×W/4: 64·7·7 for MNIST), z2 (c1 maps of
/// H/2×W/2: 32·14·14) and x. No batch normalisation: the decoder is the same function in
/// training and in reconstruction, and has no split point inside a dense/conv + norm pair.
/// Loss, negative ELBO and tensor names: nn::EncoderDecoderVae.
template <class T>
class ConvVae
    : public EncoderDecoderVae<T, ConvEncoder<T>,
                               Sequential<T, Dense<T, Relu>, ConvTranspose2d<T, Relu>, ConvTranspose2d<T, Sigmoid>>> {
 public:
  using Base = EncoderDecoderVae<T, ConvEncoder<T>,
                                 Sequential<T, Dense<T, Relu>, ConvTranspose2d<T, Relu>, ConvTranspose2d<T, Sigmoid>>>;
  using typename Base::Decoder;
  using typename Base::Encoder;
  using typename Base::Loss;

  ConvVae() = default;
  ConvVae(const ConvVaeSizes& s, std::uint64_t seed) : Base(build(s, seed)), sizes_(s) {}

  const ConvVaeSizes& sizes() const { return sizes_; }

 private:
  static Base build(const ConvVaeSizes& s, std::uint64_t seed) {
    conv_vae_detail::check_sizes(s, "ConvVae");
    Rng rng(seed);
    Encoder encoder = conv_vae_detail::conv_encoder<T>(s, rng);
    const Shape3 half = conv_vae_detail::half_maps(s), quarter = conv_vae_detail::quarter_maps(s);
    Dense<T, Relu> d0(s.latent, quarter.size(), rng);
    ConvTranspose2d<T, Relu> d1(quarter, s.channels1, 4, 2, 1, 0, rng);
    ConvTranspose2d<T, Sigmoid> d2(half, s.image.channels, 4, 2, 1, 0, rng);
    return Base(std::move(encoder), Decoder(s.latent, std::move(d0), std::move(d1), std::move(d2)), s.image.size(),
                s.latent, "ConvVae");
  }

  ConvVaeSizes sizes_;
};

/// Mean negative ELBO of a data set, one reparameterisation sample per image, the noise
/// drawn from Rng(seed) block by block: the protocol of mean_negative_elbo for nn::Vae (for
/// nn::ConvVae, nn::StyleVae and any other EncoderDecoderVae).
template <class T, class E, class D>
double mean_negative_elbo(const EncoderDecoderVae<T, E, D>& vae, const Mat<T>& x, std::uint64_t seed,
                          Eigen::Index block = 1000) {
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

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
#include "encoder_decoder_vae.hpp"
#include "linear.hpp"
#include "sequential.hpp"
#include "shape.hpp"

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

}  // namespace prilo::nn

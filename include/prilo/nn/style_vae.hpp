// A VAE whose decoder feeds z0 into every layer (issue 12, the paper's StyleGAN-like generator
// of Tables 9/10): the convolutional VAE's encoder, a style chain (nn/style.hpp) as decoder.
#pragma once

#include <utility>

#include "../core.hpp"
#include "../random.hpp"
#include "conv.hpp"
#include "conv_vae.hpp"
#include "linear.hpp"
#include "sequential.hpp"
#include "shape.hpp"
#include "style.hpp"

namespace prilo::nn {

/// The sizes of a StyleVae: those of a ConvVae (image C×H×W with H, W multiples of 4; latent;
/// c1 channels at H/2×W/2, c2 at H/4×W/4).
using StyleVaeSizes = ConvVaeSizes;

/// The decoder of nn::StyleVae: a style chain that carries z0 beside the features.
template <class T>
using StyleDecoder = Sequential<T, Duplicate<T>, Carry<Dense<T>>, Modulate<T, LeakyRelu>, Carry<ConvTranspose2d<T>>,
                                Modulate<T, LeakyRelu>, Carry<ConvTranspose2d<T>>, Modulate<T, Sigmoid, false>>;

/// Encoder: nn::ConvEncoder, as nn::ConvVae's. Decoder, the generator (7 modules), with
/// L = latent, Q = c2·H/4·W/4 and the split points (row counts for MNIST: L = 100, c2 = 64,
/// c1 = 32):
///
///   split | state                        | rows (MNIST)   | blocks
///   ------|------------------------------|----------------|---------------
///   0     | z0                           | 100            | {100}
///   1     | [z0; z0]         (Duplicate) | 200            | {100, 100}
///   2     | [Dense(z0); z0]  (Carry)     | 3136 + 100     | {3136, 100}
///   3     | [z1; z0]         (Modulate)  | 64·7·7 + 100   | {3136, 100}
///   4     | [ConvT(z1); z0]  (Carry)     | 6272 + 100     | {6272, 100}
///   5     | [z2; z0]         (Modulate)  | 32·14·14 + 100 | {6272, 100}
///   6     | [ConvT(z2); z0]  (Carry)     | 784 + 100      | {784, 100}
///   7     | x                (Modulate, sigmoid, z0 dropped) | 784 | {784}
///
/// Dense(L → Q) and the transposed convolutions (k4, s2, p1: c2 → c1 → C) are linear; every
/// one is followed by nn::Modulate, act(u ⊙ (1 + γ(z0)) + β(z0)) per channel with [γ; β] an
/// affine map of z0 (leaky ReLU, then sigmoid for the image). So z0 enters every layer, and a
/// split point after a modulation holds {z_i, z0}: the meaningful ones for PRILO are 3
/// ({64·7·7, z0}) and 5 ({32·14·14, z0}), each tensor in its own l1 ball
/// (PhaseOptions::radii, Sequential::blocks); 0 is z0 alone (DPR), 1, 2, 4 and 6 are the
/// duplicated latent and the pre-modulation maps (valid but redundant split points).
/// Loss, negative ELBO and tensor names ("decoder.2.weight": the first modulation's affine
/// map): nn::EncoderDecoderVae, as nn::ConvVae's.
template <class T>
class StyleVae : public EncoderDecoderVae<T, ConvEncoder<T>, StyleDecoder<T>> {
 public:
  using Base = EncoderDecoderVae<T, ConvEncoder<T>, StyleDecoder<T>>;
  using typename Base::Decoder;
  using typename Base::Encoder;
  using typename Base::Loss;

  StyleVae() = default;
  StyleVae(const StyleVaeSizes& s, std::uint64_t seed) : Base(build(s, seed)), sizes_(s) {}

  const StyleVaeSizes& sizes() const { return sizes_; }

  /// Split points whose state is {z_i, z0} after a modulation: 3 (c2 maps of H/4×W/4) and
  /// 5 (c1 maps of H/2×W/2).
  static constexpr int style_splits[2] = {3, 5};

 private:
  static Base build(const StyleVaeSizes& s, std::uint64_t seed) {
    conv_vae_detail::check_sizes(s, "StyleVae");
    Rng rng(seed);
    Encoder encoder = conv_vae_detail::conv_encoder<T>(s, rng);
    const Shape3 half = conv_vae_detail::half_maps(s), quarter = conv_vae_detail::quarter_maps(s);
    const Eigen::Index L = s.latent;
    Carry<Dense<T>> d0(Dense<T>(L, quarter.size(), rng), L);
    Modulate<T, LeakyRelu> m0(quarter, L, rng);
    Carry<ConvTranspose2d<T>> d1(ConvTranspose2d<T>(quarter, s.channels1, 4, 2, 1, 0, rng), L);
    Modulate<T, LeakyRelu> m1(half, L, rng);
    Carry<ConvTranspose2d<T>> d2(ConvTranspose2d<T>(half, s.image.channels, 4, 2, 1, 0, rng), L);
    Modulate<T, Sigmoid, false> m2(s.image, L, rng);
    Decoder decoder(L, Duplicate<T>(L), std::move(d0), std::move(m0), std::move(d1), std::move(m1), std::move(d2),
                    std::move(m2));
    return Base(std::move(encoder), std::move(decoder), s.image.size(), L, "StyleVae");
  }

  StyleVaeSizes sizes_;
};

}  // namespace prilo::nn

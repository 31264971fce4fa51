// The paper's VAE (appendix A): MLP encoder and decoder, Bernoulli likelihood, Gaussian latent.
#pragma once

#include <utility>

#include "../core.hpp"
#include "../random.hpp"
#include "encoder_decoder_vae.hpp"
#include "linear.hpp"
#include "sequential.hpp"

namespace prilo::nn {

/// Encoder data→hidden→hidden→(μ, log σ²) and decoder latent→hidden→hidden→data, ReLU hidden
/// layers and a sigmoid output (the paper: 784→500→500→2·100 and 100→500→500→784). The
/// decoder is the generator: its split points are z0 (latent), z1, z2 (the hidden
/// activations) and x. Loss, its gradient, negative ELBO and tensor names
/// ("encoder.0.weight" … "decoder.2.bias", the keys of the weights files):
/// nn::EncoderDecoderVae; mean_negative_elbo there too.
template <class T>
class Vae : public EncoderDecoderVae<T, Sequential<T, Dense<T, Relu>, Dense<T, Relu>, Linear<T>>,
                                     Sequential<T, Dense<T, Relu>, Dense<T, Relu>, Dense<T, Sigmoid>>> {
 public:
  using Base = EncoderDecoderVae<T, Sequential<T, Dense<T, Relu>, Dense<T, Relu>, Linear<T>>,
                                 Sequential<T, Dense<T, Relu>, Dense<T, Relu>, Dense<T, Sigmoid>>>;
  using typename Base::Decoder;
  using typename Base::Encoder;
  using typename Base::Loss;

  Vae() = default;
  Vae(Eigen::Index data_dim, Eigen::Index hidden, Eigen::Index latent, std::uint64_t seed)
      : Base(build(data_dim, hidden, latent, seed)), hidden_(hidden) {}

  Eigen::Index hidden_dim() const { return hidden_; }

 private:
  static Base build(Eigen::Index data_dim, Eigen::Index hidden, Eigen::Index latent, std::uint64_t seed) {
    Rng rng(seed);
    Encoder encoder(data_dim, Dense<T, Relu>(data_dim, hidden, rng), Dense<T, Relu>(hidden, hidden, rng),
                    Linear<T>(hidden, 2 * latent, rng));
    Decoder decoder(latent, Dense<T, Relu>(latent, hidden, rng), Dense<T, Relu>(hidden, hidden, rng),
                    Dense<T, Sigmoid>(hidden, data_dim, rng));
    return Base(std::move(encoder), std::move(decoder), data_dim, latent, "VAE");
  }

  Eigen::Index hidden_ = 0;
};

}  // namespace prilo::nn

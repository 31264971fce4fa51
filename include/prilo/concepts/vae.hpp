// Concept of a variational autoencoder as the reconstruction methods use it.
#pragma once

#include <concepts>

#include "../core.hpp"
#include "generator.hpp"

namespace prilo {

/// A VAE whose decoder is the prior of the latent methods and whose negative ELBO scores
/// candidate images (-resolve): nn::Vae (MLP), nn::ConvVae, or a user's model.
template <class V>
concept VaeModel = requires {
  typename V::scalar;
}
&&requires(const V& v, const Mat<typename V::scalar>& x) {
  // the generator: latent z0 → image, with its split points;
  requires Generator<std::decay_t<decltype(v.decoder())>>;
  // the encoder (its forward cost enters the FLOP account of -resolve);
  v.encoder();
  // the sizes of a latent and of an image;
  { v.latent_dim() } -> std::convertible_to<Eigen::Index>;
  { v.data_dim() } -> std::convertible_to<Eigen::Index>;
  // −ELBO per column of a batch of images x with reparameterisation noise ε (latent × B).
  { v.negative_elbo(x, x) } -> std::convertible_to<Vec<typename V::scalar>>;
};

}  // namespace prilo

// The paper's VAE (appendix A): MLP encoder and decoder, Bernoulli likelihood, Gaussian latent.
#pragma once

#include <algorithm>

#include "../core.hpp"
#include "../random.hpp"
#include "linear.hpp"
#include "sequential.hpp"

namespace prilo::nn {

/// Encoder data→hidden→hidden→(μ, log σ²) and decoder latent→hidden→hidden→data, ReLU hidden
/// layers and a sigmoid output (the paper: 784→500→500→2·100 and 100→500→500→784). The
/// decoder is the generator: its split points are z0 (latent), z1, z2 (the hidden
/// activations) and x.
///
/// Loss per image (the negative ELBO): BCE(x, x̂) + KL(N(μ, σ²) ‖ N(0, I)), with
/// BCE = −Σ[x log x̂ + (1−x) log(1−x̂)] (x̂ clamped to [ε, 1−ε], ε = 1e-6, so that a saturated
/// sigmoid gives a finite loss) and KL = −½ Σ(1 + log σ² − μ² − σ²); reparameterised sample
/// z = μ + σ ⊙ ε with ε ~ N(0, I) supplied by the caller (fixed noise makes the loss a
/// deterministic, differentiable function of the weights).
template <class T>
class Vae {
 public:
  using scalar = T;
  using Encoder = Sequential<T, Dense<T, Relu>, Dense<T, Relu>, Linear<T>>;
  using Decoder = Sequential<T, Dense<T, Relu>, Dense<T, Relu>, Dense<T, Sigmoid>>;

  struct Loss {
    T total = 0;  ///< mean over the batch of BCE + KL
    T bce = 0;    ///< mean BCE
    T kl = 0;     ///< mean KL
  };

  Vae() = default;
  Vae(Eigen::Index data_dim, Eigen::Index hidden, Eigen::Index latent, std::uint64_t seed) {
    Rng rng(seed);
    encoder_ = Encoder(data_dim, Dense<T, Relu>(data_dim, hidden, rng), Dense<T, Relu>(hidden, hidden, rng),
                       Linear<T>(hidden, 2 * latent, rng));
    decoder_ = Decoder(latent, Dense<T, Relu>(latent, hidden, rng), Dense<T, Relu>(hidden, hidden, rng),
                       Dense<T, Sigmoid>(hidden, data_dim, rng));
    sizes_ = {data_dim, hidden, latent};
  }

  Eigen::Index data_dim() const { return sizes_[0]; }
  Eigen::Index hidden_dim() const { return sizes_[1]; }
  Eigen::Index latent_dim() const { return sizes_[2]; }
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
    require_shape(x, data_dim(), x.cols(), "VAE input");
    require_shape(eps, latent_dim(), x.cols(), "VAE reparameterisation noise");
    const Eigen::Index B = x.cols(), L = latent_dim();
    encoder_.forward(0, encoder_.depth(), x, etr_);
    const Mat<T>& h = etr_.output();
    const auto mu = h.topRows(L);
    const auto logvar = h.bottomRows(L);
    Mat<T> sigma = (logvar.array() * T(0.5)).exp().matrix();
    Mat<T> z = mu + sigma.cwiseProduct(eps);
    decoder_.forward(0, decoder_.depth(), z, dtr_);
    const Mat<T>& xh = dtr_.output();
    const T lo = T(1e-6), hi = T(1) - T(1e-6);
    Loss out;
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
    out.bce = bce / T(B);
    out.kl = kl / T(B);
    out.total = out.bce + out.kl;
    if (accumulate) {
      Mat<T> gz = decoder_.vjp_weights(dtr_, gx);
      // z = μ + exp(logvar/2) ε; KL/B adds μ/B and ½(exp(logvar) − 1)/B
      Mat<T> gh(2 * L, B);
      gh.topRows(L) = gz + mu / T(B);
      gh.bottomRows(L) = (gz.array() * eps.array() * sigma.array() * T(0.5)).matrix() +
                         ((logvar.array().exp() - T(1)) * T(0.5) / T(B)).matrix();
      encoder_.vjp_weights(etr_, gh);
    }
    return out;
  }

  /// Per-image negative ELBO estimate with the given noise (no gradients); used to score
  /// candidate images under the model.
  Vec<T> negative_elbo(const Mat<T>& x, const Mat<T>& eps) const {
    auto [mu, logvar] = encode(x);
    Mat<T> z = mu + (logvar.array() * T(0.5)).exp().matrix().cwiseProduct(eps);
    Mat<T> xh = decoder_(z);
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

  /// Encoder then decoder tensors, named "encoder.<module>.<name>" and "decoder.…" (the keys
  /// of the weights files: "decoder.0.weight").
  ParamList<T> parameters() {
    ParamList<T> p;
    for (auto& q : encoder_.parameters()) p.push_back({"encoder." + q.name, q.value, q.grad});
    for (auto& q : decoder_.parameters()) p.push_back({"decoder." + q.name, q.value, q.grad});
    return p;
  }
  /// Saved non-trainable tensors, named likewise (none in this MLP).
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
  Encoder encoder_;
  Decoder decoder_;
  std::array<Eigen::Index, 3> sizes_{0, 0, 0};
  Trace<T> etr_, dtr_;
};

/// Mean negative ELBO of a data set with one reparameterisation sample per image, noise
/// drawn from Rng(seed) block by block: the fixed protocol behind the test-set losses that
/// prilo-train-vae prints and docs/training.md records.
template <class T>
double mean_negative_elbo(const Vae<T>& vae, const Mat<T>& x, std::uint64_t seed, Eigen::Index block = 1000) {
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

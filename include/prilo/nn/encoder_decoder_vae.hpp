// The body every VAE of the library shares (nn::Vae, nn::ConvVae, nn::StyleVae): a Gaussian
// latent, a Bernoulli likelihood, the loss and its gradient over any encoder and decoder chain.
#pragma once

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>

#include "../core.hpp"
#include "../random.hpp"
#include "sequential.hpp"

namespace prilo::nn {

/// A VAE's batch loss: the negative ELBO and its two terms, each a mean over the batch.
template <class T>
struct VaeLoss {
  T total = 0;  ///< mean over the batch of BCE + KL
  T bce = 0;    ///< mean BCE
  T kl = 0;     ///< mean KL
};

/// A Gaussian-latent, Bernoulli-likelihood VAE over any encoder chain (data → (μ, log σ²), 2·latent
/// rows) and decoder chain (latent → data, a sigmoid image): the loss, its gradient, the
/// per-image negative ELBO and the named tensors that nn::Vae (the paper's MLP), nn::ConvVae
/// and nn::StyleVae share (they differ in the layers they build only).
///
/// Loss per image (the negative ELBO): BCE(x, x̂) + KL(N(μ, σ²) ‖ N(0, I)), with
/// BCE = −Σ[x log x̂ + (1−x) log(1−x̂)] (x̂ clamped to [ε, 1−ε], ε = 1e-6, so that a saturated
/// sigmoid gives a finite loss) and KL = −½ Σ(1 + log σ² − μ² − σ²); reparameterised sample
/// z = μ + σ ⊙ ε with ε ~ N(0, I) supplied by the caller (fixed noise makes the loss a
/// deterministic, differentiable function of the weights).
template <class T, class EncoderT, class DecoderT>
class EncoderDecoderVae {
 public:
  using scalar = T;
  using Encoder = EncoderT;
  using Decoder = DecoderT;
  using Loss = VaeLoss<T>;

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

/// Mean negative ELBO of a data set, one reparameterisation sample per image, the noise
/// drawn from Rng(seed) block by block: the fixed protocol behind the test-set losses that
/// prilo-train-vae prints and docs/training.md records (nn::Vae, nn::ConvVae, nn::StyleVae and
/// any other EncoderDecoderVae). invalid_input for a block below 1 and for no images (the
/// mean of nothing).
template <class T, class E, class D>
double mean_negative_elbo(const EncoderDecoderVae<T, E, D>& vae, const std::type_identity_t<Mat<T>>& x,
                          std::uint64_t seed, Eigen::Index block = 1000) {
  if (block < 1) detail::fail("mean_negative_elbo: block must be >= 1, got ", block);
  if (x.cols() == 0) detail::fail("mean_negative_elbo: no images (0 columns)");
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

// Training the learned initialisation (LI, the paper's Section 2.2 and Eq. 9) as a library
// call: the loop behind prilo-train-li. The encoder E maps the magnitudes y = |A x| of training
// images to the VAE's latent and is trained through the frozen decoder G with the image MSE
// and, with a positive adversarial weight, the WGAN-GP term of a critic on images (one critic
// step per encoder step, on the same batch). The last part of the images is held out: after
// every epoch its MSE and the starts' magnitude error are measured, and the best epoch's
// encoder is kept (in memory and, when asked, in a file). The paper's LPIPS term is left out
// (it needs a pretrained network; docs/li.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "../core.hpp"
#include "../interrupt.hpp"
#include "../nn/checkpoint.hpp"
#include "../optim/optimisers.hpp"
#include "../parallel.hpp"
#include "../random.hpp"
#include "li.hpp"

namespace prilo {

/// How train_li_encoder trains. The defaults are prilo-train-li's (docs/li.md).
struct LiTrainingOptions {
  int epochs = 20;
  Eigen::Index batch = 128;
  double learning_rate = 1e-3;         ///< the encoder's Adam step size
  double adversarial_weight = 0.01;    ///< λ_adv of the WGAN-GP term; 0: image MSE only, no critic
  Eigen::Index critic_hidden = 256;    ///< units of the critic's two LeakyReLU(0.2) layers
  double critic_learning_rate = 1e-4;  ///< the critic's Adam (β = 0.5, 0.9)
  double gradient_penalty = 10;        ///< the critic's λ
  Eigen::Index validation = 2000;      ///< the last `validation` images are held out
  std::uint64_t seed = 0;              ///< the critic starts from seed + 2, the stream is Rng(seed + 3)
  std::filesystem::path output{};      ///< the best epoch's encoder is written here (empty: not written)
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// The held-out images' figures: ‖G(E(y)) − x‖² / (n·B) and ‖|A G(E(y))| − y‖² / (m·B).
struct LiValidation {
  double mse = 0, magnitude = 0;
};

/// What train_li_encoder reports after each batch.
struct LiBatchReport {
  int epoch = 0;
  long batch = 0, batches = 0;  ///< this batch of the epoch (from 1) and the epoch's count
  Eigen::Index images = 0;
  double mse = 0, adversarial = 0;  ///< the batch's image MSE and −mean D(G(E(y))) (0 without a critic)
};

/// What train_li_encoder reports after each epoch (means over the epoch's training images).
struct LiEpochReport {
  int epoch = 0;
  double mse = 0, adversarial = 0;  ///< the encoder's terms
  double critic_wasserstein = 0;    ///< mean D(x) − mean D(x̂), the critic's estimate of the distance
  double critic_penalty = 0;        ///< its gradient penalty
  LiValidation validation{};
  bool improved = false;  ///< the best validation MSE so far (then written to `output`)
};

/// Where train_li_encoder reports to; any may be empty.
struct LiTrainingCallbacks {
  std::function<void(const LiValidation&)> start{};  ///< the untrained encoder's validation figures
  std::function<void(const LiBatchReport&)> batch{};
  std::function<void(const LiEpochReport&)> epoch{};
};

/// How a train_li_encoder call ended.
struct LiTrainingResult {
  /// A stop was requested before the last epoch ended: o.stop's, or the process-wide one
  /// (which stays set until clear_stop()).
  bool interrupted = false;
  int stopped_in = 0;   ///< interrupted: the epoch it was in
  int epochs_done = 0;  ///< epochs finished
  int best_epoch = 0;   ///< the epoch the encoder now holds (0: none finished, the initial one)
  LiValidation best{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
};

/// The held-out figures of `enc` through `decoder` on standardised inputs `features` (of the
/// measurements y of images x), in blocks of 1000 columns.
template <class T, Generator G, MeasurementOperator Op>
LiValidation li_validation(const LiEncoder<T>& enc, const G& decoder, const Op& op, const Mat<T>& features,
                           const Mat<T>& x, const Mat<T>& y) {
  LiValidation v;
  const Eigen::Index B = x.cols();
  for (Eigen::Index j = 0; j < B; j += 1000) {
    const Eigen::Index nb = std::min<Eigen::Index>(1000, B - j);
    const Mat<T> xh = decoder(enc.network()(features.middleCols(j, nb)));
    v.mse += double((xh - x.middleCols(j, nb)).squaredNorm());
    v.magnitude += double((measure(op, xh) - y.middleCols(j, nb)).squaredNorm());
  }
  v.mse /= double(B * x.rows());
  v.magnitude /= double(B * y.rows());
  return v;
}

/// Trains `enc` (built by the caller from its LiSpec: operator kind, sizes, transform, hidden
/// units, the decoder kind of `vae`, latent = vae.latent_dim(); prilo-train-li seeds it with
/// seed + 1) on the columns of `images` (vae.data_dim() rows, values finite) measured by `op`:
/// records op in the encoder, fits its standardisation on the training part, and trains for
/// o.epochs, keeping the epoch of the lowest validation MSE. On return `enc` holds that epoch's
/// weights (the file at o.output too, written whenever the best improves); interrupted, it
/// holds the best finished epoch's (o.stop's request, or the process-wide one, which stays set:
/// clear_stop() before the next call). It makes the same draws in the same order as every earlier prilo-train-li; the
/// files match bit for bit under the same FFT plans and set_flush_denormals (docs/li.md). Bad options or data are
/// invalid_input naming them; a loss that is not finite stops it with invalid_input ("training diverged in epoch …",
/// naming the batch), the encoder back at its best finished epoch.
template <class T, class V, MeasurementOperator Op>
LiTrainingResult train_li_encoder(LiEncoder<T>& enc, const V& vae, const Op& op, const Mat<T>& images,
                                  const LiTrainingOptions& o, const LiTrainingCallbacks& cb = {}) {
  const Eigen::Index N = images.cols(), n = images.rows();
  detail::check_training_schedule("train_li_encoder", o.epochs, o.batch, o.learning_rate);
  nn::check_learning_rate_fits<T>("train_li_encoder", "learning rate", o.learning_rate);
  const auto positive = [](double v) { return v > 0 && std::isfinite(v); };
  if (!(o.adversarial_weight >= 0) || !std::isfinite(o.adversarial_weight))
    detail::fail("train_li_encoder: the adversarial weight must be finite and ≥ 0, got ", o.adversarial_weight);
  const bool adv = o.adversarial_weight > 0;
  if (adv && !positive(o.critic_learning_rate))
    detail::fail("train_li_encoder: the critic's learning rate must be positive and finite, got ",
                 o.critic_learning_rate);
  if (adv && (!(o.gradient_penalty >= 0) || !std::isfinite(o.gradient_penalty)))
    detail::fail("train_li_encoder: the gradient penalty must be finite and ≥ 0, got ", o.gradient_penalty);
  if (adv) nn::check_learning_rate_fits<T>("train_li_encoder", "critic's learning rate", o.critic_learning_rate);
  if (adv && o.critic_hidden < 1) detail::fail("train_li_encoder: critic_hidden must be at least 1");
  if (n != vae.data_dim())
    detail::fail("train_li_encoder: the images have ", n, " values, the generator makes ", vae.data_dim());
  if (o.validation < 1 || o.validation >= N - 1)
    detail::fail("train_li_encoder: validation ", o.validation, ": needs fewer than the ", N,
                 " training images (and at least 1)");
  if (!images.allFinite()) detail::fail("train_li_encoder: the images hold NaN or infinite values");
  enc.check_decoder(vae, "train_li_encoder: the encoder");
  const FlushDenormalsTeam flush;                     // the BLAS's threads too (prilo/parallel.hpp)
  const Eigen::Index nv = o.validation, nt = N - nv;  // held out: the last nv images
  enc.set_operator(op);
  enc.set_decoder(vae);  // its image of a probe latent: check_decoder refuses other weights later

  // measurements and reduced inputs once; the standardisation from the training part
  Mat<T> y(op.output_size(), N), red(enc.input_size(), N);
  for (Eigen::Index j = 0; j < N; j += 2000) {
    const Eigen::Index nb = std::min<Eigen::Index>(2000, N - j);
    y.middleCols(j, nb) = measure(op, Mat<T>(images.middleCols(j, nb)));
    red.middleCols(j, nb) = enc.reduce(y.middleCols(j, nb));
  }
  enc.fit_standardisation(red.leftCols(nt));
  const Mat<T> feats = enc.standardise(red);
  red.resize(0, 0);
  const Mat<T> xv = images.rightCols(nv), yv = y.rightCols(nv), fv = feats.rightCols(nv);
  if (cb.start) cb.start(li_validation(enc, vae.decoder(), op, fv, xv, yv));

  WganCritic<T> critic = adv ? WganCritic<T>(n, o.critic_hidden, o.seed + 2) : WganCritic<T>();
  AdamTrainer<T> adam({.learning_rate = T(o.learning_rate)});
  AdamTrainer<T> adam_critic({.learning_rate = T(o.critic_learning_rate), .beta1 = T(0.5), .beta2 = T(0.9)});
  auto params = enc.parameters();
  auto cparams = critic.parameters();
  nn::BestEpoch<T> best(params, o.output);
  Rng rng(o.seed + 3);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(nt));
  std::iota(order.begin(), order.end(), Eigen::Index(0));
  // a batch beyond the data is one batch of all of it (allocated at that size, not o.batch's,
  // and nt + o.batch − 1 cannot overflow)
  const Eigen::Index bs = std::min<Eigen::Index>(o.batch, nt);
  const long batches = long((nt + bs - 1) / bs);
  Mat<T> xb, fb, fake;
  Vec<T> t(bs);
  LiTrainingResult result;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    rng.shuffle(order);
    LiEpochReport rep{.epoch = epoch};
    for (long b = 0; b < batches; ++b) {
      if (stop_requested(o.stop)) {
        result.interrupted = true;
        result.stopped_in = epoch;
        best.restore();
        return result;
      }
      const Eigen::Index j0 = b * bs, nb = std::min<Eigen::Index>(bs, nt - j0);
      xb.resize(n, nb);
      fb.resize(feats.rows(), nb);
      for (Eigen::Index j = 0; j < nb; ++j) {
        xb.col(j) = images.col(order[std::size_t(j0 + j)]);
        fb.col(j) = feats.col(order[std::size_t(j0 + j)]);
      }
      enc.zero_grad();
      const auto l = li_encoder_loss(enc, vae.decoder(), adv ? &critic : nullptr, fb, xb, T(o.adversarial_weight), true,
                                     adv ? &fake : nullptr);
      best.check_loss("train_li_encoder", double(l.total), epoch, b + 1);
      adam.step(params);
      // a loss can stay finite (a saturated sigmoid) while a huge learning rate has made the
      // weights infinite: they are checked after every step, never saved so
      best.check_parameters("train_li_encoder", params, epoch, b + 1);
      rep.mse += double(l.mse) * double(nb);
      if (adv) {  // one critic step on the same batch (the encoder's images, before its step)
        t.resize(nb);
        for (Eigen::Index j = 0; j < nb; ++j) t(j) = T(rng.uniform());
        critic.zero_grad();
        const auto c = critic.loss(xb, fake, t, T(o.gradient_penalty), true);
        adam_critic.step(cparams);
        best.check_parameters("train_li_encoder", cparams, epoch, b + 1, "critic parameter", "critic learning rate");
        rep.adversarial += double(l.adversarial) * double(nb);
        rep.critic_wasserstein -= double(c.wasserstein) * double(nb);
        rep.critic_penalty += double(c.penalty) * double(nb);
      }
      if (cb.batch)
        cb.batch({.epoch = epoch,
                  .batch = b + 1,
                  .batches = batches,
                  .images = nb,
                  .mse = double(l.mse),
                  .adversarial = double(l.adversarial)});
    }
    rep.mse /= double(nt);
    rep.adversarial /= double(nt);
    rep.critic_wasserstein /= double(nt);
    rep.critic_penalty /= double(nt);
    rep.validation = li_validation(enc, vae.decoder(), op, fv, xv, yv);
    rep.improved = rep.validation.mse < result.best.mse;
    if (rep.improved) result.best = rep.validation;
    best.end_epoch(epoch, rep.improved, [&](const auto& path) { save_li_encoder(path, enc); });
    result.best_epoch = best.epoch();
    result.epochs_done = epoch;
    if (cb.epoch) cb.epoch(rep);
  }
  best.restore();
  return result;
}

}  // namespace prilo

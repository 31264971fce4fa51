// Training a VAE with the library's own layers, backprop and Adam: the loop behind
// prilo-train-vae, for nn::Vae, nn::ConvVae and nn::StyleVae. Per epoch: a shuffle of the
// training images, mini-batches with one reparameterisation sample per image and an Adam step
// each, the test set's negative ELBO (mean_negative_elbo's fixed protocol), then the weights
// and a checkpoint written; a run resumes from that checkpoint and ends where an uninterrupted
// run would, and it stops at the next batch when prilo::request_stop() is called (SIGINT with
// prilo::install_interrupt_handler()).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "../core.hpp"
#include "../interrupt.hpp"
#include "../optim/optimisers.hpp"
#include "../parallel.hpp"
#include "../random.hpp"
#include "checkpoint.hpp"
#include "conv_vae_io.hpp"
#include "style_vae_io.hpp"
#include "vae_io.hpp"

namespace prilo::nn {

/// How train_vae trains. The defaults are the paper's (Appendix A: batch 100, Adam 1e-3).
struct VaeTrainingOptions {
  int epochs = 100;                    ///< epochs in all (a resumed run goes on to this count)
  Eigen::Index batch = 100;            ///< images per mini-batch (an epoch's last one may be shorter)
  double learning_rate = 1e-3;         ///< Adam's step size
  std::uint64_t seed = 1;              ///< Rng(seed + 1) shuffles and draws ε; the test losses use seed + 2
  std::filesystem::path weights{};     ///< the model, written after every epoch (empty: not written)
  std::filesystem::path checkpoint{};  ///< model, Adam and stream, written after every epoch (empty: none)
  /// Continue from `checkpoint`, which must exist and have been written for these training
  /// images with this batch size, learning rate and seed (TrainingKey; invalid_input otherwise).
  bool resume = false;
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// What train_vae reports after each mini-batch.
struct VaeBatchReport {
  int epoch = 0, epochs = 0;         ///< this epoch (from 1) and the run's last
  long batch = 0, batches = 0;       ///< this batch of the epoch (from 1) and the epoch's count
  long done = 0, total = 0;          ///< batches done over all epochs, of `total`
  long done_before = 0;              ///< of `done`, those a resumed run's checkpoint held
  Eigen::Index images = 0;           ///< images in this batch
  double loss = 0, bce = 0, kl = 0;  ///< the batch's mean negative ELBO and its two terms
};

/// What train_vae reports after each epoch, once the epoch's files are written.
struct VaeEpochReport {
  int epoch = 0;
  double train_loss = 0;  ///< mean over the epoch's images of the batch losses
  double test_loss = 0;   ///< mean_negative_elbo over the test images, noise seed + 2
};

/// Where train_vae reports to; any may be empty.
struct VaeTrainingCallbacks {
  std::function<void(int)> resumed{};                  ///< after reading the checkpoint: the epochs it holds
  std::function<void(const VaeBatchReport&)> batch{};  ///< after every mini-batch
  std::function<void(const VaeEpochReport&)> epoch{};  ///< after every epoch
};

/// How a train_vae call ended.
struct VaeTrainingResult {
  /// A stop was requested before the last epoch ended: o.stop's, or the process-wide one
  /// (which stays set until clear_stop()).
  bool interrupted = false;
  int epochs_done = 0;  ///< epochs finished and in the files (those of the checkpoint included)
  int stopped_in = 0;   ///< interrupted: the epoch it was in (its batches are lost)
  double test_loss = std::numeric_limits<double>::quiet_NaN();  ///< the last epoch's, NaN if this call ran none
};

namespace vae_training_detail {
template <class T>
void save_weights(const std::filesystem::path& p, const Vae<T>& vae) {
  save_vae(p, vae);
}
template <class T>
void save_weights(const std::filesystem::path& p, const ConvVae<T>& vae) {
  save_conv_vae(p, vae);
}
template <class T>
void save_weights(const std::filesystem::path& p, const StyleVae<T>& vae) {
  save_style_vae(p, vae);
}
}  // namespace vae_training_detail

/// Trains `vae` (nn::Vae, nn::ConvVae or nn::StyleVae) on the columns of `train`, reporting the
/// negative ELBO of `test` after every epoch (both data_dim() rows, values in [0, 1]). With the
/// same options and data it makes the same draws in the same order as every earlier version of
/// prilo-train-vae, so it reproduces the shipped weights (docs/training.md). Bad options or
/// data are invalid_input naming them; a missing or foreign checkpoint on resume is file_error
/// or invalid_input; a loss that is not finite stops the run with invalid_input naming the epoch
/// and batch (the files keep the last finished epoch). Uses OpenMP's threads inside the layers.
/// The data are of the model's scalar type (any expression of it: a block of a larger set).
template <class Model, class T = typename Model::scalar>
VaeTrainingResult train_vae(Model& vae, const std::type_identity_t<Mat<T>>& train,
                            const std::type_identity_t<Mat<T>>& test, const VaeTrainingOptions& o,
                            const VaeTrainingCallbacks& cb = {}) {
  const Eigen::Index n = train.cols(), d = vae.data_dim();
  detail::check_training_schedule("train_vae", o.epochs, o.batch, o.learning_rate);
  check_learning_rate_fits<T>("train_vae", "learning rate", o.learning_rate);
  if (o.resume && o.checkpoint.empty()) detail::fail("train_vae: resume needs a checkpoint path");
  for (const auto* set : {&train, &test}) {
    const char* what = set == &train ? "training" : "test";
    if (set->cols() == 0) detail::fail("train_vae: no ", what, " images");
    if (set->rows() != d)
      detail::fail("train_vae: ", what, " images have ", set->rows(), " values, the model takes ", d);
    if (!set->allFinite()) detail::fail("train_vae: the ", what, " images hold NaN or infinite values");
  }

  const FlushDenormalsTeam flush;  // the BLAS's threads too (prilo/parallel.hpp)
  AdamTrainer<T> adam({.learning_rate = T(o.learning_rate)});
  auto params = vae.parameters();
  Rng rng(o.seed + 1);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index(0));
  const long batches = long(n / o.batch + (n % o.batch != 0)), total = batches * o.epochs;  // no n + batch overflow
  if (double(batches) * double(o.epochs) >= double(std::numeric_limits<int>::max()))
    detail::fail("train_vae: ", o.epochs, " epochs of ", batches,
                 " batches are more Adam steps than its counter holds");
  VaeTrainingResult result;
  // what the checkpoint keeps of the run (the images' fingerprint is a pass over all of them:
  // only made when there is a checkpoint)
  std::optional<TrainingKey> key;
  if (!o.checkpoint.empty())
    key = TrainingKey{.data = data_fingerprint(train),
                      .batch = std::uint64_t(o.batch),
                      .learning_rate = o.learning_rate,
                      .seed = o.seed};
  if (o.resume) {
    if (!std::filesystem::exists(o.checkpoint))
      throw file_error(o.checkpoint.string() + ": no checkpoint to resume from");
    TrainingState st = load_checkpoint(o.checkpoint, vae, adam);
    if (st.order.size() != order.size())
      throw invalid_input(o.checkpoint.string() + ": the checkpoint shuffles " + std::to_string(st.order.size()) +
                          " images, not " + std::to_string(order.size()) + " (was it written for these images?)");
    check_training_key(o.checkpoint, st.key, *key);
    // one Adam step per batch of at least one image: more steps than the epochs' images is damage
    if (double(adam.iteration()) > double(st.epoch) * double(n))
      throw file_error(o.checkpoint.string() + ": corrupt checkpoint: Adam's step " + std::to_string(adam.iteration()) +
                       " is more than " + std::to_string(st.epoch) + " epochs of " + std::to_string(n) +
                       " images can make");
    if (st.epoch >= o.epochs)
      detail::fail("train_vae: ", o.checkpoint.string(), " holds ", st.epoch, " epochs already; resume to more than ",
                   st.epoch);
    order = std::move(st.order);
    rng.set_state(st.rng);
    result.epochs_done = st.epoch;
    if (cb.resumed) cb.resumed(st.epoch);
  }
  const long done_before = long(result.epochs_done) * batches;
  long done = done_before;
  Mat<T> xb(d, std::min<Eigen::Index>(o.batch, n));  // a batch never holds more than the data
  // what the files hold, for the errors below
  const auto files = [&] {
    return o.weights.empty() && o.checkpoint.empty() ? std::string()
           : result.epochs_done > 0                  ? "; the files hold epoch " + std::to_string(result.epochs_done)
                                                     : "; no file was written";
  };
  for (int epoch = result.epochs_done + 1; epoch <= o.epochs; ++epoch) {
    rng.shuffle(order);
    double sum = 0;
    for (long b = 0; b < batches; ++b) {
      if (stop_requested(o.stop)) {
        result.interrupted = true;
        result.stopped_in = epoch;
        return result;
      }
      const Eigen::Index j0 = b * o.batch, nb = std::min<Eigen::Index>(o.batch, n - j0);
      xb.resize(d, nb);
      for (Eigen::Index j = 0; j < nb; ++j) xb.col(j) = train.col(order[static_cast<std::size_t>(j0 + j)]);
      const Mat<T> eps = rng.normal_matrix<T>(vae.latent_dim(), nb);
      vae.zero_grad();
      const auto l = vae.loss(xb, eps, true);
      if (!std::isfinite(double(l.total)))
        detail::fail("train_vae: the loss is ", double(l.total), " in epoch ", epoch, ", batch ", b + 1,
                     " (try a smaller learning rate)", files());
      adam.step(params);
      // a loss can stay finite while a huge step has made the weights infinite: never saved so
      check_parameters_finite("train_vae", params, epoch, b + 1, files);
      sum += double(l.total) * double(nb);
      ++done;
      if (cb.batch)
        cb.batch({.epoch = epoch,
                  .epochs = o.epochs,
                  .batch = b + 1,
                  .batches = batches,
                  .done = done,
                  .total = total,
                  .done_before = done_before,
                  .images = nb,
                  .loss = double(l.total),
                  .bce = double(l.bce),
                  .kl = double(l.kl)});
    }
    result.test_loss = mean_negative_elbo(vae, test, o.seed + 2);
    // finite weights can still decode a test image to a pixel of exactly 0 or 1 against its
    // value: a model with an infinite test loss is not saved as a result
    if (!std::isfinite(result.test_loss))
      detail::fail("train_vae: the test loss is ", result.test_loss, " after epoch ", epoch,
                   " (try a smaller learning rate)", files());
    if (!o.weights.empty()) vae_training_detail::save_weights(o.weights, vae);
    if (!o.checkpoint.empty()) save_checkpoint(o.checkpoint, vae, adam, {epoch, order, rng.state(), key});
    result.epochs_done = epoch;
    if (cb.epoch) cb.epoch({epoch, sum / double(n), result.test_loss});
  }
  return result;
}

}  // namespace prilo::nn

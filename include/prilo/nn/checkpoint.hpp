// Training checkpoints: the VAE, Adam's moments, the epoch, the shuffle order and the random
// stream in one weights-format file, written atomically, so that a stopped training resumes
// exactly where it was (prilo-train-vae --resume).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "../io/weights.hpp"
#include "../optim/optimisers.hpp"
#include "../random.hpp"
#include "state_io.hpp"
#include "vae.hpp"

namespace prilo::nn {

inline constexpr const char* vae_checkpoint_tag = "vae-mlp-checkpoint";

/// The name of the first tensor of `ps` that holds NaN or infinite values ("" when all are
/// finite): a trainer checks its model after each optimiser step, since a loss can stay finite
/// (a saturated sigmoid) while a huge learning rate has made the weights infinite.
template <class T>
std::string first_nonfinite_parameter(const ParamList<T>& ps) {
  for (const auto& p : ps)
    if (!p.value.allFinite()) return p.name;
  return {};
}

/// Fails with invalid_input "<trainer>: training diverged: <what> X holds NaN or infinite
/// values at epoch e, batch b (try a smaller <rate>)<files>": the trainers' one wording of it;
/// `files` says what the output holds.
[[noreturn]] inline void fail_diverged(const char* trainer, const char* what, const std::string& tensor, int e, long b,
                                       const char* rate, const std::string& files) {
  prilo::detail::fail(trainer, ": training diverged: ", what, " ", tensor, " holds NaN or infinite values at epoch ", e,
                      ", batch ", b, " (try a smaller ", rate, ")", files);
}

/// fail_diverged for the first tensor of `ps` that is not finite, if there is one.
template <class T>
void check_parameters_finite(const char* trainer, const ParamList<T>& ps, int e, long b, const std::string& files) {
  if (const std::string bad = first_nonfinite_parameter(ps); !bad.empty())
    fail_diverged(trainer, "parameter", bad, e, b, "learning rate", files);
}

/// A learning rate that is finite as a double but not in the model's precision T (1e39 as a
/// float) or 0 there: invalid_input naming it.
template <class T>
void check_learning_rate_fits(const char* trainer, const char* what, double lr) {
  if (!std::isfinite(T(lr)) || !(T(lr) > T(0)))
    prilo::detail::fail(trainer, ": the ", what, " ", lr, " is not a positive finite ",
                        sizeof(T) == 4 ? "float" : "double", " (the model's precision)");
}

/// Where a training run stands after a finished epoch.
struct TrainingState {
  int epoch = 0;                       ///< epochs finished
  std::vector<Eigen::Index> order;     ///< the shuffle order the next epoch permutes
  std::array<std::uint64_t, 6> rng{};  ///< Rng::state() of the training stream
};

namespace checkpoint_detail {

/// The checkpoint format shared by the VAEs: architecture `tag`, sizes = the model's sizes,
/// then epoch, Adam's step and the Rng state (12 words); tensors: the model's by name, then
/// "adam.m.<k>", "adam.v.<k>" and "train.order". Written atomically (a reader or a crash never
/// sees half a file).
template <class T, NamedTensors Model>
void save_checkpoint_as(const std::filesystem::path& path, const char* tag, std::vector<std::uint32_t> model_sizes,
                        Model& model, const AdamTrainer<T>& adam, const TrainingState& st) {
  io::WeightsFile<T> f;
  f.arch = tag;
  f.sizes = std::move(model_sizes);
  f.sizes.push_back(std::uint32_t(st.epoch));
  f.sizes.push_back(std::uint32_t(adam.iteration()));
  for (const std::uint64_t w : st.rng) {
    f.sizes.push_back(std::uint32_t(w & 0xFFFFFFFFu));
    f.sizes.push_back(std::uint32_t(w >> 32));
  }
  write_state(f, model);
  for (std::size_t k = 0; k < adam.first_moments().size(); ++k) {
    f.add("adam.m." + std::to_string(k), adam.first_moments()[k]);
    f.add("adam.v." + std::to_string(k), adam.second_moments()[k]);
  }
  Mat<T> order(Eigen::Index(st.order.size()), 1);
  for (std::size_t i = 0; i < st.order.size(); ++i) order(Eigen::Index(i)) = T(st.order[i]);  // exact below 2^24
  f.add("train.order", std::move(order));
  io::save_weights(path, f);
}

/// Restores a checkpoint written by save_checkpoint_as with the same tag into a model built
/// with `model_sizes` and an Adam trainer; returns the training state.
template <class T, NamedTensors Model>
TrainingState load_checkpoint_as(const std::filesystem::path& path, const char* tag,
                                 const std::vector<std::uint32_t>& model_sizes, const char* what, Model& model,
                                 AdamTrainer<T>& adam) {
  const auto f = io::load_weights<T>(path);
  if (f.arch != tag) throw file_error(path.string() + ": \"" + f.arch + "\" is not a " + what + " training checkpoint");
  const std::size_t ms = model_sizes.size();
  if (f.sizes.size() != ms + 14)
    throw file_error(path.string() + ": corrupt checkpoint header (" + std::to_string(f.sizes.size()) + " sizes)");
  if (!std::equal(model_sizes.begin(), model_sizes.end(), f.sizes.begin())) {
    std::string found;
    for (std::size_t i = 0; i < ms; ++i) found += (i ? ", " : "") + std::to_string(f.sizes[i]);
    throw file_error(path.string() + ": the checkpoint is for a " + what + " of sizes " + found);
  }
  auto corrupt = [&](const std::string& what_is_wrong) {
    return file_error(path.string() + ": corrupt checkpoint: " + what_is_wrong);
  };
  // counts stored as 32-bit words: beyond int's range they are damage, never a count
  if (f.sizes[ms] >= std::uint32_t(std::numeric_limits<int>::max()))
    throw corrupt("epoch " + std::to_string(f.sizes[ms]) + " is out of range");
  if (f.sizes[ms + 1] > std::uint32_t(std::numeric_limits<int>::max()))
    throw corrupt("Adam's step " + std::to_string(f.sizes[ms + 1]) + " is out of range");
  TrainingState st;
  st.epoch = int(f.sizes[ms]);
  for (std::size_t i = 0; i < 6; ++i)
    st.rng[i] = std::uint64_t(f.sizes[ms + 2 + 2 * i]) | (std::uint64_t(f.sizes[ms + 3 + 2 * i]) << 32);
  io::WeightsFile<T> state;  // the model's tensors only: read_state wants every tensor to be the model's
  state.arch = f.arch;
  for (const auto& t : f.tensors)
    if (t.name.rfind("adam.", 0) != 0 && t.name.rfind("train.", 0) != 0) state.add(t.name, t.value);
  read_state_from(path, state, model);
  if (f.sizes[ms + 1] == 0 && !f.find("adam.m.0")) {  // saved before Adam's first step
    adam.restore({}, {}, 0);
  } else {
    const auto params = model.parameters();
    std::vector<Mat<T>> m, v;
    for (std::size_t k = 0; k < params.size(); ++k) {
      m.push_back(f.at("adam.m." + std::to_string(k), params[k].value.rows(), params[k].value.cols()));
      v.push_back(f.at("adam.v." + std::to_string(k), params[k].value.rows(), params[k].value.cols()));
      if (!m.back().allFinite()) throw corrupt("Adam's first moment " + std::to_string(k) + " is not finite");
      // the second moment is a running mean of squares: finite and >= 0
      if (!(v.back().array() >= T(0)).all() || !v.back().allFinite())
        throw corrupt("Adam's second moment " + std::to_string(k) + " is negative or not finite");
    }
    adam.restore(std::move(m), std::move(v), int(f.sizes[ms + 1]));
  }
  // the shuffle order must be a permutation of 0..n-1: its entries index the training images
  const Mat<T>& order = f.at("train.order");
  std::vector<bool> seen(static_cast<std::size_t>(order.size()), false);
  for (Eigen::Index i = 0; i < order.size(); ++i) {
    const T v = order(i);
    if (!(v >= T(0) && v < T(order.size()) && v == std::floor(v)) || seen[std::size_t(v)])
      throw corrupt("the shuffle order is not a permutation of 0.." + std::to_string(order.size() - 1) + " (entry " +
                    std::to_string(i) + ")");
    seen[std::size_t(v)] = true;
    st.order.push_back(Eigen::Index(v));
  }
  return st;
}

}  // namespace checkpoint_detail

/// Writes the checkpoint of the MLP VAE (atomically: a reader or a crash never sees half a file).
template <class T>
void save_checkpoint(const std::filesystem::path& path, Vae<T>& vae, const AdamTrainer<T>& adam,
                     const TrainingState& st) {
  checkpoint_detail::save_checkpoint_as(
      path, vae_checkpoint_tag,
      {std::uint32_t(vae.data_dim()), std::uint32_t(vae.hidden_dim()), std::uint32_t(vae.latent_dim())}, vae, adam, st);
}

/// Restores a checkpoint into a VAE of the same sizes and an Adam trainer; returns the
/// training state. file_error / invalid_input name the problem (another architecture, other
/// sizes, missing tensors).
template <class T>
TrainingState load_checkpoint(const std::filesystem::path& path, Vae<T>& vae, AdamTrainer<T>& adam) {
  return checkpoint_detail::load_checkpoint_as(
      path, vae_checkpoint_tag,
      {std::uint32_t(vae.data_dim()), std::uint32_t(vae.hidden_dim()), std::uint32_t(vae.latent_dim())}, "VAE", vae,
      adam);
}

}  // namespace prilo::nn

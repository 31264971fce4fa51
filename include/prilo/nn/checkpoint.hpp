// Training checkpoints: the VAE, Adam's moments, the epoch, the shuffle order and the random
// stream in one weights-format file, written atomically, so that a stopped training resumes
// exactly where it was (prilo-train-vae --resume).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../io/weights.hpp"
#include "../optim/optimisers.hpp"
#include "../random.hpp"
#include "state_io.hpp"
#include "vae.hpp"

namespace prilo::nn {

inline constexpr const char* vae_checkpoint_tag = "vae-mlp-checkpoint";

/// Where a training run stands after a finished epoch.
struct TrainingState {
  int epoch = 0;                       ///< epochs finished
  std::vector<Eigen::Index> order;     ///< the shuffle order the next epoch permutes
  std::array<std::uint64_t, 6> rng{};  ///< Rng::state() of the training stream
};

/// Writes the checkpoint (atomically: a reader or a crash never sees half a file).
template <class T>
void save_checkpoint(const std::filesystem::path& path, Vae<T>& vae, const AdamTrainer<T>& adam,
                     const TrainingState& st) {
  io::WeightsFile<T> f;
  f.arch = vae_checkpoint_tag;
  f.sizes = {std::uint32_t(vae.data_dim()), std::uint32_t(vae.hidden_dim()), std::uint32_t(vae.latent_dim()),
             std::uint32_t(st.epoch), std::uint32_t(adam.iteration())};
  for (const std::uint64_t w : st.rng) {
    f.sizes.push_back(std::uint32_t(w & 0xFFFFFFFFu));
    f.sizes.push_back(std::uint32_t(w >> 32));
  }
  write_state(f, vae);
  for (std::size_t k = 0; k < adam.first_moments().size(); ++k) {
    f.add("adam.m." + std::to_string(k), adam.first_moments()[k]);
    f.add("adam.v." + std::to_string(k), adam.second_moments()[k]);
  }
  Mat<T> order(Eigen::Index(st.order.size()), 1);
  for (std::size_t i = 0; i < st.order.size(); ++i) order(Eigen::Index(i)) = T(st.order[i]);  // exact below 2^24
  f.add("train.order", std::move(order));
  io::save_weights(path, f);
}

/// Restores a checkpoint into a VAE of the same sizes and an Adam trainer; returns the
/// training state. file_error / invalid_input name the problem (another architecture, other
/// sizes, missing tensors).
template <class T>
TrainingState load_checkpoint(const std::filesystem::path& path, Vae<T>& vae, AdamTrainer<T>& adam) {
  const auto f = io::load_weights<T>(path);
  if (f.arch != vae_checkpoint_tag)
    throw file_error(path.string() + ": \"" + f.arch + "\" is not a VAE training checkpoint");
  if (f.sizes.size() != 17)
    throw file_error(path.string() + ": corrupt checkpoint header (" + std::to_string(f.sizes.size()) + " sizes)");
  if (f.sizes[0] != vae.data_dim() || f.sizes[1] != vae.hidden_dim() || f.sizes[2] != vae.latent_dim())
    throw file_error(path.string() + ": the checkpoint is for a VAE of sizes " + std::to_string(f.sizes[0]) + ", " +
                     std::to_string(f.sizes[1]) + ", " + std::to_string(f.sizes[2]));
  TrainingState st;
  st.epoch = int(f.sizes[3]);
  for (int i = 0; i < 6; ++i)
    st.rng[std::size_t(i)] =
        std::uint64_t(f.sizes[std::size_t(5 + 2 * i)]) | (std::uint64_t(f.sizes[std::size_t(6 + 2 * i)]) << 32);
  io::WeightsFile<T> model;  // the model's tensors only: read_state wants every tensor to be the model's
  model.arch = f.arch;
  for (const auto& t : f.tensors)
    if (t.name.rfind("adam.", 0) != 0 && t.name.rfind("train.", 0) != 0) model.add(t.name, t.value);
  read_state(model, vae);
  if (f.sizes[4] == 0 && !f.find("adam.m.0")) {  // saved before Adam's first step
    adam.restore({}, {}, 0);
  } else {
    const auto params = vae.parameters();
    std::vector<Mat<T>> m, v;
    for (std::size_t k = 0; k < params.size(); ++k) {
      m.push_back(f.at("adam.m." + std::to_string(k), params[k].value.rows(), params[k].value.cols()));
      v.push_back(f.at("adam.v." + std::to_string(k), params[k].value.rows(), params[k].value.cols()));
    }
    adam.restore(std::move(m), std::move(v), int(f.sizes[4]));
  }
  const Mat<T>& order = f.at("train.order");
  for (Eigen::Index i = 0; i < order.size(); ++i) st.order.push_back(Eigen::Index(order(i)));
  return st;
}

}  // namespace prilo::nn

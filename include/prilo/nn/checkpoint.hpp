// Training checkpoints: the VAE, Adam's moments, the epoch, the shuffle order and the random
// stream in one weights-format file, written atomically, so that a stopped training resumes
// exactly where it was (prilo-train-vae --resume).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "../io/weights.hpp"
#include "../optim/optimisers.hpp"
#include "../random.hpp"
#include "state_io.hpp"
#include "vae.hpp"

namespace prilo::nn {

inline constexpr const char* vae_checkpoint_tag = "vae-mlp-checkpoint";

/// A learning rate that is finite as a double but not in the model's precision T (1e39 as a
/// float) or 0 there: invalid_input naming it.
template <class T>
void check_learning_rate_fits(const char* trainer, const char* what, double lr) {
  if (!std::isfinite(T(lr)) || !(T(lr) > T(0)))
    prilo::detail::fail(trainer, ": the ", what, " ", lr, " is not a positive finite ",
                        sizeof(T) == 4 ? "float" : "double", " (the model's precision)");
}

/// What a training run's steps depend on besides the model: the training images, the batch
/// size, the learning rate and the seed. A checkpoint keeps it, and a run resumes from it only
/// under the same key: resumed with other data or settings, it would go on silently as a run
/// that no single setting describes.
struct TrainingKey {
  std::uint64_t data = 0;  ///< data_fingerprint of the training images
  std::uint64_t batch = 0;
  double learning_rate = 0;
  std::uint64_t seed = 0;
  bool operator==(const TrainingKey&) const = default;
};

/// A 64-bit fingerprint of a matrix: its shape and the bit pattern of every value, in column
/// order (two data sets that differ anywhere differ here, barring a 2^-64 collision).
template <class D>
std::uint64_t data_fingerprint(const Eigen::MatrixBase<D>& x) {
  using S = typename D::Scalar;
  using Word = std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(S) == sizeof(Word), "data_fingerprint: float or double values");
  auto mix = [](std::uint64_t h, std::uint64_t v) {  // a multiply-xorshift step per word
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
  };
  std::uint64_t h = mix(mix(0x243F6A8885A308D3ull, std::uint64_t(x.rows())), std::uint64_t(x.cols()));
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const S v = x(i, j);
      Word w;
      std::memcpy(&w, &v, sizeof w);
      h = mix(h, w);
    }
  return h;
}

/// Where a training run stands after a finished epoch.
struct TrainingState {
  int epoch = 0;                       ///< epochs finished
  std::vector<Eigen::Index> order;     ///< the shuffle order the next epoch permutes
  std::array<std::uint64_t, 6> rng{};  ///< Rng::state() of the training stream
  /// What the run's steps depend on (saved when set; checkpoints written before prilo kept it
  /// load without one, and resume unchecked).
  std::optional<TrainingKey> key{};
};

/// invalid_input naming the first difference when the checkpoint at `path` was written under
/// another key than `now` (other training images, batch size, learning rate or seed); nothing
/// when it holds no key (written before prilo kept one).
inline void check_training_key(const std::filesystem::path& path, const std::optional<TrainingKey>& saved,
                               const TrainingKey& now) {
  if (!saved || *saved == now) return;
  const std::string was = path.string() + ": the checkpoint was written ";
  const std::string remedy = " (resume with the run's own settings, or train afresh without resuming)";
  auto hex = [](std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
    return std::string(b);
  };
  if (saved->data != now.data)
    throw invalid_input(was + "for other training images (fingerprint " + hex(saved->data) + ", these images " +
                        hex(now.data) + ")" + remedy);
  if (saved->batch != now.batch)
    throw invalid_input(was + "with batch size " + std::to_string(saved->batch) + ", not " + std::to_string(now.batch) +
                        remedy);
  if (saved->learning_rate != now.learning_rate) {
    auto shortest = [](double v) {  // the shortest text that reads back as v: two rates never print alike
      char b[32];
      const auto r = std::to_chars(b, b + sizeof b, v);
      return std::string(b, r.ptr);
    };
    throw invalid_input(was + "with learning rate " + shortest(saved->learning_rate) + ", not " +
                        shortest(now.learning_rate) + remedy);
  }
  throw invalid_input(was + "with seed " + std::to_string(saved->seed) + ", not " + std::to_string(now.seed) + remedy);
}

namespace checkpoint_detail {

/// What is wrong with a training state's shuffle order and Rng state, or "" (the checks that
/// save and load share: a state one refuses, the other never writes).
inline std::string state_problem(const std::vector<Eigen::Index>& order, const std::array<std::uint64_t, 6>& rng) {
  std::vector<bool> seen(order.size(), false);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Eigen::Index v = order[i];
    if (v < 0 || std::uint64_t(v) >= order.size() || seen[std::size_t(v)])
      return "the shuffle order is not a permutation of 0.." + std::to_string(std::int64_t(order.size()) - 1) +
             " (entry " + std::to_string(i) + ")";
    seen[std::size_t(v)] = true;
  }
  // Rng::state(): four xoshiro words (never all zero: that state only ever draws 0), a flag for
  // the Box-Muller spare (0 or 1) and the spare's bits (a finite double)
  if ((rng[0] | rng[1] | rng[2] | rng[3]) == 0) return "the random generator's state is all zero";
  if (rng[4] > 1) return "the random generator's spare flag is " + std::to_string(rng[4]) + ", not 0 or 1";
  double spare = 0;
  std::memcpy(&spare, &rng[5], sizeof spare);
  if (!std::isfinite(spare)) return "the random generator's spare value is not finite";
  return {};
}

/// The 64-bit values of a key, in the order the checkpoint keeps them.
inline std::array<std::uint64_t, 4> key_words(const TrainingKey& k) {
  std::uint64_t lr = 0;
  std::memcpy(&lr, &k.learning_rate, sizeof lr);
  return {k.data, k.batch, lr, k.seed};
}

/// The checkpoint format shared by the VAEs: architecture `tag`, sizes = the model's sizes,
/// then epoch, Adam's step and the Rng state (12 words), then, when the state has one, the
/// training key (data fingerprint, batch size, learning rate's bits and seed: 8 words); tensors:
/// the model's by name, then "adam.m.<k>", "adam.v.<k>" and "train.order". Written atomically
/// (a reader or a crash never sees half a file).
template <class T, NamedTensors Model>
void save_checkpoint_as(const std::filesystem::path& path, const char* tag, std::vector<std::uint32_t> model_sizes,
                        const Model& model, const AdamTrainer<T>& adam, const TrainingState& st) {
  // what the file cannot hold is refused here, not found corrupt when the run resumes: the epoch
  // as a 32-bit word, the shuffle order as T (exact integers up to 2^digits)
  if (st.epoch < 0 || st.epoch == std::numeric_limits<int>::max())
    detail::fail("save_checkpoint: the epoch must be in 0..", std::numeric_limits<int>::max() - 1, ", got ", st.epoch);
  constexpr auto exact = std::uint64_t(1) << std::numeric_limits<T>::digits;
  if (std::uint64_t(st.order.size()) > exact)
    detail::fail("save_checkpoint: a shuffle order of ", st.order.size(), " entries cannot be kept in ",
                 sizeof(T) == 4 ? "float" : "double", " (at most ", exact, " training images)");
  if (const auto problem = state_problem(st.order, st.rng); !problem.empty())
    detail::fail("save_checkpoint: ", problem);
  io::WeightsFile<T> f;
  f.arch = tag;
  f.sizes = std::move(model_sizes);
  f.sizes.push_back(std::uint32_t(st.epoch));
  f.sizes.push_back(std::uint32_t(adam.iteration()));
  auto push64 = [&](std::uint64_t w) {
    f.sizes.push_back(std::uint32_t(w & 0xFFFFFFFFu));
    f.sizes.push_back(std::uint32_t(w >> 32));
  };
  for (const std::uint64_t w : st.rng) push64(w);
  if (st.key)
    for (const std::uint64_t w : key_words(*st.key)) push64(w);
  write_state(f, model);
  for (std::size_t k = 0; k < adam.first_moments().size(); ++k) {
    f.add("adam.m." + std::to_string(k), adam.first_moments()[k]);
    f.add("adam.v." + std::to_string(k), adam.second_moments()[k]);
  }
  Mat<T> order(Eigen::Index(st.order.size()), 1);
  for (std::size_t i = 0; i < st.order.size(); ++i) order(Eigen::Index(i)) = T(st.order[i]);  // exact: checked above
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
  if (f.sizes.size() != ms + 14 && f.sizes.size() != ms + 22)  // without or with the training key
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
  const auto word = [&](std::size_t at) { return std::uint64_t(f.sizes[at]) | (std::uint64_t(f.sizes[at + 1]) << 32); };
  for (std::size_t i = 0; i < 6; ++i) st.rng[i] = word(ms + 2 + 2 * i);
  if (f.sizes.size() == ms + 22) {
    TrainingKey k{.data = word(ms + 14), .batch = word(ms + 16), .seed = word(ms + 20)};
    const std::uint64_t lr = word(ms + 18);
    std::memcpy(&k.learning_rate, &lr, sizeof lr);
    st.key = k;
  }
  io::WeightsFile<T> state;  // the model's tensors only: read_state wants every tensor to be the model's
  state.arch = f.arch;
  for (const auto& t : f.tensors)
    if (t.name.rfind("adam.", 0) != 0 && t.name.rfind("train.", 0) != 0) state.add(t.name, t.value);
  read_state_from(path, state, model);
  // the training tensors: each one expected, of its shape, and no other (a tensor the run
  // would ignore is damage, not extra state)
  std::unordered_set<std::string> used;
  const auto tensor = [&](const std::string& name, Eigen::Index rows, Eigen::Index cols) -> const Mat<T>& {
    const Mat<T>* t = f.find(name);
    if (!t) throw corrupt("no tensor \"" + name + "\"");
    if (t->rows() != rows || t->cols() != cols)
      throw corrupt("tensor \"" + name + "\" is " + std::to_string(t->rows()) + "x" + std::to_string(t->cols()) +
                    ", expected " + std::to_string(rows) + "x" + std::to_string(cols));
    used.insert(name);
    return *t;
  };
  if (f.sizes[ms + 1] == 0 && !f.find("adam.m.0")) {  // saved before Adam's first step
    adam.restore({}, {}, 0);
  } else {
    const auto params = model.parameters();
    std::vector<Mat<T>> m, v;
    for (std::size_t k = 0; k < params.size(); ++k) {
      m.push_back(tensor("adam.m." + std::to_string(k), params[k].value.rows(), params[k].value.cols()));
      v.push_back(tensor("adam.v." + std::to_string(k), params[k].value.rows(), params[k].value.cols()));
      if (!m.back().allFinite()) throw corrupt("Adam's first moment " + std::to_string(k) + " is not finite");
      // the second moment is a running mean of squares: finite and >= 0
      if (!(v.back().array() >= T(0)).all() || !v.back().allFinite())
        throw corrupt("Adam's second moment " + std::to_string(k) + " is negative or not finite");
    }
    adam.restore(std::move(m), std::move(v), int(f.sizes[ms + 1]));
  }
  // the shuffle order (a column) must be a permutation of 0..n-1: its entries index the training images
  const Mat<T>* order = f.find("train.order");
  if (!order) throw corrupt("no tensor \"train.order\"");
  tensor("train.order", order->size(), 1);
  for (Eigen::Index i = 0; i < order->size(); ++i) {
    const T v = (*order)(i);
    if (!(v >= T(0) && v < T(order->size()) && v == std::floor(v)))
      throw corrupt("the shuffle order is not a permutation of 0.." + std::to_string(order->size() - 1) + " (entry " +
                    std::to_string(i) + ")");
    st.order.push_back(Eigen::Index(v));
  }
  if (const auto problem = state_problem(st.order, st.rng); !problem.empty()) throw corrupt(problem);
  for (const auto& t : f.tensors)
    if ((t.name.rfind("adam.", 0) == 0 || t.name.rfind("train.", 0) == 0) && !used.count(t.name))
      throw corrupt("tensor \"" + t.name + "\" belongs to no part of the training state");
  return st;
}

}  // namespace checkpoint_detail

/// Writes the checkpoint of the MLP VAE (atomically: a reader or a crash never sees half a file).
template <class T>
void save_checkpoint(const std::filesystem::path& path, const Vae<T>& vae, const AdamTrainer<T>& adam,
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

// Saving and loading the convolutional VAE, and its training checkpoints, in the prilo weights
// format (docs/weights-format.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "../io/weights.hpp"
#include "checkpoint.hpp"
#include "conv_vae.hpp"
#include "state_io.hpp"

namespace prilo::nn {

inline constexpr const char* conv_vae_arch_tag = "vae-conv";
inline constexpr const char* conv_vae_checkpoint_tag = "vae-conv-checkpoint";

namespace conv_vae_detail {
/// The header sizes of a ConvVae: {C, H, W, latent, channels1, channels2}.
inline std::vector<std::uint32_t> conv_vae_header(const ConvVaeSizes& s) {
  return {std::uint32_t(s.image.channels), std::uint32_t(s.image.height), std::uint32_t(s.image.width),
          std::uint32_t(s.latent),         std::uint32_t(s.channels1),    std::uint32_t(s.channels2)};
}
/// Number of trainable values of the convolutional encoder (4×4 kernels) of these sizes,
/// whatever the layers' storage layout.
inline double conv_encoder_parameter_count(const ConvVaeSizes& s) {
  const double C = double(s.image.channels), c1 = double(s.channels1), c2 = double(s.channels2), L = double(s.latent),
               Q = c2 * double(s.image.height / 4) * double(s.image.width / 4);
  return (16 * C * c1 + c1) + (16 * c1 * c2 + c2) + (Q * 2 * L + 2 * L);
}
/// Number of trainable values of a ConvVae of these sizes.
inline double conv_vae_parameter_count(const ConvVaeSizes& s) {
  const double C = double(s.image.channels), c1 = double(s.channels1), c2 = double(s.channels2), L = double(s.latent),
               Q = c2 * double(s.image.height / 4) * double(s.image.width / 4);
  return conv_encoder_parameter_count(s) + (L * Q + Q) + (16 * c2 * c1 + c1) + (16 * c1 * C + C);
}

/// Reads a model built from ConvVaeSizes (ConvVae, StyleVae) stored under architecture `tag`
/// with the 6 sizes of conv_vae_header; `what` names it in the errors ("convolutional VAE"),
/// `count` gives the number of values its sizes need. The sizes are checked against the
/// values the file holds before any model is built (a corrupt header must not allocate a model
/// larger than the file); read_state then names any tensor the model does not take.
template <class Model, class T = typename Model::scalar>
Model load_sized_vae(const std::filesystem::path& path, const char* tag, const std::string& what,
                     double (*count)(const ConvVaeSizes&)) {
  auto f = io::load_weights<T>(path);
  if (f.arch != tag)
    throw file_error(path.string() + ": architecture \"" + f.arch + "\" is not a " + what + " (expected \"" + tag +
                     "\")");
  if (f.sizes.size() != 6)
    throw file_error(path.string() + ": a " + what + " needs 6 sizes (C, H, W, latent, channels1, channels2), found " +
                     std::to_string(f.sizes.size()));
  ConvVaeSizes s;
  s.image = {f.sizes[0], f.sizes[1], f.sizes[2]};
  s.latent = f.sizes[3];
  s.channels1 = f.sizes[4];
  s.channels2 = f.sizes[5];
  std::string listed;
  for (std::size_t i = 0; i < 6; ++i) listed += (i ? ", " : "") + std::to_string(f.sizes[i]);
  for (const std::uint32_t v : f.sizes)
    if (v == 0) throw file_error(path.string() + ": corrupt: " + what + " sizes must be positive, found " + listed);
  if (s.image.height % 4 != 0 || s.image.width % 4 != 0)
    throw file_error(path.string() + ": corrupt: image height and width must be multiples of 4, found " + listed);
  double stored = 0;
  for (const auto& t : f.tensors) stored += double(t.value.size());
  const double needed = count(s);
  if (stored < needed) {     // more is read_state's to name: a tensor no parameter takes, or one of another shape
    std::ostringstream msg;  // counts as doubles: sizes from a corrupt header can need more than a long holds
    msg << std::fixed << std::setprecision(0) << path.string() << ": corrupt: the sizes " << listed << " need "
        << needed << " values, the file holds " << stored;
    throw file_error(msg.str());
  }
  Model vae(s, 0);
  read_state_from(path, f, vae);
  return vae;
}
}  // namespace conv_vae_detail

/// Writes encoder and decoder weights (architecture "vae-conv", sizes {C, H, W, latent,
/// channels1, channels2}), each tensor under its name in vae.parameters(): "encoder.0.weight"
/// … "decoder.2.bias".
template <class T>
void save_conv_vae(const std::filesystem::path& path, const ConvVae<T>& vae) {
  io::WeightsFile<T> f;
  f.arch = conv_vae_arch_tag;
  f.sizes = conv_vae_detail::conv_vae_header(vae.sizes());
  write_state(f, vae);
  io::save_weights(path, f);
}

/// Reads a convolutional VAE, every tensor by name; any stored scalar type converts to T.
/// Another architecture, a corrupt header or a tensor of the wrong shape gives file_error /
/// invalid_input naming the problem. The sizes are checked against the number of values the
/// file holds before any model is built (a corrupt header must not allocate a huge model).
template <class T>
ConvVae<T> load_conv_vae(const std::filesystem::path& path) {
  return conv_vae_detail::load_sized_vae<ConvVae<T>>(path, conv_vae_arch_tag, "convolutional VAE",
                                                     conv_vae_detail::conv_vae_parameter_count);
}

/// Writes a training checkpoint of a convolutional VAE (the format of save_checkpoint, tag
/// "vae-conv-checkpoint").
template <class T>
void save_checkpoint(const std::filesystem::path& path, const ConvVae<T>& vae, const AdamTrainer<T>& adam,
                     const TrainingState& st) {
  checkpoint_detail::save_checkpoint_as(path, conv_vae_checkpoint_tag, conv_vae_detail::conv_vae_header(vae.sizes()),
                                        vae, adam, st);
}

/// Restores a checkpoint into a convolutional VAE of the same sizes and an Adam trainer.
template <class T>
TrainingState load_checkpoint(const std::filesystem::path& path, ConvVae<T>& vae, AdamTrainer<T>& adam) {
  return checkpoint_detail::load_checkpoint_as(
      path, conv_vae_checkpoint_tag, conv_vae_detail::conv_vae_header(vae.sizes()), "convolutional VAE", vae, adam);
}

}  // namespace prilo::nn

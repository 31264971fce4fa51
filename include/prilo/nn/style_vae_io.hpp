// Saving and loading the style VAE (nn/style_vae.hpp), and its training checkpoints, in the
// prilo weights format (docs/weights-format.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "../io/weights.hpp"
#include "checkpoint.hpp"
#include "conv_vae_io.hpp"
#include "state_io.hpp"
#include "style_vae.hpp"

namespace prilo::nn {

inline constexpr const char* style_vae_arch_tag = "vae-style";
inline constexpr const char* style_vae_checkpoint_tag = "vae-style-checkpoint";

namespace style_vae_detail {
/// Number of trainable values of a StyleVae of these sizes: the convolutional encoder, the
/// dense and transposed-convolution layers (4×4 kernels) and the three modulations' affine
/// maps of z0 (2·channels × (latent + 1) each).
inline double style_vae_parameter_count(const StyleVaeSizes& s) {
  const double C = double(s.image.channels), c1 = double(s.channels1), c2 = double(s.channels2), L = double(s.latent),
               Q = c2 * double(s.image.height / 4) * double(s.image.width / 4);
  const double layers = (L * Q + Q) + (16 * c2 * c1 + c1) + (16 * c1 * C + C);
  const double modulations = 2 * (c2 + c1 + C) * (L + 1);
  return conv_vae_detail::conv_encoder_parameter_count(s) + layers + modulations;
}
}  // namespace style_vae_detail

/// Writes encoder and decoder weights (architecture "vae-style", sizes {C, H, W, latent,
/// channels1, channels2}), each tensor under its name in vae.parameters(): "encoder.0.weight"
/// … "decoder.6.bias" (decoder modules 1, 3, 5: the layers; 2, 4, 6: the modulations).
template <class T>
void save_style_vae(const std::filesystem::path& path, const StyleVae<T>& vae) {
  io::WeightsFile<T> f;
  f.arch = style_vae_arch_tag;
  f.sizes = conv_vae_detail::conv_vae_header(vae.sizes());
  write_state(f, vae);
  io::save_weights(path, f);
}

/// Reads a style VAE, every tensor by name; any stored scalar type converts to T. Another
/// architecture (a "vae-conv" file included), a corrupt header or a tensor of the wrong shape
/// gives file_error / invalid_input naming the problem.
template <class T>
StyleVae<T> load_style_vae(const std::filesystem::path& path) {
  return conv_vae_detail::load_sized_vae<StyleVae<T>>(path, style_vae_arch_tag, "style VAE",
                                                      style_vae_detail::style_vae_parameter_count);
}

/// Writes a training checkpoint of a style VAE (the format of save_checkpoint, tag
/// "vae-style-checkpoint").
template <class T>
void save_checkpoint(const std::filesystem::path& path, const StyleVae<T>& vae, const AdamTrainer<T>& adam,
                     const TrainingState& st) {
  checkpoint_detail::save_checkpoint_as(path, style_vae_checkpoint_tag, conv_vae_detail::conv_vae_header(vae.sizes()),
                                        vae, adam, st);
}

/// Restores a checkpoint into a style VAE of the same sizes and an Adam trainer.
template <class T>
TrainingState load_checkpoint(const std::filesystem::path& path, StyleVae<T>& vae, AdamTrainer<T>& adam) {
  return checkpoint_detail::load_checkpoint_as(path, style_vae_checkpoint_tag,
                                               conv_vae_detail::conv_vae_header(vae.sizes()), "style VAE", vae, adam);
}

}  // namespace prilo::nn

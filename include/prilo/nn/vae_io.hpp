// Saving and loading the VAE in the prilo weights format (docs/weights-format.md).
#pragma once

#include <filesystem>
#include <string>

#include "../io/weights.hpp"
#include "state_io.hpp"
#include "vae.hpp"

namespace prilo::nn {

inline constexpr const char* vae_arch_tag = "vae-mlp";

/// Writes encoder and decoder weights (architecture "vae-mlp", sizes {data, hidden, latent}),
/// each tensor under its name in vae.parameters(): "encoder.0.weight" … "decoder.2.bias".
template <class T>
void save_vae(const std::filesystem::path& path, Vae<T>& vae) {
  io::WeightsFile<T> f;
  f.arch = vae_arch_tag;
  f.sizes = {std::uint32_t(vae.data_dim()), std::uint32_t(vae.hidden_dim()), std::uint32_t(vae.latent_dim())};
  write_state(f, vae);
  io::save_weights(path, f);
}

/// Reads a VAE, every tensor by name; any stored scalar type converts to T. A file of another
/// architecture, a truncated or corrupt file gives prilo::file_error / invalid_input naming
/// the problem.
template <class T>
Vae<T> load_vae(const std::filesystem::path& path) {
  auto f = io::load_weights<T>(path);
  if (f.arch != vae_arch_tag)
    throw file_error(path.string() + ": architecture \"" + f.arch + "\" is not a VAE (expected \"" + vae_arch_tag +
                     "\")");
  if (f.sizes.size() != 3)
    throw file_error(path.string() + ": a VAE needs 3 sizes (data, hidden, latent), found " +
                     std::to_string(f.sizes.size()));
  Vae<T> vae(f.sizes[0], f.sizes[1], f.sizes[2], 0);
  read_state(f, vae);
  return vae;
}

}  // namespace prilo::nn

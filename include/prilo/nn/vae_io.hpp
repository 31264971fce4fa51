// Saving and loading the VAE in the prilo weights format (docs/weights-format.md).
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <utility>

#include "../io/weights.hpp"
#include "state_io.hpp"
#include "vae.hpp"

namespace prilo::nn {

inline constexpr const char* vae_arch_tag = "vae-mlp";

/// Writes encoder and decoder weights (architecture "vae-mlp", sizes {data, hidden, latent}),
/// each tensor under its name in vae.parameters(): "encoder.0.weight" … "decoder.2.bias".
template <class T>
void save_vae(const std::filesystem::path& path, const Vae<T>& vae) {
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
  // the stored tensors must have the shapes the sizes imply before any model is built from
  // them (a corrupt header must not allocate, or initialise, a model of arbitrary size)
  const Eigen::Index d = f.sizes[0], h = f.sizes[1], z = f.sizes[2];
  if (d == 0 || h == 0 || z == 0)
    throw file_error(path.string() + ": corrupt: VAE sizes must be positive, found " + std::to_string(d) + ", " +
                     std::to_string(h) + ", " + std::to_string(z));
  const std::pair<const char*, std::array<Eigen::Index, 2>> shapes[] = {
      {"encoder.0.weight", {h, d}}, {"encoder.0.bias", {h, 1}},       {"encoder.1.weight", {h, h}},
      {"encoder.1.bias", {h, 1}},   {"encoder.2.weight", {2 * z, h}}, {"encoder.2.bias", {2 * z, 1}},
      {"decoder.0.weight", {h, z}}, {"decoder.0.bias", {h, 1}},       {"decoder.1.weight", {h, h}},
      {"decoder.1.bias", {h, 1}},   {"decoder.2.weight", {d, h}},     {"decoder.2.bias", {d, 1}}};
  for (const auto& [name, rc] : shapes) {
    const Mat<T>* m = f.find(name);
    if (!m) throw file_error(path.string() + ": no tensor named \"" + name + "\" (a VAE needs 12)");
    if (m->rows() != rc[0] || m->cols() != rc[1])
      throw file_error(path.string() + ": corrupt: tensor \"" + name + "\" is " + std::to_string(m->rows()) + "x" +
                       std::to_string(m->cols()) + " but the sizes " + std::to_string(d) + ", " + std::to_string(h) +
                       ", " + std::to_string(z) + " need " + std::to_string(rc[0]) + "x" + std::to_string(rc[1]));
  }
  Vae<T> vae(d, h, z, 0);
  read_state_from(path, f, vae);
  return vae;
}

}  // namespace prilo::nn

// Saving and loading a model's named tensors (parameters and buffers) through a weights file.
#pragma once

#include <concepts>
#include <filesystem>
#include <string>
#include <type_traits>
#include <unordered_set>

#include "../io/weights.hpp"
#include "parameter.hpp"

namespace prilo::nn {

/// A model whose tensors have names: parameters() and, optionally, buffers() (saved
/// non-trainable tensors), as nn::Sequential and nn::Vae provide them. Names are unique
/// within the model and stable: they are the keys of its weights files.
// clang-format 14 breaks concept definitions joined with &&: this one is laid out by hand
// clang-format off
template <class M>
concept NamedTensors =
    requires(M& m) {
      typename M::scalar;
      { m.parameters() } -> std::same_as<ParamList<typename M::scalar>>;
    } &&
    (!requires(M& m) { m.buffers(); } ||
     requires(M& m) {
       { m.buffers() } -> std::same_as<BufferList<typename M::scalar>>;
     });
// clang-format on

/// Appends every parameter, then every buffer, of `model` to f under "<prefix><name>"
/// ("decoder." + "0.weight"). save_weights rejects empty and duplicate names. The model is
/// only read: parameters() and buffers() list maps of its tensors without changing them, so a
/// const model is saved through them too.
template <class T, NamedTensors Model>
void write_state(io::WeightsFile<T>& f, const Model& model, const std::string& prefix = "") {
  auto& m = const_cast<Model&>(model);  // the lists are non-const maps; nothing is written through them
  for (const auto& p : m.parameters()) f.add(prefix + p.name, Mat<T>(p.value.template cast<T>()));
  for (const auto& b : buffers_of(m)) f.add(prefix + b.name, Mat<T>(b.value.template cast<T>()));
}

/// Sets every parameter and buffer of `model` from the tensor of f called "<prefix><name>",
/// by name: the order of the file does not matter. Throws invalid_input for a tensor the
/// model needs that f lacks or holds in another shape, for a name the model gives twice, for a
/// tensor of f under `prefix` that the model does not have (a file of another architecture:
/// loading it would silently drop state), and for a value that is NaN or infinite in the
/// model's precision (no trained model holds one; a float64 value beyond float's range
/// becomes one).
template <class T, NamedTensors Model>
void read_state(const io::WeightsFile<T>& f, Model& model, const std::string& prefix = "") {
  using S = typename Model::scalar;
  std::unordered_set<std::string> used;
  auto take = [&](const std::string& name, Eigen::Map<Mat<S>>& value) {
    const std::string key = prefix + name;
    if (!used.insert(key).second) prilo::detail::fail("weights: the model names two tensors \"", key, "\"");
    value = f.at(key, value.rows(), value.cols()).template cast<S>();
    if (!value.allFinite())
      prilo::detail::fail(
          "weights: tensor \"", key, "\" holds NaN or infinite values",
          std::is_same_v<S, float> ? " (read as float: a float64 value beyond float's range is infinite)" : "");
  };
  for (auto& p : model.parameters()) take(p.name, p.value);
  for (auto& b : buffers_of(model)) take(b.name, b.value);
  for (const auto& t : f.tensors)
    if (t.name.compare(0, prefix.size(), prefix) == 0 && !used.count(t.name))
      prilo::detail::fail("weights: tensor \"", t.name, "\" (architecture \"", f.arch,
                          "\") belongs to no parameter or buffer of the model");
}

/// read_state of a file's tensors, with its errors prefixed by the file's path (a file_error:
/// the file, not the caller, is at fault).
template <class T, NamedTensors Model>
void read_state_from(const std::filesystem::path& path, const io::WeightsFile<T>& f, Model& model,
                     const std::string& prefix = "") {
  try {
    read_state(f, model, prefix);
  } catch (const invalid_input& e) {
    throw file_error(path.string() + ": " + e.what());
  }
}

}  // namespace prilo::nn

// The shipped VAE priors by name: where a generator's weights and config live
// (models/<g>vae-<dataset>.prw, configs/<dataset>[-<g>].json for g = mlp, conv, style) and
// the files trained for it (LI encoders, placement scorers), and loading a weights file of
// whichever architecture its header names. The programs
// (prilo-reconstruct, prilo-represent) share it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../core.hpp"
#include "../nn/conv_vae_io.hpp"
#include "../nn/style_vae_io.hpp"
#include "../nn/vae_io.hpp"
#include "../solvers/resolve.hpp"
#include "weights.hpp"

namespace prilo::io {

/// Any of the VAEs prilo ships (each models VaeModel); use with std::visit.
template <class T>
using AnyVae = std::variant<nn::Vae<T>, nn::ConvVae<T>, nn::StyleVae<T>>;

/// The files of a prior: its weights and its reconstruction config.
struct PriorFiles {
  std::filesystem::path weights, config;
};

/// A project file: `given` when not empty, else `rel` when it exists relative to the working
/// directory, else `rel` under `source_dir` (the source tree, PRILO_SOURCE_DIR in the programs).
inline std::filesystem::path locate_file(const std::string& given, const std::string& rel,
                                         const std::filesystem::path& source_dir) {
  namespace fs = std::filesystem;
  return !given.empty() ? fs::path(given) : fs::exists(rel) ? fs::path(rel) : source_dir / rel;
}

/// The suffix the shipped files of a generator's prior carry: "" for the MLP VAE ("mlp"),
/// "-<generator>" for the others (configs/<dataset>-conv.json, models/li-…-style.prw).
inline std::string generator_suffix(const std::string& generator) {
  return generator == "mlp" ? "" : "-" + generator;
}

/// Where the project keeps the LI encoder of `dataset`, the operator `op` (fourier,
/// gaussian-real, gaussian-complex) and `generator`, relative to its root: what prilo-train-li
/// writes by default and the -li methods of prilo-reconstruct read (with locate_file).
inline std::string li_encoder_file(const std::string& dataset, const std::string& op, const std::string& generator) {
  return "models/li-" + dataset + "-" + op + generator_suffix(generator) + ".prw";
}

/// Where the project keeps the placement scorer of `dataset` and `generator`, relative to
/// its root (prilo-train-placement's default output, read by -resolve when the config gives
/// it a weight).
inline std::string placement_scorer_file(const std::string& dataset, const std::string& generator) {
  return "models/placement-" + dataset + generator_suffix(generator) + ".prw";
}

/// The weights and config of `generator` (mlp: models/vae-<dataset>.prw and
/// configs/<dataset>.json; conv, style: models/<generator>vae-<dataset>.prw and
/// configs/<dataset>-<generator>.json), each overridden by `weights` / `config` when those
/// are not empty, located with locate_file. An unknown generator is an invalid_input.
inline PriorFiles prior_files(const std::string& dataset, const std::string& generator, const std::string& weights,
                              const std::string& config, const std::filesystem::path& source_dir) {
  if (generator != "mlp" && generator != "conv" && generator != "style")
    throw invalid_input("generator: expected mlp, conv or style, got \"" + generator + "\"");
  const std::string prefix = generator == "mlp" ? "" : generator;
  return {locate_file(weights, "models/" + prefix + "vae-" + dataset + ".prw", source_dir),
          locate_file(config, "configs/" + dataset + generator_suffix(generator) + ".json", source_dir)};
}

/// Reads a VAE weights file of any shipped architecture (the MLP VAE, the conv VAE, the style
/// VAE), chosen by the architecture its header names; bad files are file_errors naming it.
template <class T>
AnyVae<T> load_any_vae(const std::filesystem::path& weights) {
  const std::string arch = read_weights_info(weights).arch;
  if (arch == nn::conv_vae_arch_tag) return nn::load_conv_vae<T>(weights);
  if (arch == nn::style_vae_arch_tag) return nn::load_style_vae<T>(weights);
  if (arch != nn::vae_arch_tag)
    throw file_error(weights.string() + ": \"" + arch + "\" is not a VAE (expected \"" + nn::vae_arch_tag + "\", \"" +
                     nn::conv_vae_arch_tag + "\" or \"" + nn::style_vae_arch_tag + "\")");
  return nn::load_vae<T>(weights);
}

/// The generator name of a VAE type, as the programs' --generator spells it: "mlp" (nn::Vae),
/// "conv" (nn::ConvVae) or "style" (nn::StyleVae).
template <class V>
std::string generator_name(const V&) {
  using T = typename V::scalar;
  if constexpr (std::is_same_v<V, nn::ConvVae<T>>)
    return "conv";
  else if constexpr (std::is_same_v<V, nn::StyleVae<T>>)
    return "style";
  else
    return "mlp";
}
/// The generator name of the VAE an AnyVae holds.
template <class T>
std::string generator_name(const AnyVae<T>& model) {
  return std::visit([](const auto& v) { return generator_name(v); }, model);
}

/// Checks a VAE read from `weights` against what the caller pairs it with: the generator it was
/// asked for (whose config, LI encoder and placement scorer go with it; another one is
/// invalid_input naming both) and images of h×w (the conv and style VAEs' own image shape; only
/// the pixel count of an MLP VAE is fixed, so h·w must equal it).
template <class V>
void check_vae_fits(const V& vae, const std::filesystem::path& weights, const std::string& generator, Eigen::Index h,
                    Eigen::Index w) {
  if (const std::string found = generator_name(vae); found != generator)
    throw invalid_input("weights " + weights.string() + " hold the " + found + " VAE, not the " + generator +
                        " one (--generator " + found + " reads them, with its own config)");
  if (Eigen::Index(vae.data_dim()) != h * w)
    throw invalid_input("weights " + weights.string() + " are for images of " + std::to_string(vae.data_dim()) +
                        " pixels, not " + std::to_string(h) + "x" + std::to_string(w));
  if constexpr (requires { vae.sizes().image; }) {
    const nn::Shape3& s = vae.sizes().image;
    if (s.height != h || s.width != w)
      throw invalid_input("weights " + weights.string() + " are for images of " + std::to_string(s.height) + "x" +
                          std::to_string(s.width) + ", not " + std::to_string(h) + "x" + std::to_string(w));
  }
}
/// check_vae_fits for the VAE an AnyVae holds.
template <class T>
void check_vae_fits(const AnyVae<T>& model, const std::filesystem::path& weights, const std::string& generator,
                    Eigen::Index h, Eigen::Index w) {
  std::visit([&](const auto& v) { check_vae_fits(v, weights, generator, h, w); }, model);
}

/// load_any_vae, then check_vae_fits.
template <class T>
AnyVae<T> load_any_vae(const std::filesystem::path& weights, const std::string& generator, Eigen::Index h,
                       Eigen::Index w) {
  AnyVae<T> model = load_any_vae<T>(weights);
  check_vae_fits(model, weights, generator, h, w);
  return model;
}

/// The files of the judges a config names for -resolve, each checked to exist: a missing one is a
/// file_error naming it and `named_by` (where the names came from, e.g. the config file's path).
inline std::vector<std::filesystem::path> judge_files(const std::vector<JudgeFile>& files,
                                                      const std::string& named_by = "the config") {
  std::vector<std::filesystem::path> paths;
  for (const JudgeFile& f : files) {
    std::error_code ec;
    if (!std::filesystem::exists(f.model, ec))
      throw file_error("-resolve judge " + f.model.string() + ": file not found (named by " + named_by +
                       ", resolve.judges)");
    paths.push_back(f.model);
  }
  return paths;
}

/// The judges a config names for -resolve (ReconstructionConfig::resolve_judges), loaded: each
/// file read with load_any_vae (any architecture) and checked against images of h×w; a missing
/// or bad file is a file_error naming it. Owns the models that judges() refers to, so it must
/// outlive the runs that use them (MethodOptions::judges).
template <class T>
class ResolveJudges {
 public:
  ResolveJudges() = default;
  ResolveJudges(const std::vector<JudgeFile>& files, Eigen::Index h, Eigen::Index w) {
    judge_files(files);
    for (const JudgeFile& f : files) {
      auto model = std::make_unique<AnyVae<T>>(load_any_vae<T>(f.model));
      std::visit(
          [&](const auto& v) {
            check_vae_fits(v, f.model, generator_name(v), h, w);
            judges_.push_back(elbo_judge(v, f.weight, f.model.string()));
          },
          *model);
      models_.push_back(std::move(model));
    }
  }
  ResolveJudges(ResolveJudges&&) noexcept = default;  // the models stay where they are
  ResolveJudges& operator=(ResolveJudges&&) noexcept = default;
  ResolveJudges(const ResolveJudges&) = delete;
  ResolveJudges& operator=(const ResolveJudges&) = delete;

  const std::vector<PlacementJudge<T>>& judges() const { return judges_; }
  bool empty() const { return judges_.empty(); }

 private:
  std::vector<std::unique_ptr<AnyVae<T>>> models_;
  std::vector<PlacementJudge<T>> judges_;
};

}  // namespace prilo::io

// A learned placement scorer for -resolve: a small network that reads an image and returns a
// logit of "the object sits where the data's images sit", trained by the library on training
// images to rank each image above its own circular shifts and point reflections.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../core.hpp"
#include "../flops.hpp"
#include "../io/weights.hpp"
#include "../metrics/align.hpp"
#include "../nn/linear.hpp"
#include "../nn/sequential.hpp"
#include "../nn/state_io.hpp"
#include "../random.hpp"

namespace prilo {

/// Sizes of a PlacementScorer: the image (h×w, row-major columns) and the hidden width.
struct PlacementScorerSpec {
  int height = 28, width = 28;
  Eigen::Index hidden = 256;
  Eigen::Index image_size() const { return Eigen::Index(height) * width; }
};

/// s(x): one logit per image column, an MLP h·w → hidden → hidden → 1 (ReLU hidden layers,
/// linear output). Trained with placement_loss, s ranks an image above its own shifts and
/// reflections, so that among the 2·h·w transforms of a -resolve candidate set, softmax(s) is
/// the scorer's probability that each is the one placed as the training images are. Its use:
/// ResolveOptions::scorer_weight adds −w·s(x) to each candidate's score (nats with w = 1,
/// the scorer's log-probability up to a constant).
template <class T>
class PlacementScorer {
 public:
  using scalar = T;
  using Network = nn::Sequential<T, nn::Dense<T, nn::Relu>, nn::Dense<T, nn::Relu>, nn::Linear<T>>;

  PlacementScorer() = default;
  PlacementScorer(const PlacementScorerSpec& spec, std::uint64_t seed) : spec_(spec) {
    check_spec(spec);
    Rng rng(seed);
    const Eigen::Index n = spec.image_size(), h = spec.hidden;
    net_ = Network(n, nn::Dense<T, nn::Relu>(n, h, rng), nn::Dense<T, nn::Relu>(h, h, rng), nn::Linear<T>(h, 1, rng));
  }

  const PlacementScorerSpec& spec() const { return spec_; }
  Network& network() { return net_; }
  const Network& network() const { return net_; }

  /// s(x) per column of `images` (h·w × B): 1×B.
  Mat<T> logits(const Mat<T>& images) const {
    require_shape(images, spec_.image_size(), images.cols(), "placement scorer images");
    return net_(images);
  }
  /// Products of one image's logit.
  double flops_per_column() const { return forward_flops(net_, 0, net_.depth()); }

  /// The network's tensors, named "scorer.<module>.<name>".
  nn::ParamList<T> parameters() {
    nn::ParamList<T> p;
    for (auto& q : net_.parameters()) p.push_back({"scorer." + q.name, q.value, q.grad});
    return p;
  }
  void zero_grad() { net_.zero_grad(); }

  static void check_spec(const PlacementScorerSpec& s) {
    if (s.height < 1 || s.width < 1)
      detail::fail("placement scorer: image size must be positive, got ", s.height, "x", s.width);
    if (s.hidden < 1) detail::fail("placement scorer: hidden size must be positive, got ", s.hidden);
  }

 private:
  PlacementScorerSpec spec_{};
  Network net_;
};

/// Number of candidates placement_window writes: 2·(2r + 1)².
inline Eigen::Index placement_window_size(int radius) {
  if (radius < 0) detail::fail("placement window: radius must be >= 0, got ", radius);
  return 2 * Eigen::Index(2 * radius + 1) * (2 * radius + 1);
}

/// invalid_input unless the window of `radius` fits an h×w image: 2r + 1 ≤ h and ≤ w (wider,
/// its circular shifts repeat, and a repeat of the image among its own negatives would make
/// the listwise loss ill-posed).
inline void check_placement_radius(int radius, int h, int w) {
  (void)placement_window_size(radius);
  if (2 * Eigen::Index(radius) + 1 > std::min(h, w))
    detail::fail("placement window: radius ", radius, " is too wide for ", h, "x", w,
                 " images (2r + 1 must be at most ", std::min(h, w), ", or its shifts repeat)");
}

/// Writes into columns c0 … c0 + placement_window_size(radius) − 1 of `out` the transforms of
/// x (h·w) near its own placement: x itself first, then its circular shifts by (dy, dx) with
/// |dy|, |dx| ≤ radius (x excepted), then its point reflection shifted by (dy − 1, dx − 1)
/// over the same window (the reflection r → −r mod h moves an object centred at (h − 1)/2 to
/// (h + 1)/2, so the window is centred on the reflected object). Every candidate has the DFT
/// magnitudes of x. Training positives come first: placement_loss expects it. The radius must
/// fit the image (check_placement_radius).
template <class T>
void placement_window(const Vec<T>& x, int h, int w, int radius, Mat<T>& out, Eigen::Index c0) {
  check_placement_radius(radius, h, w);
  const Eigen::Index K = placement_window_size(radius);
  require_shape(x, Eigen::Index(h) * w, 1, "placement window image");
  if (out.rows() != x.rows() || c0 < 0 || c0 + K > out.cols())
    detail::fail("placement window: output has ", out.rows(), "x", out.cols(), ", needs ", x.rows(), " rows and ",
                 c0 + K, " columns");
  Eigen::Index c = c0;
  out.col(c++) = x;
  for (int refl = 0; refl < 2; ++refl)
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx) {
        if (refl == 0 && dy == 0 && dx == 0) continue;
        out.col(c++) = metrics::apply_shift_reflect(x, h, w, dy - refl, dx - refl, refl == 1);
      }
}

/// Number of candidates placement_group writes: placement_window_size(radius) + far.
inline Eigen::Index placement_group_size(int radius, int far) {
  if (far < 0) detail::fail("placement group: far must be >= 0, got ", far);
  return placement_window_size(radius) + far;
}

/// A training group for placement_loss: placement_window(x, …) (x first), then `far` transforms
/// of x drawn uniformly from all 2·h·w shifts and reflections other than x itself, so that the
/// scorer also learns to rank x above placements far from its own.
template <class T>
void placement_group(const Vec<T>& x, int h, int w, int radius, int far, Rng& rng, Mat<T>& out, Eigen::Index c0) {
  const Eigen::Index K = placement_group_size(radius, far), W = placement_window_size(radius);
  if (out.cols() < c0 + K) detail::fail("placement group: output has ", out.cols(), " columns, needs ", c0 + K);
  placement_window(x, h, w, radius, out, c0);
  for (Eigen::Index c = c0 + W; c < c0 + K; ++c) {
    std::uint64_t t = 0;
    do t = rng.below(2 * std::uint64_t(h) * std::uint64_t(w));
    while (t == 0);
    const bool refl = t >= std::uint64_t(h) * std::uint64_t(w);
    const std::uint64_t s = refl ? t - std::uint64_t(h) * std::uint64_t(w) : t;
    out.col(c) = metrics::apply_shift_reflect(x, h, w, Eigen::Index(s / std::uint64_t(w)),
                                              Eigen::Index(s % std::uint64_t(w)), refl);
  }
}

/// The listwise loss of the scorer on groups of K candidates (columns k·K … k·K + K − 1 of
/// `candidates` are group k, its first column the correctly placed image, e.g. from
/// placement_window): the mean over groups of −log softmax(s)_0, the cross-entropy of picking
/// the true placement among its group. top1: the fraction of groups whose first candidate has
/// the largest logit. With `accumulate`, adds ∂loss/∂(weights) to the gradient buffers.
template <class T>
struct PlacementLoss {
  T loss = 0;
  T top1 = 0;
};
template <class T>
PlacementLoss<T> placement_loss(PlacementScorer<T>& scorer, const Mat<T>& candidates, Eigen::Index K, bool accumulate) {
  require_shape(candidates, scorer.spec().image_size(), candidates.cols(), "placement loss candidates");
  if (K < 2 || candidates.cols() % K != 0)
    detail::fail("placement loss: groups of K >= 2 candidates, got K = ", K, " and ", candidates.cols(), " columns");
  const Eigen::Index G = candidates.cols() / K;
  nn::Trace<T> tr;
  scorer.network().forward(0, scorer.network().depth(), candidates, tr);
  const Mat<T>& s = tr.output();
  Mat<T> g(1, candidates.cols());
  double loss = 0;
  Eigen::Index hits = 0;
  for (Eigen::Index k = 0; k < G; ++k) {
    const auto sk = s.middleCols(k * K, K);
    Eigen::Index arg = 0;
    const T mx = sk.row(0).maxCoeff(&arg);
    const Mat<T> e = (sk.array() - mx).exp().matrix();
    const T z = e.sum();
    loss += double(std::log(z) + mx - sk(0, 0));
    hits += arg == 0;
    g.middleCols(k * K, K) = e / (z * T(G));
    g(0, k * K) -= T(1) / T(G);
  }
  if (accumulate) scorer.network().vjp_weights(tr, g);
  return {T(loss / double(G)), T(double(hits) / double(G))};
}

/// Analysis of a trained scorer: the fraction of `images` (h·w × N, each correctly placed)
/// that the scorer ranks first among all 2·h·w of their circular shifts and point reflections,
/// the choice -resolve makes with the scorer alone.
template <class T>
double placement_top1(const PlacementScorer<T>& scorer, const Mat<T>& images) {
  const int h = scorer.spec().height, w = scorer.spec().width;
  const Eigen::Index n = scorer.spec().image_size();
  require_shape(images, n, images.cols(), "placement top-1 images");
  Mat<T> all(n, 2 * n);
  Eigen::Index hits = 0;
  for (Eigen::Index j = 0; j < images.cols(); ++j) {
    metrics::all_shifts_reflections(images.col(j), h, w, all);
    Eigen::Index arg = 0;
    scorer.logits(all).row(0).maxCoeff(&arg);
    hits += arg == 0;
  }
  return images.cols() > 0 ? double(hits) / double(images.cols()) : 0.0;
}

// ---------------------------------------------------------------------------------------------
// Weights files

inline constexpr const char* placement_scorer_arch_tag = "placement-mlp";

/// Writes the scorer (architecture "placement-mlp"; sizes: height, width, hidden), its tensors
/// by name: "scorer.0.weight" … "scorer.2.bias".
template <class T>
void save_placement_scorer(const std::filesystem::path& path, PlacementScorer<T>& s) {
  io::WeightsFile<T> f;
  f.arch = placement_scorer_arch_tag;
  f.sizes = {std::uint32_t(s.spec().height), std::uint32_t(s.spec().width), std::uint32_t(s.spec().hidden)};
  nn::write_state(f, s);
  io::save_weights(path, f);
}

/// Reads a scorer; file_error naming the file and the problem (missing file, another
/// architecture, bad sizes, missing, misshapen or non-finite tensors).
template <class T>
PlacementScorer<T> load_placement_scorer(const std::filesystem::path& path) {
  auto f = io::load_weights<T>(path);
  const std::string name = path.string();
  if (f.arch != placement_scorer_arch_tag)
    throw file_error(name + ": architecture \"" + f.arch + "\" is not a placement scorer (expected \"" +
                     placement_scorer_arch_tag + "\")");
  if (f.sizes.size() != 3)
    throw file_error(name + ": a placement scorer needs 3 sizes, found " + std::to_string(f.sizes.size()));
  PlacementScorerSpec s;
  s.height = int(std::min<std::uint32_t>(f.sizes[0], 1u << 16));
  s.width = int(std::min<std::uint32_t>(f.sizes[1], 1u << 16));
  s.hidden = Eigen::Index(std::min<std::uint32_t>(f.sizes[2], 1u << 20));
  try {
    PlacementScorer<T>::check_spec(s);
  } catch (const invalid_input& e) {
    throw file_error(name + ": corrupt: " + e.what());
  }
  // the first layer's shape before any allocation: a corrupt size must not allocate gigabytes
  const Mat<T>* w0 = f.find("scorer.0.weight");
  if (!w0 || w0->rows() != s.hidden || w0->cols() != s.image_size())
    throw file_error(name + ": corrupt: tensor \"scorer.0.weight\" " +
                     (w0 ? "is " + std::to_string(w0->rows()) + "x" + std::to_string(w0->cols()) : "is missing") +
                     ", the sizes need " + std::to_string(s.hidden) + "x" + std::to_string(s.image_size()));
  for (const auto& t : f.tensors)
    if (!t.value.allFinite()) throw file_error(name + ": corrupt: tensor \"" + t.name + "\" holds NaN or Inf");
  PlacementScorer<T> out(s, 0);
  try {
    nn::read_state(f, out);
  } catch (const invalid_input& e) {
    throw file_error(name + ": " + e.what());
  }
  return out;
}

}  // namespace prilo

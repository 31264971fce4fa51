// A learned placement scorer for -resolve: a small network that reads an image and returns a
// logit of "the object sits where the data's images sit", trained by the library on training
// images to rank each image above its own circular shifts and point reflections.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "../core.hpp"
#include "../flops.hpp"
#include "../interrupt.hpp"
#include "../io/weights.hpp"
#include "../metrics/align.hpp"
#include "../nn/linear.hpp"
#include "../nn/sequential.hpp"
#include "../nn/state_io.hpp"
#include "../optim/optimisers.hpp"
#include "../parallel.hpp"
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
  /// Whether the scorer has its network (made from a spec or loaded); one made by the default
  /// constructor has none, though its spec() reads a default image size.
  bool has_network() const { return net_.template module<2>().weight().size() != 0; }
  /// invalid_input naming `who` unless has_network().
  void require_network(const char* who) const {
    if (!has_network())
      detail::fail(who,
                   ": the placement scorer was made by its default constructor and has no network (construct "
                   "it from a PlacementScorerSpec or load one)");
  }
  Network& network() { return net_; }
  const Network& network() const { return net_; }

  /// s(x) per column of `images` (h·w × B): 1×B.
  Mat<T> logits(const Mat<T>& images) const {
    require_network("PlacementScorer::logits");
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
  if (c0 < 0) detail::fail("placement group: first column c0 must be >= 0, got ", c0);
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
PlacementLoss<T> placement_loss(PlacementScorer<T>& scorer, const std::type_identity_t<Mat<T>>& candidates,
                                Eigen::Index K, bool accumulate) {
  scorer.require_network("placement loss");
  require_shape(candidates, scorer.spec().image_size(), candidates.cols(), "placement loss candidates");
  if (K < 2 || candidates.cols() % K != 0 || candidates.cols() == 0)
    detail::fail("placement loss: one or more groups of K >= 2 candidates, got K = ", K, " and ", candidates.cols(),
                 " columns");
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
  PlacementScorer<T> out(s, 0);
  try {
    nn::read_state(f, out);
  } catch (const invalid_input& e) {
    throw file_error(name + ": " + e.what());
  }
  return out;
}

/// How train_placement_scorer trains (prilo-train-placement's defaults).
struct PlacementTrainingOptions {
  int epochs = 4;
  Eigen::Index batch = 32;      ///< positives per batch (each with its group of placement_group_size)
  double learning_rate = 1e-3;  ///< Adam's step size
  int radius = 3;               ///< the groups' window of shifts (placement_group)
  int far = 14;                 ///< random transforms outside the window per group
  double pixel_noise = 0;       ///< σ of fresh noise on each positive, shared by its whole group
  std::uint64_t seed = 0;       ///< the stream is Rng(seed + 2) (prilo-train-placement seeds the scorer with seed + 1)
  std::filesystem::path output{};  ///< the best epoch's scorer is written here (empty: not written)
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// What train_placement_scorer reports after each batch.
struct PlacementBatchReport {
  int epoch = 0;
  long batch = 0, batches = 0;  ///< this batch of the epoch (from 1) and the epoch's count
  Eigen::Index positives = 0;
  double loss = 0, top1 = 0;  ///< the batch's mean loss and share of groups ranked right
};

/// What train_placement_scorer reports after each epoch.
struct PlacementEpochReport {
  int epoch = 0;
  double loss = 0, top1 = 0;   ///< means over the epoch's positives
  double validation_top1 = 0;  ///< placement_top1 on the validation images
  bool improved = false;       ///< the best so far (then written to `output`)
};

/// Where train_placement_scorer reports to; either may be empty.
struct PlacementTrainingCallbacks {
  std::function<void(const PlacementBatchReport&)> batch{};
  std::function<void(const PlacementEpochReport&)> epoch{};
};

/// How a train_placement_scorer call ended.
struct PlacementTrainingResult {
  /// A stop was requested before the last epoch ended: o.stop's, or the process-wide one
  /// (which stays set until clear_stop()).
  bool interrupted = false;
  int stopped_in = 0;  ///< interrupted: the epoch it was in
  int epochs_done = 0;
  int best_epoch = 0;     ///< the epoch the scorer now holds (0: none finished, the initial one)
  double best_top1 = -1;  ///< its validation top-1
};

/// Trains `scorer` to rank each column of `positives` (images placed as the data's are) above
/// its own transforms: per epoch a shuffle, then batches of groups (placement_group, after
/// optional pixel noise) and an Adam step on placement_loss; after each epoch placement_top1
/// on `validation` (placed images the training never sees), keeping the best epoch in the
/// scorer and, when asked, in o.output. Interrupted (o.stop, or prilo::request_stop, whose request
/// stays set: clear_stop() before the next call), the scorer holds the best finished epoch. Bad options or
/// images are invalid_input naming them; a loss that is not finite stops it with invalid_input
/// ("training diverged in epoch …"), the scorer back at its best finished epoch.
template <class T>
PlacementTrainingResult train_placement_scorer(PlacementScorer<T>& scorer, const Mat<T>& positives,
                                               const Mat<T>& validation, const PlacementTrainingOptions& o,
                                               const PlacementTrainingCallbacks& cb = {}) {
  const int h = scorer.spec().height, w = scorer.spec().width;
  const Eigen::Index n = scorer.spec().image_size(), np = positives.cols();
  detail::check_training_schedule("train_placement_scorer", o.epochs, o.batch, o.learning_rate);
  if (!(o.pixel_noise >= 0) || !std::isfinite(o.pixel_noise))
    detail::fail("train_placement_scorer: the pixel noise must be finite and ≥ 0, got ", o.pixel_noise);
  if (o.far < 0) detail::fail("train_placement_scorer: far must be ≥ 0, got ", o.far);
  check_placement_radius(o.radius, h, w);
  for (const auto* set : {&positives, &validation}) {
    const char* what = set == &positives ? "positives" : "validation images";
    if (set->cols() == 0) detail::fail("train_placement_scorer: no ", what);
    if (set->rows() != n)
      detail::fail("train_placement_scorer: the ", what, " have ", set->rows(), " values, the scorer reads ", h, "x",
                   w);
    if (!set->allFinite()) detail::fail("train_placement_scorer: the ", what, " hold NaN or infinite values");
  }
  const FlushDenormalsTeam flush;  // the BLAS's threads too (prilo/parallel.hpp)
  const Eigen::Index K = placement_group_size(o.radius, o.far);
  AdamTrainer<T> adam({.learning_rate = T(o.learning_rate)});
  auto params = scorer.parameters();
  nn::BestEpoch<T> best(params, o.output);
  Rng rng(o.seed + 2);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(np));
  std::iota(order.begin(), order.end(), Eigen::Index(0));
  const long batches = long((np + o.batch - 1) / o.batch);
  Mat<T> cand;
  PlacementTrainingResult result;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    rng.shuffle(order);
    PlacementEpochReport rep{.epoch = epoch};
    for (long b = 0; b < batches; ++b) {
      if (stop_requested(o.stop)) {
        result.interrupted = true;
        result.stopped_in = epoch;
        best.restore();
        return result;
      }
      const Eigen::Index j0 = b * o.batch, nb = std::min<Eigen::Index>(o.batch, np - j0);
      cand.resize(n, nb * K);
      for (Eigen::Index j = 0; j < nb; ++j) {
        Vec<T> x = positives.col(order[std::size_t(j0 + j)]);
        // fresh pixel noise on the positive, shared by its whole group (all keep one magnitude)
        if (o.pixel_noise > 0)
          for (Eigen::Index i = 0; i < n; ++i) x(i) += T(o.pixel_noise * rng.normal());
        placement_group(x, h, w, o.radius, o.far, rng, cand, j * K);
      }
      scorer.zero_grad();
      const auto l = placement_loss(scorer, cand, K, true);
      best.check_loss("train_placement_scorer", double(l.loss), epoch, b + 1);
      adam.step(params);
      best.check_parameters("train_placement_scorer", params, epoch, b + 1);  // a finite loss, infinite weights
      rep.loss += double(l.loss) * double(nb);
      rep.top1 += double(l.top1) * double(nb);
      if (cb.batch)
        cb.batch({.epoch = epoch,
                  .batch = b + 1,
                  .batches = batches,
                  .positives = nb,
                  .loss = double(l.loss),
                  .top1 = double(l.top1)});
    }
    rep.loss /= double(np);
    rep.top1 /= double(np);
    rep.validation_top1 = placement_top1(scorer, validation);
    rep.improved = rep.validation_top1 > result.best_top1;
    if (rep.improved) result.best_top1 = rep.validation_top1;
    best.end_epoch(epoch, rep.improved, [&](const auto& path) { save_placement_scorer(path, scorer); });
    result.best_epoch = best.epoch();
    result.epochs_done = epoch;
    if (cb.epoch) cb.epoch(rep);
  }
  best.restore();
  return result;
}

}  // namespace prilo

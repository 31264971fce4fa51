// Resolving the shift/reflection ambiguity of non-oversampled Fourier phase retrieval with
// the generator's own likelihood (no ground truth).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../concepts/vae.hpp"
#include "../interrupt.hpp"
#include "../metrics/align.hpp"
#include "../nn/vae.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../parallel.hpp"
#include "common.hpp"
#include "placement_scorer.hpp"

namespace prilo {

/// A Gaussian prior on where the object sits in the frame: the centre of mass (row, column)
/// of an image's nonnegative part, with its mean and 2×2 covariance, fitted to images the
/// prior should describe (e.g. the generator's own samples, see placement_prior). Circular
/// shifts move the centre of mass (the point reflection maps it to about (h − r, w − c), so
/// for a centred object it tells shifts apart, not the reflection: that is left to the ELBO).
struct PlacementPrior {
  double mean_row = 0, mean_col = 0;
  double var_row = 1, var_col = 1, cov = 0;
  /// (c − μ)ᵀ Σ⁻¹ (c − μ) for the centre of mass c = (row, col).
  double distance2(double row, double col) const {
    const double dr = row - mean_row, dc = col - mean_col, det = var_row * var_col - cov * cov;
    return (var_col * dr * dr - 2 * cov * dr * dc + var_row * dc * dc) / det;
  }
  /// invalid_input unless the mean is finite and the covariance positive definite (distance2
  /// divides by its determinant); `what` names the caller.
  void check(const char* what) const {
    if (!(std::isfinite(mean_row) && std::isfinite(mean_col)))
      detail::fail(what, ": the placement prior's mean (", mean_row, ", ", mean_col, ") is not finite");
    if (!(var_row > 0 && var_col > 0 && std::isfinite(var_row) && std::isfinite(var_col) && std::isfinite(cov) &&
          var_row * var_col - cov * cov > 0))
      detail::fail(what, ": the placement prior's covariance (", var_row, ", ", cov, "; ", cov, ", ", var_col,
                   ") is not positive definite");
  }
};

/// Centre of mass (row, column) of the nonnegative part of a row-major h×w image; the frame's
/// centre ((h − 1)/2, (w − 1)/2) for an image with no positive pixel.
template <class D>
std::array<double, 2> centre_of_mass(const Eigen::MatrixBase<D>& x, Eigen::Index h, Eigen::Index w) {
  if (h < 1 || w < 1 || h > x.size() / w || h * w != x.size())
    detail::fail("centre_of_mass: an image of ", x.size(), " pixels is not ", h, "x", w);
  double m = 0, r = 0, c = 0;
  for (Eigen::Index i = 0; i < h; ++i)
    for (Eigen::Index j = 0; j < w; ++j) {
      const double v = std::max(0.0, double(x(i * w + j)));
      m += v;
      r += v * double(i);
      c += v * double(j);
    }
  if (!(m > 0)) return {double(h - 1) / 2, double(w - 1) / 2};
  return {r / m, c / m};
}

/// The placement prior fitted (mean and covariance of the centres of mass) to the columns of
/// `images` (h·w × N, N ≥ 2), e.g. samples G(z), z ~ N(0, I), of the generator.
template <class T>
PlacementPrior placement_prior(const Mat<T>& images, Eigen::Index h, Eigen::Index w) {
  if (h < 1 || w < 1) detail::fail("placement_prior: h and w must be >= 1, got ", h, "x", w);
  require_shape(images, h * w, images.cols(), "placement_prior images");
  if (images.cols() < 2) detail::fail("placement_prior: needs at least 2 images, got ", images.cols());
  require_finite(images, "placement_prior images");
  const Eigen::Index n = images.cols();
  std::vector<std::array<double, 2>> c(static_cast<std::size_t>(n));
  PlacementPrior p{};
  for (Eigen::Index j = 0; j < n; ++j) {
    c[std::size_t(j)] = centre_of_mass(images.col(j), h, w);
    p.mean_row += c[std::size_t(j)][0] / double(n);
    p.mean_col += c[std::size_t(j)][1] / double(n);
  }
  p.var_row = p.var_col = p.cov = 0;
  for (const auto& q : c) {
    p.var_row += (q[0] - p.mean_row) * (q[0] - p.mean_row) / double(n - 1);
    p.var_col += (q[1] - p.mean_col) * (q[1] - p.mean_col) / double(n - 1);
    p.cov += (q[0] - p.mean_row) * (q[1] - p.mean_col) / double(n - 1);
  }
  // a floor keeps the covariance invertible for degenerate sample sets (e.g. all identical)
  p.var_row = std::max(p.var_row, 1e-4);
  p.var_col = std::max(p.var_col, 1e-4);
  p.cov = std::clamp(p.cov, -0.99 * std::sqrt(p.var_row * p.var_col), 0.99 * std::sqrt(p.var_row * p.var_col));
  return p;
}

/// A second opinion on the candidates of -resolve: another model's score of an image in nats,
/// lower for a more plausible one (e.g. another VAE's negative ELBO: elbo_judge). With judges,
/// a candidate's score adds Σ weight · score(x): at weight 1 the product of the models'
/// likelihoods, which tells a one-pixel shift of a reconstruction from its true placement better
/// than one model alone where the models' errors differ (docs/tuning.md).
template <class T>
struct PlacementJudge {
  std::string name;  ///< for messages (e.g. its weights file)
  /// n×k candidates (one image per column) → their k scores. Called from several threads at once.
  std::function<Vec<T>(const Mat<T>&)> score;
  double weight = 1;
  double flops_per_column = 0;  ///< for the FLOP account
};

namespace detail {
/// FLOPs of one column's negative ELBO with the posterior mean: the encoder's and the decoder's
/// forward passes (what -resolve's own model and an elbo_judge spend per candidate).
template <VaeModel V>
double elbo_flops_per_column(const V& vae) {
  return forward_flops(vae.encoder(), 0, vae.encoder().depth()) +
         forward_flops(vae.decoder(), 0, vae.decoder().depth());
}
}  // namespace detail

/// A judge that scores by the VAE's negative ELBO with the posterior mean (ε = 0, as -resolve's
/// own model); `vae` must outlive the judge (a temporary VAE is refused at compile time).
template <VaeModel V, class T = typename V::scalar>
PlacementJudge<T> elbo_judge(const V& vae, double weight = 1, std::string name = "vae") {
  return {.name = std::move(name),
          .score = [&vae](const Mat<T>& x) -> Vec<T> {
            return vae.negative_elbo(x, Mat<T>::Zero(vae.latent_dim(), x.cols()));
          },
          .weight = weight,
          .flops_per_column = detail::elbo_flops_per_column(vae)};
}
template <VaeModel V>
void elbo_judge(const V&&, double = 1, std::string = "vae") = delete;

/// A model that -resolve asks for a second opinion, as a config names it (config "resolve":
/// {"judges": [{"model", "weight"}]}; io::ResolveJudges loads them): a VAE's weights file and
/// the weight of its negative ELBO in the score.
struct JudgeFile {
  std::filesystem::path model{};
  double weight = 1;
};

struct ResolveOptions {
  Eigen::Index block = 2048;  ///< candidate images scored per VAE pass
  /// A solution whose relative magnitude error ‖|Ax| − y‖² / ‖y‖² is below this threshold
  /// fits the measurements (e.g. an exact HIO recovery up to a shift or reflection); when
  /// an image has such solutions, only they (and their shifts and reflections) compete. 0
  /// turns the rule off. Chosen on training images (docs/tuning.md).
  double consistency_threshold = 1e-4;
  /// Weight w of the placement prior: a candidate's score is its negative ELBO (nats) plus
  /// w · ½ (c − μ)ᵀ Σ⁻¹ (c − μ) for its centre of mass c; 0 (default) scores by the ELBO alone.
  /// With w > 0, `placement` must be fitted (placement_prior): resolve_ambiguity refuses the
  /// default one (centred at pixel (0, 0)); prilo::resolve fits it to the decoder's samples.
  /// Chosen on training images (docs/tuning.md).
  double placement_weight = 0;
  PlacementPrior placement{};
  /// 0 (default): keep the lowest-scoring candidate. τ > 0: return the mean of the scored
  /// candidates weighted by exp(−(score − min score)/τ), the candidates' posterior mean when
  /// the score is read as a negative log-probability at temperature τ (τ = 1: the model's own,
  /// its ELBO being a log-likelihood bound in nats). Where the placement is uncertain (two
  /// shifts within a few nats), the mean costs less squared error than a wrong pick; where one
  /// candidate leads by tens of nats it is that candidate. Chosen on training images
  /// (docs/tuning.md).
  double temperature = 0;
  /// Weight a of an anchor: an image per column, an estimate of x that sits where the data's
  /// images sit (e.g. the LI start G(E(y)), which the encoder learnt to place as the training
  /// images are placed). A candidate's score adds a · ‖x − anchor‖² (nats per squared unit);
  /// 0 (default) uses no anchor. With a > 0 resolve_ambiguity needs the anchor images. Meant
  /// for one-pixel shifts of an object that fills the frame, which the ELBO barely tells apart;
  /// with the shipped Fashion-MNIST style LI encoder as the anchor it gained nothing on images
  /// the encoder was not trained on, so every config keeps 0 (docs/tuning.md).
  double anchor_weight = 0;
  /// Weight w of a learned placement scorer (PlacementScorer, trained by
  /// prilo-train-placement): a candidate's score adds −w · s(x), the scorer's logit (w = 1:
  /// its log-probability in nats, a product of the two models). 0 (default) uses no scorer;
  /// with w > 0 resolve_ambiguity needs one, for images of its h×w.
  double scorer_weight = 0;
  /// With judges (PlacementJudge), how many candidates per image they score: the best by the
  /// model's own score (with the placement, anchor and scorer terms); the others drop out. The
  /// rest weigh nothing at the configs' temperatures (tens of nats behind), and the judges then
  /// cost a few percent of the model's own scoring: on Fashion-MNIST 16, 64 and all 3136 gave the
  /// same figures (docs/tuning.md). Ignored without judges.
  Eigen::Index judged_candidates = 64;
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// |F x| cannot tell x from its 2-D circular shifts and its point reflection x(−n): all
/// 2·h·w such images have the same magnitudes. Given several solutions per image (e.g. the
/// PRILO-MII and the HIO outputs), this enumerates every shift and reflection of every
/// solution, scores each by the VAE's negative ELBO (with the posterior mean, ε = 0, so the
/// score is deterministic) and keeps the lowest: the equivalent image the model finds most
/// plausible. Solutions that fit the measurements (relative magnitude error below
/// ResolveOptions::consistency_threshold) take precedence over those that do not: when an
/// image has any, only their transforms are scored (e.g. on MNIST, where HIO is often exact,
/// half the work for those images). With ResolveOptions::temperature > 0 the result is the
/// weighted mean of the candidates instead of the lowest one. Uses only the measurements and
/// the model, never the ground truth. The images are resolved in parallel (max_threads()), each
/// thread taking the next image when it is done, with its own candidate buffer; an image's
/// result does not depend on the thread count or on which thread resolves it. `anchor` (n×B,
/// one image per column) is required when ResolveOptions::anchor_weight > 0 and ignored
/// otherwise, `scorer` when ResolveOptions::scorer_weight > 0. `judges` add their weighted scores to the
/// ResolveOptions::judged_candidates best candidates of each image, and only those compete.
template <VaeModel V, class Op, class T = typename V::scalar>
SolveResult<T> resolve_ambiguity(const V& vae, const MagnitudeLoss<Op>& loss, int h, int w,
                                 const std::vector<const Mat<T>*>& solutions, const ResolveOptions& opt, Rng&,
                                 std::type_identity_t<const Mat<T>*> anchor = nullptr,
                                 std::type_identity_t<const PlacementScorer<T>*> scorer = nullptr,
                                 std::type_identity_t<std::span<const PlacementJudge<T>>> judges = {}) {
  if (solutions.empty()) detail::fail("resolve_ambiguity: no solutions given");
  for (std::size_t k = 0; k < solutions.size(); ++k)
    if (!solutions[k]) detail::fail("resolve_ambiguity: solution ", k, " is a null pointer");
  if (h < 1 || w < 1) detail::fail("resolve_ambiguity: h and w must be >= 1, got ", h, "x", w);
  // a DFT knows its image's sides: another h×w of the same size would shift and reflect
  // other images than the measured ones
  if constexpr (HalfSpectrumOperator<Op>)
    if (h != loss.op().height() || w != loss.op().width())
      detail::fail("resolve_ambiguity: h x w = ", h, "x", w, " but the DFT's images are ", loss.op().height(), "x",
                   loss.op().width());
  if (opt.block < 1) detail::fail("resolve_ambiguity: block must be >= 1, got ", opt.block);
  if (!(opt.consistency_threshold >= 0))  // NaN turned the rule off without a word
    detail::fail("resolve_ambiguity: consistency_threshold must be >= 0 (or +inf), got ", opt.consistency_threshold);
  if (!(opt.placement_weight >= 0) || !std::isfinite(opt.placement_weight))
    detail::fail("resolve_ambiguity: placement_weight must be finite and >= 0, got ", opt.placement_weight);
  if (!(opt.anchor_weight >= 0) || !std::isfinite(opt.anchor_weight))
    detail::fail("resolve_ambiguity: anchor_weight must be finite and >= 0, got ", opt.anchor_weight);
  const bool anchored = opt.anchor_weight > 0;
  if (anchored && !anchor)
    detail::fail("resolve_ambiguity: anchor_weight ", opt.anchor_weight,
                 " with no anchor images (pass one image per column, e.g. the LI start G(E(y)))");
  if (opt.placement_weight > 0 && opt.placement.mean_row == 0 && opt.placement.mean_col == 0)
    detail::fail("resolve_ambiguity: placement_weight ", opt.placement_weight,
                 " with no placement prior (ResolveOptions::placement is the default, centred at pixel (0, 0)): "
                 "fit one with placement_prior() or call prilo::resolve, which fits it to the decoder's samples");
  if (opt.placement_weight > 0) opt.placement.check("resolve_ambiguity");
  if (!(opt.temperature >= 0) || !std::isfinite(opt.temperature))
    detail::fail("resolve_ambiguity: temperature must be finite and >= 0, got ", opt.temperature);
  if (!(opt.scorer_weight >= 0) || !std::isfinite(opt.scorer_weight))
    detail::fail("resolve_ambiguity: scorer_weight must be finite and >= 0, got ", opt.scorer_weight);
  const bool scored_by_net = opt.scorer_weight > 0;
  if (scored_by_net && !scorer)
    detail::fail("resolve_ambiguity: scorer_weight ", opt.scorer_weight,
                 " with no placement scorer (train one with prilo-train-placement and pass it)");
  if (scored_by_net) scorer->require_network("resolve_ambiguity");
  if (scored_by_net && (scorer->spec().height != h || scorer->spec().width != w))
    detail::fail("resolve_ambiguity: the placement scorer reads ", scorer->spec().height, "x", scorer->spec().width,
                 " images, the measurements are of ", h, "x", w);
  for (const auto& jd : judges) {
    if (!jd.score) detail::fail("resolve_ambiguity: judge '", jd.name, "' has no score function");
    if (!(jd.weight >= 0) || !std::isfinite(jd.weight))
      detail::fail("resolve_ambiguity: judge '", jd.name, "': weight must be finite and >= 0, got ", jd.weight);
  }
  if (!judges.empty() && opt.judged_candidates < 1)
    detail::fail("resolve_ambiguity: judged_candidates must be >= 1, got ", opt.judged_candidates);
  const Eigen::Index n = Eigen::Index(h) * w, B = loss.batch();
  for (auto* s : solutions) require_shape(*s, n, B, "resolve_ambiguity solution");
  if (anchored) {
    require_shape(*anchor, n, B, "resolve_ambiguity anchor");
    require_finite(*anchor, "resolve_ambiguity anchor");
  }
  const Eigen::Index per_image = 2 * n * Eigen::Index(solutions.size());
  SolveResult<T> res;
  res.x.resize(n, B);
  res.chosen_restart.resize(B);
  const Mat<T> eps = Mat<T>::Zero(vae.latent_dim(), std::min(opt.block, per_image));
  // relative magnitude error of every solution (shifts and reflections share it)
  std::vector<Vec<T>> rel;
  const Vec<T> yy = loss.measurements().colwise().squaredNorm().transpose();
  for (auto* s : solutions) rel.push_back((loss.value(*s).array() / yy.array().max(T(1e-30))).matrix());
  // candidates scored per image (only the allowed solutions' transforms), for the FLOP account
  std::vector<Eigen::Index> scored(static_cast<std::size_t>(B), 0), judged(static_cast<std::size_t>(B), 0);
  auto resolve_one = [&](Eigen::Index j, Mat<T>& cand) {
    throw_if_stopped("resolve", opt.stop);
    // the solutions that compete: those that fit the measurements if any does, else all
    std::vector<std::size_t> allowed;
    for (std::size_t k = 0; k < solutions.size(); ++k)
      if (double(rel[k](j)) < opt.consistency_threshold) allowed.push_back(k);
    if (allowed.empty())
      for (std::size_t k = 0; k < solutions.size(); ++k) allowed.push_back(k);
    Eigen::Index c = 0;
    for (const std::size_t k : allowed) {
      metrics::all_shifts_reflections(solutions[k]->col(j), h, w, cand, c);
      c += 2 * n;
    }
    const Eigen::Index count = c;
    scored[std::size_t(j)] = count;
    Vec<T> all(count);  // every candidate's score (for the weighted mean)
    T best = std::numeric_limits<T>::infinity();
    Eigen::Index best_c = 0;
    for (Eigen::Index c0 = 0; c0 < count; c0 += opt.block) {
      const Eigen::Index nc = std::min(opt.block, count - c0);
      Vec<T> score = vae.negative_elbo(cand.middleCols(c0, nc), eps.leftCols(nc));
      if (opt.placement_weight > 0)
        for (Eigen::Index k = 0; k < nc; ++k) {
          const auto cm = centre_of_mass(cand.col(c0 + k), h, w);
          score(k) += T(opt.placement_weight * 0.5 * opt.placement.distance2(cm[0], cm[1]));
        }
      if (anchored)
        for (Eigen::Index k = 0; k < nc; ++k)
          score(k) += T(opt.anchor_weight * double((cand.col(c0 + k) - anchor->col(j)).squaredNorm()));
      if (scored_by_net) score -= T(opt.scorer_weight) * scorer->logits(cand.middleCols(c0, nc)).row(0).transpose();
      for (Eigen::Index k = 0; k < nc; ++k)
        if (score(k) < best) {
          best = score(k);
          best_c = c0 + k;
        }
      all.segment(c0, nc) = score;
    }
    if (!judges.empty() && std::isfinite(best)) {
      // the judged_candidates best (ties by index; non-finite last) compete, with the judges' scores added
      std::vector<Eigen::Index> order(static_cast<std::size_t>(count));
      std::iota(order.begin(), order.end(), Eigen::Index(0));
      const Eigen::Index k = std::min(opt.judged_candidates, count);
      auto key = [&](Eigen::Index c) { return std::isfinite(all(c)) ? double(all(c)) : HUGE_VAL; };
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](Eigen::Index a, Eigen::Index b) { return key(a) < key(b) || (key(a) == key(b) && a < b); });
      Mat<T> picked(n, k);
      Vec<T> sum(k);  // the model's own scores, then the judges' added
      for (Eigen::Index i = 0; i < k; ++i) {
        picked.col(i) = cand.col(order[std::size_t(i)]);
        sum(i) = all(order[std::size_t(i)]);
      }
      for (const auto& jd : judges) {
        const Vec<T> js = jd.score(picked);
        if (js.size() != k)
          detail::fail("resolve_ambiguity: judge '", jd.name, "' gave ", js.size(), " scores for ", k, " candidates");
        sum += T(jd.weight) * js;
      }
      all.setConstant(std::numeric_limits<T>::infinity());  // the others drop out
      best = std::numeric_limits<T>::infinity();
      for (Eigen::Index i = 0; i < k; ++i) {
        const Eigen::Index c = order[std::size_t(i)];
        all(c) = sum(i);
        if (sum(i) < best) {
          best = sum(i);
          best_c = c;
        }
      }
      judged[std::size_t(j)] = k;
    }
    if (opt.temperature > 0 && std::isfinite(best)) {
      // weights relative to the best (≤ 1, the best's = 1); non-finite scores weigh nothing
      Vec<T> wgt(count);
      for (Eigen::Index k = 0; k < count; ++k)
        wgt(k) = std::isfinite(all(k)) ? T(std::exp(-(double(all(k)) - double(best)) / opt.temperature)) : T(0);
      res.x.col(j) = cand.leftCols(count) * wgt / wgt.sum();
    } else {
      res.x.col(j) = cand.col(best_c);
    }
    res.chosen_restart[j] = int(allowed[std::size_t(best_c / (2 * n))]);  // which solution the winner came from
  };
  // images are independent, of uneven cost (one allowed solution's transforms or several) on
  // threads of possibly unequal speed: each thread takes the next image when it is done, with
  // its own candidates' buffer
  const int threads = int(std::max<Eigen::Index>(1, std::min<Eigen::Index>(max_threads(), B)));
  std::vector<Mat<T>> cands(static_cast<std::size_t>(threads));
  parallel_for_dynamic(B, threads, [&](Eigen::Index j, int t) {
    Mat<T>& cand = cands[std::size_t(t)];
    if (cand.cols() != per_image) cand.resize(n, per_image);
    resolve_one(j, cand);
  });
  res.magnitude_error = loss.value(res.x) / T(loss.op().output_size());
  // every candidate through the encoder (posterior mean) and the decoder, and the final loss
  const double elbo = detail::elbo_flops_per_column(vae);
  double candidates = 0;
  for (const Eigen::Index k : scored) candidates += double(k);
  // with a temperature, the weighted mean of an image's candidates: 2·n FLOP per candidate
  const double mean = opt.temperature > 0 ? 2.0 * double(n) : 0.0;
  // with an anchor, each candidate's squared distance to it: 3·n FLOP
  const double dist = anchored ? 3.0 * double(n) : 0.0;
  // with a scorer, its forward pass on each candidate
  const double net = scored_by_net ? scorer->flops_per_column() : 0.0;
  // with judges, their passes on the candidates they scored
  double judging = 0;
  for (const Eigen::Index k : judged)
    for (const auto& jd : judges) judging += double(k) * jd.flops_per_column;
  res.flops = Flops{candidates * (elbo + mean + dist + net) + judging, 0} + double(B) * loss_flops(loss, false);
  return res;
}

}  // namespace prilo

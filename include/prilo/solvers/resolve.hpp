// Resolving the shift/reflection ambiguity of non-oversampled Fourier phase retrieval with
// the generator's own likelihood (no ground truth).
#pragma once

#include <vector>

#include "../metrics/align.hpp"
#include "../nn/vae.hpp"
#include "../operators/magnitude_loss.hpp"
#include "common.hpp"

namespace prilo {

struct ResolveOptions {
  Eigen::Index block = 2048;  ///< candidate images scored per VAE pass
  /// A solution whose relative magnitude error ‖|Ax| − y‖² / ‖y‖² is below this threshold
  /// fits the measurements (e.g. an exact HIO recovery up to a shift or reflection); when
  /// an image has such solutions, only they (and their shifts and reflections) compete. 0
  /// turns the rule off. Chosen on training images (docs/tuning.md).
  double consistency_threshold = 1e-4;
};

/// |F x| cannot tell x from its 2-D circular shifts and its point reflection x(−n): all
/// 2·h·w such images have the same magnitudes. Given several solutions per image (e.g. the
/// PRILO-MII and the HIO outputs), this enumerates every shift and reflection of every
/// solution, scores each by the VAE's negative ELBO (with the posterior mean, ε = 0, so the
/// score is deterministic) and keeps the lowest: the equivalent image the model finds most
/// plausible. Solutions that fit the measurements (relative magnitude error below
/// ResolveOptions::consistency_threshold) take precedence over those that do not. Uses only
/// the measurements and the model, never the ground truth.
template <class T, class Op>
SolveResult<T> resolve_ambiguity(const nn::Vae<T>& vae, const MagnitudeLoss<Op>& loss, int h, int w,
                                 const std::vector<const Mat<T>*>& solutions, const ResolveOptions& opt, Rng&) {
  if (solutions.empty()) detail::fail("resolve_ambiguity: no solutions given");
  const Eigen::Index n = Eigen::Index(h) * w, B = loss.batch();
  for (auto* s : solutions) require_shape(*s, n, B, "resolve_ambiguity solution");
  const Eigen::Index per_image = 2 * n * Eigen::Index(solutions.size());
  SolveResult<T> res;
  res.x.resize(n, B);
  res.chosen_restart.resize(B);
  Mat<T> cand(n, per_image);
  const Mat<T> eps = Mat<T>::Zero(vae.latent_dim(), std::min(opt.block, per_image));
  // relative magnitude error of every solution (shifts and reflections share it)
  std::vector<Vec<T>> rel;
  const Vec<T> yy = loss.measurements().colwise().squaredNorm().transpose();
  for (auto* s : solutions) rel.push_back((loss.value(*s).array() / yy.array().max(T(1e-30))).matrix());
  for (Eigen::Index j = 0; j < B; ++j) {
    Eigen::Index c = 0;
    std::vector<bool> allowed(solutions.size(), true);
    bool any_consistent = false;
    for (std::size_t k = 0; k < solutions.size(); ++k) any_consistent |= double(rel[k](j)) < opt.consistency_threshold;
    if (any_consistent)
      for (std::size_t k = 0; k < solutions.size(); ++k) allowed[k] = double(rel[k](j)) < opt.consistency_threshold;
    for (auto* s : solutions) {
      const Vec<T> base = s->col(j);
      for (int refl = 0; refl < 2; ++refl)
        for (int dy = 0; dy < h; ++dy)
          for (int dx = 0; dx < w; ++dx) cand.col(c++) = metrics::apply_shift_reflect(base, h, w, dy, dx, refl == 1);
    }
    T best = std::numeric_limits<T>::infinity();
    Eigen::Index best_c = 0;
    for (Eigen::Index c0 = 0; c0 < per_image; c0 += opt.block) {
      const Eigen::Index nc = std::min(opt.block, per_image - c0);
      const Vec<T> score = vae.negative_elbo(cand.middleCols(c0, nc), eps.leftCols(nc));
      for (Eigen::Index k = 0; k < nc; ++k)
        if (allowed[std::size_t((c0 + k) / (2 * n))] && score(k) < best) {
          best = score(k);
          best_c = c0 + k;
        }
    }
    res.x.col(j) = cand.col(best_c);
    res.chosen_restart[j] = int(best_c / (2 * n));  // which solution the winner came from
  }
  res.magnitude_error = loss.value(res.x) / T(loss.op().output_size());
  return res;
}

}  // namespace prilo

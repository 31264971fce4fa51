// The consensus of a method's restarts (-avg): their weighted mean, each restart first moved
// by the shift/reflection that brings it closest to the kept one (no ground truth).
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "../flops.hpp"
#include "../metrics/align.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../parallel.hpp"
#include "common.hpp"

namespace prilo {

struct ConsensusOptions {
  /// Restart r of an image weighs (e_min / e_r)^power, e_r its magnitude error and e_min the
  /// lowest of the image's restarts (the kept one weighs 1). 0: the plain mean; large: the
  /// kept restart alone. Chosen on training images (docs/tuning.md; config "consensus").
  double power = 2;
  /// Move every restart by the circular shift and point reflection (all 2·h·w of them; the
  /// DFT's magnitudes cannot tell them apart) that minimises its distance to the kept restart
  /// before averaging. Off for operators without that ambiguity.
  bool align = true;
};

/// Per image, the weighted mean of its R restarts (all: n × B·R, restart r of image j in
/// column r·B + j, its magnitude errors in all.magnitude_error), the lowest-error restart
/// weighing 1 and restart r (e_min / e_r)^power (ConsensusOptions). With `align` (h·w = n),
/// each restart is first aligned to the lowest-error one by the transform of least squared
/// distance. Restarts with a non-finite image or a non-finite or negative error weigh 0. The
/// noise of the latent solvers makes restarts draws around a mode; their mean lowers the error
/// the draws do not share, which no single restart can (chained PRILO from LI starts, style
/// VAE, Fashion-MNIST: plain PSNR 21.22 → 21.80 dB on 256 training images, docs/tuning.md;
/// 20.46 → 21.04 dB on 1024 test images, docs/results.md). `loss` gives the mean's magnitude
/// errors (the mean fits the magnitudes less well than the restarts do). chosen_restart: the
/// lowest-error restart.
/// With `reference` (n × B, finite), every restart of image j, the kept one included, is aligned
/// to reference column j instead (with `align`): the consensus is then in the reference's
/// placement (-polish: the image its restarts started from).
/// flops: the final loss only (the restarts are counted where they ran).
template <class Loss, class T>
SolveResult<T> consensus(const Loss& loss, const SolveResult<T>& all, Eigen::Index B, int h, int w,
                         const ConsensusOptions& opt = {}, const Mat<T>* reference = nullptr) {
  if (B <= 0 || all.x.cols() % B != 0 || all.x.cols() == 0)
    detail::fail("consensus: ", all.x.cols(), " restart columns are not a multiple of ", B, " images");
  const Eigen::Index R = all.x.cols() / B, n = all.x.rows();
  require_shape(all.magnitude_error, all.x.cols(), 1, "consensus magnitude errors");
  if (opt.align && Eigen::Index(h) * w != n) detail::fail("consensus: images of ", n, " pixels are not ", h, "x", w);
  if (!(opt.power >= 0)) detail::fail("consensus: power must be >= 0, got ", opt.power);
  // the loss that scores the mean, before the B·R alignments (it refused only then, in its own words)
  if (loss.batch() != B) detail::fail("consensus: the loss holds ", loss.batch(), " measurement columns, not ", B);
  if constexpr (requires { loss.op().input_size(); })
    if (loss.op().input_size() != n)
      detail::fail("consensus: the loss's operator takes images of ", loss.op().input_size(), " values, not ", n);
  if (reference && opt.align) {
    require_shape(*reference, n, B, "consensus reference");
    require_finite(*reference, "consensus reference");
  }
  SolveResult<T> out;
  out.x.resize(n, B);
  out.chosen_restart.assign(std::size_t(B), -1);
  auto one = [&](Eigen::Index j, std::vector<double>& err) {
    // the kept restart: the lowest finite error with a finite image
    Eigen::Index best = -1;
    double e_min = std::numeric_limits<double>::infinity();
    for (Eigen::Index r = 0; r < R; ++r) {
      const double e = double(all.magnitude_error(r * B + j));
      const bool ok = std::isfinite(e) && e >= 0 && all.x.col(r * B + j).allFinite();
      err[std::size_t(r)] = ok ? e : -1;
      if (ok && e < e_min) {
        e_min = e;
        best = r;
      }
    }
    if (best < 0) {  // nothing finite: the first restart as it is
      out.x.col(j) = all.x.col(j);
      return;
    }
    out.chosen_restart[std::size_t(j)] = int(best);
    const bool to_given = reference && opt.align;
    const Vec<T> ref = to_given ? Vec<T>(reference->col(j)) : Vec<T>(all.x.col(best * B + j));
    Vec<double> sum = Vec<double>::Zero(n);
    double total = 0;
    for (Eigen::Index r = 0; r < R; ++r) {
      const double e = err[std::size_t(r)];
      if (e < 0) continue;
      // e_min / e <= 1; after an exact fit (e_min = 0) only the exact restarts count
      const double wr = r == best ? 1.0 : e_min > 0 ? std::pow(e_min / e, opt.power) : (e == 0 ? 1.0 : 0.0);
      if (!(wr > 0)) continue;
      const Vec<T> xr = all.x.col(r * B + j);
      const Vec<T> moved =
          (opt.align && (r != best || to_given)) ? metrics::align_to_reference(xr, ref, h, w).aligned : xr;
      sum += wr * moved.template cast<double>();
      total += wr;
    }
    out.x.col(j) = (sum / total).template cast<T>();
  };
  // images are independent: contiguous ranges of them on the threads
  for_column_chunks(
      B,
      [&](Eigen::Index j0, Eigen::Index nj) {
        std::vector<double> err(static_cast<std::size_t>(R));
        for (Eigen::Index j = j0; j < j0 + nj; ++j) one(j, err);
      },
      1);
  out.magnitude_error = loss.value(out.x) / T(loss.op().output_size());
  out.flops = double(B) * loss_flops(loss, false);  // the restarts' own work is the caller's to count
  return out;
}

}  // namespace prilo

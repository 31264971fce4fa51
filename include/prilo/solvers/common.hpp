// Result, progress and restart handling shared by every solver.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../core.hpp"
#include "../flops.hpp"

namespace prilo {

/// What a solver reports while it runs.
struct Progress {
  std::string method;    ///< "hio", "dpr", "prilo", ...
  std::string stage;     ///< e.g. "initial", "A z2 (rep 3/9)", "B", "C"
  int step = 0;          ///< step within the stage (1-based)
  int steps = 0;         ///< steps of the stage
  double mean_loss = 0;  ///< mean magnitude loss over the batch (or the stage's objective)
};
using ProgressFn = std::function<void(const Progress&)>;

/// One phase a solver ran, in order: what the ablation switches change, and where the
/// phases of a history begin (Figure 7).
struct PhaseRecord {
  std::string name;    ///< e.g. "initial z0", "A z2 rep 3/9", "B z2 rep 3/9", "C z2 rep 3/9", "z0"
  char kind = 'I';     ///< 'I' initial z0, 'A' forward, 'B' back-projection, 'C' refinement, 'D' DPR
  int layer = 0;       ///< the optimised split point (0: the latent z0)
  int steps = 0;       ///< steps run
  int first_step = 0;  ///< magnitude-loss steps run before it (B phases do not advance the count)
  Flops flops{};       ///< the products and FFTs it ran, over all its columns (prilo/flops.hpp)
};

/// What a solver shows an observer at every `history_stride`-th step of each phase (counted
/// within the phase): the current image of every column (before the step) and its magnitude
/// loss. For B phases the image is G(z0) of the current back-projection iterate.
template <class T>
struct Snapshot {
  const PhaseRecord& phase;
  int step = 0;         ///< step within the phase (1-based)
  int global_step = 0;  ///< solver-wide step of the magnitude phases
  const Mat<T>& x;      ///< n×B images
  const Vec<T>& loss;   ///< ‖|Ax| − y‖² per column
};
template <class T>
using ObserverFn = std::function<void(const Snapshot<T>&)>;

/// Per-image outcome of a solve on a batch of B measurement columns.
template <class T>
struct SolveResult {
  Mat<T> x;                         ///< reconstructions, n×B
  Mat<T> z;                         ///< latents z0, d×B (empty for ER/HIO)
  Vec<T> magnitude_error;           ///< ‖|Ax| − y‖² / m per image
  Mat<T> history;                   ///< magnitude loss per image (columns) at recorded steps (rows)
  std::vector<int> history_steps;   ///< global step index of each history row
  std::vector<int> chosen_restart;  ///< per image, the restart kept (with restarts)
  std::vector<PhaseRecord> phases;  ///< the phases run, in order (latent solvers)
  /// The products and FFTs the solve ran in all: its phases, and the evaluations between them
  /// (keep-best, the final image); with the pipeline, the starts (MII) too.
  Flops flops{};
};

namespace detail {
/// Whether magnitude error a is lower than b, a NaN higher than every number (a restart or
/// phase whose error is NaN never wins over a finite one, and a finite one replaces it).
template <class T>
bool lower_error(T a, T b) {
  return a < b || (std::isnan(b) && !std::isnan(a));
}

/// y repeated R times column-block-wise: [y y … y] (B·R columns).
template <class T>
Mat<T> tile_columns(const Mat<T>& y, int repeats) {
  Mat<T> out(y.rows(), y.cols() * repeats);
  for (int r = 0; r < repeats; ++r) out.middleCols(r * y.cols(), y.cols()) = y;
  return out;
}

template <class T>
void record(SolveResult<T>& res, int step, const Vec<T>& loss, int stride) {
  if (stride <= 0 || step % stride != 0) return;
  res.history.conservativeResize(res.history.rows() + 1, loss.size());
  res.history.row(res.history.rows() - 1) = loss.transpose();
  res.history_steps.push_back(step);
}
}  // namespace detail

/// Keeps, for each of the B images, the restart (of R, stored as column blocks r·B + j) with
/// the lowest magnitude error (a NaN error counts as the highest).
template <class T>
SolveResult<T> select_best(const SolveResult<T>& all, Eigen::Index B, int R) {
  if (R < 1 || B < 0) detail::fail("select_best: needs B >= 0 images and R >= 1 restarts, got B = ", B, ", R = ", R);
  const Eigen::Index n = B * R;
  if (all.x.cols() != n || all.magnitude_error.size() != n || (all.z.size() && all.z.cols() != n) ||
      (all.history.rows() && all.history.cols() != n))
    detail::fail("select_best: the result has ", all.x.cols(), " images, ", all.magnitude_error.size(),
                 " magnitude errors, ", all.z.cols(), " latents and ", all.history.cols(),
                 " history columns; B·R = ", n, " expected of each (latents and history may be empty)");
  SolveResult<T> out;
  out.x.resize(all.x.rows(), B);
  if (all.z.size()) out.z.resize(all.z.rows(), B);
  out.magnitude_error.resize(B);
  out.history.resize(all.history.rows(), B);
  out.history_steps = all.history_steps;
  out.phases = all.phases;
  out.flops = all.flops;  // the work done for every restart
  out.chosen_restart.resize(B);
  for (Eigen::Index j = 0; j < B; ++j) {
    int best = 0;
    for (int r = 1; r < R; ++r)
      if (detail::lower_error(all.magnitude_error(r * B + j), all.magnitude_error(best * B + j))) best = r;
    const Eigen::Index c = best * B + j;
    out.x.col(j) = all.x.col(c);
    if (all.z.size()) out.z.col(j) = all.z.col(c);
    out.magnitude_error(j) = all.magnitude_error(c);
    if (all.history.rows()) out.history.col(j) = all.history.col(c);
    out.chosen_restart[j] = best;
  }
  return out;
}

}  // namespace prilo

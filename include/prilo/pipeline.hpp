// The paper's method as library calls: starts (random, MII or LI), a solver with restarts as
// columns on column blocks (one per thread), keep-best per image, and -resolve.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "concepts/vae.hpp"
#include "exec/executor.hpp"
#include "init/initialisers.hpp"
#include "init/li.hpp"
#include "nn/vae.hpp"
#include "operators/magnitude_loss.hpp"
#include "solvers/column_blocks.hpp"
#include "solvers/fienup.hpp"
#include "solvers/latent.hpp"
#include "solvers/resolve.hpp"

namespace prilo {

/// Where the latent solvers start: z0 ~ N(0, I), MII (the paper's Eq. 8: the best of
/// `MiiOptions::candidates` sampled latents by magnitude error; restart r starts from the
/// (r+1)-th best), or LI (the paper's learned initialisation: z0 = E(y) from a trained encoder,
/// restarts perturbed; the overloads that take a LearnedStart).
enum class LatentStart { random, mii, li };

/// LI's starts: the trained encoder (prilo/init/li.hpp) and the standard deviation of the
/// perturbation of restarts 1 … R−1 (the paper's σ = 0.05; restart 0 starts at E(y) itself).
template <class T>
struct LearnedStart {
  const LiEncoder<T>* encoder = nullptr;
  double sigma = 0.05;
};

/// Restarts and threading of a reconstruction: every image is solved `restarts` times, the
/// B·R problems as one batch of columns (restart r of image j in column r·B + j), split into
/// column blocks solved in parallel (solve_column_blocks); the restart with the lowest
/// magnitude error is kept per image.
struct RestartOptions {
  int restarts = 4;
  ColumnBlockOptions blocks{};
  /// Also return every restart's result (RestartResult::all), e.g. for best-of-r curves.
  bool keep_all = false;
};

/// Per image, the kept restart (`best`: B columns) and, with RestartOptions::keep_all,
/// every restart (`all`: B·R columns, restart r of image j in column r·B + j).
template <class T>
struct RestartResult {
  SolveResult<T> best;
  SolveResult<T> all;
};

/// The magnitude loss of operator op against host measurements y, on the operator's
/// executor (one MagnitudeLoss class for every executor; an operator type may still provide
/// its own make_magnitude_loss next to it, found by argument-dependent lookup).
template <LossOperator Op>
MagnitudeLoss<Op> make_magnitude_loss(const Op& op, const Mat<typename Op::scalar>& y) {
  return MagnitudeLoss<Op>(op, y);
}
/// The loss keeps a pointer to op, which must outlive it: a temporary operator is refused.
template <LossOperator Op>
void make_magnitude_loss(const Op&&, const Mat<typename Op::scalar>&) = delete;

/// Where the columns of a reconstruction are solved: all in this process (LocalRun, the
/// default), or spread over processes (mpi::Collective, prilo/mpi.hpp), which solves a part
/// of the column blocks in each process and joins the parts' results in every process. A
/// Run has part(), parts() and join(result, partition) (a no-op here).
struct LocalRun {
  int part() const { return 0; }
  int parts() const { return 1; }
  template <class T>
  void join(SolveResult<T>&, const ColumnPartition&) const {}
};

/// A Run chosen at run time (in a distributed program or not, from its command line), for
/// code that is not templated on the Run: its part, its count of parts and a join.
template <class T>
struct AnyRun {
  int part_index = 0, part_count = 1;
  std::function<void(SolveResult<T>&, const ColumnPartition&)> join_parts = {};
  int part() const { return part_index; }
  int parts() const { return part_count; }
  void join(SolveResult<T>& r, const ColumnPartition& s) const {
    if (join_parts) join_parts(r, s);
  }
};

namespace detail {
// named concepts rather than requires-expressions inside the lambda below, which nvcc's front
// end evaluates wrongly there
template <class O>
concept has_progress_member = requires(O& o) {
  o.progress;
};
template <class O>
concept has_observe_member = requires(O& o) {
  o.observe;
};
}  // namespace detail

/// Solves every measurement column of y (B images) R times from the B·R columns of `starts`
/// with `solve(block_loss, block_start, block_rng, options)`, and keeps the lowest magnitude
/// error per image. On the CPU executor the columns are split into blocks solved in parallel
/// (solve_column_blocks); a device executor solves them as one batch. `options` is copied per
/// block; its `progress` (and `observe`, where it has one) is kept for block 0 only, which
/// runs on the calling thread. Starts and results are host matrices. With a distributed
/// `run`, every process gets the same starts and random streams and solves its part of the
/// blocks (ro.blocks.blocks must then be fixed); the result, joined, is the one-process
/// result bit for bit.
template <class Op, class Options, class Solve, class Run = LocalRun, class T = typename Op::scalar>
RestartResult<T> solve_restarts(const Op& op, const Mat<T>& y, const Mat<T>& starts, const Options& options, Rng& rng,
                                const RestartOptions& ro, Solve&& solve, const Run& run = {}) {
  if (ro.restarts < 1) detail::fail("solve_restarts: restarts must be >= 1, got ", ro.restarts);
  const Eigen::Index B = y.cols();
  require_shape(starts, starts.rows(), B * ro.restarts, "solve_restarts starts");
  const auto tiled = make_magnitude_loss(op, detail::tile_columns(y, ro.restarts));
  ColumnBlockOptions blocks = ro.blocks;
  blocks.part = run.part();
  blocks.parts = run.parts();
  SolveResult<T> all = solve_blocks(
      executor_of(tiled), tiled, starts, rng,
      [&](const auto& block_loss, auto s, Rng& g, const ColumnBlock& b) {
        Options o = options;
        if (b.index != 0) {
          if constexpr (detail::has_progress_member<Options>) o.progress = {};
          if constexpr (detail::has_observe_member<Options>) o.observe = {};
        }
        return solve(block_loss, std::move(s), g, o);
      },
      blocks);
  run.join(all, column_partition(B * ro.restarts, blocks));
  RestartResult<T> out;
  out.best = select_best(all, B, ro.restarts);
  if (ro.keep_all) out.all = std::move(all);
  return out;
}

/// The latent starts of `restarts` restarts per measurement column of `loss`: random, or MII.
/// (LI needs its encoder and the host measurements: the overload below.)
template <Generator G, class Loss, class T = typename G::scalar>
Mat<T> latent_starts(const G& gen, const Loss& loss, LatentStart start, int restarts, const MiiOptions& mii, Rng& rng) {
  if (restarts < 1) detail::fail("latent_starts: restarts must be >= 1, got ", restarts);
  if (start == LatentStart::li)
    detail::fail("latent_starts: LatentStart::li needs the encoder: call latent_starts(gen, y, LearnedStart, ...)");
  return start == LatentStart::mii ? mii_latents(gen, loss, restarts, mii, rng)
                                   : random_latents(gen, loss.batch() * restarts, rng);
}

namespace detail {
/// invalid_input (prefixed by `what`) unless li has an encoder whose latent is the generator's.
template <Generator G, class T = typename G::scalar>
void check_learned_start(const G& gen, const LearnedStart<T>& li, const char* what) {
  if (!li.encoder) fail(what, ": LatentStart::li without an encoder (LearnedStart::encoder)");
  if (li.encoder->latent_dim() != gen.dim(0))
    fail(what, ": the LI encoder gives latents of ", li.encoder->latent_dim(), " entries, the generator takes ",
         gen.dim(0));
}
}  // namespace detail

/// LI's starts for the host measurements y (li_latents: column r·B + j for restart r of image
/// j; restart 0 at E(y_j), the others E(y_j) + σ·ε); invalid_input without an encoder or when
/// its latent is not the generator's.
template <Generator G, class T = typename G::scalar>
Mat<T> latent_starts(const G& gen, const Mat<T>& y, const LearnedStart<T>& li, int restarts, Rng& rng) {
  detail::check_learned_start(gen, li, "latent_starts");
  return li_latents(*li.encoder, y, restarts, li.sigma, rng);
}

/// The LI start images G(E(y)) of the host measurements y, one per column (restart 0's start,
/// unperturbed): -resolve's anchor for the -li methods (ResolveOptions::anchor_weight).
/// invalid_input without an encoder or when its latent is not the generator's.
template <Generator G, class T = typename G::scalar>
Mat<T> li_anchor(const G& gen, const Mat<T>& y, const LearnedStart<T>& li) {
  detail::check_learned_start(gen, li, "li_anchor");
  return gen.forward_from(0, li.encoder->encode(y));
}

namespace detail {
/// A latent solver from random, MII or LI starts, with restarts: what reconstruct_dpr and
/// reconstruct_prilo share; `solve` runs the solver on one column block. `li` is read for
/// LatentStart::li only.
template <Generator G, class Op, class Options, class Solve, class Run, class T = typename G::scalar>
RestartResult<T> reconstruct_latent(const G& gen, const Op& op, const Mat<T>& y, LatentStart start,
                                    const MiiOptions& mii, const LearnedStart<T>& li, const Options& opt, Rng& rng,
                                    const RestartOptions& ro, Solve&& solve, const Run& run) {
  Flops f{};
  Mat<T> z0;
  if (start == LatentStart::li) {
    detail::check_learned_start(gen, li, "reconstruct (LI start)");
    // an encoder trained on another operator gives starts far from the images, with no error
    if constexpr (MeasurementOperator<Op>) li.encoder->check_operator(op, "reconstruct (LI start)");
    z0 = latent_starts(gen, y, li, ro.restarts, rng);
    f.products = double(y.cols()) * li.encoder->flops_per_column();  // one encoding per image
  } else {
    const auto loss = make_magnitude_loss(op, y);
    z0 = latent_starts(gen, loss, start, ro.restarts, mii, rng);
    if (start == LatentStart::mii) {  // the candidates' decoding and scoring
      f = Flops{double(mii.candidates) * forward_flops(gen, 0, gen.depth()), 0};
      if constexpr (requires { loss.scores_flops(mii.candidates); }) f += loss.scores_flops(mii.candidates);
    }
  }
  RestartResult<T> out = solve_restarts(op, y, z0, opt, rng, ro, std::forward<Solve>(solve), run);
  if (start != LatentStart::random) {
    out.best.flops += f;
    if (ro.keep_all) out.all.flops += f;
  }
  return out;
}
}  // namespace detail

/// DPR (or DPR-MII) on the images measured as y = |A x| (one column each), with restarts;
/// Policies as for dpr. Runs on the generator's executor: a CPU generator and operator, or a
/// device generator (gpu::Sequential) and device operator (gpu::Fourier2d); y and the
/// results are host matrices either way.
template <class Policies = PaperPolicies, Generator G, class Op, class Run = LocalRun, class T = typename G::scalar>
RestartResult<T> reconstruct_dpr(const G& gen, const Op& op, const Mat<T>& y, LatentStart start, const MiiOptions& mii,
                                 const DprOptions<T>& opt, Rng& rng, const RestartOptions& ro = {},
                                 const Run& run = {}) {
  return detail::reconstruct_latent(
      gen, op, y, start, mii, LearnedStart<T>{}, opt, rng, ro,
      [&](const auto& l, auto s, Rng& g, const DprOptions<T>& o) { return dpr<Policies>(gen, l, std::move(s), o, g); },
      run);
}
/// DPR-LI: DPR from the learned initialisation's starts (LearnedStart: the encoder, trained on
/// this operator, and σ), with restarts.
template <class Policies = PaperPolicies, Generator G, class Op, class Run = LocalRun, class T = typename G::scalar>
RestartResult<T> reconstruct_dpr(const G& gen, const Op& op, const Mat<T>& y, const LearnedStart<T>& li,
                                 const DprOptions<T>& opt, Rng& rng, const RestartOptions& ro = {},
                                 const Run& run = {}) {
  return detail::reconstruct_latent(
      gen, op, y, LatentStart::li, MiiOptions{}, li, opt, rng, ro,
      [&](const auto& l, auto s, Rng& g, const DprOptions<T>& o) { return dpr<Policies>(gen, l, std::move(s), o, g); },
      run);
}

/// PRILO (either reading, PriloOptions::reading; with keep_best_range_extended, -rx) from
/// random or MII starts, with restarts; Policies as for prilo_solve; any executor, as
/// reconstruct_dpr.
template <class Policies = PaperPolicies, Generator G, class Op, class Run = LocalRun, class T = typename G::scalar>
RestartResult<T> reconstruct_prilo(const G& gen, const Op& op, const Mat<T>& y, LatentStart start,
                                   const MiiOptions& mii, const PriloOptions<T>& opt, Rng& rng,
                                   const RestartOptions& ro = {}, const Run& run = {}) {
  return detail::reconstruct_latent(
      gen, op, y, start, mii, LearnedStart<T>{}, opt, rng, ro,
      [&](const auto& l, auto s, Rng& g, const PriloOptions<T>& o) {
        return prilo_solve<Policies>(gen, l, std::move(s), o, g);
      },
      run);
}
/// PRILO-LI: PRILO (either reading) from the learned initialisation's starts, with restarts.
template <class Policies = PaperPolicies, Generator G, class Op, class Run = LocalRun, class T = typename G::scalar>
RestartResult<T> reconstruct_prilo(const G& gen, const Op& op, const Mat<T>& y, const LearnedStart<T>& li,
                                   const PriloOptions<T>& opt, Rng& rng, const RestartOptions& ro = {},
                                   const Run& run = {}) {
  return detail::reconstruct_latent(
      gen, op, y, LatentStart::li, MiiOptions{}, li, opt, rng, ro,
      [&](const auto& l, auto s, Rng& g, const PriloOptions<T>& o) {
        return prilo_solve<Policies>(gen, l, std::move(s), o, g);
      },
      run);
}

/// ER (hio = false) or HIO for the DFT from uniform starts in [0, 1], with restarts.
template <MeasurementOperator Op, class Run = LocalRun, class T = typename Op::scalar>
RestartResult<T> reconstruct_fienup(const Op& op, const Mat<T>& y, bool hio, const FienupOptions<T>& opt, Rng& rng,
                                    const RestartOptions& ro = {}, const Run& run = {}) {
  if (ro.restarts < 1) detail::fail("reconstruct_fienup: restarts must be >= 1, got ", ro.restarts);
  const Mat<T> x0 = uniform_start<T>(op.input_size(), y.cols() * ro.restarts, rng);
  return solve_restarts(
      op, y, x0, opt, rng, ro,
      [&](const auto& l, Mat<T> s, Rng&, const FienupOptions<T>& o) { return fienup(l, std::move(s), hio, o); }, run);
}

/// -resolve: of every circular shift and point reflection of the given solutions (each n×B,
/// e.g. PRILO's and HIO's), per image the one the VAE (with the placement prior, when
/// opt.placement_weight > 0) finds most plausible, solutions that fit the measurements
/// first. With a placement weight and no prior given (all zero), the prior is fitted to
/// 4096 samples of the decoder from a fixed stream.
/// With opt.anchor_weight > 0, `anchor` gives one image per column (e.g. the LI start G(E(y)):
/// li_anchor); with opt.scorer_weight > 0, `scorer` is the learned placement scorer; `judges`
/// (e.g. other VAEs' elbo_judge) add their scores to each image's opt.judged_candidates best
/// candidates. With a distributed `run`, each process resolves a contiguous part of the images
/// and the parts are joined in every process (the same result as one process).
template <class T, VaeModel V, class Run = LocalRun>
SolveResult<T> resolve(const V& vae, const Fourier2d<T>& op, const Mat<T>& y,
                       const std::vector<const Mat<T>*>& solutions, ResolveOptions opt, const Run& run = {},
                       std::type_identity_t<const Mat<T>*> anchor = nullptr,
                       std::type_identity_t<const PlacementScorer<T>*> scorer = nullptr,
                       std::type_identity_t<std::span<const PlacementJudge<T>>> judges = {}) {
  if (run.parts() < 1 || run.part() < 0 || run.part() >= run.parts())
    detail::fail("resolve: part ", run.part(), " of ", run.parts(), " is not a valid part");
  for (std::size_t k = 0; k < solutions.size(); ++k)
    if (!solutions[k]) detail::fail("resolve: solution ", k, " is a null pointer");
  if (opt.placement_weight > 0 && opt.placement.mean_row == 0 && opt.placement.mean_col == 0) {
    Rng prior_rng(0x9e3779b97f4a7c15ull);
    const auto& gen = vae.decoder();
    opt.placement =
        placement_prior<T>(gen.forward_from(0, random_latents(gen, 4096, prior_rng)), op.height(), op.width());
  }
  Rng unused(0);
  if (run.parts() == 1)
    return resolve_ambiguity(vae, MagnitudeLoss<Fourier2d<T>>(op, y), op.height(), op.width(), solutions, opt, unused,
                             anchor, scorer, judges);
  // contiguous images per process, each part starting at a whole block of the fused loss (lane
  // blocks of 2·L columns, FFTW's pairs): a column's loss rounds with its block partners, so
  // parts cut elsewhere would give other last bits than one process (a part may then be empty)
  ColumnPartition split;
  split.blocks = run.parts();
  const Eigen::Index B = y.cols();
  for (int q = 0; q < run.parts(); ++q) {
    const auto [first, end] = detail::granular_range(B, detail::fused_loss_granule(op), q, run.parts());
    split.first.push_back(first);
    split.count.push_back(end - first);
  }
  const Eigen::Index j0 = split.first[std::size_t(run.part())], nj = split.count[std::size_t(run.part())];
  std::vector<Mat<T>> local;
  std::vector<const Mat<T>*> ptrs;
  for (auto* s : solutions) {
    require_shape(*s, s->rows(), B, "resolve solution");
    local.push_back(s->middleCols(j0, nj));
  }
  for (const auto& m : local) ptrs.push_back(&m);
  Mat<T> local_anchor;
  if (anchor) {
    require_shape(*anchor, anchor->rows(), B, "resolve anchor");
    local_anchor = anchor->middleCols(j0, nj);
  }
  SolveResult<T> part =
      nj > 0 ? resolve_ambiguity(vae, MagnitudeLoss<Fourier2d<T>>(op, Mat<T>(y.middleCols(j0, nj))), op.height(),
                                 op.width(), ptrs, opt, unused, anchor ? &local_anchor : nullptr, scorer, judges)
             : SolveResult<T>{};
  run.join(part, split);
  return part;
}

}  // namespace prilo

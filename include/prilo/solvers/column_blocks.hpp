// Running a solver on column blocks of its batch, one block per thread.
//
// Every image (and every restart, stored as another column) of a batch is an independent
// problem. Splitting the *whole solve* over contiguous column blocks, one per thread, keeps
// each thread busy with its own products, FFTs, noise, Adam and projections for the entire
// run: no fork-join per kernel, and no serial elementwise work left between parallel
// products. On the 2-core machines measured in benchmarks/README.md this scales the
// PRILO-MII reconstruction better than threading each kernel.
#pragma once

#include <type_traits>
#include <vector>

#include "../exec/executor.hpp"
#include "../parallel.hpp"
#include "../random.hpp"
#include "common.hpp"

namespace prilo {

/// Which block of the batch a call of the block solver handles.
struct ColumnBlock {
  int index = 0;             ///< 0-based block number (block 0 runs on the calling thread)
  int count = 1;             ///< number of blocks
  Eigen::Index first = 0;    ///< first column of the batch in this block
  Eigen::Index columns = 0;  ///< columns in this block
};

struct ColumnBlockOptions {
  /// Number of blocks; 0: one per available thread (OpenMP), limited by min_columns.
  int blocks = 0;
  /// Blocks are at least this wide (narrower blocks lose more in the matrix products than
  /// threading gains).
  Eigen::Index min_columns = 16;
  /// Distributed runs (prilo/mpi.hpp): this process solves only part `part` of `parts`, a
  /// contiguous range of the blocks, and the result holds only those columns. Every process
  /// splits the batch and the random streams alike, so the parts joined in order are the
  /// one-process result bit for bit. With parts > 1, `blocks` must be fixed (> 0).
  int part = 0;
  int parts = 1;
};

/// How solve_column_blocks splits `cols` columns: the number of blocks and, for every part,
/// its first column and column count.
struct ColumnPartition {
  Eigen::Index blocks = 1;
  std::vector<Eigen::Index> first, count;  ///< per part
};

/// The split solve_column_blocks uses for these options (checked: blocks ≥ 0, min_columns ≥ 1,
/// 0 ≤ part < parts, blocks fixed when parts > 1).
inline ColumnPartition column_partition(Eigen::Index cols, const ColumnBlockOptions& opt) {
  if (opt.blocks < 0) detail::fail("solve_column_blocks: blocks must be >= 0, got ", opt.blocks);
  if (opt.min_columns < 1) detail::fail("solve_column_blocks: min_columns must be >= 1, got ", opt.min_columns);
  if (opt.parts < 1 || opt.part < 0 || opt.part >= opt.parts)
    detail::fail("solve_column_blocks: part ", opt.part, " of ", opt.parts, " is not a valid part");
  if (opt.parts > 1 && opt.blocks == 0)
    detail::fail("solve_column_blocks: a distributed run (", opt.parts,
                 " parts) needs a fixed number of blocks (ColumnBlockOptions::blocks > 0)");
  ColumnPartition p;
  p.blocks = opt.blocks > 0 ? opt.blocks : Eigen::Index(max_threads());
  p.blocks = std::max<Eigen::Index>(1, std::min(p.blocks, cols / opt.min_columns));
  for (int q = 0; q < opt.parts; ++q) {
    const Eigen::Index b0 = p.blocks * q / opt.parts, b1 = p.blocks * (q + 1) / opt.parts;
    const Eigen::Index j0 = cols * b0 / p.blocks, j1 = cols * b1 / p.blocks;
    p.first.push_back(j0);
    p.count.push_back(j1 - j0);
  }
  return p;
}

namespace detail {

/// Concatenates per-block results (same history rows in every block) column-wise.
template <class T>
SolveResult<T> join_column_blocks(std::vector<SolveResult<T>>& parts, Eigen::Index cols) {
  SolveResult<T> out;
  const SolveResult<T>& p0 = parts.front();
  out.x.resize(p0.x.rows(), cols);
  if (p0.z.size()) out.z.resize(p0.z.rows(), cols);
  out.magnitude_error.resize(cols);
  out.history.resize(p0.history.rows(), cols);
  out.history_steps = p0.history_steps;
  out.phases = p0.phases;
  for (auto& ph : out.phases) ph.flops = {};
  Eigen::Index c = 0;
  for (auto& p : parts) {
    out.flops += p.flops;
    // the blocks ran the same phases on their own columns; a phase's work is their sum
    for (std::size_t k = 0; k < std::min(out.phases.size(), p.phases.size()); ++k)
      out.phases[k].flops += p.phases[k].flops;
    const Eigen::Index n = p.x.cols();
    if (p.history.rows() != out.history.rows() || (p.z.size() != 0) != (p0.z.size() != 0))
      fail("solve_column_blocks: blocks returned results of different shapes");
    // a block solver's result of another size would be written out of bounds or mixed in
    if (p.x.rows() != p0.x.rows() || c + n > cols || p.magnitude_error.size() != n ||
        (p.z.size() && (p.z.rows() != p0.z.rows() || p.z.cols() != n)) || (p.history.rows() && p.history.cols() != n))
      fail("solve_column_blocks: a block returned ", p.x.rows(), "x", n, " images with ", p.magnitude_error.size(),
           " errors; the blocks must return their columns' results (", cols, " columns in all, ", p0.x.rows(),
           " rows)");
    out.x.middleCols(c, n) = p.x;
    if (p.z.size()) out.z.middleCols(c, n) = p.z;
    out.magnitude_error.segment(c, n) = p.magnitude_error;
    if (p.history.rows()) out.history.middleCols(c, n) = p.history;
    out.chosen_restart.insert(out.chosen_restart.end(), p.chosen_restart.begin(), p.chosen_restart.end());
    c += n;
  }
  if (c != cols) fail("solve_column_blocks: the blocks returned ", c, " columns in all, not ", cols);
  return out;
}

}  // namespace detail

/// Solves the batch of `loss` (one measurement column per problem) from the start columns
/// `start` (one per problem) by calling
///     solve(const Loss& block_loss, Mat<T> block_start, Rng& block_rng, const ColumnBlock& block)
/// on contiguous column blocks in parallel, each block on one thread (every kernel inside
/// runs single-threaded), and joins the SolveResults in column order. `block_loss` is a loss
/// of the same type over the block's measurements and the same operator (which must allow
/// concurrent const use, as every shipped operator does).
///
/// Random numbers: with one block, `solve` gets `rng` itself (results are those of calling
/// the solver directly); with several, block b draws from the b-th rng.split() (taken in
/// block order before the blocks start), so a result depends on the seed and on the number of blocks. Fix
/// ColumnBlockOptions::blocks to get the same result with every thread count. Afterwards
/// `rng` is in the same state on every process of a distributed run except with a single
/// block, which the owning process solves with `rng` itself (the others leave it untouched):
/// split a stream before the call if later draws must agree across processes.
///
/// Progress callbacks should be given to block 0 only (block.index == 0): it runs on the
/// calling thread, and its mean loss stands for the batch's.
template <class Loss, class T, class Solve>
SolveResult<T> solve_column_blocks(const Loss& loss, const Mat<T>& start, Rng& rng, Solve&& solve,
                                   const ColumnBlockOptions& opt = {}) {
  const Eigen::Index cols = loss.batch();
  require_shape(start, start.rows(), cols, "solve_column_blocks start");
  const ColumnPartition split = column_partition(cols, opt);
  const Eigen::Index nb = split.blocks;
  if (nb == 1) {  // solved directly by the part that owns the only block
    if (split.count[std::size_t(opt.part)] == cols) return solve(loss, start, rng, ColumnBlock{0, 1, 0, cols});
    return SolveResult<T>{};
  }
  using L = std::remove_cvref_t<Loss>;
  std::vector<Rng> streams;
  for (Eigen::Index b = 0; b < nb; ++b) streams.push_back(rng.split());  // all of them, in every part
  const Eigen::Index b0 = nb * opt.part / opt.parts, b1 = nb * (opt.part + 1) / opt.parts;
  if (b1 == b0) return SolveResult<T>{};
  std::vector<SolveResult<T>> parts(static_cast<std::size_t>(b1 - b0));
  parallel_for(b1 - b0, int(std::min<Eigen::Index>(b1 - b0, max_threads())), [&](Eigen::Index k) {
    const Eigen::Index b = b0 + k, j0 = cols * b / nb, j1 = cols * (b + 1) / nb;
    const L block_loss(loss.op(), Mat<T>(loss.measurements().middleCols(j0, j1 - j0)));
    parts[std::size_t(k)] = solve(block_loss, Mat<T>(start.middleCols(j0, j1 - j0)), streams[std::size_t(b)],
                                  ColumnBlock{int(b), int(nb), j0, j1 - j0});
  });
  return detail::join_column_blocks(parts, split.count[std::size_t(opt.part)]);
}

/// The CPU executor's way to solve a batch of independent columns: column blocks in
/// parallel (solve_column_blocks). A device executor provides its own solve_blocks (one batch).
template <class Loss, class T, class Solve>
SolveResult<T> solve_blocks(const CpuExecutor&, const Loss& loss, const Mat<T>& start, Rng& rng, Solve&& solve,
                            const ColumnBlockOptions& opt = {}) {
  return solve_column_blocks(loss, start, rng, std::forward<Solve>(solve), opt);
}

}  // namespace prilo

// Spreading a reconstruction over MPI processes: each process solves a part of the column
// blocks (images × restarts) with its own threads, and the parts are joined in every
// process. Optional: include it only where <mpi.h> is available (CMake: -DPRILO_MPI=ON,
// target prilo::mpi). See docs/scaling.md for what is sent and when.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline.hpp"
#include "solvers/column_blocks.hpp"
#include "solvers/common.hpp"

namespace prilo::mpi {

/// MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread talks to MPI; OpenMP threads
/// only compute) unless MPI is already initialised, and MPI_Finalize at the end if this
/// object initialised it.
class Session {
 public:
  Session(int& argc, char**& argv) {
    int done = 0;
    MPI_Initialized(&done);
    if (!done) {
      int provided = 0;
      MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
      owner_ = true;
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    int done = 0;
    MPI_Finalized(&done);
    if (owner_ && !done) MPI_Finalize();
  }

 private:
  bool owner_ = false;
};

template <class T>
MPI_Datatype datatype();
template <>
inline MPI_Datatype datatype<float>() {
  return MPI_FLOAT;
}
template <>
inline MPI_Datatype datatype<double>() {
  return MPI_DOUBLE;
}

/// Runs f(); if it throws, prints "prilo: rank r of n: <message>" and ends every process of
/// `comm` with MPI_Abort, so that one process's failure ends the job instead of leaving the
/// others waiting in a collective call.
template <class F>
void abort_on_error(MPI_Comm comm, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    std::fprintf(stderr, "prilo: rank %d of %d: %s\n", rank, size, e.what());
    std::fflush(stderr);
    MPI_Abort(comm, 1);
  }
}

/// A Run for the pipeline (pipeline.hpp): this process is part `rank` of `size` in `comm`.
/// Every process must make the same calls with the same arguments and seed (each builds the
/// same starts and random streams); the pipeline's results are then the one-process results
/// bit for bit, available in every process.
class Collective {
 public:
  explicit Collective(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int part() const { return rank_; }
  int parts() const { return size_; }
  MPI_Comm comm() const { return comm_; }

  /// Replaces this process's part (split.count[rank] columns) by the whole result, in column
  /// order: matrices and per-column values by MPI_Allgatherv, the phase list and history steps
  /// from the first process that has columns, FLOPs summed over the processes.
  template <class T>
  void join(SolveResult<T>& r, const ColumnPartition& split) const {
    if (int(split.count.size()) != size_)
      detail::fail("mpi join: partition for ", split.count.size(), " parts, ", size_, " processes");
    const Eigen::Index mine = split.count[std::size_t(rank_)];
    if (r.x.cols() != mine)
      detail::fail("mpi join: rank ", rank_, " holds ", r.x.cols(), " columns, its part has ", mine);
    int root = 0;
    while (root < size_ && split.count[std::size_t(root)] == 0) ++root;
    if (root == size_) return;  // nothing anywhere
    share_layout(r, root, mine);
    check_shapes(r, mine, root);
    r.x = gather(r.x, split);
    if (rows_z_ > 0) r.z = gather(r.z, split);
    r.history = gather(r.history, split);
    Mat<T> err = r.magnitude_error.transpose();
    if (err.rows() == 0) err.resize(1, 0);
    r.magnitude_error = gather(err, split).transpose();
    r.chosen_restart = gather_ints(r.chosen_restart, split);
    sum(r.flops);
    for (auto& ph : r.phases) sum(ph.flops);
  }

 private:
  /// Every process learns the shapes (rows of x, z, history) and the phase list of `root`; a
  /// process without columns takes root's shapes with none.
  template <class T>
  void share_layout(SolveResult<T>& r, int root, Eigen::Index columns) const {
    long long dims[3] = {r.x.rows(), r.z.rows(), r.history.rows()};
    MPI_Bcast(dims, 3, MPI_LONG_LONG, root, comm_);
    rows_x_ = dims[0];
    rows_z_ = dims[1];
    rows_h_ = dims[2];
    if (columns == 0) {
      r.x.resize(rows_x_, 0);
      r.z.resize(rows_z_, 0);
      r.history.resize(rows_h_, 0);
      r.magnitude_error.resize(0);
    }
    // phases and history steps, as text: name \x1f kind \x1f layer \x1f steps \x1f first \x1e ...
    std::string text;
    if (rank_ == root) {
      for (const auto& p : r.phases)
        text += p.name + '\x1f' + p.kind + '\x1f' + std::to_string(p.layer) + '\x1f' + std::to_string(p.steps) +
                '\x1f' + std::to_string(p.first_step) + '\x1e';
      text += '\x1d';
      for (const int s : r.history_steps) text += std::to_string(s) + '\x1e';
    }
    long long len = (long long)text.size();
    MPI_Bcast(&len, 1, MPI_LONG_LONG, root, comm_);
    text.resize(std::size_t(len));
    MPI_Bcast(text.data(), int(len), MPI_CHAR, root, comm_);
    if (rank_ == root) return;
    const std::vector<Flops> mine = [&] {
      std::vector<Flops> f;
      for (const auto& p : r.phases) f.push_back(p.flops);
      return f;
    }();
    r.phases.clear();
    r.history_steps.clear();
    const std::size_t split_at = text.find('\x1d');
    std::size_t at = 0;
    while (at < split_at) {
      const std::size_t end = text.find('\x1e', at);
      std::vector<std::string> f;
      std::size_t a = at;
      for (std::size_t b; (b = text.find('\x1f', a)) < end; a = b + 1) f.push_back(text.substr(a, b - a));
      f.push_back(text.substr(a, end - a));
      PhaseRecord p{f[0], f[1].empty() ? 'I' : f[1][0], std::stoi(f[2]), std::stoi(f[3]), std::stoi(f[4])};
      if (r.phases.size() < mine.size()) p.flops = mine[r.phases.size()];
      r.phases.push_back(std::move(p));
      at = end + 1;
    }
    for (at = split_at + 1; at < text.size();) {
      const std::size_t end = text.find('\x1e', at);
      r.history_steps.push_back(std::stoi(text.substr(at, end - at)));
      at = end + 1;
    }
  }

  /// Every process's part has root's shapes (rows of x, z and history, a column each, an error
  /// each), or every process throws, naming the first process whose part does not: MPI would
  /// otherwise take a short part and leave the rest of the joined matrix uninitialised.
  template <class T>
  void check_shapes(const SolveResult<T>& r, Eigen::Index mine, int root) const {
    std::ostringstream why;
    const auto shape = [&](const char* what, const auto& m, Eigen::Index rows) {  // no rows: no columns to send
      if (m.rows() != rows || (rows > 0 && m.cols() != mine))
        why << (why.tellp() ? ", " : "") << what << " is " << m.rows() << "x" << m.cols() << ", expected " << rows
            << "x" << mine;
    };
    shape("x", r.x, rows_x_);
    shape("z", r.z, rows_z_);
    shape("history", r.history, rows_h_);
    if (r.magnitude_error.size() != mine)
      why << (why.tellp() ? ", " : "") << "magnitude_error has " << r.magnitude_error.size() << " entries, expected "
          << mine;
    const int me = why.tellp() ? rank_ : size_;
    int first = size_;
    MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, comm_);
    if (first == size_) return;
    if (first == rank_)
      detail::fail("mpi join: rank ", rank_, "'s result does not have the shapes of rank ", root, "'s: ", why.str());
    detail::fail("mpi join: rank ", first, "'s result does not have the shapes of rank ", root,
                 "'s (that rank's message names them)");
  }

  template <class T>
  Mat<T> gather(const Mat<T>& local, const ColumnPartition& split) const {
    const Eigen::Index rows = local.rows();
    std::vector<int> counts, displs;
    Eigen::Index total = 0;
    for (int q = 0; q < size_; ++q) {
      const long long c = (long long)rows * split.count[std::size_t(q)],
                      d = (long long)rows * split.first[std::size_t(q)];
      if (c > INT_MAX || d > INT_MAX)
        detail::fail("mpi join: part ", q, " (", c, " values from value ", d,
                     ") is beyond MPI's int counts and offsets");
      counts.push_back(int(c));
      displs.push_back(int(d));
      total += split.count[std::size_t(q)];
    }
    Mat<T> all(rows, total);
    MPI_Allgatherv(local.data(), int(local.size()), datatype<T>(), all.data(), counts.data(), displs.data(),
                   datatype<T>(), comm_);
    return all;
  }
  std::vector<int> gather_ints(const std::vector<int>& local, const ColumnPartition& split) const {
    std::vector<int> counts, displs;
    std::size_t total = 0;
    for (int q = 0; q < size_; ++q) {
      if (split.count[std::size_t(q)] > INT_MAX || split.first[std::size_t(q)] > INT_MAX)
        detail::fail("mpi join: part ", q, " (", split.count[std::size_t(q)], " columns from column ",
                     split.first[std::size_t(q)], ") is beyond MPI's int counts and offsets");
      counts.push_back(int(split.count[std::size_t(q)]));
      displs.push_back(int(split.first[std::size_t(q)]));
      total += std::size_t(split.count[std::size_t(q)]);
    }
    // per column (restart choices, e.g. of resolve) or absent everywhere (the solvers leave it empty)
    int flags[2] = {local.size() == std::size_t(counts[std::size_t(rank_)]) ? 1 : 0, local.empty() ? 1 : 0}, all[2];
    MPI_Allreduce(flags, all, 2, MPI_INT, MPI_MIN, comm_);
    if (all[1]) return {};
    if (!all[0])
      detail::fail("mpi join: rank ", rank_, " has ", local.size(), " restart choices for ", counts[std::size_t(rank_)],
                   " columns");
    std::vector<int> out(total);
    MPI_Allgatherv(local.data(), int(local.size()), MPI_INT, out.data(), counts.data(), displs.data(), MPI_INT, comm_);
    return out;
  }
  void sum(Flops& f) const {
    double v[2] = {f.products, f.fft}, s[2] = {0, 0};
    MPI_Allreduce(v, s, 2, MPI_DOUBLE, MPI_SUM, comm_);
    f.products = s[0];
    f.fft = s[1];
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  mutable Eigen::Index rows_x_ = 0, rows_z_ = 0, rows_h_ = 0;
};

/// The collective as a pipeline Run chosen at run time (MethodOptions::run).
template <class T>
AnyRun<T> any_run(const Collective& c) {
  return {c.part(), c.parts(), [c](SolveResult<T>& r, const ColumnPartition& s) { c.join(r, s); }};
}

}  // namespace prilo::mpi

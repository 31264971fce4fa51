// The pipeline spread over MPI processes gives the one-process result bit for bit. Run with
// `mpirun -np N prilo_mpi_test`: every process also computes the one-process result (same
// seed, same fixed blocks) and compares; exit status 1 on any difference.
#include <cstdio>

#include <prilo/mpi.hpp>

#include "../bodies/problem.hpp"

namespace {

using prilo::Mat;
using T = float;

int failures = 0;
void expect(bool ok, const char* what, int rank) {
  if (!ok) {
    std::fprintf(stderr, "rank %d: %s differs from the one-process result\n", rank, what);
    ++failures;
  }
}

template <class R>
void compare(const R& one, const R& many, const char* what, int rank) {
  expect(one.best.x == many.best.x, what, rank);
  expect(one.best.z == many.best.z, what, rank);
  expect(one.best.magnitude_error == many.best.magnitude_error, what, rank);
  expect(one.best.chosen_restart == many.best.chosen_restart, what, rank);
  expect(one.best.history == many.best.history, what, rank);
  expect(one.best.phases.size() == many.best.phases.size(), what, rank);
  expect(std::abs(one.best.flops.total() - many.best.flops.total()) <= 1e-9 * one.best.flops.total(), what, rank);
}

}  // namespace

int main(int argc, char** argv) {
  prilo::mpi::Session session(argc, argv);
  const prilo::mpi::Collective world;
  int rank = world.part();
  prilo::mpi::abort_on_error(world.comm(), [&] {
    const bodies::Problem<T> p(24);
    const prilo::RestartOptions ro{.restarts = 2, .blocks = {.blocks = 6, .min_columns = 1}};
    prilo::DprOptions<T> d;
    d.phase.steps = 40;
    d.history_stride = 10;
    prilo::PriloOptions<T> o;
    o.initial.steps = 20;
    o.reading = prilo::PriloReading::chained;
    o.stages = {{.layer = 1, .repetitions = 2, .forward = {.steps = 20, .radius = T(10), .learning_rate = T(0.02)}}};
    {
      prilo::Rng a(7), b(7);
      const auto one = prilo::reconstruct_dpr(p.gen, p.op, p.y, prilo::LatentStart::random, {}, d, a, ro);
      const auto many = prilo::reconstruct_dpr(p.gen, p.op, p.y, prilo::LatentStart::random, {}, d, b, ro, world);
      compare(one, many, "DPR", rank);
    }
    {
      prilo::Rng a(8), b(8);
      const prilo::MiiOptions mii{.candidates = 200, .chunk = 64};
      const auto one = prilo::reconstruct_prilo(p.gen, p.op, p.y, prilo::LatentStart::mii, mii, o, a, ro);
      const auto many = prilo::reconstruct_prilo(p.gen, p.op, p.y, prilo::LatentStart::mii, mii, o, b, ro, world);
      compare(one, many, "PRILO-MII (chained)", rank);
    }
    {
      prilo::Rng a(9), b(9);
      prilo::FienupOptions<T> f;
      f.iterations = 30;
      f.final_er = 5;
      const auto one = prilo::reconstruct_fienup(p.op, p.y, true, f, a, ro);
      const auto many = prilo::reconstruct_fienup(p.op, p.y, true, f, b, ro, world);
      compare(one, many, "HIO", rank);
    }
    // a fixed number of blocks is required: the error names it
    bool threw = false;
    try {
      prilo::Rng c(1);
      (void)prilo::reconstruct_dpr(p.gen, p.op, p.y, prilo::LatentStart::random, {}, d, c, {.restarts = 1}, world);
    } catch (const prilo::invalid_input& e) {
      threw = std::string(e.what()).find("fixed number of blocks") != std::string::npos;
    }
    expect(threw || world.parts() == 1, "the unfixed-blocks error", rank);

    // a part of other shapes than the first part's (here: no history on the last process) is
    // refused on every process, naming that process; MPI took the short part and left the
    // joined history uninitialised
    if (world.parts() > 1) {
      prilo::ColumnPartition split;
      for (int q = 0; q < world.parts(); ++q) {
        split.first.push_back(2 * q);
        split.count.push_back(2);
      }
      prilo::SolveResult<T> r;
      r.x = Mat<T>::Constant(4, 2, T(rank));
      r.magnitude_error = prilo::Vec<T>::Constant(2, T(rank));
      r.history = Mat<T>::Zero(3, rank == world.parts() - 1 ? 0 : 2);
      std::string msg;
      try {
        world.join(r, split);
      } catch (const prilo::invalid_input& e) {
        msg = e.what();
      }
      const std::string last = "rank " + std::to_string(world.parts() - 1) + "'s result does not have the shapes";
      expect(msg.find(last) != std::string::npos, "the mismatched-part error", rank);
      if (rank == world.parts() - 1)
        expect(msg.find("history is 3x0, expected 3x2") != std::string::npos, "the mismatched part's shapes", rank);
    }
  });
  int all = 0;
  MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, world.comm());
  if (rank == 0)
    std::printf("prilo MPI test, %d processes: %s\n", world.parts(),
                all == 0 ? "identical to one process" : "DIFFERENT");
  return all == 0 ? 0 : 1;
}

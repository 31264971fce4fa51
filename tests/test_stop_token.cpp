// A call's own stop request (its options' std::stop_token) against two solves running at once
// on two threads: stopping one leaves the other's result bit for bit what it is alone. In the
// threaded group, so that scripts/tsan.sh runs it (the token is read by one thread while
// another sets it).
#include <doctest/doctest.h>

#include <prilo/interrupt.hpp>
#include <prilo/solvers/latent.hpp>

#include <atomic>
#include <stop_token>
#include <string>
#include <thread>

#include "bodies/problem.hpp"
#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_stop_token {

namespace {

using prilo::Mat;
using T = float;

TEST_CASE("stop tokens: a stopped token stops only the solve that holds it; one running beside it is unchanged") {
  const bodies::Problem<T> p(4);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::PriloOptions<T> o;
  o.initial.steps = 40;
  o.stages = {prilo::PriloStage<T>{.layer = 1, .repetitions = 2}};
  for (auto* ph : {&o.stages[0].forward, &o.stages[0].back, &o.stages[0].refine}) ph->steps = 30;
  const Mat<T> z0 = prilo::Rng(5).normal_matrix<T>(6, 4);
  prilo::Rng lone_rng(9);
  const prilo::SolveResult<T> lone = prilo::prilo_solve(p.gen, loss, z0, o, lone_rng);

  std::stop_source source;
  prilo::PriloOptions<T> stopped = o;
  stopped.stop = source.get_token();
  stopped.initial.steps = 100000;  // runs until the request
  stopped.history_stride = 1;
  std::atomic<bool> started{false};
  stopped.progress = [&](const prilo::Progress&) { started = true; };
  std::atomic<bool> done{false};
  std::string stopped_what;
  std::thread other([&] {
    prilo::Rng rng(9);
    // error_of<std::exception>: no exception leaves the thread
    stopped_what = prilo::test_support::error_of([&] { prilo::prilo_solve(p.gen, loss, z0, stopped, rng); });
    done = true;
  });
  // however the case ends (a failed REQUIRE throws), the other solve is stopped and joined
  const prilo::test_support::OnExit stop_and_join{[&] {
    source.request_stop();
    if (other.joinable()) other.join();
  }};
  // wait for its first progress report, or for its end (a solve that fails at once must not
  // leave this loop spinning): it has to be running while the second solve runs
  while (!started && !done) std::this_thread::yield();
  if (!started) other.join();  // it ended: stopped_what is complete
  REQUIRE_MESSAGE(started, "the stopped solve ended before its first progress report: ", stopped_what);
  prilo::Rng rng(9);
  const prilo::SolveResult<T> beside = prilo::prilo_solve(p.gen, loss, z0, o, rng);  // while the other runs
  source.request_stop();
  other.join();
  CHECK(stopped_what == "prilo: interrupted");
  CHECK(!prilo::stop_requested());
  CHECK(beside.x == lone.x);
  CHECK(beside.magnitude_error == lone.magnitude_error);
}

}  // namespace

}  // namespace prilo_test_stop_token

// Stopping a run: a stop request makes the solvers throw prilo::interrupted at their next step,
// and prilo::reconstruct keeps the methods that finished when asked to.
#include <doctest/doctest.h>

#include <prilo/interrupt.hpp>
#include <prilo/methods.hpp>

#include "bodies/problem.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_interrupt {

namespace {

using prilo::Mat;
using T = float;

TEST_CASE("a stop request ends dpr at its next step, and is cleared") {
  const bodies::Problem<T> p(4);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::DprOptions<T> d;
  d.phase.steps = 1000;
  d.history_stride = 1;
  int seen = 0;
  d.progress = [&](const prilo::Progress& pr) {
    seen = pr.step;
    if (pr.step == 20) prilo::request_stop();
  };
  prilo::Rng rng(1);
  CHECK_THROWS_AS(prilo::dpr(p.gen, loss, rng.normal_matrix<T>(6, 4), d, rng), prilo::interrupted);
  CHECK(seen == 20);  // no step after the request
  CHECK(prilo::stop_requested());
  prilo::clear_stop();
  d.progress = {};
  d.phase.steps = 5;
  CHECK_NOTHROW(prilo::dpr(p.gen, loss, rng.normal_matrix<T>(6, 4), d, rng));
}

TEST_CASE("reconstruct keeps the finished methods and names the others") {
  const prilo::nn::Vae<T> vae(36, 24, 6, 3);  // a small VAE over 6×6 images
  const prilo::Fourier2d<T> op(6, 6);
  prilo::Rng rng(2);
  const Mat<T> x = vae.decoder().forward_from(0, rng.normal_matrix<T>(6, 4));
  const Mat<T> y = prilo::measure(op, x);
  prilo::ReconstructionConfig<T> cfg;
  cfg.hio.iterations = 20;
  cfg.dpr.phase.steps = 500;
  cfg.mii.candidates = 50;
  prilo::MethodOptions<T> opt{.restart = {.restarts = 1}};
  opt.progress = [](const std::string& method, const prilo::Progress& p) {
    if (method == "dpr" && p.step >= 10) prilo::request_stop();
  };
  const auto methods = prilo::parse_methods("hio,dpr,dpr-mii");
  std::vector<std::string> unfinished;
  const auto r = prilo::reconstruct(methods, vae, op, y, cfg, opt, &unfinished);
  prilo::clear_stop();
  REQUIRE(r.size() == 1u);
  CHECK(r[0].method == "hio");
  CHECK(r[0].best.x.cols() == 4);
  CHECK(unfinished == std::vector<std::string>{"dpr", "dpr-mii"});
  // without the list, the interruption reaches the caller
  opt.progress = [](const std::string&, const prilo::Progress&) { prilo::request_stop(); };
  CHECK_THROWS_AS(prilo::reconstruct(methods, vae, op, y, cfg, opt), prilo::interrupted);
  prilo::clear_stop();
}

}  // namespace

}  // namespace prilo_test_interrupt

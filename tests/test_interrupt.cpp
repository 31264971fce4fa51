// Stopping a run: a stop request makes the solvers throw prilo::interrupted at their next step,
// and prilo::reconstruct keeps the methods that finished when asked to. The request is the
// process-wide one (request_stop) or a call's own std::stop_token (its options' `stop`).
#include <doctest/doctest.h>

#include <prilo/interrupt.hpp>
#include <prilo/methods.hpp>
#include <prilo/nn/vae_training.hpp>
#include <prilo/operators/gaussian.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <stop_token>
#include <string>
#include <utility>

#include "bodies/problem.hpp"
#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_interrupt {

namespace {

using prilo::Mat;
using T = float;

/// what() of the prilo::interrupted that f throws, "(no error)" when it returns (another
/// exception propagates to the test).
template <class F>
std::string interruption_of(F&& f) {
  return prilo::test_support::error_of<prilo::interrupted>(f);
}

TEST_CASE(
    "the signal handler: a signal requests a stop, a second one of either kind ends the process, clear_stop re-arms") {
  // in a child process: the handlers and the process-wide flag are the test runner's otherwise
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    prilo::install_interrupt_handler();
    std::raise(SIGINT);
    if (!prilo::stop_requested()) ::_exit(2);
    prilo::clear_stop();  // the next Ctrl-C stops the next call again (it ended the process)
    std::raise(SIGINT);
    if (!prilo::stop_requested()) ::_exit(3);
    std::raise(SIGTERM);  // a second signal, of the other kind: the process ends
    ::_exit(4);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK_MESSAGE(WIFSIGNALED(status), "the child exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM));
}

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
  cfg.hio.final_er = 5;
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

TEST_CASE("a call's own stop token ends that call at its next step and leaves the process-wide flag alone") {
  const bodies::Problem<T> p(4);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  std::stop_source source;
  prilo::DprOptions<T> d;
  d.phase.steps = 1000;
  d.history_stride = 1;
  d.stop = source.get_token();
  int seen = 0;
  d.progress = [&](const prilo::Progress& pr) {
    seen = pr.step;
    if (pr.step == 20) source.request_stop();
  };
  prilo::Rng rng(1);
  CHECK(interruption_of([&] { prilo::dpr(p.gen, loss, rng.normal_matrix<T>(6, 4), d, rng); }) == "dpr: interrupted");
  CHECK(seen == 20);  // no step after the request
  CHECK(!prilo::stop_requested());
  // the token stays stopped: the next call with it stops before its first step
  seen = 0;
  CHECK(interruption_of([&] { prilo::dpr(p.gen, loss, rng.normal_matrix<T>(6, 4), d, rng); }) == "dpr: interrupted");
  CHECK(seen == 0);
  // a call without it runs, with nothing cleared in between
  d.stop = {};
  d.progress = {};
  d.phase.steps = 5;
  CHECK_NOTHROW(prilo::dpr(p.gen, loss, rng.normal_matrix<T>(6, 4), d, rng));
  // the process-wide request still stops a call that holds a token
  d.stop = std::stop_source().get_token();
  prilo::request_stop();
  CHECK(interruption_of([&] { prilo::dpr(p.gen, loss, rng.normal_matrix<T>(6, 4), d, rng); }) == "dpr: interrupted");
  prilo::clear_stop();
}

TEST_CASE("every solver reads its options' token: ER, HIO, -resolve, the Gaussian baselines and run_method") {
  std::stop_source source;
  source.request_stop();
  const std::stop_token stopped = source.get_token();
  const bodies::Problem<T> p(3);
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(p.op, p.y);
  prilo::FienupOptions<T> f;
  f.stop = stopped;
  const Mat<T> x0 = Mat<T>::Constant(36, 3, T(0.5));
  CHECK(interruption_of([&] { prilo::fienup(loss, x0, true, f); }) == "hio: interrupted");
  CHECK(interruption_of([&] { prilo::fienup(loss, x0, false, f); }) == "er: interrupted");

  const prilo::GaussianReal<T> g(48, 36, 11);
  const Mat<T> yg = prilo::measure(g, p.x_true);
  prilo::Rng rng(4);
  prilo::SpectralOptions so;
  so.stop = stopped;
  CHECK(interruption_of([&] { prilo::spectral_init(g, yg, so, rng); }) == "spectral: interrupted");
  prilo::OrthogonalityOptions oo;
  oo.stop = stopped;
  CHECK(interruption_of([&] { prilo::orthogonality_init(g, yg, oo, rng); }) == "orthogonality: interrupted");
  prilo::WirtingerFlowOptions<T> wo;
  wo.stop = stopped;
  CHECK(interruption_of([&] { prilo::wirtinger_flow(g, yg, p.x_true, wo); }) == "wf: interrupted");
  prilo::AmplitudeFlowOptions<T> ao;
  ao.stop = stopped;
  CHECK(interruption_of([&] { prilo::truncated_amplitude_flow(g, yg, p.x_true, ao); }) == "taf: interrupted");

  // run_method passes MethodOptions::stop to each family's solver (and -resolve's scoring)
  const prilo::nn::Vae<T> vae(36, 24, 6, 3);
  prilo::ReconstructionConfig<T> cfg;
  cfg.prilo.stages = {prilo::PriloStage<T>{.layer = 1}};  // PRILO needs a stage (a config's "prilo" section)
  prilo::MethodOptions<T> opt{.restart = {.restarts = 1}};
  opt.stop = stopped;
  const std::pair<const char*, const char*> fourier[] = {
      {"er", "er"}, {"hio", "hio"}, {"dpr", "dpr"}, {"dpr-mii", "dpr"}, {"prilo-mii", "prilo"}};
  for (const auto& [m, solver] : fourier)
    CHECK(interruption_of([&] { prilo::run_method(prilo::parse_method(m), vae, p.op, p.y, cfg, opt); }) ==
          std::string(solver) + ": interrupted");
  const prilo::ResolveInputs<T> given{.base = &p.x_true, .hio = &p.x_true};
  CHECK(interruption_of([&] {
          prilo::run_method(prilo::parse_method("prilo-mii-resolve"), vae, p.op, p.y, cfg, opt, given);
        }) == "resolve: interrupted");
  // (each stops in its start, the first solver it runs)
  const std::pair<const char*, const char*> gaussian[] = {
      {"spectral", "spectral"}, {"wf", "spectral"}, {"taf", "orthogonality"}};
  for (const auto& [m, solver] : gaussian)
    CHECK(interruption_of([&] { prilo::run_method(prilo::parse_method(m), vae, g, yg, cfg, opt); }) ==
          std::string(solver) + ": interrupted");
  CHECK(!prilo::stop_requested());
  // and reconstruct lists every method as unfinished, the process-wide flag untouched
  std::vector<std::string> unfinished;
  CHECK(prilo::reconstruct(prilo::parse_methods("hio,dpr"), vae, p.op, p.y, cfg, opt, &unfinished).empty());
  CHECK(unfinished == std::vector<std::string>{"hio", "dpr"});
  CHECK(!prilo::stop_requested());
}

TEST_CASE("a training call's own token stops it after the batch, and the next call needs nothing cleared") {
  prilo::Rng rng(8);
  auto images = [&](Eigen::Index cols) {
    Mat<double> x(12, cols);
    for (auto& v : x.reshaped()) v = rng.uniform();
    return x;
  };
  const Mat<double> train = images(40), test = images(10);
  prilo::nn::Vae<double> vae(12, 9, 4, 2);
  std::stop_source source;
  prilo::nn::VaeTrainingOptions o{.epochs = 2, .batch = 10};
  o.stop = source.get_token();
  int batches = 0;
  const auto cut = prilo::nn::train_vae(vae, train, test, o, {.batch = [&](const prilo::nn::VaeBatchReport& r) {
                                          ++batches;
                                          if (r.epoch == 2 && r.batch == 1) source.request_stop();
                                        }});
  CHECK(cut.interrupted);
  CHECK(cut.stopped_in == 2);
  CHECK(cut.epochs_done == 1);
  CHECK(batches == 5);  // the four of epoch 1 and the one before the request
  CHECK(!prilo::stop_requested());
  o.stop = {};
  const auto next = prilo::nn::train_vae(vae, train, test, o);
  CHECK(!next.interrupted);
  CHECK(next.epochs_done == 2);
}

}  // namespace

}  // namespace prilo_test_interrupt

// The FLOP account: phase by phase, the solvers count the products of the decoder's dense
// layers (2 per multiply-add, forward and input VJP) and the FFTs of the loss, as derived by
// hand here; and the machine's peak is measured to something sensible.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <prilo/flops.hpp>
#include <prilo/nn/vae.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/gaussian.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/pipeline.hpp>
#include <prilo/solvers/fienup.hpp>
#include <prilo/solvers/latent.hpp>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_flops {

namespace {

using prilo::Mat;
using T = float;

TEST_CASE("PRILO's FLOP account matches the hand count of the paper's decoder, phase by phase") {
  const prilo::nn::Vae<T> vae(784, 500, 100, 1);
  const auto& g = vae.decoder();
  const prilo::Fourier2d<T> op(28, 28);
  prilo::Rng rng(2);
  const Eigen::Index B = 3;
  const Mat<T> y = op.apply(g.forward_from(0, rng.normal_matrix<T>(100, B))).cwiseAbs();
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(op, y);
  prilo::PriloOptions<T> o;  // the paper's Table 7 shape, fewer steps
  o.initial.steps = 6;
  o.stages = {{.layer = 1, .repetitions = 1, .forward = {.steps = 5}, .back = {.steps = 4}, .refine = {.steps = 3}},
              {.layer = 2, .repetitions = 2, .forward = {.steps = 7}, .back = {.steps = 4}, .refine = {.steps = 3}}};
  const auto r = prilo::prilo_solve(g, loss, rng.normal_matrix<T>(100, B), o, rng);
  // dense products per column: 2·in·out per layer
  const double f01 = 2.0 * 100 * 500, f12 = 2.0 * 500 * 500, f23 = 2.0 * 500 * 784;
  const double fwd[4][4] = {{0, f01, f01 + f12, f01 + f12 + f23}, {0, 0, f12, f12 + f23}, {0, 0, 0, f23}, {}};
  const double fft = 2.5 * 784 * std::log2(784.0);  // one real transform
  REQUIRE(r.phases.size() == 1 + 3 + 6u);
  double phases = 0;
  for (const auto& ph : r.phases) {
    double products = 0, ffts = 0;
    if (ph.kind == 'B') {
      products = ph.steps * 2 * fwd[0][ph.layer];
    } else {  // forward + input VJP per step, loss value and gradient (r2c + c2r), closing evaluation
      products = (2.0 * ph.steps + 1) * fwd[ph.layer][3];
      ffts = (2.0 * ph.steps + 1) * fft;
    }
    CHECK(ph.flops.products == doctest::Approx(B * products).epsilon(1e-12));
    CHECK(ph.flops.fft == doctest::Approx(B * ffts).epsilon(1e-12));
    phases += ph.flops.total();
  }
  // between the phases: the first best image, keep-best after each repetition, the z_i each
  // repetition starts from, and the final image
  const double evals = B * ((1 + 3 + 1) * (fwd[0][3] + fft) + fwd[0][1] + 2 * fwd[0][2]);
  CHECK(r.flops.total() == doctest::Approx(phases + evals).epsilon(1e-12));
}

TEST_CASE("DPR, ER/HIO and MII are counted, a dense operator counts as products") {
  const prilo::nn::Vae<T> vae(784, 500, 100, 1);
  const auto& g = vae.decoder();
  prilo::Rng rng(3);
  const prilo::GaussianReal<T> gop(200, 784, 5);
  const Mat<T> y = gop.apply(g.forward_from(0, rng.normal_matrix<T>(100, 2))).cwiseAbs();
  prilo::DprOptions<T> d;
  d.phase.steps = 4;
  const prilo::MagnitudeLoss<prilo::GaussianReal<T>> gl(gop, y);
  const auto r = prilo::dpr(g, gl, rng.normal_matrix<T>(100, 2), d, rng);
  const double f = 2.0 * (100 * 500 + 500 * 500 + 500 * 784), a = 2.0 * 200 * 784;
  // per step: forward + VJP and A x, Aᵀ r; closing evaluation in the phase and at the end
  CHECK(r.flops.products == doctest::Approx(2 * (4 * (2 * f + 2 * a) + 2 * (f + a))).epsilon(1e-12));
  CHECK(r.flops.fft == 0);

  const prilo::Fourier2d<T> op(28, 28);
  const Mat<T> yf = op.apply(g.forward_from(0, rng.normal_matrix<T>(100, 2))).cwiseAbs();
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> fl(op, yf);
  prilo::FienupOptions<T> fo;
  fo.iterations = 10;
  fo.final_er = 2;
  const auto h = prilo::fienup(fl, prilo::uniform_start<T>(784, 2, rng), true, fo);
  CHECK(h.flops.products == 0);
  CHECK(h.flops.fft > 2 * 10 * 2 * 2.5 * 784 * std::log2(784.0) - 1);

  prilo::DprOptions<T> d1;
  d1.phase.steps = 1;
  const auto m = prilo::reconstruct_dpr(g, op, yf, prilo::LatentStart::mii, {.candidates = 50, .chunk = 20}, d1, rng,
                                        {.restarts = 1, .blocks = {.blocks = 1}});
  const auto plain = prilo::reconstruct_dpr(g, op, yf, prilo::LatentStart::random, {}, d1, rng,
                                            {.restarts = 1, .blocks = {.blocks = 1}});
  // MII adds the candidates' decoding and their scores
  CHECK(m.best.flops.products - plain.best.flops.products ==
        doctest::Approx(50 * f + 2.0 * 50 * 28 * 15 * 2).epsilon(1e-9));
}

TEST_CASE("the measured FMA peak is a plausible rate") {
  const double p1 = prilo::measure_peak_gflops(1, 0.05);
  CHECK(std::isfinite(p1));
  CHECK(p1 > 0.5);      // even a scalar build does more
  CHECK(p1 < 10000.0);  // one core cannot
  // the CPU share is the process's CPU time over threads × wall time: about 1 when both
  // threads ran throughout, less when other work took the cores (then cached_peak_gflops does
  // not keep the figure); above 1 only by the clock's granularity
  const prilo::PeakMeasurement m2 = prilo::measure_peak(2, 0.05);
  CHECK(std::isfinite(m2.gflops));
  CHECK(m2.gflops > 0.5);
  CHECK(m2.cpu_share > 0.0);
  CHECK(m2.cpu_share < 1.1);
  // a duration never reached ran the doubling for hours
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
    CHECK_THROWS_WITH_AS(prilo::measure_peak(1, bad), doctest::Contains("measure_peak: seconds must be finite"),
                         prilo::invalid_input);
}

TEST_CASE("the cached peak is this machine's and build's: a figure under another key, or none, is measured again") {
  namespace fs = std::filesystem;
  // a folder of this process's own (its pid, the time, a counter) in the system's temporary
  // folder, removed, and XDG_CACHE_HOME restored, however the case ends
  static std::atomic<int> runs{0};
  const fs::path dir =
      fs::temp_directory_path() /
      ("prilo-peak-cache-test-" + std::to_string(::getpid()) + "-" +
       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "-" + std::to_string(runs++));
  REQUIRE(!fs::exists(dir));
  const prilo::test_support::OnExit remove_dir{[dir] {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }};
  const prilo::test_support::EnvGuard cache_home("XDG_CACHE_HOME", dir.string());
  const fs::path file = prilo::peak_cache_file(1);
  REQUIRE(file.parent_path() == dir / "prilo");
  fs::create_directories(file.parent_path());
  const std::string key = prilo::peak_cache_key();
  CHECK(key.rfind(std::string(prilo::detail::kPeakIsa) + "; ", 0) == 0);  // the build's kernel first
  // the measurement is the test's own (cached_peak_gflops' second argument): what is kept, and
  // when, is then decided by the cache's rules alone, not by how loaded the machine is
  int measured = 0;
  double share = 1;
  const auto fake = [&](int threads) {
    CHECK(threads == 1);
    ++measured;
    return prilo::PeakMeasurement{.gflops = 777.25, .cpu_share = share};
  };
  const auto read_file = [&] {
    std::ifstream in(file);
    return std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  };
  // under this machine's and build's key the figure is used as it is, without measuring
  { std::ofstream(file) << 12345.5 << "\n" << key << "\n"; }
  prilo::PeakSource source{};
  CHECK(prilo::cached_peak_gflops(1, fake, &source) == 12345.5);
  CHECK(measured == 0);
  CHECK(source == prilo::PeakSource::cache);
  CHECK(prilo::cached_peak_gflops(1) == 12345.5);  // the default measurement too
  // under another key, or none (an earlier version's file), or with a figure that is not a
  // positive number, the peak is measured again and kept under this key
  for (const std::string& content :
       std::vector<std::string>{"12345.5\nscalar (another build); cpu unknown\n", "12345.5\n", "-3\n" + key + "\n",
                                "nan\n" + key + "\n", ""}) {
    CAPTURE(content);
    { std::ofstream(file) << content; }
    measured = 0;
    share = 1;
    CHECK(prilo::cached_peak_gflops(1, fake, &source) == 777.25);
    CHECK(measured == 1);
    CHECK(source == prilo::PeakSource::measured_and_cached);
    CHECK(read_file() == "777.25\n" + key + "\n");
    // and used from then on
    CHECK(prilo::cached_peak_gflops(1, fake) == 777.25);
    CHECK(measured == 1);
    // a measurement during which other work took the core is used for the run, not kept: the
    // file stays exactly as it was
    { std::ofstream(file) << content; }
    share = prilo::kPeakCacheMinCpuShare * 0.99;
    CHECK(prilo::cached_peak_gflops(1, fake, &source) == 777.25);
    CHECK(measured == 2);
    CHECK(source == prilo::PeakSource::measured);  // what prilo-reconstruct then says
    CHECK(read_file() == content);
  }
  // no cache file at all: measured and written (its folder made)
  fs::remove_all(file.parent_path());
  share = 1;
  CHECK(prilo::cached_peak_gflops(1, fake) == 777.25);
  CHECK(read_file() == "777.25\n" + key + "\n");
}

}  // namespace

}  // namespace prilo_test_flops

// The representation-limit analysis (prilo/analysis/representation.hpp): an image the
// generator produces is fitted to near zero error; the z_i fits are non-increasing in the
// radius, never above the z0 fit, equal to it at radius 0, and stay in their balls.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <prilo/analysis/representation.hpp>
#include <prilo/nn/linear.hpp>
#include <prilo/nn/sequential.hpp>
#include <prilo/nn/vae.hpp>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_representation {

namespace {

using prilo::Mat;
using namespace prilo::analysis;
using Gen =
    prilo::nn::Sequential<double, prilo::nn::Dense<double, prilo::nn::Relu>, prilo::nn::Dense<double, prilo::nn::Relu>,
                          prilo::nn::Dense<double, prilo::nn::Sigmoid>>;

/// A tiny random decoder 4 → 16 → 24 → 36 (6×6 images).
Gen tiny_generator(std::uint64_t seed = 5) {
  prilo::Rng rng(seed);
  return Gen(4, prilo::nn::Dense<double, prilo::nn::Relu>(4, 16, rng),
             prilo::nn::Dense<double, prilo::nn::Relu>(16, 24, rng),
             prilo::nn::Dense<double, prilo::nn::Sigmoid>(24, 36, rng));
}

SplitBall<double> ball(int layer, double radius, int steps = 400) {
  return {layer, {.steps = steps, .radius = radius, .learning_rate = 0.02}};
}

constexpr double inf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("representation_limit fits images the generator produces to near zero error") {
  const Gen gen = tiny_generator();
  prilo::Rng rng(7);
  const Mat<double> z_true = rng.normal_matrix<double>(4, 6) * 0.7;
  const Mat<double> X = gen.forward_from(0, z_true);
  RepresentationOptions<double> opt{.latent = {.steps = 1500, .radius = 100, .learning_rate = 0.05},
                                    .random_starts = 4,
                                    .polish_steps = 1000,
                                    .balls = {ball(1, inf), ball(2, inf)},
                                    .seed = 3};
  const auto res = representation_limit(gen, X, opt);
  REQUIRE(res.error0.size() == 6);
  REQUIRE(res.balls.size() == 2);
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    INFO("image " << j << ": e0 " << res.error0(j) << ", psnr " << res.psnr0(j));
    CHECK(res.error0(j) < 1e-3);  // ‖x‖ is about 3: a relative error below 3e-4
    CHECK(res.psnr0(j) > 60);
    CHECK(res.balls[0].error(j) <= res.error0(j));
    CHECK(res.balls[1].error(j) <= res.error0(j));
    CHECK(res.start0[std::size_t(j)] >= 0);
    CHECK(res.start0[std::size_t(j)] < 4);
  }
  CHECK((res.x0 - gen.forward_from(0, res.z0)).norm() == doctest::Approx(0).epsilon(1e-12));
  // the z0 fit stays in DPR's l1 ball of radius 100 around 0
  CHECK(res.z0.cwiseAbs().colwise().sum().maxCoeff() <= 100 + 1e-9);
}

TEST_CASE("the z_i fits are non-increasing in the radius, at most the z0 fit, and equal to it at radius 0") {
  const Gen gen = tiny_generator(11);
  prilo::Rng rng(8);
  // images the generator cannot produce exactly: the fits keep a positive error
  const Mat<double> X = (rng.normal_matrix<double>(36, 5).array() * 0.25 + 0.5).cwiseMax(0.0).cwiseMin(1.0).matrix();
  // given in no particular order: a ball is fitted after the balls it contains
  RepresentationOptions<double> opt{
      .latent = {.steps = 600, .radius = 100, .learning_rate = 0.05},
      .random_starts = 2,
      .balls = {ball(1, inf), ball(1, 0.5), ball(2, 2), ball(1, 0), ball(1, 4), ball(2, 0), ball(2, inf)},
      .seed = 4};
  const auto res = representation_limit(gen, X, opt);
  REQUIRE(res.balls.size() == 7);
  auto at = [&](int layer, double r) -> const BallFit<double>& {
    for (const auto& f : res.balls)
      if (f.ball.layer == layer && f.ball.phase.radius == r) return f;
    FAIL("no ball");
    return res.balls.front();
  };
  for (int layer : {1, 2}) {
    const Mat<double> centre = gen.forward(0, layer, res.z0);
    const std::vector<double> radii = layer == 1 ? std::vector<double>{0, 0.5, 4, inf} : std::vector<double>{0, 2, inf};
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      INFO("layer " << layer << ", image " << j);
      CHECK(at(layer, 0).error(j) == doctest::Approx(res.error0(j)).epsilon(1e-12));
      CHECK(at(layer, 0).psnr(j) == doctest::Approx(res.psnr0(j)).epsilon(1e-12));
      for (std::size_t r = 1; r < radii.size(); ++r)
        CHECK(at(layer, radii[r]).error(j) <= at(layer, radii[r - 1]).error(j));
      CHECK(at(layer, inf).error(j) <= res.error0(j));
      // every fit stays in its ball around G_0^i(z0*), and its image is what its z_i gives
      for (const double r : radii) {
        const BallFit<double>& f = at(layer, r);
        if (std::isfinite(r)) CHECK((f.z.col(j) - centre.col(j)).lpNorm<1>() <= r * (1 + 1e-9) + 1e-12);
        CHECK((f.x.col(j) - gen.forward_from(layer, Mat<double>(f.z.col(j)))).norm() < 1e-12);
      }
    }
    // and the balls help: optimising z_i without a ball fits better than z0 alone
    CHECK(at(layer, inf).error.mean() < 0.95 * res.error0.mean());
  }
  // the PSNR is the metrics' PSNR of the kept image
  CHECK(res.balls[0].psnr(0) == doctest::Approx(prilo::metrics::psnr(res.balls[0].x.col(0), X.col(0))));
}

TEST_CASE("representation_limit_vae starts from the encoder's mean; column blocks give the same fits") {
  const prilo::nn::Vae<double> vae(36, 16, 4, 9);
  prilo::Rng rng(10);
  const Mat<double> X = vae.decoder().forward_from(0, rng.normal_matrix<double>(4, 8) * 0.5);
  RepresentationOptions<double> opt{.latent = {.steps = 300, .radius = 100, .learning_rate = 0.05},
                                    .random_starts = 0,  // the encoder's mean only: no randomness
                                    .balls = {ball(1, 1, 100), ball(2, inf, 100)}};
  const auto one = representation_limit_vae(vae, X, opt);
  CHECK(one.start0 == std::vector<int>(8, 0));
  // the encoder's mean is where the fit starts: the fit is at least as close as it
  const Mat<double> mu = vae.encode(X).first;
  const auto mu_err = prilo::analysis::detail::sq_errors(Mat<double>(vae.decoder().forward_from(0, mu)), X);
  for (Eigen::Index j = 0; j < 8; ++j) CHECK(one.error0(j) <= std::sqrt(mu_err(j)) + 1e-12);
  opt.blocks = {.blocks = 2, .min_columns = 1};
  const auto two = representation_limit_vae(vae, X, opt);
  CHECK((one.error0 - two.error0).cwiseAbs().maxCoeff() < 1e-9);
  for (std::size_t b = 0; b < 2; ++b) CHECK((one.balls[b].error - two.balls[b].error).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("representation_limit rejects bad input with messages that name it") {
  const Gen gen = tiny_generator();
  const Mat<double> X = Mat<double>::Constant(36, 2, 0.5);
  RepresentationOptions<double> opt{.latent = {.steps = 2}, .random_starts = 1, .balls = {}};
  auto message = [&](const Mat<double>& x, const RepresentationOptions<double>& o) {
    try {
      representation_limit(gen, x, o);
    } catch (const prilo::invalid_input& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(Mat<double>::Constant(35, 2, 0.5), opt).find("expected 36 pixels") != std::string::npos);
  CHECK(message(Mat<double>(36, 0), opt).find("no images") != std::string::npos);
  auto o = opt;
  o.balls = {ball(3, 1)};
  CHECK(message(X, o).find("split point 3") != std::string::npos);
  o.balls = {{1, {.steps = 1, .radius = 1, .radii = {1.0, 2.0}}}};
  CHECK(message(X, o).find("1 tensor(s) but 2 radii") != std::string::npos);
  o = opt;
  o.random_starts = 0;
  CHECK(message(X, o).find("no starts") != std::string::npos);
  for (const double factor : {0.0, -1.0, HUGE_VAL, std::nan("")}) {
    o = opt;
    o.polish_steps = 1;
    o.polish_factor = factor;
    CHECK(message(X, o).find("polish_factor: must be finite and > 0") != std::string::npos);
  }
  Mat<double> bad = X;
  bad(0, 0) = std::nan("");
  CHECK(message(bad, opt).find("NaN") != std::string::npos);
  // every fit's options before any fit runs (a ball's radius or learning rate was refused only
  // when that ball was reached, after the z0 fit), the last polish round's rate included
  o = opt;
  o.latent.steps = 100000;  // would take long if the check came after the fit
  o.balls = {ball(1, -1.0)};
  CHECK(message(X, o).find("representation_limit: the ball (split point 1) phase's radius must be >= 0") !=
        std::string::npos);
  o.balls = {{1, {.steps = 5, .radius = 1, .learning_rate = -0.01}}};
  CHECK(message(X, o).find("the ball (split point 1) phase's learning rate must be finite and >= 0, got -0.01") !=
        std::string::npos);
  o.balls = {};
  o.latent.learning_rate = HUGE_VAL;
  CHECK(message(X, o).find("the z0 phase's learning rate must be finite") != std::string::npos);
  o.latent.learning_rate = 0.01;
  o.polish_steps = 1;
  o.polish_rounds = 2;
  o.polish_factor = 1e300;
  CHECK(message(X, o).find("z0 fit: the last polish round's learning rate (0.01 x 1e+300^2) is not finite") !=
        std::string::npos);
}

TEST_CASE("representation_limit takes its images and starts as expressions of the generator's scalar") {
  const Gen gen = tiny_generator();
  prilo::Rng rng(2);
  const Mat<double> z = rng.normal_matrix<double>(4, 3);
  const Mat<double> X = gen.forward_from(0, z);
  RepresentationOptions<double> opt{.latent = {.steps = 3}, .random_starts = 1, .balls = {}};
  const auto whole = representation_limit(gen, X, opt);
  const auto left = representation_limit(gen, X.leftCols(3), opt, z.leftCols(0));
  CHECK(left.x0 == whole.x0);
}

TEST_CASE("config_balls: the forward balls of a config's stages per split point, R times a chained stage's, then inf") {
  using P = prilo::PhaseOptions<double>;
  prilo::PriloOptions<double> paper, chain;
  chain.reading = prilo::PriloReading::chained;
  paper.stages = {{.layer = 2, .forward = {.radius = 10}}, {.layer = 1, .forward = {.radius = 20}}};
  chain.stages = {{.layer = 1, .repetitions = 3, .forward = {.radius = 5}},
                  {.layer = 2, .repetitions = 1, .forward = {.radius = 10}},  // the same ball as prilo's: once
                  {.layer = 1, .repetitions = 0, .forward = {.radius = 7}},   // runs nothing: no ball
                  {.layer = 2, .forward = {.radius = 3, .enabled = false}}};  // likewise
  const std::vector<NamedPriloSection<double>> sections{{"prilo", &paper}, {"prilo_chain", &chain}};
  const auto points = config_split_points(sections, 4);
  CHECK(points == std::vector<int>{1, 2});
  const P base{.steps = 50, .radius = 0, .learning_rate = 0.02};
  const auto balls = config_balls(sections, points, base);
  std::vector<std::string> got;
  for (const auto& b : balls) {
    got.push_back(std::to_string(b.layer) + ":" + ball_label(b.phase));
    CHECK(b.phase.steps == 50);
    CHECK(b.phase.learning_rate == 0.02);
  }
  CHECK(got == std::vector<std::string>{"1:5", "1:15", "1:20", "1:inf", "2:10", "2:inf"});
  // per-tensor radii, scaled alike; a stage beyond the decoder named with its section
  chain.stages = {{.layer = 1, .repetitions = 2, .forward = {.radii = {40, 10}}}};
  CHECK(ball_label(config_balls(sections, {1}, base)[2].phase) == "80/20");  // after 20 and 40/10
  CHECK_THROWS_WITH_AS(config_split_points(sections, 2),
                       "prilo.stages[0].layer 2 is not a split point of a decoder of 2 layers (1..1)",
                       prilo::invalid_input);
}

}  // namespace prilo_test_representation

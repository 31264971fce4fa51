// The VAE: gradient of the full loss (reparameterisation included) and training on real data.
#include <doctest/doctest.h>

#include <cstdlib>
#include <prilo/io/idx.hpp>
#include <prilo/nn.hpp>
#include <prilo/nn/vae_io.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/testing/checkers.hpp>

#ifndef PRILO_TEST_TMPDIR
#define PRILO_TEST_TMPDIR "/tmp"
#endif

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_vae {

using namespace prilo;

TEST_CASE("The VAE loss gradient matches finite differences for every weight tensor") {
  nn::Vae<double> vae(12, 9, 4, 21);
  Rng rng(22);
  Mat<double> x = (rng.normal_matrix<double>(12, 5).array() * 0.3 + 0.5).cwiseMax(0.05).cwiseMin(0.95).matrix();
  Mat<double> eps = rng.normal_matrix<double>(4, 5);
  vae.zero_grad();
  vae.loss(x, eps, true);
  auto params = vae.parameters();
  CHECK(params.size() == 12);
  for (auto& p : params) {
    Mat<double> w0 = p.value, gw = p.grad;
    auto f = [&](const Mat<double>& w) {
      p.value = w;
      double v = vae.loss(x, eps, false).total;
      p.value = w0;
      return v;
    };
    auto g = [&](const Mat<double>&, Mat<double>& out) { out = gw; };
    auto r = testing::check_gradient<double>(f, g, w0, rng, 4, 1e-6, 1e-5);
    INFO(p.name << " relative error " << r.max_rel_error);
    CHECK(r.ok);
  }
}

TEST_CASE("VAE loss parts are consistent") {
  nn::Vae<double> vae(10, 6, 3, 1);
  Rng rng(2);
  Mat<double> x = Mat<double>::Constant(10, 4, 0.5);
  Mat<double> eps = rng.normal_matrix<double>(3, 4);
  auto l = vae.loss(x, eps, false);
  CHECK(l.kl >= 0);
  CHECK(l.bce > 0);
  CHECK(l.total == doctest::Approx(l.bce + l.kl));
  CHECK(vae.negative_elbo(x, eps).mean() == doctest::Approx(l.total));
  CHECK_THROWS_WITH(vae.loss(Mat<double>::Ones(9, 4), eps, false), doctest::Contains("VAE input"));
}

namespace {
std::string data_dir_for_vae() {
  if (const char* e = std::getenv("PRILO_DATA"); e && *e) return e;
  return std::string(PRILO_SOURCE_DIR) + "/data";
}
}  // namespace

TEST_CASE("end-to-end: the shipped VAEs load and reach the test-set loss docs/training.md records") {
  // figures printed by prilo-train-vae at the end of training (seed 1, noise seed 3)
  for (auto [name, want] : {std::pair{"mnist", 99.106}, std::pair{"fashion-mnist", 238.194}}) {
    auto vae = nn::load_vae<float>(std::string(PRILO_SOURCE_DIR) + "/models/vae-" + name + ".prw");
    CHECK(vae.latent_dim() == 100);
    CHECK(vae.hidden_dim() == 500);
    auto test = io::load_dataset<float>(data_dir_for_vae(), name, "test");
    CAPTURE(name);
    CHECK(nn::mean_negative_elbo(vae, test.images, 3) == doctest::Approx(want).epsilon(5e-4));
  }
}

TEST_CASE("end-to-end: a few hundred training steps on real images lower the VAE loss clearly") {
  auto data = io::load_dataset<float>(data_dir_for_vae(), "mnist", "train", 0, 2000);
  nn::Vae<float> vae(784, 128, 16, 5);
  AdamTrainer<float> adam;
  auto params = vae.parameters();
  Rng rng(6);
  const Mat<float> eval_eps = rng.normal_matrix<float>(16, 500);
  const double before = vae.negative_elbo(data.images.leftCols(500), eval_eps).mean();
  for (int step = 0; step < 300; ++step) {
    const Eigen::Index j0 = (step * 50) % 2000;
    vae.zero_grad();
    vae.loss(data.images.middleCols(j0, 50), rng.normal_matrix<float>(16, 50), true);
    adam.step(params);
  }
  const double after = vae.negative_elbo(data.images.leftCols(500), eval_eps).mean();
  MESSAGE("VAE loss before " << before << ", after 300 steps " << after);
  CHECK(after < 0.5 * before);
}

TEST_CASE("Weights of the wrong architecture are rejected") {
  const std::string dir = PRILO_TEST_TMPDIR;
  io::WeightsFile<float> f;
  f.arch = "something-else";
  f.sizes = {1, 2};
  f.add("w", Mat<float>::Ones(2, 2));
  io::save_weights(dir + "/other.prw", f);
  CHECK_THROWS_WITH(nn::load_vae<float>(dir + "/other.prw"), doctest::Contains("is not a VAE"));
  nn::Vae<float> small(10, 6, 3, 1);
  nn::save_vae(dir + "/small.prw", small);
  auto back = nn::load_vae<float>(dir + "/small.prw");
  CHECK(back.decoder().module<2>().weight() == small.decoder().module<2>().weight());
  CHECK(back.encoder().module<0>().bias() == small.encoder().module<0>().bias());
}

}  // namespace prilo_test_vae

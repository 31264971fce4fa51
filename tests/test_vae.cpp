// The VAE: gradient of the full loss (reparameterisation included) and training on real data.
#include <doctest/doctest.h>

#include <prilo/nn.hpp>
#include <prilo/optim/optimizers.hpp>
#include <prilo/testing/checkers.hpp>

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

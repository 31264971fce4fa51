// Checks shared by the tests of the VAEs built on nn::EncoderDecoderVae (test_conv_vae.cpp,
// test_style_vae.cpp): the loss gradient with respect to every weight against central
// differences, and a few Adam steps fitting one repeated image.
#pragma once

#include <doctest/doctest.h>

#include <prilo/core.hpp>
#include <prilo/nn/parameter.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/random.hpp>
#include <prilo/testing/checkers.hpp>
#include <string>
#include <vector>

namespace prilo::test_helpers {

/// All values (or all gradients) of a parameter list stacked into one column.
template <class T>
Mat<T> flatten(const nn::ParamList<T>& ps, bool grads) {
  Eigen::Index n = 0;
  for (const auto& p : ps) n += p.value.size();
  Mat<T> v(n, 1);
  Eigen::Index k = 0;
  for (const auto& p : ps) {
    v.middleRows(k, p.value.size()) = (grads ? p.grad : p.value).reshaped();
    k += p.value.size();
  }
  return v;
}
/// Sets the parameters' values from one column (the layout of flatten).
template <class T>
void unflatten(nn::ParamList<T>& ps, const Mat<T>& v) {
  Eigen::Index k = 0;
  for (auto& p : ps) {
    p.value.reshaped() = v.middleRows(k, p.value.size());
    k += p.value.size();
  }
}

/// The batch-mean loss's weight gradient (loss(x, eps, true)) against central differences
/// along 12 random directions, for 3 random images with values in [0, 1]; also: total =
/// bce + kl, every tensor receives a gradient, and negative_elbo's mean equals the loss. Each
/// tensor named in `focus` is also checked alone (a direction that moves only it), so that a
/// small tensor's error cannot hide among the others.
template <class V>
void check_vae_loss_gradient(V& vae, Rng& rng, const std::vector<std::string>& focus = {}) {
  using T = typename V::scalar;
  const Eigen::Index B = 3;
  const Mat<T> x = (rng.normal_matrix<T>(vae.data_dim(), B).array() * 0.3 + 0.5).cwiseMax(0.0).cwiseMin(1.0).matrix();
  const Mat<T> eps = rng.normal_matrix<T>(vae.latent_dim(), B);
  auto params = vae.parameters();
  const Mat<T> p0 = flatten(params, false);
  vae.zero_grad();
  const auto l0 = vae.loss(x, eps, true);
  const Mat<T> g = flatten(params, true);
  CHECK(double(l0.total) == doctest::Approx(double(l0.bce + l0.kl)));
  for (const auto& p : params) CHECK_MESSAGE(p.grad.norm() > 0, p.name);
  auto f = [&](const Mat<T>& p) {
    unflatten(params, p);
    const T v = vae.loss(x, eps, false).total;
    unflatten(params, p0);
    return v;
  };
  auto gf = [&](const Mat<T>&, Mat<T>& out) { out = g; };
  const auto gc = testing::check_gradient<T>(f, gf, p0, rng, 12, 1e-5, 1e-6);
  INFO(gc.max_rel_error);
  CHECK(gc.ok);
  for (const auto& name : focus) {
    Mat<T> dir = Mat<T>::Zero(p0.rows(), 1);
    Eigen::Index k = 0;
    bool found = false;
    for (const auto& p : params) {
      if (p.name == name) {
        dir.middleRows(k, p.value.size()) = rng.normal_matrix<T>(p.value.size(), 1);
        found = true;
      }
      k += p.value.size();
    }
    REQUIRE_MESSAGE(found, name);
    const T h = T(1e-5);
    const double numeric = double(f(p0 + h * dir) - f(p0 - h * dir)) / (2 * double(h));
    const double analytic = double(g.col(0).dot(dir.col(0)));
    INFO(name);
    CHECK(analytic == doctest::Approx(numeric).epsilon(1e-6));
  }
  const Vec<T> ne = vae.negative_elbo(x, eps);
  CHECK(ne.mean() == doctest::Approx(double(l0.total)).epsilon(1e-12));
}

/// 60 Adam steps (lr 10⁻²) on one binary image repeated 8 times, ε = 0, at least halve the loss.
template <class V>
void check_vae_fits_repeated_image(V& vae, Rng& rng) {
  using T = typename V::scalar;
  const Mat<T> x = (rng.normal_matrix<T>(vae.data_dim(), 1).array() > 0.3).template cast<T>().matrix().replicate(1, 8);
  const Mat<T> eps = Mat<T>::Zero(vae.latent_dim(), 8);
  AdamTrainer<T> adam({.learning_rate = T(1e-2)});
  auto params = vae.parameters();
  const T first = vae.loss(x, eps, false).total;
  for (int k = 0; k < 60; ++k) {
    vae.zero_grad();
    vae.loss(x, eps, true);
    adam.step(params);
  }
  CHECK(vae.loss(x, eps, false).total < 0.5 * first);
}

}  // namespace prilo::test_helpers

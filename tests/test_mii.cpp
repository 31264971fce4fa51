// MII's score matrix against brute force, with chunks that do not divide the candidates.
#include <doctest/doctest.h>

#include <prilo/prilo.hpp>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_mii {

using namespace prilo;
using T = double;
using prilo::test_support::error_of;

namespace {
/// A small VAE over 8×8 images and the DFT magnitudes of `images` random non-negative images.
struct Problem {
  nn::Vae<T> vae{64, 16, 4, 3};
  Fourier2d<T> F{8, 8};
  Rng rng;
  MagnitudeLoss<Fourier2d<T>> loss;
  Problem(std::uint64_t seed, Eigen::Index images)
      : rng(seed), loss(F, measure(F, Mat<T>(rng.normal_matrix<T>(64, images).cwiseAbs()))) {}
};
}  // namespace

TEST_CASE("mii_scores: S(c, j) = || |F G(z_c)| - y_j ||^2 for every candidate and measurement, any chunk size") {
  Problem pr(4, 3);
  const auto& gen = pr.vae.decoder();
  const auto& F = pr.F;
  const auto& loss = pr.loss;
  Rng& rng = pr.rng;
  const Mat<T> cand = rng.normal_matrix<T>(4, 7);
  const Mat<T> g = gen.forward_from(0, cand);
  for (Eigen::Index chunk : {1, 3, 7, 100}) {
    const Mat<T> s = mii_scores(gen, loss, cand, chunk);
    REQUIRE(s.rows() == 7);
    REQUIRE(s.cols() == 3);
    for (Eigen::Index j = 0; j < 3; ++j) {
      // one measurement column repeated for every candidate: the loss of each candidate
      const MagnitudeLoss<Fourier2d<T>> lj(F, detail::tile_columns(Mat<T>(loss.measurements().col(j)), 7));
      const Vec<T> brute = lj.value(g);
      for (Eigen::Index c = 0; c < 7; ++c) CHECK(s(c, j) == doctest::Approx(brute(c)).epsilon(1e-10));
    }
  }
  CHECK_THROWS_AS(mii_scores(gen, loss, cand, 0), invalid_input);
  CHECK_THROWS_AS(mii_scores(gen, loss, Mat<T>(Mat<T>::Zero(5, 7)), 3), invalid_input);
}

TEST_CASE("mii_latents and random_latents refuse counts below what they can draw, naming them") {
  Problem pr(5, 2);
  const auto& gen = pr.vae.decoder();
  const auto& loss = pr.loss;
  Rng& rng = pr.rng;
  const MiiOptions opt{.candidates = 20, .chunk = 8};
  for (const int restarts : {0, -1})
    CHECK_THROWS_WITH_AS(mii_latents(gen, loss, restarts, opt, rng), doctest::Contains("mii: restarts must be >= 1"),
                         invalid_input);
  CHECK_THROWS_WITH_AS(mii_latents(gen, loss, 21, opt, rng), doctest::Contains("at least as many candidates"),
                       invalid_input);
  const Mat<T> z = mii_latents(gen, loss, 3, opt, rng);
  CHECK(z.rows() == 4);
  CHECK(z.cols() == 6);
  CHECK_THROWS_WITH_AS(random_latents(gen, -1, rng), doctest::Contains("random_latents"), invalid_input);
  CHECK(random_latents(gen, 0, rng).cols() == 0);
}

TEST_CASE("MII checks the generator against the loss's operator and its chunk before drawing; takes expressions") {
  Problem pr(6, 2);
  const auto& gen = pr.vae.decoder();  // 64-pixel images
  const Fourier2d<T> F7(7, 7);
  const MagnitudeLoss<Fourier2d<T>> small(F7, Mat<T>::Ones(49, 2));
  Rng rng(3), untouched(3);
  // refused by name before any candidate is drawn or decoded (it surfaced as the loss's shape
  // error after the first chunk): the generator keeps its stream
  CHECK(error_of([&] {
          (void)mii_latents(gen, small, 2, MiiOptions{.candidates = 20}, rng);
        }).find("mii: the generator makes images of 64 values, the loss's operator takes 49") != std::string::npos);
  CHECK(error_of([&] {
          (void)mii_latents(gen, pr.loss, 2, MiiOptions{.candidates = 20, .chunk = 0}, rng);
        }).find("mii: chunk must be >= 1, got 0") != std::string::npos);
  CHECK(rng.next_u64() == untouched.next_u64());
  // candidates as an expression of the generator's scalar: a block, a product
  const Mat<T> cand = pr.rng.normal_matrix<T>(4, 9);
  const Mat<T> all = mii_scores(gen, pr.loss, cand);
  CHECK((mii_scores(gen, pr.loss, cand.leftCols(5)) - all.topRows(5)).norm() <= 1e-12 * all.norm());
  CHECK((mii_scores(gen, pr.loss, 1.0 * cand, 4) - all).norm() <= 1e-12 * all.norm());
}

}  // namespace prilo_test_mii

// MII's score matrix against brute force, with chunks that do not divide the candidates.
#include <doctest/doctest.h>

#include <prilo/prilo.hpp>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_mii {

using namespace prilo;

TEST_CASE("mii_scores: S(c, j) = || |F G(z_c)| - y_j ||^2 for every candidate and measurement, any chunk size") {
  using T = double;
  const nn::Vae<T> vae(64, 16, 4, 3);
  const auto& gen = vae.decoder();
  Fourier2d<T> F(8, 8);
  Rng rng(4);
  const Mat<T> x = rng.normal_matrix<T>(64, 3).cwiseAbs();
  const MagnitudeLoss<Fourier2d<T>> loss(F, measure(F, x));
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

}  // namespace prilo_test_mii

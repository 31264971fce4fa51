// Operators: adjoints, the DFT against a naive DFT, Parseval, magnitude-loss gradients.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <numbers>
#include <optional>
#include <prilo/operators.hpp>
#include <prilo/testing/checkers.hpp>
#include <random>
#include <utility>
#include <vector>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_operators {

using namespace prilo;

namespace {
template <class T>
CMat<T> naive_dft(const Mat<T>& x, int h, int w, T scale) {
  CMat<T> out(h * w, x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (int k1 = 0; k1 < h; ++k1)
      for (int k2 = 0; k2 < w; ++k2) {
        std::complex<double> acc = 0;
        for (int r = 0; r < h; ++r)
          for (int c = 0; c < w; ++c)
            acc += double(x(r * w + c, j)) *
                   std::polar(1.0, -2 * std::numbers::pi * (double(k1) * r / h + double(k2) * c / w));
        out(k1 * w + k2, j) = std::complex<T>(acc * double(scale));
      }
  return out;
}
template <class T>
constexpr double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}
// magnitude loss gradient check along random directions, in double. The central difference's
// rounding error grows with the loss (a sum over the batch) over eps, about 1e-16·|f|/(eps·|f'|),
// its truncation error with eps² and near bins where |Fx| is small. The default 1e-5: at 1e-6 the
// rounding alone reached 1.1-1.2e-6 relative for the padded and the 2-image 28×28 operators (the
// worst of 40 seeds), above the check's 1e-6; at 1e-5 every operator of the first test below
// stayed under 1.3e-7 over those seeds. A batch of 16 28×28 images (loss about 2.5e4) needs 3e-5
// (1.4–3.7e-6 relative at 1e-6, 0.1–0.3e-6 at 3e-5, with either engine), a small unscaled DFT no
// more than 1e-5 (5e-6 at 1e-4)
template <class Op>
void check_loss_gradient(const Op& op, Rng& rng, int batch = 3, double eps = 1e-5) {
  using T = typename Op::scalar;
  Mat<T> xt = rng.normal_matrix<T>(op.input_size(), batch);
  Mat<T> y = measure(op, xt);
  MagnitudeLoss<Op> loss(op, y);
  Mat<T> x = rng.normal_matrix<T>(op.input_size(), batch);
  auto f = [&](const Mat<T>& v) { return loss.value(v).sum(); };
  auto g = [&](const Mat<T>& v, Mat<T>& out) { loss.value_and_gradient(v, out); };
  auto r = testing::check_gradient<T>(f, g, x, rng, 6, T(eps), 1e-6);
  INFO("max relative error " << r.max_rel_error);
  CHECK(r.ok);
}
// ‖|F x| − y‖² per column and its gradient 2·Re Fᴴ((|Fx| − y)/|Fx| ⊙ Fx): the generic
// formula written out, through the full spectrum
template <class T>
std::pair<Vec<T>, Mat<T>> generic_dft_loss(const Fourier2d<T>& F, const Mat<T>& x, const Mat<T>& y) {
  const CMat<T> X = F.apply(x);
  const Mat<T> a = X.cwiseAbs();
  const Vec<T> loss = (a - y).colwise().squaredNorm().transpose();
  const CMat<T> r = ((a - y).array() / a.array()).matrix().template cast<std::complex<T>>().cwiseProduct(X);
  return {loss, T(2) * F.adjoint(r).real()};
}
}  // namespace

TEST_CASE_TEMPLATE("Fourier2d matches a naive DFT for both scalings and odd and even sizes", T, float, double) {
  Rng rng(1);
  for (auto [h, w] : {std::pair{4, 4}, std::pair{5, 3}, std::pair{6, 7}, std::pair{28, 28}, std::pair{1, 5}}) {
    for (auto sc : {FourierScaling::unitary, FourierScaling::none}) {
      Fourier2d<T> F(h, w, sc);
      Mat<T> x = rng.normal_matrix<T>(h * w, 3);
      CMat<T> got = F.apply(x);
      CMat<T> want = naive_dft<T>(x, h, w, F.scale());
      CAPTURE(h);
      CAPTURE(w);
      CHECK((got - want).norm() <= tol<T>() * 10 * want.norm());
      // complex input path agrees with the real one
      CMat<T> gotc = F.apply(CMat<T>(x.template cast<std::complex<T>>()));
      CHECK((gotc - want).norm() <= tol<T>() * 10 * want.norm());
    }
  }
}

TEST_CASE_TEMPLATE("Unitary Fourier2d satisfies Parseval and F^H F = I", T, float, double) {
  Rng rng(2);
  Fourier2d<T> F(28, 28);
  Mat<T> x = rng.normal_matrix<T>(784, 5);
  CMat<T> X = F.apply(x);
  CHECK(std::abs(X.norm() - x.norm()) <= tol<T>() * 10 * x.norm());
  Mat<T> back = F.adjoint(X).real();
  CHECK((back - x).norm() <= tol<T>() * 10 * x.norm());
}

TEST_CASE_TEMPLATE("Every operator's adjoint passes the dot-product test", T, float, double) {
  Rng rng(3);
  const double t = tol<T>() * 10;
  CHECK(testing::check_adjoint(Fourier2d<T>(6, 5), 3, rng) < t);
  CHECK(testing::check_adjoint(Fourier2d<T>(8, 8, FourierScaling::none), 2, rng) < t);
  CHECK(testing::check_adjoint(GaussianReal<T>(40, 30, 7), 4, rng) < t);
  CHECK(testing::check_adjoint(GaussianComplex<T>(40, 30, 7), 4, rng) < t);
  CHECK(testing::check_adjoint(compose(Fourier2d<T>(10, 12), ZeroPad<T>(5, 6, 10, 12)), 2, rng) < t);
  CHECK(testing::check_adjoint(compose(Fourier2d<T>(5, 6), ComplexMask<T>::random_phase(30, 9)), 2, rng) < t);
  CHECK(testing::check_adjoint(ZeroPad<T>(3, 4, 7, 9), 2, rng) < t);
}

namespace {
/// A user's operator that takes real batches only, constrained: composing it behind a complex
/// operator must make the composition fail the concept, not fail to compile.
template <class T>
struct RealOnly {
  using scalar = T;
  Eigen::Index n = 6;
  Eigen::Index input_size() const { return n; }
  Eigen::Index output_size() const { return n; }
  template <class D>
  requires std::is_same_v<typename D::Scalar, T> Mat<T> apply(const Eigen::MatrixBase<D>& x)
  const { return Mat<T>(x) * T(2); }
  template <class D>
  requires std::is_same_v<typename D::Scalar, T> Mat<T> adjoint(const Eigen::MatrixBase<D>& u)
  const { return Mat<T>(u) * T(2); }
};

/// Whether make_loss accepts a temporary operator (it must not: the loss keeps a pointer).
template <class Op>
concept loss_from_temporary = requires(Mat<typename Op::scalar> y) {
  make_loss(Op(std::declval<Op>()), y);
};
}  // namespace

TEST_CASE_TEMPLATE("Operators take Eigen expressions: blocks, Maps, columns, scaled batches", T, float, double) {
  // Fourier2d and GaussianComplex have a real and a complex apply; an expression converts to both,
  // so it goes through as_batch. Each result equals the one of the evaluated matrix.
  Rng rng(21);
  const Mat<T> x = rng.normal_matrix<T>(30, 3);
  const CMat<T> xc = x.template cast<std::complex<T>>() * std::complex<T>(T(0.5), T(-1));
  const Eigen::Map<const Mat<T>> xm(x.data(), 30, 2);
  Fourier2d<T> F(5, 6);
  GaussianReal<T> A(20, 30, 4);
  GaussianComplex<T> B(20, 30, 5);
  ZeroPad<T> P(5, 6, 7, 8);
  const auto m = ComplexMask<T>::random_phase(30, 6);
  CHECK(F.apply(T(2) * x) == F.apply(Mat<T>(T(2) * x)));
  CHECK(F.apply(x.col(1)) == F.apply(Mat<T>(x.col(1))));
  CHECK(F.apply(xm) == F.apply(Mat<T>(xm)));
  CHECK(F.apply(xc.leftCols(2)) == F.apply(CMat<T>(xc.leftCols(2))));
  CHECK(B.apply(x.leftCols(2)) == B.apply(Mat<T>(x.leftCols(2))));
  CHECK(B.apply(xc.col(0)) == B.apply(CMat<T>(xc.col(0))));
  CHECK(A.apply(x.col(2)) == A.apply(Mat<T>(x.col(2))));
  CHECK(A.apply(x.array()) == A.apply(x));  // an Array too (GaussianReal took one before it had a complex apply)
  CHECK(F.apply(x.array() * T(2)) == F.apply(Mat<T>(T(2) * x)));
  CHECK(A.adjoint(A.apply(x).leftCols(1)) == A.adjoint(Mat<T>(A.apply(x).leftCols(1))));
  CHECK(P.apply(x.col(0)) == P.apply(Mat<T>(x.col(0))));
  CHECK(P.apply(xc.col(0)) == P.apply(CMat<T>(xc.col(0))));
  CHECK(m.apply(xm) == m.apply(Mat<T>(xm)));
  // the compositions pass any of them through
  const auto op = compose(F, compose(m, ZeroPad<T>(5, 6, 5, 6)));
  CHECK(op.apply(x.col(1)) == op.apply(Mat<T>(x.col(1))));
}

TEST_CASE_TEMPLATE("A real Gaussian composes with complex-valued operators on either side", T, float, double) {
  // GaussianReal takes complex batches (one real product per part): mask ∘ A, A ∘ mask and F ∘ A
  // are measurement operators, equal to their explicit matrices and with correct adjoints.
  Rng rng(22);
  const double t = tol<T>() * 10;
  GaussianReal<T> A(30, 20, 8);
  const auto m30 = ComplexMask<T>::random_phase(30, 3), m20 = ComplexMask<T>::random_phase(20, 4);
  const auto ma = compose(m30, A);
  const auto am = compose(A, m20);
  const auto fa = compose(Fourier2d<T>(5, 6), A);
  static_assert(MeasurementOperator<decltype(ma)> && MeasurementOperator<decltype(am)> &&
                MeasurementOperator<decltype(fa)>);
  CHECK(testing::check_adjoint(ma, 3, rng) < t);
  CHECK(testing::check_adjoint(am, 3, rng) < t);
  CHECK(testing::check_adjoint(fa, 3, rng) < t);
  const Mat<T> x = rng.normal_matrix<T>(20, 2);
  const CMat<T> a = A.matrix().template cast<std::complex<T>>();
  const CMat<T> want_ma = m30.mask().asDiagonal() * (a * x.template cast<std::complex<T>>());
  const CMat<T> want_am = a * (m20.mask().asDiagonal() * x.template cast<std::complex<T>>());
  CHECK((ma.apply(x) - want_ma).norm() <= t * want_ma.norm());
  CHECK((am.apply(x) - want_am).norm() <= t * want_am.norm());
  const CMat<T> u = rng.normal_matrix<T>(30, 2).template cast<std::complex<T>>() * std::complex<T>(T(0.6), T(0.8));
  const CMat<T> want_adj = a.adjoint() * u;
  CHECK((A.adjoint(u) - want_adj).norm() <= t * want_adj.norm());
  // a magnitude loss over such a chain: gradients against finite differences
  const Mat<T> y = measure(ma, rng.normal_matrix<T>(20, 1));
  MagnitudeLoss<std::remove_const_t<decltype(ma)>> loss(ma, y);
  if constexpr (std::is_same_v<T, double>) {
    const auto r = testing::check_gradient<T>([&](const Mat<T>& z) { return loss.value(z)(0); },
                                              [&](const Mat<T>& z, Mat<T>& g) { loss.value_and_gradient(z, g); },
                                              rng.normal_matrix<T>(20, 1), rng);
    CHECK(r.ok);
  }
}

TEST_CASE("Compositions that do not fit fail the concept or name the problem at compile time") {
  // RealOnly takes real batches only: behind a complex mask the chain has no apply, in front of
  // one no adjoint, and the concept says so (rather than failing inside the chain)
  static_assert(MeasurementOperator<RealOnly<double>>);
  static_assert(MeasurementOperator<Composed<RealOnly<double>, ZeroPad<double>>>);
  static_assert(!MeasurementOperator<Composed<RealOnly<double>, ComplexMask<double>>>);
  static_assert(!MeasurementOperator<Composed<ComplexMask<double>, RealOnly<double>>>);
  // the loss keeps a pointer to its operator: a temporary is refused, a named one taken
  static_assert(!loss_from_temporary<GaussianReal<double>>);
  static_assert(!loss_from_temporary<Fourier2d<float>>);
  static_assert(!std::is_constructible_v<MagnitudeLoss<GaussianReal<double>>, GaussianReal<double>, Mat<double>>);
  static_assert(std::is_constructible_v<MagnitudeLoss<GaussianReal<double>>, const GaussianReal<double>&, Mat<double>>);
  static_assert(!std::is_constructible_v<MagnitudeLoss<Fourier2d<double>>, Fourier2d<double>, Mat<double>>);
  // (mixed precisions, compose(Fourier2d<float>, ZeroPad<double>), stop at a static_assert that
  // names the scalar types; not testable without a failing build)
  Rng rng(23);
  const GaussianComplex<double> B(8, 6, 1);
  CHECK_THROWS_WITH_AS(B.adjoint(CMat<double>::Zero(7, 1)), doctest::Contains("GaussianComplex::adjoint input"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(B.adjoint_real(CMat<double>::Zero(7, 1)),
                       doctest::Contains("GaussianComplex::adjoint_real input"), invalid_input);
  const GaussianReal<double> A(8, 6, 1);
  CHECK_THROWS_WITH_AS(A.adjoint(CMat<double>::Zero(7, 1)), doctest::Contains("GaussianReal::adjoint input"),
                       invalid_input);
  CHECK(testing::check_adjoint(B, 2, rng) < 1e-12);
}

TEST_CASE("Gaussian operators have the documented entry variances") {
  GaussianReal<double> a(200, 300, 11);
  const double m = 200;
  CHECK(a.matrix().squaredNorm() / (200.0 * 300.0) == doctest::Approx(1.0 / m).epsilon(0.03));
  GaussianComplex<double> c(200, 300, 11);
  CHECK(c.real_part().squaredNorm() / (200.0 * 300.0) == doctest::Approx(1.0 / (2 * m)).epsilon(0.03));
  CHECK(c.imag_part().squaredNorm() / (200.0 * 300.0) == doctest::Approx(1.0 / (2 * m)).epsilon(0.03));
  // seeded: the same seed gives the same operator
  CHECK(GaussianReal<double>(20, 10, 5).matrix() == GaussianReal<double>(20, 10, 5).matrix());
  CHECK(GaussianReal<double>(20, 10, 5).matrix() != GaussianReal<double>(20, 10, 6).matrix());
}

TEST_CASE("Magnitude loss gradients match finite differences for every operator") {
  Rng rng(4);
  check_loss_gradient(Fourier2d<double>(6, 6), rng);
  check_loss_gradient(Fourier2d<double>(5, 7, FourierScaling::none), rng);
  check_loss_gradient(Fourier2d<double>(28, 28), rng, 2);
  check_loss_gradient(GaussianReal<double>(50, 20, 3), rng);
  check_loss_gradient(GaussianComplex<double>(50, 20, 3), rng);
  check_loss_gradient(compose(Fourier2d<double>(8, 10), ZeroPad<double>(4, 5, 8, 10)), rng);
  check_loss_gradient(compose(Fourier2d<double>(4, 5), ComplexMask<double>::random_phase(20, 2)), rng);
}

TEST_CASE_TEMPLATE("The fused DFT loss equals the generic definition, also for asymmetric y", T, float, double) {
  Rng rng(5);
  // the CPU pass transforms columns two at a time (a + i·b) in blocks of pairs: batches of one
  // column, odd batches (a column paired with zeros), several blocks per thread, odd and even sizes
  for (auto [h, w, batch] :
       {std::tuple{28, 28, 4}, std::tuple{28, 28, 1}, std::tuple{28, 28, 45}, std::tuple{28, 28, 90},
        std::tuple{5, 6, 3}, std::tuple{7, 5, 5}, std::tuple{6, 7, 2}, std::tuple{1, 4, 3}, std::tuple{9, 1, 2}}) {
    CAPTURE(h);
    CAPTURE(w);
    CAPTURE(batch);
    Fourier2d<T> F(h, w, FourierScaling::unitary, FourierEngine::fftw);  // FourierEngine::lanes: below
    Mat<T> x = rng.normal_matrix<T>(h * w, batch);
    Mat<T> y = rng.normal_matrix<T>(h * w, batch).cwiseAbs();  // not the magnitudes of a real image
    MagnitudeLoss<Fourier2d<T>> fused(F, y);
    Mat<T> g;
    Vec<T> v = fused.value_and_gradient(x, g);
    const auto [want, gwant] = generic_dft_loss(F, x, y);
    for (Eigen::Index j = 0; j < batch; ++j) {
      CAPTURE(j);
      CHECK(std::abs(v(j) - want(j)) <= tol<T>() * 100 * want(j));
      CHECK((g.col(j) - gwant.col(j)).norm() <= tol<T>() * 100 * gwant.col(j).norm());
    }
    Vec<T> v2 = fused.value(x);  // the value alone: the same pass without the backward transform
    CHECK(v2 == v);
  }
}

TEST_CASE("The fused DFT loss keeps each column's accuracy when the columns of a pair differ in scale") {
  // a column transformed with a 100× larger partner (a + i·b) has errors of order ε·|b|: in
  // float its gradient is 1.5–2.3e-5 off (relative), against 3e-7 for columns alike; the bound
  // is 100 × 2e-6
  Rng rng(15);
  Fourier2d<float> F(28, 28, FourierScaling::unitary, FourierEngine::fftw);
  Fourier2d<double> Fd(28, 28, FourierScaling::unitary, FourierEngine::fftw);
  Mat<double> xd = rng.normal_matrix<double>(784, 6);
  for (Eigen::Index j = 1; j < 6; j += 2) xd.col(j) *= 100.0;
  Mat<double> yd = measure(Fd, Mat<double>(rng.normal_matrix<double>(784, 6)));
  for (Eigen::Index j = 1; j < 6; j += 2) yd.col(j) *= 100.0;
  MagnitudeLoss<Fourier2d<double>> exact(Fd, yd);
  Mat<double> gd;
  const Vec<double> vd = exact.value_and_gradient(xd, gd);
  MagnitudeLoss<Fourier2d<float>> fused(F, yd.cast<float>());
  Mat<float> g;
  const Vec<float> v = fused.value_and_gradient(Mat<float>(xd.cast<float>()), g);
  for (Eigen::Index j = 0; j < 6; ++j) {
    CAPTURE(j);
    CHECK(std::abs(double(v(j)) - vd(j)) <= 100 * 2e-6 * vd(j));
    CHECK((g.col(j).cast<double>() - gd.col(j)).norm() <= 100 * 2e-6 * gd.col(j).norm());
  }
}

TEST_CASE_TEMPLATE("A non-finite column of the fused DFT loss does not reach the column it shares a transform with", T,
                   float, double) {
  // columns go through the complex transforms in pairs (0, 1), (2, 3), …: a NaN in column 0 and
  // an inf in column 3 leave columns 1 and 2 as the generic formula has them
  Rng rng(17);
  Fourier2d<T> F(28, 28, FourierScaling::unitary, FourierEngine::fftw);
  Mat<T> x = rng.normal_matrix<T>(784, 4);
  const Mat<T> y = rng.normal_matrix<T>(784, 4).cwiseAbs();
  x(100, 0) = std::numeric_limits<T>::quiet_NaN();
  x(5, 3) = std::numeric_limits<T>::infinity();
  MagnitudeLoss<Fourier2d<T>> fused(F, y);
  Mat<T> g;
  const Vec<T> v = fused.value_and_gradient(x, g);
  CHECK_FALSE(std::isfinite(v(0)));
  CHECK_FALSE(std::isfinite(v(3)));
  for (Eigen::Index j : {1, 2}) {
    CAPTURE(j);
    const auto [lj, gwant] = generic_dft_loss(F, Mat<T>(x.col(j)), Mat<T>(y.col(j)));
    const T want = lj(0);
    CHECK(std::abs(v(j) - want) <= tol<T>() * 100 * want);
    CHECK(g.col(j).allFinite());
    CHECK((g.col(j) - gwant).norm() <= tol<T>() * 100 * gwant.norm());
    CHECK(fused.value(x)(j) == v(j));
  }
}

TEST_CASE_TEMPLATE("The fused DFT loss with the gradient written over x: the same values as into another matrix", T,
                   float, double) {
  // value_and_gradient(x, x): a pair that meets a non-finite value is redone column by column from
  // x, so the gradient must not overwrite x before that (both engines; NaN in column 0, whose
  // partners are column 1 with FFTW and column L with the lanes)
  Rng rng(24);
  const int cols = 2 * lanes::lanes<T> + 2;
  Mat<T> x = rng.normal_matrix<T>(784, cols);
  x(3, 0) = std::numeric_limits<T>::quiet_NaN();
  const Mat<T> y = rng.normal_matrix<T>(784, cols).cwiseAbs();
  for (FourierEngine engine : {FourierEngine::fftw, FourierEngine::lanes}) {
    CAPTURE(int(engine));
    Fourier2d<T> F(28, 28, FourierScaling::unitary, engine);
    MagnitudeLoss<Fourier2d<T>> loss(F, y);
    Mat<T> g;
    const Vec<T> want = loss.value_and_gradient(x, g);
    Mat<T> xg = x;
    const Vec<T> got = loss.value_and_gradient(xg, xg);
    CHECK_FALSE(std::isfinite(got(0)));
    for (Eigen::Index j = 1; j < cols; ++j) {
      CAPTURE(j);
      CHECK(std::isfinite(got(j)));
      CHECK(got(j) == want(j));
      CHECK(xg.col(j) == g.col(j));
    }
  }
}

TEST_CASE_TEMPLATE("The fused pass's residual kernel equals its scalar form at every length", T, float, double) {
  // half_spectrum_residual runs whole SIMD packets, then a scalar tail: every length up to a
  // few packets, with zero bins (the factor's mask) and weights 1 and 2
  Rng rng(16);
  const T s = T(0.25);
  for (Eigen::Index hn = 1; hn <= 41; ++hn) {
    CAPTURE(hn);
    Vec<T> p = rng.normal_matrix<T>(2 * hn, 1), yb = rng.normal_matrix<T>(hn, 1).cwiseAbs(), wt(hn);
    for (Eigen::Index i = 0; i < hn; ++i) wt(i) = i % 3 == 0 ? T(1) : T(2);
    for (Eigen::Index i = 0; i < hn; i += 5) p(2 * i) = p(2 * i + 1) = T(0);
    Vec<T> q = p;
    T want = 0;
    for (Eigen::Index i = 0; i < hn; ++i) detail::residual_bin(q.data() + 2 * i, yb(i), wt(i), s, T(2) * s, want);
    const T got = detail::half_spectrum_residual(p.data(), yb.data(), wt.data(), hn, s);
    CHECK(std::abs(got - want) <= tol<T>() * std::abs(want));
    CHECK((p - q).cwiseAbs().maxCoeff() <= tol<T>() * q.cwiseAbs().maxCoeff());
    for (Eigen::Index i = 0; i < hn; i += 5) CHECK((p(2 * i) == T(0) && p(2 * i + 1) == T(0)));
  }
}

TEST_CASE_TEMPLATE("lanes::Dft2d matches a naive DFT in both directions, one image per lane", T, float, double) {
  // every radix (4, 2, 3, 5, 7), one stage and several, sides of 1, and a different image in
  // every lane (a lane mix-up would show)
  using V = lanes::vec<T>;
  constexpr int L = lanes::lanes<T>;
  std::mt19937 gen(8);
  std::normal_distribution<double> normal;
  for (auto [h, w] : {std::pair{1, 1}, std::pair{2, 3}, std::pair{4, 7}, std::pair{5, 5}, std::pair{7, 9},
                      std::pair{16, 12}, std::pair{28, 28}, std::pair{1, 8}, std::pair{14, 1}, std::pair{30, 32}}) {
    CAPTURE(h);
    CAPTURE(w);
    const int n = h * w;
    lanes::Dft2d<T> dft(h, w);
    std::vector<std::complex<double>> x(std::size_t(n) * L);
    for (auto& v : x) v = {normal(gen), normal(gen)};
    for (int inverse = 0; inverse < 2; ++inverse) {
      std::vector<V> re(n), im(n), work(dft.work_size());
      for (int p = 0; p < n; ++p)
        for (int l = 0; l < L; ++l) {
          re[p][l] = T(x[std::size_t(p) * L + l].real());
          im[p][l] = T(x[std::size_t(p) * L + l].imag());
        }
      if (inverse)
        dft.template run<true>(re.data(), im.data(), work.data());
      else
        dft.template run<false>(re.data(), im.data(), work.data());
      const double sign = inverse ? 1.0 : -1.0;
      double err = 0, norm = 0;
      for (int l = 0; l < L; ++l)
        for (int k1 = 0; k1 < h; ++k1)
          for (int k2 = 0; k2 < w; ++k2) {
            std::complex<double> acc = 0;
            for (int r = 0; r < h; ++r)
              for (int c = 0; c < w; ++c)
                acc += x[std::size_t(r * w + c) * L + l] *
                       std::polar(1.0,
                                  sign * 2 * std::numbers::pi * (double((k1 * r) % h) / h + double((k2 * c) % w) / w));
            const std::complex<double> got(re[k1 * w + k2][l], im[k1 * w + k2][l]);
            err += std::norm(got - acc);
            norm += std::norm(acc);
          }
      CAPTURE(inverse);
      CHECK(std::sqrt(err) <= tol<T>() * std::sqrt(norm));
    }
  }
  CHECK(lanes::supported_length(28));
  CHECK(lanes::supported_length(2 * 3 * 5 * 7 * 4));
  CHECK_FALSE(lanes::supported_length(29));
  CHECK_FALSE(lanes::supported_length(22));
  CHECK_FALSE(lanes::supported_length(0));
}

TEST_CASE_TEMPLATE("lanes' column transposes put every value in its lane and back, at every length", T, float, double) {
  constexpr int L = lanes::lanes<T>;
  for (std::ptrdiff_t n = 0; n <= 3 * L + 3; ++n) {
    CAPTURE(n);
    std::vector<std::vector<T>> cols(L, std::vector<T>(std::size_t(n)));
    const T* in[L];
    for (int l = 0; l < L; ++l) {
      for (std::ptrdiff_t p = 0; p < n; ++p) cols[l][p] = T(1000 * l + p);
      in[l] = cols[l].data();
    }
    std::vector<lanes::vec<T>> v(std::size_t(n) + 1);
    lanes::gather_columns<T>(in, n, v.data());
    bool placed = true;
    for (std::ptrdiff_t p = 0; p < n; ++p)
      for (int l = 0; l < L; ++l) placed = placed && v[p][l] == T(1000 * l + p);
    CHECK(placed);
    std::vector<std::vector<T>> back(L, std::vector<T>(std::size_t(n), T(-1)));
    T* out[L];
    for (int l = 0; l < L; ++l) out[l] = back[l].data();
    lanes::scatter_columns<T>(v.data(), n, out);
    CHECK(back == cols);
  }
}

TEST_CASE_TEMPLATE("lanes' permutes and broadcast: every value where it belongs, the sign of -0 kept", T, float,
                   double) {
  constexpr int L = lanes::lanes<T>;
  using V = lanes::vec<T>;
  V r[L];
  for (int i = 0; i < L; ++i)
    for (int c = 0; c < L; ++c) r[i][c] = T(100 * i + c);
  lanes::transpose<T>(r);
  bool transposed = true;
  for (int i = 0; i < L; ++i)
    for (int c = 0; c < L; ++c) transposed = transposed && r[i][c] == T(100 * c + i);
  CHECK(transposed);
  V a, b, re, im;
  for (int c = 0; c < L; ++c) {
    a[c] = T(c % 2 ? -c : c);  // pairs (re, im) = (2k, -(2k + 1)), then b's from 100
    b[c] = T(c % 2 ? -(100 + c) : 100 + c);
  }
  lanes::deinterleave(a, b, re, im);
  bool split = true;
  for (int c = 0; c < L; ++c) {
    const int k = c < L / 2 ? 2 * c : 100 + 2 * (c - L / 2);
    split = split && re[c] == T(k) && im[c] == T(-(k + 1));
  }
  CHECK(split);
  V a2, b2;
  lanes::interleave(re, im, a2, b2);
  bool joined = true;
  for (int c = 0; c < L; ++c) joined = joined && a2[c] == a[c] && b2[c] == b[c];
  CHECK(joined);
  const V z = lanes::broadcast<V>(T(-0.0)), x = lanes::broadcast<V>(T(2.5));
  bool every = true;
  for (int c = 0; c < L; ++c) every = every && z[c] == T(0) && std::signbit(z[c]) && x[c] == T(2.5);
  CHECK(every);
}

TEST_CASE_TEMPLATE("The fused DFT loss on lanes equals the generic definition and FFTW's", T, float, double) {
  // blocks of 2·L columns on the lanes, a last one of L … 2·L − 1 columns with empty lanes, fewer
  // through FFTW: one block, a block and a remainder of each kind, several blocks per thread, a
  // lone partial block, fewer columns than half a block; odd, even and unit sides
  Rng rng(18);
  constexpr int L = lanes::lanes<T>;
  const test_support::ThreadGuard guard;
  for (int threads : {1, 2})  // threads' ranges start at whole blocks
    for (auto [h, w, batch] : {std::tuple{28, 28, 2 * L}, std::tuple{28, 28, 2 * L + 5}, std::tuple{28, 28, 3 * L + 1},
                               std::tuple{28, 28, 8 * L + 1}, std::tuple{28, 28, L}, std::tuple{28, 28, L + 3},
                               std::tuple{28, 28, L - 1}, std::tuple{28, 28, 3}, std::tuple{5, 6, 2 * L + 1},
                               std::tuple{7, 7, 4 * L}, std::tuple{1, 4, 2 * L}, std::tuple{9, 1, 2 * L}}) {
      CAPTURE(h);
      CAPTURE(w);
      CAPTURE(batch);
      CAPTURE(threads);
      cpu::set_threads(threads);
      Fourier2d<T> F(h, w, FourierScaling::unitary, FourierEngine::fftw),
          G(h, w, FourierScaling::unitary, FourierEngine::lanes);
      REQUIRE(G.engine() == FourierEngine::lanes);
      REQUIRE(G.lane_transform() != nullptr);
      Mat<T> x = rng.normal_matrix<T>(h * w, batch);
      Mat<T> y = rng.normal_matrix<T>(h * w, batch).cwiseAbs();
      MagnitudeLoss<Fourier2d<T>> on_lanes(G, y), on_fftw(F, y);
      Mat<T> g, gf;
      const Vec<T> v = on_lanes.value_and_gradient(x, g), vf = on_fftw.value_and_gradient(x, gf);
      const auto [want, gwant] = generic_dft_loss(F, x, y);
      for (Eigen::Index j = 0; j < batch; ++j) {
        CAPTURE(j);
        CHECK(std::abs(v(j) - want(j)) <= tol<T>() * 100 * want(j));
        CHECK((g.col(j) - gwant.col(j)).norm() <= tol<T>() * 100 * gwant.col(j).norm());
        CHECK(std::abs(v(j) - vf(j)) <= tol<T>() * 100 * want(j));
      }
      CHECK(on_lanes.value(x) == v);
    }
  // the unscaled DFT too
  Fourier2d<T> F(4, 6, FourierScaling::none, FourierEngine::fftw), G(4, 6, FourierScaling::none, FourierEngine::lanes);
  Mat<T> x = rng.normal_matrix<T>(24, 2 * L);
  Mat<T> y = measure(F, Mat<T>(rng.normal_matrix<T>(24, 2 * L)));
  Mat<T> g;
  const Vec<T> v = MagnitudeLoss<Fourier2d<T>>(G, y).value_and_gradient(x, g);
  const auto [want, gwant] = generic_dft_loss(F, x, y);
  CHECK((v - want).norm() <= tol<T>() * 100 * want.norm());
  CHECK((g - gwant).norm() <= tol<T>() * 100 * gwant.norm());
}

TEST_CASE("The fused DFT loss on lanes: gradients match finite differences") {
  Rng rng(19);
  check_loss_gradient(Fourier2d<double>(28, 28, FourierScaling::unitary, FourierEngine::lanes), rng,
                      2 * lanes::lanes<double>, 3e-5);
  check_loss_gradient(Fourier2d<double>(6, 10, FourierScaling::none, FourierEngine::lanes), rng,
                      2 * lanes::lanes<double> + 1, 1e-5);
}

TEST_CASE_TEMPLATE("A non-finite column on lanes does not reach the column it shares a lane with", T, float, double) {
  // lane l carries columns l and L + l. One thread: a whole block (columns 0 … 2L−1) and a partial
  // one of L + 1 columns (2L … 3L), where only lane 0 has a partner. A NaN in column 0 (partner L)
  // and an inf in column L + 1 (lane 1's second image, partner 1); in the partial block a NaN in
  // column 2L + 1 (lane 1, no partner) and in column 3L (lane 0's second image, partner 2L). Every
  // other column comes out as the generic formula has it. Any L ≥ 2 (double on SSE2 and NEON).
  constexpr int L = lanes::lanes<T>;
  Rng rng(20);
  Fourier2d<T> F(28, 28, FourierScaling::unitary, FourierEngine::fftw),
      G(28, 28, FourierScaling::unitary, FourierEngine::lanes);
  const int cols = 3 * L + 1;
  Mat<T> x = rng.normal_matrix<T>(784, cols);
  const Mat<T> y = rng.normal_matrix<T>(784, cols).cwiseAbs();
  const std::vector<Eigen::Index> bad = {0, L + 1, 2 * L + 1, 3 * L};
  x(100, bad[0]) = std::numeric_limits<T>::quiet_NaN();
  x(5, bad[1]) = std::numeric_limits<T>::infinity();
  x(7, bad[2]) = std::numeric_limits<T>::quiet_NaN();
  x(9, bad[3]) = std::numeric_limits<T>::quiet_NaN();
  MagnitudeLoss<Fourier2d<T>> fused(G, y);
  const auto [want, gwant] = generic_dft_loss(F, x, y);
  const test_support::ThreadGuard guard;
  // two threads split the columns only from 32 on (for_column_chunks' 16 a thread), and then at
  // a whole block: the same blocks, the same property
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    cpu::set_threads(threads);
    Mat<T> g;
    const Vec<T> v = fused.value_and_gradient(x, g);
    for (Eigen::Index j = 0; j < cols; ++j) {
      CAPTURE(j);
      if (std::find(bad.begin(), bad.end(), j) != bad.end()) {
        CHECK_FALSE(std::isfinite(v(j)));
        continue;
      }
      CHECK(std::abs(v(j) - want(j)) <= tol<T>() * 100 * want(j));
      CHECK(g.col(j).allFinite());
      CHECK((g.col(j) - gwant.col(j)).norm() <= tol<T>() * 100 * gwant.col(j).norm());
    }
  }
}

TEST_CASE_TEMPLATE("The fused DFT loss gives the same bits at every thread count, with either engine", T, float,
                   double) {
  // threads' column ranges start at whole lane blocks (lanes) or pairs (FFTW), so every column
  // keeps its partner: 1, 2 and 3 threads, batches that 2 or 3 threads would otherwise split
  // inside a block or a pair (an odd half, a block and a half, a lone partial block)
  constexpr int L = lanes::lanes<T>;
  Rng rng(21);
  const test_support::ThreadGuard guard;
  for (FourierEngine engine : {FourierEngine::lanes, FourierEngine::fftw})
    for (int batch : {34, 3 * L, 3 * L + 1, 5 * L + 3, 6 * L, 7 * L - 1}) {
      CAPTURE(int(engine));
      CAPTURE(batch);
      Fourier2d<T> F(28, 28, FourierScaling::unitary, engine);
      const Mat<T> x = rng.normal_matrix<T>(784, batch);
      const MagnitudeLoss<Fourier2d<T>> loss(F, rng.normal_matrix<T>(784, batch).cwiseAbs());
      cpu::set_threads(1);
      Mat<T> g1;
      const Vec<T> v1 = loss.value_and_gradient(x, g1);
      for (int threads : {2, 3}) {
        CAPTURE(threads);
        cpu::set_threads(threads);
        Mat<T> g;
        const Vec<T> v = loss.value_and_gradient(x, g);
        CHECK(v == v1);
        CHECK(g == g1);
      }
    }
}

TEST_CASE("The lanes engine refuses image sides it cannot transform, by name") {
  CHECK_THROWS_WITH_AS(Fourier2d<float>(29, 28, FourierScaling::unitary, FourierEngine::lanes),
                       "Fourier2d: the lanes engine needs image sides that factor into 2, 3, 5 and 7, got 29x28 (use "
                       "FourierEngine::fftw)",
                       invalid_input);
  CHECK_THROWS_WITH_AS(lanes::Dft1d<double>(11), "lanes::Dft1d: length 11 does not factor into 2, 3, 5 and 7",
                       invalid_input);
  CHECK_THROWS_AS(Fourier2d<float>(28, 28, FourierScaling::unitary, FourierEngine(7)), invalid_input);
  CHECK(Fourier2d<float>(29, 28).engine() == FourierEngine::fftw);
  CHECK(Fourier2d<float>(29, 28).lane_transform() == nullptr);
}

TEST_CASE("FourierEngine::automatic, the default, takes the lanes for small images whose sides they support") {
  CHECK(Fourier2d<float>(28, 28).engine() == FourierEngine::lanes);
  CHECK(Fourier2d<double>(28, 28, FourierScaling::none).engine() == FourierEngine::lanes);
  CHECK(Fourier2d<float>(63, 64).engine() == FourierEngine::lanes);  // 4032 pixels
  CHECK(Fourier2d<float>(64, 64).engine() == FourierEngine::fftw);   // automatic_lanes_pixels
  CHECK(Fourier2d<float>(1, 4096).engine() == FourierEngine::fftw);
  CHECK(Fourier2d<float>(29, 28).engine() == FourierEngine::fftw);  // 29: no lanes transform
  CHECK(Fourier2d<float>(28, 28, FourierScaling::unitary, FourierEngine::fftw).engine() == FourierEngine::fftw);
  CHECK(Fourier2d<float>(64, 64, FourierScaling::unitary, FourierEngine::lanes).engine() == FourierEngine::lanes);
}

TEST_CASE("The magnitude loss is safe where Ax = 0 and zero at the truth") {
  Fourier2d<double> F(4, 4);
  Mat<double> x = Mat<double>::Zero(16, 1);
  Mat<double> y = Mat<double>::Ones(16, 1);
  MagnitudeLoss<Fourier2d<double>> loss(F, y);
  Mat<double> g;
  auto v = loss.value_and_gradient(x, g);
  CHECK(v(0) == doctest::Approx(16.0));
  CHECK(g.allFinite());
  CHECK(g.norm() == 0.0);
  GaussianReal<double> A(10, 16, 1);
  MagnitudeLoss<GaussianReal<double>> l2(A, Mat<double>::Ones(10, 1));
  l2.value_and_gradient(x, g);
  CHECK(g.allFinite());
  Rng rng(6);
  Mat<double> xt = rng.normal_matrix<double>(16, 2);
  MagnitudeLoss<Fourier2d<double>> l3(F, measure(F, xt));
  CHECK(l3.value(xt).maxCoeff() < 1e-20);
}

TEST_CASE("Operators reject bad input with a message that names the problem") {
  Fourier2d<double> F(4, 4);
  Mat<double> y = Mat<double>::Ones(16, 2);
  CHECK_THROWS_AS(F.apply(Mat<double>(Mat<double>::Ones(15, 2))), invalid_input);
  CHECK_THROWS_WITH(F.apply(Mat<double>(Mat<double>::Ones(15, 2))),
                    doctest::Contains("expected a 16x2 matrix, got 15x2"));
  Mat<double> ynan = y;
  ynan(3, 1) = std::nan("");
  CHECK_THROWS_WITH(MagnitudeLoss<Fourier2d<double>>(F, ynan), doctest::Contains("NaN"));
  Mat<double> yneg = y;
  yneg(0, 0) = -1;
  CHECK_THROWS_WITH(MagnitudeLoss<Fourier2d<double>>(F, yneg), doctest::Contains("non-negative"));
  CHECK_THROWS_WITH(MagnitudeLoss<Fourier2d<double>>(F, Mat<double>::Ones(15, 2)), doctest::Contains("measurements"));
  MagnitudeLoss<Fourier2d<double>> loss(F, y);
  CHECK_THROWS_WITH(loss.value(Mat<double>::Ones(16, 3)), doctest::Contains("expected a 16x2"));
  CHECK_THROWS_WITH(Fourier2d<double>(0, 3), doctest::Contains("positive"));
  CHECK_THROWS_WITH(GaussianReal<double>(0, 3, 1), doctest::Contains("positive"));
  CHECK_THROWS_WITH(compose(Fourier2d<double>(4, 4), ZeroPad<double>(2, 2, 3, 3)), doctest::Contains("compose"));
  CHECK_THROWS_WITH(ZeroPad<double>(4, 4, 3, 5), doctest::Contains("ZeroPad"));
}

TEST_CASE("FFTW planner effort: every effort gives the same transform, unknown values are rejected") {
  // the process-wide effort restored however the case ends (a failed REQUIRE throws)
  const test_support::OnExit restore_effort{[saved = fftw::planner_effort()] { fftw::set_planner_effort(saved); }};
  Rng rng(21);
  const Mat<double> x = rng.normal_matrix<double>(6 * 10, 5);
  Mat<CMat<double>::Scalar> ref;
  for (fftw::Effort e : {fftw::Effort::estimate, fftw::Effort::measure, fftw::Effort::patient}) {
    fftw::set_planner_effort(e);
    CHECK(fftw::planner_effort() == e);
    const Fourier2d<double> F(6, 10);  // a fresh operator: its plans are made with effort e
    const CMat<double> X = F.apply(x);
    if (ref.size() == 0) ref = X;
    CHECK((X - ref).cwiseAbs().maxCoeff() <= 1e-12 * ref.cwiseAbs().maxCoeff());
    Mat<double> g;
    const MagnitudeLoss<Fourier2d<double>> loss(F, measure(F, x));
    CHECK(loss.value_and_gradient(x, g).cwiseAbs().maxCoeff() <= 1e-20);
  }
  CHECK(fftw::parse_effort("patient") == fftw::Effort::patient);
  CHECK_THROWS_WITH_AS(fftw::parse_effort("exhaustive"),
                       "FFTW planner effort: unknown value \"exhaustive\" (known: estimate, measure, patient)",
                       invalid_input);
}

TEST_CASE("FFTW plans refuse what FFTW would get wrong: in place, misaligned arrays, no plan, senseless sizes") {
  using C = std::complex<float>;
  const fftw::Plan<float> p(fftw::Kind::c2c_forward, 4, 6, 2);
  CMat<float> a = CMat<float>::Ones(24, 2), b(24, 2);
  p.execute(a.data(), b.data());
  CHECK(std::abs(b(0, 0) - C(24, 0)) < 1e-5f);  // the DC bin of ones
  CHECK_THROWS_WITH_AS(p.execute(a.data(), a.data()), doctest::Contains("the output is the input"), invalid_input);
  // one complex value (8 bytes) in: FFTW's SIMD plans crashed or read wrong values there
  CMat<float> wide = CMat<float>::Ones(49, 1), out(49, 1);
  CHECK_THROWS_WITH_AS(p.execute(wide.data() + 1, b.data()), doctest::Contains("without FFTW's SIMD alignment"),
                       invalid_input);
  const fftw::Plan<float> u(fftw::Kind::c2c_forward, 4, 6, 2, /*unaligned=*/true);
  u.execute(wide.data() + 1, out.data() + 1);  // an unaligned plan takes them
  CHECK(std::abs(out(1, 0) - C(24, 0)) < 1e-5f);
  const fftw::Plan<float> none;
  CHECK_THROWS_WITH_AS(none.execute(a.data(), b.data()), doctest::Contains("without a plan"), invalid_input);
  Mat<float> r(24, 2);
  const fftw::Plan<float> r2c(fftw::Kind::r2c, 4, 6, 2);
  CHECK_THROWS_WITH_AS(r2c.execute(a.data(), r.data()), doctest::Contains("r2c plan executed as c2r"), invalid_input);
  CHECK_THROWS_WITH_AS(fftw::Plan<float>(fftw::Kind::r2c, 0, 6, 1),
                       doctest::Contains("FFTW r2c plan of 1 0x6 image(s) in float: the sides must be >= 1"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(fftw::Plan<double>(fftw::Kind::c2r, 65536, 65537, 1), doctest::Contains("pixels an image"),
                       invalid_input);
  CHECK_THROWS_AS(fftw::Plan<float>(fftw::Kind::c2c_backward, 4, 4, -1), invalid_input);
}

TEST_CASE("user_cache_dir: $XDG_CACHE_HOME when absolute, else ~/.cache (a relative one is ignored, as XDG asks)") {
  namespace fs = std::filesystem;
  const test_support::EnvGuard home("HOME", "/home/someone");
  const test_support::EnvGuard xdg("XDG_CACHE_HOME", "/var/cache/me");
  CHECK(user_cache_dir() == fs::path("/var/cache/me/prilo"));
  ::setenv("XDG_CACHE_HOME", "relative/cache", 1);  // would follow the working directory
  CHECK(user_cache_dir() == fs::path("/home/someone/.cache/prilo"));
  ::setenv("XDG_CACHE_HOME", "", 1);
  CHECK(user_cache_dir() == fs::path("/home/someone/.cache/prilo"));
  ::unsetenv("HOME");
  CHECK(user_cache_dir().empty());
}

TEST_CASE("FFTW wisdom file: the file a choice names, and $PRILO_FFTW_WISDOM") {
  namespace fs = std::filesystem;
  // unset here, set below; its earlier value restored however the case ends
  const test_support::EnvGuard wisdom_env("PRILO_FFTW_WISDOM", std::nullopt);
  const fs::path cache = user_cache_dir();
  CHECK(fftw::WisdomFile<float>::default_path() == (cache.empty() ? cache : cache / "fftw-wisdom-float.txt"));
  CHECK(fftw::WisdomFile<double>::path_of("") == fftw::WisdomFile<double>::default_path());
  CHECK(fftw::WisdomFile<float>::path_of("none").empty());
  CHECK(fftw::WisdomFile<float>::path_of("/a/b.txt") == fs::path("/a/b.txt"));
  ::setenv("PRILO_FFTW_WISDOM", "/some/where.txt", 1);
  CHECK(fftw::WisdomFile<float>::default_path() == fs::path("/some/where.txt"));
  CHECK(fftw::WisdomFile<float>::path_of("") == fs::path("/some/where.txt"));
  CHECK(fftw::WisdomFile<float>::path_of("/a/b.txt") == fs::path("/a/b.txt"));  // the choice wins
  ::setenv("PRILO_FFTW_WISDOM", "none", 1);
  CHECK(fftw::WisdomFile<float>::default_path().empty());
  CHECK(fftw::WisdomFile<float>().status() == fftw::WisdomStatus::disabled);
}

TEST_CASE("FFTW wisdom file: written once plans exist, read back, a corrupt, foreign or unwritable file is a miss") {
  namespace fs = std::filesystem;
  // the process-wide effort restored, and the folder removed, however the case ends
  const test_support::OnExit restore_effort{[saved = fftw::planner_effort()] { fftw::set_planner_effort(saved); }};
  fftw::set_planner_effort(fftw::Effort::measure);
  const fs::path dir = fs::temp_directory_path() / ("prilo-wisdom-test-" + std::to_string(std::random_device{}()));
  const test_support::OnExit remove_dir{[dir] {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }};
  fs::create_directories(dir);
  const fs::path file = dir / "w.txt";
  int size = 5;
  auto make_plan = [&] {  // a transform of a size no earlier check used: a new plan
    const Fourier2d<float> F(size, size + 2);
    CMat<float> half;
    F.forward_half(Mat<float>::Ones(F.input_size(), 3), half);
    ++size;
  };
  {
    fftw::WisdomFile<float> w(file);
    CHECK(w.status() == fftw::WisdomStatus::missing);
    CHECK(w.save());
    CHECK_FALSE(fs::exists(file));  // no plan made since: nothing written
    make_plan();
    CHECK(w.save());
    REQUIRE(fs::exists(file));
    std::ifstream in(file);
    std::string head;
    in >> head;
    CHECK(head.rfind("(fftw-3", 0) == 0);
  }
  {
    fftw::WisdomFile<float> w(file);
    CHECK(w.status() == fftw::WisdomStatus::loaded);
    fftw::WisdomFile<double> other(file);  // float wisdom is not double wisdom
    CHECK(other.status() == fftw::WisdomStatus::rejected);
  }
  {
    std::ofstream(file) << "(fftw-3.3 garbage";
    fftw::WisdomFile<float> w(file);
    CHECK(w.status() == fftw::WisdomStatus::rejected);
    make_plan();
    CHECK(w.save());  // the corrupt file is replaced by good wisdom
    CHECK(fftw::WisdomFile<float>(file).status() == fftw::WisdomStatus::loaded);
  }
  {
    const std::string json = "{\"dpr\": {\"steps\": 10}}\n";  // some other file, e.g. a mistyped --fftw-wisdom
    std::ofstream(dir / "config.json") << json;
    fftw::WisdomFile<float> w(dir / "config.json");
    CHECK(w.status() == fftw::WisdomStatus::foreign);
    make_plan();
    CHECK(w.save());
    std::ifstream in(dir / "config.json");
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == json);  // left as it was
    CHECK(fftw::wisdom_note(w.status(), dir / "config.json").find("neither read nor overwritten") != std::string::npos);
  }
  {
    std::ofstream(dir / "plain") << "x";
    fftw::WisdomFile<float> w(dir / "plain" / "w.txt");  // under a regular file: cannot be written
    CHECK(w.status() == fftw::WisdomStatus::missing);
    make_plan();
    CHECK_FALSE(w.save());
  }
  {
    fftw::set_planner_effort(fftw::Effort::estimate);
    fftw::WisdomFile<float> w(dir / "estimate.txt");
    CHECK(w.status() == fftw::WisdomStatus::skipped);
    make_plan();
    CHECK(w.save());
    CHECK_FALSE(fs::exists(dir / "estimate.txt"));
  }
  CHECK(fftw::WisdomFile<float>(fs::path()).status() == fftw::WisdomStatus::disabled);
  CHECK(fftw::wisdom_note(fftw::WisdomStatus::rejected, file).find("unreadable or not FFTW wisdom") !=
        std::string::npos);
}

TEST_CASE("Operators refuse what they cannot transform: half spectra of other sizes, too many pixels, bad matrices") {
  using T = float;
  const Fourier2d<T> F(4, 6);
  CMat<T> half;
  Mat<T> x;
  CHECK_THROWS_WITH_AS(F.forward_half(Mat<T>::Zero(25, 2), half), doctest::Contains("Fourier2d::forward_half input"),
                       invalid_input);
  CMat<T> wrong = CMat<T>::Zero(F.half_size() + 1, 2);
  CHECK_THROWS_WITH_AS(F.backward_half(wrong, x), doctest::Contains("Fourier2d::backward_half input"), invalid_input);
  // the right sizes: the half spectrum of x, and back (unscaled: n·x)
  Rng rng(3);
  const Mat<T> x0 = rng.normal_matrix<T>(24, 2);
  F.forward_half(x0, half);
  CHECK(half.rows() == F.half_size());
  F.backward_half(half, x);
  CHECK((x / T(24) - x0).cwiseAbs().maxCoeff() < 1e-5f);
  // pixel indices are ints
  CHECK_THROWS_WITH_AS(Fourier2d<T>(65536, 65536), doctest::Contains("pixels"), invalid_input);
  CHECK_THROWS_WITH_AS(Fourier2d<T>(0, 5), doctest::Contains("must be positive"), invalid_input);
  // a Gaussian matrix given by the user
  CHECK_THROWS_WITH_AS(GaussianReal<T>(Mat<T>(0, 0)), doctest::Contains("GaussianReal: the matrix is empty"),
                       invalid_input);
  Mat<T> a = Mat<T>::Ones(3, 2);
  a(1, 1) = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH_AS(GaussianReal<T>{a}, doctest::Contains("GaussianReal matrix"), invalid_input);
  CHECK(GaussianReal<T>(Mat<T>::Ones(3, 2)).output_size() == 3);
  for (const Eigen::Index n : {0, -1})
    CHECK_THROWS_WITH_AS(ComplexMask<T>::random_phase(n, 1), doctest::Contains("mask size must be >= 1"),
                         invalid_input);
}

}  // namespace prilo_test_operators

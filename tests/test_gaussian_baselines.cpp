// Spectral and orthogonality-promoting starts, Wirtinger flow and truncated amplitude flow on Gaussian problems.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <prilo/operators/gaussian.hpp>
#include <prilo/solvers/gaussian_baselines.hpp>
#include <string>
#include <vector>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_gaussian_baselines {

using namespace prilo;
using T = double;

namespace {

constexpr Eigen::Index kN = 64, kM = 8 * kN, kB = 6;

/// min(‖x̂ − x‖, ‖x̂ + x‖)/‖x‖ per column: the error up to the global sign.
template <class S>
Vec<S> sign_error(const Mat<S>& est, const Mat<S>& x) {
  Vec<S> e(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    e(j) = std::min((est.col(j) - x.col(j)).norm(), (est.col(j) + x.col(j)).norm()) / x.col(j).norm();
  return e;
}

/// |⟨x̂, x⟩|/(‖x̂‖‖x‖) per column.
Vec<T> correlation(const Mat<T>& est, const Mat<T>& x) {
  Vec<T> c(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    c(j) = std::abs(est.col(j).dot(x.col(j))) / (est.col(j).norm() * x.col(j).norm());
  return c;
}

/// Leading eigenvector of the dense symmetric matrix m.
Vec<T> leading_eigenvector(const Mat<T>& m) {
  Eigen::SelfAdjointEigenSolver<Mat<T>> es(m);
  Eigen::Index k = 0;
  es.eigenvalues().maxCoeff(&k);
  return es.eigenvectors().col(k);
}

/// Re(Aᴴ diag(w) A) formed densely, for real or complex A.
template <class A>
Mat<T> dense_real_form(const A& a, const Vec<T>& w) {
  if constexpr (is_complex_v<typename A::Scalar>)
    return (a.adjoint() * w.template cast<std::complex<T>>().asDiagonal() * a).real();
  else
    return a.transpose() * w.asDiagonal() * a;
}

/// The orthogonality-promoting matrix of TAF for one measurement column, formed densely with an
/// independent selection (full sort) of the ⌈m/6⌉ largest y_i/‖a_i‖.
template <class A>
Mat<T> dense_orthogonality_matrix(const A& a, const Vec<T>& y) {
  const Eigen::Index m = a.rows(), k = (m + 5) / 6;
  const Vec<T> rn = a.rowwise().norm();
  std::vector<Eigen::Index> idx(static_cast<std::size_t>(m));
  std::iota(idx.begin(), idx.end(), Eigen::Index(0));
  std::sort(idx.begin(), idx.end(), [&](Eigen::Index p, Eigen::Index q) { return y(p) / rn(p) > y(q) / rn(q); });
  Vec<T> w = Vec<T>::Zero(m);
  for (Eigen::Index t = 0; t < k; ++t) w(idx[std::size_t(t)]) = 1 / (rn(idx[std::size_t(t)]) * rn(idx[std::size_t(t)]));
  return dense_real_form(a, w);
}

/// A GaussianReal seen only through apply/adjoint and its sizes (no matrix()): exercises the
/// matrix-free paths.
struct OpaqueReal {
  using scalar = T;
  const GaussianReal<T>* a;
  Eigen::Index input_size() const { return a->input_size(); }
  Eigen::Index output_size() const { return a->output_size(); }
  Mat<T> apply(const Mat<T>& x) const { return a->apply(x); }
  Mat<T> adjoint(const Mat<T>& u) const { return a->adjoint(u); }
};
static_assert(MeasurementOperator<OpaqueReal>);

template <class Op>
struct Problem {
  Op A;
  Mat<T> x, y;
  explicit Problem(std::uint64_t seed) : A(kM, kN, seed) {
    Rng rng(seed + 100);
    x = rng.normal_matrix<T>(kN, kB);
    y = measure(A, x);
  }
};

}  // namespace

TEST_CASE("Gaussian baselines: spectral init is the leading eigenvector of Re Y and correlates with the truth") {
  for (bool complex_op : {false, true}) {
    CAPTURE(complex_op);
    auto check = [&](const auto& p) {
      for (double trunc : {0.0, 3.0}) {
        CAPTURE(trunc);
        Rng rng(9);
        int calls = 0;
        SpectralOptions o{.iterations = 200, .truncation = trunc, .progress = [&](const Progress& pr) {
                            ++calls;
                            CHECK(pr.method == "spectral");
                          }};
        const Mat<T> x0 = spectral_init(p.A, p.y, o, rng);
        CHECK(calls == 20);
        REQUIRE(x0.rows() == kN);
        REQUIRE(x0.cols() == kB);
        const T frob2 = p.A.matrix().cwiseAbs2().sum();
        for (Eigen::Index j = 0; j < kB; ++j) {
          // the direction: the dense leading eigenvector of Re Aᴴ diag(w) A, w_i = y_i² (truncated)
          Vec<T> w = p.y.col(j).array().square();
          if (trunc > 0) {
            const T bound = trunc * std::sqrt(w.mean());
            for (Eigen::Index i = 0; i < kM; ++i)
              if (p.y(i, j) > bound) w(i) = 0;
            // y_i² is χ²₁-distributed for real A: the truncation removes a few terms; it is
            // exponential for complex A and removes none here (P(y_i² > 9·mean) ≈ 1e-4)
            if (!complex_op) CHECK(w.cwiseEqual(0).count() > 0);
          }
          const Vec<T> v = leading_eigenvector(dense_real_form(p.A.matrix(), w));
          CHECK(std::abs(v.dot(x0.col(j))) / x0.col(j).norm() > 1 - 1e-8);
          // the norm: √(n‖y‖²/‖A‖_F²), within 15% of ‖x‖ here
          CHECK(x0.col(j).norm() ==
                doctest::Approx(std::sqrt(T(kN) * p.y.col(j).squaredNorm() / frob2)).epsilon(1e-10));
          CHECK(x0.col(j).norm() / p.x.col(j).norm() == doctest::Approx(1.0).epsilon(0.15));
        }
        const Vec<T> c = correlation(x0, p.x);
        MESSAGE(std::string(complex_op ? "complex" : "real")
                << " spectral (truncation " << trunc << ") correlation min " << c.minCoeff() << " mean " << c.mean());
        CHECK(c.minCoeff() > 0.7);  // a random direction in ℝ^64 has ~0.125
      }
    };
    if (complex_op)
      check(Problem<GaussianComplex<T>>(2));
    else
      check(Problem<GaussianReal<T>>(1));
  }
}

TEST_CASE("Gaussian baselines: orthogonality init selects the rows nearest x, also matrix-free") {
  const Problem<GaussianReal<T>> p(1);
  const Mat<T> x0 = orthogonality_init(p.A, p.y, OrthogonalityOptions{.iterations = 200});
  for (Eigen::Index j = 0; j < kB; ++j) {
    const Vec<T> v = leading_eigenvector(dense_orthogonality_matrix(p.A.matrix(), Vec<T>(p.y.col(j))));
    CHECK(std::abs(v.dot(x0.col(j))) / x0.col(j).norm() > 1 - 1e-8);
  }
  const Vec<T> c = correlation(x0, p.x);
  MESSAGE("real orthogonality init correlation min " << c.minCoeff() << " mean " << c.mean());
  CHECK(c.minCoeff() > 0.75);
  // the operator without matrix(): row norms from applies to the identity, same start
  const OpaqueReal op{&p.A};
  CHECK((detail::row_norms_squared(op) - p.A.matrix().rowwise().squaredNorm()).cwiseAbs().maxCoeff() < 1e-12);
  const Mat<T> x1 = orthogonality_init(op, p.y, OrthogonalityOptions{.iterations = 200});
  CHECK((x1 - x0).cwiseAbs().maxCoeff() < 1e-10);
  // the overload with an Rng draws the same start as the one seeded from options.seed
  Rng rng(0);
  CHECK((orthogonality_init(p.A, p.y, OrthogonalityOptions{.iterations = 200}, rng) - x0).cwiseAbs().maxCoeff() == 0);
}

TEST_CASE("Gaussian baselines: Wirtinger flow from the spectral start recovers real x up to sign") {
  const Problem<GaussianReal<T>> p(1);
  Rng rng(9);
  const Mat<T> x0 = spectral_init(p.A, p.y, SpectralOptions{}, rng);
  int calls = 0;
  WirtingerFlowOptions<T> o;
  o.progress = [&](const Progress& pr) {
    ++calls;
    CHECK(pr.method == "wf");
  };
  const auto r = wirtinger_flow(p.A, p.y, x0, o);
  const Vec<T> e = sign_error(r.x, p.x);
  MESSAGE("real WF, " << o.iterations << " iterations: max relative error " << e.maxCoeff() << ", start's "
                      << sign_error(x0, p.x).maxCoeff());
  CHECK(e.maxCoeff() <= 1e-5);
  CHECK(sign_error(x0, p.x).minCoeff() > 0.3);  // the start itself is far from x
  // magnitude error ‖|Ax| − y‖²/m, as the magnitude loss computes it
  REQUIRE(r.magnitude_error.size() == kB);
  const Vec<T> ref = MagnitudeLoss<GaussianReal<T>>(p.A, p.y).value(r.x) / T(kM);
  CHECK(r.magnitude_error.isApprox(ref, 1e-12));
  CHECK(r.magnitude_error.maxCoeff() < 1e-12);
  CHECK(calls == 50);
  REQUIRE(r.history.rows() == 50);
  CHECK(r.history_steps.back() == 500);
  for (Eigen::Index j = 0; j < kB; ++j) CHECK(r.history(49, j) < 1e-8 * r.history(0, j));
  // fewer steps: a larger error (the iteration count matters)
  const auto short_run = wirtinger_flow(p.A, p.y, x0, WirtingerFlowOptions<T>{.iterations = 50, .history_stride = 0});
  CHECK(sign_error(short_run.x, p.x).maxCoeff() > 1e-4);
  CHECK(short_run.history.rows() == 0);
}

TEST_CASE("Gaussian baselines: truncated amplitude flow from the orthogonality start recovers real x up to sign") {
  const Problem<GaussianReal<T>> p(1);
  const Mat<T> x0 = orthogonality_init(p.A, p.y);
  const auto r = truncated_amplitude_flow(p.A, p.y, x0, AmplitudeFlowOptions<T>{.iterations = 200});
  const Vec<T> e = sign_error(r.x, p.x);
  MESSAGE("real TAF, 200 iterations: max relative error " << e.maxCoeff() << ", start's "
                                                          << sign_error(x0, p.x).maxCoeff());
  CHECK(e.maxCoeff() <= 1e-5);
  CHECK(r.magnitude_error.maxCoeff() < 1e-12);
  CHECK(r.history.rows() == 20);
  // zero iterations return the start and its magnitude error
  const auto r0 = truncated_amplitude_flow(p.A, p.y, x0, AmplitudeFlowOptions<T>{.iterations = 0});
  CHECK(r0.x == x0);
  CHECK(r0.magnitude_error.isApprox(MagnitudeLoss<GaussianReal<T>>(p.A, p.y).value(x0) / T(kM), 1e-12));
  CHECK(r0.magnitude_error.minCoeff() > 1e-2);
  // TAF converges from the spectral start as well
  Rng rng(9);
  const Mat<T> xs = spectral_init(p.A, p.y, SpectralOptions{}, rng);
  CHECK(sign_error(truncated_amplitude_flow(p.A, p.y, xs).x, p.x).maxCoeff() <= 1e-5);
}

TEST_CASE("Gaussian baselines: WF and TAF recover real x through a complex Gaussian operator") {
  const Problem<GaussianComplex<T>> p(2);
  Rng rng(9);
  const Mat<T> xs = spectral_init(p.A, p.y, SpectralOptions{}, rng);
  const auto wf = wirtinger_flow(p.A, p.y, xs);
  const Mat<T> xo = orthogonality_init(p.A, p.y);
  for (Eigen::Index j = 0; j < kB; ++j) {
    const Vec<T> v = leading_eigenvector(dense_orthogonality_matrix(p.A.matrix(), Vec<T>(p.y.col(j))));
    CHECK(std::abs(v.dot(xo.col(j))) / xo.col(j).norm() > 1 - 1e-8);
  }
  const auto taf = truncated_amplitude_flow(p.A, p.y, xo);
  MESSAGE("complex WF max relative error " << sign_error(wf.x, p.x).maxCoeff() << ", TAF "
                                           << sign_error(taf.x, p.x).maxCoeff() << "; orthogonality correlation min "
                                           << correlation(xo, p.x).minCoeff());
  CHECK(correlation(xo, p.x).minCoeff() > 0.75);
  CHECK(sign_error(wf.x, p.x).maxCoeff() <= 1e-5);
  CHECK(sign_error(taf.x, p.x).maxCoeff() <= 1e-5);
  CHECK(wf.magnitude_error.maxCoeff() < 1e-12);
  CHECK(taf.magnitude_error.maxCoeff() < 1e-12);
}

TEST_CASE("Gaussian baselines: single precision") {
  GaussianReal<float> A(kM, kN, 1);
  Rng rng(5);
  const Mat<float> x = rng.normal_matrix<float>(kN, 4);
  const Mat<float> y = measure(A, x);
  const auto taf = truncated_amplitude_flow(A, y, orthogonality_init(A, y));
  const auto wf = wirtinger_flow(A, y, spectral_init(A, y, SpectralOptions{}, rng));
  CHECK(sign_error(taf.x, x).maxCoeff() <= 1e-5f);
  CHECK(sign_error(wf.x, x).maxCoeff() <= 1e-5f);
}

TEST_CASE("Gaussian baselines: spectral init, WF and TAF reject bad input with messages naming it") {
  const GaussianReal<T> A(40, 10, 3);
  Rng rng(1);
  const Mat<T> y = measure(A, rng.normal_matrix<T>(10, 2));
  const Mat<T> x0 = Mat<T>::Ones(10, 2);
  Mat<T> ynan = y;
  ynan(3, 1) = std::nan("");
  Mat<T> yneg = y;
  yneg(0, 0) = -1;
  const Mat<T> yshort = y.topRows(39);

  CHECK_THROWS_WITH_AS(spectral_init(A, yshort, SpectralOptions{}, rng),
                       doctest::Contains("spectral_init measurements y: expected a 40x2"), invalid_input);
  CHECK_THROWS_WITH_AS(spectral_init(A, ynan, SpectralOptions{}, rng), doctest::Contains("NaN"), invalid_input);
  CHECK_THROWS_WITH(spectral_init(A, yneg, SpectralOptions{}, rng), doctest::Contains("non-negative"));
  CHECK_THROWS_WITH(spectral_init(A, y, SpectralOptions{.iterations = 0}, rng), doctest::Contains("iterations"));
  CHECK_THROWS_WITH(spectral_init(A, y, SpectralOptions{.truncation = -1}, rng), doctest::Contains("truncation"));

  CHECK_THROWS_WITH(orthogonality_init(A, ynan), doctest::Contains("orthogonality_init measurements y"));
  CHECK_THROWS_WITH(orthogonality_init(A, y, OrthogonalityOptions{.fraction = 0}), doctest::Contains("fraction"));
  CHECK_THROWS_WITH(orthogonality_init(A, y, OrthogonalityOptions{.fraction = 1.5}), doctest::Contains("fraction"));

  CHECK_THROWS_WITH(wirtinger_flow(A, ynan, x0), doctest::Contains("wirtinger_flow measurements y"));
  CHECK_THROWS_WITH(wirtinger_flow(A, y, Mat<T>::Ones(10, 3)),
                    doctest::Contains("wirtinger_flow start x0: expected a 10x2"));
  CHECK_THROWS_WITH(wirtinger_flow(A, y, Mat<T>::Ones(9, 2)), doctest::Contains("wirtinger_flow start x0"));
  Mat<T> xnan = x0;
  xnan(0, 0) = std::nan("");
  CHECK_THROWS_WITH(wirtinger_flow(A, y, xnan), doctest::Contains("wirtinger_flow start x0: contains NaN"));
  CHECK_THROWS_WITH(wirtinger_flow(A, y, x0, WirtingerFlowOptions<T>{.mu_max = 0}), doctest::Contains("mu_max"));
  CHECK_THROWS_WITH(wirtinger_flow(A, y, x0, WirtingerFlowOptions<T>{.iterations = -1}),
                    doctest::Contains("iterations"));

  CHECK_THROWS_WITH(truncated_amplitude_flow(A, yneg, x0),
                    doctest::Contains("truncated_amplitude_flow measurements y"));
  CHECK_THROWS_WITH(truncated_amplitude_flow(A, y, xnan), doctest::Contains("truncated_amplitude_flow start x0"));
  CHECK_THROWS_WITH(truncated_amplitude_flow(A, y, x0, AmplitudeFlowOptions<T>{.step = -0.5}),
                    doctest::Contains("step"));
  CHECK_THROWS_WITH(truncated_amplitude_flow(A, y, x0, AmplitudeFlowOptions<T>{.gamma = -1}),
                    doctest::Contains("gamma"));

  // degenerate but valid: an all-zero measurement column gives a zero start and stays at zero
  Mat<T> yz = y;
  yz.col(1).setZero();
  const Mat<T> s = spectral_init(A, yz, SpectralOptions{}, rng);
  CHECK(s.col(1).norm() == 0);
  CHECK(s.allFinite());
  const auto w = wirtinger_flow(A, yz, s);
  CHECK(w.x.allFinite());
  CHECK(w.x.col(1).norm() == 0);
}

TEST_CASE("Gaussian baselines: Wirtinger flow stays finite and monotone when m < n") {
  // with fewer measurements than unknowns the plain step schedule diverges (it did, to NaN,
  // on MNIST at m = 200 < 784); the safeguard refuses steps that raise the objective
  const Eigen::Index n = 64, m = 40;
  GaussianReal<T> op(m, n, 9);
  Rng rng(4);
  const Mat<T> x = rng.normal_matrix<T>(n, 3);
  const Mat<T> y = measure(op, x);
  const Mat<T> x0 = spectral_init(op, y, SpectralOptions{}, rng);
  MagnitudeLoss<GaussianReal<T>> loss(op, y);
  const Vec<T> start = loss.value(x0) / T(m);
  const auto r = wirtinger_flow(op, y, x0, WirtingerFlowOptions<T>{.iterations = 300, .history_stride = 1});
  CHECK(r.x.allFinite());
  CHECK((r.magnitude_error.array() < start.array()).all());
  // the WF objective Σ_i (|a_i·x|² − y_i²)² never rises: the safeguard keeps a step only where it
  // does not. The flow is deterministic, so the run of k iterations is the first k of the run of
  // k + 1 (its magnitude loss is the history's k-th row, checked), and the objective of each
  // run's end is the one after k iterations
  auto objective = [&](const Mat<T>& xk) {
    return Vec<T>((op.apply(xk).array().square() - y.array().square()).square().colwise().sum().transpose());
  };
  REQUIRE(r.history.rows() == 300);
  REQUIRE(r.history_steps.front() == 1);
  Vec<T> before = objective(x0);
  for (int k = 1; k <= 300; ++k) {
    CAPTURE(k);
    const auto rk = wirtinger_flow(op, y, x0, WirtingerFlowOptions<T>{.iterations = k, .history_stride = 0});
    const Vec<T> l = loss.value(rk.x);
    CHECK(((l - r.history.row(k - 1).transpose()).array().abs() <= 1e-12 * (1 + l.array())).all());
    const Vec<T> after = objective(rk.x);
    CHECK((after.array() <= before.array() * (1 + 1e-12)).all());
    before = after;
  }
  // and on this problem the magnitude loss's history falls at every step too (measured: no
  // rise in any column), from below the start's
  for (Eigen::Index j = 0; j < r.x.cols(); ++j) {
    INFO("column " << j);
    CHECK(r.history(0, j) <= T(m) * start(j) * (1 + 1e-12));
    for (Eigen::Index k = 1; k < r.history.rows(); ++k) CHECK(r.history(k, j) <= r.history(k - 1, j) * (1 + 1e-12));
  }
}

TEST_CASE("Gaussian baselines: truncated amplitude flow stays finite and lowers its loss when m < n") {
  const Eigen::Index n = 64, m = 40;
  GaussianReal<T> op(m, n, 9);
  Rng rng(4);
  const Mat<T> x = rng.normal_matrix<T>(n, 3);
  const Mat<T> y = measure(op, x);
  const Mat<T> x0 = orthogonality_init(op, y, OrthogonalityOptions{}, rng);
  MagnitudeLoss<GaussianReal<T>> loss(op, y);
  const Vec<T> start = loss.value(x0) / T(m);
  const auto r = truncated_amplitude_flow(op, y, x0, AmplitudeFlowOptions<T>{.iterations = 300, .history_stride = 1});
  CHECK(r.x.allFinite());
  CHECK((r.magnitude_error.array() < start.array()).all());
  for (Eigen::Index j = 0; j < r.x.cols(); ++j) {
    INFO("column " << j);
    // the amplitude loss never rises: every recorded value is at most the one before
    for (Eigen::Index k = 1; k < r.history.rows(); ++k) CHECK(r.history(k, j) <= r.history(k - 1, j) * (1 + 1e-12));
  }
}

TEST_CASE("Gaussian baselines: an empty batch with progress reports NaN means, not a read of nothing") {
  const GaussianReal<T> A(40, 10, 3);
  Rng rng(1);
  const Mat<T> y0(40, 0);
  std::vector<double> means;
  const ProgressFn report = [&](const Progress& e) { means.push_back(e.mean_loss); };
  SpectralOptions so;
  so.iterations = 3;
  so.progress = report;
  CHECK(spectral_init(A, y0, so, rng).cols() == 0);
  WirtingerFlowOptions<T> wo;
  wo.iterations = 3;
  wo.history_stride = 1;
  wo.progress = report;
  CHECK(wirtinger_flow(A, y0, Mat<T>(10, 0), wo).x.cols() == 0);
  REQUIRE_FALSE(means.empty());
  for (const double m : means) CHECK(std::isnan(m));
}

}  // namespace prilo_test_gaussian_baselines

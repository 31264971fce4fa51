// The conformance checkers (prilo/testing/checkers.hpp) pass every shipped generator,
// operator and projection, and catch deliberately wrong ones.
#include <doctest/doctest.h>

#include <prilo/prilo.hpp>
#include <prilo/testing/checkers.hpp>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_conformance {

using namespace prilo;
using namespace prilo::nn;
using T = double;

namespace {
/// A Gaussian operator whose adjoint is off by 1 %: the dot-product test must see it.
struct BadAdjoint {
  using scalar = T;
  GaussianReal<T> a{12, 9, 4};
  Eigen::Index input_size() const { return 9; }
  Eigen::Index output_size() const { return 12; }
  template <class S>
  Mat<S> apply(const Mat<S>& x) const {
    return a.apply(x);
  }
  template <class S>
  Mat<S> adjoint(const Mat<S>& u) const {
    return a.adjoint(u) * S(1.01);
  }
};
/// A generator whose input VJP is 1 % too large.
template <class G>
struct BadVjp {
  using scalar = typename G::scalar;
  using trace_type = typename G::trace_type;
  G& g;
  int depth() const { return g.depth(); }
  Eigen::Index dim(int i) const { return g.dim(i); }
  Mat<T> forward(int i, int j, const Mat<T>& z) const { return g.forward(i, j, z); }
  void forward(int i, int j, const Mat<T>& z, trace_type& tr) const { g.forward(i, j, z, tr); }
  Mat<T> forward_from(int i, const Mat<T>& z) const { return g.forward_from(i, z); }
  Mat<T> vjp_input(const trace_type& tr, const Mat<T>& c) const { return g.vjp_input(tr, c) * 1.01; }
  Mat<T> vjp_weights(const trace_type& tr, const Mat<T>& c) { return g.vjp_weights(tr, c); }
};
/// Shrinks towards the centre by half: never a projection (not idempotent).
struct HalfWay {
  void project(Eigen::Ref<Mat<T>> x, const Eigen::Ref<const Mat<T>>& c) const {
    for (Eigen::Index j = 0; j < x.cols(); ++j) x.col(j) = (x.col(j) + c.col(c.cols() == 1 ? 0 : j)) / 2;
  }
};
}  // namespace

TEST_CASE("conformance: shipped generators pass at every pair of split points") {
  Rng rng(7);
  Vae<T> vae(30, 20, 6, 3);
  auto r = testing::check_generator(vae.decoder(), 3, rng);
  INFO(r.failures);
  CHECK(r.ok);
  auto net = make_sequential(5, Dense<T, LeakyRelu>(5, 9, rng), Linear<T>(9, 7, rng), TanhLayer<T>{},
                             Dense<T, Sigmoid>(7, 6, rng));
  auto r2 = testing::check_generator(net, 2, rng);
  INFO(r2.failures);
  CHECK(r2.ok);
  static_assert(Generator<BadVjp<decltype(net)>>);
  BadVjp<decltype(net)> bad{net};
  const auto rb = testing::check_generator(bad, 2, rng);
  CHECK_FALSE(rb.ok);
  CHECK(rb.failures.find("vjp_input") != std::string::npos);
}

TEST_CASE("conformance: shipped operators pass, a wrong adjoint fails") {
  Rng rng(8);
  auto check = [&](const auto& op) {
    auto r = testing::check_operator(op, 2, rng);
    INFO(r.failures);
    CHECK(r.ok);
  };
  check(Fourier2d<T>(6, 5));
  check(Fourier2d<T>(6, 5, FourierScaling::none));
  check(GaussianReal<T>(30, 12, 1));
  check(GaussianComplex<T>(30, 12, 2));
  check(compose(Fourier2d<T>(8, 10), ZeroPad<T>(4, 5, 8, 10)));
  check(compose(Fourier2d<T>(4, 5), ComplexMask<T>::random_phase(20, 2)));
  auto bad = testing::check_operator(BadAdjoint{}, 2, rng);
  CHECK_FALSE(bad.ok);
  CHECK(bad.failures.find("dot-product") != std::string::npos);
  // the loss's gradient goes through the adjoint: 1 % off, far above the check's 1e-5
  CHECK(bad.failures.find("finite differences") != std::string::npos);
}

TEST_CASE("conformance: shipped projections pass, a non-projection fails") {
  Rng rng(9);
  auto check = [&](const auto& p) {
    auto r = testing::check_projection<T>(p, 17, 4, rng);
    INFO(r.failures);
    CHECK(r.ok);
  };
  check(L1Ball<T>{.radius = 2.5});
  check(L1Ball<T, l1::condat>{.radius = 2.5});
  check(L1Ball<T, l1::duchi>{.radius = 2.5});
  check(L2Ball<T>{.radius = 1.5});
  check(Box<T>{.lo = -0.5, .hi = 0.5});
  check(NoProjection{});
  auto bad = testing::check_projection<T>(HalfWay{}, 17, 4, rng);
  CHECK_FALSE(bad.ok);
}

}  // namespace prilo_test_conformance

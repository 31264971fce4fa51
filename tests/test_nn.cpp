// Layers and Sequential: vector-Jacobian products against finite differences.
#include <doctest/doctest.h>

#include <prilo/nn.hpp>
#include <prilo/testing/checkers.hpp>

using namespace prilo;
using namespace prilo::nn;

namespace {
// Checks input and weight VJPs of a module m through the scalar L = ⟨c, m(x)⟩.
template <class M>
void check_module(M& m, Eigen::Index in, Rng& rng, bool has_weights) {
  using T = double;
  Mat<T> x = rng.normal_matrix<T>(in, 4);
  Mat<T> y;
  m.forward(x, y);
  Mat<T> c = rng.normal_matrix<T>(y.rows(), y.cols());
  auto f = [&](const Mat<T>& v) {
    Mat<T> o;
    m.forward(v, o);
    return (o.array() * c.array()).sum();
  };
  auto g = [&](const Mat<T>& v, Mat<T>& out) {
    Mat<T> o;
    m.forward(v, o);
    m.backward(v, o, c, &out, false);
  };
  auto r = testing::check_gradient<T>(f, g, x, rng, 6, 1e-6, 1e-6);
  INFO("input VJP relative error " << r.max_rel_error);
  CHECK(r.ok);
  if (!has_weights) return;
  m.zero_grad();
  m.backward(x, y, c, nullptr, true);
  for (auto& p : m.parameters()) {
    Mat<T> w0 = p.value;
    Mat<T> gw = p.grad;
    auto fw = [&](const Mat<T>& w) {
      p.value = w;
      Mat<T> o;
      m.forward(x, o);
      p.value = w0;
      return (o.array() * c.array()).sum();
    };
    auto gwf = [&](const Mat<T>&, Mat<T>& out) { out = gw; };
    auto rw = testing::check_gradient<T>(fw, gwf, w0, rng, 6, 1e-6, 1e-6);
    INFO(p.name << " VJP relative error " << rw.max_rel_error);
    CHECK(rw.ok);
  }
}
}  // namespace

TEST_CASE("Every layer's input and weight VJPs match finite differences") {
  Rng rng(10);
  Linear<double> lin(7, 5, rng);
  check_module(lin, 7, rng, true);
  Dense<double, Relu> dr(7, 5, rng);
  check_module(dr, 7, rng, true);
  Dense<double, Sigmoid> ds(6, 4, rng);
  check_module(ds, 6, rng, true);
  Dense<double, Tanh> dt(6, 4, rng);
  check_module(dt, 6, rng, true);
  Dense<double, LeakyRelu> dl(6, 4, rng);
  check_module(dl, 6, rng, true);
  ReLU<double> relu;
  check_module(relu, 9, rng, false);
  LeakyReLU<double> lrelu;
  check_module(lrelu, 9, rng, false);
  SigmoidLayer<double> sig;
  check_module(sig, 9, rng, false);
  TanhLayer<double> th;
  check_module(th, 9, rng, false);
}

TEST_CASE("Linear initialisation follows PyTorch's U(-1/sqrt(in), 1/sqrt(in))") {
  Rng rng(11);
  Linear<double> lin(400, 300, rng);
  const double bound = 1.0 / 20.0;
  CHECK(lin.weight().maxCoeff() <= bound);
  CHECK(lin.weight().minCoeff() >= -bound);
  CHECK(lin.weight().maxCoeff() > 0.99 * bound);
  // variance of U(-b, b) is b²/3
  CHECK(lin.weight().squaredNorm() / lin.weight().size() == doctest::Approx(bound * bound / 3).epsilon(0.02));
  CHECK(std::abs(lin.bias().mean()) < 0.01);
}

TEST_CASE("A sequential network's VJPs match finite differences from every split point") {
  Rng rng(12);
  auto net = make_sequential(6, Dense<double, Relu>(6, 8, rng), Linear<double>(8, 7, rng), TanhLayer<double>{},
                             Dense<double, LeakyRelu>(7, 5, rng), Dense<double, Sigmoid>(5, 4, rng));
  static_assert(Generator<decltype(net)>);
  CHECK(net.depth() == 5);
  CHECK(net.dim(0) == 6);
  CHECK(net.dim(3) == 7);
  CHECK(net.dim(5) == 4);
  for (int i = 0; i < net.depth(); ++i) {
    for (int j = i + 1; j <= net.depth(); ++j) {
      Mat<double> z = rng.normal_matrix<double>(net.dim(i), 3);
      Mat<double> c = rng.normal_matrix<double>(net.dim(j), 3);
      auto f = [&](const Mat<double>& v) { return (net.forward(i, j, v).array() * c.array()).sum(); };
      auto g = [&](const Mat<double>& v, Mat<double>& out) {
        Trace<double> tr;
        net.forward(i, j, v, tr);
        out = net.vjp_input(tr, c);
      };
      auto r = testing::check_gradient<double>(f, g, z, rng, 4, 1e-6, 1e-6);
      CAPTURE(i);
      CAPTURE(j);
      CHECK(r.ok);
    }
    // forward_from(i) composes with forward(0, i)
    Mat<double> z0 = rng.normal_matrix<double>(6, 2);
    CHECK((net.forward_from(i, net.forward(0, i, z0)) - net(z0)).norm() < 1e-12);
  }
  // weight VJP through the whole network
  Mat<double> z = rng.normal_matrix<double>(6, 3);
  Mat<double> c = rng.normal_matrix<double>(4, 3);
  net.zero_grad();
  Trace<double> tr;
  net.forward(0, net.depth(), z, tr);
  net.vjp_weights(tr, c);
  auto params = net.parameters();
  CHECK(params.size() == 8);
  for (auto& p : params) {
    Mat<double> w0 = p.value, gw = p.grad;
    auto fw = [&](const Mat<double>& w) {
      p.value = w;
      double v = (net(z).array() * c.array()).sum();
      p.value = w0;
      return v;
    };
    auto gf = [&](const Mat<double>&, Mat<double>& out) { out = gw; };
    CHECK(testing::check_gradient<double>(fw, gf, w0, rng, 4, 1e-6, 1e-6).ok);
  }
}

TEST_CASE("Sequential rejects bad split points and sizes") {
  Rng rng(13);
  auto net = make_sequential(3, Dense<double, Relu>(3, 4, rng), Linear<double>(4, 2, rng));
  CHECK_THROWS_WITH(net.forward(0, 3, Mat<double>::Ones(3, 1)), doctest::Contains("split point 3 outside 0..2"));
  CHECK_THROWS_WITH(net.forward(2, 1, Mat<double>::Ones(2, 1)), doctest::Contains("after its end"));
  CHECK_THROWS_WITH(net.forward(0, 2, Mat<double>::Ones(5, 1)), doctest::Contains("expected a 3x1 matrix, got 5x1"));
  CHECK_THROWS_WITH(Linear<double>(0, 2, rng), doctest::Contains("positive"));
}

// Layers and Sequential: vector-Jacobian products against finite differences.
#include <doctest/doctest.h>

#include <prilo/io/weights.hpp>
#include <prilo/nn.hpp>
#include <prilo/nn/state_io.hpp>
#include <prilo/testing/checkers.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_nn {

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
  // the const input-only VJP gives the same cotangent, bit for bit
  Mat<T> gx_full, gx_input, work;
  m.backward(x, y, c, &gx_full, false);
  std::as_const(m).backward_input(x, y, c, gx_input, work);
  CHECK(gx_input == gx_full);
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

/// A test-only module with three parameter tensors and a buffer: y = a ⊙ (W x) + b − o, with
/// parameters W ("weight"), a ("scale"), b ("shift") and the buffer o ("offset", saved but
/// not trained, as a batch norm's running mean).
template <class T>
struct ScaledLinear {
  using scalar = T;
  Mat<T> w, gw, a, ga, b, gb, offset;

  ScaledLinear(Eigen::Index in, Eigen::Index out, Rng& rng)
      : w(rng.normal_matrix<T>(out, in)),
        gw(Mat<T>::Zero(out, in)),
        a(rng.normal_matrix<T>(out, 1)),
        ga(Mat<T>::Zero(out, 1)),
        b(rng.normal_matrix<T>(out, 1)),
        gb(Mat<T>::Zero(out, 1)),
        offset(Mat<T>::Zero(out, 1)) {}

  Eigen::Index output_size(Eigen::Index in) const {
    if (in != w.cols()) prilo::detail::fail("ScaledLinear: expects ", w.cols(), " inputs, got ", in);
    return w.rows();
  }
  void forward(const Mat<T>& x, Mat<T>& y) const {
    y = a.col(0).asDiagonal() * (w * x);
    y.colwise() += b.col(0) - offset.col(0);
  }
  void backward_input(const Mat<T>&, const Mat<T>&, const Mat<T>& gy, Mat<T>& gx, Mat<T>& work) const {
    work = a.col(0).asDiagonal() * gy;
    gx = w.transpose() * work;
  }
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool accumulate_weights) {
    Mat<T> work;
    if (accumulate_weights) {
      ga += (gy.array() * (w * x).array()).rowwise().sum().matrix();
      gb += gy.rowwise().sum();
      gw += (a.col(0).asDiagonal() * gy) * x.transpose();
    }
    if (gx) backward_input(x, y, gy, *gx, work);
  }
  ParamList<T> parameters() {
    return {{"weight", map(w), map(gw)}, {"scale", map(a), map(ga)}, {"shift", map(b), map(gb)}};
  }
  BufferList<T> buffers() { return {{"offset", map(offset)}}; }
  void zero_grad() {
    gw.setZero();
    ga.setZero();
    gb.setZero();
  }

 private:
  static Eigen::Map<Mat<T>> map(Mat<T>& m) { return Eigen::Map<Mat<T>>(m.data(), m.rows(), m.cols()); }
};
static_assert(Module<ScaledLinear<double>>);

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
  {
    Mat<double> gx, unused;  // an output and a cotangent of other shapes are refused
    const Mat<double> y = Mat<double>::Ones(9, 2), gy = Mat<double>::Ones(9, 3);
    CHECK_THROWS_WITH(lrelu.backward_input(y, y, gy, gx, unused),
                      "Activation::backward_input: output 9x2 and its cotangent 9x3 differ");
  }
  SigmoidLayer<double> sig;
  check_module(sig, 9, rng, false);
  TanhLayer<double> th;
  check_module(th, 9, rng, false);
  ScaledLinear<double> sl(6, 4, rng);
  sl.offset = rng.normal_matrix<double>(4, 1);
  check_module(sl, 6, rng, true);
}

namespace counting {
// An executor that runs the CPU forms and counts the customisation points a layer calls: the
// layer's bodies are written over them alone (found here by argument-dependent lookup).
struct Counts {
  int gemm = 0, bias_activation = 0, activation_cotangent = 0, add_row_sums = 0, set_zero = 0;
};
struct Executor {
  using backend = prilo::cpu;
  template <class T>
  using matrix = Mat<T>;
  template <class T>
  using vector = Vec<T>;
  Counts* counts = nullptr;
};
template <class T>
void gemm(const Executor& e, bool ta, bool tb, T alpha, const Mat<T>& a, const Mat<T>& b, T beta, Mat<T>& c) {
  ++e.counts->gemm;
  prilo::gemm(CpuExecutor{}, ta, tb, alpha, a, b, beta, c);
}
template <class T, class Act>
void bias_activation(const Executor& e, Act act, Mat<T>& y, const Vec<T>& b) {
  ++e.counts->bias_activation;
  prilo::bias_activation(CpuExecutor{}, act, y, b);
}
template <class T, class Act>
void activation_cotangent(const Executor& e, Act act, const Mat<T>& y, const Mat<T>& gy, Mat<T>& out) {
  ++e.counts->activation_cotangent;
  prilo::activation_cotangent(CpuExecutor{}, act, y, gy, out);
}
template <class T>
void add_row_sums(const Executor& e, const Mat<T>& g, Vec<T>& gb) {
  ++e.counts->add_row_sums;
  prilo::add_row_sums(CpuExecutor{}, g, gb);
}
template <class Derived>
void set_zero(const Executor& e, Eigen::MatrixBase<Derived>& m) {
  ++e.counts->set_zero;
  m.setZero();
}
template <class T>
Mat<T> zeros(const Executor&, Eigen::Index rows, Eigen::Index cols) {
  return Mat<T>::Zero(rows, cols);
}
template <class T>
Mat<T> from_host(const Executor&, const Mat<T>& m) {
  return m;
}
template <class T>
Mat<T> to_host(const Executor&, const Mat<T>& m) {
  return m;
}
}  // namespace counting

static_assert(std::is_same_v<Dense<float, Relu>, Dense<float, Relu, CpuExecutor>>, "nn::Dense is the CPU layer");
static_assert(std::is_same_v<Dense<double, Relu>::vector_type, Vec<double>>);
static_assert(Module<Dense<float, Sigmoid, counting::Executor>>, "a layer on a host executor is a module");

template <class T, class Act>
void check_dense_over_executor(std::uint64_t seed) {
  const std::string act = Act::name;
  CAPTURE(act);
  Rng rng(seed);
  const Eigen::Index in = 9, out = 6, batch = 5;
  Dense<T, Act> host(in, out, rng);
  counting::Counts n;
  Dense<T, Act, counting::Executor> layer(host, counting::Executor{&n});
  CHECK(layer.weight() == host.weight());
  CHECK(layer.bias() == host.bias());
  CHECK(layer.grad_weight().isZero(0));
  const Mat<T> x = rng.normal_matrix<T>(in, batch), gy = rng.normal_matrix<T>(out, batch);
  const int act_passes = std::is_same_v<Act, Identity> ? 0 : 1;  // the identity's g is gy itself

  // forward: one product and one fused bias + activation pass, the CPU layer's result bit for bit
  Mat<T> y0, y1;
  host.forward(x, y0);
  n = {};
  layer.forward(x, y1);
  CHECK(n.gemm == 1);
  CHECK(n.bias_activation == 1);
  CHECK(n.activation_cotangent + n.add_row_sums + n.set_zero == 0);
  CHECK(y1 == y0);

  // input VJP: at most one activation pass and one product
  Mat<T> gx0, gx1, work0, work1;
  host.backward_input(x, y0, gy, gx0, work0);
  n = {};
  layer.backward_input(x, y1, gy, gx1, work1);
  CHECK(n.gemm == 1);
  CHECK(n.activation_cotangent == act_passes);
  CHECK(n.bias_activation + n.add_row_sums + n.set_zero == 0);
  CHECK(gx1 == gx0);

  // training VJP, twice (accumulates): one product for the weights, a row sum for the bias,
  // one product for the input
  n = {};
  layer.zero_grad();
  CHECK(n.set_zero == 2);
  host.zero_grad();
  for (int rep = 0; rep < 2; ++rep) {
    host.backward(x, y0, gy, &gx0, true);
    n = {};
    layer.backward(x, y1, gy, &gx1, true);
    CHECK(n.gemm == 2);
    CHECK(n.add_row_sums == 1);
    CHECK(n.activation_cotangent == act_passes);
    CHECK(gx1 == gx0);
  }
  CHECK(layer.grad_weight() == host.grad_weight());
  CHECK(layer.grad_bias() == host.grad_bias());
  n = {};
  layer.backward(x, y1, gy, nullptr, false);
  CHECK(n.gemm == 0);
  CHECK(n.add_row_sums == 0);
  CHECK(layer.grad_weight() == host.grad_weight());
  CHECK_THROWS_AS(layer.backward(x, y1, Mat<T>(Mat<T>::Zero(out + 1, batch)), &gx1, true), invalid_input);
  CHECK_THROWS_AS(layer.forward(Mat<T>(Mat<T>::Zero(in + 1, batch)), y1), invalid_input);

  // back to the CPU, and the same initial draws on every executor
  Rng other(seed + 100);
  Dense<T, Act> back(in, out, other);
  back.backward(x, y0, gy, nullptr, true);
  const Mat<T> back_gw = back.grad_weight();
  layer.download(back);
  CHECK(back.weight() == host.weight());
  CHECK(back.bias() == host.bias());
  CHECK(back.grad_weight() == back_gw);  // gradients untouched
  Dense<T, Act> wrong(in + 1, out, other);
  CHECK_THROWS_AS(layer.download(wrong), invalid_input);
  Rng r1(seed), r2(seed);
  const Dense<T, Act> a(in, out, r1);
  const Dense<T, Act, counting::Executor> b(in, out, r2, counting::Executor{&n});
  CHECK(b.weight() == a.weight());
  CHECK(b.bias() == a.bias());
  CHECK(r1.next_u64() == r2.next_u64());
}

TEST_CASE_TEMPLATE("Dense is one template over the executor: the same bodies, the kernels it calls", T, float, double) {
  check_dense_over_executor<T, Identity>(31);
  check_dense_over_executor<T, Relu>(32);
  check_dense_over_executor<T, LeakyRelu>(33);
  check_dense_over_executor<T, Sigmoid>(34);
  check_dense_over_executor<T, Tanh>(35);
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
  // a VJP of a trace that holds no forward pass (never run): refused, not read out of bounds
  Mat<double> gx;
  CHECK_THROWS_WITH_AS(net.vjp_input(Trace<double>{}, Mat<double>::Ones(2, 1), gx),
                       doctest::Contains("the trace holds no forward pass"), invalid_input);
  // Dense's backward_into checks its input as well as the cotangents
  Dense<double, Relu> dense(3, 2, rng);
  const Mat<double> x = Mat<double>::Ones(5, 4), y = Mat<double>::Ones(2, 4), gy = Mat<double>::Ones(2, 4);
  CHECK_THROWS_WITH_AS(dense.backward_into(x, y, gy, nullptr, true), doctest::Contains("Dense layer input"),
                       invalid_input);
}

TEST_CASE("Sequential names tensors by module index, and a three-parameter module round-trips by name") {
  auto make = [](std::uint64_t seed) {
    Rng rng(seed);
    auto net = make_sequential(5, Dense<double, Relu>(5, 6, rng), ScaledLinear<double>(6, 4, rng), TanhLayer<double>{});
    net.module<1>().offset = rng.normal_matrix<double>(4, 1);
    return net;
  };
  auto net = make(15);
  std::vector<std::string> names, buffer_names;
  for (const auto& p : net.parameters()) names.push_back(p.name);
  for (const auto& b : net.buffers()) buffer_names.push_back(b.name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.scale", "1.shift"});
  CHECK(buffer_names == std::vector<std::string>{"1.offset"});

  // the conformance checker covers the new module inside the chain
  Rng crng(16);
  const auto conf = testing::check_generator(net, 3, crng);
  INFO(conf.failures);
  CHECK(conf.ok);

  io::WeightsFile<double> f;
  f.arch = "test-three-params";
  write_state(f, net, "net.");
  REQUIRE(f.tensors.size() == 6);
  const auto dir = std::filesystem::temp_directory_path() / "prilo_test_nn_state";
  std::filesystem::create_directories(dir);
  const auto path = dir / "three.prw";
  io::save_weights(path, f);
  auto g = io::load_weights<double>(path);
  std::filesystem::remove_all(dir);
  // loading goes by name: the file's order does not matter
  std::reverse(g.tensors.begin(), g.tensors.end());

  auto other = make(99);
  Rng zr(17);
  const Mat<double> z = zr.normal_matrix<double>(5, 3);
  CHECK(other(z) != net(z));
  read_state(g, other, "net.");
  CHECK(other(z) == net(z));
  CHECK(other.module<1>().offset == net.module<1>().offset);
  CHECK(other.module<1>().a == net.module<1>().a);

  SUBCASE("a missing tensor is named") {
    auto h = g;
    h.tensors.erase(
        std::find_if(h.tensors.begin(), h.tensors.end(), [](const auto& t) { return t.name == "net.1.scale"; }));
    CHECK_THROWS_WITH(read_state(h, other, "net."), doctest::Contains("no tensor named \"net.1.scale\""));
  }
  SUBCASE("a tensor of another shape is named") {
    auto h = g;
    for (auto& t : h.tensors)
      if (t.name == "net.1.offset") t.value = Mat<double>::Zero(3, 1);
    CHECK_THROWS_WITH(read_state(h, other, "net."), doctest::Contains("net.1.offset"));
  }
  SUBCASE("a tensor the model does not have is rejected") {
    auto h = g;
    h.add("net.2.weight", Mat<double>::Zero(1, 1));
    h.add("elsewhere.0.weight", Mat<double>::Zero(1, 1));  // outside the prefix: ignored
    CHECK_THROWS_WITH(read_state(h, other, "net."), doctest::Contains("\"net.2.weight\" (architecture"));
    h.tensors.erase(h.tensors.end() - 2);
    CHECK_NOTHROW(read_state(h, other, "net."));
  }
}

TEST_CASE("Sequential's input VJP reuses the trace's scratch: no allocation after the first step") {
  Rng rng(18);
  const auto net = make_sequential(6, Dense<double, Relu>(6, 8, rng), Dense<double, Tanh>(8, 7, rng),
                                   Dense<double, Sigmoid>(7, 5, rng));
  Trace<double> tr;
  const Mat<double> z = rng.normal_matrix<double>(6, 4), c = rng.normal_matrix<double>(5, 4);
  net.forward(0, 3, z, tr);
  const Mat<double> g1 = net.vjp_input(tr, c);
  // every scratch matrix keeps its storage: the layers' widths differ (8, 7, 5), so a
  // matrix shared between layers would be reallocated at every step
  auto storage = [&] {
    std::vector<const double*> p = {tr.cotangents[0].data(), tr.cotangents[1].data()};
    for (const auto& w : tr.work) p.push_back(w.data());
    return p;
  };
  const auto before = storage();
  REQUIRE(before.size() == 5);
  for (const double* p : before) CHECK(p != nullptr);
  net.forward(0, 3, z, tr);
  const Mat<double> g2 = net.vjp_input(tr, c);
  CHECK(g2 == g1);
  CHECK(storage() == before);
  // the weight VJP returns the same input cotangent, bit for bit
  auto net2 = net;
  CHECK(net2.vjp_weights(tr, c) == g1);
}

/// A test-only module: the identity, or an exception while `fail` is set.
struct FailingIdentity {
  using scalar = double;
  bool fail = false;
  Eigen::Index output_size(Eigen::Index in) const { return in; }
  void forward(const Mat<double>& x, Mat<double>& y) const {
    if (fail) throw std::runtime_error("FailingIdentity: failed on purpose");
    y = x;
  }
  void backward_input(const Mat<double>&, const Mat<double>&, const Mat<double>& gy, Mat<double>& gx,
                      Mat<double>&) const {
    gx = gy;
  }
  void backward(const Mat<double>&, const Mat<double>&, const Mat<double>& gy, Mat<double>* gx, bool) {
    if (gx) *gx = gy;
  }
  ParamList<double> parameters() { return {}; }
  void zero_grad() {}
};
static_assert(Module<FailingIdentity>);

TEST_CASE("Sequential::forward_lent: forward's pass and VJP without copying z, which it gives back") {
  Rng rng(19);
  auto net = make_sequential(6, Dense<double, Relu>(6, 8, rng), Dense<double, Tanh>(8, 7, rng), FailingIdentity{},
                             Dense<double, Sigmoid>(7, 5, rng));
  const Mat<double> c = rng.normal_matrix<double>(5, 3);
  for (int split : {0, 1, 4}) {
    CAPTURE(split);
    const Mat<double> z = rng.normal_matrix<double>(net.dim(split), 3);
    Trace<double> tc, tl;
    net.forward(split, 4, z, tc);
    Mat<double> gc, gl;
    net.vjp_input(tc, c, gc);
    Mat<double> zl = z;
    for (int round = 0; round < 2; ++round) {  // the second round lends into a used trace
      const double* own = zl.data();
      net.forward_lent(split, 4, zl, tl);
      CHECK(tl.input().data() == own);  // lent, not copied
      CHECK(tl.output() == tc.output());
      net.vjp_input(tl, c, gl);
      CHECK(gl == gc);
      tl.give_back(zl);
      CHECK(zl.data() == own);
      CHECK(zl == z);
    }
  }
  // a module that throws during the pass: z is given back before the exception leaves
  net.module<2>().fail = true;
  const Mat<double> z = rng.normal_matrix<double>(6, 3);
  Mat<double> zl = z;
  const double* own = zl.data();
  Trace<double> tr;
  CHECK_THROWS_WITH(net.forward_lent(0, 4, zl, tr), "FailingIdentity: failed on purpose");
  CHECK(zl.data() == own);
  CHECK(zl == z);
  // checks come before lending: a wrong size is refused and z stays
  Mat<double> bad = rng.normal_matrix<double>(5, 3);
  const Mat<double> bad0 = bad;
  CHECK_THROWS_WITH(net.forward_lent(0, 4, bad, tr), doctest::Contains("split point"));
  CHECK(bad == bad0);
}

TEST_CASE("ParamSnapshot: restores the values it took, nothing before it took any, and refuses other shapes") {
  Rng rng(4);
  Dense<double, Relu> layer(5, 3, rng);
  auto ps = layer.parameters();
  const Mat<double> w0 = ps[0].value, b0 = ps[1].value;
  ParamSnapshot<double> snap;
  CHECK(snap.empty());
  snap.restore(ps);  // nothing taken: nothing changes
  CHECK(ps[0].value == w0);
  snap.take(ps);
  ps[0].value.setZero();
  ps[1].value.setOnes();
  snap.restore(ps);
  CHECK(ps[0].value == w0);
  CHECK(ps[1].value == b0);
  Dense<double, Relu> other(4, 3, rng);
  auto qs = other.parameters();
  CHECK_THROWS_WITH_AS(snap.restore(qs), doctest::Contains("ParamSnapshot: weight"), invalid_input);
  auto one = ParamList<double>{ps[0]};
  CHECK_THROWS_WITH_AS(snap.restore(one), doctest::Contains("2 tensors kept, the list has 1"), invalid_input);
}

TEST_CASE(
    "BestEpoch: keeps and saves the improving epochs only, restores them, and fails on a loss that is not finite") {
  Rng rng(6);
  Dense<double, Relu> layer(4, 3, rng);
  auto ps = layer.parameters();
  const Mat<double> w0 = ps[0].value;
  const auto fails = [](BestEpoch<double>& best, double loss) {
    try {
      best.check_loss("trainer", loss, 3, 7);
    } catch (const invalid_input& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  BestEpoch<double> best(ps, "best.prw");
  std::vector<std::pair<std::string, double>> saved;  // the path and the first weight at each save
  const auto save = [&](const std::filesystem::path& path) { saved.emplace_back(path.string(), ps[0].value(0, 0)); };
  CHECK(best.epoch() == 0);
  best.check_loss("trainer", 1.5, 1, 1);  // finite: nothing happens
  ps[0].value.setConstant(1);
  CHECK(fails(best, std::nan("")) ==
        "trainer: training diverged in epoch 3, batch 7: the loss is nan (try a smaller learning rate); best.prw was "
        "not written");
  CHECK(ps[0].value == w0);    // no epoch improved yet: the initial weights (epoch 0) back, not the first epoch's
  ps[0].value.setConstant(1);  // epoch 1 trains on
  best.end_epoch(1, true, save);
  ps[0].value.setConstant(2);
  best.end_epoch(2, false, save);  // not improved: neither kept nor saved
  CHECK(best.epoch() == 1);
  REQUIRE(saved.size() == 1);
  CHECK(saved[0] == std::pair<std::string, double>("best.prw", 1.0));
  CHECK(fails(best, std::numeric_limits<double>::infinity())
            .find("the loss is inf (try a smaller learning rate); "
                  "best.prw holds epoch 1") != std::string::npos);
  CHECK(ps[0].value == Mat<double>::Constant(w0.rows(), w0.cols(), 1.0));  // epoch 1's weights back
  ps[0].value.setConstant(3);
  best.restore();
  CHECK(ps[0].value(2, 1) == 1);
  // without an output file nothing is saved and the message names none
  BestEpoch<double> quiet(ps, {});
  quiet.end_epoch(1, true, save);
  CHECK(saved.size() == 1);
  CHECK(quiet.epoch() == 1);
  CHECK(fails(quiet, std::nan("")).ends_with("(try a smaller learning rate)"));
}

TEST_CASE("Sequential refuses a non-positive input dimension, which size-preserving modules would pass on") {
  Rng rng(21);
  // activations take any size: nothing else checked the dimension, so dim(0) was -3
  CHECK_THROWS_WITH_AS(make_sequential(-3, ReLU<double>{}, TanhLayer<double>{}),
                       doctest::Contains("Sequential: the input dimension must be positive, got -3"), invalid_input);
  CHECK_THROWS_WITH_AS(make_sequential(0, SigmoidLayer<double>{}),
                       doctest::Contains("Sequential: the input dimension must be positive, got 0"), invalid_input);
  // Dense reads a negative size as "any" (its output_size(-1)), so it passed as well
  CHECK_THROWS_WITH_AS(make_sequential(-1, Dense<double>(3, 4, rng)),
                       doctest::Contains("Sequential: the input dimension must be positive, got -1"), invalid_input);
  // a positive dimension is kept, and inputs of other sizes refused
  auto acts = make_sequential(5, ReLU<double>{}, TanhLayer<double>{});
  CHECK(acts.dim(0) == 5);
  CHECK(acts.dim(2) == 5);
  CHECK(acts(Mat<double>::Ones(5, 2)).rows() == 5);
  CHECK_THROWS_WITH_AS(acts(Mat<double>::Ones(3, 2)), doctest::Contains("expected a 5x2 matrix, got 3x2"),
                       invalid_input);
}

TEST_CASE("Dense: a default-constructed layer refuses every pass, naming the problem") {
  const auto named = doctest::Contains("Dense: the layer was default-constructed (no weights)");
  Dense<double, Relu> d;
  Mat<double> y, gx, work;
  const Mat<double> empty(0, 3), x = Mat<double>::Ones(3, 2);
  // an empty input gave an empty output, silently
  CHECK_THROWS_WITH_AS(d.forward(empty, y), named, invalid_input);
  CHECK_THROWS_WITH_AS(d.forward(x, y), named, invalid_input);
  CHECK_THROWS_WITH_AS(d.backward_input(empty, empty, empty, gx, work), named, invalid_input);
  CHECK_THROWS_WITH_AS(d.backward(empty, empty, empty, &gx, true), named, invalid_input);
  Mat<double> view_out(0, 3);
  CHECK_THROWS_WITH_AS(d.forward_into(empty, view_out), named, invalid_input);
  CHECK_THROWS_WITH_AS(d.backward_input_into(empty, empty, empty, view_out, work), named, invalid_input);
  CHECK_THROWS_WITH_AS(d.backward_into(empty, empty, empty, nullptr, true), named, invalid_input);
  CHECK_THROWS_WITH_AS(d.output_size(), named, invalid_input);
  // in a chain: refused where the chain is built, and a default-constructed chain's pass as well
  CHECK_THROWS_WITH_AS(make_sequential(3, Linear<double>{}), named, invalid_input);
  const Sequential<double, Linear<double>> net{};
  CHECK_THROWS_WITH_AS(net(Mat<double>(0, 2)), named, invalid_input);
  // a constructed layer still runs
  Rng rng(22);
  Dense<double, Relu> ok(3, 4, rng);
  ok.forward(x, y);
  CHECK(y.rows() == 4);
  CHECK(ok.output_size() == 4);
}

TEST_CASE("BatchNorm2d refuses an eps that is not positive and finite in its scalar type, and a bad momentum") {
  const Shape3 s{1, 2, 2};
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const auto named = doctest::Contains("BatchNorm2d: eps must be positive and finite");
  // +inf made 1/sqrt(var + eps) zero: every output was the bias, silently
  CHECK_THROWS_WITH_AS(BatchNorm2d<double>(s, 0.1, inf), named, invalid_input);
  CHECK_THROWS_WITH_AS(BatchNorm2d<float>(s, 0.1, inf), named, invalid_input);
  // finite as a double but not as a float: 1e300 becomes inf, and 1e-50 becomes 0, so that a
  // constant channel (var = 0) gave 0/0 = NaN
  CHECK_THROWS_WITH_AS(BatchNorm2d<float>(s, 0.1, 1e300), named, invalid_input);
  CHECK_THROWS_WITH_AS(BatchNorm2d<float>(s, 0.1, 1e-50), named, invalid_input);
  CHECK_NOTHROW(BatchNorm2d<double>(s, 0.1, 1e-50));
  // refused before as well
  for (const double eps : {nan, -inf, -1e-5, 0.0, -0.0})
    CHECK_THROWS_WITH_AS(BatchNorm2d<float>(s, 0.1, eps), doctest::Contains("BatchNorm2d: eps must be positive"),
                         invalid_input);
  for (const double m : {nan, inf, -inf, -0.1, 1.5})
    CHECK_THROWS_WITH_AS(BatchNorm2d<float>(s, m), doctest::Contains("BatchNorm2d: momentum must be in [0, 1]"),
                         invalid_input);
  // the smallest normal float eps still normalises a constant channel to finite values (zero)
  BatchNorm2d<float> tiny(s, 0.1, double(std::numeric_limits<float>::min()));
  tiny.set_mode(NormMode::training);
  Mat<float> y;
  tiny.forward(Mat<float>::Ones(4, 2), y);
  CHECK(y.allFinite());
  CHECK(y.cwiseAbs().maxCoeff() == 0.0f);
}

}  // namespace prilo_test_nn

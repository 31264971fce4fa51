// Batch normalisation, upsampling and reshape (issue 12) against naive loops, finite
// differences and PyTorch's documented semantics.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <prilo/io/weights.hpp>
#include <prilo/nn.hpp>
#include <prilo/nn/state_io.hpp>
#include <prilo/testing/checkers.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_nn_layers {

using namespace prilo;
using test_support::error_of;
using namespace prilo::nn;
using T = double;

namespace {

/// Element (c, h, w) of sample j, written out from the layout of nn/shape.hpp.
T& at(Mat<T>& x, const Shape3& s, Eigen::Index c, Eigen::Index h, Eigen::Index w, Eigen::Index j) {
  return x((c * s.height + h) * s.width + w, j);
}
T at(const Mat<T>& x, const Shape3& s, Eigen::Index c, Eigen::Index h, Eigen::Index w, Eigen::Index j) {
  return x((c * s.height + h) * s.width + w, j);
}

/// Batch normalisation written out with loops: per channel, the mean and biased variance over
/// every pixel of every sample.
Mat<T> naive_batchnorm(const Mat<T>& x, const Shape3& s, const Vec<T>& gamma, const Vec<T>& beta, double eps,
                       Vec<T>* mean_out = nullptr, Vec<T>* unbiased_var_out = nullptr) {
  Mat<T> y(x.rows(), x.cols());
  if (mean_out) mean_out->resize(s.channels);
  if (unbiased_var_out) unbiased_var_out->resize(s.channels);
  for (Eigen::Index c = 0; c < s.channels; ++c) {
    double sum = 0, n = 0;
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index h = 0; h < s.height; ++h)
        for (Eigen::Index w = 0; w < s.width; ++w) sum += at(x, s, c, h, w, j), n += 1;
    const double mean = sum / n;
    double ss = 0;
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index h = 0; h < s.height; ++h)
        for (Eigen::Index w = 0; w < s.width; ++w) ss += (at(x, s, c, h, w, j) - mean) * (at(x, s, c, h, w, j) - mean);
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index h = 0; h < s.height; ++h)
        for (Eigen::Index w = 0; w < s.width; ++w)
          at(y, s, c, h, w, j) = gamma(c) * (at(x, s, c, h, w, j) - mean) / std::sqrt(ss / n + eps) + beta(c);
    if (mean_out) (*mean_out)(c) = mean;
    if (unbiased_var_out) (*unbiased_var_out)(c) = ss / (n - 1);
  }
  return y;
}

BatchNorm2d<T> random_batchnorm(const Shape3& s, Rng& rng) {
  BatchNorm2d<T> bn(s);
  bn.weight() = Vec<T>(rng.normal_matrix<T>(s.channels, 1)).array() + 1.5;
  bn.bias() = rng.normal_matrix<T>(s.channels, 1);
  bn.running_mean() = rng.normal_matrix<T>(s.channels, 1);
  bn.running_var() = Vec<T>(rng.normal_matrix<T>(s.channels, 1)).array().square() + 0.5;
  return bn;
}

}  // namespace

TEST_CASE_TEMPLATE("LeakyReLU: the max form and the packet cotangent equal the select definitions, tails included", S,
                   float, double) {
  const S slope = S(LeakyRelu::slope);
  const S tiny = std::numeric_limits<S>::denorm_min();
  std::vector<S> special{S(0),
                         -S(0),
                         tiny,
                         -tiny,
                         S(1),
                         S(-1),
                         std::numeric_limits<S>::infinity(),
                         -std::numeric_limits<S>::infinity(),
                         std::numeric_limits<S>::quiet_NaN()};
  const auto same = [](S a, S b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(S)) == 0; };
  for (const S v : special) {
    INFO("v = ", v);
    CHECK(same(LeakyRelu::value(v), v > S(0) ? v : slope * v));
  }
  Rng rng(11);
  for (Eigen::Index n = 0; n <= 41; ++n) {  // every tail length of every packet size
    std::vector<S> g(n), y(n), out(n), in_place(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      g[i] = S(rng.normal());
      y[i] = i < Eigen::Index(special.size()) ? special[i] : LeakyRelu::value(S(rng.normal()));
    }
    apply_cotangent<LeakyRelu>(g.data(), y.data(), out.data(), n);
    in_place = g;
    apply_cotangent<LeakyRelu>(in_place.data(), y.data(), in_place.data(), n);
    for (Eigen::Index i = 0; i < n; ++i) {
      INFO("n = ", n, ", i = ", i, ", y = ", y[i]);
      CHECK(same(out[i], y[i] > S(0) ? g[i] : slope * g[i]));
      CHECK(same(in_place[i], out[i]));
    }
  }
}

TEST_CASE_TEMPLATE("Sigmoid: the packet cotangent is g*(y*(1-y)) bit for bit, tails and in place included", S, float,
                   double) {
  // apply_cotangent takes Sigmoid::cotangent_packet for whole packets and the scalar form for
  // the tail; the conv fills and the modulation's one-pass VJP rely on the two agreeing
  const auto same = [](S a, S b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(S)) == 0; };
  Rng rng(12);
  for (Eigen::Index n = 0; n <= 41; ++n) {  // every tail length of every packet size
    std::vector<S> g(n), y(n), out(n), in_place(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      g[i] = S(rng.normal());
      y[i] = i % 7 == 3 ? S(i % 2) : Sigmoid::value(S(3 * rng.normal()));  // 0 and 1 at the ends
    }
    apply_cotangent<Sigmoid>(g.data(), y.data(), out.data(), n);
    in_place = g;
    apply_cotangent<Sigmoid>(in_place.data(), y.data(), in_place.data(), n);
    for (Eigen::Index i = 0; i < n; ++i) {
      INFO("n = ", n, ", i = ", i, ", y = ", y[i]);
      const S want = g[i] * (y[i] * (S(1) - y[i]));
      CHECK(same(out[i], want));
      CHECK(same(in_place[i], want));
    }
  }
}

template <class Act, class S>
void check_affine_activation() {
  const auto same = [](S a, S b) { return std::memcmp(&a, &b, sizeof(S)) == 0; };
  Rng rng(13);
  const S a = S(1.3), b = S(-0.2);
  for (Eigen::Index n = 0; n <= 41; ++n) {  // every tail length of every packet size
    std::vector<S> x(n), out(n), in_place(n);
    for (Eigen::Index i = 0; i < n; ++i) x[i] = S(rng.normal());
    if (n > 5) {
      x[1] = std::numeric_limits<S>::quiet_NaN();
      x[2] = std::numeric_limits<S>::infinity();
      x[3] = -std::numeric_limits<S>::infinity();
      x[4] = b / a;  // a·x + b near 0, its sign the rounding's
    }
    apply_affine_activation<Act>(x.data(), a, b, out.data(), n);
    in_place = x;
    apply_affine_activation<Act>(in_place.data(), a, b, in_place.data(), n);
    for (Eigen::Index i = 0; i < n; ++i) {
      INFO("n = ", n, ", i = ", i, ", x = ", x[i]);
      const S want = Act::value(prilo::detail::fmadd(a, x[i], b));
      CHECK(same(out[i], want));
      CHECK(same(in_place[i], want));
    }
  }
}

TEST_CASE_TEMPLATE("apply_affine_activation: act(a*x + b) with one fused multiply-add, bit for bit, tails and in place",
                   S, float, double) {
  // the style modulation's forward: packets for whole blocks (Eigen's pmadd), the scalar form
  // for the tail; both fused where the target has FMA, as GCC's contraction made the plain loop
  check_affine_activation<Identity, S>();
  check_affine_activation<Relu, S>();
  check_affine_activation<LeakyRelu, S>();
}

TEST_CASE("BatchNorm2d training mode: forward equals the per-channel batch loops") {
  Rng rng(1);
  const Shape3 s{3, 4, 5};
  auto bn = random_batchnorm(s, rng);
  bn.set_mode(NormMode::training);
  const Mat<T> x = rng.normal_matrix<T>(s.size(), 6).array() * 2.0 + 0.7;
  Mat<T> y;
  bn.forward(x, y);
  const Mat<T> ref = naive_batchnorm(x, s, bn.weight(), bn.bias(), 1e-5);
  CHECK((y - ref).norm() <= 1e-12 * ref.norm());
  // the running statistics do not enter the training forward
  bn.running_mean().setConstant(100);
  Mat<T> y2;
  bn.forward(x, y2);
  CHECK((y2 - y).norm() == 0);
}

TEST_CASE("BatchNorm2d training mode: both VJPs through the batch statistics match finite differences") {
  Rng rng(2);
  const Shape3 s{2, 3, 3};
  auto bn = random_batchnorm(s, rng);
  bn.set_mode(NormMode::training);
  const Eigen::Index B = 4;
  const Mat<T> x = rng.normal_matrix<T>(s.size(), B);
  const Mat<T> c = rng.normal_matrix<T>(s.size(), B);
  auto f = [&](const Mat<T>& v) {
    Mat<T> y;
    bn.forward(v, y);
    return T((y.array() * c.array()).sum());
  };
  auto g = [&](const Mat<T>& v, Mat<T>& out) {
    Mat<T> y, work;
    bn.forward(v, y);
    bn.backward_input(v, y, c, out, work);
  };
  const auto gc = testing::check_gradient<T>(f, g, x, rng, 10, 1e-6, 1e-7);
  INFO(gc.max_rel_error);
  CHECK(gc.ok);
  // the input gradient is not the inference map's a·c: the batch statistics matter
  Mat<T> gx, work, y;
  bn.forward(x, y);
  bn.backward_input(x, y, c, gx, work);
  Mat<T> frozen = c;
  for (Eigen::Index ch = 0; ch < s.channels; ++ch) frozen.middleRows(ch * 9, 9) *= bn.weight()(ch);
  CHECK((gx - frozen).norm() > 1e-3 * gx.norm());

  // weight gradients: f as a function of (γ, β) stacked
  bn.zero_grad();
  Mat<T> gx2;
  bn.backward(x, y, c, &gx2, true);
  CHECK((gx2 - gx).norm() <= 1e-14 * gx.norm());
  Mat<T> p(2 * s.channels, 1), gp(2 * s.channels, 1);
  p << bn.weight(), bn.bias();
  gp << bn.grad_weight(), bn.grad_bias();
  auto fp = [&](const Mat<T>& q) {
    auto b2 = bn;
    b2.weight() = q.topRows(s.channels);
    b2.bias() = q.bottomRows(s.channels);
    Mat<T> yy;
    b2.forward(x, yy);
    return T((yy.array() * c.array()).sum());
  };
  auto gpf = [&](const Mat<T>&, Mat<T>& out) { out = gp; };
  const auto gw = testing::check_gradient<T>(fp, gpf, p, rng, 8, 1e-6, 1e-7);
  INFO(gw.max_rel_error);
  CHECK(gw.ok);
}

TEST_CASE("BatchNorm2d: running statistics advance in the training backward, momentum 0.1, unbiased variance") {
  Rng rng(3);
  const Shape3 s{3, 2, 2};
  BatchNorm2d<T> bn(s);
  CHECK(bn.mode() == NormMode::inference);  // the generator's form unless the owner trains
  CHECK(bn.running_mean().isZero());
  CHECK(bn.running_var().isOnes());
  bn.set_mode(NormMode::training);
  const Mat<T> x = rng.normal_matrix<T>(s.size(), 5).array() * 3.0 - 1.0;
  Vec<T> mean, uvar;
  naive_batchnorm(x, s, bn.weight(), bn.bias(), 1e-5, &mean, &uvar);
  Mat<T> y, gx;
  bn.forward(x, y);
  bn.backward(x, y, y, &gx, false);  // no weight step: no statistics update
  CHECK(bn.running_mean().isZero());
  bn.backward(x, y, y, &gx, true);
  CHECK((bn.running_mean() - 0.1 * mean).norm() <= 1e-12);
  CHECK((bn.running_var() - (0.9 * Vec<T>::Ones(3) + 0.1 * uvar)).norm() <= 1e-12);
  bn.update_running_statistics(x);  // the explicit form of the same update
  CHECK((bn.running_mean() - 0.19 * mean).norm() <= 1e-12);
  // in inference mode the backward leaves them alone
  const Vec<T> rm = bn.running_mean(), rv = bn.running_var();
  bn.set_mode(NormMode::inference);
  bn.backward(x, y, y, &gx, true);
  CHECK(bn.running_mean() == rm);
  CHECK(bn.running_var() == rv);
}

TEST_CASE("BatchNorm2d in inference mode refuses running statistics that would make NaN, naming the channel") {
  Rng rng(6);
  const Shape3 s{3, 2, 2};
  const Mat<T> x = rng.normal_matrix<T>(s.size(), 2);
  Mat<T> y;
  for (const auto& [var, mean] : {std::pair{-0.5, 0.0}, std::pair{std::nan(""), 0.0}, std::pair{1.0, HUGE_VAL}}) {
    BatchNorm2d<T> bn(s);
    bn.running_var()(1) = var;  // as a damaged weights file's "running_var" would set it
    bn.running_mean()(1) = mean;
    CHECK_THROWS_WITH_AS(bn.forward(x, y), doctest::Contains("running statistics of channel 1 are invalid"),
                         invalid_input);
    CHECK_THROWS_WITH_AS((void)bn.inference_scale(), doctest::Contains("channel 1"), invalid_input);
    // training mode normalises with the batch's own statistics: the running ones are not read
    bn.set_mode(NormMode::training);
    bn.forward(x, y);
    CHECK(y.allFinite());
  }
}

TEST_CASE("BatchNorm2d inference mode is the per-channel affine map of the running statistics") {
  Rng rng(4);
  const Shape3 s{4, 3, 2};
  auto bn = random_batchnorm(s, rng);
  const Mat<T> x = rng.normal_matrix<T>(s.size(), 3);
  Mat<T> y;
  bn.forward(x, y);
  const Vec<T> a = bn.inference_scale(), b = bn.inference_shift();
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index ch = 0; ch < s.channels; ++ch)
      for (Eigen::Index h = 0; h < s.height; ++h)
        for (Eigen::Index w = 0; w < s.width; ++w) {
          const T v = at(x, s, ch, h, w, j);
          const T ref =
              bn.weight()(ch) * (v - bn.running_mean()(ch)) / std::sqrt(bn.running_var()(ch) + 1e-5) + bn.bias()(ch);
          CHECK(at(y, s, ch, h, w, j) == doctest::Approx(ref).epsilon(1e-13));
          CHECK(at(y, s, ch, h, w, j) == doctest::Approx(a(ch) * v + b(ch)).epsilon(1e-13));
        }
  // each sample on its own: one column gives the same output as within the batch
  Mat<T> y1;
  bn.forward(x.col(1), y1);
  CHECK((y1 - y.col(1)).norm() <= 1e-15 * y1.norm());
}

TEST_CASE("BatchNorm2d passes the generator checker in both modes, and its buffers are saved by name") {
  Rng rng(5);
  const Shape3 s{3, 2, 3};
  for (NormMode m : {NormMode::training, NormMode::inference}) {
    auto bn = random_batchnorm(s, rng);
    bn.set_mode(m);
    auto net = make_sequential(s.size(), bn, Reshape<T>(s));
    const auto r = testing::check_generator(net, 3, rng);
    INFO(r.failures);
    CHECK(r.ok);
  }
  // 1-d use (BatchNorm1d): C channels of one pixel
  BatchNorm2d<T> bn1(Shape3{5, 1, 1});
  bn1.set_mode(NormMode::training);
  auto net1 = make_sequential(5, Linear<T>(5, 5, rng), bn1);
  const auto r1 = testing::check_generator(net1, 4, rng);
  INFO(r1.failures);
  CHECK(r1.ok);

  auto net = make_sequential(s.size(), random_batchnorm(s, rng));
  io::WeightsFile<T> f;
  write_state(f, net);
  REQUIRE(f.find("0.running_mean"));
  REQUIRE(f.find("0.running_var"));
  REQUIRE(f.find("0.weight"));
  auto other = make_sequential(s.size(), BatchNorm2d<T>(s));
  read_state(f, other);
  CHECK(other.module<0>().running_var() == net.module<0>().running_var());
  CHECK(other.module<0>().running_mean() == net.module<0>().running_mean());
  CHECK(other.module<0>().weight() == net.module<0>().weight());
}

TEST_CASE("BatchNorm2d: bad shapes and settings fail naming the problem") {
  const Shape3 s{2, 3, 3};
  BatchNorm2d<T> bn(s);
  Mat<T> y, x = Mat<T>::Ones(17, 2);
  CHECK(error_of<prilo::invalid_input>([&] { bn.forward(x, y); }).find("BatchNorm2d input") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] { bn.output_size(17); }).find("expects 18") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] {
          BatchNorm2d<T>(Shape3{0, 3, 3});
        }).find("BatchNorm2d") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] { BatchNorm2d<T>(s, 1.5); }).find("momentum") != std::string::npos);
  BatchNorm2d<T> one(Shape3{4, 1, 1});
  one.set_mode(NormMode::training);
  const Mat<T> single = Mat<T>::Ones(4, 1);
  CHECK(error_of<prilo::invalid_input>([&] { one.forward(single, y); }).find("more than one value per channel") !=
        std::string::npos);
  Mat<T> gx, work, gy = Mat<T>::Ones(18, 3);
  x = Mat<T>::Ones(18, 2);
  CHECK(error_of<prilo::invalid_input>([&] { bn.backward_input(x, x, gy, gx, work); }).find("cotangent") !=
        std::string::npos);
}

TEST_CASE("Upsample2d nearest equals the naive loop; its VJP is its transpose") {
  Rng rng(6);
  const Shape3 s{2, 3, 4};
  for (int f : {1, 2, 3}) {
    Upsample2d<T> up(s, f);
    REQUIRE(up.output_shape() == Shape3{2, 3 * f, 4 * f});
    const Mat<T> x = rng.normal_matrix<T>(s.size(), 2);
    Mat<T> y;
    up.forward(x, y);
    const Shape3 o = up.output_shape();
    Mat<T> ref(o.size(), 2);
    for (Eigen::Index j = 0; j < 2; ++j)
      for (Eigen::Index c = 0; c < o.channels; ++c)
        for (Eigen::Index h = 0; h < o.height; ++h)
          for (Eigen::Index w = 0; w < o.width; ++w) at(ref, o, c, h, w, j) = at(x, s, c, h / f, w / f, j);
    CHECK(y == ref);
    // ⟨U x, u⟩ = ⟨x, Uᵀ u⟩
    const Mat<T> u = rng.normal_matrix<T>(o.size(), 2);
    Mat<T> gx, work;
    up.backward_input(x, y, u, gx, work);
    CHECK((y.array() * u.array()).sum() == doctest::Approx((x.array() * gx.array()).sum()).epsilon(1e-12));
  }
}

TEST_CASE("Upsample2d refuses an output shape beyond the index type's range, by name") {
  using T = float;
  const Eigen::Index big = Eigen::Index(1) << 40;
  // H·s wrapped round (a negative or small output shape) before the check
  CHECK_THROWS_WITH_AS(Upsample2d<T>(Shape3{1, big, 1}, 1 << 24), doctest::Contains("exceeds the index type's range"),
                       invalid_input);
  // each side fits, their product with the channels does not
  CHECK_THROWS_WITH_AS(Upsample2d<T>(Shape3{1 << 20, Eigen::Index(1) << 20, 1}, 1 << 20),
                       doctest::Contains("Upsample2d output"), invalid_input);
  CHECK(Upsample2d<T>(Shape3{2, 3, 5}, 4).output_shape() == Shape3{2, 12, 20});
}

TEST_CASE("Upsample2d bilinear: align_corners=False values, interpolation property, and VJP") {
  // PyTorch: F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode="bilinear", align_corners=False)
  Upsample2d<T> up(Shape3{1, 2, 2}, 2, Interpolation::bilinear);
  Mat<T> x(4, 1);
  x << 1, 2, 3, 4;
  Mat<T> y;
  up.forward(x, y);
  Mat<T> expected(16, 1);
  expected << 1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0;
  CHECK((y - expected).norm() <= 1e-14);

  // separable: an image that is linear in (h, w) away from the borders stays linear, and
  // constants are kept everywhere
  Rng rng(7);
  const Shape3 s{3, 5, 4};
  for (int f : {2, 3}) {
    Upsample2d<T> u(s, f, Interpolation::bilinear);
    Mat<T> ones = Mat<T>::Constant(s.size(), 1, 2.5), yo;
    u.forward(ones, yo);
    CHECK((yo.array() - 2.5).abs().maxCoeff() <= 1e-14);
    Mat<T> ramp(s.size(), 1);
    for (Eigen::Index c = 0; c < 3; ++c)
      for (Eigen::Index h = 0; h < 5; ++h)
        for (Eigen::Index w = 0; w < 4; ++w) at(ramp, s, c, h, w, 0) = 2.0 * double(h) - 0.5 * double(w) + double(c);
    Mat<T> yr;
    u.forward(ramp, yr);
    const Shape3 o = u.output_shape();
    for (Eigen::Index c = 0; c < 3; ++c)
      for (Eigen::Index h = 0; h < o.height; ++h)
        for (Eigen::Index w = 0; w < o.width; ++w) {
          const double th = std::clamp((h + 0.5) / f - 0.5, 0.0, 4.0), tw = std::clamp((w + 0.5) / f - 0.5, 0.0, 3.0);
          CHECK(at(yr, o, c, h, w, 0) == doctest::Approx(2.0 * th - 0.5 * tw + double(c)).epsilon(1e-13));
        }
    auto net = make_sequential(s.size(), u, Upsample2d<T>(o, 2, Interpolation::nearest));
    const auto r = testing::check_generator(net, 2, rng);
    INFO(r.failures);
    CHECK(r.ok);
  }
}

TEST_CASE("Upsample2d and Reshape: bad shapes fail naming the problem") {
  Upsample2d<T> up(Shape3{2, 3, 3}, 2);
  Mat<T> y, x = Mat<T>::Ones(19, 1), gx, work;
  CHECK(error_of<prilo::invalid_input>([&] { up.forward(x, y); }).find("Upsample2d input") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] {
          up.backward_input(x, x, x, gx, work);
        }).find("Upsample2d output cotangent") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] {
          Upsample2d<T>(Shape3{2, 3, 3}, 0);
        }).find("scale factor") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] {
          Upsample2d<T>(Shape3{2, -1, 3}, 2);
        }).find("Upsample2d") != std::string::npos);
  CHECK(error_of<prilo::invalid_input>([&] {
          Reshape<T>(20, Shape3{2, 3, 3});
        }).find("20 inputs cannot form 2x3x3") != std::string::npos);
  Reshape<T> r(Shape3{2, 3, 3});
  CHECK(error_of<prilo::invalid_input>([&] { r.forward(x, y); }).find("Reshape") != std::string::npos);
}

TEST_CASE("Reshape moves no data and carries the shape") {
  Rng rng(8);
  Reshape<T> r(18, Shape3{2, 3, 3});
  CHECK(r.output_shape() == Shape3{2, 3, 3});
  const Mat<T> x = rng.normal_matrix<T>(18, 3);
  Mat<T> y, gx, work;
  r.forward(x, y);
  CHECK(y == x);
  r.backward_input(x, y, y, gx, work);
  CHECK(gx == x);
  auto net = make_sequential(7, Dense<T, Tanh>(7, 18, rng), r, BatchNorm2d<T>(r.output_shape()));
  CHECK(net.dim(2) == 18);
  const auto res = testing::check_generator(net, 2, rng);
  INFO(res.failures);
  CHECK(res.ok);
}

TEST_CASE("Sequential: vjp_input may write over its cotangent; flops counts no products for layers without any") {
  Rng rng(1);
  auto seq = make_sequential(3, Linear<T>(3, 5, rng), Linear<T>(5, 5, rng), ReLU<T>(), Linear<T>(5, 4, rng));
  const Mat<T> z = rng.normal_matrix<T>(5, 2);
  for (const auto& [i, j] : {std::pair{1, 2}, std::pair{1, 4}, std::pair{2, 3}}) {
    INFO("layers " << i << ".." << j);
    Trace<T> tr;
    seq.forward(i, j, z, tr);
    Mat<T> g = rng.normal_matrix<T>(seq.dim(j), 2);
    const Mat<T> expect = seq.vjp_input(tr, g);
    seq.vjp_input(tr, g, g);  // one square Linear: a wrong result (a heap overflow for a non-square one)
    CHECK(g == expect);
  }
  // a ReLU, a Reshape, an upsampling and a batch norm have no products (they counted as dense
  // layers of their sizes: the ReLU of 784 values as 1.23 MFLOP a sample)
  auto img = make_sequential(100, Linear<float>(100, 784, rng), ReLU<float>(), Reshape<float>(784, Shape3{1, 28, 28}),
                             BatchNorm2d<float>(Shape3{1, 28, 28}), Upsample2d<float>(Shape3{1, 28, 28}, 2));
  CHECK(img.flops(0, 1) == 2.0 * 100 * 784);
  for (int k = 1; k < img.depth(); ++k) CHECK(img.flops(k, k + 1) == 0);
  CHECK(img.flops(0, img.depth()) == 2.0 * 100 * 784);
}

TEST_CASE("Dense's VJPs name an input or a cotangent of the wrong height (not the product's inner sizes)") {
  Rng rng(2);
  Dense<T, Tanh> dense(3, 4, rng);
  const Mat<T> x = rng.normal_matrix<T>(3, 5), gy = rng.normal_matrix<T>(4, 5);
  Mat<T> y, gx, work;
  dense.forward(x, y);
  CHECK_THROWS_WITH_AS(dense.backward(Mat<T>(rng.normal_matrix<T>(4, 5)), y, gy, &gx, true),
                       doctest::Contains("Dense layer input: expected a 3x5 matrix, got 4x5"), invalid_input);
  CHECK_THROWS_WITH_AS(dense.backward_input(x, y, Mat<T>(gy.topRows(3)), gx, work),
                       doctest::Contains("Dense output cotangent gy: expected a 4x5 matrix, got 3x5"), invalid_input);
  dense.backward_input(x, y, gy, gx, work);
  CHECK(gx.rows() == 3);
}

}  // namespace prilo_test_nn_layers

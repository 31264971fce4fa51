// Style chains (nn/style.hpp): z0 fed into every layer beside the features, the split state
// {z_i, z0} of the paper's StyleGAN runs. VJPs by finite differences at every split point, the
// modulation's weight gradient, the blocks a split point declares, and PRILO over both tensors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <prilo/nn/conv.hpp>
#include <prilo/nn/linear.hpp>
#include <prilo/nn/sequential.hpp>
#include <prilo/nn/style.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/projection/l1_ball.hpp>
#include <prilo/solvers/latent.hpp>
#include <prilo/testing/checkers.hpp>

#include "recording_balls.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_style {

namespace {

using prilo::Mat;
using prilo::Rng;
using prilo::nn::ParamList;
using namespace prilo::nn;

/// z0 (4) → [z0; z0] → [dense 3×2×2; z0] → modulated (leaky ReLU) → [conv-transposed 2×4×4; z0]
/// → modulated sigmoid image (2·16 = 32 values, no z0).
template <class T>
auto style_chain(Rng& rng) {
  const Eigen::Index d = 4;
  return make_sequential(d, Duplicate<T>(d), Carry<Dense<T>>(Dense<T>(d, 12, rng), d),
                         Modulate<T, LeakyRelu>(3, 4, d, rng),
                         Carry<ConvTranspose2d<T>>(ConvTranspose2d<T>(Shape3{3, 2, 2}, 2, 4, 2, 1, 0, rng), d),
                         Modulate<T, Sigmoid, false>(Shape3{2, 4, 4}, d, rng));
}

/// Fills m with uniform values in [−1, 1) (what Eigen's setRandom gives) from its own seeded
/// stream: setRandom draws from the global rand(), so the values would depend on the order the
/// tests run in.
template <class M>
void fill_uniform(M&& m, std::uint64_t seed) {
  Rng rng(seed);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    m.data()[i] = typename std::remove_cvref_t<M>::Scalar(2 * rng.uniform() - 1);
}

using prilo::test_support::check_chained_balls;
using prilo::test_support::RecordingPolicies;
using prilo::test_support::seen;

/// Inner's forward and VJPs over whole matrices only (no forward_into / backward_input_into):
/// Carry copies its rows through the staging buffers, as for a device module.
template <class Inner>
struct WholeMatrices {
  using scalar = typename Inner::scalar;
  using M = Mat<scalar>;
  Inner inner;
  Eigen::Index input_size() const { return inner.input_size(); }
  Eigen::Index output_size(Eigen::Index in = -1) const { return inner.output_size(in); }
  void forward(const M& x, M& y) const { inner.forward(x, y); }
  void backward_input(const M& x, const M& y, const M& gy, M& gx, M& work) const {
    inner.backward_input(x, y, gy, gx, work);
  }
  void backward(const M& x, const M& y, const M& gy, M* gx, bool accumulate) {
    inner.backward(x, y, gy, gx, accumulate);
  }
  ParamList<scalar> parameters() { return inner.parameters(); }
};

TEST_CASE("style chain: every split point passes check_generator (double), blocks are {z_i, z0}") {
  Rng rng(4);
  auto g = style_chain<double>(rng);
  CHECK(g.depth() == 5);
  CHECK(g.dim(5) == 32);
  CHECK(g.blocks(0) == std::vector<Eigen::Index>{4});
  CHECK(g.blocks(1) == std::vector<Eigen::Index>{4, 4});
  CHECK(g.blocks(2) == std::vector<Eigen::Index>{12, 4});
  CHECK(g.blocks(3) == std::vector<Eigen::Index>{12, 4});
  CHECK(g.blocks(4) == std::vector<Eigen::Index>{32, 4});
  CHECK(g.blocks(5) == std::vector<Eigen::Index>{32});
  const auto r = prilo::testing::check_generator(g, 3, rng);
  INFO(r.failures);
  CHECK(r.ok);
  // a plain chain declares one block per split point
  auto plain = make_sequential(3, Dense<double, Relu>(3, 5, rng), Dense<double>(5, 2, rng));
  CHECK(plain.blocks(1) == std::vector<Eigen::Index>{5});
}

TEST_CASE("Modulate: the input and weight VJPs match central differences, and the carried z0 adds its cotangent") {
  using T = double;
  Rng rng(9);
  for (const bool carry : {true, false}) {
    Modulate<T, LeakyRelu, true> mc(3, 5, 2, rng);
    Modulate<T, LeakyRelu, false> mn(3, 5, 2, rng);
    mn.weight() = mc.weight();
    fill_uniform(mc.bias(), carry ? 1 : 2);
    mn.bias() = mc.bias();
    const Mat<T> x = rng.normal_matrix<T>(17, 4);
    auto check = [&](auto& m) {
      const Mat<T> c = rng.normal_matrix<T>(m.output_size(), 4);
      auto f = [&](const Mat<T>& xx) {
        Mat<T> y;
        m.forward(xx, y);
        return (y.array() * c.array()).sum();
      };
      auto gf = [&](const Mat<T>& xx, Mat<T>& g) {
        Mat<T> y, work;
        m.forward(xx, y);
        m.backward_input(xx, y, c, g, work);
      };
      const auto rx = prilo::testing::check_gradient<T>(f, gf, x, rng, 8, 1e-6, 1e-6);
      CHECK(rx.ok);
      // the weight gradient: ⟨∂f/∂W, D⟩ against differences of f along D
      Mat<T> y;
      m.forward(x, y);
      m.zero_grad();
      m.backward(x, y, c, nullptr, true);
      const Mat<T> gw = m.parameters()[0].grad;
      const Mat<T> w0 = m.weight();
      const Mat<T> dir = rng.normal_matrix<T>(w0.rows(), w0.cols());
      const T eps = 1e-6;
      m.weight() = w0 + eps * dir;
      const T fp = f(x);
      m.weight() = w0 - eps * dir;
      const T fm = f(x);
      m.weight() = w0;
      const T numeric = (fp - fm) / (2 * eps), analytic = (gw.array() * dir.array()).sum();
      CHECK(analytic == doctest::Approx(numeric).epsilon(1e-6));
    };
    if (carry)
      check(mc);
    else
      check(mn);
  }
  Modulate<T, LeakyRelu> m(3, 5, 2, rng);
  Mat<T> y;
  CHECK_THROWS_WITH_AS(m.forward(Mat<T>::Zero(16, 2), y), doctest::Contains("Modulate input"), prilo::invalid_input);
  CHECK_THROWS_AS(Modulate<T>(0, 5, 2, rng), prilo::invalid_input);
}

TEST_CASE_TEMPLATE("Modulate's one-pass channel VJP: the cotangent, its two sums and the scaling done apart", T, float,
                   double) {
  // prilo::detail::modulate_channel_vjp (packets, two accumulators per sum, a tail per entry)
  // against the same quantities per entry, the sums in long double: every length around the
  // packet and double-packet boundaries of float and double on SSE, AVX2 and AVX-512
  Rng rng(31);
  for (const Eigen::Index n : {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 49, 196}) {
    CAPTURE(n);
    Mat<T> m = rng.normal_matrix<T>(n, 3);
    for (Eigen::Index i = 0; i < n; i += 5) m(i, 1) = T(0);  // y = 0: the mask's boundary
    const T* g = m.col(0).data();
    const T* y = m.col(1).data();
    const T* u = m.col(2).data();
    const T scale = T(1.375);
    auto check = [&](auto act) {
      using Act = decltype(act);
      std::vector<T> out(std::size_t(n) + 1, T(-7));
      const auto [gu, gs] = prilo::detail::modulate_channel_vjp<Act>(g, y, u, out.data(), n, scale);
      const auto [gu2, gs2] = prilo::detail::modulate_channel_vjp<Act>(g, y, u, static_cast<T*>(nullptr), n, scale);
      long double gu_ref = 0, gs_ref = 0, mag = 0;
      bool exact = true;
      for (Eigen::Index i = 0; i < n; ++i) {
        const T v = prilo::nn::cotangent<Act>(g[i], y[i]);
        gu_ref += (long double)v * u[i];
        gs_ref += v;
        mag += std::abs((long double)v) * (1 + std::abs((long double)u[i]));
        exact = exact && out[std::size_t(i)] == v * scale;
      }
      CHECK(exact);                         // the scaled cotangent, entry for entry
      CHECK(out[std::size_t(n)] == T(-7));  // nothing past n
      const long double tol = 8 * std::numeric_limits<T>::epsilon() * mag;
      CHECK(std::abs((long double)gu - gu_ref) <= tol);
      CHECK(std::abs((long double)gs - gs_ref) <= tol);
      CHECK(gu2 == gu);  // without an output the same sums
      CHECK(gs2 == gs);
    };
    check(LeakyRelu{});
    check(Relu{});
    check(Sigmoid{});
  }
}

TEST_CASE("the style modules' row-block customisation points copy and add the blocks asked for, and refuse others") {
  using T = double;
  Rng rng(30);
  const Mat<T> src = rng.normal_matrix<T>(7, 3);
  const prilo::CpuExecutor ex;
  Mat<T> dst = Mat<T>::Zero(5, 3);
  prilo::copy_rows(ex, dst, 1, src, 4, 3);
  CHECK(dst.middleRows(1, 3) == src.middleRows(4, 3));
  CHECK(dst.row(0).isZero());
  CHECK(dst.row(4).isZero());
  Mat<T> sum;
  prilo::add_row_blocks(ex, sum, src, 0, 4, 3);
  CHECK(sum == src.topRows(3) + src.middleRows(4, 3));
  CHECK_THROWS_WITH_AS(prilo::copy_rows(ex, dst, 3, src, 0, 3), doctest::Contains("into row 3 of 5"),
                       prilo::invalid_input);
  CHECK_THROWS_WITH_AS(prilo::copy_rows(ex, dst, 0, src, 5, 3), doctest::Contains("from row 5 of 7"),
                       prilo::invalid_input);
  Mat<T> narrow = Mat<T>::Zero(5, 2);
  CHECK_THROWS_WITH_AS(prilo::copy_rows(ex, narrow, 0, src, 0, 2), doctest::Contains("3 columns"),
                       prilo::invalid_input);
  CHECK_THROWS_AS(prilo::add_row_blocks(ex, sum, src, 0, 5, 3), prilo::invalid_input);
}

TEST_CASE("a style module's staged passes equal its plain ones, with the buffers reused across batch sizes") {
  using T = double;
  Rng rng(31);
  Modulate<T, LeakyRelu> m(3, 5, 2, rng);
  fill_uniform(m.bias(), 3);
  Carry<ConvTranspose2d<T>> c(ConvTranspose2d<T>(Shape3{3, 2, 2}, 2, 4, 2, 1, 0, rng), 2);
  Staging<Mat<T>> st;
  Mat<T> work;
  for (const Eigen::Index batch : {4, 1, 6}) {
    CAPTURE(batch);
    const Mat<T> x = rng.normal_matrix<T>(m.input_size(), batch);
    Mat<T> y, ys, gx, gxs;
    m.forward(x, y);
    m.forward(x, ys, work, st);
    CHECK(ys == y);
    const Mat<T> gy = rng.normal_matrix<T>(y.rows(), batch);
    m.backward_input(x, y, gy, gx, work);
    m.backward_input(x, y, gy, gxs, work, st);
    CHECK(gxs == gx);
    const Mat<T> xc = rng.normal_matrix<T>(c.input_size(), batch);
    Mat<T> yc, ycs, gc, gcs;
    c.forward(xc, yc);
    c.forward(xc, ycs, work, st);
    CHECK(ycs == yc);
    const Mat<T> gyc = rng.normal_matrix<T>(yc.rows(), batch);
    c.backward_input(xc, yc, gyc, gc, work);
    c.backward_input(xc, yc, gyc, gcs, work, st);
    CHECK(gcs == gc);
    CHECK(gcs.bottomRows(2) == gyc.bottomRows(2));  // the carried z0's cotangent passes through
  }
}

TEST_CASE("Carry's VJP reads the features its staged forward kept, and copies them for any other pass") {
  using T = double;
  Rng rng(32);
  // ReLU: the VJP reads the output rows; a module of whole matrices, so Carry copies its rows
  Carry<WholeMatrices<Dense<T, Relu>>> c(WholeMatrices<Dense<T, Relu>>{Dense<T, Relu>(5, 7, rng)}, 2);
  static_assert(!InPlaceRows<WholeMatrices<Dense<T, Relu>>>);
  Staging<Mat<T>> st;
  Mat<T> work, y1, y2, plain, staged;
  const Mat<T> x1 = rng.normal_matrix<T>(7, 3), x2 = rng.normal_matrix<T>(7, 3), gy = rng.normal_matrix<T>(9, 3);
  c.forward(x1, y1, work, st);
  c.backward_input(x1, y1, gy, plain, work);  // a fresh staging: the rows copied out
  const T* kept = st.fy.data();
  c.backward_input(x1, y1, gy, staged, work, st);
  CHECK(staged == plain);
  CHECK(st.fy.data() == kept);
  // the kept rows are what the VJP reads: spoilt, they change its result
  c.forward(x1, y1, work, st);
  st.fy.setZero();
  c.backward_input(x1, y1, gy, staged, work, st);
  CHECK(staged.topRows(5) != plain.topRows(5));
  // after another pass through the same staging, the VJP of the first pass copies its rows again
  c.forward(x1, y1, work, st);
  c.forward(x2, y2, work, st);
  c.backward_input(x1, y1, gy, staged, work, st);
  CHECK(staged == plain);
  // and a same-sized pass into other buffers is not mistaken for it
  Mat<T> y1b;
  c.forward(x2, y1b, work, st);
  c.backward_input(x1, y1, gy, staged, work, st);
  CHECK(staged == plain);
  // the output's buffer counts too: the same x, an equal output in another buffer (the kept
  // rows spoilt, so that reading them would show)
  c.forward(x1, y1, work, st);
  st.fy.setZero();
  const Mat<T> y1copy = y1;
  c.backward_input(x1, y1copy, gy, staged, work, st);
  CHECK(staged == plain);
  // a VJP's own copies are not kept for the next VJP: only a forward keys them
  c.forward(x2, y2, work, st);
  c.backward_input(x1, y1, gy, staged, work, st);  // copies x1's rows
  st.fy.setZero();
  c.backward_input(x1, y1, gy, staged, work, st);  // copies them again
  CHECK(staged == plain);
}

TEST_CASE(
    "Carry passes the feature rows in place to Dense, Conv2d and ConvTranspose2d: the copying path's values bit for "
    "bit") {
  using T = float;
  static_assert(InPlaceRows<Dense<T, Relu>> && InPlaceRows<ConvTranspose2d<T, Tanh>> && InPlaceRows<Conv2d<T, Tanh>>);
  Rng rng(33);
  const Eigen::Index d = 3;
  Dense<T, Relu> dense(6, 9, rng);
  ConvTranspose2d<T, Tanh> conv(Shape3{4, 3, 3}, 2, 4, 2, 1, 0, rng);  // a non-identity: strided cotangent
  fill_uniform(conv.bias(), 4);
  Conv2d<T, Tanh> down(Shape3{4, 6, 6}, 4, 3, 2, 1, rng);  // im2col + GEMM
  Conv2d<T, Tanh> thin(Shape3{1, 6, 6}, 5, 3, 1, 1, rng);  // the direct kernels
  Conv2d<T, Sigmoid> thin_sigmoid(Shape3{1, 6, 6}, 5, 3, 1, 1, rng);
  REQUIRE(!down.computes_directly());
  REQUIRE(thin.computes_directly());
  Carry<Dense<T, Relu>> dense_in_place(dense, d);
  Carry<WholeMatrices<Dense<T, Relu>>> dense_copied(WholeMatrices<Dense<T, Relu>>{dense}, d);
  Carry<ConvTranspose2d<T, Tanh>> conv_in_place(conv, d);
  Carry<WholeMatrices<ConvTranspose2d<T, Tanh>>> conv_copied(WholeMatrices<ConvTranspose2d<T, Tanh>>{conv}, d);
  // exact: bit for bit. Not for the sigmoid, whose Eigen loop takes scalar std::exp on a
  // column's values up to the first 64-byte boundary and packets after it: a column of a block of
  // rows starts elsewhere than the same column copied out, so a value may move by an ulp.
  const auto compare = [&](const auto& in_place, const auto& copied, Eigen::Index batch, const std::string& name,
                           bool exact = true) {
    CAPTURE(name);
    CAPTURE(batch);
    const auto same = [&](const Mat<T>& a, const Mat<T>& b) {
      return exact ? a == b : (a - b).cwiseAbs().maxCoeff() <= 1e-6f * std::max(1.0f, b.cwiseAbs().maxCoeff());
    };
    const Mat<T> x = rng.normal_matrix<T>(in_place.input_size(), batch);
    Mat<T> y1, y2, gx1, gx2, work1, work2;
    Staging<Mat<T>> st1, st2;
    in_place.forward(x, y1, work1, st1);
    copied.forward(x, y2, work2, st2);
    REQUIRE(y1.rows() == in_place.output_size());
    CHECK(same(y1, y2));
    CHECK(y1.bottomRows(d) == x.bottomRows(d));
    const Mat<T> gy = rng.normal_matrix<T>(y1.rows(), batch);
    in_place.backward_input(x, y1, gy, gx1, work1, st1);
    copied.backward_input(x, y2, gy, gx2, work2, st2);
    CHECK(same(gx1, gx2));
    CHECK(gx1.bottomRows(d) == gy.bottomRows(d));
    CHECK(st1.fx.size() == 0);  // nothing staged
    // the mutating VJP with the weight gradients, on copies of both (their own gradient buffers)
    auto a = in_place;
    auto b = copied;
    Mat<T> ga, gb;
    a.backward(x, y1, gy, &ga, true);
    b.backward(x, y2, gy, &gb, true);
    CHECK(same(ga, gb));
    CHECK(ga.bottomRows(d) == gy.bottomRows(d));
    const auto pa = a.parameters(), pb = b.parameters();
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].name);
      CHECK(pa[i].grad.cwiseAbs().maxCoeff() > 0);
      CHECK(same(pa[i].grad, pb[i].grad));
    }
    a.backward(x, y1, gy, nullptr, true);  // no input cotangent: the weights' alone
    b.backward(x, y2, gy, nullptr, true);
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(same(pa[i].grad, pb[i].grad));
  };
  for (const Eigen::Index batch : {1, 5, 40}) {  // one sample, one block, several blocks
    compare(dense_in_place, dense_copied, batch, "Dense");
    compare(conv_in_place, conv_copied, batch, "ConvTranspose2d");
    compare(Carry<Conv2d<T, Tanh>>(down, d), Carry<WholeMatrices<Conv2d<T, Tanh>>>({down}, d), batch, "Conv2d");
    compare(Carry<Conv2d<T, Tanh>>(thin, d), Carry<WholeMatrices<Conv2d<T, Tanh>>>({thin}, d), batch, "Conv2d, direct");
    compare(Carry<Conv2d<T, Sigmoid>>(thin_sigmoid, d), Carry<WholeMatrices<Conv2d<T, Sigmoid>>>({thin_sigmoid}, d),
            batch, "Conv2d, direct, sigmoid", false);
  }
  // shapes are checked before any row is read
  Mat<T> y, gx, work;
  Staging<Mat<T>> st;
  CHECK_THROWS_AS(conv_in_place.forward(Mat<T>::Zero(conv.input_size(), 2), y, work, st), prilo::invalid_input);
  CHECK_THROWS_AS(
      dense_in_place.backward_input(Mat<T>::Zero(6 + d, 2), Mat<T>::Zero(5, 2), Mat<T>::Zero(9 + d, 2), gx, work, st),
      prilo::invalid_input);
}

TEST_CASE("PRILO on a style chain optimises {z_i, z0} with one radius each and lowers the magnitude error") {
  using T = double;
  Rng rng(12);
  auto g = style_chain<T>(rng);
  const prilo::Fourier2d<T> op(4, 8);  // the 2×4×4 output read as one 4×8 image
  const Mat<T> x_true = g.forward_from(0, rng.normal_matrix<T>(4, 3));
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(op, op.apply(x_true).cwiseAbs());
  const Mat<T> z0 = rng.normal_matrix<T>(4, 3);
  prilo::PriloOptions<T> opt;
  opt.initial.steps = 20;
  opt.noise.enabled = false;
  opt.reading = prilo::PriloReading::chained;
  opt.stages = {{.layer = 3, .repetitions = 2, .forward = {.steps = 40, .radius = 1, .learning_rate = T(0.05)}}};
  opt.stages[0].forward.radii = {T(2), T(0.5)};  // z_3 (12 rows) within 2, z0 (4 rows) within 0.5
  Rng r(1);
  seen.clear();
  const auto res = prilo::prilo_solve<RecordingPolicies>(g, loss, z0, opt, r);
  REQUIRE(res.x.allFinite());
  // each tensor of the state in the ball of its own radius, around the phase's start
  REQUIRE(g.blocks(3) == std::vector<Eigen::Index>{12, 4});
  check_chained_balls(g, opt);
  const auto start = loss.value(g.forward_from(0, z0));
  CHECK(res.magnitude_error.sum() * T(op.output_size()) < start.sum());
  opt.stages[0].forward.radii = {T(2)};
  Rng r2(1);
  CHECK_THROWS_WITH_AS(prilo::prilo_solve(g, loss, z0, opt, r2),
                       doctest::Contains("phase gives 1 radii, the generator's state at layer"), prilo::invalid_input);
}

TEST_CASE("Modulate's VJP checks its output y; Carry refuses an inner module of no fixed size, by name") {
  using T = double;
  Rng rng(1);
  Modulate<T, LeakyRelu> m(2, 9, 3, rng);
  const Mat<T> x = rng.normal_matrix<T>(m.input_size(), 2);
  Mat<T> y, gx, work;
  m.forward(x, y);
  const Mat<T> gy = rng.normal_matrix<T>(y.rows(), 2);
  const Mat<T> short_y = y.topRows(3);  // read out of bounds before
  CHECK_THROWS_WITH_AS(m.backward_input(x, short_y, gy, gx, work),
                       doctest::Contains("Modulate output: expected a 21x2 matrix, got 3x2"), prilo::invalid_input);
  m.backward_input(x, y, gy, gx, work);
  CHECK(gx.rows() == x.rows());
  // an activation takes any size (input_size() −1): it was taken for the feature rows
  CHECK_THROWS_WITH_AS(Carry<LeakyReLU<T>>(LeakyReLU<T>(), 3),
                       doctest::Contains("Carry: the inner module must have a fixed input size, got -1"),
                       prilo::invalid_input);
}

}  // namespace

}  // namespace prilo_test_style

// Style chains (nn/style.hpp): z0 fed into every layer beside the features, the split state
// {z_i, z0} of the paper's StyleGAN runs. VJPs by finite differences at every split point, the
// modulation's weight gradient, the blocks a split point declares, and PRILO over both tensors.
#include <doctest/doctest.h>

#include <prilo/nn/conv.hpp>
#include <prilo/nn/linear.hpp>
#include <prilo/nn/sequential.hpp>
#include <prilo/nn/style.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/solvers/latent.hpp>
#include <prilo/testing/checkers.hpp>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_style {

namespace {

using prilo::Mat;
using prilo::Rng;
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
    mc.bias().setRandom();
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
  m.bias().setRandom();
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
  Carry<Dense<T, Relu>> c(Dense<T, Relu>(5, 7, rng), 2);  // ReLU: the VJP reads the output rows
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
  const auto res = prilo::prilo_solve(g, loss, z0, opt, r);
  REQUIRE(res.x.allFinite());
  const auto start = loss.value(g.forward_from(0, z0));
  CHECK(res.magnitude_error.sum() * T(op.output_size()) < start.sum());
  opt.stages[0].forward.radii = {T(2)};
  Rng r2(1);
  CHECK_THROWS_WITH_AS(prilo::prilo_solve(g, loss, z0, opt, r2), doctest::Contains("2 block(s) but 1 radii"),
                       prilo::invalid_input);
}

}  // namespace

}  // namespace prilo_test_style

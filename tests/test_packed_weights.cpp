// Weights packed once for their products (prilo/exec/packed_weights.hpp, oneDNN's matmul):
// products against a double-precision reference at every layout the layers pass (whole
// matrices, views with outer strides, both transpositions, square weights), concurrent use
// from OpenMP threads, and nn::Dense's snapshot: the same layer up to rounding, dropped when
// the weights may change. Built where the build has oneDNN (PRILO_HAVE_ONEDNN).
#include <doctest/doctest.h>

#if defined(PRILO_HAVE_ONEDNN)

#include <prilo/methods.hpp>
#include <prilo/nn.hpp>
#include <prilo/parallel.hpp>

#include <string>
#include <vector>

namespace prilo_test_packed_weights {

using namespace prilo;

namespace {
Mat<float> random_matrix(Eigen::Index r, Eigen::Index c, Rng& rng) {
  Mat<float> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = float(rng.normal());
  return m;
}
// |y − op(W) x| entry by entry against the double-precision product, relative to Σ|w||x| (the
// bound of float accumulation in any order is about k·ε times it).
void check_product(const Mat<float>& w, bool transposed, const Mat<float>& x, const Mat<float>& y) {
  const Mat<double> wd = w.cast<double>(), xd = x.cast<double>();
  const Mat<double> ref = transposed ? Mat<double>(wd.transpose() * xd) : Mat<double>(wd * xd);
  const Mat<double> scale =
      transposed ? Mat<double>(wd.cwiseAbs().transpose() * xd.cwiseAbs()) : Mat<double>(wd.cwiseAbs() * xd.cwiseAbs());
  REQUIRE(y.rows() == ref.rows());
  REQUIRE(y.cols() == ref.cols());
  const double k = double(transposed ? w.rows() : w.cols());
  for (Eigen::Index j = 0; j < y.cols(); ++j)
    for (Eigen::Index i = 0; i < y.rows(); ++i)
      REQUIRE(std::abs(double(y(i, j)) - ref(i, j)) <= 4 * k * 6e-8 * scale(i, j) + 1e-30);
}
}  // namespace

TEST_CASE("PackedWeights: y = W x and Wᵀ x against a double-precision product, whole and through views") {
  Rng rng(11);
  struct Shape {
    Eigen::Index m, k;
  };
  for (const Shape s : {Shape{7, 5}, Shape{5, 7}, Shape{64, 64}, Shape{784, 500}, Shape{500, 20}}) {
    CAPTURE(s.m);
    CAPTURE(s.k);
    const Mat<float> w = random_matrix(s.m, s.k, rng);
    const onednn::PackedWeights packed(w);
    CHECK(packed.rows() == s.m);
    CHECK(packed.cols() == s.k);
    CHECK_FALSE(packed.implementation(false, 8).empty());  // the kernel oneDNN chose, by name
    for (const bool transposed : {false, true}) {
      const Eigen::Index in = transposed ? s.m : s.k, out = transposed ? s.k : s.m;
      for (const Eigen::Index n : {1, 3, 17, 128}) {
        CAPTURE(transposed);
        CAPTURE(n);
        const Mat<float> x = random_matrix(in, n, rng);
        Mat<float> y(out, n);
        packed.product(transposed, x, y);
        check_product(w, transposed, x, y);
        // x a block of rows of a taller matrix, y a block of rows of another: the rows around
        // the block are not touched
        Mat<float> big_x = random_matrix(in + 5, n, rng);
        big_x.middleRows(2, in) = x;
        Mat<float> big_y = Mat<float>::Constant(out + 4, n, 7.f);
        packed.product(transposed, big_x.middleRows(2, in), big_y.middleRows(3, out));
        CHECK(big_y.topRows(3).isApprox(Mat<float>::Constant(3, n, 7.f)));
        CHECK(big_y.bottomRows(1).isApprox(Mat<float>::Constant(1, n, 7.f)));
        check_product(w, transposed, x, big_y.middleRows(3, out));  // strides of their own: maybe another kernel
      }
    }
  }
}

TEST_CASE("PackedWeights: products from OpenMP threads at once give the serial values bit for bit") {
  Rng rng(12);
  const Mat<float> w = random_matrix(300, 200, rng);
  const onednn::PackedWeights packed(w);
  constexpr int items = 16;
  std::vector<Mat<float>> xs, serial(items), threaded(items);
  for (int i = 0; i < items; ++i) xs.push_back(random_matrix(i % 2 ? 300 : 200, 8 + 16 * (i % 4), rng));
  const auto run = [&](int i, std::vector<Mat<float>>& out) {
    const bool transposed = i % 2 == 1;
    out[std::size_t(i)].resize(transposed ? 200 : 300, xs[std::size_t(i)].cols());
    packed.product(transposed, xs[std::size_t(i)], out[std::size_t(i)]);
  };
  for (int i = 0; i < items; ++i) run(i, serial);
  parallel_for_dynamic(items, 2, [&](Eigen::Index i, int) { run(int(i), threaded); });
  for (int i = 0; i < items; ++i) CHECK(threaded[std::size_t(i)] == serial[std::size_t(i)]);
}

TEST_CASE("PackedWeights: a thread's kept memory objects serve the right weights, batches and layouts") {
  // product() keeps per thread the memory objects of the last 32 (object, layout) pairs it ran.
  // Objects of one shape made and destroyed in turn (a new one may sit where the last one was),
  // one kept alive in between, one of another shape with the same layout (column count and
  // strides), and more layouts than are kept (the first ones are made again): every product is
  // checked against the reference.
  Rng rng(13);
  const Mat<float> w0 = random_matrix(40, 30, rng);
  const onednn::PackedWeights kept(w0);
  const Mat<float> w50 = random_matrix(50, 30, rng);
  const onednn::PackedWeights taller(w50);
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    const Mat<float> w = random_matrix(40, 30, rng);
    const onednn::PackedWeights packed(w);
    const Eigen::Index n = 1 + round;  // a new layout every round: 40 of them
    for (const bool transposed : {false, true}) {
      const Mat<float> x = random_matrix(transposed ? 40 : 30, n, rng);
      Mat<float> y(transposed ? 30 : 40, n), y0(transposed ? 30 : 40, n);
      packed.product(transposed, x, y);
      check_product(w, transposed, x, y);
      kept.product(transposed, x, y0);
      check_product(w0, transposed, x, y0);
      // the same batch again into another output: the same values bit for bit
      Mat<float> again(y.rows(), n);
      packed.product(transposed, x, again);
      CHECK(again == y);
    }
    // y = W x into rows of a 50-row matrix, then the 50×30 weights with the same strides
    const Mat<float> x = random_matrix(30, n, rng);
    Mat<float> y50 = Mat<float>::Zero(50, n);
    packed.product(false, x, y50.topRows(40));
    check_product(w, false, x, y50.topRows(40));
    taller.product(false, x, y50);
    check_product(w50, false, x, y50);
  }
  const Mat<float> x = random_matrix(30, 1, rng);  // the first layout, long evicted
  Mat<float> y(40, 1);
  kept.product(false, x, y);
  check_product(w0, false, x, y);
}

TEST_CASE("PackedWeights: shapes that do not fit are errors that name them") {
  Rng rng(13);
  const onednn::PackedWeights packed(random_matrix(6, 4, rng));
  Mat<float> y(6, 3);
  CHECK_THROWS_WITH_AS(packed.product(false, Mat<float>(5, 3), y), doctest::Contains("PackedWeights product input"),
                       invalid_input);
  Mat<float> bad(5, 3);
  CHECK_THROWS_WITH_AS(packed.product(false, Mat<float>(4, 3), bad), doctest::Contains("PackedWeights product output"),
                       invalid_input);
  CHECK_THROWS_AS(onednn::PackedWeights(Mat<float>(0, 3)), invalid_input);
}

TEST_CASE(
    "Dense with packed weights: the unpacked layer's values up to rounding; weight() and parameters() drop them") {
  Rng rng(14);
  nn::Dense<float, nn::Sigmoid> layer(40, 30, rng);
  const Mat<float> x = random_matrix(40, 9, rng), gy = random_matrix(30, 9, rng);
  Mat<float> y0, y1, gx0, gx1, work;
  layer.forward(x, y0);
  layer.backward_input(x, y0, gy, gx0, work);
  CHECK_FALSE(layer.weights_packed());
  layer.pack_weights();
  CHECK(layer.weights_packed());
  layer.forward(x, y1);
  layer.backward_input(x, y1, gy, gx1, work);
  CHECK(y1.isApprox(y0, 1e-5f));
  CHECK(gx1.isApprox(gx0, 1e-5f));
  // the view forms read the same packed weights
  Mat<float> y2(30, 9), gx2(40, 9);
  layer.forward_into(x, y2);
  layer.backward_input_into(x, y2, gy, gx2, work);
  CHECK(y2 == y1);
  CHECK(gx2 == gx1);

  // a copy shares the snapshot; changing its weights drops its own and is seen by its products
  nn::Dense<float, nn::Sigmoid> copy = layer;
  CHECK(copy.weights_packed());
  copy.weight() *= 2.f;
  CHECK_FALSE(copy.weights_packed());
  CHECK(layer.weights_packed());
  Mat<float> y3;
  copy.forward(x, y3);
  Mat<float> expect = (2.f * layer.weight() * x).colwise() + layer.bias();
  expect = expect.unaryExpr([](float v) { return 1.f / (1.f + std::exp(-v)); });
  CHECK(y3.isApprox(expect, 1e-5f));
  layer.parameters();
  CHECK_FALSE(layer.weights_packed());
}

TEST_CASE("OnHost packs a copy of the decoder: the original keeps its weights unpacked") {
  Rng rng(15);
  auto gen = nn::Sequential<float, nn::Dense<float, nn::Relu>, nn::Dense<float, nn::Sigmoid>>(
      8, nn::Dense<float, nn::Relu>(8, 16, rng), nn::Dense<float, nn::Sigmoid>(16, 12, rng));
  static_assert(nn::PacksWeights<decltype(gen)>);
  const auto& packed = OnHost{}.generator(gen);
  static_assert(!std::is_reference_v<decltype(OnHost{}.generator(gen))>);
  const Mat<float> z = random_matrix(8, 5, rng);
  CHECK(packed(z).isApprox(gen(z), 1e-5f));
  CHECK(packed.module<0>().weights_packed());
  CHECK(packed.module<1>().weights_packed());
  CHECK_FALSE(gen.module<0>().weights_packed());
  CHECK_FALSE(gen.module<1>().weights_packed());
  // Sequential's parameters() drops every layer's snapshot
  gen.pack_weights();
  CHECK(gen.module<1>().weights_packed());
  gen.parameters();
  CHECK_FALSE(gen.module<0>().weights_packed());
  CHECK_FALSE(gen.module<1>().weights_packed());
}

}  // namespace prilo_test_packed_weights

#endif  // PRILO_HAVE_ONEDNN

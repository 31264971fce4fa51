// A split state holding several tensors ({z_i, z0}, as in a generator that feeds z0 into
// every layer), each with its own l1 radius: the block projection, a style-like generator
// through the conformance checker, and PRILO on it with per-block radii.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/projection/blocks.hpp>
#include <prilo/projection/l1_ball.hpp>
#include <prilo/solvers/latent.hpp>
#include <prilo/testing/checkers.hpp>

#include "recording_balls.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_split_state {

namespace {

using prilo::Mat;
using Index = Eigen::Index;

/// z0 → [h; z0] with h = relu(W1 z0 + b1), then x = sigmoid(W2 h + U2 z0 + b2): z0 enters
/// both layers, so the state at split point 1 holds two tensors, h (z_1) and z0.
template <class T>
class StyleChain {
 public:
  using scalar = T;
  struct Trace {
    std::vector<Mat<T>> acts;
    int first = 0, last = 0;
    const Mat<T>& output() const { return acts[std::size_t(last)]; }
  };
  using trace_type = Trace;

  StyleChain(Index d, Index h, Index n, prilo::Rng& rng) : d_(d), h_(h), n_(n) {
    w1_ = rng.normal_matrix<T>(h, d) / T(std::sqrt(double(d)));
    b1_ = rng.normal_matrix<T>(h, 1) * T(0.1);
    w2_ = rng.normal_matrix<T>(n, h) / T(std::sqrt(double(h)));
    u2_ = rng.normal_matrix<T>(n, d) / T(std::sqrt(double(d)));
    b2_ = rng.normal_matrix<T>(n, 1) * T(0.1);
  }
  int depth() const { return 2; }
  Index dim(int i) const { return i == 0 ? d_ : i == 1 ? h_ + d_ : n_; }
  std::vector<Index> blocks(int i) const { return i == 1 ? std::vector<Index>{h_, d_} : std::vector<Index>{dim(i)}; }

  Mat<T> forward(int i, int j, const Mat<T>& z) const {
    Trace tr;
    forward(i, j, z, tr);
    return tr.output();
  }
  Mat<T> forward_from(int i, const Mat<T>& z) const { return forward(i, 2, z); }
  void forward(int i, int j, const Mat<T>& z, Trace& tr) const {
    prilo::require_shape(z, dim(i), z.cols(), "StyleChain input");
    tr.acts.assign(3, Mat<T>());
    tr.first = i;
    tr.last = j;
    tr.acts[std::size_t(i)] = z;
    for (int k = i; k < j; ++k) {
      const Mat<T>& a = tr.acts[std::size_t(k)];
      Mat<T>& out = tr.acts[std::size_t(k + 1)];
      if (k == 0) {
        out.resize(h_ + d_, a.cols());
        out.topRows(h_) = ((w1_ * a).colwise() + b1_.col(0)).cwiseMax(T(0));
        out.bottomRows(d_) = a;
      } else {
        const Mat<T> pre = (w2_ * a.topRows(h_) + u2_ * a.bottomRows(d_)).colwise() + b2_.col(0);
        out = pre.unaryExpr([](T v) { return T(1) / (T(1) + std::exp(-v)); });
      }
    }
  }
  Mat<T> vjp_input(const Trace& tr, const Mat<T>& gy) const {
    Mat<T> g = gy;
    for (int k = tr.last - 1; k >= tr.first; --k) {
      const Mat<T>& out = tr.acts[std::size_t(k + 1)];
      if (k == 1) {
        const Mat<T> s = (g.array() * out.array() * (T(1) - out.array())).matrix();
        Mat<T> gin(h_ + d_, g.cols());
        gin.topRows(h_) = w2_.transpose() * s;
        gin.bottomRows(d_) = u2_.transpose() * s;
        g = std::move(gin);
      } else {
        const Mat<T> s = (g.topRows(h_).array() * (out.topRows(h_).array() > T(0)).template cast<T>()).matrix();
        Mat<T> gin = w1_.transpose() * s + g.bottomRows(d_);  // not into g: it reads g's rows
        g = std::move(gin);
      }
    }
    return g;
  }
  Mat<T> vjp_weights(const Trace& tr, const Mat<T>& gy) { return vjp_input(tr, gy); }  // no training here

 private:
  Index d_, h_, n_;
  Mat<T> w1_, b1_, w2_, u2_, b2_;
};
static_assert(prilo::Generator<StyleChain<double>>);

TEST_CASE("BlockProjection is the product of its parts' projections, and checks its blocks") {
  using T = double;
  prilo::Rng rng(4);
  const prilo::BlockProjection<T, prilo::L1Ball<T>> p{{5, 3}, {{.radius = 0.5}, {.radius = 2.0}}};
  const auto conf = prilo::testing::check_projection<T>(p, 8, 20, rng);
  CHECK_MESSAGE(conf.ok, conf.failures);
  Mat<T> x = rng.normal_matrix<T>(8, 6) * 3, c = rng.normal_matrix<T>(8, 1);
  Mat<T> top = x.topRows(5), bottom = x.bottomRows(3);
  p.project(x, c);
  prilo::L1Ball<T>{.radius = 0.5}.project(top, c.topRows(5));
  prilo::L1Ball<T>{.radius = 2.0}.project(bottom, c.bottomRows(3));
  CHECK(x.topRows(5) == top);
  CHECK(x.bottomRows(3) == bottom);
  const prilo::BlockProjection<T, prilo::L1Ball<T>> wrong{{5, 2}, {{.radius = 1}, {.radius = 1}}};
  CHECK_THROWS_AS(wrong.project(x, c), prilo::invalid_input);
}

TEST_CASE("a generator whose split state holds {z_i, z0} passes the conformance checker") {
  prilo::Rng rng(2);
  StyleChain<double> g(4, 10, 16, rng);
  const auto conf = prilo::testing::check_generator(g, 3, rng);
  CHECK_MESSAGE(conf.ok, conf.failures);
}

using prilo::test_support::RecordingPolicies;
using prilo::test_support::Seen;
using prilo::test_support::seen;

TEST_CASE("PRILO on {z_i, z0} keeps each tensor in its own ball (PhaseOptions::radii)") {
  using T = double;
  prilo::Rng rng(6);
  StyleChain<T> g(4, 10, 16, rng);
  const prilo::Fourier2d<T> op(4, 4);
  const Mat<T> x_true = g.forward_from(0, rng.normal_matrix<T>(4, 3));
  const Mat<T> y = op.apply(x_true).cwiseAbs();
  const prilo::MagnitudeLoss<prilo::Fourier2d<T>> loss(op, y);
  prilo::PriloOptions<T> opt;
  opt.initial.steps = 30;
  opt.reading = prilo::PriloReading::chained;
  opt.stages = {{.layer = 1, .repetitions = 2, .forward = {.steps = 40, .radius = 1, .learning_rate = T(0.05)}}};
  opt.stages[0].forward.radii = {T(3), T(0.25)};  // z_1 (10 rows) within 3, z0 (4 rows) within 0.25
  seen.clear();
  prilo::Rng r(1);
  const Mat<T> z_start = rng.normal_matrix<T>(4, 3);
  const auto res = prilo::prilo_solve<RecordingPolicies>(g, loss, z_start, opt, r);
  CHECK(res.x.allFinite());
  // the calls in order: the initial phase's 30 steps on z0 (4 rows, its own radius), then each
  // of the 2 repetitions' 40 A steps project z_1 (10 rows, radius 3) and z0 (4 rows, 0.25)
  const std::size_t initial = 30;
  REQUIRE(seen.size() == initial + 2 * 40 * 2);
  for (std::size_t k = 0; k < initial; ++k) {
    CHECK(seen[k].rows == 4);
    CHECK(seen[k].radius == 100.0);
    CHECK(seen[k].centre == Mat<T>::Zero(4, 1));  // the initial phase's ball is around the origin
  }
  // the first repetition's ball is around G_1(z0*), z0* the initial phase's last point; the
  // second's is re-centred where the first ended (PriloReading::chained)
  const Mat<T> z0_star = seen[initial - 1].x;
  const Mat<T> first_centre = g.forward(0, 1, z0_star);
  for (int rep = 0; rep < 2; ++rep) {
    CAPTURE(rep);
    const std::size_t at = initial + std::size_t(rep) * 80;
    const Mat<T> centre =
        rep == 0 ? first_centre : (Mat<T>(14, 3) << seen[at - 2].x, seen[at - 1].x).finished();  // rep 1's last z_1, z0
    for (std::size_t k = at; k < at + 80; k += 2) {
      const Seen &z1 = seen[k], &z0 = seen[k + 1];
      REQUIRE(z1.rows == 10);
      REQUIRE(z0.rows == 4);
      CHECK(z1.radius == 3.0);
      CHECK(z0.radius == 0.25);
      CHECK(z1.centre == centre.topRows(10));
      CHECK(z0.centre == centre.bottomRows(4));
    }
  }
  // a radii list that does not match the state's tensors is an error naming the counts
  opt.stages[0].forward.radii = {T(3)};
  opt.stages[0].forward.radii.push_back(T(1));
  opt.stages[0].forward.radii.push_back(T(1));
  prilo::Rng r2(1);
  CHECK_THROWS_WITH_AS(prilo::prilo_solve(g, loss, rng.normal_matrix<T>(4, 3), opt, r2),
                       doctest::Contains("phase gives 3 radii, the generator's state at layer"), prilo::invalid_input);
}

}  // namespace

}  // namespace prilo_test_split_state

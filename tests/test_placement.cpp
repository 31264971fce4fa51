// The learned placement scorer of -resolve (prilo/solvers/placement_scorer.hpp): its training
// groups (every candidate a transform with the same DFT magnitudes), its listwise loss and
// gradient against finite differences, its files, and a small one trained here on decoded
// Fashion-MNIST training images.
#include <doctest/doctest.h>

#include <filesystem>
#include <prilo/interrupt.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/operators.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/solvers/placement_scorer.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_placement {

using namespace prilo;
using test_support::data_dir;
using test_support::error_of;
namespace fs = std::filesystem;

namespace {

/// A random nonnegative h×w image with no symmetry to speak of (every transform differs).
template <class T>
Vec<T> asymmetric_image(int h, int w, std::uint64_t seed) {
  Rng rng(seed);
  Vec<T> x(h * w);
  for (Eigen::Index i = 0; i < x.size(); ++i) x(i) = T(rng.uniform());
  return x;
}
}  // namespace

TEST_CASE("placement groups: x first, then distinct transforms of x, each with the DFT magnitudes of x") {
  using T = double;
  const int h = 6, w = 7, radius = 1, far = 9;
  const Vec<T> x = asymmetric_image<T>(h, w, 3);
  const Eigen::Index K = placement_group_size(radius, far);
  CHECK(K == 2 * 9 + far);
  Mat<T> out(h * w, K + 2);
  Rng rng(4);
  placement_group(x, h, w, radius, far, rng, out, 2);
  CHECK(out.col(2) == x);
  Fourier2d<T> F(h, w);
  const Mat<T> mx = measure(F, Mat<T>(x));
  const Mat<T> all = measure(F, Mat<T>(out.rightCols(K)));
  for (Eigen::Index k = 0; k < K; ++k) {
    CAPTURE(k);
    CHECK((all.col(k) - mx.col(0)).cwiseAbs().maxCoeff() < 1e-9);
    if (k > 0) CHECK((out.col(2 + k) - x).norm() > 1e-6);  // never x itself again
  }
  // the window's transforms are all different (the far ones may repeat them)
  const Eigen::Index W = placement_window_size(radius);
  for (Eigen::Index a = 0; a < W; ++a)
    for (Eigen::Index b = a + 1; b < W; ++b) CHECK((out.col(2 + a) - out.col(2 + b)).norm() > 1e-6);
  // the reflected window is centred on the reflected object: its middle is the reflection
  // shifted by (−1, −1): the flip about the frame's centre, pixel (r, c) of x at (h − 1 − r, w − 1 − c)
  const Vec<T> mid = out.col(2 + 9 + 4);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) CHECK(mid((h - 1 - r) * w + (w - 1 - c)) == x(r * w + c));
  CHECK_THROWS_AS(placement_group(x, h, w, radius, far, rng, out, 4), invalid_input);  // too few columns
  CHECK_THROWS_WITH_AS(placement_group(x, h, w, radius, far, rng, out, -1),
                       doctest::Contains("placement group: first column c0 must be >= 0, got -1"), invalid_input);
  CHECK_THROWS_AS(placement_window_size(-1), invalid_input);
  // a window wider than the image would repeat its shifts (x among its own negatives)
  CHECK_THROWS_WITH_AS(placement_window(x, h, w, 3, out, 0), doctest::Contains("radius 3 is too wide for 6x7"),
                       invalid_input);
  CHECK_NOTHROW(check_placement_radius(2, h, w));
  CHECK_THROWS_AS(placement_group_size(1, -1), invalid_input);
}

TEST_CASE("placement loss: the listwise cross-entropy, its top-1, and its weight gradient against finite differences") {
  using T = double;
  const int h = 4, w = 5, radius = 1, far = 2;
  PlacementScorer<T> s({.height = h, .width = w, .hidden = 6}, 9);
  const Eigen::Index K = placement_group_size(radius, far), G = 3;
  Mat<T> cand(h * w, G * K);
  Rng rng(2);
  for (Eigen::Index g = 0; g < G; ++g)
    placement_group(asymmetric_image<T>(h, w, 10 + std::uint64_t(g)), h, w, radius, far, rng, cand, g * K);
  s.zero_grad();
  const auto l = placement_loss(s, cand, K, true);
  // the value against the definition
  const Mat<T> logit = s.logits(cand);
  double want = 0, hits = 0;
  for (Eigen::Index g = 0; g < G; ++g) {
    const Eigen::RowVectorXd sg = logit.middleCols(g * K, K).row(0);
    want += std::log((sg.array() - sg(0)).exp().sum()) / double(G);
    Eigen::Index arg = 0;
    sg.maxCoeff(&arg);
    hits += arg == 0;
  }
  CHECK(double(l.loss) == doctest::Approx(want).epsilon(1e-12));
  CHECK(double(l.top1) == doctest::Approx(hits / double(G)));
  // ∂loss/∂(weights), every entry, against central differences
  double worst = 0;
  for (auto& p : s.parameters())
    for (Eigen::Index i = 0; i < p.value.size(); ++i) {
      const T keep = p.value.data()[i];
      p.value.data()[i] = keep + 1e-6;
      const double up = placement_loss(s, cand, K, false).loss;
      p.value.data()[i] = keep - 1e-6;
      const double down = placement_loss(s, cand, K, false).loss;
      p.value.data()[i] = keep;
      const double fd = (up - down) / 2e-6;
      worst = std::max(worst, std::abs(double(p.grad.data()[i]) - fd) / std::max(1.0, std::abs(fd)));
    }
  MESSAGE("placement loss: worst relative gradient error " << worst);
  CHECK(worst < 1e-6);
  CHECK_THROWS_AS(placement_loss(s, cand, 1, false), invalid_input);
  CHECK_THROWS_AS(placement_loss(s, Mat<T>(cand.leftCols(K + 1)), K, false), invalid_input);
  CHECK_THROWS_AS(s.logits(Mat<T>::Zero(h * w + 1, 2)), invalid_input);
}

TEST_CASE("placement scorer files: saved and loaded by name; bad files name the problem") {
  using T = float;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR);
  fs::create_directories(dir);
  PlacementScorer<T> s({.height = 6, .width = 5, .hidden = 7}, 3);
  Rng rng(1);
  const Mat<T> x = Mat<T>(rng.normal_matrix<T>(30, 4)).cwiseAbs();
  save_placement_scorer(dir / "scorer.prw", s);
  const auto back = load_placement_scorer<T>(dir / "scorer.prw");
  CHECK(back.spec().height == 6);
  CHECK(back.spec().width == 5);
  CHECK(back.spec().hidden == 7);
  CHECK(back.logits(x) == s.logits(x));
  // by name: the order of the file does not matter
  auto f = io::load_weights<T>(dir / "scorer.prw");
  std::reverse(f.tensors.begin(), f.tensors.end());
  io::save_weights(dir / "scorer-reversed.prw", f);
  CHECK(load_placement_scorer<T>(dir / "scorer-reversed.prw").logits(x) == s.logits(x));

  std::string e = error_of([&] { (void)load_placement_scorer<T>(dir / "no-such-scorer.prw"); });
  CHECK_MESSAGE(e.find("no-such-scorer.prw") != std::string::npos, e);
  io::WeightsFile<T> other;
  other.arch = "vae-mlp";
  other.sizes = {6, 5, 7};
  other.add("x", Mat<T>::Zero(1, 1));
  io::save_weights(dir / "not-scorer.prw", other);
  e = error_of([&] { (void)load_placement_scorer<T>(dir / "not-scorer.prw"); });
  CHECK_MESSAGE(e.find("is not a placement scorer") != std::string::npos, e);
  // a corrupt hidden size: refused from the first layer's shape, before any allocation
  auto g = io::load_weights<T>(dir / "scorer.prw");
  g.sizes[2] = 1000000;
  io::save_weights(dir / "scorer-sizes.prw", g);
  e = error_of([&] { (void)load_placement_scorer<T>(dir / "scorer-sizes.prw"); });
  CHECK_MESSAGE(e.find("corrupt: tensor \"scorer.0.weight\" is 7x30") != std::string::npos, e);
  // a missing tensor, a NaN
  g = io::load_weights<T>(dir / "scorer.prw");
  g.tensors.erase(
      std::find_if(g.tensors.begin(), g.tensors.end(), [](const auto& t) { return t.name == "scorer.2.bias"; }));
  io::save_weights(dir / "scorer-missing.prw", g);
  e = error_of([&] { (void)load_placement_scorer<T>(dir / "scorer-missing.prw"); });
  CHECK_MESSAGE(e.find("scorer.2.bias") != std::string::npos, e);
  g = io::load_weights<T>(dir / "scorer.prw");
  g.tensors[1].value(0, 0) = std::numeric_limits<T>::quiet_NaN();
  io::save_weights(dir / "scorer-nan.prw", g);
  e = error_of([&] { (void)load_placement_scorer<T>(dir / "scorer-nan.prw"); });
  CHECK_MESSAGE(e.find("NaN") != std::string::npos, e);
  CHECK_THROWS_AS(PlacementScorer<T>(PlacementScorerSpec{.hidden = 0}, 1), invalid_input);

  // a default-constructed scorer has no network: named (it read a 28x28 spec and failed deep
  // inside the network), in logits and the loss
  const PlacementScorer<T> none;
  CHECK_FALSE(none.has_network());
  CHECK(s.has_network());
  e = error_of([&] { (void)none.logits(Mat<T>::Zero(784, 2)); });
  CHECK_MESSAGE(
      e.find("PlacementScorer::logits: the placement scorer was made by its default constructor") != std::string::npos,
      e);
  PlacementScorer<T> empty_loss_scorer;
  e = error_of([&] { (void)placement_loss(empty_loss_scorer, Mat<T>::Zero(784, 4), 2, false); });
  CHECK_MESSAGE(e.find("placement loss: the placement scorer was made by its default constructor") != std::string::npos,
                e);
  // no candidates: one or more groups (the loss of none was NaN)
  e = error_of([&] { (void)placement_loss(s, Mat<T>::Zero(30, 0), 2, false); });
  CHECK_MESSAGE(
      e.find("placement loss: one or more groups of K >= 2 candidates, got K = 2 and 0 columns") != std::string::npos,
      e);
}

TEST_CASE("a placement scorer trained on decoded Fashion-MNIST training images ranks held ones first") {
  // train_placement_scorer (prilo-train-placement's loop), small: 2000 training images decoded
  // by the style VAE (G(mu(x)), its positives), 3 epochs of groups (window radius 1, 6 far
  // transforms), then the top-1 among all 1568 transforms of 200 held images (measured 0.585,
  // 0.67, 0.675 after each epoch; chance 1/1568)
  using T = float;
  const auto data = io::load_dataset<T>(data_dir(), "fashion-mnist", "train", 0, 2200);
  const auto vae = nn::load_style_vae<T>(io::prior_files("fashion-mnist", "style", "", "", PRILO_SOURCE_DIR).weights);
  const Mat<T> pos = vae.decoder()(vae.encode(data.images).first);
  PlacementScorer<T> s({.height = 28, .width = 28, .hidden = 32}, 1);
  const Mat<T> held = pos.rightCols(200);
  const double before = placement_top1(s, held);
  double first_loss = -1, last_loss = 0;
  std::vector<PlacementEpochReport> epochs;
  const auto r = train_placement_scorer(s, Mat<T>(pos.leftCols(2000)), held,
                                        {.epochs = 3, .batch = 32, .radius = 1, .far = 6, .seed = 2},
                                        {.batch =
                                             [&](const PlacementBatchReport& b) {
                                               if (first_loss < 0) first_loss = b.loss;
                                               last_loss = b.loss;
                                             },
                                         .epoch = [&](const PlacementEpochReport& e) { epochs.push_back(e); }});
  REQUIRE(epochs.size() == 3u);
  MESSAGE("placement scorer: loss " << first_loss << " -> " << last_loss << ", top-1 on 200 held images " << before
                                    << " (untrained) -> " << epochs[0].validation_top1 << ", "
                                    << epochs[1].validation_top1 << ", " << epochs[2].validation_top1 << "; kept epoch "
                                    << r.best_epoch);
  CHECK(before < 0.05);
  CHECK(last_loss < 0.6 * first_loss);
  CHECK(r.best_top1 >= 0.4);
  // the scorer returned is the best epoch's
  CHECK(placement_top1(s, held) == r.best_top1);
  double best = -1;
  for (const auto& e : epochs) best = std::max(best, e.validation_top1);
  CHECK(r.best_top1 == best);
}

TEST_CASE(
    "train_placement_scorer: the best epoch in memory and in its file, a stop request keeps it; bad input named") {
  using T = float;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR) / "placement_training";
  fs::create_directories(dir);
  Rng rng(5);
  Mat<T> images(64, 140);  // 8×8 blobs at one place, with random shapes: their placement is learnable
  images.setZero();
  for (Eigen::Index j = 0; j < images.cols(); ++j)
    for (int r = 2; r < 6; ++r)
      for (int c = 2; c < 6; ++c) images(r * 8 + c, j) = T(0.2 + 0.8 * rng.uniform());
  const Mat<T> train = images.leftCols(100), val = images.rightCols(40);
  PlacementTrainingOptions o{.epochs = 4, .batch = 16, .learning_rate = 3e-3, .radius = 1, .far = 4, .seed = 1};
  o.output = dir / "scorer.prw";
  PlacementScorer<T> s({.height = 8, .width = 8, .hidden = 16}, 3);
  std::vector<PlacementEpochReport> epochs;
  const auto r =
      train_placement_scorer(s, train, val, o, {.epoch = [&](const PlacementEpochReport& e) { epochs.push_back(e); }});
  REQUIRE(epochs.size() == 4u);
  MESSAGE("8x8 blobs: validation top-1 per epoch " << epochs[0].validation_top1 << ", " << epochs[1].validation_top1
                                                   << ", " << epochs[2].validation_top1 << ", "
                                                   << epochs[3].validation_top1);
  CHECK(r.epochs_done == 4);
  CHECK(r.best_top1 > 0.3);  // measured 0.575 (epoch 1, the 4th 0.55); chance: 1/128
  CHECK(placement_top1(s, val) == r.best_top1);
  const PlacementScorer<T> loaded = load_placement_scorer<T>(o.output);
  CHECK((loaded.logits(val) - s.logits(val)).norm() == 0);

  struct ClearStop {
    ~ClearStop() { clear_stop(); }
  } clear;
  PlacementScorer<T> cut({.height = 8, .width = 8, .hidden = 16}, 3);
  o.output.clear();
  const auto rc = train_placement_scorer(cut, train, val, o, {.batch = [](const PlacementBatchReport& b) {
                                           if (b.epoch == 2 && b.batch == 3) request_stop();
                                         }});
  CHECK(rc.interrupted);
  CHECK(rc.stopped_in == 2);
  CHECK(rc.epochs_done == 1);
  CHECK(rc.best_epoch == 1);
  CHECK(rc.best_top1 == epochs[0].validation_top1);
  CHECK(placement_top1(cut, val) == epochs[0].validation_top1);
  clear_stop();

  const auto msg = [&](PlacementTrainingOptions bad, const Mat<T>& pos, const Mat<T>& v) {
    PlacementScorer<T> fresh({.height = 8, .width = 8, .hidden = 4}, 1);
    return error_of<invalid_input>([&] { (void)train_placement_scorer(fresh, pos, v, bad); });
  };
  const PlacementTrainingOptions ok{.epochs = 1, .radius = 1, .far = 2};
  auto b = ok;
  b.epochs = 0;
  CHECK(msg(b, train, val).find("epochs must be at least 1, got 0") != std::string::npos);
  b = ok;
  b.learning_rate = -1;
  CHECK(msg(b, train, val).find("learning rate must be positive and finite") != std::string::npos);
  b = ok;
  b.pixel_noise = std::nan("");
  CHECK(msg(b, train, val).find("pixel noise must be finite and ≥ 0") != std::string::npos);
  b = ok;
  b.radius = 4;  // 2r + 1 > 8
  CHECK(msg(b, train, val).find("radius") != std::string::npos);
  CHECK(msg(ok, Mat<T>(train.topRows(63)), val).find("the positives have 63 values, the scorer reads 8x8") !=
        std::string::npos);
  CHECK(msg(ok, train, Mat<T>(64, 0)).find("no validation images") != std::string::npos);
  Mat<T> nan = train;
  nan(0, 0) = std::nanf("");
  CHECK(msg(ok, nan, val).find("the positives hold NaN or infinite values") != std::string::npos);
  b = ok;
  b.learning_rate = 1e30;
  CHECK(msg(b, train, val).find("training diverged in epoch 1") != std::string::npos);
}

}  // namespace prilo_test_placement

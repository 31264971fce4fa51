// The style VAE (issue 12): a decoder that feeds z0 into every layer. The decoder as a generator
// at every pair of split points, the blocks {z_i, z0}, the loss gradient by finite differences,
// weights and checkpoints by name, files of other architectures rejected, the shipped weights.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <prilo/concepts/vae.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/nn/conv_vae_io.hpp>
#include <prilo/nn/style_vae_io.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/projection/l1_ball.hpp>
#include <prilo/solvers/latent.hpp>
#include <prilo/testing/checkers.hpp>
#include <string>
#include <vector>

#include "recording_balls.hpp"
#include "vae_test_helpers.hpp"

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif
#ifndef PRILO_TEST_TMPDIR
#define PRILO_TEST_TMPDIR "/tmp"
#endif

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_style_vae {

using namespace prilo;
using namespace prilo::nn;
using T = double;
namespace fs = std::filesystem;

static_assert(VaeModel<StyleVae<double>>);
static_assert(VaeModel<StyleVae<float>>);
static_assert(VaeModel<ConvVae<float>>);

namespace {

const StyleVaeSizes tiny{.image = {1, 8, 8}, .latent = 3, .channels1 = 2, .channels2 = 3};

fs::path tmp(const std::string& name) {
  return fs::path(PRILO_TEST_TMPDIR) / ("prilo_test_style_vae_" + name);
}

using Blocks = std::vector<Eigen::Index>;

using prilo::test_support::check_chained_balls;
using prilo::test_support::RecordingPolicies;
using prilo::test_support::seen;

}  // namespace

TEST_CASE("StyleVae: split points and blocks {z_i, z0} of the MNIST decoder") {
  StyleVae<T> vae(StyleVaeSizes{}, 1);
  const auto& d = vae.decoder();
  REQUIRE(d.depth() == 7);
  const Eigen::Index L = 100;
  CHECK(d.blocks(0) == Blocks{L});
  CHECK(d.blocks(1) == Blocks{L, L});
  CHECK(d.blocks(2) == Blocks{64 * 7 * 7, L});
  CHECK(d.blocks(3) == Blocks{64 * 7 * 7, L});
  CHECK(d.blocks(4) == Blocks{32 * 14 * 14, L});
  CHECK(d.blocks(5) == Blocks{32 * 14 * 14, L});
  CHECK(d.blocks(6) == Blocks{784, L});
  CHECK(d.blocks(7) == Blocks{784});
  for (const int s : StyleVae<T>::style_splits) CHECK(d.blocks(s).size() == 2);
  CHECK(vae.latent_dim() == L);
  CHECK(vae.data_dim() == 784);
  CHECK(vae.encoder().dim(3) == 2 * L);
  Rng rng(2);
  const Mat<T> z = rng.normal_matrix<T>(L, 3);
  const Mat<T> x = d(z);
  REQUIRE(x.rows() == 784);
  CHECK(x.minCoeff() > 0);
  CHECK(x.maxCoeff() < 1);
  // z0 really enters the later layers: changing the carried copy alone at split 3 changes the image
  Mat<T> s3 = d.forward(0, 3, z);
  const Mat<T> base = d.forward_from(3, s3);
  s3.bottomRows(L) += rng.normal_matrix<T>(L, 3);
  CHECK((d.forward_from(3, s3) - base).norm() > 1e-3 * base.norm());
  CHECK_THROWS_WITH_AS(StyleVae<T>(StyleVaeSizes{.image = {1, 30, 28}}, 1), doctest::Contains("multiples of 4"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(StyleVae<T>(StyleVaeSizes{.channels1 = 0}, 1), doctest::Contains("StyleVae: latent and channel"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(vae.negative_elbo(Mat<T>::Zero(783, 2), Mat<T>::Zero(L, 2)), doctest::Contains("StyleVae input"),
                       invalid_input);
}

TEST_CASE("StyleVae: the decoder passes the generator checker at every pair of split points (double)") {
  Rng rng(3);
  StyleVae<T> vae(tiny, 4);
  // tolerance as for ConvVae: central differences in tiny layers carry ~1e-9 of rounding
  auto r = testing::check_generator(vae.decoder(), 3, rng, 1e-5);
  INFO(r.failures);
  CHECK(r.ok);
  // and with non-trivial modulations (the affine maps' biases start at zero)
  for (auto& p : vae.decoder().parameters())
    if (p.name.find("bias") != std::string::npos) p.value = rng.normal_matrix<T>(p.value.rows(), p.value.cols()) * 0.3;
  auto r2 = testing::check_generator(vae.decoder(), 2, rng, 1e-5);
  INFO(r2.failures);
  CHECK(r2.ok);
}

TEST_CASE("StyleVae: PRILO runs at both style split points with a radius for z_i and one for z0") {
  Rng rng(13);
  StyleVae<T> vae(tiny, 14);
  const auto& g = vae.decoder();
  const Fourier2d<T> op(8, 8);
  const Mat<T> x_true = g.forward_from(0, rng.normal_matrix<T>(3, 2));
  const MagnitudeLoss<Fourier2d<T>> loss(op, op.apply(x_true).cwiseAbs());
  const Mat<T> z0 = rng.normal_matrix<T>(3, 2);
  PriloOptions<T> opt;
  opt.initial.steps = 10;
  opt.noise.enabled = false;
  opt.reading = PriloReading::chained;
  opt.stages = {{.layer = 3, .repetitions = 1, .forward = {.steps = 30, .radius = 1, .learning_rate = T(0.05)}},
                {.layer = 5, .repetitions = 1, .forward = {.steps = 30, .radius = 1, .learning_rate = T(0.05)}}};
  opt.stages[0].forward.radii = {T(3), T(0.5)};  // z_3 (3 maps of 2×2) and z0
  opt.stages[1].forward.radii = {T(3), T(0.5)};  // z_5 (2 maps of 4×4) and z0
  Rng r(1);
  seen.clear();
  const auto res = prilo_solve<RecordingPolicies>(g, loss, z0, opt, r);
  REQUIRE(res.x.allFinite());
  // each tensor of the state in the ball of its own radius, around the phase's start (the
  // second stage's: G_{3→5} of the first stage's end)
  CHECK(g.blocks(3) == Blocks{3 * 2 * 2, 3});
  CHECK(g.blocks(5) == Blocks{2 * 4 * 4, 3});
  check_chained_balls(g, opt);
  CHECK(res.x.rows() == 64);
  const auto start = loss.value(g.forward_from(0, z0));
  CHECK(res.magnitude_error.sum() * T(op.output_size()) < start.sum());
  opt.stages[1].forward.radii = {T(3)};
  Rng r2(1);
  CHECK_THROWS_WITH_AS(prilo_solve(g, loss, z0, opt, r2),
                       doctest::Contains("phase gives 1 radii, the generator's state at layer"), invalid_input);
}

TEST_CASE("StyleVae: the loss gradient with respect to every weight matches finite differences") {
  Rng rng(5);
  StyleVae<T> vae(tiny, 6);
  // each modulation's affine map of z0 alone as well: they are a small share of the weights
  test_helpers::check_vae_loss_gradient(
      vae, rng, {"decoder.2.weight", "decoder.2.bias", "decoder.4.weight", "decoder.6.weight", "decoder.6.bias"});
}

TEST_CASE("StyleVae: a few Adam steps fit a repeated image") {
  Rng rng(7);
  StyleVae<T> vae(tiny, 8);
  test_helpers::check_vae_fits_repeated_image(vae, rng);
}

TEST_CASE("StyleVae: weights saved and loaded by name, checkpoints round-trip, other architectures fail") {
  fs::create_directories(PRILO_TEST_TMPDIR);
  StyleVae<T> vae(tiny, 9);
  for (auto& p : vae.parameters()) p.value.array() += 0.01;  // biases off zero: a load must set them
  const fs::path path = tmp("w.prw");
  save_style_vae(path, vae);
  const auto back = load_style_vae<T>(path);
  CHECK(back.sizes() == tiny);
  Rng rng(10);
  const Mat<T> z = rng.normal_matrix<T>(3, 4);
  CHECK((back.decoder()(z) - vae.decoder()(z)).norm() == 0);
  const Mat<T> x = vae.decoder()(z);
  CHECK((back.encoder()(x) - vae.encoder()(x)).norm() == 0);
  const auto f = io::load_weights<T>(path);
  CHECK(f.arch == "vae-style");
  CHECK(f.sizes == std::vector<std::uint32_t>{1, 8, 8, 3, 2, 3});
  for (const char* name : {"encoder.0.weight", "encoder.2.bias", "decoder.1.weight", "decoder.2.weight",
                           "decoder.3.weight", "decoder.4.bias", "decoder.5.bias", "decoder.6.weight"})
    CHECK_MESSAGE(f.find(name), name);
  CHECK(f.find("decoder.2.weight")->rows() == 2 * 3);  // [γ; β] of the 3 quarter-resolution channels
  CHECK(f.find("decoder.2.weight")->cols() == 3);      // from z0
  CHECK_FALSE(f.find("decoder.0.weight"));             // Duplicate has no weights

  // a conv VAE file is not a style VAE, and the other way round, with sizes that match
  ConvVae<T> conv(tiny, 1);
  save_conv_vae(tmp("conv.prw"), conv);
  CHECK_THROWS_WITH_AS(load_style_vae<T>(tmp("conv.prw")),
                       doctest::Contains("architecture \"vae-conv\" is not a style VAE (expected \"vae-style\")"),
                       file_error);
  CHECK_THROWS_WITH_AS(load_conv_vae<T>(path), doctest::Contains("is not a convolutional VAE"), file_error);
  // a file claiming "vae-style" whose tensors are a conv VAE's: the value count names it corrupt
  auto g = io::load_weights<T>(tmp("conv.prw"));
  g.arch = "vae-style";
  io::save_weights(tmp("bad.prw"), g);
  CHECK_THROWS_WITH_AS(load_style_vae<T>(tmp("bad.prw")), doctest::Contains("corrupt"), file_error);
  auto h = f;
  h.sizes[3] = 7;  // another latent size
  io::save_weights(tmp("bad2.prw"), h);
  CHECK_THROWS_WITH_AS(load_style_vae<T>(tmp("bad2.prw")), doctest::Contains("corrupt"), file_error);

  // checkpoint: model, Adam moments and training state come back
  AdamTrainer<T> adam({.learning_rate = 1e-3});
  auto params = vae.parameters();
  vae.zero_grad();
  vae.loss(x, Mat<T>::Zero(3, 4), true);
  adam.step(params);
  TrainingState st{4, {1, 0, 3, 2}, Rng(11).state()};
  save_checkpoint(tmp("c.ckpt"), vae, adam, st);
  StyleVae<T> other(tiny, 12);
  AdamTrainer<T> adam2({.learning_rate = 1e-3});
  const TrainingState got = load_checkpoint(tmp("c.ckpt"), other, adam2);
  CHECK(got.epoch == 4);
  CHECK(got.order == st.order);
  CHECK(got.rng == st.rng);
  CHECK(adam2.iteration() == 1);
  CHECK((other.decoder()(z) - vae.decoder()(z)).norm() == 0);
  ConvVae<T> conv2(tiny, 2);
  CHECK_THROWS_WITH_AS(load_checkpoint(tmp("c.ckpt"), conv2, adam2),
                       doctest::Contains("not a convolutional VAE training checkpoint"), file_error);
}

TEST_CASE("end-to-end: the shipped style VAEs load and reach the test-set losses docs/training.md records") {
  const char* e = std::getenv("PRILO_DATA");
  const std::string data = e && *e ? e : std::string(PRILO_SOURCE_DIR) + "/data";
  // printed by prilo-train-vae --arch style after epoch 30 (seed 1, noise seed 3)
  const std::pair<const char*, double> shipped[] = {{"mnist", 98.497}, {"fashion-mnist", 240.299}};
  for (const auto& [dataset, nelbo] : shipped) {
    const std::string file = std::string(PRILO_SOURCE_DIR) + "/models/stylevae-" + dataset + ".prw";
    INFO(file);
    auto vae = load_style_vae<float>(file);
    CHECK(vae.sizes() == StyleVaeSizes{});
    auto test = io::load_dataset<float>(data, dataset, "test");
    CHECK(mean_negative_elbo(vae, test.images, 3) == doctest::Approx(nelbo).epsilon(5e-4));
  }
}

}  // namespace prilo_test_style_vae

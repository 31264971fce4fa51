// The convolutional VAE (issue 12): loss gradient by finite differences, the decoder as a
// generator at every split point, weights and checkpoints by name.
#include <doctest/doctest.h>

#include <filesystem>
#include <prilo/io/idx.hpp>
#include <prilo/nn/conv_vae_io.hpp>
#include <prilo/nn/vae_io.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/testing/checkers.hpp>
#include <string>

#include "test_support.hpp"
#include "vae_test_helpers.hpp"

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif
#ifndef PRILO_TEST_TMPDIR
#define PRILO_TEST_TMPDIR "/tmp"
#endif

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_conv_vae {

using namespace prilo;
using namespace prilo::nn;
using T = double;
namespace fs = std::filesystem;
using prilo::test_support::error_of;

namespace {

const ConvVaeSizes tiny{.image = {1, 8, 8}, .latent = 3, .channels1 = 2, .channels2 = 3};

fs::path tmp(const std::string& name) {
  return fs::path(PRILO_TEST_TMPDIR) / ("prilo_test_conv_vae_" + name);
}

}  // namespace

TEST_CASE("ConvVae: the split points are z0, the 7x7 maps, the 14x14 maps and the 28x28 image") {
  ConvVae<T> vae(ConvVaeSizes{}, 1);
  const auto& d = vae.decoder();
  REQUIRE(d.depth() == 3);
  CHECK(d.dim(0) == 100);
  CHECK(d.dim(1) == 64 * 7 * 7);
  CHECK(d.dim(2) == 32 * 14 * 14);
  CHECK(d.dim(3) == 784);
  CHECK(vae.encoder().dim(1) == 32 * 14 * 14);
  CHECK(vae.encoder().dim(2) == 64 * 7 * 7);
  CHECK(vae.encoder().dim(3) == 200);
  // the decoder's output is a sigmoid image
  Rng rng(2);
  const Mat<T> x = d(rng.normal_matrix<T>(100, 3));
  CHECK(x.minCoeff() > 0);
  CHECK(x.maxCoeff() < 1);
  CHECK_THROWS_WITH_AS(ConvVae<T>(ConvVaeSizes{.image = {1, 30, 28}}, 1), doctest::Contains("multiples of 4"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(ConvVae<T>(ConvVaeSizes{.latent = 0}, 1), doctest::Contains("latent"), invalid_input);
}

TEST_CASE("ConvVae: the decoder passes the generator checker at every pair of split points") {
  Rng rng(3);
  ConvVae<T> vae(tiny, 4);
  // tolerance 1e-5: the checker's central differences (step 1e-6) carry a rounding error of
  // ~1e-9 against directional derivatives of ~1e-3 in these tiny layers (the error falls
  // as the step grows to 1e-4, so it is rounding, not the VJP)
  auto r = testing::check_generator(vae.decoder(), 3, rng, 1e-5);
  INFO(r.failures);
  CHECK(r.ok);
  auto re = testing::check_generator(vae.encoder(), 2, rng, 1e-5);
  INFO(re.failures);
  CHECK(re.ok);
}

TEST_CASE("ConvVae: the loss gradient with respect to every weight matches finite differences") {
  Rng rng(5);
  ConvVae<T> vae(tiny, 6);
  test_helpers::check_vae_loss_gradient(vae, rng);
}

TEST_CASE("ConvVae: a few Adam steps fit a repeated image") {
  Rng rng(7);
  ConvVae<T> vae(tiny, 8);
  test_helpers::check_vae_fits_repeated_image(vae, rng);
}

TEST_CASE("ConvVae: weights saved and loaded by name, checkpoints round-trip, wrong files fail") {
  fs::create_directories(PRILO_TEST_TMPDIR);
  ConvVae<T> vae(tiny, 9);
  const fs::path path = tmp("w.prw");
  save_conv_vae(path, vae);
  const auto back = load_conv_vae<T>(path);
  CHECK(back.sizes() == tiny);
  Rng rng(10);
  const Mat<T> z = rng.normal_matrix<T>(3, 4);
  CHECK((back.decoder()(z) - vae.decoder()(z)).norm() == 0);
  const Mat<T> x = vae.decoder()(z);
  CHECK((back.encoder()(x) - vae.encoder()(x)).norm() == 0);
  // by name: the file lists every tensor under its qualified name
  const auto f = io::load_weights<T>(path);
  CHECK(f.arch == "vae-conv");
  for (const char* name : {"encoder.0.weight", "encoder.1.bias", "encoder.2.weight", "decoder.0.weight",
                           "decoder.1.weight", "decoder.2.bias"})
    CHECK_MESSAGE(f.find(name), name);

  // an MLP VAE file is not a conv VAE, and the other way round
  Vae<T> mlp(64, 5, 3, 1);
  save_vae(tmp("mlp.prw"), mlp);
  CHECK_THROWS_WITH_AS(load_conv_vae<T>(tmp("mlp.prw")), doctest::Contains("not a convolutional VAE"), file_error);
  CHECK_THROWS_WITH_AS(load_vae<T>(path), doctest::Contains("is not a VAE"), file_error);
  // a header whose sizes do not match the stored tensors fails before building a model
  auto g = f;
  g.sizes[5] = 1000;
  io::save_weights(tmp("bad.prw"), g);
  CHECK_THROWS_WITH_AS(load_conv_vae<T>(tmp("bad.prw")), doctest::Contains("corrupt"), file_error);
  // sizes whose count of values is beyond a long: the message states it, not a wrapped negative number
  g.sizes[4] = g.sizes[5] = 0xFFFFFFFFu;
  io::save_weights(tmp("huge.prw"), g);
  const std::string huge = error_of([&] { (void)load_conv_vae<T>(tmp("huge.prw")); });
  CHECK(huge.find("corrupt: the sizes 1, 8, 8, 3, 4294967295, 4294967295 need 590295810405950291968 values, the file "
                  "holds 390") != std::string::npos);
  CHECK(huge.find("need -") == std::string::npos);
  // a tensor the model does not take is named (not counted as surplus values)
  auto extra = f;
  extra.add("decoder.9.weight", Mat<T>::Zero(2, 2));
  io::save_weights(tmp("extra.prw"), extra);
  CHECK_THROWS_WITH_AS(load_conv_vae<T>(tmp("extra.prw")), doctest::Contains("\"decoder.9.weight\""), file_error);

  // checkpoint: model, Adam moments and training state come back
  AdamTrainer<T> adam({.learning_rate = 1e-3});
  auto params = vae.parameters();
  vae.zero_grad();
  vae.loss(x.array().min(1.0).max(0.0).matrix(), Mat<T>::Zero(3, 4), true);
  adam.step(params);
  TrainingState st{2, {3, 1, 0, 2}, Rng(11).state()};
  save_checkpoint(tmp("c.ckpt"), vae, adam, st);
  ConvVae<T> other(tiny, 12);
  AdamTrainer<T> adam2({.learning_rate = 1e-3});
  const TrainingState got = load_checkpoint(tmp("c.ckpt"), other, adam2);
  CHECK(got.epoch == 2);
  CHECK(got.order == st.order);
  CHECK(got.rng == st.rng);
  CHECK(adam2.iteration() == 1);
  CHECK((other.decoder()(z) - vae.decoder()(z)).norm() == 0);
  ConvVae<T> wider(ConvVaeSizes{.image = {1, 8, 8}, .latent = 3, .channels1 = 4, .channels2 = 3}, 1);
  CHECK_THROWS_WITH_AS(load_checkpoint(tmp("c.ckpt"), wider, adam2), doctest::Contains("of sizes 1, 8, 8, 3, 2, 3"),
                       file_error);
  Vae<T> mlp2(64, 5, 3, 1);
  CHECK_THROWS_WITH_AS(load_checkpoint(tmp("c.ckpt"), mlp2, adam2), doctest::Contains("not a VAE training checkpoint"),
                       file_error);
}

TEST_CASE("end-to-end: the shipped convolutional VAE loads and reaches the test-set loss docs/training.md records") {
  const std::string data = test_support::data_dir();
  auto vae = load_conv_vae<float>(std::string(PRILO_SOURCE_DIR) + "/models/convvae-mnist.prw");
  CHECK(vae.sizes() == ConvVaeSizes{});  // 1x28x28, latent 100, 32 and 64 channels
  auto test = io::load_dataset<float>(data, "mnist", "test");
  // printed by prilo-train-vae --arch conv after epoch 30 (seed 1, noise seed 3)
  CHECK(mean_negative_elbo(vae, test.images, 3) == doctest::Approx(99.290).epsilon(5e-4));
}

}  // namespace prilo_test_conv_vae

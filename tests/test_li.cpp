// The learned initialisation (LI, prilo/init/li.hpp): the critic's gradient-penalty gradient and
// the encoder's training gradient against finite differences, the encoder's input and files,
// its starts, the -li methods, and the shipped MNIST encoder against MII on held training images.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <prilo/init/li.hpp>
#include <prilo/init/li_training.hpp>
#include <prilo/interrupt.hpp>
#include <prilo/io/models.hpp>
#include <prilo/methods.hpp>
#include <prilo/nn/conv_vae_io.hpp>
#include <prilo/nn/style_vae.hpp>
#include <prilo/nn/vae_io.hpp>
#include <prilo/prilo.hpp>
#include <string>
#include <variant>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_li {

using namespace prilo;
using test_support::data_dir;
using test_support::error_of;
namespace fs = std::filesystem;

namespace {

/// max_k |analytic_k − fd_k| / max(1, |fd_k|) over every entry of every parameter, central
/// differences of `loss` with step h.
template <class T, class Loss>
double max_fd_error(nn::ParamList<T> params, Loss&& loss, double h = 1e-6) {
  double worst = 0;
  for (auto& p : params)
    for (Eigen::Index i = 0; i < p.value.size(); ++i) {
      const T keep = p.value.data()[i];
      p.value.data()[i] = keep + h;
      const double up = loss();
      p.value.data()[i] = keep - h;
      const double down = loss();
      p.value.data()[i] = keep;
      const double fd = (up - down) / (2 * h);
      worst = std::max(worst, std::abs(double(p.grad.data()[i]) - fd) / std::max(1.0, std::abs(fd)));
    }
  return worst;
}

LiSpec tiny_fourier_spec() {
  return {.op = LiOperator::fourier, .height = 8, .width = 8, .hidden = 6, .latent = 4};
}
}  // namespace

TEST_CASE("WGAN-GP critic: input gradient and the gradient-penalty weight gradient match finite differences") {
  using T = double;
  Rng rng(11);
  const Eigen::Index n = 7, B = 5;
  WganCritic<T> critic(n, 6, 3);
  const Mat<T> x = rng.normal_matrix<T>(n, B), xf = rng.normal_matrix<T>(n, B);
  Vec<T> t(B);
  for (Eigen::Index j = 0; j < B; ++j) t(j) = T(rng.uniform());

  // ∇_x D against finite differences of D
  const Mat<T> g = critic.input_gradient(x);
  double worst_in = 0;
  for (Eigen::Index j = 0; j < B; ++j)
    for (Eigen::Index i = 0; i < n; ++i) {
      Mat<T> a = x.col(j), b = x.col(j);
      a(i, 0) += 1e-6;
      b(i, 0) -= 1e-6;
      const double fd = (critic.score(a)(0, 0) - critic.score(b)(0, 0)) / 2e-6;
      worst_in = std::max(worst_in, std::abs(g(i, j) - fd));
    }
  CHECK(worst_in < 1e-7);

  // the whole critic loss (Wasserstein term + λ(‖∇D(x̃)‖ − 1)²), λ = 10 as in WGAN-GP
  for (const double lambda : {0.0, 10.0}) {
    critic.zero_grad();
    const auto l = critic.loss(x, xf, t, lambda, true);
    CHECK(l.penalty >= 0);
    CHECK(l.total == doctest::Approx(l.wasserstein + l.penalty));
    const double err =
        max_fd_error<T>(critic.parameters(), [&] { return double(critic.loss(x, xf, t, lambda, false).total); });
    CHECK_MESSAGE(err < 1e-6, "lambda ", lambda, ": max relative error ", err);
  }
  // the penalty alone has a nonzero weight gradient (the masks are held, the weights are not)
  critic.zero_grad();
  (void)critic.loss(x, x, t, 10.0, true);  // real = fake: the Wasserstein term's gradient cancels
  double gsum = 0;
  for (auto& p : critic.parameters()) gsum += p.grad.norm();
  CHECK(gsum > 1e-3);
  CHECK_THROWS_AS(critic.loss(x, Mat<T>(xf.leftCols(2)), t, 10.0, false), invalid_input);
}

TEST_CASE(
    "LI encoder training loss: MSE + adversarial gradient through the frozen generator matches finite differences") {
  using T = double;
  const nn::Vae<T> vae(64, 16, 4, 5);
  Fourier2d<T> F(8, 8);
  Rng rng(6);
  const Mat<T> x = Mat<T>(rng.normal_matrix<T>(64, 6)).cwiseAbs().cwiseMin(1.0);
  LiEncoder<T> enc(tiny_fourier_spec(), 9);
  enc.fit_standardisation(enc.reduce(measure(F, x)));
  const Mat<T> feats = enc.features(measure(F, x));
  WganCritic<T> critic(64, 8, 2);
  for (const double w : {0.0, 0.3}) {
    enc.zero_grad();
    const auto l = li_encoder_loss(enc, vae.decoder(), &critic, feats, x, T(w), true);
    CHECK(l.mse == doctest::Approx((vae.decoder()(enc.network()(feats)) - x).squaredNorm() / (64.0 * 6)));
    const double err = max_fd_error<T>(enc.parameters(), [&] {
      return double(li_encoder_loss(enc, vae.decoder(), &critic, feats, x, T(w), false).total);
    });
    CHECK_MESSAGE(err < 1e-6, "adversarial weight ", w, ": max relative error ", err);
  }
  // the generator and the critic are frozen: the loss, accumulating with the adversarial term
  // on, adds to the encoder's gradients only; the decoder's (a copy whose gradient buffers are
  // reachable) and the critic's keep the value they were filled with
  nn::Vae<T> gen = vae;
  auto frozen = gen.parameters();
  for (auto& p : critic.parameters()) frozen.push_back(p);
  REQUIRE(!frozen.empty());
  for (auto& p : frozen) p.grad.setConstant(T(0.25));
  enc.zero_grad();
  (void)li_encoder_loss(enc, gen.decoder(), &critic, feats, x, T(0.3), true);
  for (auto& p : frozen) {
    CAPTURE(p.name);
    CHECK((p.grad.array() == T(0.25)).all());
  }
  double encoder_grad = 0;
  for (auto& p : enc.parameters()) encoder_grad += p.grad.norm();
  CHECK(encoder_grad > 0);  // it did accumulate
  // features of the wrong size are refused
  CHECK_THROWS_AS(li_encoder_loss(enc, vae.decoder(), &critic, Mat<T>(feats.topRows(3)), x, T(0), false),
                  invalid_input);
}

TEST_CASE("LI encoder input: the half spectrum is MagnitudeLoss's, standardised; starts keep restart 0 at E(y)") {
  using T = double;
  Fourier2d<T> F(8, 8);
  Rng rng(2);
  const Mat<T> x = Mat<T>(rng.normal_matrix<T>(64, 4)).cwiseAbs();
  const Mat<T> y = measure(F, x);
  LiEncoder<T> enc(tiny_fourier_spec(), 1);
  const MagnitudeLoss<Fourier2d<T>> loss(F, y);
  CHECK((enc.reduce(y) - loss.half_measurements()).norm() < 1e-12);
  enc.fit_standardisation(enc.reduce(y));
  const Mat<T> f = enc.features(y);
  CHECK(f.rowwise().mean().cwiseAbs().maxCoeff() < 1e-10);
  LiSpec logspec = tiny_fourier_spec();
  logspec.transform = LiTransform::log1p;
  CHECK((LiEncoder<T>(logspec, 1).reduce(y) - loss.half_measurements().array().log1p().matrix()).norm() < 1e-12);

  Rng r1(3);
  const Mat<T> z = li_latents(enc, y, 3, 0.05, r1);
  REQUIRE(z.cols() == 12);
  const Mat<T> e = enc.encode(y);
  CHECK(z.leftCols(4) == e);
  const double spread = (z.middleCols(4, 4) - e).norm() / std::sqrt(4.0 * 4);
  CHECK(spread > 0.02);
  CHECK(spread < 0.1);
  CHECK_THROWS_AS(li_latents(enc, y, 0, 0.05, r1), invalid_input);
  CHECK_THROWS_AS(li_latents(enc, y, 2, -1.0, r1), invalid_input);
  CHECK_THROWS_AS(li_latents(enc, y, 2, 1e30, r1), invalid_input);  // above max_start_sigma
  CHECK_THROWS_AS(li_latents(enc, y, 2, std::nan(""), r1), invalid_input);
  const std::string bad = error_of([&] { (void)enc.encode(Mat<T>::Ones(63, 2)); });
  CHECK_MESSAGE(bad.find("LI encoder measurements y: expected a 64x2 matrix, got 63x2") != std::string::npos, bad);
}

TEST_CASE("LI encoder files: saved and loaded by name; the operator is checked; bad files name the problem") {
  using T = float;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR);
  fs::create_directories(dir);
  GaussianReal<T> A(30, 64, 17);
  LiEncoder<T> enc({.op = LiOperator::gaussian_real,
                    .height = 8,
                    .width = 8,
                    .measurements = 30,
                    .operator_seed = 17,
                    .transform = LiTransform::log1p,
                    .hidden = 10,
                    .latent = 4},
                   4);
  Rng rng(5);
  const Mat<T> x = Mat<T>(rng.normal_matrix<T>(64, 3)).cwiseAbs();
  const Mat<T> y = measure(A, x);
  enc.fit_standardisation(enc.reduce(measure(A, Mat<T>(Mat<T>(rng.normal_matrix<T>(64, 20)).cwiseAbs()))));
  enc.set_operator(A);
  save_li_encoder(dir / "li.prw", enc);
  auto back = load_li_encoder<T>(dir / "li.prw");
  CHECK(back.spec().op == LiOperator::gaussian_real);
  CHECK(back.spec().operator_seed == 17);
  CHECK(back.spec().transform == LiTransform::log1p);
  CHECK(back.encode(y) == enc.encode(y));
  back.check_operator(A);

  // by name: the file's order does not matter
  auto f = io::load_weights<T>(dir / "li.prw");
  std::reverse(f.tensors.begin(), f.tensors.end());
  io::save_weights(dir / "li-reversed.prw", f);
  CHECK(load_li_encoder<T>(dir / "li-reversed.prw").encode(y) == enc.encode(y));

  // another seed's matrix, another operator kind, another size
  std::string e = error_of([&] { back.check_operator(GaussianReal<T>(30, 64, 18)); });
  CHECK_MESSAGE((e.find("trained on another measurement operator") != std::string::npos &&
                 e.find("seed 17") != std::string::npos && e.find("--seed 10") != std::string::npos),
                e);
  e = error_of([&] { back.check_operator(GaussianComplex<T>(30, 64, 17)); });
  CHECK_MESSAGE(e.find("trained for the gaussian-real operator, not gaussian-complex") != std::string::npos, e);
  e = error_of([&] { back.check_operator(GaussianReal<T>(31, 64, 17)); });
  CHECK_MESSAGE(e.find("trained for 30 measurements") != std::string::npos, e);
  e = error_of([&] { back.check_operator(Fourier2d<T>(8, 8)); });
  CHECK_MESSAGE(e.find("not fourier") != std::string::npos, e);

  e = error_of([&] { (void)load_li_encoder<T>(dir / "no-such-li.prw"); });
  CHECK_MESSAGE(e.find("no-such-li.prw") != std::string::npos, e);
  nn::Vae<T> vae(64, 8, 4, 1);
  nn::save_vae(dir / "not-li.prw", vae);
  e = error_of([&] { (void)load_li_encoder<T>(dir / "not-li.prw"); });
  CHECK_MESSAGE(e.find("is not an LI encoder") != std::string::npos, e);
  auto g = io::load_weights<T>(dir / "li.prw");
  g.tensors.erase(g.tensors.begin());  // "encoder.0.weight"
  io::save_weights(dir / "li-missing.prw", g);
  e = error_of([&] { (void)load_li_encoder<T>(dir / "li-missing.prw"); });
  CHECK_MESSAGE(e.find("no tensor named \"encoder.0.weight\"") != std::string::npos, e);
  CHECK_THROWS_AS(LiEncoder<T>(LiSpec{.op = LiOperator::gaussian_real, .measurements = 0}, 1), invalid_input);

  // an encoder never given its operator says so (it reported a 1e30 relative gap); a seed below
  // 7 has no --seed that draws it (the hint wrapped around to 18446744073709551609)
  LiEncoder<T> fresh({.op = LiOperator::gaussian_real,
                      .height = 8,
                      .width = 8,
                      .measurements = 30,
                      .operator_seed = 3,
                      .hidden = 10,
                      .latent = 4},
                     4);
  const GaussianReal<T> A3(30, 64, 3);
  e = error_of([&] { fresh.check_operator(A3); });
  CHECK_MESSAGE(e.find("LI encoder: the encoder records no measurement operator (set_operator was never called)") !=
                    std::string::npos,
                e);
  fresh.set_operator(A3);
  fresh.check_operator(A3);
  e = error_of([&] { fresh.check_operator(GaussianReal<T>(30, 64, 4)); });
  CHECK_MESSAGE(
      (e.find("trained on the matrix drawn with seed 3; train an encoder for this seed") != std::string::npos &&
       e.find("--seed") == std::string::npos),
      e);
}

TEST_CASE("LI encoder files record the decoder they were trained through; another generator is refused") {
  using T = float;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR);
  fs::create_directories(dir);
  const Fourier2d<T> F(28, 28);
  LiEncoder<T> enc({.hidden = 8, .latent = 6, .decoder = LiDecoder::vae_conv}, 3);
  enc.set_operator(F);
  save_li_encoder(dir / "li-conv.prw", enc);
  const auto back = load_li_encoder<T>(dir / "li-conv.prw");
  CHECK(back.spec().decoder == LiDecoder::vae_conv);
  static_assert(li_decoder_of<nn::Vae<T>>() == LiDecoder::vae_mlp);
  static_assert(li_decoder_of<nn::ConvVae<T>>() == LiDecoder::vae_conv);
  static_assert(li_decoder_of<nn::StyleVae<T>>() == LiDecoder::vae_style);

  const nn::ConvVae<T> conv({.image = {1, 28, 28}, .latent = 6, .channels1 = 2, .channels2 = 3}, 1);
  back.check_decoder(conv);  // the decoder it was trained through
  const nn::StyleVae<T> style({.image = {1, 28, 28}, .latent = 6, .channels1 = 2, .channels2 = 3}, 1);
  std::string e = error_of([&] { back.check_decoder(style); });
  CHECK_MESSAGE(e.find("trained through the vae-conv decoder, the generator is a vae-style") != std::string::npos, e);
  const nn::ConvVae<T> wide({.image = {1, 28, 28}, .latent = 7, .channels1 = 2, .channels2 = 3}, 1);
  e = error_of([&] { back.check_decoder(wide); });
  CHECK_MESSAGE(e.find("encodes to a latent of 6, the generator's latent has 7") != std::string::npos, e);

  // and the methods refuse it before any solving
  const Mat<T> y = measure(F, Mat<T>(Mat<T>::Constant(784, 1, T(0.5))));
  MethodOptions<T> opt;
  opt.li = &back;
  e = error_of(
      [&] { (void)reconstruct(OnHost{}, parse_methods("dpr-li"), style, F, y, ReconstructionConfig<T>{}, opt); });
  CHECK_MESSAGE(e.find("method dpr-li: the LI encoder: trained through the vae-conv decoder") != std::string::npos, e);

  // files of 10 sizes (the MLP VAE's, as written before the decoder was recorded) are the MLP's;
  // an unknown decoder code is corrupt
  auto f = io::load_weights<T>(dir / "li-conv.prw");
  CHECK(f.sizes.size() == 11);
  f.sizes.pop_back();
  io::save_weights(dir / "li-10.prw", f);
  CHECK(load_li_encoder<T>(dir / "li-10.prw").spec().decoder == LiDecoder::vae_mlp);
  f.sizes.push_back(7);
  io::save_weights(dir / "li-bad-decoder.prw", f);
  e = error_of([&] { (void)load_li_encoder<T>(dir / "li-bad-decoder.prw"); });
  CHECK_MESSAGE(e.find("unknown decoder code 7") != std::string::npos, e);
}

TEST_CASE("LI encoder files record their decoder's weights through a probe image; other weights are refused") {
  using T = float;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR);
  fs::create_directories(dir);
  const Fourier2d<T> F(28, 28);
  const nn::ConvVae<T> conv({.image = {1, 28, 28}, .latent = 6, .channels1 = 2, .channels2 = 3}, 1);
  const nn::ConvVae<T> other({.image = {1, 28, 28}, .latent = 6, .channels1 = 2, .channels2 = 3}, 2);  // other weights
  LiEncoder<T> enc({.hidden = 8, .latent = 6, .decoder = LiDecoder::vae_conv}, 3);
  enc.set_operator(F);
  CHECK(enc.decoder_probe().size() == 0);
  enc.check_decoder(other);  // none recorded: the kind and the latent size alone
  enc.set_decoder(conv);
  REQUIRE(enc.decoder_probe().rows() == 784);
  const Mat<T> z = enc.decoder_probe_latent();
  CHECK(enc.decoder_probe() == conv.decoder().forward(0, conv.decoder().depth(), z));
  enc.check_decoder(conv);
  std::string e = error_of([&] { enc.check_decoder(other); });
  CHECK_MESSAGE(e.find("LI encoder: trained through another vae-conv decoder's weights: its image of a fixed probe "
                       "latent differs by ") != std::string::npos,
                e);
  // kept by the file, byte for byte through a load and a save
  save_li_encoder(dir / "li-probe.prw", enc);
  const auto back = load_li_encoder<T>(dir / "li-probe.prw");
  CHECK(back.decoder_probe() == enc.decoder_probe());
  back.check_decoder(conv);
  CHECK(error_of([&] { back.check_decoder(other); }).find("another vae-conv decoder's weights") != std::string::npos);
  LiEncoder<T> copy = back;
  save_li_encoder(dir / "li-probe-again.prw", copy);
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(bytes(dir / "li-probe-again.prw") == bytes(dir / "li-probe.prw"));
  // ... and the methods refuse the encoder with the other weights before any solving
  const Mat<T> y = measure(F, Mat<T>(Mat<T>::Constant(784, 1, T(0.5))));
  MethodOptions<T> opt;
  opt.li = &back;
  e = error_of(
      [&] { (void)reconstruct(OnHost{}, parse_methods("dpr-li"), other, F, y, ReconstructionConfig<T>{}, opt); });
  CHECK_MESSAGE(
      e.find("method dpr-li: the LI encoder: trained through another vae-conv decoder's weights") != std::string::npos,
      e);
  // a probe of the wrong shape is corrupt
  auto f = io::load_weights<T>(dir / "li-probe.prw");
  for (auto& t : f.tensors)
    if (t.name == "decoder.probe") t.value = Mat<T>::Zero(783, 1);
  io::save_weights(dir / "li-probe-bad.prw", f);
  e = error_of([&] { (void)load_li_encoder<T>(dir / "li-probe-bad.prw"); });
  CHECK_MESSAGE(e.find("li-probe-bad.prw: corrupt: LI encoder: a decoder probe must be 784x1") != std::string::npos, e);
}

TEST_CASE(
    "train_li_encoder keeps the best held-out epoch, in memory and in its file; lowers the held-out MSE; is "
    "repeatable; a stop request keeps the best finished epoch") {
  using T = float;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR) / "li_training";
  fs::create_directories(dir);
  const nn::Vae<T> vae(64, 16, 4, 5);
  const Fourier2d<T> F(8, 8);
  Rng rng(3);
  const Mat<T> images = vae.decoder()(rng.normal_matrix<T>(4, 300));  // images the generator makes
  LiTrainingOptions o{.epochs = 5,
                      .batch = 8,
                      .learning_rate = 3e-2,  // fast enough that the 5th epoch is worse than the 4th
                      .critic_hidden = 8,
                      .validation = 60,
                      .seed = 4,
                      .output = dir / "li.prw"};
  LiEncoder<T> enc(tiny_fourier_spec(), o.seed + 1);
  LiValidation start{};
  std::vector<LiEpochReport> reports;
  long batches = 0;
  const LiTrainingResult r = train_li_encoder(enc, vae, F, images, o,
                                              {.start = [&](const LiValidation& v) { start = v; },
                                               .batch = [&](const LiBatchReport& b) { batches += b.images; },
                                               .epoch = [&](const LiEpochReport& e) { reports.push_back(e); }});
  CHECK(!r.interrupted);
  CHECK(r.epochs_done == 5);
  CHECK(batches == 5 * 240);  // every training image once per epoch, none of the 60 held out
  REQUIRE(reports.size() == 5u);
  double best = std::numeric_limits<double>::infinity();
  int best_epoch = 0;
  for (const auto& e : reports) {
    CHECK(e.improved == (e.validation.mse < best));
    CHECK(e.critic_penalty >= 0);
    if (e.improved) {
      best = e.validation.mse;
      best_epoch = e.epoch;
    }
  }
  MESSAGE("held-out MSE " << start.mse << " untrained, then " << reports[0].validation.mse << ", "
                          << reports[1].validation.mse << ", " << reports[2].validation.mse << ", "
                          << reports[3].validation.mse << ", " << reports[4].validation.mse);
  CHECK(r.best_epoch == best_epoch);
  CHECK(best_epoch < 5);  // (measured: epoch 4) so that what follows checks a restored encoder
  CHECK(r.best.mse == best);
  CHECK(r.best.mse < 0.8 * start.mse);
  // the encoder returned is that epoch's: its held-out figures, recomputed from the images
  const Mat<T> xv = images.rightCols(60), yv = measure(F, xv);
  const LiValidation v = li_validation(enc, vae.decoder(), F, enc.features(yv), xv, yv);
  CHECK(v.mse == doctest::Approx(r.best.mse).epsilon(1e-6));
  CHECK(v.magnitude == doctest::Approx(r.best.magnitude).epsilon(1e-6));
  // and the file's
  const LiEncoder<T> loaded = load_li_encoder<T>(o.output);
  CHECK((loaded.network()(loaded.features(yv)) - enc.network()(enc.features(yv))).norm() == 0);
  // with the decoder it was trained through recorded (its image of the probe latent)
  CHECK(enc.decoder_probe().size() == vae.data_dim());
  CHECK(loaded.decoder_probe() == enc.decoder_probe());
  // the same inputs make the same encoder
  LiEncoder<T> again(tiny_fourier_spec(), o.seed + 1);
  o.output.clear();
  (void)train_li_encoder(again, vae, F, images, o);
  CHECK((again.network()(again.features(yv)) - enc.network()(enc.features(yv))).norm() == 0);

  // a stop request in epoch 5: the encoder holds the best of epochs 1 to 4, not its state then
  struct ClearStop {
    ~ClearStop() { clear_stop(); }
  } clear;
  LiEncoder<T> cut(tiny_fourier_spec(), o.seed + 1);
  const LiTrainingResult rc = train_li_encoder(cut, vae, F, images, o, {.batch = [](const LiBatchReport& b) {
                                                 if (b.epoch == 5 && b.batch == 2) request_stop();
                                               }});
  CHECK(rc.interrupted);
  CHECK(rc.stopped_in == 5);
  CHECK(rc.epochs_done == 4);
  int want = 1;
  for (int e = 2; e <= 4; ++e)
    if (reports[std::size_t(e - 1)].validation.mse < reports[std::size_t(want - 1)].validation.mse) want = e;
  CHECK(rc.best_epoch == want);
  CHECK(rc.best.mse == reports[std::size_t(want - 1)].validation.mse);
  CHECK(li_validation(cut, vae.decoder(), F, cut.features(yv), xv, yv).mse ==
        doctest::Approx(rc.best.mse).epsilon(1e-6));
}

TEST_CASE("train_li_encoder refuses bad options and data, naming them") {
  using T = float;
  const nn::Vae<T> vae(64, 16, 4, 5);
  const Fourier2d<T> F(8, 8);
  Rng rng(3);
  const Mat<T> images = vae.decoder()(rng.normal_matrix<T>(4, 50));
  const LiTrainingOptions ok{.epochs = 1, .batch = 16, .critic_hidden = 8, .validation = 10};
  const auto msg = [&](const LiTrainingOptions& o, const Mat<T>& x, LiSpec spec = tiny_fourier_spec()) {
    LiEncoder<T> enc(spec, 1);
    return error_of<invalid_input>([&] { (void)train_li_encoder(enc, vae, F, x, o); });
  };
  auto o = ok;
  o.epochs = 0;
  CHECK(msg(o, images).find("epochs must be at least 1, got 0") != std::string::npos);
  o = ok;
  o.batch = 0;
  CHECK(msg(o, images).find("batch must be at least 1") != std::string::npos);
  o = ok;
  o.learning_rate = std::nan("");
  CHECK(msg(o, images).find("the learning rate must be positive and finite") != std::string::npos);
  o = ok;
  o.adversarial_weight = -0.1;
  CHECK(msg(o, images).find("adversarial weight must be finite and ≥ 0") != std::string::npos);
  o = ok;
  o.critic_learning_rate = 0;
  CHECK(msg(o, images).find("critic's learning rate") != std::string::npos);
  o.adversarial_weight = 0;  // no critic: its options are not read
  CHECK(msg(o, images) == "(no error)");
  for (const Eigen::Index nv : {Eigen::Index(0), Eigen::Index(49), Eigen::Index(50)}) {
    o = ok;
    o.validation = nv;
    CHECK(msg(o, images).find("validation " + std::to_string(nv) + ": needs fewer than the 50 training images") !=
          std::string::npos);
  }
  CHECK(msg(ok, Mat<T>(images.topRows(49))).find("the images have 49 values, the generator makes 64") !=
        std::string::npos);
  Mat<T> bad = images;
  bad(5, 7) = std::numeric_limits<T>::infinity();
  CHECK(msg(ok, bad).find("the images hold NaN or infinite values") != std::string::npos);
  LiSpec other = tiny_fourier_spec();
  other.latent = 5;
  CHECK(msg(ok, images, other).find("encodes to a latent of 5, the generator's latent has 4") != std::string::npos);
  // a batch beyond the 40 training images is one batch of all of them (it allocated 2^40 columns)
  const auto trained = [&](Eigen::Index batch) {
    LiEncoder<T> enc(tiny_fourier_spec(), 1);
    auto o2 = ok;
    o2.batch = batch;
    o2.adversarial_weight = 0.1;
    (void)train_li_encoder(enc, vae, F, images, o2);
    return enc.encode(measure(F, images));
  };
  CHECK(trained(Eigen::Index(1) << 40) == trained(40));
}

TEST_CASE("the project's file names of a prior's LI encoder and placement scorer; the shipped encoders sit there") {
  CHECK(io::generator_suffix("mlp").empty());
  CHECK(io::generator_suffix("style") == "-style");
  CHECK(io::li_encoder_file("mnist", "fourier", "mlp") == "models/li-mnist-fourier.prw");
  CHECK(io::li_encoder_file("fashion-mnist", "gaussian", "conv") == "models/li-fashion-mnist-gaussian-conv.prw");
  CHECK(io::placement_scorer_file("fashion-mnist", "style") == "models/placement-fashion-mnist-style.prw");
  CHECK(io::placement_scorer_file("mnist", "mlp") == "models/placement-mnist.prw");
  // every generator's config sits under the same suffix (prior_files), and its Fourier encoder is shipped
  for (const std::string dataset : {"mnist", "fashion-mnist"})
    for (const std::string generator : {"mlp", "conv", "style"}) {
      const io::PriorFiles f = io::prior_files(dataset, generator, "", "", PRILO_SOURCE_DIR);
      CHECK_MESSAGE(fs::exists(f.config), f.config.string());
      CHECK(f.config.filename().string() == dataset + io::generator_suffix(generator) + ".json");
      const fs::path li = fs::path(PRILO_SOURCE_DIR) / io::li_encoder_file(dataset, "fourier", generator);
      CHECK_MESSAGE(fs::exists(li), li.string());
    }
}

TEST_CASE("-li methods: names, parsing, and clear errors without a matching encoder") {
  for (const char* name : {"dpr-li", "prilo-li", "prilo-chain-li"}) {
    const MethodSpec m = parse_method(name);
    CHECK(m.start == LatentStart::li);
    CHECK(!m.resolve);
    CHECK(!m.range_extended);
    CHECK(std::find(method_names().begin(), method_names().end(), name) != method_names().end());
  }
  CHECK(parse_method("dpr-li").family == MethodFamily::dpr);
  CHECK(parse_method("prilo-li").reading == PriloReading::back_project_refine);
  CHECK(parse_method("prilo-chain-li").reading == PriloReading::chained);
  CHECK(parse_method("prilo-mii").start == LatentStart::mii);
  CHECK_THROWS_AS(parse_method("hio-li"), invalid_input);
  CHECK_THROWS_AS(parse_method("prilo-li-mii"), invalid_input);

  using T = float;
  const nn::Vae<T> vae(64, 16, 4, 3);
  Fourier2d<T> F(8, 8);
  Rng rng(1);
  const Mat<T> y = measure(F, Mat<T>(Mat<T>(rng.normal_matrix<T>(64, 2)).cwiseAbs()));
  ReconstructionConfig<T> cfg;
  cfg.dpr.phase.steps = 3;
  MethodOptions<T> opt{.restart = {.restarts = 2}};
  std::string e = error_of([&] { (void)run_method(parse_method("dpr-li"), vae, F, y, cfg, opt); });
  CHECK_MESSAGE(e.find("method dpr-li needs a learned-initialisation encoder") != std::string::npos, e);
  e = error_of([&] { (void)reconstruct(parse_methods("dpr,dpr-li"), vae, F, y, cfg, opt); });
  CHECK_MESSAGE(e.find("dpr-li needs a learned-initialisation encoder") != std::string::npos, e);
  LiEncoder<T> other({.op = LiOperator::fourier, .height = 4, .width = 16, .hidden = 5, .latent = 4}, 1);
  opt.li = &other;
  e = error_of([&] { (void)run_method(parse_method("dpr-li"), vae, F, y, cfg, opt); });
  CHECK_MESSAGE(e.find("method dpr-li: the LI encoder: trained for 4x16 DFT measurements") != std::string::npos, e);
  LiEncoder<T> wrong_latent({.op = LiOperator::fourier, .height = 8, .width = 8, .hidden = 5, .latent = 6}, 1);
  wrong_latent.set_operator(F);
  opt.li = &wrong_latent;
  e = error_of([&] { (void)run_method(parse_method("dpr-li"), vae, F, y, cfg, opt); });
  CHECK_MESSAGE(e.find("method dpr-li: the LI encoder: encodes to a latent of 6, the generator's latent has 4") !=
                    std::string::npos,
                e);
  CHECK_THROWS_AS(
      latent_starts(vae.decoder(), MagnitudeLoss<Fourier2d<T>>(F, y), LatentStart::li, 1, MiiOptions{}, rng),
      invalid_input);

  // a working encoder: the -li methods run, restart 0 from E(y), and the encoder is counted
  LiEncoder<T> enc({.op = LiOperator::fourier, .height = 8, .width = 8, .hidden = 5, .latent = 4}, 2);
  enc.set_operator(F);
  opt.li = &enc;
  const auto r = run_method(parse_method("dpr-li"), vae, F, y, cfg, opt);
  CHECK(r.best.x.cols() == 2);
  CHECK(r.best.x.allFinite());
  const auto plain = run_method(parse_method("dpr"), vae, F, y, cfg, opt);
  CHECK(r.flops.products > 0);
  CHECK(r.flops.products - plain.flops.products == doctest::Approx(2 * enc.flops_per_column()).epsilon(1e-9));
  CHECK(enc.flops_per_column() == 2.0 * (40 * 5 + 5 * 5 + 5 * 4));  // 8 x (8/2 + 1) inputs
  cfg.prilo.initial.steps = 2;
  cfg.prilo.stages.push_back({.layer = 1, .forward = {.steps = 2}, .back = {.steps = 2}, .refine = {.steps = 2}});
  cfg.prilo_chain.initial.steps = 2;
  cfg.prilo_chain.stages.push_back({.layer = 1, .forward = {.steps = 2}});
  cfg.hio.iterations = 20;
  cfg.hio.final_er = 5;
  const auto all =
      reconstruct(parse_methods("dpr-li,prilo-li,prilo-chain-li,hio,prilo-chain-li-resolve"), vae, F, y, cfg, opt);
  CHECK(all.size() == 5);
  CHECK(all[4].best.x.cols() == 2);  // -resolve over the LI runs: the transform the VAE finds most plausible
  CHECK(all[4].best.x.allFinite());
  // the LI start as -resolve's anchor: G(E(y)), restart 0's start image
  const Mat<T> anchor = li_anchor(vae.decoder(), y, LearnedStart<T>{.encoder = &enc});
  CHECK(anchor == vae.decoder().forward_from(0, enc.encode(y)));
  // the library's LI reconstructions check the operator as run_method does: the encoder was
  // trained on the unitary DFT, the plain one is refused
  const Fourier2d<T> plain_dft(8, 8, FourierScaling::none);
  CHECK_THROWS_WITH_AS(reconstruct_dpr(vae.decoder(), plain_dft, y, LearnedStart<T>{.encoder = &enc}, cfg.dpr, rng,
                                       RestartOptions{.restarts = 1}),
                       doctest::Contains("reconstruct (LI start): trained on another measurement operator"),
                       invalid_input);
  CHECK(reconstruct_dpr(vae.decoder(), F, y, LearnedStart<T>{.encoder = &enc}, cfg.dpr, rng,
                        RestartOptions{.restarts = 1})
            .best.x.allFinite());
  CHECK_THROWS_WITH_AS(li_anchor(vae.decoder(), y, LearnedStart<T>{}),
                       doctest::Contains("li_anchor: LatentStart::li without an encoder"), invalid_input);
  CHECK_THROWS_WITH_AS(li_anchor(vae.decoder(), y, LearnedStart<T>{.encoder = &wrong_latent}),
                       doctest::Contains("latents of 6"), invalid_input);
  // a dominant anchor weight: the resolved image is the candidate nearest the anchor (the base
  // method's transforms included), and the encoder and decoder passes are counted
  cfg.resolve.consistency_threshold = 0;
  cfg.resolve.anchor_weight = 1e6;
  const auto anchored = reconstruct(parse_methods("prilo-chain-li,hio,prilo-chain-li-resolve"), vae, F, y, cfg, opt);
  for (Eigen::Index j = 0; j < 2; ++j) {
    const auto near = metrics::align_to_reference(anchored[0].best.x.col(j), anchor.col(j), 8, 8);
    CHECK((anchored[2].best.x.col(j) - anchor.col(j)).squaredNorm() <= near.mse * 64 * (1 + 1e-4) + 1e-9);
  }
  cfg.resolve.anchor_weight = 0;
  const auto free = reconstruct(parse_methods("prilo-chain-li,hio,prilo-chain-li-resolve"), vae, F, y, cfg, opt);
  const double resolve_extra = 2.0 * 2 * (2 * 64) * (3 * 64);  // 2 images × 2 solutions × 2·n transforms × 3·n
  CHECK(anchored[2].flops.products - free[2].flops.products ==
        doctest::Approx(2 * (enc.flops_per_column() + forward_flops(vae.decoder(), 0, vae.decoder().depth())) +
                        resolve_extra)
            .epsilon(1e-9));
  // the methods without an LI start have no anchor: the weight does not apply to them
  cfg.resolve.anchor_weight = 1e6;
  CHECK_NOTHROW((void)reconstruct(parse_methods("prilo-chain-mii-resolve"), vae, F, y, cfg, opt));
}

TEST_CASE(
    "the shipped MNIST encoders (MLP, conv, style): LI's starts have lower magnitude errors than MII's on held "
    "training images") {
  // the last images of the training split: prilo-train-li holds them out (--validation 2000)
  using T = float;
  const auto data = io::load_dataset<T>(data_dir(), "mnist", "train", 60000 - 128, 128);
  Fourier2d<T> F(28, 28);
  const Mat<T> y = measure(F, data.images);
  const MagnitudeLoss<Fourier2d<T>> loss(F, y);
  for (const std::string generator : {"mlp", "conv", "style"}) {
    CAPTURE(generator);
    const fs::path li_path = fs::path(PRILO_SOURCE_DIR) / io::li_encoder_file("mnist", "fourier", generator);
    REQUIRE_MESSAGE(fs::exists(li_path), li_path.string(),
                    " is missing: train it with prilo-train-li --dataset mnist --operator fourier --generator ",
                    generator, " (docs/li.md)");
    const auto enc = load_li_encoder<T>(li_path);
    enc.check_operator(F);
    const auto model = io::load_any_vae<T>(io::prior_files("mnist", generator, "", "", PRILO_SOURCE_DIR).weights);
    std::visit(
        [&](const auto& vae) {
          Rng rng(7);
          const Mat<T> z_li = latent_starts(vae.decoder(), y, LearnedStart<T>{.encoder = &enc}, 1, rng);
          const Mat<T> z_mii = latent_starts(vae.decoder(), loss, LatentStart::mii, 1, MiiOptions{}, rng);
          const Vec<T> e_li = loss.value(vae.decoder()(z_li)), e_mii = loss.value(vae.decoder()(z_mii));
          const double mean_li = e_li.mean(), mean_mii = e_mii.mean();
          const double wins = double((e_li.array() < e_mii.array()).count()) / double(e_li.size());
          MESSAGE(generator, ": mean magnitude error of the starts: LI ", mean_li, ", MII (5000 candidates) ", mean_mii,
                  "; LI lower on ", 100 * wins, " % of the images");
          CHECK(mean_li < mean_mii);
          CHECK(wins > 0.5);
        },
        model);
  }
}

TEST_CASE("A default-constructed LiEncoder or WganCritic is refused by name when used, not read out of bounds") {
  using T = float;
  const LiEncoder<T> enc;
  const Mat<T> y = Mat<T>::Ones(enc.spec().measurement_rows(), 2);
  CHECK_THROWS_WITH_AS(enc.encode(y), doctest::Contains("default constructor has no weights"), invalid_input);
  const WganCritic<T> critic;
  CHECK_THROWS_WITH_AS(critic.score(Mat<T>::Ones(4, 1)), doctest::Contains("default constructor has no weights"),
                       invalid_input);
  CHECK_THROWS_AS((void)critic.input_size(), invalid_input);
}

TEST_CASE("LI encoder, critic and training loss refuse empty batches, NaN data and sizes their files cannot hold") {
  using T = double;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  Fourier2d<T> F(8, 8);
  Rng rng(3);
  const Mat<T> x = Mat<T>(rng.normal_matrix<T>(64, 4)).cwiseAbs().cwiseMin(1.0);
  LiEncoder<T> enc(tiny_fourier_spec(), 2);
  Mat<T> y = measure(F, x);
  // NaN measurements: the standardisation and the encoding name the column
  Mat<T> reduced = enc.reduce(y);
  reduced(5, 2) = nan;
  CHECK_THROWS_WITH_AS(enc.fit_standardisation(reduced), doctest::Contains("column 2 of the data is not finite"),
                       invalid_input);
  enc.fit_standardisation(enc.reduce(y));
  y(3, 1) = std::numeric_limits<T>::infinity();
  CHECK_THROWS_WITH_AS((void)enc.encode(y), doctest::Contains("measurement column 1 is not finite"), invalid_input);
  // empty batches: the losses would divide by zero and report NaN
  WganCritic<T> critic(64, 8, 2);
  const Mat<T> none(64, 0);
  CHECK_THROWS_WITH_AS(critic.loss(none, none, Vec<T>(0), T(10), false), doctest::Contains("empty batch"),
                       invalid_input);
  const nn::Vae<T> vae(64, 16, 4, 5);
  CHECK_THROWS_WITH_AS(li_encoder_loss(enc, vae.decoder(), &critic, Mat<T>(enc.input_size(), 0), none, T(0), false),
                       doctest::Contains("empty batch"), invalid_input);
  // the critic's penalty weight and interpolation weights
  const Vec<T> half = Vec<T>::Constant(4, 0.5);
  CHECK_THROWS_WITH_AS(critic.loss(x, x, half, nan, false), doctest::Contains("penalty weight"), invalid_input);
  CHECK_THROWS_WITH_AS(critic.loss(x, x, half, T(-1), false), doctest::Contains("penalty weight"), invalid_input);
  Vec<T> bad_t = half;
  bad_t(3) = 1.5;
  CHECK_THROWS_WITH_AS(critic.loss(x, x, bad_t, T(10), false), doctest::Contains("interpolation weight 3"),
                       invalid_input);
  CHECK(std::isfinite(critic.loss(x, x, half, T(10), false).total));
  const Mat<T> feats = enc.features(measure(F, x));
  CHECK_THROWS_WITH_AS(li_encoder_loss(enc, vae.decoder(), &critic, feats, x, nan, false),
                       doctest::Contains("adversarial weight"), invalid_input);
  // sizes the weights file cannot keep (its sides are read back up to 2^16, its sizes as 32 bits)
  CHECK_THROWS_WITH_AS(LiEncoder<T>(LiSpec{.op = LiOperator::fourier, .height = 70000, .width = 1}, 1),
                       doctest::Contains("at most 65536"), invalid_input);
  CHECK_THROWS_WITH_AS(
      LiEncoder<T>(LiSpec{.op = LiOperator::gaussian_real, .measurements = Eigen::Index(1) << 32, .hidden = 1}, 1),
      doctest::Contains("below 2^31"), invalid_input);
}

}  // namespace prilo_test_li

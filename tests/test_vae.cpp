// The VAE: gradient of the full loss (reparameterisation included) and training on real data.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <prilo/interrupt.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/nn.hpp>
#include <prilo/nn/vae_io.hpp>
#include <prilo/nn/vae_training.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/testing/checkers.hpp>
#include <stdexcept>

#include "test_support.hpp"

#ifndef PRILO_TEST_TMPDIR
#define PRILO_TEST_TMPDIR "/tmp"
#endif

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_vae {

using namespace prilo;
using test_support::data_dir;
using test_support::error_of;

TEST_CASE("The VAE loss gradient matches finite differences for every weight tensor") {
  nn::Vae<double> vae(12, 9, 4, 21);
  Rng rng(22);
  Mat<double> x = (rng.normal_matrix<double>(12, 5).array() * 0.3 + 0.5).cwiseMax(0.05).cwiseMin(0.95).matrix();
  Mat<double> eps = rng.normal_matrix<double>(4, 5);
  vae.zero_grad();
  vae.loss(x, eps, true);
  auto params = vae.parameters();
  CHECK(params.size() == 12);
  for (auto& p : params) {
    Mat<double> w0 = p.value, gw = p.grad;
    auto f = [&](const Mat<double>& w) {
      p.value = w;
      double v = vae.loss(x, eps, false).total;
      p.value = w0;
      return v;
    };
    auto g = [&](const Mat<double>&, Mat<double>& out) { out = gw; };
    auto r = testing::check_gradient<double>(f, g, w0, rng, 4, 1e-6, 1e-5);
    INFO(p.name << " relative error " << r.max_rel_error);
    CHECK(r.ok);
  }
}

TEST_CASE("VAE loss parts are consistent") {
  nn::Vae<double> vae(10, 6, 3, 1);
  Rng rng(2);
  Mat<double> x = Mat<double>::Constant(10, 4, 0.5);
  Mat<double> eps = rng.normal_matrix<double>(3, 4);
  auto l = vae.loss(x, eps, false);
  CHECK(l.kl >= 0);
  CHECK(l.bce > 0);
  CHECK(l.total == doctest::Approx(l.bce + l.kl));
  CHECK(vae.negative_elbo(x, eps).mean() == doctest::Approx(l.total));
  CHECK_THROWS_WITH(vae.loss(Mat<double>::Ones(9, 4), eps, false), doctest::Contains("VAE input"));
}

TEST_CASE("end-to-end: the shipped VAEs load and reach the test-set loss docs/training.md records") {
  // figures printed by prilo-train-vae at the end of training (seed 1, noise seed 3)
  for (auto [name, want] : {std::pair{"mnist", 99.106}, std::pair{"fashion-mnist", 238.194}}) {
    auto vae = nn::load_vae<float>(std::string(PRILO_SOURCE_DIR) + "/models/vae-" + name + ".prw");
    CHECK(vae.latent_dim() == 100);
    CHECK(vae.hidden_dim() == 500);
    auto test = io::load_dataset<float>(data_dir(), name, "test");
    CAPTURE(name);
    CHECK(nn::mean_negative_elbo(vae, test.images, 3) == doctest::Approx(want).epsilon(5e-4));
  }
}

TEST_CASE("end-to-end: a few hundred training steps on real images lower the VAE loss clearly") {
  auto data = io::load_dataset<float>(data_dir(), "mnist", "train", 0, 2000);
  nn::Vae<float> vae(784, 128, 16, 5);
  AdamTrainer<float> adam;
  auto params = vae.parameters();
  Rng rng(6);
  const Mat<float> eval_eps = rng.normal_matrix<float>(16, 500);
  const double before = vae.negative_elbo(data.images.leftCols(500), eval_eps).mean();
  for (int step = 0; step < 300; ++step) {
    const Eigen::Index j0 = (step * 50) % 2000;
    vae.zero_grad();
    vae.loss(data.images.middleCols(j0, 50), rng.normal_matrix<float>(16, 50), true);
    adam.step(params);
  }
  const double after = vae.negative_elbo(data.images.leftCols(500), eval_eps).mean();
  MESSAGE("VAE loss before " << before << ", after 300 steps " << after);
  CHECK(after < 0.5 * before);
}

TEST_CASE("Weights of the wrong architecture are rejected") {
  const std::string dir = PRILO_TEST_TMPDIR;
  io::WeightsFile<float> f;
  f.arch = "something-else";
  f.sizes = {1, 2};
  f.add("w", Mat<float>::Ones(2, 2));
  io::save_weights(dir + "/other.prw", f);
  CHECK_THROWS_WITH(nn::load_vae<float>(dir + "/other.prw"), doctest::Contains("is not a VAE"));
  nn::Vae<float> small(10, 6, 3, 1);
  nn::save_vae(dir + "/small.prw", small);
  auto back = nn::load_vae<float>(dir + "/small.prw");
  CHECK(back.decoder().module<2>().weight() == small.decoder().module<2>().weight());
  CHECK(back.encoder().module<0>().bias() == small.encoder().module<0>().bias());
}

TEST_CASE("A VAE file holding NaN or infinity, or doubles beyond float's range, is refused, naming file and tensor") {
  const std::string dir = PRILO_TEST_TMPDIR;
  nn::Vae<double> small(10, 6, 3, 1);
  nn::save_vae(dir + "/finite.prw", small);
  const auto good = io::load_weights<double>(dir + "/finite.prw");
  auto with = [&](const std::string& name, double v) {
    io::WeightsFile<double> f = good;
    for (auto& t : f.tensors)
      if (t.name == "decoder.1.weight") t.value(2, 3) = v;
    io::save_weights(dir + "/" + name, f);  // the format keeps any value: the model refuses it
    return dir + "/" + name;
  };
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()}) {
    const std::string p = with("nan.prw", bad);
    CHECK(std::isnan(io::load_weights<double>(p).at("decoder.1.weight")(2, 3)) == std::isnan(bad));
    for (const std::string& e :
         {error_of([&] { (void)nn::load_vae<double>(p); }), error_of([&] { (void)nn::load_vae<float>(p); })})
      CHECK_MESSAGE(
          e.find(p + ": weights: tensor \"decoder.1.weight\" holds NaN or infinite values") != std::string::npos, e);
  }
  const std::string huge = with("huge.prw", 1e300);
  CHECK(nn::load_vae<double>(huge).decoder().module<1>().weight()(2, 3) == 1e300);  // a double holds it
  CHECK(error_of([&] {
          (void)nn::load_vae<float>(huge);
        }).find("infinite values (read as float: a float64 value beyond") != std::string::npos);
  CHECK_THROWS_AS((void)nn::load_vae<float>(huge), file_error);
}

namespace {

/// Synthetic images in [0, 1] (d × n), drawn from Rng(seed).
Mat<double> unit_images(Eigen::Index d, Eigen::Index n, std::uint64_t seed) {
  Rng rng(seed);
  Mat<double> x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = rng.uniform();
  return x;
}

bool same_parameters(nn::Vae<double>& a, nn::Vae<double>& b) {
  auto pa = a.parameters(), pb = b.parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t k = 0; k < pa.size(); ++k)
    if (pa[k].value != pb[k].value) return false;
  return true;
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// Clears a stop request when the test ends, whatever happens in it.
struct ClearStop {
  ~ClearStop() { clear_stop(); }
};

}  // namespace

TEST_CASE("train_vae with a batch larger than the data: one batch of all of it, nothing allocated for the rest") {
  const Mat<double> train = unit_images(12, 5, 3), test = unit_images(12, 3, 4);
  nn::Vae<double> a(12, 9, 4, 21), b(12, 9, 4, 21);
  const auto big = nn::train_vae(a, train, test, {.epochs = 2, .batch = Eigen::Index(1) << 40, .seed = 5});
  const auto all = nn::train_vae(b, train, test, {.epochs = 2, .batch = 5, .seed = 5});
  CHECK(big.epochs_done == 2);
  CHECK(all.epochs_done == 2);
  CHECK(a.decoder().module<0>().weight() == b.decoder().module<0>().weight());  // the same run
}

TEST_CASE("mean_negative_elbo and train_vae take blocks of a data set; a block size of 0 is refused, not a hang") {
  const Mat<double> data = unit_images(12, 10, 3);
  nn::Vae<double> a(12, 9, 4, 21), b(12, 9, 4, 21);
  const Mat<double> first = data.leftCols(5);
  CHECK(nn::mean_negative_elbo(a, data.leftCols(5), 7, 2) == nn::mean_negative_elbo(a, first, 7, 2));
  CHECK_THROWS_WITH_AS(nn::mean_negative_elbo(a, data, 7, 0),
                       doctest::Contains("mean_negative_elbo: block must be >= 1, got 0"), invalid_input);
  CHECK_THROWS_WITH_AS(nn::mean_negative_elbo(a, Mat<double>(12, 0), 7),
                       doctest::Contains("mean_negative_elbo: no images"), invalid_input);
  const nn::VaeTrainingOptions o{.epochs = 1, .batch = 4, .seed = 5};
  const Mat<double> train = data.leftCols(8), test = data.rightCols(2);
  (void)nn::train_vae(a, data.leftCols(8), data.rightCols(2), o);
  (void)nn::train_vae(b, train, test, o);
  CHECK(a.decoder().module<0>().weight() == b.decoder().module<0>().weight());
}

TEST_CASE("train_vae runs prilo-train-vae's protocol draw for draw: shuffle, batches, noise, Adam, test loss") {
  const Mat<double> train = unit_images(12, 37, 3), test = unit_images(12, 9, 4);  // 37: a short last batch
  const nn::VaeTrainingOptions o{.epochs = 3, .batch = 10, .learning_rate = 3e-3, .seed = 5};
  nn::Vae<double> vae(12, 9, 4, 21);
  std::vector<nn::VaeEpochReport> epochs;
  long batches_seen = 0;
  const auto res = nn::train_vae(vae, train, test, o,
                                 {.batch =
                                      [&](const nn::VaeBatchReport& r) {
                                        ++batches_seen;
                                        CHECK(r.images == (r.batch == 4 ? 7 : 10));
                                        CHECK(r.done == (r.epoch - 1) * 4 + r.batch);
                                      },
                                  .epoch = [&](const nn::VaeEpochReport& r) { epochs.push_back(r); }});
  CHECK(!res.interrupted);
  CHECK(res.epochs_done == 3);
  CHECK(batches_seen == 12);
  REQUIRE(epochs.size() == 3u);

  // the protocol written out: Rng(seed + 1) shuffles, then draws each batch's noise; Adam
  nn::Vae<double> ref(12, 9, 4, 21);
  AdamTrainer<double> adam({.learning_rate = 3e-3});
  auto params = ref.parameters();
  Rng rng(o.seed + 1);
  std::vector<Eigen::Index> order(37);
  std::iota(order.begin(), order.end(), Eigen::Index(0));
  for (int epoch = 1; epoch <= 3; ++epoch) {
    rng.shuffle(order);
    double sum = 0;
    for (Eigen::Index j0 = 0; j0 < 37; j0 += 10) {
      const Eigen::Index nb = std::min<Eigen::Index>(10, 37 - j0);
      Mat<double> xb(12, nb);
      for (Eigen::Index j = 0; j < nb; ++j) xb.col(j) = train.col(order[std::size_t(j0 + j)]);
      const Mat<double> eps = rng.normal_matrix<double>(4, nb);
      ref.zero_grad();
      sum += ref.loss(xb, eps, true).total * double(nb);
      adam.step(params);
    }
    CHECK(epochs[std::size_t(epoch - 1)].train_loss == doctest::Approx(sum / 37).epsilon(1e-14));
    CHECK(epochs[std::size_t(epoch - 1)].test_loss == nn::mean_negative_elbo(ref, test, o.seed + 2));
  }
  CHECK(same_parameters(vae, ref));
  CHECK(res.test_loss == epochs.back().test_loss);
}

TEST_CASE(
    "train_vae: a stop request ends it at the next batch; resuming from the checkpoint ends where an "
    "uninterrupted run ends, files byte for byte") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR) / "vae_training";
  fs::create_directories(dir);
  const Mat<double> train = unit_images(12, 40, 7), test = unit_images(12, 8, 8);
  nn::VaeTrainingOptions o{.epochs = 3, .batch = 8, .learning_rate = 2e-3, .seed = 9};

  nn::Vae<double> straight(12, 9, 4, 2);
  o.weights = dir / "straight.prw";
  o.checkpoint = dir / "straight.ckpt";
  const auto full = nn::train_vae(straight, train, test, o);
  REQUIRE(full.epochs_done == 3);

  const ClearStop clear;
  nn::Vae<double> first(12, 9, 4, 2);
  o.weights = dir / "resumed.prw";
  o.checkpoint = dir / "resumed.ckpt";
  fs::remove(o.checkpoint);
  int last_epoch = 0;
  long last_batch = 0;
  const auto cut = nn::train_vae(first, train, test, o, {.batch = [&](const nn::VaeBatchReport& r) {
                                   last_epoch = r.epoch;
                                   last_batch = r.batch;
                                   if (r.epoch == 2 && r.batch == 2) request_stop();
                                 }});
  CHECK(cut.interrupted);
  CHECK(cut.stopped_in == 2);
  CHECK(cut.epochs_done == 1);
  CHECK((last_epoch == 2 && last_batch == 2));  // no batch after the request
  clear_stop();

  nn::Vae<double> second(12, 9, 4, 77);  // other initial weights: the checkpoint replaces them
  o.resume = true;
  int resumed_after = -1;
  const auto rest = nn::train_vae(second, train, test, o, {.resumed = [&](int e) { resumed_after = e; }});
  CHECK(resumed_after == 1);
  CHECK(!rest.interrupted);
  CHECK(rest.epochs_done == 3);
  CHECK(rest.test_loss == full.test_loss);
  CHECK(same_parameters(second, straight));
  CHECK(file_bytes(dir / "resumed.prw") == file_bytes(dir / "straight.prw"));
  nn::Vae<double> loaded = nn::load_vae<double>(dir / "resumed.prw");
  CHECK(same_parameters(loaded, straight));

  // a checkpoint that holds the epochs asked for already: nothing to resume
  nn::Vae<double> other(12, 9, 4, 2);
  CHECK(error_of([&] { nn::train_vae(other, train, test, o); }).find("holds 3 epochs already") != std::string::npos);
  // a checkpoint of another training set is refused, naming both sizes
  o.epochs = 4;
  CHECK(error_of([&] {
          nn::train_vae(other, Mat<double>(train.leftCols(30)), test, o);
        }).find("shuffles 40 images, not 30") != std::string::npos);
  // ... and so is one written for other images of the same count, or with another batch size,
  // learning rate or seed: each named, and the checkpoint left as it was
  const auto before = file_bytes(o.checkpoint);
  auto refused = [&](const Mat<double>& images, nn::VaeTrainingOptions changed) {
    nn::Vae<double> m(12, 9, 4, 2);
    return error_of([&] { nn::train_vae(m, images, test, changed); });
  };
  const std::string written = "resumed.ckpt: the checkpoint was written ";
  CHECK_MESSAGE(refused(unit_images(12, 40, 70), o).find(written + "for other training images (fingerprint ") !=
                    std::string::npos,
                refused(unit_images(12, 40, 70), o));
  nn::VaeTrainingOptions changed = o;
  changed.batch = 10;
  CHECK(refused(train, changed).find(written + "with batch size 8, not 10") != std::string::npos);
  changed = o;
  changed.learning_rate = 1e-3;
  CHECK(refused(train, changed).find(written + "with learning rate 0.002, not 0.001") != std::string::npos);
  changed.learning_rate = 2.0000001e-3;  // apart in the 8th digit: printed apart too
  CHECK(refused(train, changed).find(written + "with learning rate 0.002, not 0.0020000001") != std::string::npos);
  changed = o;
  changed.seed = 10;
  CHECK(refused(train, changed).find(written + "with seed 9, not 10 (resume with the run's own settings") !=
        std::string::npos);
  CHECK(file_bytes(o.checkpoint) == before);
  // a checkpoint written before the key was kept (its 8 words gone) loads without one, and resumes unchecked
  {
    io::WeightsFile<double> f = io::load_weights<double>(o.checkpoint);
    REQUIRE(f.sizes.size() == 3 + 14 + 8);
    f.sizes.resize(3 + 14);
    io::save_weights(dir / "keyless.ckpt", f);
    nn::Vae<double> m(12, 9, 4, 2);
    AdamTrainer<double> adam;
    const nn::TrainingState st = nn::load_checkpoint(dir / "keyless.ckpt", m, adam);
    CHECK(!st.key.has_value());
    CHECK(st.epoch == 3);
    nn::VaeTrainingOptions old = o;
    old.checkpoint = dir / "keyless.ckpt";
    old.seed = 10;
    CHECK(nn::train_vae(m, train, test, old).epochs_done == 4);
  }
  o.checkpoint = dir / "missing.ckpt";
  fs::remove(o.checkpoint);
  CHECK_THROWS_WITH_AS(nn::train_vae(other, train, test, o), doctest::Contains("no checkpoint to resume from"),
                       file_error);
}

TEST_CASE("data_fingerprint: equal for equal data, different for one changed value, a sign or another shape") {
  const Mat<float> a = unit_images(12, 6, 3).cast<float>();
  Mat<float> b = a;
  CHECK(nn::data_fingerprint(a) == nn::data_fingerprint(b));
  for (Eigen::Index k : {Eigen::Index(0), a.size() / 2, a.size() - 1}) {
    b = a;
    b(k) = std::nextafter(b(k), 2.0f);  // one value, one ulp
    CHECK(nn::data_fingerprint(a) != nn::data_fingerprint(b));
  }
  b = a;
  b(5) = -b(5) == 0 ? 1 : -b(5);
  CHECK(nn::data_fingerprint(a) != nn::data_fingerprint(b));
  const Mat<float> c = Eigen::Map<const Mat<float>>(a.data(), 6, 12);  // the same values, another shape
  CHECK(nn::data_fingerprint(a) != nn::data_fingerprint(c));
  CHECK(nn::data_fingerprint(a) != nn::data_fingerprint(Mat<double>(a.cast<double>())));
}

TEST_CASE("save_checkpoint refuses a training state its file cannot hold: a negative epoch, a float order past 2^24") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR) / "vae_checkpoint_unsaveable";
  fs::remove_all(dir);
  fs::create_directories(dir);
  nn::Vae<float> vae(12, 9, 4, 2);
  AdamTrainer<float> adam;
  std::vector<Eigen::Index> order(20);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = Eigen::Index(i);
  nn::TrainingState st{.epoch = 3, .order = order, .rng = Rng(1).state()};
  nn::save_checkpoint(dir / "fine.ckpt", vae, adam, st);
  CHECK(fs::exists(dir / "fine.ckpt"));
  st.epoch = -1;  // a uint32 cast would have stored 4294967295, refused only on resuming
  CHECK(error_of([&] {
          nn::save_checkpoint(dir / "epoch.ckpt", vae, adam, st);
        }).find("save_checkpoint: the epoch must be in 0..2147483646, got -1") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "epoch.ckpt"));
  // the load refuses an epoch of INT_MAX (no epoch can follow it), so the save does too
  st.epoch = std::numeric_limits<int>::max();
  CHECK(error_of([&] {
          nn::save_checkpoint(dir / "epoch.ckpt", vae, adam, st);
        }).find("the epoch must be in 0..2147483646, got 2147483647") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "epoch.ckpt"));
  // an order that is no permutation, and a generator state that only draws 0, were saved and
  // then found corrupt on resuming
  st.epoch = 3;
  for (const std::vector<Eigen::Index>& bad : {std::vector<Eigen::Index>{0, 0, 7}, std::vector<Eigen::Index>{-1, 1}}) {
    st.order = bad;
    CHECK(error_of([&] {
            nn::save_checkpoint(dir / "perm.ckpt", vae, adam, st);
          }).find("save_checkpoint: the shuffle order is not a permutation of 0..") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir / "perm.ckpt"));
  st.order = order;
  st.rng = {0, 0, 0, 0, 0, 0};
  CHECK(error_of([&] {
          nn::save_checkpoint(dir / "rng.ckpt", vae, adam, st);
        }).find("save_checkpoint: the random generator's state is all zero") != std::string::npos);
  st.rng = Rng(1).state();
  st.rng[4] = 2;
  CHECK(error_of([&] {
          nn::save_checkpoint(dir / "rng.ckpt", vae, adam, st);
        }).find("the random generator's spare flag is 2, not 0 or 1") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "rng.ckpt"));
  // the model is only read: a const VAE saves
  st.rng = Rng(1).state();
  const nn::Vae<float>& constant = vae;
  nn::save_checkpoint(dir / "const.ckpt", constant, adam, st);
  nn::save_vae(dir / "const.prw", constant);
  CHECK(fs::exists(dir / "const.ckpt"));
  CHECK(nn::load_vae<float>(dir / "const.prw").latent_dim() == 4);
  // float keeps the integers exactly up to 2^24: a longer order would round entries together
  st.epoch = 3;
  st.order.assign((std::size_t(1) << 24) + 1, 0);
  CHECK(error_of([&] {
          nn::save_checkpoint(dir / "order.ckpt", vae, adam, st);
        }).find("cannot be kept in float (at most 16777216 training images)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "order.ckpt"));
}

TEST_CASE("a checkpoint whose training state is damaged is refused, never used: order, epoch, Adam's moments") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR) / "vae_checkpoint_damage";
  fs::create_directories(dir);
  const Mat<double> train = unit_images(12, 20, 3), test = unit_images(12, 4, 4);
  nn::Vae<double> vae(12, 9, 4, 2);
  nn::VaeTrainingOptions o{.epochs = 1, .batch = 5, .seed = 1};
  o.checkpoint = dir / "good.ckpt";
  REQUIRE(nn::train_vae(vae, train, test, o).epochs_done == 1);
  const auto good = io::load_weights<double>(o.checkpoint);
  // the damaged copies carry valid checksums (save_weights writes them): only the contents are wrong
  auto damaged = [&](const std::string& name, const auto& change) {
    io::WeightsFile<double> f = good;
    change(f);
    const fs::path p = dir / (name + ".ckpt");
    io::save_weights(p, f);
    nn::Vae<double> into(12, 9, 4, 2);
    AdamTrainer<double> adam;
    return error_of([&] { (void)nn::load_checkpoint(p, into, adam); });
  };
  auto tensor = [](io::WeightsFile<double>& f, const std::string& name) -> Mat<double>& {
    for (auto& t : f.tensors)
      if (t.name == name) return t.value;
    FAIL("no tensor " << name);
    throw std::logic_error("unreachable");
  };
  CHECK(damaged("same", [](auto&) {}) == "(no error)");
  const std::string not_permutation = "corrupt checkpoint: the shuffle order is not a permutation of 0..19";
  for (const double v : {1e9, -5.0, 2.5, std::numeric_limits<double>::quiet_NaN()})
    CHECK(damaged("order", [&](auto& f) { tensor(f, "train.order")(3) = v; }).find(not_permutation) !=
          std::string::npos);
  CHECK(damaged("repeat", [&](auto& f) {
          auto& order = tensor(f, "train.order");
          order(1) = order(0);
        }).find(not_permutation + " (entry 1)") != std::string::npos);
  // the epoch and Adam's step are 32-bit words after the model's three sizes
  CHECK(damaged("epoch", [](auto& f) { f.sizes[3] = 0xFFFFFFFFu; }).find("epoch 4294967295 is out of range") !=
        std::string::npos);
  CHECK(damaged("step", [](auto& f) { f.sizes[4] = 0x80000000u; }).find("Adam's step 2147483648 is out of range") !=
        std::string::npos);
  CHECK(damaged("v", [&](auto& f) {
          tensor(f, "adam.v.0")(0) = -1;
        }).find("Adam's second moment 0 is negative or not finite") != std::string::npos);
  // the Rng words (sizes 5..16: four xoshiro words, the spare flag, the spare's bits) are not
  // under the checksum: a state that cannot come from a generator is refused
  CHECK(damaged("zero-rng", [](auto& f) {
          for (int i = 5; i < 13; ++i) f.sizes[std::size_t(i)] = 0;
        }).find("corrupt checkpoint: the random generator's state is all zero") != std::string::npos);
  CHECK(damaged("flag", [](auto& f) { f.sizes[13] = 3; }).find("the random generator's spare flag is 3, not 0 or 1") !=
        std::string::npos);
  CHECK(damaged("spare", [](auto& f) {
          f.sizes[15] = 0x00000000u;
          f.sizes[16] = 0x7FF80000u;  // a NaN's bits
        }).find("the random generator's spare value is not finite") != std::string::npos);
  // missing, extra and misshapen training tensors: named as the checkpoint's damage, with its path
  const auto without = [](const std::string& name) {
    return [name](auto& f) { std::erase_if(f.tensors, [&](const auto& t) { return t.name == name; }); };
  };
  CHECK(damaged("no-m", without("adam.m.1")).find("no-m.ckpt: corrupt checkpoint: no tensor \"adam.m.1\"") !=
        std::string::npos);
  CHECK(damaged("no-order", without("train.order"))
            .find("no-order.ckpt: corrupt checkpoint: no tensor \"train.order\"") != std::string::npos);
  CHECK(damaged("extra-m", [](auto& f) { f.add("adam.m.77", Mat<double>::Zero(2, 2)); })
            .find("corrupt checkpoint: tensor \"adam.m.77\" belongs to no part of the training state") !=
        std::string::npos);
  CHECK(damaged("extra-train", [](auto& f) {
          f.add("train.bogus", Mat<double>::Zero(1, 1));
        }).find("tensor \"train.bogus\" belongs to no part of the training state") != std::string::npos);
  CHECK(damaged("flat-order", [&](auto& f) {
          tensor(f, "train.order") = Mat<double>::Zero(0, 5);
        }).find("corrupt checkpoint: tensor \"train.order\" is 0x5, expected 0x1") != std::string::npos);
  CHECK(damaged("m-shape", [&](auto& f) {
          tensor(f, "adam.m.0") = Mat<double>::Zero(1, 1);
        }).find("corrupt checkpoint: tensor \"adam.m.0\" is 1x1, expected ") != std::string::npos);
  // a step count that one epoch of 20 images cannot make (it would overflow Adam's counter)
  io::WeightsFile<double> big = good;
  big.sizes[4] = 0x7FFFFFFEu;
  io::save_weights(dir / "bigstep.ckpt", big);
  nn::Vae<double> resumed(12, 9, 4, 2);
  nn::VaeTrainingOptions r{.epochs = 2, .batch = 5, .seed = 1};
  r.checkpoint = dir / "bigstep.ckpt";
  r.resume = true;
  CHECK(error_of([&] { (void)nn::train_vae(resumed, train, test, r); })
            .find("bigstep.ckpt: corrupt checkpoint: Adam's step 2147483646 is more than 1 epochs of 20 images can "
                  "make") != std::string::npos);
}

TEST_CASE("train_vae refuses bad options and data with a message that names them") {
  nn::Vae<double> vae(12, 9, 4, 2);
  const Mat<double> train = unit_images(12, 20, 1), test = unit_images(12, 5, 2);
  const auto msg = [&](nn::VaeTrainingOptions o, const Mat<double>& tr, const Mat<double>& te) {
    return error_of<invalid_input>([&] { nn::train_vae(vae, tr, te, o); });
  };
  const nn::VaeTrainingOptions ok{.epochs = 1, .batch = 5};
  auto o = ok;
  o.epochs = 0;
  CHECK(msg(o, train, test).find("epochs must be at least 1, got 0") != std::string::npos);
  o = ok;
  o.batch = 0;
  CHECK(msg(o, train, test).find("batch must be at least 1") != std::string::npos);
  for (const double lr : {0.0, -1e-3, std::nan("")}) {
    o = ok;
    o.learning_rate = lr;
    CHECK(msg(o, train, test).find("learning rate must be positive and finite") != std::string::npos);
  }
  o = ok;
  o.resume = true;
  CHECK(msg(o, train, test).find("resume needs a checkpoint path") != std::string::npos);
  CHECK(msg(ok, unit_images(11, 20, 1), test).find("training images have 11 values, the model takes 12") !=
        std::string::npos);
  CHECK(msg(ok, train, unit_images(13, 5, 2)).find("test images have 13 values") != std::string::npos);
  CHECK(msg(ok, train, Mat<double>(12, 0)).find("no test images") != std::string::npos);
  Mat<double> bad = train;
  bad(3, 7) = std::nan("");
  CHECK(msg(ok, bad, test).find("training images hold NaN or infinite values") != std::string::npos);
  // nothing was trained by the refused calls
  nn::Vae<double> fresh(12, 9, 4, 2);
  CHECK(same_parameters(vae, fresh));
}

TEST_CASE(
    "train_vae on real MNIST images: each epoch's test loss below the last, the third under 60 % of the "
    "untrained model's") {
  const auto train = io::load_dataset<float>(data_dir(), "mnist", "train", 0, 2000);
  const auto test = io::load_dataset<float>(data_dir(), "mnist", "test", 0, 500);
  nn::Vae<float> vae(784, 128, 16, 5);
  const double before = nn::mean_negative_elbo(vae, test.images, 3);
  std::vector<double> losses;
  const auto res = nn::train_vae(vae, train.images, test.images, {.epochs = 3, .batch = 50, .seed = 1},
                                 {.epoch = [&](const nn::VaeEpochReport& r) { losses.push_back(r.test_loss); }});
  REQUIRE(losses.size() == 3u);
  MESSAGE("test loss untrained " << before << ", after each epoch " << losses[0] << ", " << losses[1] << ", "
                                 << losses[2]);
  CHECK(losses[0] < before);
  CHECK(losses[1] < losses[0]);
  CHECK(losses[2] < losses[1]);
  CHECK(res.test_loss < 0.6 * before);

  // a learning rate of 100: the training loss stays finite through the epoch, the test loss
  // does not; such a model was saved and reported as trained
  nn::Vae<float> wild(784, 128, 16, 5);
  CHECK_THROWS_WITH_AS(
      nn::train_vae(wild, Mat<float>(train.images.leftCols(100)), Mat<float>(test.images.leftCols(100)),
                    {.epochs = 1, .batch = 64, .learning_rate = 100, .seed = 1}),
      doctest::Contains("after epoch 1 (try a smaller learning rate)"), invalid_input);
}

}  // namespace prilo_test_vae

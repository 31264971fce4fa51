// prilo-train-li: trains the learned initialisation (LI, the paper's Section 2.2 and Eq. 9): an
// encoder from magnitudes y = |A x| to the VAE's latent z0, through the frozen decoder G, with
// the image MSE and (with --adversarial-weight > 0) the WGAN-GP adversarial term of a critic on
// images. The paper's LPIPS term is left out (it needs a pretrained network). A held-out part of
// the training split gives the validation loss; the weights of the best validation epoch are
// written (by name, prilo's weights format) for prilo-reconstruct's -li methods.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <prilo/backend/cpu.hpp>
#include <prilo/init/li.hpp>
#include <prilo/interrupt.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/operators.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/report.hpp>

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif

using namespace prilo;
using T = float;
namespace fs = std::filesystem;

namespace {

struct Settings {
  std::string dataset = "mnist", op = "fourier", transform = "identity", generator = "mlp", out, weights,
              data_dir = io::default_data_dir();
  int measurements = 200, epochs = 20, batch = 128, threads = 0, hidden = 500, critic_hidden = 256, log_every = 0;
  long limit = 0, validation = 2000;
  std::uint64_t seed = 0;
  double lr = 1e-3, critic_lr = 1e-4, adversarial = 0.01, gp = 10;
};

struct Validation {
  double mse = 0;        ///< ‖G(E(y)) − x‖² / (n·B)
  double magnitude = 0;  ///< ‖|A G(E(y))| − y‖² / (m·B): the start's magnitude error
};

template <class Op, class V>
Validation validate(const LiEncoder<T>& enc, const V& vae, const Op& op, const Mat<T>& feats, const Mat<T>& x,
                    const Mat<T>& y) {
  Validation v;
  const Eigen::Index B = x.cols();
  for (Eigen::Index j = 0; j < B; j += 1000) {
    const Eigen::Index nb = std::min<Eigen::Index>(1000, B - j);
    const Mat<T> xh = vae.decoder()(enc.network()(feats.middleCols(j, nb)));
    v.mse += double((xh - x.middleCols(j, nb)).squaredNorm());
    v.magnitude += double((measure(op, xh) - y.middleCols(j, nb)).squaredNorm());
  }
  v.mse /= double(B * x.rows());
  v.magnitude /= double(B * y.rows());
  return v;
}

template <class Op, class V>
int train(const Settings& st, const Op& op, LiSpec spec, const V& vae, const fs::path& vae_path) {
  spec.decoder = *li_decoder_of<V>();
  if (li_decoder_name(spec.decoder) != "vae-" + st.generator)
    throw invalid_input("--generator " + st.generator + ": the weights " + vae_path.string() + " are a " +
                        li_decoder_name(spec.decoder) + ", not a vae-" + st.generator);
  const auto data =
      io::load_dataset<T>(st.data_dir, st.dataset, "train", 0, st.limit > 0 ? std::size_t(st.limit) : io::idx_all);
  const Eigen::Index N = data.images.cols(), n = data.images.rows();
  if (vae.data_dim() != n)
    throw invalid_input("weights " + vae_path.string() + " are for images of " + std::to_string(vae.data_dim()) +
                        " pixels, the data has " + std::to_string(n));
  if (Eigen::Index(st.validation) >= N - 1)
    throw invalid_input("--validation " + std::to_string(st.validation) + ": needs fewer than the " +
                        std::to_string(N) + " training images");
  const Eigen::Index nv = st.validation, nt = N - nv;  // held out: the last nv images of the split
  spec.latent = vae.latent_dim();
  LiEncoder<T> enc(spec, st.seed + 1);
  enc.set_operator(op);

  // measurements and reduced inputs once; the standardisation from the training part
  Mat<T> y(op.output_size(), N), red(enc.input_size(), N);
  for (Eigen::Index j = 0; j < N; j += 2000) {
    const Eigen::Index nb = std::min<Eigen::Index>(2000, N - j);
    y.middleCols(j, nb) = measure(op, Mat<T>(data.images.middleCols(j, nb)));
    red.middleCols(j, nb) = enc.reduce(y.middleCols(j, nb));
  }
  enc.fit_standardisation(red.leftCols(nt));
  const Mat<T> feats = enc.standardise(red);
  red.resize(0, 0);
  const Mat<T> xv = data.images.rightCols(nv), yv = y.rightCols(nv), fv = feats.rightCols(nv);

  std::printf(
      "prilo-train-li: %s, operator %s%s, input %s half spectrum/magnitudes (%ld), encoder %ld-%d-%d-%ld, decoder "
      "%s (frozen)\n  %ld training and %ld held-out training images, %d epochs, batch %d, lr %g, adversarial weight "
      "%g (critic %ld-%d-%d-1, lr %g, gradient penalty %g), seed %llu, %d threads\n",
      st.dataset.c_str(), st.op.c_str(),
      spec.op == LiOperator::fourier ? "" : (" m=" + std::to_string(spec.measurements)).c_str(),
      li_transform_name(spec.transform), long(enc.input_size()), long(enc.input_size()), st.hidden, st.hidden,
      long(spec.latent), vae_path.string().c_str(), long(nt), long(nv), st.epochs, st.batch, st.lr, st.adversarial,
      long(n), st.critic_hidden, st.critic_hidden, st.critic_lr, st.gp, (unsigned long long)st.seed, cpu::threads());
  {
    const Validation v0 = validate(enc, vae, op, fv, xv, yv);
    std::printf("epoch   0: validation mse %.5f, start magnitude error %.5f\n", v0.mse, v0.magnitude);
    std::fflush(stdout);
  }

  const bool adv = st.adversarial > 0;
  WganCritic<T> critic(n, st.critic_hidden, st.seed + 2);
  AdamTrainer<T> adam({.learning_rate = T(st.lr)});
  AdamTrainer<T> adam_critic({.learning_rate = T(st.critic_lr), .beta1 = T(0.5), .beta2 = T(0.9)});
  auto params = enc.parameters();
  auto cparams = critic.parameters();
  Rng rng(st.seed + 3);
  std::vector<Eigen::Index> order{};
  order.resize(std::size_t(nt));
  std::iota(order.begin(), order.end(), 0);
  const long per_epoch = long((nt + st.batch - 1) / st.batch);
  const int log_every = st.log_every > 0 ? st.log_every : int(per_epoch);
  Mat<T> xb, fb, fake;
  Vec<T> t(st.batch);
  double best = std::numeric_limits<double>::infinity();
  int best_epoch = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  for (int epoch = 1; epoch <= st.epochs; ++epoch) {
    rng.shuffle(order);
    double sum_mse = 0, sum_adv = 0, sum_wd = 0, sum_gp = 0;
    for (long b = 0; b < per_epoch; ++b) {
      if (stop_requested()) {
        std::printf("interrupted in epoch %d: %s holds epoch %d (the best validation so far)\n", epoch, st.out.c_str(),
                    best_epoch);
        return 130;
      }
      const Eigen::Index j0 = b * st.batch, nb = std::min<Eigen::Index>(st.batch, nt - j0);
      xb.resize(n, nb);
      fb.resize(feats.rows(), nb);
      for (Eigen::Index j = 0; j < nb; ++j) {
        xb.col(j) = data.images.col(order[std::size_t(j0 + j)]);
        fb.col(j) = feats.col(order[std::size_t(j0 + j)]);
      }
      enc.zero_grad();
      const auto l = li_encoder_loss(enc, vae.decoder(), adv ? &critic : nullptr, fb, xb, T(st.adversarial), true,
                                     adv ? &fake : nullptr);
      adam.step(params);
      sum_mse += double(l.mse) * double(nb);
      if (adv) {  // one critic step on the same batch (the encoder's images, before its step)
        t.resize(nb);
        for (Eigen::Index j = 0; j < nb; ++j) t(j) = T(rng.uniform());
        critic.zero_grad();
        const auto c = critic.loss(xb, fake, t, T(st.gp), true);
        adam_critic.step(cparams);
        sum_adv += double(l.adversarial) * double(nb);
        sum_wd += double(c.wasserstein) * double(nb);
        sum_gp += double(c.penalty) * double(nb);
      }
      if ((b + 1) % log_every == 0 && b + 1 < per_epoch) {
        std::printf("epoch %3d batch %5ld/%ld mse %.5f  %.0f s\n", epoch, b + 1, per_epoch, double(l.mse), elapsed());
        std::fflush(stdout);
      }
    }
    const Validation v = validate(enc, vae, op, fv, xv, yv);
    const bool improved = v.mse < best;
    if (improved) {
      best = v.mse;
      best_epoch = epoch;
      save_li_encoder(st.out, enc);
    }
    std::printf("epoch %3d/%d: train mse %.5f%s, validation mse %.5f, start magnitude error %.5f%s  %.0f s\n", epoch,
                st.epochs, sum_mse / double(nt),
                adv ? (", adversarial -D(G(E(y))) " + std::to_string(sum_adv / double(nt)) + ", critic W " +
                       std::to_string(-sum_wd / double(nt)) + " gp " + std::to_string(sum_gp / double(nt)))
                          .c_str()
                    : "",
                v.mse, v.magnitude, improved ? " (saved)" : "", elapsed());
    std::fflush(stdout);
  }
  std::printf("wrote %s: epoch %d of %d (best validation mse %.5f) in %.0f s\n", st.out.c_str(), best_epoch, st.epochs,
              best, elapsed());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings st;
  CLI::App app{
      "prilo-train-li: train the learned initialisation (an encoder from magnitudes to the VAE's latent, through the "
      "frozen decoder: image MSE + WGAN-GP adversarial term; the paper's LPIPS term is left out)"};
  app.add_option("--dataset", st.dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--operator", st.op, "fourier (28x28 DFT), gaussian-real, gaussian-complex")
      ->check(CLI::IsMember({"fourier", "gaussian-real", "gaussian-complex"}));
  app.add_option("--measurements", st.measurements, "m, the number of Gaussian measurements")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", st.seed,
                 "Seed: the Gaussian operator is drawn with seed + 7, as prilo-reconstruct --seed does (train with the "
                 "--seed you reconstruct with); also the initialisation and shuffling");
  app.add_option("--epochs", st.epochs, "Epochs")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", st.batch, "Mini-batch size")->check(CLI::PositiveNumber);
  app.add_option("--lr", st.lr, "Adam learning rate of the encoder")->check(CLI::PositiveNumber);
  app.add_option("--adversarial-weight", st.adversarial,
                 "Weight of the WGAN-GP adversarial term (default 0.01; 0: image MSE only, no critic; the paper used "
                 "0.1 with its own MSE scale, which diverged here: docs/li.md)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--critic-lr", st.critic_lr, "Adam learning rate of the critic (betas 0.5, 0.9)")
      ->check(CLI::PositiveNumber);
  app.add_option("--gradient-penalty", st.gp, "Gradient-penalty weight lambda of the critic")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--critic-hidden", st.critic_hidden, "Hidden units of the critic's two LeakyReLU(0.2) layers")
      ->check(CLI::PositiveNumber);
  app.add_option("--hidden", st.hidden, "Hidden units of the encoder's two ReLU layers")->check(CLI::PositiveNumber);
  app.add_option("--transform", st.transform,
                 "Input map before standardisation: identity or log1p (of the half spectrum / magnitudes)")
      ->check(CLI::IsMember({"identity", "log1p"}));
  app.add_option("--validation", st.validation,
                 "Held-out images at the end of the training split for the validation loss (never test images)")
      ->check(CLI::PositiveNumber);
  app.add_option("--train-limit", st.limit, "Use only the first N training images (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--generator", st.generator,
                 "The VAE whose frozen decoder the encoder is trained through: mlp, conv or style (picks the default "
                 "--weights and --output)")
      ->check(CLI::IsMember({"mlp", "conv", "style"}));
  app.add_option("--weights", st.weights,
                 "VAE weights whose decoder is the generator (default models/vae-<dataset>.prw, "
                 "models/<generator>vae-<dataset>.prw with --generator conv or style)");
  app.add_option("--data-dir", st.data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)");
  app.add_option("--output,-o", st.out,
                 "Output weights file (default models/li-<dataset>-<operator>.prw, "
                 "models/li-<dataset>-<operator>-<generator>.prw with --generator conv or style)");
  app.add_option("--threads", st.threads, "Threads (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--log-every", st.log_every, "Print progress every N batches (0: once per epoch)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  if (st.out.empty()) st.out = io::li_encoder_file(st.dataset, st.op, st.generator);
  cpu::retain_freed_memory();  // per-call temporaries reuse freed pages (no fault per page)
  if (st.threads > 0) cpu::set_threads(st.threads);
  try {
    check_output_path(st.out, "--output");  // before any training: a bad path must not cost the run
    install_interrupt_handler();            // SIGINT: stop at the next batch; the best epoch's file stays
    LiSpec spec{.height = 28,
                .width = 28,
                .measurements = st.measurements,
                .operator_seed = st.seed + 7,
                .transform = st.transform == "log1p" ? LiTransform::log1p : LiTransform::identity,
                .hidden = st.hidden};
    const fs::path vae_path = io::prior_files(st.dataset, st.generator, st.weights, "", PRILO_SOURCE_DIR).weights;
    return std::visit(
        [&](const auto& vae) {
          if (st.op == "fourier") {
            spec.op = LiOperator::fourier;
            spec.measurements = 0;
            spec.operator_seed = 0;
            return train(st, Fourier2d<T>(28, 28), spec, vae, vae_path);
          }
          if (st.op == "gaussian-real") {
            spec.op = LiOperator::gaussian_real;
            return train(st, GaussianReal<T>(st.measurements, 28 * 28, st.seed + 7), spec, vae, vae_path);
          }
          spec.op = LiOperator::gaussian_complex;
          return train(st, GaussianComplex<T>(st.measurements, 28 * 28, st.seed + 7), spec, vae, vae_path);
        },
        io::load_any_vae<T>(vae_path));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-train-li: error: %s\n", e.what());
    return 1;
  }
}

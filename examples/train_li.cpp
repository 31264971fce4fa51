// prilo-train-li: trains the learned initialisation (LI, the paper's Section 2.2 and Eq. 9): an
// encoder from magnitudes y = |A x| to the VAE's latent z0, through the frozen decoder G, with
// the image MSE and (with --adversarial-weight > 0) the WGAN-GP adversarial term of a critic on
// images. The paper's LPIPS term is left out (it needs a pretrained network). A held-out part of
// the training split gives the validation loss; the weights of the best validation epoch are
// written (by name, prilo's weights format) for prilo-reconstruct's -li methods.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <prilo/backend/cpu.hpp>
#include <prilo/diagnostics.hpp>
#include <prilo/fft/fftw.hpp>
#include <prilo/init/li.hpp>
#include <prilo/init/li_training.hpp>
#include <prilo/interrupt.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/operators.hpp>
#include <prilo/report.hpp>

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif

#include "cli_checks.hpp"

using namespace prilo;
using T = float;
namespace fs = std::filesystem;

namespace {

struct Settings {
  std::string dataset = "mnist", op = "fourier", transform = "identity", generator = "mlp", out, weights,
              data_dir = io::default_data_dir(), record;
  int measurements = 200, epochs = 20, batch = 128, threads = 0, hidden = 500, critic_hidden = 256, log_every = 0;
  long limit = 0, validation = 2000;
  std::uint64_t seed = 0;
  double lr = 1e-3, critic_lr = 1e-4, adversarial = 0.01, gp = 10;
};

template <class Op, class V>
int train(const Settings& st, const Op& op, LiSpec spec, const V& vae, const fs::path& vae_path,
          const io::Dataset<T>& data) {
  spec.decoder = *li_decoder_of<V>();
  if (li_decoder_name(spec.decoder) != "vae-" + st.generator)
    throw invalid_input("--generator " + st.generator + ": the weights " + vae_path.string() + " are a " +
                        li_decoder_name(spec.decoder) + ", not a vae-" + st.generator);
  const Eigen::Index N = data.images.cols(), n = data.images.rows();
  if (vae.data_dim() != n)
    throw invalid_input("weights " + vae_path.string() + " are for images of " + std::to_string(vae.data_dim()) +
                        " pixels, the data has " + std::to_string(n));
  if (Eigen::Index(st.validation) >= N - 1)  // train_li_encoder checks it too, without the option's name
    throw invalid_input("--validation " + std::to_string(st.validation) + ": needs fewer than the " +
                        std::to_string(N) + " training images");
  spec.latent = vae.latent_dim();
  LiEncoder<T> enc(spec, st.seed + 1);
  const LiTrainingOptions o{.epochs = st.epochs,
                            .batch = st.batch,
                            .learning_rate = st.lr,
                            .adversarial_weight = st.adversarial,
                            .critic_hidden = st.critic_hidden,
                            .critic_learning_rate = st.critic_lr,
                            .gradient_penalty = st.gp,
                            .validation = st.validation,
                            .seed = st.seed,
                            .output = st.out};
  const Eigen::Index nv = st.validation, nt = N - nv;
  const bool adv = st.adversarial > 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  LiTrainingCallbacks cb;
  cb.start = [&](const LiValidation& v0) {
    char text[160] = " (no critic)";
    if (adv)
      std::snprintf(text, sizeof text, " (critic %ld-%d-%d-1, lr %g, gradient penalty %g)", long(n), st.critic_hidden,
                    st.critic_hidden, st.critic_lr, st.gp);
    const std::string critic = text;
    std::printf(
        "prilo-train-li: %s, operator %s%s, input %s half spectrum/magnitudes (%ld), encoder %ld-%d-%d-%ld, decoder "
        "%s (frozen)\n  %ld training and %ld held-out training images, %d epochs, batch %d, lr %g, adversarial "
        "weight %g%s, seed %llu, %d threads\n",
        st.dataset.c_str(), st.op.c_str(),
        spec.op == LiOperator::fourier ? "" : (" m=" + std::to_string(spec.measurements)).c_str(),
        li_transform_name(spec.transform), long(enc.input_size()), long(enc.input_size()), st.hidden, st.hidden,
        long(spec.latent), vae_path.string().c_str(), long(nt), long(nv), st.epochs, st.batch, st.lr, st.adversarial,
        critic.c_str(), (unsigned long long)st.seed, cpu::threads());
    std::printf("epoch   0: validation mse %.5f, start magnitude error %.5f\n", v0.mse, v0.magnitude);
    std::fflush(stdout);
  };
  cb.batch = [&](const LiBatchReport& r) {
    const long log_every = st.log_every > 0 ? st.log_every : r.batches;
    if (r.batch % log_every == 0 && r.batch < r.batches) {
      std::printf("epoch %3d batch %5ld/%ld mse %.5f  %.0f s\n", r.epoch, r.batch, r.batches, r.mse, elapsed());
      std::fflush(stdout);
    }
  };
  cb.epoch = [&](const LiEpochReport& r) {
    std::printf("epoch %3d/%d: train mse %.5f%s, validation mse %.5f, start magnitude error %.5f%s  %.0f s\n", r.epoch,
                st.epochs, r.mse,
                adv ? (", adversarial -D(G(E(y))) " + std::to_string(r.adversarial) + ", critic W " +
                       std::to_string(r.critic_wasserstein) + " gp " + std::to_string(r.critic_penalty))
                          .c_str()
                    : "",
                r.validation.mse, r.validation.magnitude, r.improved ? " (saved)" : "", elapsed());
    std::fflush(stdout);
  };
  const LiTrainingResult res = train_li_encoder(enc, vae, op, data.images, o, cb);
  if (res.interrupted) {
    std::printf("interrupted in epoch %d: %s holds epoch %d (the best validation so far)\n", res.stopped_in,
                st.out.c_str(), res.best_epoch);
    return 130;
  }
  std::printf("wrote %s: epoch %d of %d (best validation mse %.5f) in %.0f s\n", st.out.c_str(), res.best_epoch,
              st.epochs, res.best.mse, elapsed());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings st;
  CLI::App app{
      "prilo-train-li: train the learned initialisation (an encoder from magnitudes to the VAE's latent, through the "
      "frozen decoder: image MSE + WGAN-GP adversarial term; the paper's LPIPS term is left out)"};
  app.option_defaults()->always_capture_default();  // --help shows what a bare run does
  app.add_option("--dataset", st.dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--operator", st.op, "fourier (28x28 DFT), gaussian-real, gaussian-complex")
      ->check(CLI::IsMember({"fourier", "gaussian-real", "gaussian-complex"}));
  app.add_option("--measurements", st.measurements, "m, the number of Gaussian measurements")
      ->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--seed", st.seed,
                 "Seed: the Gaussian operator is drawn with seed + 7, as prilo-reconstruct --seed does (train with the "
                 "--seed you reconstruct with); also the initialisation and shuffling")
      ->check(prilo_cli::seed());
  app.add_option("--epochs", st.epochs, "Epochs")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--batch-size", st.batch, "Mini-batch size")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--lr", st.lr, "Adam learning rate of the encoder")->check(prilo_cli::finite_positive<T>());
  app.add_option("--adversarial-weight", st.adversarial,
                 "Weight of the WGAN-GP adversarial term (default 0.01; 0: image MSE only, no critic; the paper used "
                 "0.1 with its own MSE scale, which diverged here: docs/li.md)")
      ->check(prilo_cli::finite_nonnegative<T>());
  app.add_option("--critic-lr", st.critic_lr, "Adam learning rate of the critic (betas 0.5, 0.9)")
      ->check(prilo_cli::finite_positive<T>());
  app.add_option("--gradient-penalty", st.gp, "Gradient-penalty weight lambda of the critic")
      ->check(prilo_cli::finite_nonnegative<T>());
  app.add_option("--critic-hidden", st.critic_hidden, "Hidden units of the critic's two LeakyReLU(0.2) layers")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--hidden", st.hidden, "Hidden units of the encoder's two ReLU layers")->check(CLI::Range(1, 1 << 16));
  app.add_option("--transform", st.transform,
                 "Input map before standardisation: identity or log1p (of the half spectrum / magnitudes)")
      ->check(CLI::IsMember({"identity", "log1p"}));
  app.add_option("--validation", st.validation,
                 "Held-out images at the end of the training split for the validation loss (never test images)")
      ->check(prilo_cli::integer_at_least<long>(1));
  app.add_option("--train-limit", st.limit, "Use only the first N training images (0: all)")
      ->check(prilo_cli::integer_at_least<long>(0));
  app.add_option("--generator", st.generator,
                 "The VAE whose frozen decoder the encoder is trained through: mlp, conv or style (picks the default "
                 "--weights and --output)")
      ->check(CLI::IsMember({"mlp", "conv", "style"}));
  app.add_option("--weights", st.weights,
                 "VAE weights whose decoder is the generator (default models/vae-<dataset>.prw, "
                 "models/<generator>vae-<dataset>.prw with --generator conv or style)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--data-dir", st.data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--output,-o", st.out,
                 "Output weights file (default models/li-<dataset>-<operator>.prw, "
                 "models/li-<dataset>-<operator>-<generator>.prw with --generator conv or style)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--threads", st.threads, "Threads (0: all)")->check(CLI::Range(0, cpu::max_threads));
  app.add_option("--log-every", st.log_every, "Print progress every N batches (0: once per epoch)")
      ->check(prilo_cli::integer_at_least<int>(0));
  auto* record = app.add_option("--record-decoder", st.record,
                                "Instead of training: record in this existing encoder file the image its decoder "
                                "(--weights, or --dataset and --generator's default) makes of a fixed probe latent, "
                                "so that prilo-reconstruct refuses the encoder with another VAE's weights (encoders "
                                "trained by earlier versions have none; new ones record it as they train)")
                     ->check(prilo_cli::non_empty_path());
  for (const char* training_only :
       {"--operator", "--measurements", "--seed", "--epochs", "--batch-size", "--lr", "--adversarial-weight",
        "--critic-lr", "--gradient-penalty", "--critic-hidden", "--hidden", "--transform", "--validation",
        "--train-limit", "--data-dir", "--output", "--threads", "--log-every"})
    record->excludes(app.get_option(training_only));
  CLI11_PARSE(app, argc, argv);
  if (!st.record.empty()) {
    try {
      const fs::path vae_path = io::prior_files(st.dataset, st.generator, st.weights, "", PRILO_SOURCE_DIR).weights;
      LiEncoder<T> enc = load_li_encoder<T>(st.record);
      const bool had = enc.decoder_probe().size() != 0;
      std::visit(
          [&](const auto& vae) {
            // an encoder that records other weights already is refused, never rewritten
            enc.check_decoder(vae, st.record + " (--record-decoder)");
            if (!had) enc.set_decoder(vae);
          },
          io::load_any_vae<T>(vae_path));
      // one that records these weights already is left as it is (another build's products
      // would round the probe image differently in its last bits)
      if (!had) save_li_encoder(st.record, enc);
      std::printf("prilo-train-li: %s records the decoder of %s%s\n", st.record.c_str(), vae_path.string().c_str(),
                  had ? " already (unchanged)" : "");
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "prilo-train-li: error: %s\n", e.what());
      return 1;
    }
  }
  if (app.count("--output") == 0) st.out = io::li_encoder_file(st.dataset, st.op, st.generator);
  // the critic's options with no critic to train: an error, not ignored
  if (!(st.adversarial > 0))
    for (const char* opt : {"--critic-lr", "--gradient-penalty", "--critic-hidden"})
      if (app.count(opt)) {
        std::fprintf(stderr, "prilo-train-li: error: %s: sets the critic, and --adversarial-weight %g trains none\n",
                     opt, st.adversarial);
        return 1;
      }
  cpu::retain_freed_memory();  // per-call temporaries reuse freed pages (no fault per page)
  // FFTW plans chosen by timing (measure, patient) differ from run to run in their rounding, and
  // so would the encoder; estimate's plans do not ($PRILO_FFTW_EFFORT still chooses). The FFTs
  // here are the training set's measurements, once, and the validation's: speed is not at stake.
  fftw::set_default_planner_effort(fftw::Effort::estimate);
  if (st.threads > 0) cpu::set_threads(st.threads);
  try {
    check_output_path(st.out, "--output");  // before any training: a bad path must not cost the run
    install_interrupt_handler();            // SIGINT: stop at the next batch; the best epoch's file stays
    const fs::path vae_path = io::prior_files(st.dataset, st.generator, st.weights, "", PRILO_SOURCE_DIR).weights;
    check_distinct_outputs(
        {{"--output", st.out}},
        with_files({{"--weights", vae_path.string()}}, io::dataset_files(st.data_dir, st.dataset), "data set's"));
    if (st.op == "fourier" && app.count("--measurements"))  // (as prilo-reconstruct)
      throw invalid_input(
          "--measurements: the DFT (--operator fourier) has as many measurements as pixels; "
          "--measurements sets the Gaussian operators' m");
    // the images' sides from the data (load_dataset checks them against the data set's)
    prilo_cli::check_train_limit(st.limit, st.data_dir, st.dataset);
    const auto data =
        io::load_dataset<T>(st.data_dir, st.dataset, "train", 0, st.limit > 0 ? std::size_t(st.limit) : io::idx_all);
    const int h = int(data.rows), w = int(data.cols);
    LiSpec spec{.height = h,
                .width = w,
                .measurements = st.measurements,
                .operator_seed = st.seed + 7,
                .transform = st.transform == "log1p" ? LiTransform::log1p : LiTransform::identity,
                .hidden = st.hidden};
    return std::visit(
        [&](const auto& vae) {
          if (st.op == "fourier") {
            spec.op = LiOperator::fourier;
            spec.measurements = 0;
            spec.operator_seed = 0;
            return train(st, Fourier2d<T>(h, w), spec, vae, vae_path, data);
          }
          if (st.op == "gaussian-real") {
            spec.op = LiOperator::gaussian_real;
            return train(st, GaussianReal<T>(st.measurements, h * w, st.seed + 7), spec, vae, vae_path, data);
          }
          spec.op = LiOperator::gaussian_complex;
          return train(st, GaussianComplex<T>(st.measurements, h * w, st.seed + 7), spec, vae, vae_path, data);
        },
        io::load_any_vae<T>(vae_path));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-train-li: error: %s\n",
                 error_text(e, "--train-limit, --batch-size, --hidden, --critic-hidden, --measurements").c_str());
    return 1;
  }
}

// prilo-train-vae: trains the paper's VAE (appendix A), the convolutional VAE of issue 12
// (--arch conv) or its style VAE (--arch style: z0 fed into every decoder layer), on MNIST or Fashion-MNIST with the
// library's own layers, backprop and Adam, and writes the weights file the solvers load.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <prilo/backend/cpu.hpp>
#include <prilo/diagnostics.hpp>
#include <prilo/interrupt.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/nn/vae_training.hpp>
#include <prilo/report.hpp>
#include <variant>

#include "cli_checks.hpp"

using namespace prilo;
using T = float;

namespace {

struct Options {
  std::string out;
  int epochs = 0, batch = 0, log_every = 0;
  std::uint64_t seed = 0;
  double lr = 0;
  bool resume = false;
};

/// Trains `vae` with nn::train_vae, printing its progress; writes o.out and o.out.ckpt after
/// every epoch. Returns the exit status (130 when interrupted).
template <class Model>
int train_model(Model& vae, const Options& o, const io::Dataset<T>& train, const io::Dataset<T>& test) {
  const std::string ckpt = o.out + ".ckpt";
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  nn::VaeTrainingCallbacks cb;
  cb.resumed = [&](int epoch) { std::printf("resumed from %s after epoch %d\n", ckpt.c_str(), epoch); };
  double images_run = 0;  // images trained on by this process (a short last batch counts its own)
  cb.batch = [&](const nn::VaeBatchReport& r) {
    images_run += double(r.images);
    if (r.batch % o.log_every != 0 && r.batch != r.batches) return;
    const double el = elapsed(), run = double(r.done - r.done_before);
    std::printf("epoch %3d/%d batch %4ld/%ld loss %8.3f (bce %7.3f kl %6.3f) %7.0f img/s  elapsed %5.0fs left %5.0fs\n",
                r.epoch, r.epochs, r.batch, r.batches, r.loss, r.bce, r.kl, images_run / el, el,
                el / run * double(r.total - r.done));
    std::fflush(stdout);
  };
  cb.epoch = [&](const nn::VaeEpochReport& r) {
    std::printf("epoch %3d done: train loss %.3f, test loss (negative ELBO, one sample) %.3f\n", r.epoch, r.train_loss,
                r.test_loss);
    std::fflush(stdout);
  };
  const nn::VaeTrainingResult res = nn::train_vae(vae, train.images, test.images,
                                                  {.epochs = o.epochs,
                                                   .batch = o.batch,
                                                   .learning_rate = o.lr,
                                                   .seed = o.seed,
                                                   .weights = o.out,
                                                   .checkpoint = ckpt,
                                                   .resume = o.resume},
                                                  cb);
  if (res.interrupted) {
    std::printf("interrupted in epoch %d: %s holds epoch %d; continue with --resume\n", res.stopped_in, ckpt.c_str(),
                res.epochs_done);
    return 130;
  }
  std::printf("wrote %s: %d epochs in %.0f s, final test loss %.3f\n", o.out.c_str(), o.epochs, elapsed(),
              res.test_loss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Train the paper's VAE (784-500-500-100, Bernoulli likelihood, Adam 1e-3), or a convolutional VAE with a "
      "DCGAN-like decoder (--arch conv), or with a decoder that feeds z0 into every layer (--arch style), with prilo"};
  app.option_defaults()->always_capture_default();  // --help shows what a bare run does
  std::string dataset = "mnist", out, data_dir = io::default_data_dir(), arch = "mlp";
  int epochs = 100, batch = 100, threads = 0, log_every = 100;
  std::uint64_t seed = 1;
  double lr = 1e-3;
  long limit = 0;
  app.add_option(
         "--arch", arch,
         "mlp: the paper's 784-500-500-100 VAE; conv: encoder Conv(1-32-64, k4 s2) + dense, decoder dense "
         "100-64x7x7 + ConvTranspose(64-32-1, k4 s2); style: the conv encoder, decoder [z0; z0] → dense 100-64x7x7 → "
         "ConvTranspose(64-32-1, k4 s2), each followed by a per-channel modulation by z0")
      ->check(CLI::IsMember({"mlp", "conv", "style"}));
  app.add_option("--dataset", dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--epochs", epochs, "Epochs")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--batch-size", batch, "Mini-batch size")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--lr", lr, "Adam learning rate")->check(prilo_cli::finite_positive<T>());
  app.add_option("--seed", seed, "Seed for initialisation, shuffling and noise")->check(prilo_cli::seed());
  app.add_option("--output,-o", out,
                 "Output weights file (default models/vae-<dataset>.prw, conv: models/convvae-<dataset>.prw, style: "
                 "models/stylevae-<dataset>.prw)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--data-dir", data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--threads", threads, "Threads (0: all)")->check(CLI::Range(0, cpu::max_threads));
  app.add_option("--train-limit", limit, "Use only the first N training images (0: all)")
      ->check(prilo_cli::integer_at_least<long>(0));
  app.add_option("--log-every", log_every, "Print progress every N batches")
      ->check(prilo_cli::integer_at_least<int>(1));
  bool resume = false;
  app.add_flag("--resume", resume,
               "Continue from <output>.ckpt, the checkpoint written after every epoch, with the run's own data "
               "(--dataset, --train-limit), --batch-size, --lr and --seed: the checkpoint keeps them, and others are "
               "refused");
  std::string evaluate;
  auto* evaluate_opt =
      app.add_option("--evaluate", evaluate,
                     "Only print the test-set loss of an existing weights file (same protocol as training)")
          ->check(prilo_cli::non_empty_path());
  // the training options mean nothing to --evaluate: given with it, they are an error, not ignored
  for (const char* name :
       {"--arch", "--epochs", "--batch-size", "--lr", "--output", "--train-limit", "--log-every", "--resume"})
    evaluate_opt->excludes(app.get_option(name));
  CLI11_PARSE(app, argc, argv);
  if (evaluate_opt->count() > 0) {  // (an empty value is refused by its validator)
    try {
      if (threads > 0) cpu::set_threads(threads);
      const io::AnyVae<T> model = io::load_any_vae<T>(evaluate);  // the file says which VAE it holds
      auto test = io::load_dataset<T>(data_dir, dataset, "test");
      // its own architecture, against the images it is scored on
      io::check_vae_fits(model, evaluate, io::generator_name(model), Eigen::Index(test.rows), Eigen::Index(test.cols));
      const double nelbo =
          std::visit([&](const auto& vae) { return nn::mean_negative_elbo(vae, test.images, seed + 2); }, model);
      std::printf("%s on %s test: negative ELBO (one sample, noise seed %llu) %.3f\n", evaluate.c_str(),
                  dataset.c_str(), (unsigned long long)(seed + 2), nelbo);
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "prilo-train-vae: error: %s\n", error_text(e, "--train-limit, --batch-size").c_str());
      return 1;
    }
  }
  if (app.count("--output") == 0)
    out = (arch == "conv"    ? "models/convvae-"
           : arch == "style" ? "models/stylevae-"
                             : "models/vae-") +
          dataset + ".prw";
  cpu::retain_freed_memory();  // per-call temporaries reuse freed pages (no fault per page)

  try {
    if (threads > 0) cpu::set_threads(threads);
    check_output_path(out, "--output");  // before any training: a bad path must not cost the run
    check_distinct_outputs({{"--output", out}, {"--output's checkpoint", out + ".ckpt"}},
                           with_files({}, io::dataset_files(data_dir, dataset), "data set's"));
    install_interrupt_handler();  // SIGINT: stop at the next batch; the last epoch's checkpoint stays
    prilo_cli::check_train_limit(limit, data_dir, dataset);
    auto train = io::load_dataset<T>(data_dir, dataset, "train", 0, limit > 0 ? std::size_t(limit) : io::idx_all);
    auto test = io::load_dataset<T>(data_dir, dataset, "test");
    const Eigen::Index n = train.images.cols(), d = train.images.rows();
    std::printf(
        "prilo-train-vae: %s VAE, %s, %ld training and %ld test images of %zux%zu, %d epochs, batch %d, lr %g, seed "
        "%llu, %d "
        "threads\n",
        arch.c_str(), dataset.c_str(), long(n), long(test.images.cols()), train.rows, train.cols, epochs, batch, lr,
        (unsigned long long)seed, cpu::threads());
    const Options o{out, epochs, batch, log_every, seed, lr, resume};
    if (arch == "conv" || arch == "style") {
      if (train.rows % 4 != 0 || train.cols % 4 != 0)
        throw invalid_input("--arch " + arch + " needs image sides that are multiples of 4, got " +
                            std::to_string(train.rows) + "x" + std::to_string(train.cols));
      const nn::ConvVaeSizes sizes{.image = {1, Eigen::Index(train.rows), Eigen::Index(train.cols)}, .latent = 100};
      if (arch == "style") {
        nn::StyleVae<T> vae(sizes, seed);
        return train_model(vae, o, train, test);
      }
      nn::ConvVae<T> vae(sizes, seed);
      return train_model(vae, o, train, test);
    }
    nn::Vae<T> vae(d, 500, 100, seed);
    return train_model(vae, o, train, test);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-train-vae: error: %s\n", error_text(e, "--train-limit, --batch-size").c_str());
    return 1;
  }
  return 0;
}

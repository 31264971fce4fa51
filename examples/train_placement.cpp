// prilo-train-placement: trains the learned placement scorer of -resolve (PlacementScorer):
// a network that ranks an image above its own circular shifts and point reflections, which
// non-oversampled Fourier magnitudes cannot tell apart. Its positives are training images as
// the generator draws them (G(μ(x)), the decoded posterior mean of the VAE's encoder, the
// kind of image a reconstruction is) or the images themselves; a held-out part of the training
// split gives the validation top-1 (among all 2·h·w transforms) of every epoch, and the best
// epoch's weights are written for prilo-reconstruct (config "resolve": {"scorer_weight"}).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <prilo/backend/cpu.hpp>
#include <prilo/diagnostics.hpp>
#include <prilo/fft/fftw.hpp>
#include <prilo/interrupt.hpp>
#include <prilo/io/config.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/methods.hpp>
#include <prilo/report.hpp>
#include <prilo/solvers/placement_scorer.hpp>

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif

#include "cli_checks.hpp"

using namespace prilo;
using T = float;
namespace fs = std::filesystem;

namespace {

struct Settings {
  std::string dataset = "fashion-mnist", generator = "style", positives = "decoded", out, weights,
              data_dir = io::default_data_dir(), method = "prilo-chain-li-avg", config, li_weights;
  long reconstructed = 0;
  int restarts = 4;
  int epochs = 4, batch = 32, threads = 0, hidden = 256, radius = 3, far = 14;
  long limit = 0, validation = 2000, validation_top1 = 500;
  std::uint64_t seed = 0;
  double lr = 1e-3, noise = 0;
};

/// The VAE's decoded posterior means G(μ(x)) of the columns of x.
template <class V>
Mat<T> decoded(const V& vae, const Mat<T>& x) {
  Mat<T> out(x.rows(), x.cols());
  for (Eigen::Index j = 0; j < x.cols(); j += 1000) {
    const Eigen::Index nb = std::min<Eigen::Index>(1000, x.cols() - j);
    out.middleCols(j, nb) = vae.decoder()(vae.encode(Mat<T>(x.middleCols(j, nb))).first);
  }
  return out;
}

/// `method`'s Fourier reconstructions of the columns of x (prilo::reconstruct, the library's
/// pipeline), each moved by the shift or reflection that brings it closest to its own image:
/// positives with a reconstruction's errors, placed as the training images are (the truth of
/// training images is the label here, as the images are for G(mu(x))).
template <class V>
Mat<T> reconstructed(const Settings& st, const V& vae, const Mat<T>& x, int h, int w) {
  const io::PriorFiles files = io::prior_files(st.dataset, st.generator, st.weights, st.config, PRILO_SOURCE_DIR);
  const auto cfg = io::load_reconstruction_config<T>(files.config);
  const MethodSpec m = parse_method(st.method);
  MethodOptions<T> opt{.restart = {.restarts = st.restarts}, .seed = st.seed};
  std::optional<LiEncoder<T>> li;
  if (m.start == LatentStart::li) {
    li = load_li_encoder<T>(
        io::locate_file(st.li_weights, io::li_encoder_file(st.dataset, "fourier", st.generator), PRILO_SOURCE_DIR));
    opt.li = &*li;
  }
  const Fourier2d<T> F(h, w);
  const auto t0 = std::chrono::steady_clock::now();
  const auto res = reconstruct(std::vector<MethodSpec>{m}, vae, F, measure(F, x), cfg, opt);
  Mat<T> out(x.rows(), x.cols());
  double plain = 0, placed = 0;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const auto a = metrics::align_to_reference(res[0].best.x.col(j), x.col(j), h, w);
    out.col(j) = a.aligned;
    // capped at 100 dB, as the reports do (an exact recovery's PSNR is infinite)
    plain += std::min(100.0, metrics::psnr(res[0].best.x.col(j), x.col(j))) / double(x.cols());
    placed += std::min(100.0, a.psnr) / double(x.cols());
  }
  std::printf(
      "  positives: %s of training images 0..%ld (%s, %d restarts): PSNR %.2f dB, %.2f placed as the truth, "
      "%.0f s\n",
      st.method.c_str(), long(x.cols() - 1), files.config.string().c_str(), st.restarts, plain, placed,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::fflush(stdout);
  return out;
}

template <class V>
int train(const Settings& st, const V& vae, const fs::path& vae_path) {
  prilo_cli::check_train_limit(st.limit, st.data_dir, st.dataset);
  const auto data =
      io::load_dataset<T>(st.data_dir, st.dataset, "train", 0, st.limit > 0 ? std::size_t(st.limit) : io::idx_all);
  const Eigen::Index N = data.images.cols(), n = data.images.rows();
  const int h = int(data.rows), w = int(data.cols);
  io::check_vae_fits(vae, vae_path, st.generator, h, w);
  check_placement_radius(st.radius, h, w);  // before the decoding: a bad radius must not cost it
  if (Eigen::Index(st.validation) >= N - 1)
    throw invalid_input("--validation " + std::to_string(st.validation) + ": needs fewer than the " +
                        std::to_string(N) + " training images");
  if (st.reconstructed > N - st.validation)
    throw invalid_input("--reconstructed " + std::to_string(st.reconstructed) + ": more than the " +
                        std::to_string(N - st.validation) + " training images outside the validation part");
  if (st.reconstructed > 0) {  // the method and its config before any work (the decoding alone takes seconds)
    MethodSpec m;
    try {
      m = parse_method(st.method);  // one method (a list is not)
    } catch (const invalid_input& e) {
      throw invalid_input(std::string("--method: ") + e.what());
    }
    const io::PriorFiles files = io::prior_files(st.dataset, st.generator, st.weights, st.config, PRILO_SOURCE_DIR);
    const auto cfg = io::load_reconstruction_config<T>(files.config);
    try {
      check_method<Fourier2d<T>>(m, cfg);
      check_stages(m, cfg, vae);
      // this program trains the scorer: its runs have none to weigh
      if (m.resolve && cfg.resolve.scorer_weight > 0)
        throw invalid_input("resolve.scorer_weight is " + prilo_cli::detail::number_text(cfg.resolve.scorer_weight) +
                            ", and --reconstructed's runs have no placement scorer (this program trains one): "
                            "set it to 0 for them");
    } catch (const invalid_input& e) {
      throw invalid_input("the config " + files.config.string() + ": " + e.what());
    }
    if (!st.li_weights.empty() && m.start != LatentStart::li)
      throw invalid_input("--li-weights: read by the -li methods only, and --method is " + st.method);
  }

  const Eigen::Index nv = st.validation, nt = N - nv;  // held out: the last nv images of the split
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  // positives: per training image its decoded posterior mean, itself, or both (two positives);
  // validation: the first kind's of the held-out images
  Mat<T> dec;  // G(mu(x)), unless the images are the only positives
  if (st.positives != "images") dec = decoded(vae, data.images);
  const Mat<T>& first = st.positives == "images" ? data.images : dec;
  const Eigen::Index per = st.positives == "both" ? 2 : 1;  // positives per image
  const Mat<T> val = first.middleCols(nt, std::min<Eigen::Index>(nv, st.validation_top1));
  // and, with --reconstructed R, the reconstructions of training images 0 … R − 1: each drawn as
  // often as an image of the other kinds, once per epoch
  const Eigen::Index R = st.reconstructed;
  Mat<T> pos(n, per * nt + R);
  pos.leftCols(nt) = first.leftCols(nt);
  if (per == 2) pos.middleCols(nt, nt) = data.images.leftCols(nt);
  if (R > 0) pos.rightCols(R) = reconstructed(st, vae, Mat<T>(data.images.leftCols(R)), h, w);

  PlacementScorer<T> scorer({.height = h, .width = w, .hidden = st.hidden}, st.seed + 1);
  const PlacementTrainingOptions o{.epochs = st.epochs,
                                   .batch = st.batch,
                                   .learning_rate = st.lr,
                                   .radius = st.radius,
                                   .far = st.far,
                                   .pixel_noise = st.noise,
                                   .seed = st.seed,
                                   .output = st.out};
  std::printf(
      "prilo-train-placement: %s, positives %s%s, pixel noise %g, scorer %ld-%d-%d-1, groups of %ld (window radius %d, "
      "%d far)\n"
      "  %ld training and %ld held-out training images (top-1 on %ld), %d epochs, batch %d, lr %g, seed %llu, %d "
      "threads\n",
      st.dataset.c_str(), st.positives.c_str(),
      (std::string(st.positives != "images" ? " (G(mu(x)) of " + vae_path.string() + ")" : "") +
       (R > 0 ? " and " + std::to_string(R) + " reconstructions (above)" : ""))
          .c_str(),
      st.noise, long(n), st.hidden, st.hidden, long(placement_group_size(st.radius, st.far)), st.radius, st.far,
      long(nt), long(nv), long(val.cols()), st.epochs, st.batch, st.lr, (unsigned long long)st.seed, cpu::threads());
  std::fflush(stdout);
  PlacementTrainingCallbacks cb;
  cb.epoch = [&](const PlacementEpochReport& r) {
    std::printf(
        "epoch %3d/%d: train loss %.4f, top-1 in group %.4f; validation top-1 among all %d transforms %.4f%s  "
        "%.0f s\n",
        r.epoch, st.epochs, r.loss, r.top1, 2 * h * w, r.validation_top1, r.improved ? " (saved)" : "", elapsed());
    std::fflush(stdout);
  };
  const PlacementTrainingResult res = train_placement_scorer(scorer, pos, val, o, cb);
  if (res.interrupted) {
    std::printf("interrupted in epoch %d: %s holds epoch %d (the best validation so far)\n", res.stopped_in,
                st.out.c_str(), res.best_epoch);
    return 130;
  }
  std::printf("wrote %s: epoch %d of %d (validation top-1 %.4f) in %.0f s\n", st.out.c_str(), res.best_epoch, st.epochs,
              res.best_top1, elapsed());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings st;
  CLI::App app{
      "prilo-train-placement: train the learned placement scorer of -resolve (ranks an image above its own circular "
      "shifts and point reflections; listwise cross-entropy over groups of transforms)"};
  app.option_defaults()->always_capture_default();  // --help shows what a bare run does
  // defaults unlike the other programs' (mnist, mlp): the case docs/tuning.md studied the scorer on
  app.add_option("--dataset", st.dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--generator", st.generator,
                 "The VAE whose decoded posterior means are the positives: mlp, conv or style (picks the default "
                 "--weights and --output)")
      ->check(CLI::IsMember({"mlp", "conv", "style"}));
  app.add_option("--weights", st.weights,
                 "VAE weights (default models/vae-<dataset>.prw, models/<generator>vae-<dataset>.prw with "
                 "--generator conv or style)")
      ->check(prilo_cli::non_empty_path());
  app.add_option(
         "--positives", st.positives,
         "decoded: G(mu(x)), the VAE's decoded posterior mean of each training image (the kind of image a "
         "reconstruction is); images: the training images themselves; both: each image twice, decoded and as it is "
         "(the validation top-1 on the decoded ones)")
      ->check(CLI::IsMember({"decoded", "images", "both"}));
  app.add_option("--pixel-noise", st.noise,
                 "Standard deviation of Gaussian noise added to each positive (fresh every time it is drawn, shared "
                 "by its group), for a scorer that tolerates a reconstruction's errors")
      ->check(prilo_cli::finite_nonnegative<T>());
  app.add_option("--reconstructed", st.reconstructed,
                 "Also use as positives --method's reconstructions of training images 0..N-1 from their Fourier "
                 "magnitudes, each moved to its image's placement (0: none)")
      ->check(prilo_cli::integer_at_least<long>(0));
  auto* reconstructed = app.get_option("--reconstructed");
  // the options of --reconstructed's runs mean nothing without it: an error, not ignored
  app.add_option("--method", st.method, "The method of --reconstructed (a prilo-reconstruct method name)")
      ->needs(reconstructed);
  app.add_option("--restarts", st.restarts, "Restarts of --reconstructed's method")
      ->check(prilo_cli::integer_at_least<int>(1))
      ->needs(reconstructed);
  app.add_option("--config", st.config,
                 "Config of --reconstructed's method (default configs/<dataset>.json, "
                 "configs/<dataset>-<generator>.json with --generator conv or style)")
      ->needs(reconstructed)
      ->check(prilo_cli::non_empty_path());
  app.add_option("--li-weights", st.li_weights,
                 "LI encoder of an -li --method (default models/li-<dataset>-fourier.prw, "
                 "models/li-<dataset>-fourier-<generator>.prw with --generator conv or style)")
      ->needs(reconstructed)
      ->check(prilo_cli::non_empty_path());
  app.add_option("--epochs", st.epochs, "Epochs")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--batch-size", st.batch, "Images per mini-batch (each with its group of transforms)")
      ->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--lr", st.lr, "Adam learning rate")->check(prilo_cli::finite_positive<T>());
  app.add_option("--hidden", st.hidden, "Hidden units of the scorer's two ReLU layers")->check(CLI::Range(1, 1 << 16));
  app.add_option("--radius", st.radius, "Shifts up to this many pixels around each image and its reflection")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--far", st.far, "Random transforms from anywhere added to each group")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--validation", st.validation, "Held-out images at the end of the training split (never test images)")
      ->check(prilo_cli::integer_at_least<long>(1));
  app.add_option("--validation-top1", st.validation_top1,
                 "Of those, the images whose top-1 among all transforms is measured each epoch")
      ->check(prilo_cli::integer_at_least<long>(1));
  app.add_option("--train-limit", st.limit, "Use only the first N training images (0: all)")
      ->check(prilo_cli::integer_at_least<long>(0));
  app.add_option("--seed", st.seed, "Seed of the initialisation, the shuffling and the far transforms")
      ->check(prilo_cli::seed());
  app.add_option("--data-dir", st.data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--output,-o", st.out,
                 "Output weights file (default models/placement-<dataset>.prw, "
                 "models/placement-<dataset>-<generator>.prw with --generator conv or style)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--threads", st.threads, "Threads (0: all)")->check(CLI::Range(0, cpu::max_threads));
  CLI11_PARSE(app, argc, argv);
  if (app.count("--output") == 0) st.out = io::placement_scorer_file(st.dataset, st.generator);
  cpu::retain_freed_memory();
  // --reconstructed runs prilo::reconstruct: FFTW plans chosen by timing (measure, patient) differ
  // from run to run in their rounding, and so would the positives; estimate's plans do not
  // ($PRILO_FFTW_EFFORT still chooses)
  fftw::set_default_planner_effort(fftw::Effort::estimate);
  if (st.threads > 0) cpu::set_threads(st.threads);
  try {
    if (st.reconstructed == 0)  // CLI11's needs() checks presence: --reconstructed 0 runs nothing they apply to
      for (const char* name : {"--method", "--restarts", "--config", "--li-weights"})
        if (app.count(name))
          throw invalid_input(std::string(name) + ": applies to --reconstructed's runs, and --reconstructed is 0");
    if (app.count("--validation-top1") && st.validation_top1 > st.validation)  // (its default is cut to --validation)
      throw invalid_input("--validation-top1 " + std::to_string(st.validation_top1) + ": more than the " +
                          std::to_string(st.validation) + " held-out images (--validation)");
    check_output_path(st.out, "--output");
    install_interrupt_handler();
    const io::PriorFiles files = io::prior_files(st.dataset, st.generator, st.weights, st.config, PRILO_SOURCE_DIR);
    const fs::path& vae_path = files.weights;
    check_distinct_outputs({{"--output", st.out}},
                           with_files({{"--weights", vae_path.string()},
                                       {"--config", st.reconstructed > 0 ? files.config.string() : ""},
                                       {"--li-weights", st.li_weights}},
                                      io::dataset_files(st.data_dir, st.dataset), "data set's"));
    return std::visit([&](const auto& vae) { return train(st, vae, vae_path); }, io::load_any_vae<T>(vae_path));
  } catch (const prilo::interrupted&) {  // while --reconstructed's runs made the positives
    std::printf("interrupted before the training: nothing written\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-train-placement: error: %s\n",
                 error_text(e, "--train-limit, --batch-size, --hidden, --far, --reconstructed").c_str());
    return 1;
  }
}

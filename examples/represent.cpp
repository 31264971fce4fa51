// prilo-represent: the representation limit of a VAE prior (an analysis: it fits the ground
// truth, which no reconstruction method sees). Per image, the best fit ‖G(z0) − x‖ over z0 in
// DPR's l1 ball (radius 100 around 0), from the encoder's mean and random starts, and for each
// split point i and radius r the best fit ‖G_i^k(z_i) − x‖ over z_i in the l1 ball of radius r
// around G_0^i(z0*) (the set PRILO's forward phases search; r = inf: no ball). Prints a
// Markdown table of PSNR (mean ± 95 % CI, median) per fit; optionally a JSON report.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <prilo/analysis/representation.hpp>
#include <prilo/backend/cpu.hpp>
#include <prilo/diagnostics.hpp>
#include <prilo/io/config.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/metrics/stats.hpp>
#include <prilo/report.hpp>
#include <sstream>
#include <variant>

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif

#include "cli_checks.hpp"

using namespace prilo;
using T = float;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Settings {
  std::string dataset = "mnist", generator = "mlp", split = "test", data_dir = io::default_data_dir();
  std::string weights, config, json_path, split_points, radii;
  int first = 0, count = 64, threads = 0, starts = 3, steps = 1000, split_steps = 500, polish = 300, rounds = 3;
  double factor = 0.3;
  double lr = 0.05, split_lr = 0.01;
  std::uint64_t seed = 0;
  bool quiet = false;
};

/// "10", "inf", "40/10" → the phase's radius or per-tensor radii.
PhaseOptions<T> parse_radius(const std::string& text, const PhaseOptions<T>& base) {
  PhaseOptions<T> p = base;
  std::vector<T> parts;
  std::stringstream in(text);
  std::string tok;
  while (std::getline(in, tok, '/')) {
    std::size_t used = 0;
    double r = 0;
    try {
      r = tok == "inf" ? std::numeric_limits<double>::infinity() : std::stod(tok, &used);
      if (tok == "inf") used = tok.size();
    } catch (const std::exception&) {
      used = 0;
    }
    if (tok.empty() || used != tok.size() || !(r >= 0))
      throw invalid_input("--radii: \"" + text + "\" is not a radius (a number >= 0, inf, or per-tensor radii a/b)");
    // a finite radius must stay one in T: 1e39 became float's inf (no ball), 1e-50 its 0
    if (tok != "inf" && (!std::isfinite(T(r)) || (r > 0 && T(r) == T(0))))
      throw invalid_input("--radii: " + tok +
                          " is beyond the range of the generator's scalar type (write inf for no "
                          "ball, 0 for a point)");
    parts.push_back(T(r));
  }
  if (parts.empty()) throw invalid_input("--radii: empty radius");
  if (parts.size() == 1)
    p.radius = parts[0];
  else
    p.radii = parts;
  return p;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string tok;
  while (std::getline(in, tok, ','))
    if (!tok.empty()) out.push_back(tok);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Settings st;
  CLI::App app{
      "prilo-represent: the representation limit of a VAE prior (analysis, uses the ground truth): the best fits "
      "of test images through z0 and through z_i in l1 balls"};
  app.option_defaults()->always_capture_default();  // --help shows what a bare run does
  app.add_option("--dataset", st.dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--generator", st.generator,
                 "The VAE whose decoder is the prior: mlp, conv or style; picks the default --weights and --config")
      ->check(CLI::IsMember({"mlp", "conv", "style"}));
  app.add_option("--weights", st.weights, "VAE weights (default models/[<generator>]vae-<dataset>.prw)")
      ->check(prilo_cli::non_empty_path());
  app.add_option(
         "--config", st.config,
         "Config whose PRILO forward radii are fitted by default (default configs/<dataset>[-<generator>].json)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--split", st.split, "Images from the test split (reporting) or the train split")
      ->check(CLI::IsMember({"test", "train"}));
  app.add_option("--first", st.first, "First image index")->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--count", st.count, "Number of images")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--split-points", st.split_points,
                 "Comma-separated split points i of the z_i fits (default: those of the config's PRILO stages)");
  app.add_option("--radii", st.radii,
                 "Comma-separated l1 radii of the z_i fits at every split point: a number, inf (no ball), or one "
                 "radius per tensor a/b (style); default: the config's forward radii at each split point (for a "
                 "chained stage of R repetitions also R x its radius), and inf");
  app.add_option("--starts", st.starts, "Random N(0, I) starts of the z0 fit beside the encoder's mean")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--steps", st.steps, "Adam steps of the z0 fit")->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--lr", st.lr, "Learning rate of the z0 fit")->check(prilo_cli::finite_positive<T>());
  app.add_option("--split-steps", st.split_steps, "Adam steps of each z_i fit")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--split-lr", st.split_lr, "Learning rate of the z_i fits")->check(prilo_cli::finite_positive<T>());
  app.add_option("--polish", st.polish, "Steps of each polish round of every fit (from its best point so far)")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--polish-rounds", st.rounds, "Polish rounds, each at the previous learning rate x --polish-factor")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--polish-factor", st.factor, "Learning-rate factor of each polish round")
      ->check(prilo_cli::finite_range<T>(1e-6, 1.0));
  app.add_option("--seed", st.seed, "Seed of the random starts")->check(prilo_cli::seed());
  app.add_option("--data-dir", st.data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--json", st.json_path, "Write the summaries and per-image values to this JSON file")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--threads", st.threads, "Threads (0: all cores)")->check(CLI::Range(0, cpu::max_threads));
  app.add_flag("--quiet", st.quiet, "No progress output");
  CLI11_PARSE(app, argc, argv);
  try {
    cpu::retain_freed_memory();  // per-call temporaries reuse freed pages (no fault per page)
    if (st.threads > 0) cpu::set_threads(st.threads);
    const io::PriorFiles files = io::prior_files(st.dataset, st.generator, st.weights, st.config, PRILO_SOURCE_DIR);
    const auto cfg = io::load_reconstruction_config<T>(files.config);
    check_output_path(st.json_path, "--json");
    check_distinct_outputs({{"--json", st.json_path}},
                           with_files({{"--config", files.config.string()}, {"--weights", files.weights.string()}},
                                      io::dataset_files(st.data_dir, st.dataset), "data set's"));
    const std::size_t available = io::dataset_size(st.data_dir, st.dataset, st.split);
    if (std::size_t(st.first) + std::size_t(st.count) > available)
      throw invalid_input("--first/--count: images " + std::to_string(st.first) + ".." +
                          std::to_string(static_cast<long long>(st.first) + st.count - 1) + " are outside the " +
                          st.split + " split (" + std::to_string(available) + " images)");
    const io::AnyVae<T> model = io::load_any_vae<T>(files.weights);
    const int depth = std::visit([](const auto& v) { return v.decoder().depth(); }, model);

    // the balls: by default the config's forward balls (both readings) at the split points its
    // stages name (analysis::config_balls); --split-points and --radii choose others
    const PhaseOptions<T> base{.steps = st.split_steps, .radius = T(0), .learning_rate = T(st.split_lr)};
    const std::vector<analysis::NamedPriloSection<T>> sections{{"prilo", &cfg.prilo},
                                                               {"prilo_chain", &cfg.prilo_chain}};
    std::vector<int> points;
    if (!app.count("--split-points")) try {
        points = analysis::config_split_points(sections, depth);
      } catch (const invalid_input& e) {
        throw invalid_input("the config " + files.config.string() + ": " + e.what() + " (the " + st.generator +
                            " decoder)");
      }
    else {  // given empty: an error below, not the config's points
      for (const std::string& tok : split_list(st.split_points)) {
        std::size_t used = 0;
        int i = -1;
        try {
          i = std::stoi(tok, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != tok.size() || i < 1 || i >= depth)
          throw invalid_input("--split-points: \"" + tok + "\" is not a split point of the " + st.generator +
                              " decoder (1.." + std::to_string(depth - 1) + ")");
        points.push_back(i);
      }
      if (points.empty()) throw invalid_input("--split-points: no split points given");
    }
    std::sort(points.begin(), points.end());
    // options that would do nothing here: an error, not ignored
    if (points.empty())
      for (const char* opt : {"--radii", "--split-steps", "--split-lr"})
        if (app.count(opt))
          throw invalid_input(std::string(opt) +
                              ": sets the split-point fits, and there are none (the config's stages name no split "
                              "point; give --split-points)");
    if (st.rounds == 0)
      for (const char* opt : {"--polish", "--polish-factor"})
        if (app.count(opt))
          throw invalid_input(std::string(opt) + ": sets the polish rounds, and --polish-rounds is 0");
    std::vector<analysis::SplitBall<T>> balls;
    if (!app.count("--radii"))
      balls = analysis::config_balls(sections, points, base);
    else {  // given empty: an error, not the config's balls
      const std::vector<std::string> radii = split_list(st.radii);
      if (radii.empty()) throw invalid_input("--radii: \"" + st.radii + "\" lists no radius");
      for (const int i : points)
        for (const std::string& tok : radii) analysis::add_ball(balls, i, parse_radius(tok, base));
    }
    analysis::RepresentationOptions<T> opt{
        .latent = {.steps = st.steps, .radius = T(100), .learning_rate = T(st.lr)},
        .random_starts = st.starts,
        .polish_steps = st.polish,
        .polish_rounds = st.rounds,
        .polish_factor = st.factor,
        .balls = balls,
        .seed = st.seed,
    };
    if (!st.quiet) {
      auto printer = progress_printer(stderr, 5.0);
      opt.progress = [printer](const Progress& p) mutable { printer("represent", p); };
    }

    const auto data = io::load_dataset<T>(st.data_dir, st.dataset, st.split, st.first, st.count);
    const int h = int(data.rows), w = int(data.cols);
    io::check_vae_fits(model, files.weights, st.generator, h, w);
    std::printf(
        "prilo-represent (analysis: fits the ground truth): %s prior, %s %s images %d..%d, %d threads, seed %llu\n",
        st.generator.c_str(), st.dataset.c_str(), st.split.c_str(), st.first, st.first + st.count - 1, cpu::threads(),
        (unsigned long long)st.seed);
    std::printf("  config %s, weights %s, products: %s\n", files.config.string().c_str(),
                files.weights.string().c_str(), products_backend().c_str());
    std::printf(
        "  z0 fit: l1 ball of radius 100 around 0 (DPR's), from the encoder's mean and %d random starts, %d Adam "
        "steps at lr %g; z_i fits: %d steps at lr %g, l1 balls around G_0^i(z0*); every fit then %d round(s) of %d "
        "steps, the rate x %g each\n",
        st.starts, st.steps, st.lr, st.split_steps, st.split_lr, st.rounds, st.polish, st.factor);
    if (const std::string note = blas_kernel_warning(); !note.empty()) std::printf("  %s\n", note.c_str());
    std::fflush(stdout);

    const auto t0 = std::chrono::steady_clock::now();
    const analysis::RepresentationResult<T> res =
        std::visit([&](const auto& vae) { return analysis::representation_limit_vae(vae, data.images, opt); }, model);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::printf(
        "\n| fit (analysis) | split point | l1 radius | PSNR mean ± 95 %% CI (dB) | PSNR median (dB) | "
        "mean ‖G − x‖ |\n|---|---|---|---|---|---|\n");
    auto row = [&](const std::string& what, const std::string& point, const std::string& radius,
                   const Vec<double>& psnr, const Vec<double>& err) {
      const metrics::Summary s = metrics::summary(metrics::cap_psnr(psnr));
      std::printf("| %s | %s | %s | %.2f ± %s | %.2f | %.3f |\n", what.c_str(), point.c_str(), radius.c_str(), s.mean,
                  metrics::format_ci(s.ci95).c_str(), s.median, err.mean());
      json j = {{"fit", what},
                {"split_point", point},
                {"radius", radius},
                {"psnr_mean", s.mean},
                {"psnr_median", s.median},
                {"error_mean", err.mean()},
                {"psnr", std::vector<double>(psnr.data(), psnr.data() + psnr.size())},
                {"error", std::vector<double>(err.data(), err.data() + err.size())}};
      if (!std::isnan(s.ci95)) j["psnr_ci95"] = s.ci95;
      return j;
    };
    json fits = json::array();
    fits.push_back(row("z0", "0", "100 (around 0)", res.psnr0, res.error0));
    for (const auto& f : res.balls)
      fits.push_back(row("z" + std::to_string(f.ball.layer), std::to_string(f.ball.layer),
                         analysis::ball_label(f.ball.phase) +
                             (analysis::ball_label(f.ball.phase) == "inf" ? "" : " (around G_0^i(z0*))"),
                         f.psnr, f.error));
    int from_encoder = 0;
    for (int s : res.start0) from_encoder += s == 0;
    std::printf("\n%d of %d z0 fits kept the encoder's start (the others a random one); %.1f s (%.2f s per image)\n",
                from_encoder, st.count, seconds, seconds / st.count);
    if (!st.json_path.empty()) {
      json report = {{"analysis", "representation limit: fits of the ground-truth images (not a reconstruction)"},
                     {"dataset", st.dataset},
                     {"generator", st.generator},
                     {"split", st.split},
                     {"first", st.first},
                     {"count", st.count},
                     {"threads", cpu::threads()},
                     {"seed", st.seed},
                     {"z0_fit", {{"l1_radius", 100}, {"random_starts", st.starts}, {"steps", st.steps}, {"lr", st.lr}}},
                     {"split_fit", {{"steps", st.split_steps}, {"lr", st.split_lr}}},
                     {"polish", {{"steps", st.polish}, {"rounds", st.rounds}, {"factor", st.factor}}},
                     {"seconds", seconds},
                     {"encoder_start_kept", from_encoder},
                     {"fits", fits}};
      write_text_file(st.json_path, report.dump(1));
      std::printf("wrote %s\n", st.json_path.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-represent: error: %s\n", error_text(e, "--count, --starts").c_str());
    return 1;
  }
  return 0;
}

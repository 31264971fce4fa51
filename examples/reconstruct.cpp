// prilo-reconstruct: the main job. Phase retrieval on MNIST / Fashion-MNIST images with the
// methods of prilo/methods.hpp (PRILO and its baselines): arguments, files and printing around
// prilo::reconstruct. Prints PSNR / SSIM / magnitude error / time and the work (GFLOP, % of
// peak) per method, optionally writes a JSON report, a PNG grid and the optimisation traces.
// Built with -DPRILO_MPI=ON, `mpirun -np N prilo-reconstruct …` spreads the images over N
// processes (identical results); SIGINT keeps the methods that finished. Compiled by nvcc as
// prilo-reconstruct-cuda (reconstruct_cuda.cu, -DPRILO_ENABLE_CUDA=ON), `--backend cuda` runs
// the latent methods on the GPU (prilo::gpu::OnDevice).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <prilo/backend/cpu.hpp>
#include <prilo/diagnostics.hpp>
#include <prilo/io/config.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/io/png.hpp>
#include <prilo/methods.hpp>
#include <prilo/operators.hpp>
#include <prilo/report.hpp>
#include <variant>
#ifdef PRILO_HAVE_MPI
#include <prilo/mpi.hpp>
#endif
#ifdef PRILO_RECONSTRUCT_CUDA
#include <prilo/backend/cuda.cuh>
#endif

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
  std::string dataset = "mnist", op = "fourier", split = "test", ablation = "full";
  std::string methods = "hio,dpr,prilo-mii,prilo-chain-mii,prilo-chain-mii-resolve";
  std::string data_dir = io::default_data_dir(), config, weights, li_weights, placement_weights, json_path, png_path,
              trace_path;
  std::string fftw_effort;  // empty: $PRILO_FFTW_EFFORT or patient
  std::string fftw_wisdom;  // empty: $PRILO_FFTW_WISDOM or the user's cache folder; "none": no file
  std::string backend = "cpu", generator = "mlp", fft = "auto";
  int measurements = 200, first = 0, count = 32, restarts = 4, threads = 0, png_count = 8, blocks = 0;
  double peak = 0;
  std::uint64_t seed = 0;
  bool quiet = false, per_restart = false;
};

}  // namespace

int main(int argc, char** argv) {
  Settings st;
  CLI::App app{
      "prilo-reconstruct: phase retrieval with generative priors (PRILO and baselines) on MNIST / Fashion-MNIST"};
  app.option_defaults()->always_capture_default();  // --help shows what a bare run does
  app.add_option("--dataset", st.dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--operator", st.op, "fourier (28x28 DFT, no oversampling), gaussian-real, gaussian-complex")
      ->check(CLI::IsMember({"fourier", "gaussian-real", "gaussian-complex"}));
  app.add_option("--measurements", st.measurements, "m, the number of Gaussian measurements")
      ->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--methods", st.methods, "Comma-separated: " + detail::join(method_names(), ","));
  app.add_option("--split", st.split, "Images from the test split (reporting) or the train split (tuning)")
      ->check(CLI::IsMember({"test", "train"}));
  app.add_option("--first", st.first, "First image index")->check(prilo_cli::integer_at_least<int>(0));
  app.add_option("--count", st.count, "Number of images")->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--restarts", st.restarts, "Random restarts per image (lowest magnitude error kept)")
      ->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--seed", st.seed, "Seed of every random choice")->check(prilo_cli::seed());
  app.add_option("--config", st.config,
                 "JSON hyperparameter file (default configs/<dataset>.json, configs/<dataset>-<generator>.json with "
                 "--generator conv or style)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--generator", st.generator,
                 "The VAE whose decoder is the prior: mlp (the paper's), conv (DCGAN-like decoder) or style (z0 fed "
                 "into every layer); picks the default --weights and --config")
      ->check(CLI::IsMember({"mlp", "conv", "style"}));
  app.add_option("--weights", st.weights,
                 "VAE weights, MLP, conv or style (read from the file; default models/vae-<dataset>.prw, "
                 "models/<generator>vae-<dataset>.prw with --generator conv or style)")
      ->check(prilo_cli::non_empty_path());
  app.add_option(
         "--li-weights", st.li_weights,
         "LI encoder of the -li methods (default models/li-<dataset>-<operator>.prw, with --generator conv or style "
         "models/li-<dataset>-<operator>-<generator>.prw; prilo-train-li trains it)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--placement-weights", st.placement_weights,
                 "Placement scorer of the -resolve methods, read when the config's resolve.scorer_weight > 0 "
                 "(default models/placement-<dataset>.prw, models/placement-<dataset>-<generator>.prw with --generator "
                 "conv or style; prilo-train-placement trains it)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--data-dir", st.data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--json", st.json_path, "Write per-method summaries and per-image values to this JSON file")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--png", st.png_path, "Write a PNG grid: ground truth, measurements, each method")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--png-count", st.png_count,
                 "Images shown in the PNG grid (at most --count: the grid shows those there are)")
      ->check(prilo_cli::integer_at_least<int>(1));
  app.add_option("--threads", st.threads, "Threads (0: all cores)")->check(CLI::Range(0, cpu::max_threads));
  app.add_flag("--quiet", st.quiet, "No progress output");
  app.add_option(
         "--fft", st.fft,
         "Transforms of the DFT loss on the CPU: auto (default: lanes for images under 64x64 pixels whose sides "
         "factor into 2, 3, 5 and 7, fftw otherwise), fftw, or lanes (one image per SIMD lane); the two differ "
         "in their results' last bits")
      ->check(CLI::IsMember({"auto", "fftw", "lanes"}));
  app.add_option("--fftw-effort", st.fftw_effort,
                 "FFTW planner: patient (default: the fastest transforms, its search kept in --fftw-wisdom), measure, "
                 "estimate (bit-reproducible runs, no wisdom); default $PRILO_FFTW_EFFORT or patient")
      ->check(CLI::IsMember({"estimate", "measure", "patient"}));
  app.add_option(
         "--fftw-wisdom", st.fftw_wisdom,
         "File keeping FFTW's plan measurements between runs (default $PRILO_FFTW_WISDOM or "
         "$XDG_CACHE_HOME/prilo/fftw-wisdom-<precision>.txt, $XDG_CACHE_HOME defaulting to ~/.cache; none: no file; "
         "a folder other than the default one must exist)")
      ->check(prilo_cli::non_empty_path());
  app.add_option("--ablation", st.ablation,
                 "PRILO phases (the paper's Table 3): full, init-only (no optimisation), a-only (no B, C), a-b (no C), "
                 "no-balls (no l1 constraints)")
      ->check(CLI::IsMember(ablation_names()));
  app.add_option(
         "--trace", st.trace_path,
         "Write per-method mean magnitude error and PSNR (analysis) every 10 steps, per phase, to this JSON file "
         "(block 0's columns: all of them with --threads 1)")
      ->check(prilo_cli::non_empty_path());
  app.add_flag("--per-restart", st.per_restart, "Also write every restart's magnitude error and PSNR to --json");
  app.add_option("--blocks", st.blocks, "Column blocks (0: one per thread; fix it for results independent of threads)")
      ->check(prilo_cli::integer_at_least<int>(0));
  app.add_option(
         "--peak-gflops", st.peak,
         "FP32 FMA peak for the work table (0: measured once and cached; with --backend cuda the GPU's, measured "
         "after the run)")
      ->check(prilo_cli::finite_nonnegative());
  app.add_option("--backend", st.backend,
                 "Where DPR, PRILO and MII run: cpu, or cuda (prilo-reconstruct-cuda, a build with "
                 "-DPRILO_ENABLE_CUDA=ON; ER/HIO, -resolve and the Gaussian baselines stay on the CPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  CLI11_PARSE(app, argc, argv);
  install_interrupt_handler();  // SIGINT: the solvers stop at their next step, finished methods are written
#ifdef PRILO_HAVE_MPI
  mpi::Session session(argc, argv);
  const mpi::Collective world;
  if (world.part() != 0 && !std::freopen("/dev/null", "w", stdout)) return 1;  // rank 0 reports
#endif
  int status = 0;
  auto job = [&] {
#ifndef PRILO_RECONSTRUCT_CUDA
    if (st.backend == "cuda")
      throw invalid_input(
          "--backend cuda: this prilo-reconstruct was built without the CUDA backend; use prilo-reconstruct-cuda "
          "(configure with -DPRILO_ENABLE_CUDA=ON on a machine with nvcc)");
#else
    if (st.backend == "cuda" && gpu::device_count() < 1)
      throw invalid_input("--backend cuda: no CUDA device found on this machine");
#endif
    // options that would do nothing here: an error, not ignored
    if (st.per_restart && st.json_path.empty())
      throw invalid_input("--per-restart: adds every restart's values to --json, and no --json is given");
    if (app.count("--png-count") && st.png_path.empty())
      throw invalid_input("--png-count: sets the images of the --png grid, and no --png is given");
    if (st.peak != 0 && st.peak < 1e-3)
      throw invalid_input(
          "--peak-gflops: a peak below 0.001 GFLOP/s is no machine's (0 measures it; the unit is GFLOP/s)");
    if (st.op == "fourier" && app.count("--measurements"))
      throw invalid_input(
          "--measurements: the DFT (--operator fourier) has as many measurements as pixels; "
          "--measurements sets the Gaussian operators' m");
    if (st.op != "fourier" && app.count("--fft"))
      throw invalid_input("--fft: chooses the DFT's transforms (--operator fourier), and --operator is " + st.op);
    cpu::retain_freed_memory();  // per-call temporaries reuse freed pages (no fault per page)
    if (st.threads > 0) cpu::set_threads(st.threads);
    fftw::set_default_planner_effort(fftw::Effort::patient);  // the library's default is measure
    if (!st.fftw_effort.empty()) fftw::set_planner_effort(fftw::parse_effort(st.fftw_effort));
    const fftw::Effort effort = fftw::planner_effort();  // a bad $PRILO_FFTW_EFFORT fails here, clearly
    // a file the user names must be writable where it is (as --json's): its folder is not made
    if (app.count("--fftw-wisdom") && st.fftw_wisdom != "none") check_output_path(st.fftw_wisdom, "--fftw-wisdom");
    // written back when the job ends, if plans were made
    fftw::WisdomFile<T> wisdom(fftw::WisdomFile<T>::path_of(st.fftw_wisdom));
    auto locate = [](const std::string& given, const std::string& rel) {
      return io::locate_file(given, rel, PRILO_SOURCE_DIR);
    };
    const io::PriorFiles files = io::prior_files(st.dataset, st.generator, st.weights, st.config, PRILO_SOURCE_DIR);
    const fs::path &config_path = files.config, &weights_path = files.weights;
    const std::vector<MethodSpec> methods = parse_methods(st.methods, "--methods");
    const auto family_listed = [&](std::initializer_list<MethodFamily> fs) {
      return std::any_of(methods.begin(), methods.end(),
                         [&](const MethodSpec& m) { return std::find(fs.begin(), fs.end(), m.family) != fs.end(); });
    };
    // more options that would do nothing for these methods
    if (app.count("--ablation") && !family_listed({MethodFamily::prilo}))
      throw invalid_input("--ablation " + st.ablation +
                          ": switches PRILO's phases, and no PRILO method is in --methods");
    if ((st.ablation == "a-only" || st.ablation == "a-b") &&
        std::none_of(methods.begin(), methods.end(), [](const MethodSpec& m) {
          return m.family == MethodFamily::prilo && m.reading == PriloReading::back_project_refine;
        }))  // the chained reading has no B or C phases to leave out
      throw invalid_input("--ablation " + st.ablation +
                          ": leaves out B or C phases, which only the prilo[-mii|-li] methods run (the prilo-chain "
                          "ones run forward phases only)");
    if (!st.trace_path.empty() && !family_listed({MethodFamily::dpr, MethodFamily::prilo}))
      throw invalid_input("--trace: records the latent solvers (DPR, PRILO), and none is in --methods");
    if (st.per_restart && std::none_of(methods.begin(), methods.end(), [](const MethodSpec& m) {
          return !m.resolve && !m.polish && !m.average && m.operator_kind() != OperatorKind::gaussian;
        }))
      throw invalid_input(
          "--per-restart: writes the restarts of the methods that keep them, and none in --methods does (-avg, "
          "-resolve, -polish and the Gaussian baselines keep none)");
    const auto cfg = io::load_reconstruction_config<T>(config_path);
    for (const MethodSpec& m : methods) {  // a method the operator cannot run: before the header and any reading
      if (st.op == "fourier")
        check_method<Fourier2d<T>>(m, cfg);
      else
        check_method<GaussianReal<T>>(m, cfg);  // (both Gaussian operators run the same methods)
    }
    std::optional<LiEncoder<T>> li;  // read only when a -li method runs
    fs::path li_path;
    const bool li_methods =
        std::any_of(methods.begin(), methods.end(), [](const MethodSpec& m) { return m.start == LatentStart::li; });
    if (!st.li_weights.empty() && !li_methods)
      throw invalid_input("--li-weights " + st.li_weights + ": no -li method in --methods, so it would not be read");
    if (li_methods) {
      li_path = locate(st.li_weights, io::li_encoder_file(st.dataset, st.op, st.generator));
      if (!fs::exists(li_path)) {
        const std::string gaussian = st.op == "fourier" ? ""
                                                        : " --measurements " + std::to_string(st.measurements) +
                                                              " --seed " + std::to_string(st.seed);
        throw file_error("LI encoder " + li_path.string() +
                         ": file not found (the -li methods need it); train it with: prilo-train-li --dataset " +
                         st.dataset + " --operator " + st.op + gaussian + " --generator " + st.generator +
                         " --output " + li_path.string());
      }
      li = load_li_encoder<T>(li_path);
    }
    std::optional<PlacementScorer<T>> scorer;  // read only when a -resolve method uses it
    fs::path scorer_path;
    if (!st.placement_weights.empty() && !(cfg.resolve.scorer_weight > 0))
      throw invalid_input("--placement-weights " + st.placement_weights + ": the config " + config_path.string() +
                          " gives the placement scorer no weight (resolve.scorer_weight 0), so it would not be read");
    if (!st.placement_weights.empty() &&
        std::none_of(methods.begin(), methods.end(), [](const MethodSpec& m) { return m.resolve; }))
      throw invalid_input("--placement-weights " + st.placement_weights +
                          ": no -resolve method in --methods, so it would not be read");
    if (cfg.resolve.scorer_weight > 0 &&
        std::any_of(methods.begin(), methods.end(), [](const MethodSpec& m) { return m.resolve; })) {
      scorer_path = locate(st.placement_weights, io::placement_scorer_file(st.dataset, st.generator));
      if (!fs::exists(scorer_path))
        throw file_error("placement scorer " + scorer_path.string() + ": file not found (the config " +
                         config_path.string() + " sets resolve.scorer_weight " +
                         std::to_string(cfg.resolve.scorer_weight) +
                         "); train it with: prilo-train-placement --dataset " + st.dataset + " --generator " +
                         st.generator + " --output " + scorer_path.string());
      scorer = load_placement_scorer<T>(scorer_path);
    }
    // the config's -resolve judges, read only when a -resolve method runs (files checked here, loaded with the data)
    const bool resolve_methods =
        std::any_of(methods.begin(), methods.end(), [](const MethodSpec& m) { return m.resolve; });
    const std::vector<fs::path> judge_files =
        resolve_methods ? io::judge_files(cfg.resolve_judges, "the config " + config_path.string())
                        : std::vector<fs::path>{};
    // outputs are checked before any solving: a bad path must not cost the whole run
    check_output_path(st.json_path, "--json");  // (and on every rank, so that none starts in vain)
    check_output_path(st.png_path, "--png");
    check_output_path(st.trace_path, "--trace");
    check_distinct_outputs({{"--json", st.json_path}, {"--png", st.png_path}, {"--trace", st.trace_path}},
                           with_files(with_files({{"--config", config_path.string()},
                                                  {"--weights", weights_path.string()},
                                                  {"--li-weights", li_path.string()},
                                                  {"--placement-weights", scorer_path.string()},
                                                  {"--fftw-wisdom", wisdom.path().string()}},
                                                 io::dataset_files(st.data_dir, st.dataset), "data set's"),
                                      judge_files, "-resolve judge"));
    const std::size_t available = io::dataset_size(st.data_dir, st.dataset, st.split);
    if (std::size_t(st.first) + std::size_t(st.count) > available)
      throw invalid_input("--first/--count: images " + std::to_string(st.first) + ".." +
                          std::to_string(static_cast<long long>(st.first) + st.count - 1) + " are outside the " +
                          st.split + " split (" + std::to_string(available) + " images)");
    const auto data = io::load_dataset<T>(st.data_dir, st.dataset, st.split, st.first, st.count);
    const int h = int(data.rows), w = int(data.cols);
    const io::PngGridOptions png_layout{.padding = 2, .scale = 3};
    if (!st.png_path.empty()) try {  // the picture's size before the work (it failed after it)
        (void)io::png_grid_size(h, w, 2 + methods.size(), std::size_t(std::min(st.png_count, st.count)), png_layout);
      } catch (const invalid_input& e) {
        throw invalid_input("--png-count " + std::to_string(st.png_count) + " with " + std::to_string(methods.size()) +
                            " method(s): " + e.what() + "; show fewer images");
      }
    const io::AnyVae<T> model = io::load_any_vae<T>(weights_path, st.generator, h, w);
    for (const MethodSpec& m : methods)  // the stages against the decoder's layers: the config named, before any work
      std::visit(
          [&](const auto& vae) {
            try {
              check_stages(m, cfg, vae, parse_ablation(st.ablation));
            } catch (const invalid_input& e) {
              throw invalid_input("the config " + config_path.string() + ": " + e.what());
            }
          },
          model);
    const io::ResolveJudges<T> judges(resolve_methods ? cfg.resolve_judges : std::vector<JudgeFile>{}, h, w);
    const Mat<T>& x = data.images;
    const std::string m_text = st.op == "fourier" ? "" : " m=" + std::to_string(st.measurements);
    std::optional<Fourier2d<T>> fourier;
    if (st.op == "fourier") {
      const FourierEngine engine = st.fft == "lanes"  ? FourierEngine::lanes
                                   : st.fft == "fftw" ? FourierEngine::fftw
                                                      : FourierEngine::automatic;
      fourier.emplace(h, w, FourierScaling::unitary, engine);
      st.fft = fourier->engine() == FourierEngine::lanes ? "lanes" : "fftw";  // what auto chose: header, JSON
    }
    std::printf(
        "prilo-reconstruct: backend %s (%d threads), %s %s images %d..%d, operator %s%s, %d restarts, seed %llu\n",
        st.backend.c_str(), cpu::threads(), st.dataset.c_str(), st.split.c_str(), st.first, st.first + st.count - 1,
        st.op.c_str(), m_text.c_str(), st.restarts, (unsigned long long)st.seed);
    if (st.ablation != "full") std::printf("  ablation: %s (PRILO methods)\n", st.ablation.c_str());
    std::printf("  config %s, weights %s, products: %s, FFTW planner: %s%s\n", config_path.string().c_str(),
                weights_path.string().c_str(), products_backend().c_str(), fftw::effort_name(effort),
                fourier ? (", DFT loss on the CPU: " + st.fft).c_str() : "");
    std::printf("  %s\n", fftw::wisdom_note(wisdom.status(), wisdom.path()).c_str());
    if (li) std::printf("  LI encoder %s\n", li_path.string().c_str());
    if (scorer) std::printf("  placement scorer %s\n", scorer_path.string().c_str());
    for (const auto& jd : judges.judges())
      std::printf("  -resolve judge %s (weight %g, its %td best candidates per image)\n", jd.name.c_str(), jd.weight,
                  cfg.resolve.judged_candidates);
    if (const std::string note = blas_kernel_warning(); !note.empty()) std::printf("  %s\n", note.c_str());
    std::fflush(stdout);

    MethodOptions<T> opt{.restart = {.restarts = st.restarts, .blocks = {.blocks = st.blocks}},
                         .ablation = parse_ablation(st.ablation),
                         .seed = st.seed,
                         .trace_reference = st.trace_path.empty() ? nullptr : &x};
    opt.restart.keep_all = st.per_restart;
    if (li) opt.li = &*li;
    if (scorer) opt.placement_scorer = &*scorer;
    opt.judges = judges.judges();
    if (!st.quiet) opt.progress = progress_printer(stderr, 2.0);
#ifdef PRILO_HAVE_MPI
    opt.run = mpi::any_run<T>(world);
    if (world.parts() > 1 && st.blocks == 0) opt.restart.blocks.blocks = world.parts() * cpu::threads();
#endif
    Mat<T> y;
    std::vector<MethodResult<T>> results;
    std::vector<std::string> unfinished;
    auto run = [&](const auto& op) {
      y = measure(op, x);
#ifdef PRILO_RECONSTRUCT_CUDA
      if (st.backend == "cuda") {
        std::visit(
            [&](const auto& vae) {
              results = reconstruct(gpu::OnDevice{}, methods, vae, op, y, cfg, opt, &unfinished);
            },
            model);
        return;
      }
#endif
      std::visit([&](const auto& vae) { results = reconstruct(methods, vae, op, y, cfg, opt, &unfinished); }, model);
    };
    if (st.op == "fourier")
      run(*fourier);
    else if (st.op == "gaussian-real")
      run(GaussianReal<T>(st.measurements, h * w, st.seed + 7));
    else
      run(GaussianComplex<T>(st.measurements, h * w, st.seed + 7));

    json report = {{"dataset", st.dataset},   {"split", st.split},        {"operator", st.op},
                   {"first", st.first},       {"count", st.count},        {"restarts", st.restarts},
                   {"seed", st.seed},         {"backend", st.backend},    {"threads", cpu::threads()},
                   {"ablation", st.ablation}, {"generator", st.generator}};
    if (st.op != "fourier") report["measurements"] = st.measurements;
    if (st.op == "fourier") {  // the engine that ran (never "auto")
      // with --backend cuda the latent methods' (DPR, PRILO, MII) loss runs on cuFFT; ER, HIO,
      // -resolve's scoring, the -avg/-polish consensus and the --trace observer on the host's
      // (with no latent method asked for, nothing ran on cuFFT)
      if (st.backend == "cuda" && family_listed({MethodFamily::dpr, MethodFamily::prilo})) {
        report["fft"] = "cufft";
        report["fft_host"] = st.fft;
      } else {
        report["fft"] = st.fft;
      }
    }
    const int threads = cpu::threads() * opt.run.parts();
    Peak peak{st.peak, "the FP32 FMA peak of " + std::to_string(threads) + " thread(s)"};
#ifdef PRILO_RECONSTRUCT_CUDA
    if (st.backend == "cuda") {  // the latent methods ran on the GPU: its peak, not the cores'
      const gpu::PeakMeasurement m = gpu::measure_peak();
      if (peak.gflops <= 0) peak.gflops = m.gflops;
      peak.of = "the FP32 FMA peak of the GPU, " + m.device + (st.peak > 0 ? " (given)" : " (measured)");
    }
#endif
    if (peak.gflops <= 0) {
      PeakSource source{};
      peak.gflops = cached_peak_gflops(threads, &source);
      const std::string file = peak_cache_file(threads).string();
      if (source == PeakSource::cache)
        peak.of += ", cached in " + file + " (delete it to measure again)";
      else if (source == PeakSource::measured_and_cached)
        peak.of += ", measured now and cached in " + file;
      else
        peak.of += ", measured now (not cached: other work held the cores, or no cache folder)";
    }
    report["methods"] = print_results(stdout, results, x, h, w, /*align=*/st.op == "fourier", peak);
    if (!unfinished.empty()) report["interrupted"] = {{"not_finished", unfinished}};
    auto write_file = [&](const std::string& path, const std::string& text) {
      if (opt.run.part() != 0) return;
      write_text_file(path, text);
      std::printf("wrote %s\n", path.c_str());
    };
    if (!st.trace_path.empty()) write_file(st.trace_path, io::trace_report_json(results).dump());
    if (!st.json_path.empty()) write_file(st.json_path, report.dump(1));
    if (!st.png_path.empty() && opt.run.part() == 0) {
      const Eigen::Index k = std::min<Eigen::Index>(st.png_count, x.cols());
      io::write_png_grid(st.png_path, comparison_grid(x, y, results, h, w, k, st.op == "fourier"), h, w,
                         2 + results.size(), k, png_layout);
      std::printf("wrote %s (rows: truth, %s, then", st.png_path.c_str(),
                  st.op == "fourier" ? "|Fx| (log, centred)" : "the first h*w measurements y");
      for (const auto& r : results) std::printf(" %s", r.method.c_str());
      std::printf(")\n");
    }
    if (!wisdom.save())  // (the destructor's save would fail without a word)
      std::fprintf(stderr, "prilo-reconstruct: warning: FFTW wisdom not saved: cannot write %s\n",
                   wisdom.path().string().c_str());
    if (!unfinished.empty()) {
      std::printf("interrupted: the output holds the %zu method(s) that finished; not finished: %s\n", results.size(),
                  detail::join(unfinished, ",").c_str());
      status = 130;
    }
  };
#ifdef PRILO_HAVE_MPI
  mpi::abort_on_error(world.comm(), job);
#else
  try {
    job();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-reconstruct: error: %s\n",
                 error_text(e, "--count, --restarts, --measurements, or the config's mii.candidates").c_str());
    return 1;
  }
#endif
  return status;
}

// prilo-reconstruct: the main job. Phase retrieval on MNIST / Fashion-MNIST test images with
// ER, HIO, DPR, DPR-MII, PRILO and PRILO-MII, printing a table of PSNR / SSIM / magnitude
// error / time per method and optionally a JSON report and a PNG grid.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <strings.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <prilo/backend/cpu.hpp>

#if defined(PRILO_BLAS_OPENBLAS)
extern "C" char* openblas_get_corename(void);
#endif
#include <prilo/init/initialisers.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/png.hpp>
#include <prilo/metrics/metrics.hpp>
#include <prilo/nn/vae_io.hpp>
#include <prilo/operators.hpp>
#include <prilo/pipeline.hpp>
#include <prilo/solvers/column_blocks.hpp>
#include <prilo/solvers/fienup.hpp>
#include <prilo/solvers/gaussian_baselines.hpp>
#include <prilo/solvers/latent.hpp>
#include <prilo/solvers/resolve.hpp>

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif

using namespace prilo;
using T = float;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> all_methods = {
    "er",           "hio",           "dpr",           "dpr-mii",           "prilo",
    "prilo-mii",    "prilo-rx",      "prilo-mii-rx",  "prilo-mii-resolve", "prilo-mii-rx-resolve",
    "prilo-chain",  "prilo-chain-mii", "prilo-chain-mii-resolve", "spectral", "wf", "taf"};
const std::vector<std::string> all_ablations = {"full", "init-only", "a-only", "a-b", "no-balls"};

struct Settings {
  std::string dataset = "mnist", op = "fourier", methods = "hio,dpr,prilo-mii,prilo-chain-mii,prilo-chain-mii-resolve", data_dir, config, weights, json_path, png_path;
  std::string split = "test";
  int measurements = 200, first = 0, count = 32, restarts = 4, threads = 0, png_count = 8;
  std::uint64_t seed = 0;
  bool quiet = false;
  std::string fftw_effort;  // empty: $PRILO_FFTW_EFFORT or measure
  std::string ablation = "full", trace_path;
  bool per_restart = false;
};

PhaseOptions<T> read_phase(const json& j, PhaseOptions<T> p) {
  for (auto& [k, v] : j.items()) {
    if (k == "steps") p.steps = v.get<int>();
    else if (k == "radius") p.radius = v.get<T>();
    else if (k == "learning_rate") p.learning_rate = v.get<T>();
    else if (k == "constrain") p.constrain = v.get<bool>();
    else if (k == "enabled") p.enabled = v.get<bool>();
    else if (k == "optimiser") {
      const auto o = v.get<std::string>();
      if (o == "adam") p.optimiser = Optimiser::adam;
      else if (o == "gradient-descent") p.optimiser = Optimiser::gradient_descent;
      else throw invalid_input("config: optimiser must be \"adam\" or \"gradient-descent\", got \"" + o + "\"");
    }
    else throw invalid_input("config: unknown phase option \"" + k + "\"");
  }
  if (p.steps < 0) throw invalid_input("config: steps must be >= 0");
  if (!(p.radius >= 0)) throw invalid_input("config: radius must be >= 0");
  if (!(p.learning_rate > 0)) throw invalid_input("config: learning_rate must be > 0");
  return p;
}

struct Config {
  NoiseOptions noise;
  MiiOptions mii;
  FienupOptions<T> er, hio;
  DprOptions<T> dpr;
  PriloOptions<T> prilo, prilo_chain;
  ResolveOptions resolve;
};

/// A "prilo" or "prilo_chain" section: the initial phase and the stages.
PriloOptions<T> read_prilo(const json& p, PriloReading reading) {
  PriloOptions<T> o;
  o.reading = reading;
  if (p.contains("initial")) o.initial = read_phase(p["initial"], o.initial);
  o.keep_best = p.value("keep_best", true);
  o.keep_best_range_extended = p.value("keep_best_range_extended", false);
  for (const auto& s : p.at("stages")) {
    PriloStage<T> st;
    st.layer = s.at("layer").get<int>();
    st.repetitions = s.value("repetitions", 1);
    if (st.repetitions < 0) throw invalid_input("config: repetitions must be >= 0");
    if (s.contains("forward")) st.forward = read_phase(s["forward"], st.forward);
    if (s.contains("back")) st.back = read_phase(s["back"], st.back);
    if (s.contains("refine")) st.refine = read_phase(s["refine"], st.refine);
    o.stages.push_back(st);
  }
  return o;
}

/// The paper's Table 3 rows, applied to a PRILO configuration: the initialisation alone (no
/// optimisation), forward phases only (A), A and B without refinement, or no l1 balls.
PriloOptions<T> ablate(PriloOptions<T> o, const std::string& ablation) {
  if (ablation == "init-only") {
    o.initial.enabled = false;
    o.stages.clear();
  } else if (ablation == "a-only") {
    for (auto& s : o.stages) s.back.enabled = s.refine.enabled = false;
  } else if (ablation == "a-b") {
    for (auto& s : o.stages) s.refine.enabled = false;
  } else if (ablation == "no-balls") {
    o.initial.constrain = false;
    for (auto& s : o.stages) s.forward.constrain = s.back.constrain = s.refine.constrain = false;
  }
  return o;
}

Config read_config(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw file_error(path.string() + ": cannot open the config file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw file_error(path.string() + ": not valid JSON: " + e.what());
  }
  Config c;
  try {
    if (j.contains("noise")) {
      c.noise.enabled = j["noise"].value("enabled", true);
      c.noise.eta = j["noise"].value("eta", 0.02);
      c.noise.gamma = j["noise"].value("gamma", 0.55);
    }
    if (j.contains("mii")) c.mii.candidates = j["mii"].value("candidates", 5000);
    if (j.contains("resolve")) {
      c.resolve.consistency_threshold = j["resolve"].value("consistency_threshold", 1e-4);
      c.resolve.placement_weight = j["resolve"].value("placement_weight", 0.0);
      if (!(c.resolve.placement_weight >= 0)) throw invalid_input("config: resolve.placement_weight must be >= 0");
    }
    if (j.contains("er")) c.er.iterations = j["er"].value("iterations", 1000);
    if (j.contains("hio")) {
      c.hio.iterations = j["hio"].value("iterations", 1000);
      c.hio.beta = j["hio"].value("beta", 0.9f);
      c.hio.final_er = j["hio"].value("final_er", 50);
    }
    c.er.final_er = 0;
    if (j.contains("dpr")) c.dpr.phase = read_phase(j["dpr"], c.dpr.phase);
    if (j.contains("prilo")) c.prilo = read_prilo(j["prilo"], PriloReading::back_project_refine);
    if (j.contains("prilo_chain")) c.prilo_chain = read_prilo(j["prilo_chain"], PriloReading::chained);
  } catch (const json::exception& e) {
    throw file_error(path.string() + ": bad config: " + e.what());
  }
  c.dpr.noise = c.noise;
  c.prilo.noise = c.noise;
  c.prilo_chain.noise = c.noise;
  return c;
}

/// One line when OpenBLAS runs slower kernels than this CPU allows, with the remedy; empty
/// otherwise. Debian's OpenBLAS 0.3.21 does not know newer CPUs (AMD Zen 5) and falls back
/// to its AVX2 Haswell kernels: about half the products' speed on AVX-512 hardware.
std::string blas_kernel_warning() {
#if defined(PRILO_BLAS_OPENBLAS) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const std::string core = openblas_get_corename();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  auto is = [&](const char* name) { return strcasecmp(core.c_str(), name) == 0; };
  if (avx512 && !is("SkylakeX") && !is("Cooperlake") && !is("SapphireRapids"))
    return "note: OpenBLAS runs its " + core +
           " kernels on this AVX-512 CPU; start the program with OPENBLAS_CORETYPE=SkylakeX (what "
           "scripts/openblas_env.sh sets) for about 1.9x faster products";
#endif
  return {};
}

/// Which kernels run Eigen's dense products (the build's PRILO_BLAS choice).
std::string products_backend() {
#if defined(PRILO_BLAS_OPENBLAS)
  return std::string("OpenBLAS, ") + openblas_get_corename() + " kernels";
#else
  return "Eigen";
#endif
}

/// One observed step of a solve (--trace; PSNR against the truth: analysis).
struct TracePoint {
  int step;
  std::string phase;
  char kind;
  double magnitude_error, psnr;
};

struct MethodResult {
  std::string name;
  Mat<T> x;
  Vec<T> magnitude_error;
  SolveResult<T> restarts;          ///< every restart (--per-restart), columns r·B + j
  std::vector<TracePoint> trace;    ///< --trace
  std::vector<PhaseRecord> phases;
  double seconds = 0;
};

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out.append(out.empty() ? "" : sep).append(p);
  return out;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

template <class Op>
std::vector<MethodResult> run_methods(const Op& op, const Mat<T>& y, const Mat<T>& truth, const nn::Vae<T>& vae,
                                      const Config& cfg, const std::vector<std::string>& methods, const Settings& st) {
  const auto& gen = vae.decoder();
  const Eigen::Index B = y.cols();
  const int R = st.restarts;
  const MagnitudeLoss<Op> loss(op, y);
  std::vector<MethodResult> out;
  std::map<std::string, SolveResult<T>> done;
  auto progress = [&](const std::string& m) -> ProgressFn {
    if (st.quiet) return {};
    return [m, last = std::chrono::steady_clock::now()](const Progress& p) mutable {
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last).count() < 2.0 && p.step != p.steps) return;
      last = now;
      std::fprintf(stderr, "  [%s] %-18s step %4d/%-4d mean loss %.5g\n", m.c_str(), p.stage.c_str(), p.step, p.steps,
                   p.mean_loss);
    };
  };
  // --trace: block 0's columns (all of them with --threads 1), every history_stride steps
  std::vector<TracePoint> trace;
  auto observer = [&]() -> ObserverFn<T> {
    if (st.trace_path.empty()) return {};
    return [&](const Snapshot<T>& s) {
      // over the finite columns only: a diverging column must not end the run here
      std::vector<Eigen::Index> cols;
      for (Eigen::Index j = 0; j < s.x.cols(); ++j)
        if (s.x.col(j).allFinite()) cols.push_back(j);
      Mat<T> xs(truth.rows(), Eigen::Index(cols.size())), ref(truth.rows(), Eigen::Index(cols.size()));
      double mag = 0;
      for (std::size_t k = 0; k < cols.size(); ++k) {
        xs.col(Eigen::Index(k)) = s.x.col(cols[k]);
        ref.col(Eigen::Index(k)) = truth.col(cols[k] % B);
        mag += double(s.loss(cols[k])) / double(cols.size());
      }
      const double psnr = cols.empty() ? std::nan("") : metrics::cap_psnr(metrics::psnr_batch(xs, ref)).mean();
      trace.push_back({s.global_step, s.phase.name, s.phase.kind, mag / double(op.output_size()), psnr});
    };
  };
  // every solver runs with restarts as columns on column blocks, one per thread
  // (prilo/pipeline.hpp); progress and the trace come from block 0 (this thread)
  const RestartOptions ro{.restarts = R, .keep_all = st.per_restart};
  SolveResult<T> all_restarts;
  auto kept = [&](RestartResult<T> rr) {
    all_restarts = std::move(rr.all);
    return std::move(rr.best);
  };
  auto prilo_options = [&](const std::string& m) {
    const bool chain = m.starts_with("prilo-chain");
    if (chain && cfg.prilo_chain.stages.empty()) throw invalid_input("method " + m + ": the config has no \"prilo_chain\" section");
    auto o = ablate(chain ? cfg.prilo_chain : cfg.prilo, st.ablation);
    o.progress = progress(m);
    o.observe = observer();
    return o;
  };
  // each method's random stream depends only on the seed and the method's name
  auto method_rng = [&](const std::string& name) {
    return Rng(st.seed * 1000003ull + std::hash<std::string>{}(name) % 1000003ull);
  };
  // the PRILO family: prilo[-chain][-mii][-rx]; `shown` names the progress lines
  auto is_prilo = [](const std::string& m) {
    return m == "prilo" || m == "prilo-mii" || m == "prilo-rx" || m == "prilo-mii-rx" || m == "prilo-chain" ||
           m == "prilo-chain-mii";
  };
  auto run_prilo = [&](const std::string& m, Rng& rng, const std::string& shown) {
    const LatentStart start = m.find("-mii") != std::string::npos ? LatentStart::mii : LatentStart::random;
    auto opt = prilo_options(m);
    opt.progress = progress(shown);
    // -rx: the output may be a range-extended image G_{i+1}^k(z_i*) of a forward phase
    if (m.ends_with("-rx")) opt.keep_best_range_extended = true;
    return kept(reconstruct_prilo(gen, op, y, start, cfg.mii, opt, rng, ro));
  };
  for (const auto& m : methods) {
    Rng rng = method_rng(m);
    trace.clear();
    all_restarts = {};
    const auto t0 = std::chrono::steady_clock::now();
    SolveResult<T> r;
    if (m == "er" || m == "hio") {
      if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
        auto opt = m == "er" ? cfg.er : cfg.hio;
        opt.progress = progress(m);
        r = kept(reconstruct_fienup(op, y, m == "hio", opt, rng, ro));
      } else {
        throw invalid_input("method " + m + " needs --operator fourier");
      }
    } else if (m == "dpr" || m == "dpr-mii") {
      auto opt = cfg.dpr;
      opt.progress = progress(m);
      opt.observe = observer();
      r = kept(reconstruct_dpr(gen, op, y, m == "dpr" ? LatentStart::random : LatentStart::mii, cfg.mii, opt, rng, ro));
    } else if (is_prilo(m)) {
      r = run_prilo(m, rng, m);
    } else if (m == "spectral" || m == "wf" || m == "taf") {
      if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
        throw invalid_input("method " + m + " needs a Gaussian --operator");
      } else {
        // no restarts: the starts are spectral; the image is real and nonnegative, so the
        // global sign (which the measurements cannot see) is the one with a positive sum,
        // and the output is clipped to [0, 1] like ER/HIO's object constraint
        if (m == "spectral") {
          r.x = spectral_init(op, y, SpectralOptions{}, rng);
        } else if (m == "wf") {
          r = wirtinger_flow(op, y, spectral_init(op, y, SpectralOptions{}, rng), WirtingerFlowOptions<T>{.progress = progress(m)});
        } else {
          r = truncated_amplitude_flow(op, y, orthogonality_init(op, y, OrthogonalityOptions{}, rng),
                                       AmplitudeFlowOptions<T>{.progress = progress(m)});
        }
        for (Eigen::Index j = 0; j < r.x.cols(); ++j)
          if (r.x.col(j).sum() < T(0)) r.x.col(j) *= T(-1);
        r.x = r.x.cwiseMax(T(0)).cwiseMin(T(1));
        r.magnitude_error = loss.value(r.x) / T(op.output_size());
      }
    } else if (m.ends_with("-resolve")) {
      if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
        const std::string base_name = m.substr(0, m.size() - std::string("-resolve").size());
        SolveResult<T> base = done.count(base_name) ? done[base_name] : SolveResult<T>{};
        if (!base.x.size()) {
          Rng base_rng = method_rng(base_name);  // the base row's starts: the same result as that row
          base = run_prilo(base_name, base_rng, m);
        }
        SolveResult<T> hio = done.count("hio") ? done["hio"] : SolveResult<T>{};
        if (!hio.x.size()) {
          auto opt = cfg.hio;
          opt.progress = progress(m);
          Rng hio_rng = method_rng("hio");  // the hio row's starts
          hio = reconstruct_fienup(op, y, true, opt, hio_rng, ro).best;
        }
        r = resolve(vae, op, y, {&base.x, &hio.x}, cfg.resolve);
        all_restarts = {};  // resolve picks among transforms, not restarts
      } else {
        throw invalid_input("method " + m + " needs --operator fourier");
      }
    } else {
      throw invalid_input("unknown method \"" + m + "\"");
    }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    done[m] = r;
    out.push_back({m, r.x, r.magnitude_error, st.per_restart ? std::move(all_restarts) : SolveResult<T>{}, std::move(trace),
                   r.phases, sec});
  }
  return out;
}

/// Fails before any work when an output file could not be written at the end: its folder must
/// exist and be writable, and the path must not be a folder.
void check_output_path(const std::string& path, const char* option) {
  if (path.empty()) return;
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  const std::string what = std::string(option) + " " + path + ": ";
  if (!fs::is_directory(dir, ec)) throw file_error(what + "the folder " + dir.string() + " does not exist");
  if (fs::is_directory(p, ec)) throw file_error(what + "is a folder, not a file");
  if (::access(dir.c_str(), W_OK) != 0) throw file_error(what + "the folder " + dir.string() + " is not writable");
}

json summary_json(const metrics::Summary& s) { return {{"mean", s.mean}, {"ci95", s.ci95}, {"median", s.median}}; }

}  // namespace

int main(int argc, char** argv) {
  Settings st;
  st.data_dir = io::default_data_dir();
  CLI::App app{"prilo-reconstruct: phase retrieval with generative priors (PRILO and baselines) on MNIST / Fashion-MNIST"};
  app.add_option("--dataset", st.dataset, "mnist or fashion-mnist")->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  app.add_option("--operator", st.op, "fourier (28x28 DFT, no oversampling), gaussian-real, gaussian-complex")
      ->check(CLI::IsMember({"fourier", "gaussian-real", "gaussian-complex"}));
  app.add_option("--measurements", st.measurements, "m, the number of Gaussian measurements")->check(CLI::PositiveNumber);
  app.add_option("--methods", st.methods, std::string("Comma-separated: ").append(join(all_methods, ",")));
  app.add_option("--split", st.split, "Images from the test split (reporting) or the train split (tuning)")
      ->check(CLI::IsMember({"test", "train"}));
  app.add_option("--first", st.first, "First image index")->check(CLI::NonNegativeNumber);
  app.add_option("--count", st.count, "Number of images")->check(CLI::PositiveNumber);
  app.add_option("--restarts", st.restarts, "Random restarts per image (lowest magnitude error kept)")->check(CLI::PositiveNumber);
  app.add_option("--seed", st.seed, "Seed of every random choice");
  app.add_option("--config", st.config, "JSON hyperparameter file (default configs/<dataset>.json)");
  app.add_option("--weights", st.weights, "VAE weights (default models/vae-<dataset>.prw)");
  app.add_option("--data-dir", st.data_dir, "Folder holding mnist/ and fashion-mnist/ (default $PRILO_DATA or ./data)");
  app.add_option("--json", st.json_path, "Write per-method summaries and per-image values to this JSON file");
  app.add_option("--png", st.png_path, "Write a PNG grid: ground truth, measurements, each method");
  app.add_option("--png-count", st.png_count, "Images shown in the PNG grid")->check(CLI::PositiveNumber);
  app.add_option("--threads", st.threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("--quiet", st.quiet, "No progress output");
  app.add_option("--fftw-effort", st.fftw_effort,
                 "FFTW planner: measure (default), estimate (bit-reproducible runs), patient (faster transforms, slower start); "
                 "default $PRILO_FFTW_EFFORT or measure")
      ->check(CLI::IsMember({"estimate", "measure", "patient"}));
  app.add_option("--ablation", st.ablation,
                 "PRILO phases (the paper's Table 3): full, init-only (no optimisation), a-only (no B, C), a-b (no C), "
                 "no-balls (no l1 constraints)")
      ->check(CLI::IsMember(all_ablations));
  app.add_option("--trace", st.trace_path,
                 "Write per-method mean magnitude error and PSNR (analysis) every 10 steps, per phase, to this JSON file "
                 "(block 0's columns: all of them with --threads 1)");
  app.add_flag("--per-restart", st.per_restart, "Also write every restart's magnitude error and PSNR to --json");
  CLI11_PARSE(app, argc, argv);

  try {
    if (st.threads > 0) cpu::set_threads(st.threads);
    if (!st.fftw_effort.empty()) fftw::set_planner_effort(fftw::parse_effort(st.fftw_effort));
    const fftw::Effort effort = fftw::planner_effort();  // a bad $PRILO_FFTW_EFFORT fails here, clearly
    const fs::path src = PRILO_SOURCE_DIR;
    auto locate = [&](const std::string& given, const std::string& rel) {
      if (!given.empty()) return fs::path(given);
      if (fs::exists(rel)) return fs::path(rel);
      return src / rel;
    };
    const fs::path config_path = locate(st.config, "configs/" + st.dataset + ".json");
    const fs::path weights_path = locate(st.weights, "models/vae-" + st.dataset + ".prw");
    const auto methods = split_list(st.methods);
    if (methods.empty()) throw invalid_input("--methods: no method given");
    for (const auto& m : methods)
      if (std::find(all_methods.begin(), all_methods.end(), m) == all_methods.end())
        throw invalid_input("--methods: unknown method \"" + m + "\" (known: " + join(all_methods, ", ") + ")");
    const Config cfg = read_config(config_path);
    // outputs are checked before any solving: a bad path must not cost the whole run
    check_output_path(st.json_path, "--json");
    check_output_path(st.png_path, "--png");
    check_output_path(st.trace_path, "--trace");
    const std::size_t available = st.split == "test" ? 10000 : 60000;
    if (std::size_t(st.first) + std::size_t(st.count) > available)
      throw invalid_input("--first/--count: images " + std::to_string(st.first) + ".." + std::to_string(st.first + st.count - 1) +
                          " are outside the " + st.split + " split (" + std::to_string(available) + " images)");
    auto data = io::load_dataset<T>(st.data_dir, st.dataset, st.split, st.first, st.count);
    auto vae = nn::load_vae<T>(weights_path);
    if (vae.data_dim() != Eigen::Index(data.rows * data.cols))
      throw invalid_input("weights " + weights_path.string() + " are for images of " + std::to_string(vae.data_dim()) + " pixels");
    const int h = int(data.rows), w = int(data.cols);
    const Mat<T>& x = data.images;
    std::printf("prilo-reconstruct: backend %s (%d threads), %s %s images %d..%d, operator %s%s, %d restarts, seed %llu\n",
                cpu::name, cpu::threads(), st.dataset.c_str(), st.split.c_str(), st.first, st.first + st.count - 1,
                st.op.c_str(), st.op == "fourier" ? "" : (" m=" + std::to_string(st.measurements)).c_str(), st.restarts,
                (unsigned long long)st.seed);
    if (st.ablation != "full") std::printf("  ablation: %s (PRILO methods)\n", st.ablation.c_str());
    std::printf("  config %s, weights %s, products: %s, FFTW planner: %s\n", config_path.string().c_str(),
                weights_path.string().c_str(), products_backend().c_str(), fftw::effort_name(effort));
    if (const std::string w = blas_kernel_warning(); !w.empty()) std::printf("  %s\n", w.c_str());
    std::fflush(stdout);

    std::vector<MethodResult> results;
    Mat<T> y;
    if (st.op == "fourier") {
      Fourier2d<T> op(h, w);
      y = measure(op, x);
      results = run_methods(op, y, x, vae, cfg, methods, st);
    } else if (st.op == "gaussian-real") {
      GaussianReal<T> op(st.measurements, h * w, st.seed + 7);
      y = measure(op, x);
      results = run_methods(op, y, x, vae, cfg, methods, st);
    } else {
      GaussianComplex<T> op(st.measurements, h * w, st.seed + 7);
      y = measure(op, x);
      results = run_methods(op, y, x, vae, cfg, methods, st);
    }

    json report = {{"dataset", st.dataset}, {"split", st.split}, {"operator", st.op}, {"first", st.first},
                   {"count", st.count}, {"restarts", st.restarts}, {"seed", st.seed}, {"backend", cpu::name},
                   {"threads", cpu::threads()}, {"ablation", st.ablation}, {"methods", json::object()}};
    if (st.op != "fourier") report["measurements"] = st.measurements;
    std::printf("\n%-22s %17s %17s %12s %9s | analysis (aligned to truth): %8s %8s\n", "method", "PSNR dB (95% CI)",
                "SSIM (95% CI)", "mag. error", "seconds", "PSNR", "SSIM");
    for (const auto& r : results) {
      const Vec<double> ps = metrics::psnr_batch(r.x, x);
      const Vec<double> ss = metrics::ssim_batch(r.x, x, h, w);
      Vec<double> pa(x.cols()), sa(x.cols());
      const bool align = st.op == "fourier";
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        if (align) {
          auto a = metrics::align_to_reference(Vec<T>(r.x.col(j)), Vec<T>(x.col(j)), h, w);
          pa(j) = a.psnr;
          sa(j) = metrics::ssim(a.aligned, x.col(j), h, w);
        }
      }
      const auto sp = metrics::summary(metrics::cap_psnr(ps)), sss = metrics::summary(ss);
      const auto sm = metrics::summary(r.magnitude_error.cast<double>());
      std::printf("%-22s %8.2f ± %6.2f %8.4f ± %6.4f %12.4g %9.1f |", r.name.c_str(), sp.mean, sp.ci95, sss.mean,
                  sss.ci95, sm.mean, r.seconds);
      json mj = {{"psnr", summary_json(sp)}, {"ssim", summary_json(sss)}, {"magnitude_error", summary_json(sm)},
                 {"seconds", r.seconds}, {"psnr_per_image", std::vector<double>(ps.data(), ps.data() + ps.size())},
                 {"ssim_per_image", std::vector<double>(ss.data(), ss.data() + ss.size())},
                 {"magnitude_error_per_image", std::vector<double>(r.magnitude_error.data(), r.magnitude_error.data() + r.magnitude_error.size())}};
      if (align) {
        const Vec<double> capped_pa = metrics::cap_psnr(pa);
        const auto spa = metrics::summary(capped_pa), ssa = metrics::summary(sa);
        std::printf(" %8.2f %8.4f\n", spa.mean, ssa.mean);
        mj["analysis_aligned"] = {{"psnr", summary_json(spa)}, {"ssim", summary_json(ssa)},
                                  {"psnr_per_image", std::vector<double>(capped_pa.data(), capped_pa.data() + capped_pa.size())}};
      } else {
        std::printf(" %8s %8s\n", "-", "-");
      }
      if (r.restarts.x.size()) {
        const Eigen::Index B = x.cols();
        Mat<T> xt = detail::tile_columns(x, st.restarts);
        const Vec<double> pr = metrics::cap_psnr(metrics::psnr_batch(r.restarts.x, xt));
        json me = json::array(), pp = json::array();
        for (Eigen::Index j = 0; j < B; ++j) {
          std::vector<double> a, b;
          for (int q = 0; q < st.restarts; ++q) {
            a.push_back(r.restarts.magnitude_error(q * B + j));
            b.push_back(pr(q * B + j));
          }
          me.push_back(a);
          pp.push_back(b);
        }
        mj["per_restart"] = {{"magnitude_error", me}, {"psnr", pp}};
      }
      if (!r.phases.empty()) {
        json ph = json::array();
        for (const auto& p : r.phases)
          ph.push_back({{"name", p.name}, {"kind", std::string(1, p.kind)}, {"layer", p.layer}, {"steps", p.steps}});
        mj["phases"] = ph;
      }
      const Eigen::Index n30 = (ps.array() >= 30.0).count();
      mj["fraction_psnr_ge_30"] = double(n30) / double(ps.size());
      report["methods"][r.name] = mj;
    }
    std::printf("(PSNR capped at 100 dB for exact recoveries; aligned columns use the ground truth: analysis only)\n");
    if (!st.trace_path.empty()) {
      json tj = {{"note", "mean over block 0's columns (image x restart) every 10 steps; PSNR uses the ground truth: analysis"},
                 {"methods", json::object()}};
      for (const auto& r : results) {
        json pts = json::array();
        for (const auto& p : r.trace)
          pts.push_back({{"step", p.step}, {"phase", p.phase}, {"kind", std::string(1, p.kind)},
                         {"magnitude_error", p.magnitude_error}, {"psnr", p.psnr}});
        tj["methods"][r.name] = pts;
      }
      std::ofstream o(st.trace_path);
      if (!o) throw file_error(st.trace_path + ": cannot write");
      o << tj.dump() << "\n";
      std::printf("wrote %s\n", st.trace_path.c_str());
    }
    if (!st.json_path.empty()) {
      std::ofstream o(st.json_path);
      if (!o) throw file_error(st.json_path + ": cannot write");
      o << report.dump(1) << "\n";
      std::printf("wrote %s\n", st.json_path.c_str());
    }
    if (!st.png_path.empty()) {
      const Eigen::Index k = std::min<Eigen::Index>(st.png_count, x.cols());
      Mat<T> grid(h * w, k * Eigen::Index(2 + results.size()));
      Eigen::Index c = 0;
      for (Eigen::Index j = 0; j < k; ++j) grid.col(c++) = x.col(j);
      // measurements shown as centred log-magnitudes (Fourier) or raw (Gaussian, when m = n)
      for (Eigen::Index j = 0; j < k; ++j) {
        Vec<T> v = Vec<T>::Zero(h * w);
        if (st.op == "fourier") {
          for (int r = 0; r < h; ++r)
            for (int q = 0; q < w; ++q) v(((r + h / 2) % h) * w + (q + w / 2) % w) = std::log1p(y(r * w + q, j));
        } else {
          for (Eigen::Index i = 0; i < std::min<Eigen::Index>(y.rows(), h * w); ++i) v(i) = y(i, j);
        }
        if (v.maxCoeff() > 0) v /= v.maxCoeff();
        grid.col(c++) = v;
      }
      for (const auto& r : results)
        for (Eigen::Index j = 0; j < k; ++j) grid.col(c++) = r.x.col(j).cwiseMax(T(0)).cwiseMin(T(1));
      io::write_png_grid(st.png_path, grid, h, w, 2 + results.size(), k, io::PngGridOptions{.padding = 2, .scale = 3});
      std::printf("wrote %s (rows: truth, |Fx| (log, centred), then", st.png_path.c_str());
      for (const auto& r : results) std::printf(" %s", r.name.c_str());
      std::printf(")\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prilo-reconstruct: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

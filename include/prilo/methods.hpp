// The paper's method and its baselines by name, as one library call: initialisation (random,
// MII or LI), the solver with restarts as columns, keep-best, -rx and -resolve; and the metrics
// that prilo-reconstruct prints. JSON configs: prilo/io/config.hpp.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "concepts/vae.hpp"
#include "metrics/metrics.hpp"
#include "nn/parameter.hpp"
#include "operators/fourier.hpp"
#include "parallel.hpp"
#include "pipeline.hpp"
#include "solvers/consensus.hpp"
#include "solvers/gaussian_baselines.hpp"

namespace prilo {

// ---------------------------------------------------------------------------------------------
// Method names

/// The solver a method runs.
enum class MethodFamily { er, hio, dpr, prilo, spectral, wirtinger_flow, amplitude_flow };

/// The measurement operators a method works with: ER, HIO and -resolve need the DFT
/// (Fourier2d), the classical Gaussian baselines need an operator other than the DFT.
enum class OperatorKind { any, fourier, gaussian };

/// The methods that run_method knows, in the order prilo-reconstruct --help lists them.
inline const std::vector<std::string>& method_names() {
  // clang-format off
  static const std::vector<std::string> names = {
      "er", "hio", "dpr", "dpr-mii", "dpr-li",
      "prilo", "prilo-mii", "prilo-li", "prilo-rx", "prilo-mii-rx", "prilo-mii-resolve", "prilo-mii-rx-resolve",
      "prilo-li-resolve", "prilo-chain", "prilo-chain-mii", "prilo-chain-li", "prilo-chain-mii-resolve",
      "prilo-chain-li-resolve",
      "dpr-mii-avg", "dpr-li-avg", "prilo-mii-avg", "prilo-li-avg", "prilo-chain-mii-avg", "prilo-chain-li-avg",
      "prilo-chain-mii-avg-resolve", "prilo-chain-li-avg-resolve",
      "prilo-chain-mii-avg-resolve-polish", "prilo-chain-li-avg-resolve-polish",
      "spectral", "wf", "taf"};
  // clang-format on
  return names;
}

namespace detail {
inline std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) out.append(out.empty() ? "" : sep).append(p);
  return out;
}
}  // namespace detail

/// A method, parsed from its name: <family>[-chain][-mii|-li][-rx][-avg][-resolve][-polish].
///   er, hio          Fienup's error reduction and hybrid input-output (Fourier only)
///   dpr              DPR (Hand et al.)
///   prilo            PRILO, the A/B/C reading (ReconstructionConfig::prilo)
///   prilo-chain      PRILO, the chained reading (ReconstructionConfig::prilo_chain)
///   spectral, wf, taf  spectral start, Wirtinger flow, truncated amplitude flow (Gaussian only)
///   -mii             magnitude-informed initialisation instead of random latent starts
///   -li              the learned initialisation: starts from a trained encoder's E(y)
///                    (MethodOptions::li; prilo-train-li trains it, docs/li.md)
///   -rx              the output may be a range-extended image of a forward phase
///   -avg             the consensus of the restarts instead of the lowest-error one: their
///                    weighted mean, each aligned to that one (prilo/solvers/consensus.hpp)
///   -resolve         the shift/reflection of the base method's and HIO's solutions that the
///                    VAE finds most plausible (Fourier only)
///   -polish          the method's PRILO reading run again from the encodings of those images
///                    (PolishOptions: restarts, without the initial z0 phase), and the
///                    weighted mean of its restarts' consensus and the images it started from
struct MethodSpec {
  std::string name;
  MethodFamily family = MethodFamily::prilo;
  LatentStart start = LatentStart::random;                   ///< -mii: LatentStart::mii, -li: LatentStart::li
  PriloReading reading = PriloReading::back_project_refine;  ///< prilo-chain: chained
  bool range_extended = false;                               ///< -rx
  bool average = false;                                      ///< -avg
  bool resolve = false;                                      ///< -resolve
  bool polish = false;                                       ///< -polish

  /// The method whose images -polish starts from: the name without "-polish".
  std::string polished() const {
    return polish ? name.substr(0, name.size() - std::string_view("-polish").size()) : name;
  }
  /// The method whose solutions -resolve combines with HIO's: the name without "-resolve"
  /// (and "-polish").
  std::string base() const {
    const std::string p = polished();
    return resolve ? p.substr(0, p.size() - std::string_view("-resolve").size()) : p;
  }
  /// The method whose restarts -avg averages: the name without "-avg" (and "-resolve").
  std::string averaged() const {
    const std::string b = base();
    return average ? b.substr(0, b.size() - std::string_view("-avg").size()) : b;
  }

  OperatorKind operator_kind() const {
    if (resolve || family == MethodFamily::er || family == MethodFamily::hio) return OperatorKind::fourier;
    if (family == MethodFamily::spectral || family == MethodFamily::wirtinger_flow ||
        family == MethodFamily::amplitude_flow)
      return OperatorKind::gaussian;
    return OperatorKind::any;
  }
};

/// The method of that name (one of method_names()); invalid_input naming the known ones otherwise.
inline MethodSpec parse_method(std::string_view name) {
  const auto& known = method_names();
  if (std::find(known.begin(), known.end(), name) == known.end())
    throw invalid_input("unknown method \"" + std::string(name) + "\" (known: " + detail::join(known, ", ") + ")");
  MethodSpec m{.name = std::string(name)};
  std::string_view rest = name;
  auto take_suffix = [&](std::string_view s) {
    if (!rest.ends_with(s)) return false;
    rest.remove_suffix(s.size());
    return true;
  };
  m.polish = take_suffix("-polish");
  m.resolve = take_suffix("-resolve");
  m.average = take_suffix("-avg");
  m.range_extended = take_suffix("-rx");
  if (take_suffix("-mii"))
    m.start = LatentStart::mii;
  else if (take_suffix("-li"))
    m.start = LatentStart::li;
  if (take_suffix("-chain")) m.reading = PriloReading::chained;
  static const std::map<std::string_view, MethodFamily> families = {{"er", MethodFamily::er},
                                                                    {"hio", MethodFamily::hio},
                                                                    {"dpr", MethodFamily::dpr},
                                                                    {"prilo", MethodFamily::prilo},
                                                                    {"spectral", MethodFamily::spectral},
                                                                    {"wf", MethodFamily::wirtinger_flow},
                                                                    {"taf", MethodFamily::amplitude_flow}};
  m.family = families.at(rest);
  return m;
}

/// The methods of a comma-separated list ("hio,dpr,prilo-mii"; empty items are skipped, a
/// method listed twice is an error);
/// `what` prefixes the error messages (e.g. "--methods").
inline std::vector<MethodSpec> parse_methods(std::string_view list, std::string_view what = "methods") {
  std::vector<MethodSpec> out;
  for (std::size_t begin = 0; begin <= list.size();) {
    const std::size_t end = std::min(list.find(',', begin), list.size());
    if (end > begin) {
      try {
        out.push_back(parse_method(list.substr(begin, end - begin)));
      } catch (const invalid_input& e) {
        throw invalid_input(std::string(what) + ": " + e.what());
      }
      // a method listed twice would run twice, and the reports (keyed by name) keep one
      for (std::size_t k = 0; k + 1 < out.size(); ++k)
        if (out[k].name == out.back().name)
          throw invalid_input(std::string(what) + ": method " + out.back().name + " is listed twice");
    }
    begin = end + 1;
  }
  if (out.empty()) throw invalid_input(std::string(what) + ": no method given");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ablations (the paper's Table 3)

/// PRILO's phases, switched off by the rows of the paper's Table 3: the initialisation alone
/// (no optimisation), forward phases only (A), A and B without refinement, or no l1 balls.
enum class Ablation { full, init_only, a_only, a_b, no_balls };

inline const std::vector<std::string>& ablation_names() {
  static const std::vector<std::string> names = {"full", "init-only", "a-only", "a-b", "no-balls"};
  return names;
}

inline std::string ablation_name(Ablation a) {
  return ablation_names()[std::size_t(a)];
}

inline Ablation parse_ablation(std::string_view name) {
  const auto& known = ablation_names();
  const auto it = std::find(known.begin(), known.end(), name);
  if (it == known.end())
    throw invalid_input("unknown ablation \"" + std::string(name) + "\" (known: " + detail::join(known, ", ") + ")");
  return Ablation(it - known.begin());
}

/// The PRILO configuration with the ablation's phases or constraints switched off.
template <class T>
PriloOptions<T> ablate(PriloOptions<T> o, Ablation ablation) {
  switch (ablation) {
    case Ablation::full: break;
    case Ablation::init_only:
      o.initial.enabled = false;
      o.stages.clear();
      break;
    case Ablation::a_only:
      for (auto& s : o.stages) s.back.enabled = s.refine.enabled = false;
      break;
    case Ablation::a_b:
      for (auto& s : o.stages) s.refine.enabled = false;
      break;
    case Ablation::no_balls:
      o.initial.constrain = false;
      for (auto& s : o.stages) s.forward.constrain = s.back.constrain = s.refine.constrain = false;
      break;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Configuration, options and results

/// -polish: how many restarts of the method's PRILO reading start from the encoder means μ(x)
/// of the images x given (restart 0 at μ(x) itself, the others at μ(x) + σ·ε), and σ. The
/// result is weight · x + (1 − weight) · c, c the consensus of the restarts (-avg's rule,
/// ReconstructionConfig::consensus). Chosen on training images (docs/tuning.md; config
/// "polish": {"restarts", "sigma", "weight", "align_to_given"}). check_method refuses
/// restarts < 1, σ outside [0, max_start_sigma] (or NaN), and a weight outside [0, 1] before
/// any solving.
struct PolishOptions {
  int restarts = 4;
  double sigma = 0.05;
  double weight = 0.5;  ///< 1: the images given, unchanged (nothing is solved)
  /// Align each restart to the given image (the placement -resolve chose) before the consensus,
  /// rather than to the lowest-error restart (DFT only).
  bool align_to_given = false;
};

/// Every solver's options: what configs/<dataset>.json holds (prilo::io::load_reconstruction_config
/// reads it). The defaults are the single solvers' defaults, not the paper's tuned values; the
/// PRILO sections have no stages until set. progress/observe members are set by run_method.
template <class T>
struct ReconstructionConfig {
  MiiOptions mii{};
  FienupOptions<T> er = [] {  // ER has no final ER phase
    FienupOptions<T> o;
    o.final_er = 0;
    return o;
  }();
  FienupOptions<T> hio{};
  DprOptions<T> dpr{};
  PriloOptions<T> prilo{};            ///< prilo[-mii][-rx]
  PriloOptions<T> prilo_chain = [] {  ///< prilo-chain[-mii]
    PriloOptions<T> o;
    o.reading = PriloReading::chained;
    return o;
  }();
  ResolveOptions resolve{};
  /// -resolve's judges (config "resolve": {"judges"}; io::load_reconstruction_config reads a
  /// relative file from the config file's folder; io::ResolveJudges loads them).
  std::vector<JudgeFile> resolve_judges{};
  ConsensusOptions consensus{};  ///< -avg (config "consensus": {"power"})
  PolishOptions polish{};        ///< -polish (config "polish": {"restarts", "sigma", "weight"})
  /// LI's perturbation of restarts 1 … R−1 (the paper's σ = 0.05; config "li": {"sigma"}).
  double li_sigma = 0.05;
  SpectralOptions spectral{};
  OrthogonalityOptions orthogonality{};  ///< taf's start
  WirtingerFlowOptions<T> wf{};
  AmplitudeFlowOptions<T> taf{};

  /// The gradient noise of every latent solver (DPR and both PRILO readings).
  void set_noise(const NoiseOptions& noise) { dpr.noise = prilo.noise = prilo_chain.noise = noise; }

  /// The PRILO options that a method runs (the reading's section, with the ablation applied);
  /// invalid_input when that section has no stages: the method would run its initial phase
  /// alone (DPR's) and report it as PRILO (Ablation::init_only is how to ask for that; stages
  /// of 0 repetitions stay legal, e.g. for -polish's consensus of the starts).
  PriloOptions<T> prilo_options(const MethodSpec& m, Ablation ablation = Ablation::full) const {
    const bool chain = m.reading == PriloReading::chained;
    const PriloOptions<T>& section = chain ? prilo_chain : prilo;
    const char* key = chain ? "prilo_chain" : "prilo";
    if (section.stages.empty())
      throw invalid_input("method " + m.name + ": the config has no \"" + key + "\" section, or its \"stages\" are []");
    PriloOptions<T> o = ablate(section, ablation);
    if (m.range_extended) o.keep_best_range_extended = true;
    return o;
  }
};

/// One observed step of a latent solve (MethodOptions::trace_reference): the mean magnitude
/// error ‖|Ax| − y‖²/m and the mean (capped) PSNR against the reference, over the finite
/// columns the observer saw.
struct TracePoint {
  int step = 0;
  std::string phase;
  char kind = 'I';
  double magnitude_error = 0, psnr = 0;
};

/// How run_method and reconstruct run a method.
template <class T>
struct MethodOptions {
  /// Restarts per image as columns, column blocks (one per thread), and keep_all for
  /// MethodResult::all. Each restart starts from its own random or MII latent (or uniform
  /// image for ER/HIO); the lowest magnitude error is kept per image.
  RestartOptions restart{};
  Ablation ablation = Ablation::full;  ///< PRILO methods only
  /// Each method's random stream depends only on the seed and the method's name (method_rng):
  /// a method gives the same result whichever methods run with it.
  std::uint64_t seed = 0;
  /// Called with the method's name while it runs (block 0 only, on the calling thread).
  std::function<void(const std::string& method, const Progress&)> progress = {};
  /// Analysis only: when set (n×B, the true images), MethodResult::trace receives a TracePoint
  /// every history_stride steps of the latent solvers (block 0's columns). The methods never
  /// see it.
  const Mat<T>* trace_reference = nullptr;
  /// Where the columns are solved: this process (default) or its part of a distributed run
  /// (mpi::any_run; restart.blocks.blocks must then be fixed). Results are the same.
  AnyRun<T> run{};
  /// The encoder of the -li methods (trained on the same operator: checked), which must
  /// outlive the run; the -li methods fail without one.
  const LiEncoder<T>* li = nullptr;
  /// The learned placement scorer of the -resolve methods (ResolveOptions::scorer_weight > 0 in
  /// the config; prilo-train-placement trains it), which must outlive the run.
  const PlacementScorer<T>* placement_scorer = nullptr;
  /// Other models' opinions on -resolve's candidates (PlacementJudge, e.g. elbo_judge of another
  /// VAE; io::ResolveJudges loads those a config names), whose models must outlive the run.
  std::vector<PlacementJudge<T>> judges{};
  /// This run's own stop request (prilo/interrupt.hpp: a std::stop_source's token), passed to
  /// every solver it runs; the process-wide request_stop() stops every run. reconstruct treats
  /// both alike (its `unfinished` list).
  std::stop_token stop{};
};

/// What a method returned.
template <class T>
struct MethodResult {
  std::string method{};
  SolveResult<T> best{};  ///< per image (B columns): x, magnitude_error, chosen_restart, phases, ...
  /// Every restart (B·R columns, restart r of image j in column r·B + j) with
  /// MethodOptions::restart.keep_all; empty for -resolve (it picks among transforms, not
  /// restarts), for -avg and -polish (a consensus of the restarts, a mean) and for the Gaussian
  /// baselines (no restarts).
  SolveResult<T> all{};
  std::vector<TracePoint> trace{};  ///< with MethodOptions::trace_reference
  double seconds = 0;               ///< wall-clock time of the method
  /// The products and FFTs the method ran (prilo/flops.hpp), every restart and its starts
  /// included; a -resolve method counts the runs it made itself. Not counted (0): the
  /// Gaussian baselines.
  Flops flops{};
};

/// The solutions -resolve combines and the restarts -avg averages, when already computed (e.g.
/// the rows of the base method and of hio); run_method computes those not given, with their
/// own methods' streams.
template <class T>
struct ResolveInputs {
  const Mat<T>* base = nullptr;              ///< -resolve: the base method's images (n×B)
  const Mat<T>* hio = nullptr;               ///< -resolve: HIO's images (n×B)
  const SolveResult<T>* restarts = nullptr;  ///< -avg: every restart of MethodSpec::averaged()
  const Mat<T>* polished = nullptr;          ///< -polish: the images of MethodSpec::polished() (n×B)
};

/// The random stream of the method `name` under `seed`.
inline Rng method_rng(std::uint64_t seed, const std::string& name) {
  return Rng(seed * 1000003ull + std::hash<std::string>{}(name) % 1000003ull);
}

/// invalid_input unless the method can run on Op with this config (before any solving): the
/// operator kind, and the values of every config section the method reads (ER's or HIO's
/// settings, also -resolve's HIO; DPR's or the PRILO reading's phases and noise), which the
/// solvers would otherwise refuse only when reached, after the work before them.
template <MeasurementOperator Op, class T>
void check_method(const MethodSpec& m, const ReconstructionConfig<T>& cfg) {
  constexpr bool fourier = std::is_same_v<Op, Fourier2d<T>>;
  if (m.operator_kind() == OperatorKind::fourier && !fourier)
    throw invalid_input("method " + m.name + " needs the Fourier operator (Fourier2d)");
  if (m.operator_kind() == OperatorKind::gaussian && fourier)
    throw invalid_input("method " + m.name + " needs a Gaussian operator, not Fourier2d");
  // (its own messages name the method)
  const PriloOptions<T> prilo =
      m.family == MethodFamily::prilo ? cfg.prilo_options(parse_method(m.base())) : PriloOptions<T>{};
  try {  // the methods run the paper's policies: l1 balls
    if (m.family == MethodFamily::er) detail::check_fienup_options(cfg.er, false);
    if (m.family == MethodFamily::hio || m.resolve) detail::check_fienup_options(cfg.hio, true);
    if (m.family == MethodFamily::dpr) {
      detail::check_phase_options(cfg.dpr.phase, "dpr", "z0", true);
      detail::check_noise_options(cfg.dpr.noise, "dpr");
    }
    if (m.family == MethodFamily::prilo) detail::check_prilo_phases(prilo, true);
  } catch (const invalid_input& e) {
    throw invalid_input("method " + m.name + ": " + e.what());
  }
  static_assert(max_start_sigma == 100, "the messages below name the bound");
  if (m.start == LatentStart::li && !(cfg.li_sigma >= 0 && cfg.li_sigma <= max_start_sigma))
    throw invalid_input("method " + m.name + ": li.sigma must be in [0, 100] (max_start_sigma)");
  if (m.polish) {
    const PolishOptions& po = cfg.polish;
    if (po.restarts < 1) throw invalid_input("method " + m.name + ": polish.restarts must be >= 1");
    if (!(po.sigma >= 0 && po.sigma <= max_start_sigma))
      throw invalid_input("method " + m.name + ": polish.sigma must be in [0, 100] (max_start_sigma)");
    if (!(po.weight >= 0 && po.weight <= 1))
      throw invalid_input("method " + m.name + ": polish.weight must be in [0, 1]");
  }
}

namespace detail {
/// Whether a VAE gives its encoder's mean (encode(x).first), which -polish starts from. (A
/// named concept: nvcc's front end evaluates requires-expressions inside lambdas wrongly.)
template <class V, class T>
concept has_encode = requires(const V& v, const Mat<T>& x) {
  v.encode(x).first;
};
}  // namespace detail

/// invalid_input unless a -li method has an encoder (MethodOptions::li) trained on op through
/// the decoder of vae (LiEncoder::check_decoder), and unless the model of a -polish method has
/// an encoder mean (detail::has_encode); a no-op for the other methods.
template <MeasurementOperator Op, VaeModel V, class T>
void check_li(const MethodSpec& m, const Op& op, const V& vae, const LiEncoder<T>* li) {
  if constexpr (!detail::has_encode<V, T>)
    if (m.polish)
      throw invalid_input("method " + m.name +
                          ": -polish needs the model's encoder mean (a member encode(x) returning {mu, log var})");
  if (m.start != LatentStart::li) return;
  if (!li)
    throw invalid_input("method " + m.name +
                        " needs a learned-initialisation encoder (MethodOptions::li; prilo-reconstruct --li-weights, "
                        "trained by prilo-train-li)");
  li->check_operator(op, "method " + m.name + ": the LI encoder");
  li->check_decoder(vae, "method " + m.name + ": the LI encoder");
}

/// invalid_input unless a PRILO method's stages (its reading's section of the config, with the
/// ablation applied) split vae's decoder at its intermediate layers in an order the solve can
/// run (check_prilo_stages), and a PRILO or DPR method's per-tensor radii are one per tensor of
/// the decoder's state where each phase optimises (check_prilo_radii); a no-op for the other
/// methods. reconstruct() checks this before any
/// solving; a program that wants the config's file named calls it itself after loading its model.
template <VaeModel V, class T>
void check_stages(const MethodSpec& m, const ReconstructionConfig<T>& cfg, const V& vae,
                  Ablation ablation = Ablation::full) {
  if (m.family == MethodFamily::dpr) {
    try {
      detail::check_phase_radii(vae.decoder(), 0, cfg.dpr.phase, "dpr", "z0");
    } catch (const invalid_input& e) {
      throw invalid_input("method " + m.name + ": the config's dpr section for this decoder: " + e.what());
    }
  }
  if (m.family != MethodFamily::prilo) return;
  const PriloOptions<T> o = cfg.prilo_options(m, ablation);
  try {
    check_prilo_stages(o, int(vae.decoder().depth()));
    check_prilo_radii(o, vae.decoder());
  } catch (const invalid_input& e) {
    throw invalid_input("method " + m.name + ": the config's " +
                        (m.reading == PriloReading::chained ? "prilo_chain" : "prilo") + ".stages for this decoder (" +
                        std::to_string(vae.decoder().depth()) + " layers): " + e.what());
  }
}

/// invalid_input for a -resolve method whose config names judges (ReconstructionConfig::
/// resolve_judges) that were not loaded into MethodOptions::judges: it would run without them
/// and give other figures than the config was chosen with. A no-op for the other methods.
template <class T>
void check_judges(const MethodSpec& m, const ReconstructionConfig<T>& cfg, const MethodOptions<T>& opt) {
  if (!m.resolve || cfg.resolve_judges.empty() || !opt.judges.empty()) return;
  throw invalid_input("method " + m.name + ": the config names " + std::to_string(cfg.resolve_judges.size()) +
                      " judge(s) for -resolve (resolve.judges, e.g. " + cfg.resolve_judges.front().model.string() +
                      ") and MethodOptions::judges is empty: load them with io::ResolveJudges (prilo/io/models.hpp) "
                      "and set opt.judges = judges.judges(), or clear ReconstructionConfig::resolve_judges");
}

/// invalid_input for a -resolve method whose config weighs the learned placement scorer
/// (resolve.scorer_weight > 0) when MethodOptions::placement_scorer is missing, has no network
/// or reads images of another size than the operator's: resolve_ambiguity would refuse it only
/// after the base method and HIO have run. A no-op for the other methods.
template <MeasurementOperator Op, class T>
void check_scorer(const MethodSpec& m, const Op& op, const ReconstructionConfig<T>& cfg, const MethodOptions<T>& opt) {
  const double w = cfg.resolve.scorer_weight;
  if (!m.resolve || !(w > 0)) return;
  const PlacementScorer<T>* scorer = opt.placement_scorer;
  if (!scorer)
    detail::fail("method ", m.name, ": the config's resolve.scorer_weight is ", w,
                 " and MethodOptions::placement_scorer is null: load a scorer (load_placement_scorer; "
                 "prilo-reconstruct --placement-weights) or set resolve.scorer_weight to 0");
  if (!scorer->has_network())
    detail::fail("method ", m.name, ": the config's resolve.scorer_weight is ", w,
                 " and the placement scorer was made by its default constructor (no network)");
  if (scorer->spec().image_size() != op.input_size())
    detail::fail("method ", m.name, ": the placement scorer reads images of ", scorer->spec().image_size(),
                 " pixels, the operator's have ", op.input_size());
}

namespace detail {
/// A trace observer over the finite columns (a diverging column must not end the run).
template <MeasurementOperator Op, class T>
ObserverFn<T> trace_observer(const Op& op, const Mat<T>* reference, Eigen::Index B, std::vector<TracePoint>& trace) {
  if (!reference) return {};
  return [&op, reference, B, &trace](const Snapshot<T>& s) {
    std::vector<Eigen::Index> cols;
    for (Eigen::Index j = 0; j < s.x.cols(); ++j)
      if (s.x.col(j).allFinite()) cols.push_back(j);
    const Eigen::Index n = reference->rows(), k = Eigen::Index(cols.size());
    Mat<T> xs(n, k), ref(n, k);
    double mag = 0;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      xs.col(Eigen::Index(i)) = s.x.col(cols[i]);
      ref.col(Eigen::Index(i)) = reference->col(cols[i] % B);
      mag += double(s.loss(cols[i])) / double(cols.size());
    }
    const double psnr = cols.empty() ? std::nan("") : metrics::cap_psnr(metrics::psnr_batch(xs, ref)).mean();
    trace.push_back({s.global_step, s.phase.name, s.phase.kind, mag / double(op.output_size()), psnr});
  };
}

/// spectral, wf or taf: one run from the spectral (or orthogonality-promoting) start; the image
/// is real and nonnegative, so the global sign (which the measurements cannot see) is the one
/// with a positive sum, and the output is clipped to [0, 1] like ER/HIO's object constraint.
template <MeasurementOperator Op, class T>
SolveResult<T> gaussian_baseline(const MethodSpec& m, const Op& op, const Mat<T>& y, const ReconstructionConfig<T>& cfg,
                                 std::uint64_t seed, const ProgressFn& progress, const std::stop_token& stop) {
  Rng rng = method_rng(seed, m.name);
  SolveResult<T> r;
  auto spectral = cfg.spectral;
  spectral.stop = stop;
  if (m.family == MethodFamily::spectral) {
    r.x = spectral_init(op, y, spectral, rng);
  } else if (m.family == MethodFamily::wirtinger_flow) {
    auto o = cfg.wf;
    o.progress = progress;
    o.stop = stop;
    r = wirtinger_flow(op, y, spectral_init(op, y, spectral, rng), o);
  } else {
    auto o = cfg.taf;
    o.progress = progress;
    o.stop = stop;
    auto orthogonality = cfg.orthogonality;
    orthogonality.stop = stop;
    r = truncated_amplitude_flow(op, y, orthogonality_init(op, y, orthogonality, rng), o);
  }
  for (Eigen::Index j = 0; j < r.x.cols(); ++j)
    if (r.x.col(j).sum() < T(0)) r.x.col(j) *= T(-1);
  r.x = r.x.cwiseMax(T(0)).cwiseMin(T(1));
  r.magnitude_error = MagnitudeLoss<Op>(op, y).value(r.x) / T(op.output_size());
  return r;
}
}  // namespace detail

/// Where run_method and reconstruct run the latent methods (DPR, PRILO and their MII starts):
/// a placement makes, from the host decoder and operator, the parts the solvers run on, and
/// the solvers follow those parts' executor. OnHost (the default) uses them as they are (the
/// decoder's weights packed in a copy where the build has oneDNN);
/// gpu::OnDevice (prilo/backend/cuda/placement.cuh) uploads them to the GPU. ER/HIO, the
/// Gaussian baselines and -resolve's scoring run on the host either way; inputs and results are
/// host matrices.
struct OnHost {
  static constexpr const char* name = "cpu";
  /// The decoder itself, or, where the build can pack weights (oneDNN: nn::PacksWeights<G>),
  /// a copy with its weights packed once for the solvers' thousands of products.
  template <class G>
  decltype(auto) generator(const G& g) const {
    if constexpr (nn::PacksWeights<G>) {
      G packed = g;
      packed.pack_weights();
      return packed;
    } else {
      return (g);
    }
  }
  template <class Op>
  const Op& op(const Op& o) const {
    return o;
  }
};

namespace detail {
/// Every check of a method against its inputs that reconstruct() and run_method() make before
/// any solving: the operator and config (check_method), the LI encoder (check_li), the judges
/// (check_judges), the placement scorer (check_scorer), the stages (check_stages) and the trace reference's shape.
template <MeasurementOperator Op, VaeModel V, class T>
void check_method_run(const MethodSpec& m, const V& vae, const Op& op, const Mat<T>& y,
                      const ReconstructionConfig<T>& cfg, const MethodOptions<T>& opt) {
  check_method<Op>(m, cfg);
  check_li(m, op, vae, opt.li);
  check_judges(m, cfg, opt);
  check_scorer(m, op, cfg, opt);
  check_stages(m, cfg, vae, opt.ablation);
  if (opt.trace_reference)
    require_shape(*opt.trace_reference, op.input_size(), y.cols(),
                  "MethodOptions::trace_reference (one image per measurement column)");
}

/// Whether a placement can make the parts of the latent methods from decoder G and operator Op.
template <class P, class G, class Op>
concept can_place = requires(const P& p, const G& g, const Op& op) {
  p.generator(g);
  p.op(op);
};
}  // namespace detail

/// Runs one method on the B images measured as y = |A x| (one column each) with the VAE's
/// decoder as the prior (and the whole VAE for -resolve). Latent methods: random or MII starts,
/// MethodOptions::restart.restarts restarts per image as columns on column blocks, the lowest
/// magnitude error kept per image (prilo/pipeline.hpp). -resolve: the base method's and HIO's
/// solutions (from `inputs`, else computed with their own streams) go through resolve().
/// -polish: the images of the method it names (from `inputs`, else computed) are the starts
/// of its restarts (ReconstructionConfig::polish).
/// The Gaussian baselines run once from their spectral starts; their global sign is the one
/// with a positive sum and their images are clipped to [0, 1] (the object constraint of ER/HIO).
template <class Placement, MeasurementOperator Op, VaeModel V, class T = typename Op::scalar>
MethodResult<T> run_method(const Placement& place, const MethodSpec& m, const V& vae, const Op& op, const Mat<T>& y,
                           const ReconstructionConfig<T>& cfg, const MethodOptions<T>& opt = {},
                           ResolveInputs<T> inputs = {}) {
  static_assert(std::is_same_v<typename V::scalar, T>, "run_method: the model and the operator have other scalars");
  const FlushDenormals flush;  // the calling thread's share of the work (prilo/parallel.hpp)
  detail::check_method_run(m, vae, op, y, cfg, opt);
  const auto t0 = std::chrono::steady_clock::now();
  MethodResult<T> out{.method = m.name};
  auto progress = [&]() -> ProgressFn {
    if (!opt.progress) return {};
    return [cb = opt.progress, name = m.name](const Progress& p) { cb(name, p); };
  };
  auto keep = [&](RestartResult<T> r, SolveResult<T>* all) {
    if (all) *all = std::move(r.all);
    return std::move(r.best);
  };
  // one run of a latent method or of ER/HIO; `all` receives every restart
  auto run_base = [&](const MethodSpec& b, SolveResult<T>* all) -> SolveResult<T> {
    Rng rng = method_rng(opt.seed, b.name);
    RestartOptions restart = opt.restart;
    restart.keep_all = all != nullptr;
    if (b.family == MethodFamily::dpr || b.family == MethodFamily::prilo) {
      if constexpr (detail::can_place<Placement, std::decay_t<decltype(vae.decoder())>, Op>) {
        decltype(auto) gen = place.generator(vae.decoder());  // the host decoder, or its upload
        decltype(auto) lop = place.op(op);
        const LearnedStart<T> li{.encoder = opt.li, .sigma = cfg.li_sigma};
        if (b.family == MethodFamily::dpr) {
          auto o = cfg.dpr;
          o.progress = progress();
          o.stop = opt.stop;
          o.observe = detail::trace_observer(op, opt.trace_reference, y.cols(), out.trace);
          if (b.start == LatentStart::li) return keep(reconstruct_dpr(gen, lop, y, li, o, rng, restart, opt.run), all);
          return keep(reconstruct_dpr(gen, lop, y, b.start, cfg.mii, o, rng, restart, opt.run), all);
        }
        auto o = cfg.prilo_options(b, opt.ablation);
        o.progress = progress();
        o.stop = opt.stop;
        o.observe = detail::trace_observer(op, opt.trace_reference, y.cols(), out.trace);
        if (b.start == LatentStart::li) return keep(reconstruct_prilo(gen, lop, y, li, o, rng, restart, opt.run), all);
        return keep(reconstruct_prilo(gen, lop, y, b.start, cfg.mii, o, rng, restart, opt.run), all);

      } else {
        throw invalid_input("method " + b.name + ": the placement '" + std::string(Placement::name) +
                            "' cannot run this model's decoder or operator (the CUDA backend has device forms of the "
                            "dense, convolution and style modules and of the DFT and Gaussian operators only)");
      }
    }
    if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
      auto o = b.family == MethodFamily::er ? cfg.er : cfg.hio;
      o.progress = progress();
      o.stop = opt.stop;
      return keep(reconstruct_fienup(op, y, b.family == MethodFamily::hio, o, rng, restart, opt.run), all);
    }
    throw invalid_input("method " + b.name + ": not a restart method");
  };
  // the consensus of restarts (B·R columns), aligned where the operator has the DFT's ambiguity
  auto consensus_of = [&](const SolveResult<T>& restarts, const Mat<T>* reference = nullptr) {
    ConsensusOptions co = cfg.consensus;
    int h = 0, w = 0;
    if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
      h = op.height();
      w = op.width();
    } else {
      co.align = false;  // no shift/reflection ambiguity to undo
    }
    return consensus(make_magnitude_loss(op, y), restarts, y.cols(), h, w, co, reference);
  };
  // a latent method, or the consensus of its restarts (-avg: from `given`, else run here)
  auto solve = [&](const MethodSpec& b, SolveResult<T>* all, const SolveResult<T>* given) -> SolveResult<T> {
    if (!b.average) return run_base(b, all);
    SolveResult<T> ran;
    if (!given) (void)run_base(parse_method(b.averaged()), &ran);
    const SolveResult<T>& restarts = given ? *given : ran;
    SolveResult<T> c = consensus_of(restarts);
    c.flops += ran.flops;  // the restarts run here (none when given)
    c.phases = restarts.phases;
    return c;
  };

  // -polish: the method's PRILO reading again from the encodings μ(x) of the given images x,
  // without its initial z0 phase; the result is the weighted mean of its restarts' consensus and x
  auto polish = [&](const Mat<T>& x0) -> SolveResult<T> {
    using Decoder = std::decay_t<decltype(vae.decoder())>;
    if constexpr (!detail::has_encode<V, T>) {
      throw invalid_input("method " + m.name +
                          ": -polish needs the model's encoder mean (a member encode(x) returning {mu, log var})");
    } else if constexpr (!detail::can_place<Placement, Decoder, Op>) {
      throw invalid_input("method " + m.name + ": the placement '" + std::string(Placement::name) +
                          "' cannot run this model's decoder or operator");
    } else {
      const PolishOptions& po = cfg.polish;  // its values were checked by check_method
      const Eigen::Index B = y.cols(), n = op.input_size();
      require_shape(x0, n, B, "-polish images");
      require_finite(x0, "-polish images");
      const auto loss = make_magnitude_loss(op, y);
      if (po.weight == 1) {  // the images given, unchanged: nothing to solve
        SolveResult<T> res;
        res.x = x0;
        res.magnitude_error = loss.value(res.x) / T(op.output_size());
        res.chosen_restart.assign(std::size_t(B), -1);
        res.flops = double(B) * loss_flops(loss, false);
        return res;
      }
      Rng rng = method_rng(opt.seed, m.name);
      const Mat<T> mu = vae.encode(x0).first;
      Mat<T> z0(mu.rows(), B * po.restarts);
      for (int r = 0; r < po.restarts; ++r) {
        z0.middleCols(r * B, B) = mu;
        if (r > 0) z0.middleCols(r * B, B) += rng.normal_matrix<T>(mu.rows(), B, po.sigma);
      }
      decltype(auto) gen = place.generator(vae.decoder());
      decltype(auto) lop = place.op(op);
      PriloOptions<T> o = cfg.prilo_options(m, opt.ablation);
      o.initial.enabled = false;
      o.progress = progress();
      o.stop = opt.stop;
      o.observe = detail::trace_observer(op, opt.trace_reference, y.cols(), out.trace);
      RestartOptions ro = opt.restart;
      ro.restarts = po.restarts;
      ro.keep_all = true;
      RestartResult<T> rr = solve_restarts(
          lop, y, z0, o, rng, ro,
          [&](const auto& l, auto s, Rng& g, const PriloOptions<T>& oo) {
            return prilo_solve(gen, l, std::move(s), oo, g);
          },
          opt.run);
      // the consensus of the restarts (as -avg's), then its weighted mean with x
      SolveResult<T> res = consensus_of(rr.all, po.align_to_given ? &x0 : nullptr);
      res.x = T(po.weight) * x0 + T(1 - po.weight) * res.x;
      res.magnitude_error = loss.value(res.x) / T(op.output_size());
      res.chosen_restart.assign(std::size_t(B), -1);  // a mean, not one restart
      res.phases = std::move(rr.all.phases);
      // the restarts, the encodings, the mean with x (3·n FLOP per image) and two losses
      res.flops += rr.all.flops +
                   Flops{double(B) * forward_flops(vae.encoder(), 0, vae.encoder().depth()) + 3.0 * double(B * n), 0} +
                   double(B) * loss_flops(loss, false);
      return res;
    }
  };

  if (m.polish) {
    MethodResult<T> given;  // the images polished: the earlier run's, else run here
    if (!inputs.polished) given = run_method(place, parse_method(m.polished()), vae, op, y, cfg, opt, inputs);
    out.trace = std::move(given.trace);  // the run made here (empty when given), then the polish runs'
    out.best = polish(inputs.polished ? *inputs.polished : given.best.x);
    out.flops = given.flops;  // the run made here (none when given)
  } else if (m.resolve) {
    if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
      SolveResult<T> base, hio;
      if (!inputs.base) base = solve(parse_method(m.base()), nullptr, inputs.restarts);
      if (!inputs.hio) hio = run_base(parse_method("hio"), nullptr);
      // the -li methods' anchor: the LI start G(E(y)); the other methods have none
      ResolveOptions ro = cfg.resolve;
      ro.stop = opt.stop;
      Mat<T> anchor;
      Flops anchor_flops{};
      if (m.start == LatentStart::li && ro.anchor_weight > 0) {
        anchor = li_anchor(vae.decoder(), y, LearnedStart<T>{.encoder = opt.li, .sigma = cfg.li_sigma});
        anchor_flops.products =
            double(y.cols()) * (opt.li->flops_per_column() + forward_flops(vae.decoder(), 0, vae.decoder().depth()));
      } else {
        ro.anchor_weight = 0;
      }
      out.best = resolve(vae, op, y, {inputs.base ? inputs.base : &base.x, inputs.hio ? inputs.hio : &hio.x}, ro,
                         opt.run, anchor.size() > 0 ? &anchor : nullptr, opt.placement_scorer, opt.judges);
      out.flops = base.flops + hio.flops + anchor_flops;  // the runs made here (none when given)
    }
  } else if (m.operator_kind() == OperatorKind::gaussian) {
    if constexpr (!std::is_same_v<Op, Fourier2d<T>>)
      out.best = detail::gaussian_baseline(m, op, y, cfg, opt.seed, progress(), opt.stop);
  } else {
    out.best = solve(m, opt.restart.keep_all && !m.average ? &out.all : nullptr, inputs.restarts);
  }
  out.flops += out.best.flops;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}
/// run_method on the host parts as given (OnHost).
template <MeasurementOperator Op, VaeModel V, class T = typename Op::scalar>
MethodResult<T> run_method(const MethodSpec& m, const V& vae, const Op& op, const Mat<T>& y,
                           const ReconstructionConfig<T>& cfg, const MethodOptions<T>& opt = {},
                           ResolveInputs<T> inputs = {}) {
  return run_method(OnHost{}, m, vae, op, y, cfg, opt, inputs);
}

/// Runs the methods in order (each checked against Op and the config before any solving) and
/// returns their results in that order. A -resolve method reuses the results of its base
/// method and of hio when they ran before it in the list, an -avg method (or -avg-resolve) the
/// restarts of the method it averages (the same computation: each method's stream depends
/// only on the seed and its name).
///
/// With `unfinished`, a stop request (MethodOptions::stop's, or the process-wide
/// prilo::request_stop, e.g. from SIGINT with install_interrupt_handler) ends the run early: the methods that finished
/// are returned and the names of the others stored there. Without it, prilo::interrupted propagates.
template <class Placement, MeasurementOperator Op, VaeModel V, class T = typename Op::scalar>
std::vector<MethodResult<T>> reconstruct(const Placement& place, const std::vector<MethodSpec>& methods, const V& vae,
                                         const Op& op, const Mat<T>& y, const ReconstructionConfig<T>& cfg,
                                         const MethodOptions<T>& opt = {},
                                         std::vector<std::string>* unfinished = nullptr) {
  for (const auto& m : methods) detail::check_method_run(m, vae, op, y, cfg, opt);
  std::vector<MethodResult<T>> out;
  out.reserve(methods.size());
  auto earlier = [&](const std::string& name) -> const Mat<T>* {
    for (const auto& r : out)
      if (r.method == name) return &r.best.x;
    return nullptr;
  };
  auto earlier_restarts = [&](const std::string& name) -> const SolveResult<T>* {
    for (const auto& r : out)
      if (r.method == name && r.all.x.size()) return &r.all;
    return nullptr;
  };
  std::vector<bool> kept_for_average(methods.size(), false);  // restarts kept only for a later -avg
  for (std::size_t k = 0; k < methods.size(); ++k) {
    const MethodSpec& m = methods[k];
    ResolveInputs<T> inputs;
    if (m.resolve) inputs = {earlier(m.base()), earlier("hio")};
    if (m.average) inputs.restarts = earlier_restarts(m.averaged());
    if (m.polish) inputs.polished = earlier(m.polished());
    MethodOptions<T> o = opt;
    for (std::size_t j = k + 1; j < methods.size() && !o.restart.keep_all; ++j)
      if (methods[j].average && methods[j].averaged() == m.name) kept_for_average[k] = o.restart.keep_all = true;
    try {
      out.push_back(run_method(place, m, vae, op, y, cfg, o, inputs));
    } catch (const interrupted&) {
      if (!unfinished) throw;
      for (std::size_t r = k; r < methods.size(); ++r) unfinished->push_back(methods[r].name);
      break;
    }
  }
  for (std::size_t k = 0; k < out.size(); ++k)
    if (kept_for_average[k]) out[k].all = {};
  return out;
}
/// reconstruct on the host parts as given (OnHost).
template <MeasurementOperator Op, VaeModel V, class T = typename Op::scalar>
std::vector<MethodResult<T>> reconstruct(const std::vector<MethodSpec>& methods, const V& vae, const Op& op,
                                         const Mat<T>& y, const ReconstructionConfig<T>& cfg,
                                         const MethodOptions<T>& opt = {},
                                         std::vector<std::string>* unfinished = nullptr) {
  return reconstruct(OnHost{}, methods, vae, op, y, cfg, opt, unfinished);
}

// ---------------------------------------------------------------------------------------------
// Evaluation against the true images (what prilo-reconstruct prints and writes)

/// PSNR and SSIM (data range 1) after the best circular shift/reflection against the truth:
/// analysis only, for the DFT whose magnitudes cannot tell them apart.
struct AlignedMetrics {
  metrics::Summary psnr{}, ssim{};
  Vec<double> psnr_per_image{};  ///< capped at metrics::psnr_cap_db
  Vec<double> ssim_per_image{};
};

struct MethodMetrics {
  metrics::Summary psnr;  ///< over the capped values
  metrics::Summary ssim, magnitude_error;
  Vec<double> psnr_per_image;  ///< not capped (+inf for exact recoveries)
  Vec<double> ssim_per_image, magnitude_error_per_image;
  double fraction_psnr_ge_30 = 0;
  std::optional<AlignedMetrics> aligned;  ///< with align
  /// With every restart (MethodResult::all): B×R magnitude errors and capped PSNRs.
  Mat<double> restart_magnitude_error, restart_psnr;
};

/// The metrics of a result against the true images (n×B, h·w = n); `align` adds AlignedMetrics.
template <class T>
MethodMetrics evaluate_method(const MethodResult<T>& r, const Mat<T>& truth, Eigen::Index h, Eigen::Index w,
                              bool align) {
  const Mat<T>& x = r.best.x;
  const Eigen::Index B = truth.cols();
  MethodMetrics e;
  e.psnr_per_image = metrics::psnr_batch(x, truth);
  e.ssim_per_image = metrics::ssim_batch(x, truth, h, w);
  e.magnitude_error_per_image = r.best.magnitude_error.template cast<double>();
  e.psnr = metrics::summary(metrics::cap_psnr(e.psnr_per_image));
  e.ssim = metrics::summary(e.ssim_per_image);
  e.magnitude_error = metrics::summary(e.magnitude_error_per_image);
  e.fraction_psnr_ge_30 = double((e.psnr_per_image.array() >= 30.0).count()) / double(B);
  if (align) {
    Vec<double> pa(B), sa(B);
    for (Eigen::Index j = 0; j < B; ++j) {
      auto a = metrics::align_to_reference(Vec<T>(x.col(j)), Vec<T>(truth.col(j)), h, w);
      pa(j) = a.psnr;
      sa(j) = metrics::ssim(a.aligned, truth.col(j), h, w);
    }
    AlignedMetrics am{.psnr_per_image = metrics::cap_psnr(pa), .ssim_per_image = sa};
    am.psnr = metrics::summary(am.psnr_per_image);
    am.ssim = metrics::summary(am.ssim_per_image);
    e.aligned = std::move(am);
  }
  if (r.all.x.size()) {
    const Eigen::Index R = r.all.x.cols() / B;
    const Vec<double> pr = metrics::cap_psnr(metrics::psnr_batch(r.all.x, detail::tile_columns(truth, int(R))));
    e.restart_magnitude_error.resize(B, R);
    e.restart_psnr.resize(B, R);
    for (Eigen::Index j = 0; j < B; ++j)
      for (Eigen::Index q = 0; q < R; ++q) {
        e.restart_magnitude_error(j, q) = double(r.all.magnitude_error(q * B + j));
        e.restart_psnr(j, q) = pr(q * B + j);
      }
  }
  return e;
}

/// The images of a comparison figure as columns, row by row (io::write_png_grid with
/// 2 + results.size() rows of `count` images): the truth, the measurements (Fourier: centred
/// log-magnitudes, |F x| of an h×w image; otherwise the first h·w values), each method's
/// images clipped to [0, 1]. Every measurement image is scaled to a maximum of 1.
template <class T>
Mat<T> comparison_grid(const Mat<T>& truth, const Mat<T>& y, const std::vector<MethodResult<T>>& results, int h, int w,
                       Eigen::Index count, bool fourier) {
  const Eigen::Index k = std::min<Eigen::Index>(count, truth.cols());
  if (h < 1 || w < 1) detail::fail("comparison_grid: image sides must be >= 1, got ", h, "x", w);
  require_shape(truth, Eigen::Index(h) * w, truth.cols(), "comparison_grid truth (h*w values an image)");
  if (y.cols() < k) detail::fail("comparison_grid: ", k, " images shown, y has ", y.cols(), " columns");
  if (fourier) require_shape(y, Eigen::Index(h) * w, y.cols(), "comparison_grid Fourier magnitudes y");
  for (const auto& r : results)
    if (r.best.x.rows() != Eigen::Index(h) * w || r.best.x.cols() < k)
      detail::fail("comparison_grid: method ", r.method, " has ", r.best.x.rows(), "x", r.best.x.cols(),
                   " images, expected ", Eigen::Index(h) * w, " rows and at least ", k, " columns");
  Mat<T> grid(Eigen::Index(h) * w, k * Eigen::Index(2 + results.size()));
  Eigen::Index c = 0;
  for (Eigen::Index j = 0; j < k; ++j) grid.col(c++) = truth.col(j);
  for (Eigen::Index j = 0; j < k; ++j) {
    Vec<T> v = Vec<T>::Zero(Eigen::Index(h) * w);
    if (fourier) {
      for (int r = 0; r < h; ++r)
        for (int q = 0; q < w; ++q) v(((r + h / 2) % h) * w + (q + w / 2) % w) = std::log1p(y(r * w + q, j));
    } else {
      for (Eigen::Index i = 0; i < std::min<Eigen::Index>(y.rows(), Eigen::Index(h) * w); ++i) v(i) = y(i, j);
    }
    if (v.maxCoeff() > 0) v /= v.maxCoeff();
    grid.col(c++) = v;
  }
  for (const auto& r : results)
    for (Eigen::Index j = 0; j < k; ++j) grid.col(c++) = r.best.x.col(j).cwiseMax(T(0)).cwiseMin(T(1));
  return grid;
}

}  // namespace prilo

// The paper's method as a library call (prilo/methods.hpp, prilo/io/config.hpp): method names,
// the JSON configs, run_method / reconstruct on real MNIST images, and -resolve's guarantee.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <prilo/io/config.hpp>
#include <prilo/io/models.hpp>
#include <prilo/methods.hpp>
#include <prilo/prilo.hpp>
#include <string>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_methods {

using namespace prilo;
using test_support::data_dir;
using test_support::error_of;
using T = float;
namespace fs = std::filesystem;

namespace {

fs::path write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::path(PRILO_TEST_TMPDIR) / name;
  std::ofstream(p) << text;
  return p;
}

/// Whether column j of `out` is exactly a circular shift or point reflection of column j of `in`.
bool is_transform_of(const Mat<T>& out, const Mat<T>& in, Eigen::Index j, int h, int w) {
  const Vec<T> base = in.col(j);
  for (int refl = 0; refl < 2; ++refl)
    for (int dy = 0; dy < h; ++dy)
      for (int dx = 0; dx < w; ++dx)
        if (metrics::apply_shift_reflect(base, h, w, dy, dx, refl == 1) == out.col(j)) return true;
  return false;
}

/// A config of tiny step counts for quick runs.
ReconstructionConfig<T> quick_config() {
  auto c = io::reconstruction_config_from_json<T>(nlohmann::json::parse(R"({
    "hio": {"iterations": 40, "final_er": 10}, "dpr": {"steps": 15, "learning_rate": 0.1}, "mii": {"candidates": 64},
    "prilo": {"initial": {"steps": 10}, "stages": [{"layer": 2, "forward": {"steps": 10}, "back": {"steps": 10},
                                                   "refine": {"steps": 10}}]},
    "prilo_chain": {"initial": {"steps": 10}, "stages": [{"layer": 1, "forward": {"steps": 10}},
                                                         {"layer": 2, "repetitions": 2, "forward": {"steps": 10}}]},
    "resolve": {"consistency_threshold": 1e-6, "placement_weight": 10}})"));
  c.prilo.history_stride = c.prilo_chain.history_stride = c.dpr.history_stride = 5;
  return c;
}

/// The first two MNIST test images, the shipped MLP VAE, the 28×28 DFT and its magnitudes:
/// the set-up of the run_method / reconstruct cases. With `estimate_plans`, FFTW plans with
/// FFTW_ESTIMATE (the same plans every time, for bit-for-bit reuse checks) until the fixture
/// goes, which restores the effort it found.
struct TwoMnistImages {
  explicit TwoMnistImages(bool estimate_plans = true) : saved(set_effort(estimate_plans)) {}
  ~TwoMnistImages() { fftw::set_planner_effort(saved); }
  TwoMnistImages(const TwoMnistImages&) = delete;
  TwoMnistImages& operator=(const TwoMnistImages&) = delete;

  fftw::Effort saved;  // first: the effort is set before F plans anything
  io::Dataset<T> data = io::load_dataset<T>(data_dir(), "mnist", "test", 0, 2);
  nn::Vae<T> vae = nn::load_vae<T>(std::string(PRILO_SOURCE_DIR) + "/models/vae-mnist.prw");
  Fourier2d<T> F{28, 28};
  Mat<T> y = measure(F, data.images);

 private:
  static fftw::Effort set_effort(bool estimate) {
    const fftw::Effort e = fftw::planner_effort();
    if (estimate) fftw::set_planner_effort(fftw::Effort::estimate);
    return e;
  }
};
}  // namespace

TEST_CASE("methods: every known name parses into its parts, and unknown names are refused with the known ones") {
  for (const auto& name : method_names()) CHECK(parse_method(name).name == name);
  const MethodSpec m = parse_method("prilo-chain-mii-resolve");
  CHECK(m.family == MethodFamily::prilo);
  CHECK(m.reading == PriloReading::chained);
  CHECK(m.start == LatentStart::mii);
  CHECK(m.resolve);
  CHECK(!m.range_extended);
  CHECK(m.base() == "prilo-chain-mii");
  CHECK(m.operator_kind() == OperatorKind::fourier);
  const MethodSpec li = parse_method("prilo-chain-li-resolve");  // -resolve over the LI runs
  CHECK((li.resolve && li.start == LatentStart::li && li.reading == PriloReading::chained));
  CHECK(li.base() == "prilo-chain-li");
  CHECK(parse_method("prilo-li-resolve").base() == "prilo-li");
  const MethodSpec avg = parse_method("prilo-chain-li-avg-resolve");  // -resolve over the consensus
  CHECK((avg.average && avg.resolve && avg.start == LatentStart::li && avg.reading == PriloReading::chained));
  CHECK(avg.base() == "prilo-chain-li-avg");
  CHECK(avg.averaged() == "prilo-chain-li");
  CHECK(parse_method("dpr-mii-avg").averaged() == "dpr-mii");
  CHECK(parse_method("dpr-mii-avg").operator_kind() == OperatorKind::any);
  CHECK(!parse_method("prilo-chain-li-resolve").average);
  const MethodSpec rx = parse_method("prilo-mii-rx");
  CHECK((rx.range_extended && rx.start == LatentStart::mii && rx.reading == PriloReading::back_project_refine));
  CHECK(rx.operator_kind() == OperatorKind::any);
  const MethodSpec polish = parse_method("prilo-chain-li-avg-resolve-polish");  // -polish over -avg-resolve
  CHECK((polish.polish && polish.resolve && polish.average && polish.start == LatentStart::li));
  CHECK(polish.polished() == "prilo-chain-li-avg-resolve");
  CHECK(polish.base() == "prilo-chain-li-avg");
  CHECK(polish.averaged() == "prilo-chain-li");
  CHECK(polish.operator_kind() == OperatorKind::fourier);
  CHECK(!avg.polish);
  CHECK(avg.polished() == avg.name);
  CHECK(parse_method("dpr").start == LatentStart::random);
  CHECK(parse_method("hio").family == MethodFamily::hio);
  CHECK(parse_method("wf").family == MethodFamily::wirtinger_flow);
  CHECK(parse_method("taf").operator_kind() == OperatorKind::gaussian);

  for (const char* bad : {"foo", "prilo-resolve", "hio-mii", "PRILO", "", "prilo-mii "}) {
    const std::string e = error_of([&] { (void)parse_method(bad); });
    CHECK_MESSAGE(e.find("unknown method \"" + std::string(bad) + "\"") != std::string::npos, e);
    CHECK(e.find("prilo-chain-mii-resolve") != std::string::npos);  // the known names are listed
  }
  CHECK_THROWS_AS((void)parse_method("foo"), invalid_input);

  const auto list = parse_methods("hio,,prilo-mii,");
  REQUIRE(list.size() == 2);
  CHECK(list[1].name == "prilo-mii");
  CHECK(error_of([] { (void)parse_methods("hio,foo", "--methods"); }).starts_with("--methods: unknown method \"foo\""));
  CHECK(error_of([] { (void)parse_methods(",", "--methods"); }) == "--methods: no method given");
  // a method listed twice would run twice and leave one entry in the reports
  CHECK(error_of([] { (void)parse_methods("hio,dpr,hio", "--methods"); }) == "--methods: method hio is listed twice");
}

TEST_CASE("methods: ablations by name switch off the paper's Table 3 phases") {
  for (const auto& name : ablation_names()) CHECK(ablation_name(parse_ablation(name)) == name);
  CHECK_THROWS_WITH_AS((void)parse_ablation("half"),
                       "unknown ablation \"half\" (known: full, init-only, a-only, a-b, no-balls)", invalid_input);
  PriloOptions<T> o;
  o.stages = {PriloStage<T>{.layer = 1}, PriloStage<T>{.layer = 2}};
  const auto a = ablate(o, Ablation::a_only);
  for (const auto& s : a.stages) CHECK((s.forward.enabled && !s.back.enabled && !s.refine.enabled));
  const auto init = ablate(o, Ablation::init_only);
  CHECK((init.stages.empty() && !init.initial.enabled));
  const auto nb = ablate(o, Ablation::no_balls);
  CHECK((!nb.initial.constrain && !nb.stages[1].forward.constrain && nb.stages[1].forward.enabled));
}

TEST_CASE("config: the shipped configs load into every solver's options") {
  const auto c = io::load_reconstruction_config<T>(fs::path(PRILO_SOURCE_DIR) / "configs/mnist.json");
  CHECK(c.dpr.phase.steps == 1000);
  CHECK(c.dpr.phase.learning_rate == doctest::Approx(0.3));
  CHECK(c.mii.candidates == 5000);
  CHECK(c.hio.iterations == 1000);
  CHECK(c.hio.final_er == 50);
  CHECK(c.er.final_er == 0);
  CHECK(c.resolve.placement_weight == 10);
  CHECK(c.resolve.consistency_threshold == doctest::Approx(1e-6));
  CHECK(c.resolve.temperature == 0);  // MNIST keeps the lowest-scoring candidate
  for (const char* f : {"fashion-mnist.json", "fashion-mnist-conv.json", "fashion-mnist-style.json"})
    CHECK(io::load_reconstruction_config<T>(fs::path(PRILO_SOURCE_DIR) / "configs" / f).resolve.temperature == 1);
  REQUIRE(c.prilo.stages.size() == 2);
  CHECK(c.prilo.reading == PriloReading::back_project_refine);
  CHECK(c.prilo.stages[1].layer == 2);
  CHECK(c.prilo.stages[1].repetitions == 9);
  CHECK(c.prilo.stages[0].refine.radius == 10);
  REQUIRE(c.prilo_chain.stages.size() == 2);
  CHECK(c.prilo_chain.reading == PriloReading::chained);
  CHECK(c.prilo_chain.stages[1].forward.steps == 300);
  // one "noise" section for every latent solver
  CHECK((c.dpr.noise.eta == 0.02 && c.prilo.noise.gamma == 0.55 && c.prilo_chain.noise.enabled));
  const auto f = io::load_reconstruction_config<T>(fs::path(PRILO_SOURCE_DIR) / "configs/fashion-mnist.json");
  CHECK(f.prilo_chain.stages.size() >= 1);
  // the style VAE's Fashion-MNIST chain has its own noise; the other solvers keep the top level's
  const auto s = io::load_reconstruction_config<T>(fs::path(PRILO_SOURCE_DIR) / "configs/fashion-mnist-style.json");
  CHECK((s.prilo_chain.noise.eta == 0.001 && s.prilo_chain.noise.gamma == 0.55 && s.prilo_chain.noise.enabled));
  CHECK((s.dpr.noise.eta == 0.02 && s.prilo.noise.eta == 0.02));
  REQUIRE(s.prilo_chain.stages.size() == 2);
  CHECK(s.prilo_chain.stages[1].repetitions == 8);
  // its -resolve judges: the conv and MLP Fashion-MNIST VAEs, files in models/ (read from the config's folder)
  REQUIRE(s.resolve_judges.size() == 2);
  for (const auto& j : s.resolve_judges) {
    CHECK(fs::exists(j.model));
    CHECK(j.weight == 1);
  }
  CHECK(s.resolve_judges[0].model.filename() == "convvae-fashion-mnist.prw");
  CHECK(s.resolve_judges[1].model.filename() == "vae-fashion-mnist.prw");
  CHECK(f.resolve_judges.empty());
  // -polish's section: the ends of the weight's range are values, and keys left out keep the defaults
  for (const double w : {0.0, 1.0}) {
    nlohmann::json doc;
    doc["polish"]["weight"] = w;
    const auto p = io::reconstruction_config_from_json<T>(doc).polish;
    CHECK(p.weight == w);
    CHECK((p.restarts == PolishOptions{}.restarts && p.sigma == PolishOptions{}.sigma && !p.align_to_given));
  }
  CHECK(io::reconstruction_config_from_json<T>(nlohmann::json::parse(R"({"polish": {"align_to_given": true}})"))
            .polish.align_to_given);
}

TEST_CASE("config: a PRILO section's own noise overrides the top level's, key by key") {
  const auto c = io::reconstruction_config_from_json<T>(nlohmann::json::parse(
      R"({"noise": {"eta": 0.05, "gamma": 0.7}, "prilo": {"noise": {"enabled": false}, "stages": [{"layer": 1}]},
          "prilo_chain": {"noise": {"eta": 0.003}, "stages": [{"layer": 1}]}})"));
  CHECK((c.dpr.noise.enabled && c.dpr.noise.eta == 0.05 && c.dpr.noise.gamma == 0.7));
  CHECK((!c.prilo.noise.enabled && c.prilo.noise.eta == 0.05 && c.prilo.noise.gamma == 0.7));
  CHECK((c.prilo_chain.noise.enabled && c.prilo_chain.noise.eta == 0.003 && c.prilo_chain.noise.gamma == 0.7));
  // reaches the solver: the options a method runs carry the section's noise
  CHECK(c.prilo_options(parse_method("prilo-chain-mii")).noise.eta == 0.003);
  CHECK(!c.prilo_options(parse_method("prilo-mii")).noise.enabled);
  // bad noise objects name the section and the key
  for (const auto& [doc, what] : std::vector<std::pair<const char*, const char*>>{
           {R"({"prilo_chain": {"noise": {"sigma": 1}, "stages": [{"layer": 1}]}})",
            "prilo_chain.noise: unknown key \"sigma\""},
           {R"({"prilo": {"noise": {"eta": -1}, "stages": [{"layer": 1}]}})",
            "prilo.noise.eta must be finite and >= 0"},
           {R"({"noise": {"enabled": "yes"}})", "noise.enabled must be true or false"},
           {R"({"noise": {"gamma": "fast"}})", "noise.gamma: expected a number, got string"},
           {R"({"prilo": {"noise": 3, "stages": [{"layer": 1}]}})", "prilo.noise: expected an object"}})
    CHECK_THROWS_WITH_AS((void)io::reconstruction_config_from_json<T>(nlohmann::json::parse(doc)),
                         doctest::Contains(what), invalid_input);
}

TEST_CASE("config: a judge's relative file is read from the config file's folder; io::ResolveJudges loads them") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "prilo_test_methods_judges" / "configs";
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "c.json");
    out << R"({"resolve": {"judges": [{"model": "../models/j.prw"}, {"model": "/abs/k.prw", "weight": 2}]}})";
  }
  const auto c = io::load_reconstruction_config<T>(dir / "c.json");
  REQUIRE(c.resolve_judges.size() == 2);
  CHECK(c.resolve_judges[0].model == (dir.parent_path() / "models" / "j.prw"));
  CHECK(c.resolve_judges[1].model == "/abs/k.prw");
  // the shipped MNIST VAEs as judges: each one's negative ELBO at ε = 0, with its weight and file name
  const fs::path mlp = fs::path(PRILO_SOURCE_DIR) / "models" / "vae-mnist.prw",
                 conv = fs::path(PRILO_SOURCE_DIR) / "models" / "convvae-mnist.prw";
  const io::ResolveJudges<T> judges({{mlp, 2.0}, {conv, 0.5}}, 28, 28);
  REQUIRE(judges.judges().size() == 2);
  CHECK(judges.judges()[0].name == mlp.string());
  CHECK(judges.judges()[0].weight == 2.0);
  CHECK(judges.judges()[1].weight == 0.5);
  const auto data = io::load_dataset<T>(test_support::data_dir(), "mnist", "test", 0, 3);
  const auto conv_vae = nn::load_conv_vae<T>(conv);
  CHECK(judges.judges()[1].score(data.images) ==
        conv_vae.negative_elbo(data.images, Mat<T>::Zero(conv_vae.latent_dim(), 3)));
  // a config that names judges, run without them loaded: refused before any method runs
  auto mnist = io::load_reconstruction_config<T>(fs::path(PRILO_SOURCE_DIR) / "configs/mnist.json");
  mnist.resolve_judges = {{mlp, 1.0}};
  MethodOptions<T> opt;
  int reported = 0;
  opt.progress = [&](const std::string&, const Progress&) { ++reported; };
  const auto vae = nn::load_vae<T>(mlp);
  Fourier2d<T> F(28, 28);
  const Mat<T> y = measure(F, data.images);
  CHECK_THROWS_WITH_AS(reconstruct(parse_methods("hio,prilo-chain-mii,prilo-chain-mii-resolve"), vae, F, y, mnist, opt),
                       doctest::Contains("MethodOptions::judges is empty"), invalid_input);
  CHECK(reported == 0);
  CHECK_NOTHROW(check_judges(parse_method("prilo-chain-mii"), mnist, opt));  // not a -resolve method
  opt.judges = judges.judges();
  CHECK_NOTHROW(check_judges(parse_method("prilo-chain-mii-resolve"), mnist, opt));
  // a config that weighs the placement scorer, without one, or with one for other images: refused
  // before any method runs (resolve_ambiguity refused it after the base method and HIO)
  mnist.resolve.scorer_weight = 1;
  CHECK_THROWS_WITH_AS(reconstruct(parse_methods("hio,prilo-chain-mii-resolve"), vae, F, y, mnist, opt),
                       doctest::Contains("method prilo-chain-mii-resolve: the config's resolve.scorer_weight is 1 and "
                                         "MethodOptions::placement_scorer is null"),
                       invalid_input);
  CHECK(reported == 0);
  const PlacementScorer<T> none, small(PlacementScorerSpec{.height = 14, .width = 14}, 1);
  opt.placement_scorer = &none;
  CHECK_THROWS_WITH_AS(check_scorer(parse_method("prilo-mii-resolve"), F, mnist, opt),
                       doctest::Contains("default constructor"), invalid_input);
  opt.placement_scorer = &small;
  CHECK_THROWS_WITH_AS(check_scorer(parse_method("prilo-mii-resolve"), F, mnist, opt),
                       doctest::Contains("reads images of 196 pixels, the operator's have 784"), invalid_input);
  CHECK_NOTHROW(check_scorer(parse_method("prilo-mii"), F, mnist, opt));  // not a -resolve method
  opt.placement_scorer = nullptr;
  mnist.resolve.scorer_weight = 0;
  // a missing file, a model for other images: clear errors naming them
  CHECK_THROWS_WITH_AS(io::ResolveJudges<T>({{dir / "none.prw", 1.0}}, 28, 28),
                       doctest::Contains("none.prw: file not found"), file_error);
  CHECK_THROWS_WITH_AS(io::ResolveJudges<T>({{conv, 1.0}}, 27, 28), doctest::Contains("not 27x28"), invalid_input);
  // the files alone (what prilo-reconstruct checks before reading the data): in order; a missing one named with its
  // source
  CHECK(io::judge_files({{mlp, 2.0}, {conv, 0.5}}) == std::vector<fs::path>{mlp, conv});
  CHECK_THROWS_WITH_AS(io::judge_files({{mlp, 1.0}, {dir / "none.prw", 1.0}}, "the config c.json"),
                       doctest::Contains("none.prw: file not found (named by the config c.json, resolve.judges)"),
                       file_error);
  fs::remove_all(dir.parent_path());
}

TEST_CASE("config: resolve's anchor and scorer weights; misspelt keys anywhere and senseless values are errors") {
  const auto c = io::reconstruction_config_from_json<T>(nlohmann::json::parse(
      R"({"resolve": {"anchor_weight": 0.5, "scorer_weight": 2, "temperature": 1, "comment": "kept"}})"));
  CHECK(c.resolve.anchor_weight == 0.5);
  CHECK(c.resolve.scorer_weight == 2);
  CHECK(io::reconstruction_config_from_json<T>(nlohmann::json::parse("{}")).resolve.anchor_weight == 0);
  CHECK(io::reconstruction_config_from_json<T>(nlohmann::json::parse("{}")).resolve.scorer_weight == 0);
  // judges: files and weights (1 by default), and how many candidates they score (64 by default)
  const auto cj = io::reconstruction_config_from_json<T>(nlohmann::json::parse(
      R"({"resolve": {"judges": [{"model": "a.prw", "weight": 0.5}, {"model": "/m/b.prw"}], "judged_candidates": 8}})"));
  REQUIRE(cj.resolve_judges.size() == 2);
  CHECK(cj.resolve_judges[0].model == "a.prw");
  CHECK(cj.resolve_judges[0].weight == 0.5);
  CHECK(cj.resolve_judges[1].model == "/m/b.prw");
  CHECK(cj.resolve_judges[1].weight == 1);
  CHECK(cj.resolve.judged_candidates == 8);
  CHECK(c.resolve_judges.empty());
  CHECK(c.resolve.judged_candidates == 64);
  for (const auto& [doc, what] : std::vector<std::pair<const char*, const char*>>{
           {R"({"resolve": {"judges": {"model": "a"}}})", "resolve: judges must be an array"},
           {R"({"resolve": {"judges": ["a.prw"]}})", "resolve: each of judges must be an object"},
           {R"({"resolve": {"judges": [{"weight": 1}]}})", "resolve.judges: each judge needs \"model\""},
           {R"({"resolve": {"judges": [{"model": ""}]}})", "resolve.judges: each judge needs \"model\""},
           {R"({"resolve": {"judges": [{"model": "a", "weight": -1}]}})",
            "resolve.judges: weight must be finite and >= 0 (a)"},
           {R"({"resolve": {"judges": [{"model": "a", "wieght": 1}]}})", "resolve.judges: unknown key \"wieght\""},
           {R"({"resolve": {"judged_candidates": 0}})", "resolve: judged_candidates must be >= 1"},
           {R"({"resolve": {"judged_candidates": 8}})",
            "resolve: judged_candidates sets how many candidates the judges score, and the config names no judges"},
           {R"({"resolve": {"anchor_weight": -1}})", "resolve: anchor_weight must be finite and >= 0"},
           {R"({"resolve": {"scorer_weight": -0.5}})", "resolve: scorer_weight must be finite and >= 0"},
           {R"({"resolve": {"anchor_wieght": 1}})", "resolve: unknown key \"anchor_wieght\""},
           {R"({"resolve": 1})", "resolve: expected an object"},
           {R"({"mii": {"candidate": 10}})", "mii: unknown key \"candidate\" (known: candidates)"},
           {R"({"mii": {"candidates": 2000000000}})", "mii.candidates must be in 1..1000000, got 2000000000"},
           {R"({"mii": {"candidates": 0}})", "mii.candidates must be in 1..1000000, got 0"},
           {R"({"hio": {"betta": 0.5}})", "hio: unknown key \"betta\""},
           {R"({"er": {"iters": 5}})", "er: unknown key \"iters\""},
           {R"({"consensus": {"pow": 2}})", "consensus: unknown key \"pow\""},
           {R"({"li": {"sigma": 0.1, "sd": 1}})", "li: unknown key \"sd\""},
           {R"({"polish": {"restart": 2}})",
            "polish: unknown key \"restart\" (known: restarts, sigma, weight, align_to_given)"},
           {R"({"polish": {"restarts": 0}})", "polish.restarts must be in 1..1000"},
           {R"({"polish": {"sigma": -0.1}})", "polish.sigma must be in [0, 100]"},
           {R"({"polish": {"sigma": 1e30}})", "polish.sigma must be in [0, 100]"},
           {R"({"li": {"sigma": 101}})", "li.sigma must be in [0, 100]"},
           {R"({"li": {"sigma": -1}})", "li.sigma must be in [0, 100]"},
           {R"({"polish": {"weight": 1.5}})", "polish.weight must be in [0, 1]"},
           {R"({"polish": {"align_to_given": 1}})", "polish.align_to_given must be true or false"},
           // the document, the top level, the PRILO sections and their stages
           {"[]", "the config: expected an object"},
           {"42", "the config: expected an object"},
           {R"({"prilo_chian": {}})", "the config: unknown key \"prilo_chian\""},
           {R"({"prilo": {"keep_bset": true, "stages": []}})", "prilo: unknown key \"keep_bset\""},
           {R"({"prilo": {"keep_best": 1, "stages": []}})", "prilo.keep_best must be true or false, got 1"},
           {R"({"prilo_chain": {"stages": [{"layer": 1, "forwrd": {}}]}})",
            "prilo_chain.stages[0]: unknown key \"forwrd\""},
           {R"({"prilo": {"stages": {}}})", "prilo.stages: expected an array of stage objects, got object"},
           {R"({"prilo": {"stages": [3]}})", "prilo.stages[0]: expected an object"},
           // values no solver can use
           {R"({"hio": {"beta": -3}})", "hio.beta must be > 0"},
           {R"({"hio": {"final_er": -5}})", "hio.final_er must be in 0..10000000, got -5"},
           {R"({"hio": {"iterations": 40}})", "hio.final_er (50) must be less than hio.iterations (40)"},
           {R"({"hio": {"iterations": 10, "final_er": 10}})",
            "hio.final_er (10) must be less than hio.iterations (10)"},
           {R"({"er": {"iterations": 0}})", "er.iterations must be in 1..10000000, got 0"},
           // counts that would run for days: a typo, refused
           {R"({"hio": {"iterations": 2000000000}})", "hio.iterations must be in 1..10000000, got 2000000000"},
           {R"({"dpr": {"steps": 20000001}})", "dpr: steps must be in 0..10000000, got 20000001"},
           {R"({"prilo": {"stages": [{"layer": 1, "repetitions": 2000000000}]}})",
            "prilo.stages[0]: repetitions x steps must be in 0..10000000"},
           {R"({"prilo_chain": {"stages": [{"layer": 1, "repetitions": 5000, "forward": {"steps": 5000}}]}})",
            "prilo_chain.stages[0]: repetitions x steps must be in 0..10000000, got"},
           {R"({"noise": {"gamma": -5}})", "noise.gamma must be finite and >= 0"},
           {R"({"resolve": {"consistency_threshold": -1}})", "resolve: consistency_threshold must be >= 0"}})
    CHECK_THROWS_WITH_AS((void)io::reconstruction_config_from_json<T>(nlohmann::json::parse(doc)),
                         doctest::Contains(what), invalid_input);
  // "comment" is welcome anywhere
  const auto commented = io::reconstruction_config_from_json<T>(nlohmann::json::parse(
      R"({"comment": "a", "prilo": {"comment": "b", "stages": [{"comment": "c", "layer": 1, "repetitions": 2,)"
      R"( "back": {"comment": "d", "steps": 7}}]}, "dpr": {"comment": "e", "steps": 9}})"));
  REQUIRE(commented.prilo.stages.size() == 1);
  CHECK(commented.prilo.stages[0].repetitions == 2);
  CHECK(commented.prilo.stages[0].back.steps == 7);  // phase objects too
  CHECK(commented.dpr.phase.steps == 9);
}

TEST_CASE("config: broken files give errors that name the file, the section and the key") {
  const auto wrong_type = write_temp("wrong-type.json", R"({"dpr": {"steps": "many"}})");
  std::string e = error_of([&] { (void)io::load_reconstruction_config<T>(wrong_type); });
  CHECK_MESSAGE(e.find("wrong-type.json: bad config: dpr.steps: expected an integer, got string") != std::string::npos,
                e);
  CHECK_THROWS_AS((void)io::load_reconstruction_config<T>(wrong_type), invalid_input);

  // a key given twice (JSON parsers keep the last): refused, naming the key and its object
  for (const auto& [doc, what] : std::vector<std::pair<std::string, std::string>>{
           {R"({"dpr": {"steps": 5, "steps": 50}})", "key \"steps\" appears twice in the object \"dpr\""},
           {R"({"dpr": {"steps": 5}, "dpr": {"steps": 50}})", "key \"dpr\" appears twice in the top-level object"},
           {R"({"prilo": {"stages": [{"layer": 1, "layer": 2}]}})",
            "key \"layer\" appears twice in an object in an array"}}) {
    const auto twice = write_temp("twice.json", doc);
    e = error_of([&] { (void)io::load_reconstruction_config<T>(twice); });
    CHECK_MESSAGE(e.find("twice.json: bad config: " + what) != std::string::npos, e);
  }
  // the same key in sibling objects is no duplicate
  const auto siblings = write_temp(
      "siblings.json", R"({"dpr": {"steps": 5}, "prilo": {"stages": [{"layer": 1}, {"layer": 2}]}, "er": {}})");
  CHECK(io::load_reconstruction_config<T>(siblings).prilo.stages.size() == 2);

  const auto unknown = write_temp("unknown-key.json", R"({"prilo": {"stages": [{"layer": 1, "back": {"stepz": 5}}]}})");
  e = error_of([&] { (void)io::load_reconstruction_config<T>(unknown); });
  CHECK_MESSAGE(e.find("prilo.stages[0].back: unknown phase option \"stepz\"") != std::string::npos, e);

  const auto bad_value = write_temp("bad-value.json", R"({"prilo_chain": {"initial": {"radius": -1}, "stages": []}})");
  e = error_of([&] { (void)io::load_reconstruction_config<T>(bad_value); });
  CHECK_MESSAGE(e.find("prilo_chain.initial: radius must be >= 0") != std::string::npos, e);

  const auto other_type = write_temp("other-type.json", R"({"hio": {"beta": "high"}})");
  CHECK_THROWS_WITH_AS((void)io::load_reconstruction_config<T>(other_type),
                       doctest::Contains("hio.beta: expected a number, got string"), invalid_input);
  // numbers out of range: an error naming the key, not undefined behaviour or a wrap-around
  const auto huge = write_temp("huge.json", R"({"dpr": {"steps": 1e300}, "mii": {"candidates": 5}})");
  CHECK_THROWS_WITH_AS((void)io::load_reconstruction_config<T>(huge), doctest::Contains("dpr.steps"), invalid_input);
  const auto wraps = write_temp("wraps.json", R"({"prilo": {"stages": [{"layer": 1, "repetitions": 4294967297}]}})");
  CHECK_THROWS_WITH_AS((void)io::load_reconstruction_config<T>(wraps), doctest::Contains("repetitions"), invalid_input);
  const auto inf = write_temp("inf-rate.json", R"({"dpr": {"learning_rate": 1e300}})");
  CHECK_THROWS_AS((void)io::load_reconstruction_config<T>(inf), invalid_input);
  // a number that is 0 in float is not taken as 0 (a radius of 0 is a meaning of its own)
  // B and C phases in a chained stage, which runs forward phases only: refused, not ignored
  const auto chain_back =
      write_temp("chain-back.json", R"({"prilo_chain": {"stages": [{"layer": 1, "refine": {"steps": 10}}]}})");
  CHECK_THROWS_WITH_AS(
      (void)io::load_reconstruction_config<T>(chain_back),
      doctest::Contains("prilo_chain.stages[0]: \"refine\": the chained reading runs forward phases only"),
      invalid_input);
  const auto tiny = write_temp("tiny-radius.json", R"({"dpr": {"radius": 1e-50}})");
  CHECK_THROWS_WITH_AS((void)io::load_reconstruction_config<float>(tiny),
                       doctest::Contains("dpr.radius: 1e-50 is too small: it is 0 in the reader's scalar type"),
                       invalid_input);
  CHECK(io::load_reconstruction_config<double>(tiny).dpr.phase.radius == 1e-50);
  const auto no_stages = write_temp("no-stages.json", R"({"prilo": {"initial": {"steps": 5}}})");
  e = error_of([&] { (void)io::load_reconstruction_config<T>(no_stages); });
  CHECK_MESSAGE((e.find("no-stages.json: bad config") != std::string::npos && e.find("stages") != std::string::npos),
                e);
  // per-tensor radii of a split state ({z_i, z0}): read in order, and checked
  const auto radii =
      write_temp("radii.json", R"({"prilo_chain": {"stages": [{"layer": 3, "forward": {"radii": [50, 2.5]}}]}})");
  const auto rc = io::load_reconstruction_config<T>(radii);
  REQUIRE(rc.prilo_chain.stages.size() == 1);
  CHECK(rc.prilo_chain.stages[0].forward.radii == std::vector<T>{T(50), T(2.5)});
  for (const char* bad : {R"({"dpr": {"radii": []}})", R"({"dpr": {"radii": [1, -2]}})", R"({"dpr": {"radii": 3}})"})
    CHECK_THROWS_WITH_AS((void)io::load_reconstruction_config<T>(write_temp("bad-radii.json", bad)),
                         doctest::Contains("radii"), invalid_input);
  const auto truncated = write_temp("truncated.json", R"({"dpr": {"steps": 10)");
  CHECK(error_of([&] { (void)io::load_reconstruction_config<T>(truncated); }).find("truncated.json: not valid JSON") !=
        std::string::npos);
  CHECK_THROWS_AS((void)io::load_reconstruction_config<T>(fs::path(PRILO_TEST_TMPDIR) / "none.json"), file_error);

  // a method whose section is missing is refused before any solving
  const ReconstructionConfig<T> empty;
  CHECK(error_of([&] {
          check_method<Fourier2d<T>>(parse_method("prilo-chain-mii"), empty);
        }).find("no \"prilo_chain\" section") != std::string::npos);
  // so is PRILO without stages: its initial phase alone, named PRILO
  CHECK(error_of([&] {
          check_method<Fourier2d<T>>(parse_method("prilo-mii"), empty);
        }).find("method prilo-mii: the config has no \"prilo\" section") != std::string::npos);
  // per-tensor radii are counted against the decoder before any work (they failed when the
  // phase was reached, after every earlier method had run): an MLP's state is one tensor
  const nn::Vae<T> mlp(16, 8, 4, 1);
  ReconstructionConfig<T> counted;
  counted.prilo.stages = {PriloStage<T>{.layer = 1}};
  counted.prilo.stages[0].forward.radii = {T(10), T(20)};
  CHECK(error_of([&] {
          check_stages(parse_method("prilo-mii"), counted, mlp);
        }).find("the forward (A) phase gives 2 radii, the generator's state at layer 1 has 1 tensor(s)") !=
        std::string::npos);
  counted.prilo.stages[0].forward.enabled = false;  // a phase that does not run is not read
  CHECK(error_of([&] { check_stages(parse_method("prilo-mii"), counted, mlp); }) == "(no error)");
  counted.dpr.phase.radii = {T(1), T(2), T(3)};
  CHECK(error_of([&] {
          check_stages(parse_method("dpr-mii"), counted, mlp);
        }).find("method dpr-mii: the config's dpr section for this decoder: dpr: the z0 phase gives 3 radii") !=
        std::string::npos);
  CHECK_THROWS_AS(check_method<GaussianReal<T>>(parse_method("hio"), empty), invalid_input);
  CHECK_THROWS_AS(check_method<Fourier2d<T>>(parse_method("spectral"), empty), invalid_input);
  // LI's perturbation out of range (set in code: the config refuses it), for the -li methods only
  ReconstructionConfig<T> wide;
  wide.li_sigma = 1e3;
  CHECK(error_of([&] {
          check_method<Fourier2d<T>>(parse_method("dpr-li"), wide);
        }).find("li.sigma must be in [0, 100]") != std::string::npos);
  check_method<Fourier2d<T>>(parse_method("dpr-mii"), wide);
  // every section a method reads is checked before any solving (the solvers refused these only
  // when reached, after the methods before them had run): HIO's settings for hio and -resolve,
  // the phases' learning rates and radii, the noise
  const auto staged = [] {
    ReconstructionConfig<T> c;
    c.prilo.stages = {{.layer = 1}};
    c.prilo_chain.stages = {{.layer = 1}};
    return c;
  };
  ReconstructionConfig<T> hio_short = staged();
  hio_short.hio.iterations = 50;  // final_er stays 50: HIO would run no step of its own
  for (const char* name : {"hio", "prilo-mii-resolve"})
    CHECK(error_of([&] {
            check_method<Fourier2d<T>>(parse_method(name), hio_short);
          }).find(std::string("method ") + name + ": fienup: HIO's final_er (50)") != std::string::npos);
  check_method<Fourier2d<T>>(parse_method("prilo-mii"), hio_short);
  ReconstructionConfig<T> rate = staged();
  rate.prilo.stages.back().refine.learning_rate = T(-0.1);
  CHECK(error_of([&] {
          check_method<Fourier2d<T>>(parse_method("prilo-mii"), rate);
        }).find("method prilo-mii: prilo: the refinement (C) phase's learning rate must be finite and >= 0") !=
        std::string::npos);
  check_method<Fourier2d<T>>(parse_method("prilo-chain-mii"), rate);  // the chained reading's section is another
  ReconstructionConfig<T> radius;
  radius.dpr.phase.radius = std::numeric_limits<T>::quiet_NaN();
  CHECK(error_of([&] {
          check_method<Fourier2d<T>>(parse_method("dpr"), radius);
        }).find("method dpr: dpr: the z0 phase's radius must be >= 0") != std::string::npos);
  radius.dpr.phase.radius = std::numeric_limits<T>::infinity();  // no ball: allowed
  check_method<Fourier2d<T>>(parse_method("dpr"), radius);
  ReconstructionConfig<T> noise = staged();
  noise.set_noise({.enabled = true, .eta = -1});
  CHECK(error_of([&] {
          check_method<Fourier2d<T>>(parse_method("prilo-chain-mii"), noise);
        }).find("noise eta must be finite and >= 0") != std::string::npos);
}

TEST_CASE("run_method on two MNIST images: shapes, restarts, trace, and -resolve picks a transform of its inputs") {
  const TwoMnistImages setup;                    // FFTW_ESTIMATE plans: reproducible for the reuse check below
  const auto& [saved, data, vae, F, y] = setup;  // saved: the fixture restores it
  const Mat<T>& x = data.images;
  const auto cfg = quick_config();
  MethodOptions<T> opt{.restart = {.restarts = 3, .keep_all = true}, .seed = 11, .trace_reference = &x};
  int progress_calls = 0;
  opt.progress = [&](const std::string& m, const Progress&) {
    CHECK(m == "prilo-chain-mii");
    ++progress_calls;
  };

  const auto chain = run_method(parse_method("prilo-chain-mii"), vae, F, y, cfg, opt);
  CHECK(chain.method == "prilo-chain-mii");
  CHECK(chain.best.x.rows() == 784);
  CHECK(chain.best.x.cols() == 2);
  CHECK(chain.best.magnitude_error.size() == 2);
  REQUIRE(chain.all.x.cols() == 6);  // every restart, restart r of image j in column 2r + j
  for (Eigen::Index j = 0; j < 2; ++j) {
    const int r = chain.best.chosen_restart[std::size_t(j)];
    for (int q = 0; q < 3; ++q) CHECK(chain.best.magnitude_error(j) <= chain.all.magnitude_error(2 * q + j));
    CHECK(chain.best.x.col(j) == chain.all.x.col(2 * r + j));
  }
  REQUIRE(chain.best.phases.size() == 4);  // I, A z1, A z2 twice
  CHECK(chain.best.phases[1].kind == 'A');
  CHECK(progress_calls > 0);
  REQUIRE(!chain.trace.empty());  // every 5 steps: 10 + 10 + 2·10 steps
  CHECK(chain.trace.size() == 8);
  CHECK(chain.trace.back().step == 40);
  CHECK(chain.trace.back().psnr > 0);

  const MethodMetrics e = evaluate_method(chain, x, 28, 28, /*align=*/true);
  CHECK(e.psnr_per_image.size() == 2);
  REQUIRE(e.aligned);
  for (Eigen::Index j = 0; j < 2; ++j) CHECK(e.aligned->psnr_per_image(j) >= std::min(e.psnr_per_image(j), 100.0));
  CHECK(e.restart_psnr.rows() == 2);
  CHECK(e.restart_psnr.cols() == 3);
  // a trace reference or a figure's sizes that do not fit are refused (they were read out of bounds)
  const Mat<T> three = Mat<T>::Zero(784, 3), short_rows = Mat<T>::Zero(780, 2);
  for (const Mat<T>* bad : {&three, &short_rows}) {
    MethodOptions<T> b = opt;
    b.progress = {};
    b.trace_reference = bad;
    CHECK(error_of([&] {
            (void)run_method(parse_method("prilo-chain-mii"), vae, F, y, cfg, b);
          }).find("MethodOptions::trace_reference") != std::string::npos);
  }
  const std::vector<MethodResult<T>> shown{chain};
  CHECK(comparison_grid(x, y, shown, 28, 28, 2, true).cols() == 6);  // truth, measurements, the method
  CHECK(error_of([&] { (void)comparison_grid(x, y, shown, 29, 28, 2, true); }).find("comparison_grid truth") !=
        std::string::npos);
  CHECK(error_of([&] {
          (void)comparison_grid(x, Mat<T>(y.leftCols(1)), shown, 28, 28, 2, true);
        }).find("y has 1 columns") != std::string::npos);

  // -resolve: per image, a circular shift or point reflection of the base method's or of HIO's
  // solution, with that solution's magnitude error (the DFT's magnitudes cannot tell them apart)
  opt.progress = {};
  opt.trace_reference = nullptr;
  const auto results = reconstruct(parse_methods("hio,prilo-chain-mii,prilo-chain-mii-resolve"), vae, F, y, cfg, opt);
  REQUIRE(results.size() == 3);
  const auto& hio = results[0].best;
  const auto& base = results[1].best;
  const auto& resolved = results[2];
  CHECK(resolved.all.x.size() == 0);  // it picks among transforms, not restarts
  REQUIRE(resolved.best.x.cols() == 2);
  CHECK(base.x == chain.best.x);  // each method's stream depends only on the seed and its name
  for (Eigen::Index j = 0; j < 2; ++j) {
    const int from = resolved.best.chosen_restart[std::size_t(j)];  // 0: the base method, 1: HIO
    REQUIRE((from == 0 || from == 1));
    const SolveResult<T>& source = from == 0 ? base : hio;
    CHECK(is_transform_of(resolved.best.x, source.x, j, 28, 28));
    CHECK(resolved.best.magnitude_error(j) == doctest::Approx(source.magnitude_error(j)).epsilon(1e-3));
  }
  // (its error being its source's, it is within the larger of the two sources' errors: that
  // needs no check of its own. Which source wins is the ELBO's choice here, as on these two
  // images neither or both solutions fit the measurements; the precedence of a solution that
  // fits over one that does not is checked below, with a shifted truth)

  // run on its own, -resolve computes its inputs with their own streams: the same result
  const auto alone = run_method(parse_method("prilo-chain-mii-resolve"), vae, F, y, cfg, opt);
  CHECK(alone.best.x == resolved.best.x);

  // a solution that fits the measurements (here a shifted truth) wins over one that does not
  // (relative magnitude error under ResolveOptions::consistency_threshold: the documented
  // precedence), even where the ELBO prefers the other: against the base method's solution,
  // which fits less, the rule turned off (threshold 0) takes that one for image 0
  const Mat<T> shifted = [&] {
    Mat<T> s(784, 2);
    for (Eigen::Index j = 0; j < 2; ++j) s.col(j) = metrics::apply_shift_reflect(Vec<T>(x.col(j)), 28, 28, 3, 5, true);
    return s;
  }();
  const auto fit = run_method(parse_method("prilo-chain-mii-resolve"), vae, F, y, cfg, opt, {&shifted, &base.x});
  for (Eigen::Index j = 0; j < 2; ++j) {
    CHECK(fit.best.chosen_restart[std::size_t(j)] == 0);
    CHECK(is_transform_of(fit.best.x, shifted, j, 28, 28));
    CHECK(fit.best.magnitude_error(j) < 1e-8);
  }
  auto no_rule = cfg;
  no_rule.resolve.consistency_threshold = 0;
  const auto by_elbo =
      run_method(parse_method("prilo-chain-mii-resolve"), vae, F, y, no_rule, opt, {&shifted, &base.x});
  CHECK(by_elbo.best.chosen_restart[0] == 1);  // the rule is what decided image 0 above
}

TEST_CASE("run_method on Gaussian measurements: the classical baselines and the latent methods") {
  const TwoMnistImages setup(/*estimate_plans=*/false);
  const GaussianReal<T> A(300, 784, 7);
  const Mat<T> y = measure(A, setup.data.images);
  const auto& vae = setup.vae;
  auto cfg = quick_config();
  cfg.spectral.iterations = cfg.orthogonality.iterations = 30;
  cfg.taf.iterations = 50;
  const MethodOptions<T> opt{.restart = {.restarts = 2}};
  for (const char* name : {"spectral", "taf", "dpr-mii", "prilo"}) {
    const auto r = run_method(parse_method(name), vae, A, y, cfg, opt);
    CHECK(r.best.x.cols() == 2);
    CHECK(r.best.magnitude_error.size() == 2);
    CHECK(r.all.x.size() == 0);                                        // no keep_all
    if (parse_method(name).operator_kind() == OperatorKind::gaussian)  // clipped to the object's range
      CHECK((r.best.x.minCoeff() >= 0 && r.best.x.maxCoeff() <= 1));
  }
  CHECK_THROWS_WITH_AS((void)run_method(parse_method("hio"), vae, A, y, cfg, opt),
                       "method hio needs the Fourier operator (Fourier2d)", invalid_input);
}

namespace {
/// A user's placement: OnHost's parts, counted (what gpu::OnDevice does with uploads).
struct CountingPlacement {
  mutable int generators = 0, operators = 0;
  template <class G>
  decltype(auto) generator(const G& g) const {
    ++generators;
    return OnHost{}.generator(g);  // the decoder, or its copy with packed weights (oneDNN)
  }
  template <class Op>
  const Op& op(const Op& o) const {
    ++operators;
    return o;
  }
};
}  // namespace

TEST_CASE("reconstruct with a placement: the latent methods take their parts from it, the others do not") {
  const TwoMnistImages setup;
  const auto& [saved, data, vae, F, y] = setup;  // saved: the fixture restores it
  const auto cfg = quick_config();
  const MethodOptions<T> opt{.restart = {.restarts = 2, .blocks = {.blocks = 1}}, .seed = 3};
  const auto methods = parse_methods("hio,dpr-mii,prilo-chain-mii");
  CountingPlacement place;
  const auto placed = reconstruct(place, methods, vae, F, y, cfg, opt);
  CHECK(place.generators == 2);  // dpr-mii and prilo-chain-mii, not hio
  CHECK(place.operators == 2);
  const auto host = reconstruct(methods, vae, F, y, cfg, opt);  // OnHost
  REQUIRE(placed.size() == host.size());
  for (std::size_t k = 0; k < host.size(); ++k) CHECK(placed[k].best.x == host[k].best.x);
}

TEST_CASE("consensus (-avg): the restarts' weighted mean, each aligned to the kept one; bad restarts weigh 0") {
  const Fourier2d<T> F(6, 5);
  Rng rng(5);
  const Mat<T> x = uniform_start<T>(30, 2, rng);  // two images
  const Mat<T> y = measure(F, x);
  const MagnitudeLoss<Fourier2d<T>> loss(F, y);
  const Mat<T> other = uniform_start<T>(30, 2, rng);
  // restart r of image j in column 2r + j: image 0's restarts are shifted and reflected copies
  // of its truth (every one fits); image 1's are the truth, another image, a NaN image
  SolveResult<T> all;
  all.x.resize(30, 6);
  all.x.col(0) = x.col(0);
  all.x.col(2) = metrics::apply_shift_reflect(Vec<T>(x.col(0)), 6, 5, 2, 3, false);
  all.x.col(4) = metrics::apply_shift_reflect(Vec<T>(x.col(0)), 6, 5, 1, 4, true);
  all.x.col(1) = other.col(1);
  all.x.col(3) = x.col(1);
  all.x.col(5) = Vec<T>::Constant(30, std::numeric_limits<T>::quiet_NaN());
  all.magnitude_error.resize(6);
  all.magnitude_error << T(1e-3), T(0.04), T(2e-3), T(0.01), T(3e-3), T(0.02);  // image 1: restart 1 kept
  const SolveResult<T> c = consensus(loss, all, 2, 6, 5, {.power = 2});
  REQUIRE(c.chosen_restart == std::vector<int>{0, 1});
  // image 0: every restart aligned back onto the kept one, so their mean is the truth itself
  CHECK((c.x.col(0) - x.col(0)).cwiseAbs().maxCoeff() < 1e-6);
  // image 1: (x + (0.01/0.04)^2 · other', with other' the transform of `other` nearest to x) / (1 + 1/16);
  // the NaN restart weighs 0
  const Vec<T> moved = metrics::align_to_reference(Vec<T>(other.col(1)), Vec<T>(x.col(1)), 6, 5).aligned;
  const Vec<T> want = (x.col(1) + moved / 16) / (1 + 1.0f / 16);
  CHECK((c.x.col(1) - want).cwiseAbs().maxCoeff() < 1e-6);
  CHECK(c.magnitude_error(0) < 1e-10);  // the mean of exact fits fits
  CHECK(c.magnitude_error(1) == doctest::Approx(double(loss.value(c.x)(1)) / 30).epsilon(1e-5));
  // power 0: the plain mean; a large power: the kept restart alone; no alignment: as given
  const SolveResult<T> plain = consensus(loss, all, 2, 6, 5, {.power = 0});
  CHECK((plain.x.col(1) - (x.col(1) + moved) / 2).cwiseAbs().maxCoeff() < 1e-6);
  CHECK((consensus(loss, all, 2, 6, 5, {.power = 200}).x.col(1) - x.col(1)).cwiseAbs().maxCoeff() < 1e-6);
  const SolveResult<T> unaligned = consensus(loss, all, 2, 6, 5, {.power = 0, .align = false});
  CHECK((unaligned.x.col(0) - (all.x.col(0) + all.x.col(2) + all.x.col(4)) / 3).cwiseAbs().maxCoeff() < 1e-6);
  // a given reference: every restart, the kept one too, aligned to it, so the consensus of
  // image 0 is the truth in the reference's placement (a shift and a reflection of the kept one)
  Mat<T> reference(30, 2);
  reference.col(0) = metrics::apply_shift_reflect(Vec<T>(x.col(0)), 6, 5, 4, 1, true);
  reference.col(1) = x.col(1);
  const SolveResult<T> to_ref = consensus(loss, all, 2, 6, 5, {.power = 2}, &reference);
  CHECK((to_ref.x.col(0) - reference.col(0)).cwiseAbs().maxCoeff() < 1e-6);
  CHECK((to_ref.x.col(1) - want).cwiseAbs().maxCoeff() < 1e-6);  // image 1's kept restart is the reference
  Mat<T> bad_reference = reference;
  bad_reference(3, 1) = std::numeric_limits<T>::quiet_NaN();
  CHECK(error_of([&] { (void)consensus(loss, all, 2, 6, 5, {}, &bad_reference); }).find("consensus reference") !=
        std::string::npos);
  const Mat<T> narrow = reference.leftCols(1);
  CHECK(error_of([&] { (void)consensus(loss, all, 2, 6, 5, {}, &narrow); }).find("consensus reference") !=
        std::string::npos);
  // a loss of other images or columns: named before the alignments (it was the loss's own shape
  // error after all of them)
  const MagnitudeLoss<Fourier2d<T>> three(F, measure(F, uniform_start<T>(30, 3, rng)));
  CHECK(error_of([&] {
          (void)consensus(three, all, 2, 6, 5);
        }).find("consensus: the loss holds 3 measurement columns, not 2") != std::string::npos);
  const Fourier2d<T> G(6, 6);
  const MagnitudeLoss<Fourier2d<T>> wider(G, measure(G, uniform_start<T>(36, 2, rng)));
  CHECK(error_of([&] {
          (void)consensus(wider, all, 2, 6, 5, {.align = false});
        }).find("consensus: the loss's operator takes images of 36 values, not 30") != std::string::npos);
  // an exact fit among the restarts: only the exact ones count
  SolveResult<T> exact = all;
  exact.magnitude_error(3) = 0;
  CHECK((consensus(loss, exact, 2, 6, 5).x.col(1) - x.col(1)).cwiseAbs().maxCoeff() == 0);
  // a negative error is no error: that restart weighs 0 (and is not kept)
  SolveResult<T> negative = all;
  negative.magnitude_error(1) = T(-1);
  const SolveResult<T> without = consensus(loss, negative, 2, 6, 5);
  CHECK(without.chosen_restart[1] == 1);
  CHECK((without.x.col(1) - x.col(1)).cwiseAbs().maxCoeff() == 0);
  // sizes that do not match, and a negative power, are refused with a message
  CHECK(error_of([&] { (void)consensus(loss, all, 4, 6, 5); }).find("not a multiple of 4 images") != std::string::npos);
  CHECK(error_of([&] { (void)consensus(loss, all, 2, 5, 5); }).find("are not 5x5") != std::string::npos);
  CHECK(error_of([&] { (void)consensus(loss, all, 2, 6, 5, {.power = -1}); }).find("power must be >= 0") !=
        std::string::npos);
  CHECK(error_of([] {
          (void)io::reconstruction_config_from_json<T>(nlohmann::json::parse(R"({"consensus": {"power": -2}})"));
        }).find("consensus.power must be finite and >= 0") != std::string::npos);
  CHECK(error_of([] {
          (void)io::reconstruction_config_from_json<T>(nlohmann::json::parse(R"({"resolve": {"temperature": -1}})"));
        }).find("resolve: temperature must be finite and >= 0") != std::string::npos);
}

TEST_CASE("-avg in reconstruct: the consensus of the restarts its base method ran, reused or run alone alike") {
  const TwoMnistImages setup;                    // FFTW_ESTIMATE plans: reproducible for the reuse check
  const auto& [saved, data, vae, F, y] = setup;  // saved: the fixture restores it
  const auto cfg = quick_config();
  const MethodOptions<T> opt{.restart = {.restarts = 3, .blocks = {.blocks = 1}}, .seed = 7};
  const auto results =
      reconstruct(parse_methods("hio,dpr-mii,dpr-mii-avg,prilo-chain-mii-avg-resolve"), vae, F, y, cfg, opt);
  REQUIRE(results.size() == 4);
  CHECK(results[1].all.x.size() == 0);  // kept for -avg only, not returned (keep_all is off)
  // the base's restarts, run again with keep_all: -avg is their consensus
  MethodOptions<T> keep = opt;
  keep.restart.keep_all = true;
  const auto base = run_method(parse_method("dpr-mii"), vae, F, y, cfg, keep);
  CHECK(base.best.x == results[1].best.x);
  const SolveResult<T> want = consensus(MagnitudeLoss<Fourier2d<T>>(F, y), base.all, 2, 28, 28, cfg.consensus);
  CHECK(results[2].best.x == want.x);
  CHECK(results[2].best.chosen_restart == base.best.chosen_restart);
  // run alone it runs the restarts itself (counting their work), with the same result
  const auto alone = run_method(parse_method("dpr-mii-avg"), vae, F, y, cfg, opt);
  CHECK(alone.best.x == results[2].best.x);
  CHECK(alone.flops.total() > 100 * results[2].flops.total());
  // -avg-resolve: a shift or reflection of the consensus or of HIO's image, per image
  const auto avg = run_method(parse_method("prilo-chain-mii-avg"), vae, F, y, cfg, opt);
  for (Eigen::Index j = 0; j < 2; ++j) {
    const int from = results[3].best.chosen_restart[std::size_t(j)];
    REQUIRE((from == 0 || from == 1));
    CHECK(is_transform_of(results[3].best.x, from == 0 ? avg.best.x : results[0].best.x, j, 28, 28));
  }
}

TEST_CASE("-polish: the images given, averaged with the consensus of PRILO restarts from their encodings") {
  const TwoMnistImages setup;
  const auto& [saved, data, vae, F, y] = setup;
  auto cfg = quick_config();
  cfg.polish = {.restarts = 3, .sigma = 0.05, .weight = 0.3};
  const MethodOptions<T> opt{.restart = {.restarts = 2, .blocks = {.blocks = 1}}, .seed = 3};
  const auto results = reconstruct(parse_methods("hio,prilo-chain-mii-avg-resolve,prilo-chain-mii-avg-resolve-polish"),
                                   vae, F, y, cfg, opt);
  REQUIRE(results.size() == 3);
  const Mat<T>& given = results[1].best.x;
  const SolveResult<T>& polished = results[2].best;
  REQUIRE(polished.x.rows() == 784);
  REQUIRE(polished.x.cols() == 2);
  CHECK(polished.x.allFinite());
  CHECK(polished.x != given);
  // its magnitude error is the mean's own, and its work is its restarts' (the given images were reused)
  const Vec<T> e = MagnitudeLoss<Fourier2d<T>>(F, y).value(polished.x) / T(784);
  CHECK(polished.magnitude_error.isApprox(e));
  CHECK(results[2].flops.products > 0);
  CHECK(results[2].flops.total() < results[1].flops.total());
  // run alone, it runs the method it polishes first (with that method's own streams): the same result
  const auto alone = run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, cfg, opt);
  CHECK(alone.best.x == polished.x);
  // alone it also ran hio and -avg-resolve's chain, which reconstruct ran before it: the same work
  CHECK(alone.flops.total() ==
        doctest::Approx(results[0].flops.total() + results[1].flops.total() + results[2].flops.total()).epsilon(1e-9));
  // the trace (analysis): the polish runs' steps, after those of the method polished when it ran here
  MethodOptions<T> traced = opt;
  traced.trace_reference = &data.images;
  const auto traced_given =
      run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, cfg, traced, {.polished = &given});
  REQUIRE(!traced_given.trace.empty());
  CHECK(traced_given.trace.front().phase.rfind("A z", 0) == 0);  // no initial z0 phase
  const auto traced_alone = run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, cfg, traced);
  const auto traced_base = run_method(parse_method("prilo-chain-mii-avg-resolve"), vae, F, y, cfg, traced);
  REQUIRE(!traced_base.trace.empty());
  CHECK(traced_alone.trace.size() == traced_base.trace.size() + traced_given.trace.size());
  // weight 1: the given images unchanged, and nothing solved (the loss pass only)
  auto whole = cfg;
  whole.polish.weight = 1;
  const auto kept =
      run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, whole, opt, {.polished = &given});
  CHECK(kept.best.x == given);
  CHECK(kept.flops.total() < 0.01 * results[2].flops.total());
  // bad polish settings are refused before any solving (no progress was reported)
  auto broken = cfg;
  broken.polish.weight = 2;
  int reported = 0;
  MethodOptions<T> counted = opt;
  counted.progress = [&](const std::string&, const Progress&) { ++reported; };
  CHECK_THROWS_WITH_AS(
      (void)reconstruct(parse_methods("hio,prilo-chain-mii-avg-resolve-polish"), vae, F, y, broken, counted),
      doctest::Contains("polish.weight must be in [0, 1]"), invalid_input);
  CHECK(reported == 0);
  // so is a perturbation that would overflow the decoder (σ = 1e30, set in code: the config refuses it)
  broken = cfg;
  broken.polish.sigma = 1e30;
  CHECK_THROWS_WITH_AS(
      (void)reconstruct(parse_methods("hio,prilo-chain-mii-avg-resolve-polish"), vae, F, y, broken, counted),
      doctest::Contains("polish.sigma must be in [0, 100]"), invalid_input);
  CHECK(reported == 0);

  // with no stage to run (and σ = 0) every restart returns G(μ(x)), and so does their
  // consensus: the result is weight · x + (1 − weight) · G(μ(x))
  auto still = cfg;
  for (auto& st : still.prilo_chain.stages) st.repetitions = 0;
  still.polish.sigma = 0;
  const auto fixed =
      run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, still, opt, {.polished = &given});
  const Mat<T> decoded = vae.decoder().forward_from(0, vae.encode(given).first);
  const Mat<T> want = T(0.3) * given + T(0.7) * decoded;
  CHECK(fixed.best.x.isApprox(want, T(1e-5)));
  CHECK(fixed.flops.products > 0);  // the encodings and the mean are counted
  // aligned to the given images: G(μ(x)) moved by the transform that brings it nearest to x.
  // Given images shifted by 9 columns (the VAE decodes them near the centre), so that the
  // transform is not the identity
  still.polish.align_to_given = true;
  Mat<T> off(784, 2);
  for (Eigen::Index j = 0; j < 2; ++j)
    off.col(j) = metrics::apply_shift_reflect(Vec<T>(given.col(j)), 28, 28, 0, 9, false);
  const auto aligned =
      run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, still, opt, {.polished = &off});
  const Mat<T> decoded_off = vae.decoder().forward_from(0, vae.encode(off).first);
  for (Eigen::Index j = 0; j < 2; ++j) {
    const auto a = metrics::align_to_reference(Vec<T>(decoded_off.col(j)), Vec<T>(off.col(j)), 28, 28);
    REQUIRE((a.dy != 0 || a.dx != 0 || a.reflect));
    CHECK(aligned.best.x.col(j).isApprox(T(0.3) * off.col(j) + T(0.7) * a.aligned, T(1e-5)));
  }
  // images that are not finite, or of the wrong size, are refused before any solving
  Mat<T> bad = given;
  bad(5, 1) = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH_AS(
      (void)run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, cfg, opt, {.polished = &bad}),
      doctest::Contains("-polish images"), invalid_input);
  const Mat<T> one = given.leftCols(1);
  CHECK_THROWS_AS(
      (void)run_method(parse_method("prilo-chain-mii-avg-resolve-polish"), vae, F, y, cfg, opt, {.polished = &one}),
      invalid_input);
}

}  // namespace prilo_test_methods

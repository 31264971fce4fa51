// JSON for prilo/methods.hpp: the hyperparameter files (configs/<dataset>.json) in as a
// ReconstructionConfig, results and traces out as prilo-reconstruct's reports. Needs
// nlohmann-json (prilo/methods.hpp itself does not).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../methods.hpp"

namespace prilo::io {

namespace detail {
using nlohmann::json;

/// A JSON number that must be an integer in int's range (1e300, 4294967296 or 2.5 are
/// invalid_input naming `where`, never a silent wrap-around or an undefined conversion).
inline int read_int(const json& v, const std::string& where) {
  double d = 0;
  if (v.is_number_unsigned())
    d = double(v.get<unsigned long long>());
  else if (v.is_number_integer())
    d = double(v.get<long long>());
  else if (v.is_number_float())
    d = v.get<double>();
  else
    throw invalid_input(where + ": expected an integer, got " + std::string(v.type_name()));
  if (!(d == std::floor(d)) || d < double(std::numeric_limits<int>::min()) ||
      d > double(std::numeric_limits<int>::max()))
    throw invalid_input(where + ": expected an integer within int's range, got " + v.dump());
  return int(d);
}
/// A finite JSON number representable in T.
template <class T>
T read_real(const json& v, const std::string& where) {
  if (!v.is_number()) throw invalid_input(where + ": expected a number, got " + std::string(v.type_name()));
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::abs(d) > double(std::numeric_limits<T>::max()))
    throw invalid_input(where + ": " + v.dump() + " is not a finite number in range");
  if (d != 0 && T(d) == T(0))  // a radius of 1e-50 is not 0
    throw invalid_input(where + ": " + v.dump() + " is too small: it is 0 in the reader's scalar type");
  return T(d);
}
/// invalid_input naming `where` unless obj is an object whose keys are among `known` (or
/// "comment"): a misspelt option is an error, never a silently kept default.
inline void check_keys(const json& obj, const std::string& where, std::initializer_list<const char*> known) {
  std::string list;
  for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
  if (!obj.is_object()) throw invalid_input(where + ": expected an object (" + list + "), got " + obj.type_name());
  for (const auto& item : obj.items()) {
    const std::string& k = item.key();  // a name, not a structured binding: clang before 16 cannot capture those
    if (k != "comment" && std::none_of(known.begin(), known.end(), [&](const char* q) { return k == q; }))
      throw invalid_input(where + ": unknown key \"" + k + "\" (known: " + list + ")");
  }
}
/// The most steps or iterations a config may ask of one phase, and of one PRILO stage over its
/// repetitions: a larger count (a typo such as 2e9) would run for days, and is refused.
inline constexpr long long max_config_steps = 10'000'000;
inline void check_count(long long value, long long least, const std::string& what) {
  if (value < least || value > max_config_steps)
    throw invalid_input(what + " must be in " + std::to_string(least) + ".." + std::to_string(max_config_steps) +
                        ", got " + std::to_string(value) +
                        (value > max_config_steps ? " (a larger count is taken for a mistake)" : ""));
}
/// obj[key] read with read_int / read_real when present, `def` otherwise.
inline int int_or(const json& obj, const char* key, int def, const std::string& where) {
  return obj.contains(key) ? read_int(obj.at(key), where + "." + key) : def;
}
template <class T>
T real_or(const json& obj, const char* key, T def, const std::string& where) {
  return obj.contains(key) ? read_real<T>(obj.at(key), where + "." + key) : def;
}
/// obj[key] when present (true or false: anything else is an invalid_input), `def` otherwise.
inline bool bool_or(const json& obj, const char* key, bool def, const std::string& where) {
  if (!obj.contains(key)) return def;
  if (!obj.at(key).is_boolean()) throw invalid_input(where + "." + key + " must be true or false");
  return obj.at(key).get<bool>();
}

/// A phase section ("steps", "radius", "radii", "learning_rate", "constrain", "enabled", "optimiser":
/// "adam" or "gradient-descent"; "comment" ignored) over the given defaults; an unknown key or a value of the
/// wrong type is an invalid_input naming the section and the key.
template <class T>
PhaseOptions<T> read_phase(const json& j, PhaseOptions<T> p, const std::string& where) {
  auto bad = [&](const std::string& what) { return invalid_input(where + ": " + what); };
  if (!j.is_object()) throw bad("expected an object of phase options, got " + std::string(j.type_name()));
  for (auto& [k, v] : j.items()) {
    try {
      if (k == "comment")  // ignored here too, as in every other object of a config
        continue;
      if (k == "steps")
        p.steps = read_int(v, where + ".steps");
      else if (k == "radius")
        p.radius = read_real<T>(v, where + ".radius");
      else if (k == "learning_rate")
        p.learning_rate = read_real<T>(v, where + ".learning_rate");
      else if (k == "radii") {  // one radius per tensor of a split state ({z_i, z0}: style generators)
        if (!v.is_array() || v.empty()) throw bad("radii must be a non-empty array of numbers");
        p.radii.clear();
        for (std::size_t r = 0; r < v.size(); ++r) {
          p.radii.push_back(read_real<T>(v[r], where + ".radii[" + std::to_string(r) + "]"));
          if (!(p.radii.back() >= 0)) throw bad("radii must be >= 0");
        }
      } else if (k == "constrain")
        p.constrain = v.template get<bool>();
      else if (k == "enabled")
        p.enabled = v.template get<bool>();
      else if (k == "optimiser") {
        const auto o = v.template get<std::string>();
        if (o == "adam")
          p.optimiser = Optimiser::adam;
        else if (o == "gradient-descent")
          p.optimiser = Optimiser::gradient_descent;
        else
          throw bad("optimiser must be \"adam\" or \"gradient-descent\", got \"" + o + "\"");
      } else {
        throw bad("unknown phase option \"" + k +
                  "\" (known: steps, radius, radii, learning_rate, constrain, enabled, optimiser)");
      }
    } catch (const json::exception& e) {
      throw bad(k + ": " + e.what());
    }
  }
  if (p.steps < 0) throw bad("steps must be >= 0");
  check_count(p.steps, 0, where + ": steps");
  if (!(p.radius >= 0)) throw bad("radius must be >= 0");
  if (!(p.learning_rate > 0)) throw bad("learning_rate must be > 0");
  return p;
}

/// A "noise" object (enabled, eta, gamma); keys left out keep `base`'s values.
inline NoiseOptions read_noise(const json& n, const NoiseOptions& base, const std::string& where) {
  check_keys(n, where, {"enabled", "eta", "gamma"});
  NoiseOptions o = base;
  if (n.contains("enabled")) {
    if (!n.at("enabled").is_boolean()) throw invalid_input(where + ".enabled must be true or false");
    o.enabled = n.at("enabled").get<bool>();
  }
  o.eta = real_or(n, "eta", base.eta, where);
  o.gamma = real_or(n, "gamma", base.gamma, where);
  if (!(o.eta >= 0) || !std::isfinite(o.eta)) throw invalid_input(where + ".eta must be finite and >= 0");
  if (!(o.gamma >= 0) || !std::isfinite(o.gamma)) throw invalid_input(where + ".gamma must be finite and >= 0");
  return o;
}

/// A "prilo" or "prilo_chain" section: the initial phase and the stages (required).
template <class T>
PriloOptions<T> read_prilo(const json& p, PriloReading reading, const std::string& where) {
  check_keys(p, where, {"initial", "stages", "keep_best", "keep_best_range_extended", "noise"});
  PriloOptions<T> o;
  o.reading = reading;
  if (p.contains("initial")) o.initial = read_phase(p["initial"], o.initial, where + ".initial");
  for (const char* flag : {"keep_best", "keep_best_range_extended"})
    if (p.contains(flag) && !p.at(flag).is_boolean())
      throw invalid_input(where + "." + flag + " must be true or false, got " + p.at(flag).dump());
  o.keep_best = p.value("keep_best", true);
  o.keep_best_range_extended = p.value("keep_best_range_extended", false);
  if (!p.contains("stages")) throw invalid_input(where + ": no \"stages\" (an array of stage objects)");
  if (!p.at("stages").is_array())
    throw invalid_input(where + ".stages: expected an array of stage objects, got " +
                        std::string(p.at("stages").type_name()));
  int i = 0;
  for (const auto& s : p.at("stages")) {
    const std::string at = where + ".stages[" + std::to_string(i++) + "]";
    if (reading == PriloReading::chained && (s.contains("back") || s.contains("refine")))
      throw invalid_input(at + ": \"" + (s.contains("back") ? "back" : "refine") +
                          "\": the chained reading runs forward phases only (back and refine are the "
                          "\"prilo\" section's)");
    check_keys(s, at, {"layer", "repetitions", "forward", "back", "refine"});
    PriloStage<T> st;
    if (!s.contains("layer")) throw invalid_input(at + ": no \"layer\"");
    st.layer = read_int(s.at("layer"), at + ".layer");
    st.repetitions = int_or(s, "repetitions", 1, at);
    if (st.repetitions < 0) throw invalid_input(at + ": repetitions must be >= 0");
    if (s.contains("forward")) st.forward = read_phase(s["forward"], st.forward, at + ".forward");
    if (s.contains("back")) st.back = read_phase(s["back"], st.back, at + ".back");
    if (s.contains("refine")) st.refine = read_phase(s["refine"], st.refine, at + ".refine");
    // the whole stage: its repetitions times the steps of its phases
    check_count((long long)st.repetitions * (st.forward.steps + st.back.steps + st.refine.steps), 0,
                at + ": repetitions x steps");
    o.stages.push_back(st);
  }
  return o;
}

/// nlohmann::json::parse, refusing an object that names a key twice (the parser keeps the last
/// value, so a config's earlier setting would be dropped without a word): invalid_input naming
/// the key and the object that holds it.
inline json parse_unique_keys(std::istream& in) {
  struct Container {
    bool array = false;
    std::string name;            // objects: "the object \"dpr\"", "the top-level object", "an object in an array"
    std::set<std::string> keys;  // objects: the keys seen so far
  };
  std::vector<Container> open;  // the containers being parsed, outermost first
  std::string last_key, duplicate;
  const json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
        open.push_back({false,
                        open.empty()        ? std::string("the top-level object")
                        : open.back().array ? std::string("an object in an array")
                                            : "the object \"" + last_key + "\"",
                        {}});
        break;
      case json::parse_event_t::array_start: open.push_back({true, {}, {}}); break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key:
        last_key = parsed.get<std::string>();
        if (!open.empty() && !open.back().keys.insert(last_key).second && duplicate.empty())
          duplicate = "key \"" + last_key + "\" appears twice in " + open.back().name +
                      " (JSON keeps the last value: a setting would be dropped without a word)";
        break;
      default: break;
    }
    return true;
  };
  json j = json::parse(in, cb);
  if (!duplicate.empty()) throw invalid_input(duplicate);
  return j;
}
}  // namespace detail

/// The configuration a parsed JSON document describes. Sections (all optional): "noise"
/// (enabled, eta, gamma: every latent solver's gradient noise), "mii" (candidates), "er"
/// (iterations), "hio" (iterations, beta, final_er), "dpr" (a phase), "prilo" and
/// "prilo_chain" (initial: a phase, stages: [{layer, repetitions, forward, back, refine}],
/// keep_best, keep_best_range_extended, and "noise": that solver's own, over the top-level
/// one), "resolve" (consistency_threshold, placement_weight, temperature, anchor_weight: the
/// -li methods' weight of their LI start as an anchor, scorer_weight: the learned placement
/// scorer's, judges: [{model: a VAE's weights file, weight}] whose negative ELBOs join the score,
/// judged_candidates: how many candidates per image they score), "consensus" (power:
/// -avg's weights), "li" (sigma: the learned initialisation's restart perturbation), "polish"
/// (restarts, sigma, weight, align_to_given: -polish's restarts, their perturbation, the given images' weight, the
/// restarts aligned to those images). Missing values keep ReconstructionConfig's defaults; "comment" keys are ignored
/// anywhere; any other unknown key (at the top level or in a section) is an error, as is a document that is not an
/// object. Throws invalid_input for bad values (and wrong types, numbers out of range) and nlohmann::json::exception
/// for other malformed values.
template <class T = float>
ReconstructionConfig<T> reconstruction_config_from_json(const nlohmann::json& j) {
  detail::check_keys(
      j, "the config",
      {"noise", "mii", "resolve", "consensus", "li", "polish", "er", "hio", "dpr", "prilo", "prilo_chain"});
  ReconstructionConfig<T> c;
  const NoiseOptions noise =
      j.contains("noise") ? detail::read_noise(j.at("noise"), NoiseOptions{}, "noise") : NoiseOptions{};
  if (j.contains("mii")) {
    detail::check_keys(j.at("mii"), "mii", {"candidates"});
    c.mii.candidates = detail::int_or(j.at("mii"), "candidates", 5000, "mii");
    // each candidate is a latent held at once and a row of the p x B score matrix: beyond a
    // million, gigabytes for a typo
    if (c.mii.candidates < 1 || c.mii.candidates > 1'000'000)
      throw invalid_input("mii.candidates must be in 1..1000000, got " + std::to_string(c.mii.candidates) +
                          " (a larger count is taken for a mistake)");
  }
  if (j.contains("resolve")) {
    detail::check_keys(j.at("resolve"), "resolve",
                       {"consistency_threshold", "placement_weight", "temperature", "anchor_weight", "scorer_weight",
                        "judges", "judged_candidates"});
    c.resolve.consistency_threshold = detail::real_or(j.at("resolve"), "consistency_threshold", 1e-4, "resolve");
    if (!(c.resolve.consistency_threshold >= 0)) throw invalid_input("resolve: consistency_threshold must be >= 0");
    c.resolve.placement_weight = detail::real_or(j.at("resolve"), "placement_weight", 0.0, "resolve");
    if (!(c.resolve.placement_weight >= 0)) throw invalid_input("resolve: placement_weight must be >= 0");
    c.resolve.temperature = detail::real_or(j.at("resolve"), "temperature", 0.0, "resolve");
    if (!(c.resolve.temperature >= 0) || !std::isfinite(c.resolve.temperature))
      throw invalid_input("resolve: temperature must be finite and >= 0");
    c.resolve.anchor_weight = detail::real_or(j.at("resolve"), "anchor_weight", 0.0, "resolve");
    if (!(c.resolve.anchor_weight >= 0) || !std::isfinite(c.resolve.anchor_weight))
      throw invalid_input("resolve: anchor_weight must be finite and >= 0");
    c.resolve.scorer_weight = detail::real_or(j.at("resolve"), "scorer_weight", 0.0, "resolve");
    if (!(c.resolve.scorer_weight >= 0) || !std::isfinite(c.resolve.scorer_weight))
      throw invalid_input("resolve: scorer_weight must be finite and >= 0");
    const auto& r = j.at("resolve");
    c.resolve.judged_candidates = detail::int_or(r, "judged_candidates", 64, "resolve");
    if (c.resolve.judged_candidates < 1) throw invalid_input("resolve: judged_candidates must be >= 1");
    if (r.contains("judges")) {
      if (!r.at("judges").is_array())
        throw invalid_input("resolve: judges must be an array of {\"model\": file, \"weight\": w}");
      for (const auto& e : r.at("judges")) {
        if (!e.is_object()) throw invalid_input("resolve: each of judges must be an object {\"model\", \"weight\"}");
        detail::check_keys(e, "resolve.judges", {"model", "weight"});
        if (!e.contains("model") || !e.at("model").is_string() || e.at("model").get<std::string>().empty())
          throw invalid_input("resolve.judges: each judge needs \"model\", a weights file");
        JudgeFile f{.model = e.at("model").get<std::string>(),
                    .weight = detail::real_or(e, "weight", 1.0, "resolve.judges")};
        if (!(f.weight >= 0) || !std::isfinite(f.weight))
          throw invalid_input("resolve.judges: weight must be finite and >= 0 (" + f.model.string() + ")");
        c.resolve_judges.push_back(std::move(f));
      }
    }
    if (r.contains("judged_candidates") && c.resolve_judges.empty())
      throw invalid_input(
          "resolve: judged_candidates sets how many candidates the judges score, and the config names no judges");
  }
  if (j.contains("consensus")) {
    detail::check_keys(j.at("consensus"), "consensus", {"power"});
    c.consensus.power = detail::real_or(j.at("consensus"), "power", 2.0, "consensus");
    if (!(c.consensus.power >= 0) || !std::isfinite(c.consensus.power))
      throw invalid_input("consensus.power must be finite and >= 0");
  }
  if (j.contains("li")) {
    detail::check_keys(j.at("li"), "li", {"sigma"});
    c.li_sigma = detail::real_or(j.at("li"), "sigma", 0.05, "li");
    if (!(c.li_sigma >= 0 && c.li_sigma <= max_start_sigma)) throw invalid_input("li.sigma must be in [0, 100]");
  }
  if (j.contains("polish")) {
    detail::check_keys(j.at("polish"), "polish", {"restarts", "sigma", "weight", "align_to_given"});
    const PolishOptions defaults{};
    c.polish.restarts = detail::int_or(j.at("polish"), "restarts", defaults.restarts, "polish");
    if (c.polish.restarts < 1 || c.polish.restarts > 1000) throw invalid_input("polish.restarts must be in 1..1000");
    c.polish.sigma = detail::real_or(j.at("polish"), "sigma", defaults.sigma, "polish");
    if (!(c.polish.sigma >= 0 && c.polish.sigma <= max_start_sigma))
      throw invalid_input("polish.sigma must be in [0, 100]");
    c.polish.weight = detail::real_or(j.at("polish"), "weight", defaults.weight, "polish");
    if (!(c.polish.weight >= 0 && c.polish.weight <= 1)) throw invalid_input("polish.weight must be in [0, 1]");
    c.polish.align_to_given = detail::bool_or(j.at("polish"), "align_to_given", defaults.align_to_given, "polish");
  }
  if (j.contains("er")) {
    detail::check_keys(j.at("er"), "er", {"iterations"});
    c.er.iterations = detail::int_or(j.at("er"), "iterations", 1000, "er");
    detail::check_count(c.er.iterations, 1, "er.iterations");
  }
  if (j.contains("hio")) {
    detail::check_keys(j.at("hio"), "hio", {"iterations", "beta", "final_er"});
    c.hio.iterations = detail::int_or(j.at("hio"), "iterations", 1000, "hio");
    c.hio.beta = detail::real_or(j.at("hio"), "beta", T(0.9), "hio");
    c.hio.final_er = detail::int_or(j.at("hio"), "final_er", 50, "hio");
    detail::check_count(c.hio.iterations, 1, "hio.iterations");
    if (!(c.hio.beta > 0)) throw invalid_input("hio.beta must be > 0 (Fienup's feedback parameter)");
    detail::check_count(c.hio.final_er, 0, "hio.final_er");
    if (c.hio.final_er >= c.hio.iterations)
      throw invalid_input("hio.final_er (" + std::to_string(c.hio.final_er) + ") must be less than hio.iterations (" +
                          std::to_string(c.hio.iterations) + "): HIO would run no step of its own");
  }
  if (j.contains("dpr")) c.dpr.phase = detail::read_phase(j.at("dpr"), c.dpr.phase, "dpr");
  if (j.contains("prilo")) c.prilo = detail::read_prilo<T>(j.at("prilo"), PriloReading::back_project_refine, "prilo");
  if (j.contains("prilo_chain"))
    c.prilo_chain = detail::read_prilo<T>(j.at("prilo_chain"), PriloReading::chained, "prilo_chain");
  c.set_noise(noise);
  // a PRILO section's own "noise" overrides the top-level one for that solver (keys it leaves
  // out keep the top-level values)
  if (j.contains("prilo") && j.at("prilo").contains("noise"))
    c.prilo.noise = detail::read_noise(j.at("prilo").at("noise"), noise, "prilo.noise");
  if (j.contains("prilo_chain") && j.at("prilo_chain").contains("noise"))
    c.prilo_chain.noise = detail::read_noise(j.at("prilo_chain").at("noise"), noise, "prilo_chain.noise");
  return c;
}

/// The configuration in a JSON file (configs/mnist.json, configs/fashion-mnist.json).
/// Errors name the file: file_error when it cannot be read or is not JSON (or another
/// malformed value); invalid_input, naming the section and key, for a value of the wrong type,
/// out of range or otherwise bad, or a key named twice in one object (JSON parsers keep the last
/// value).
template <class T = float>
ReconstructionConfig<T> load_reconstruction_config(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw file_error(path.string() + ": is a directory, not a config file (a JSON file)");
  std::ifstream in(path);
  if (!in) throw file_error(path.string() + ": cannot open the config file: " + std::strerror(errno));
  nlohmann::json j;
  try {
    j = detail::parse_unique_keys(in);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path.string() + ": not valid JSON: " + e.what());
  } catch (const invalid_input& e) {  // a key twice: the content, as for the checks below
    throw invalid_input(path.string() + ": bad config: " + e.what());
  } catch (const std::exception& e) {  // a read error (the stream's own exceptions): the file named
    throw file_error(path.string() + ": cannot read the config file: " + e.what());
  }
  try {
    ReconstructionConfig<T> c = reconstruction_config_from_json<T>(j);
    for (auto& f : c.resolve_judges)  // relative to the config file's folder
      if (f.model.is_relative()) f.model = (path.parent_path() / f.model).lexically_normal();
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path.string() + ": bad config: " + e.what());
  } catch (const invalid_input& e) {
    throw invalid_input(path.string() + ": bad config: " + e.what());
  }
}

/// {"mean", "ci95", "median"} of a summary.
inline nlohmann::json to_json(const metrics::Summary& s) {
  return {{"mean", s.mean}, {"ci95", s.ci95}, {"median", s.median}};
}

/// A method's entry in prilo-reconstruct --json: the summaries and per-image values of its
/// metrics, seconds, "analysis_aligned" (with aligned metrics), "per_restart" ({magnitude_error,
/// psnr}: per image, one value per restart; with every restart) and "phases" (what ran).
template <class T>
nlohmann::json method_report_json(const MethodResult<T>& r, const MethodMetrics& e) {
  using nlohmann::json;
  auto values = [](const auto& v) {
    const Vec<double> c = v;
    return std::vector<double>(c.data(), c.data() + c.size());
  };
  json mj = {{"psnr", to_json(e.psnr)},
             {"ssim", to_json(e.ssim)},
             {"magnitude_error", to_json(e.magnitude_error)},
             {"seconds", r.seconds},
             {"psnr_per_image", values(e.psnr_per_image)},
             {"ssim_per_image", values(e.ssim_per_image)},
             {"magnitude_error_per_image", values(e.magnitude_error_per_image)},
             {"fraction_psnr_ge_30", e.fraction_psnr_ge_30}};
  if (e.aligned)
    mj["analysis_aligned"] = {{"psnr", to_json(e.aligned->psnr)},
                              {"ssim", to_json(e.aligned->ssim)},
                              {"psnr_per_image", values(e.aligned->psnr_per_image)}};
  if (e.restart_psnr.size()) {
    json me = json::array(), pp = json::array();
    for (Eigen::Index j = 0; j < e.restart_psnr.rows(); ++j) {
      me.push_back(values(e.restart_magnitude_error.row(j).transpose()));
      pp.push_back(values(e.restart_psnr.row(j).transpose()));
    }
    mj["per_restart"] = {{"magnitude_error", me}, {"psnr", pp}};
  }
  for (const auto& p : r.best.phases)
    mj["phases"].push_back(
        {{"name", p.name}, {"kind", std::string(1, p.kind)}, {"layer", p.layer}, {"steps", p.steps}});
  return mj;
}

/// prilo-reconstruct --trace: per method, its TracePoints (MethodOptions::trace_reference).
template <class T>
nlohmann::json trace_report_json(const std::vector<MethodResult<T>>& results) {
  nlohmann::json tj = {
      {"note", "mean over block 0's columns (image x restart) every 10 steps; PSNR uses the ground truth: analysis"},
      {"methods", nlohmann::json::object()}};
  for (const auto& r : results) {
    auto& points = tj["methods"][r.method] = nlohmann::json::array();
    for (const auto& p : r.trace)
      points.push_back({{"step", p.step},
                        {"phase", p.phase},
                        {"kind", std::string(1, p.kind)},
                        {"magnitude_error", p.magnitude_error},
                        {"psnr", p.psnr}});
  }
  return tj;
}

}  // namespace prilo::io

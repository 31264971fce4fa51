// What a program reports about a run: output paths checked before the work, text files
// written whole, and the FLOP account of each method against the machine's peak.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core.hpp"
#include "flops.hpp"
#include "io/config.hpp"
#include "io/file.hpp"
#include "methods.hpp"
#include "metrics/stats.hpp"

namespace prilo {

/// Fails (file_error naming the option and the path) unless a file could be written at
/// `path` at the end of a run: its folder exists and is writable, and the path is not a
/// folder, a device, a pipe or a socket (links are followed). Empty paths pass. Call it before
/// any work, so a bad path costs nothing.
inline void check_output_path(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  if (path.empty()) return;
  const fs::path p(path), dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  const std::string what = option + " " + path + ": ";
  if (!fs::is_directory(dir, ec)) throw file_error(what + "the folder " + dir.string() + " does not exist");
  if (fs::is_directory(p, ec)) throw file_error(what + "is a folder, not a file");
  if (const fs::file_status st = fs::status(p, ec); fs::exists(st) && !fs::is_regular_file(st))
    throw file_error(what + "exists and is not a regular file (a device, pipe or socket): writing would replace it");
  if (::access(dir.c_str(), W_OK) != 0) throw file_error(what + "the folder " + dir.string() + " is not writable");
}

/// A program's files, named by its option: {"--json", path}. Empty paths are skipped.
using NamedPaths = std::vector<std::pair<std::string, std::string>>;

/// file_error unless every output file is a file of its own: two outputs at the same path would
/// leave one of them (the last written), and an output at an input's path would overwrite the
/// input. Paths are compared after resolving them (./a and a, links to one file).
inline void check_distinct_outputs(const NamedPaths& outputs, const NamedPaths& inputs) {
  namespace fs = std::filesystem;
  // absolute first: weakly_canonical leaves "a" relative when nothing of it exists yet, but
  // makes "./a" absolute (so "a" and "./a" compared unequal)
  auto resolved = [](const std::string& a, bool& ok) {
    std::error_code ec;
    fs::path p = fs::absolute(a, ec);
    if (!ec) p = fs::weakly_canonical(p, ec);
    ok = ok && !ec;
    return p;
  };
  auto same = [&](const std::string& a, const std::string& b) {
    bool ok = true;
    const fs::path pa = resolved(a, ok), pb = resolved(b, ok);
    return ok ? pa == pb : fs::path(a).lexically_normal() == fs::path(b).lexically_normal();
  };
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].second.empty()) continue;
    for (std::size_t j = i + 1; j < outputs.size(); ++j)
      if (!outputs[j].second.empty() && same(outputs[i].second, outputs[j].second))
        throw file_error(outputs[i].first + " and " + outputs[j].first + " name the same file, " + outputs[i].second +
                         ": each output needs its own");
    for (const auto& [option, path] : inputs)
      if (!path.empty() && same(outputs[i].second, path))
        throw file_error(outputs[i].first + " " + outputs[i].second + " is the " + option +
                         " file the program reads: writing it would overwrite it");
  }
}

/// `inputs` and every file in `files`, each named `what` (e.g. the data set's files:
/// io::dataset_files), for check_distinct_outputs.
inline NamedPaths with_files(NamedPaths inputs, const std::vector<std::filesystem::path>& files,
                             const std::string& what) {
  for (const auto& f : files) inputs.push_back({what, f.string()});
  return inputs;
}

/// Writes `text` and a newline to `path` atomically (a reader never sees half a file).
inline void write_text_file(const std::string& path, const std::string& text) {
  const std::string all = text + "\n";
  io::detail::write_file_atomic(path, reinterpret_cast<const unsigned char*>(all.data()), all.size());
}

/// The peak a run's rate is compared with, and what it is the peak of ("the FP32 FMA peak of
/// 2 thread(s)"; on the CUDA executor the GPU's, gpu::measure_peak).
struct Peak {
  double gflops = 0;
  std::string of;
};

/// A method's work: GFLOP (products, FFTs), GFLOP/s over its wall time, and that rate as a
/// share of `peak_gflops` (the FMA peak of what it ran on: Peak).
struct Work {
  double gflop = 0, products_gflop = 0, fft_gflop = 0, gflops = 0, percent_of_peak = 0;
};
inline Work work_of(const Flops& f, double seconds, double peak_gflops) {
  Work w{f.total() / 1e9, f.products / 1e9, f.fft / 1e9, 0, 0};
  if (seconds > 0) w.gflops = w.gflop / seconds;
  if (peak_gflops > 0) w.percent_of_peak = 100 * w.gflops / peak_gflops;
  return w;
}
inline nlohmann::json to_json(const Work& w, const Peak& peak) {
  return {{"gflop", w.gflop},   {"products_gflop", w.products_gflop},   {"fft_gflop", w.fft_gflop},
          {"gflops", w.gflops}, {"percent_of_peak", w.percent_of_peak}, {"peak_gflops", peak.gflops},
          {"peak_of", peak.of}};
}

namespace detail {
/// The width of the tables' method column: 22, or the longest name.
template <class T>
int method_column(const std::vector<MethodResult<T>>& results) {
  std::size_t n = 22;
  for (const auto& r : results) n = std::max(n, r.method.size());
  return int(n);
}
}  // namespace detail

/// The work table: per method GFLOP (products + FFTs), GFLOP/s and % of the peak.
template <class T>
void print_work(std::FILE* out, const std::vector<MethodResult<T>>& results, const Peak& peak) {
  const int mw = detail::method_column(results);
  std::fprintf(out, "\nwork (products + FFTs; %% peak of %.0f GFLOP/s, %s):\n", peak.gflops, peak.of.c_str());
  std::fprintf(out, "%-*s %10s %10s %10s %9s\n", mw, "method", "GFLOP", "of it FFT", "GFLOP/s", "% peak");
  for (const auto& r : results) {
    if (r.flops.total() == 0) {
      std::fprintf(out, "%-*s %10s\n", mw, r.method.c_str(), "not counted");
      continue;
    }
    const Work w = work_of(r.flops, r.seconds, peak.gflops);
    std::fprintf(out, "%-*s %10.1f %10.1f %10.1f %8.1f%%\n", mw, r.method.c_str(), w.gflop, w.fft_gflop, w.gflops,
                 w.percent_of_peak);
  }
}

/// Prints the results table (PSNR, SSIM, magnitude error, seconds; aligned PSNR/SSIM as
/// analysis when `align`) and the work table, and returns the per-method JSON report
/// (io::method_report_json with a "work" entry).
template <class T>
nlohmann::json print_results(std::FILE* out, const std::vector<MethodResult<T>>& results, const Mat<T>& truth, int h,
                             int w, bool align, const Peak& peak) {
  // the report is keyed by method name: a name twice would print two rows and keep one entry
  for (std::size_t i = 0; i < results.size(); ++i)
    for (std::size_t k = 0; k < i; ++k)
      if (results[k].method == results[i].method)
        detail::fail("print_results: method \"", results[i].method, "\" is listed twice (results ", k, " and ", i, ")");
  nlohmann::json methods = nlohmann::json::object();
  const int mw = detail::method_column(results);
  std::fprintf(out, "\n%-*s %17s %17s %12s %9s | analysis (aligned to truth): %8s %8s\n", mw, "method",
               "PSNR dB (95% CI)", "SSIM (95% CI)", "mag. error", "seconds", "PSNR", "SSIM");
  for (const auto& r : results) {
    const MethodMetrics e = evaluate_method(r, truth, h, w, align);
    std::fprintf(out, "%-*s %8.2f ± %6s %8.4f ± %6s %12.4g %9.1f |", mw, r.method.c_str(), e.psnr.mean,
                 metrics::format_ci(e.psnr.ci95, 2).c_str(), e.ssim.mean, metrics::format_ci(e.ssim.ci95, 4).c_str(),
                 e.magnitude_error.mean, r.seconds);
    if (e.aligned)
      std::fprintf(out, " %8.2f %8.4f\n", e.aligned->psnr.mean, e.aligned->ssim.mean);
    else
      std::fprintf(out, " %8s %8s\n", "-", "-");
    methods[r.method] = io::method_report_json(r, e);
    methods[r.method]["work"] = to_json(work_of(r.flops, r.seconds, peak.gflops), peak);
  }
  std::fprintf(out,
               "(PSNR capped at 100 dB for exact recoveries; aligned columns use the ground truth: analysis only)\n");
  print_work(out, results, peak);
  return methods;
}

}  // namespace prilo

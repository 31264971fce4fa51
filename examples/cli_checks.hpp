// CLI11 validators the programs share (CLI11's own wrap "-1" into an unsigned seed and clamp
// seeds past 2^64 - 1, let NaN and values beyond float's range through a range, and word a
// PositiveNumber failure as "Value 0 not in range 0.000000 to 1.797693e+308"). CLI11 puts the
// option's name in front of each message: "--count: must be an integer >= 1, got 0".
#pragma once

#include <CLI/CLI.hpp>
#include <prilo/io/idx.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

namespace prilo_cli {

/// A seed: a decimal integer in 0 .. 2^64 - 1.
inline CLI::Validator seed() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          return "not a seed (an integer from 0 to 18446744073709551615): " + v;
        errno = 0;
        (void)std::strtoull(v.c_str(), nullptr, 10);
        return errno == ERANGE ? "seed " + v + " is beyond 18446744073709551615" : std::string();
      },
      "UINT64");
}

/// A path-valued option given an empty value ("-o ''"): an error, not the default it would
/// otherwise fall back to (which may be a shipped file).
inline CLI::Validator non_empty_path() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        return v.empty() ? "empty path: give a file or folder name, or leave the option out" : "";
      },
      "PATH");
}

namespace detail {

/// v as a number of type S (float, double): "" when it is one and within [lo, hi] (lo excluded
/// when open_lo), otherwise the reason, naming the value.
template <class S>
std::string number_error(const std::string& v, double lo, bool open_lo, double hi, const std::string& want) {
  char* end = nullptr;
  errno = 0;
  const double g = v.empty() ? std::nan("") : std::strtod(v.c_str(), &end);
  const bool parsed = !v.empty() && end && *end == '\0';
  if (!parsed || !std::isfinite(g) ||
      (std::is_same_v<S, float> && std::abs(g) > double(std::numeric_limits<float>::max())))
    return "must be " + want + ", got " + (v.empty() ? std::string("an empty value") : v) +
           (parsed && std::isfinite(g) ? std::string(" (beyond the range of float, the programs' precision)") : "");
  if (open_lo ? !(g > lo) : !(g >= lo)) return "must be " + want + ", got " + v;
  if (!(g <= hi)) return "must be " + want + ", got " + v;
  if (open_lo && lo == 0 && S(g) == S(0)) return "must be " + want + ", got " + v + " (0 in the programs' precision)";
  return {};
}

inline std::string number_text(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

}  // namespace detail

/// A number >= 0, finite in S (the program's scalar type: float, or double).
template <class S = double>
CLI::Validator finite_nonnegative() {
  return CLI::Validator(
      [](std::string& v) {
        return detail::number_error<S>(v, 0, false, std::numeric_limits<double>::infinity(), "a finite number >= 0");
      },
      "NUMBER >= 0");
}

/// A number > 0, finite in S (and not 0 there).
template <class S = double>
CLI::Validator finite_positive() {
  return CLI::Validator(
      [](std::string& v) {
        return detail::number_error<S>(v, 0, true, std::numeric_limits<double>::infinity(), "a finite number > 0");
      },
      "NUMBER > 0");
}

/// A finite number in [lo, hi].
template <class S = double>
CLI::Validator finite_range(double lo, double hi) {
  const std::string want = "a number from " + detail::number_text(lo) + " to " + detail::number_text(hi);
  return CLI::Validator([lo, hi, want](std::string& v) { return detail::number_error<S>(v, lo, false, hi, want); },
                        "NUMBER in [" + detail::number_text(lo) + ", " + detail::number_text(hi) + "]");
}

/// A decimal integer >= lo that the option's integer type I holds.
template <class I = int>
CLI::Validator integer_at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& v) -> std::string {
        const std::string want = "must be an integer >= " + std::to_string(lo) + ", got ";
        char* end = nullptr;
        errno = 0;
        const long long g = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || !end || *end != '\0') return want + (v.empty() ? std::string("an empty value") : v);
        if (g < lo) return want + v;
        if (errno == ERANGE || g > static_cast<long long>(std::numeric_limits<I>::max()))
          return want + v + " (more than the largest, " + std::to_string(std::numeric_limits<I>::max()) + ")";
        return {};
      },
      "INT >= " + std::to_string(lo));
}

/// invalid_input naming --train-limit when it asks for more images than the train split of
/// `dataset` holds (its files' headers say how many), before any image is read.
inline void check_train_limit(long long limit, const std::filesystem::path& data_dir, const std::string& dataset) {
  if (limit <= 0) return;
  const std::size_t n = prilo::io::dataset_size(data_dir, dataset, "train");
  if (static_cast<unsigned long long>(limit) > n)
    throw prilo::invalid_input("--train-limit " + std::to_string(limit) + ": the train split of " + dataset + " has " +
                               std::to_string(n) + " images");
}

}  // namespace prilo_cli

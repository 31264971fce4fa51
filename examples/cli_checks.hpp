// CLI11 validators the programs share (CLI11's own wrap "-1" into an unsigned seed and clamp
// seeds past 2^64 - 1, and let NaN through a range).
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

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

/// A finite number >= 0.
inline CLI::Validator finite_nonnegative() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        const double g = std::strtod(v.c_str(), &end);
        return !v.empty() && end && *end == '\0' && std::isfinite(g) && g >= 0 ? std::string()
                                                                               : "not a finite number >= 0: " + v;
      },
      "NUMBER >= 0");
}

}  // namespace prilo_cli

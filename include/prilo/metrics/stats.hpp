// Summary statistics (mean, normal 95% CI, median) of per-image metric values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "prilo/core.hpp"

namespace prilo::metrics {

/// Reporting cap for PSNR of (near-)exact reconstructions; used only by cap_psnr().
inline constexpr double psnr_cap_db = 100.0;

/// Summary of n values.
struct Summary {
  double mean = 0;    ///< arithmetic mean
  double ci95 = 0;    ///< half-width of the normal 95% CI: 1.96 * s / sqrt(n), s the sample std
                      ///< (n-1 denominator); NaN when n == 1. The paper uses 1.96, not a t-quantile.
  double median = 0;  ///< middle value, mean of the two middle values for even n
  Eigen::Index count = 0;
};

/// Summary of the values. Throws invalid_input when there are none or any is NaN/infinite;
/// PSNR values, which are +inf for exact reconstructions, go through cap_psnr() first.
inline Summary summary(const std::vector<double>& values) {
  if (values.empty()) prilo::detail::fail("summary: no values (count is 0)");
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      prilo::detail::fail("summary: value ", i, " is ", values[i],
                          " (not finite; cap infinite PSNR values with cap_psnr first)");
  const auto n = values.size();
  Summary s;
  s.count = static_cast<Eigen::Index>(n);
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(n);
  if (n > 1) {
    double ss = 0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    const double sd = std::sqrt(ss / static_cast<double>(n - 1));
    s.ci95 = 1.96 * sd / std::sqrt(static_cast<double>(n));
  } else {
    s.ci95 = std::numeric_limits<double>::quiet_NaN();
  }
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  s.median = (n % 2 == 1) ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  return s;
}

/// A confidence interval's half-width for a table: `precision` decimals, or "n/a" where it is
/// NaN (one value has none), so a report never prints "± nan".
inline std::string format_ci(double ci95, int precision = 2) {
  if (std::isnan(ci95)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, ci95);
  return buf;
}

/// Summary of the entries of an Eigen vector (e.g. the result of psnr_batch / ssim_batch).
template <class D>
Summary summary(const Eigen::MatrixBase<D>& values) {
  static_assert(!is_complex_v<typename D::Scalar>, "summary: values must be real");
  if (values.cols() != 1 && values.rows() != 1)
    prilo::detail::fail("summary: values must be a vector, got a ", values.rows(), "x", values.cols(), " matrix");
  std::vector<double> v(static_cast<std::size_t>(values.size()));
  for (Eigen::Index i = 0; i < values.size(); ++i) v[static_cast<std::size_t>(i)] = static_cast<double>(values(i));
  return summary(v);
}

/// Copy of PSNR values with each clamped to at most cap_db (+inf -> cap_db); NaN stays NaN.
/// A reporting convention for summaries only: psnr() itself always returns +inf for exact matches.
template <class D>
Vec<double> cap_psnr(const Eigen::MatrixBase<D>& values, double cap_db = psnr_cap_db) {
  Vec<double> out(values.size());
  for (Eigen::Index i = 0; i < values.size(); ++i) {
    const double v = static_cast<double>(values(i));
    out(i) = v > cap_db ? cap_db : v;
  }
  return out;
}

}  // namespace prilo::metrics

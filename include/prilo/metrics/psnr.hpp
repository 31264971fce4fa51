// Peak signal-to-noise ratio (and MSE) of images stored as flattened vectors or matrix columns.
#pragma once

#include <cmath>
#include <limits>

#include "prilo/core.hpp"

/// Image convention of every prilo::metrics function: an h×w image is an Eigen column vector
/// (or one column of a matrix, one image per column) of length h*w, flattened row-major, i.e.
/// pixel (r, c) is element r*w + c. Metrics are computed in double whatever the scalar type
/// (as scikit-image does after converting to float64) and are returned as double.
namespace prilo::metrics {

namespace detail {

template <class D>
void require_vector(const Eigen::MatrixBase<D>& x, const char* fn, const char* what) {
  if (x.cols() != 1)
    prilo::detail::fail(fn, ": ", what, " must be a column vector (one image), got a ", x.rows(), "x", x.cols(),
                        " matrix");
}

template <class DX, class DR>
void require_same_size(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref, const char* fn) {
  if (x.rows() != ref.rows() || x.cols() != ref.cols())
    prilo::detail::fail(fn, ": size mismatch, x is ", x.rows(), "x", x.cols(), " but ref is ", ref.rows(), "x",
                        ref.cols());
  if (x.rows() == 0) prilo::detail::fail(fn, ": images are empty (0 pixels)");
}

template <class D>
void require_finite_image(const Eigen::MatrixBase<D>& x, const char* fn, const char* what) {
  if (!x.allFinite()) prilo::detail::fail(fn, ": ", what, " contains NaN or infinite values");
}

inline void require_dims(Eigen::Index rows, Eigen::Index h, Eigen::Index w, const char* fn) {
  if (h <= 0 || w <= 0) prilo::detail::fail(fn, ": image dimensions must be positive, got h=", h, ", w=", w);
  if (h > rows / w)  // also where h*w would overflow
    prilo::detail::fail(fn, ": h*w = ", h, "*", w, " does not match the image length ", rows);
  if (h * w != rows)
    prilo::detail::fail(fn, ": h*w = ", h, "*", w, " = ", h * w, " does not match the image length ", rows);
}

inline void require_data_range(double data_range, const char* fn) {
  if (!(data_range > 0) || !std::isfinite(data_range))
    prilo::detail::fail(fn, ": data_range must be positive and finite, got ", data_range);
}

template <class D>
constexpr void static_require_real() {
  static_assert(!is_complex_v<typename D::Scalar>, "prilo::metrics: images must have a real scalar type");
}

/// Sum of squared differences of two equally sized vector expressions, accumulated in double.
template <class DX, class DR>
double sum_squared_diff(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref) {
  double s = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double d = static_cast<double>(x(i)) - static_cast<double>(ref(i));
    s += d * d;
  }
  return s;
}

/// 10*log10(data_range^2 / mse) with +inf for mse == 0 (scikit-image's formula).
inline double psnr_from_mse(double mse, double data_range) {
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10((data_range * data_range) / mse);
}

}  // namespace detail

/// Mean squared error of one image pair (column vectors of equal length).
/// Throws invalid_input on a size mismatch, non-vector input or non-finite values.
template <class DX, class DR>
double mse(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref) {
  detail::static_require_real<DX>();
  detail::static_require_real<DR>();
  detail::require_same_size(x, ref, "mse");
  detail::require_vector(x, "mse", "x");
  detail::require_finite_image(x, "mse", "x");
  detail::require_finite_image(ref, "mse", "ref");
  return detail::sum_squared_diff(x, ref) / static_cast<double>(x.rows());
}

/// PSNR in dB of image x against reference ref: 10*log10(data_range^2 / MSE), exactly as
/// scikit-image's peak_signal_noise_ratio(ref, x, data_range=data_range).
///
/// Identical images give +infinity: psnr never caps. Summaries over a set of images must not
/// average infinities, so cap_psnr() (in stats.hpp) clamps to psnr_cap_db = 100 dB before
/// summary(); that cap is a reporting convention only and is applied nowhere else.
template <class DX, class DR>
double psnr(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref, double data_range = 1.0) {
  detail::static_require_real<DX>();
  detail::static_require_real<DR>();
  detail::require_data_range(data_range, "psnr");
  detail::require_same_size(x, ref, "psnr");
  detail::require_vector(x, "psnr", "x");
  detail::require_finite_image(x, "psnr", "x");
  detail::require_finite_image(ref, "psnr", "ref");
  return detail::psnr_from_mse(detail::sum_squared_diff(x, ref) / static_cast<double>(x.rows()), data_range);
}

/// PSNR of every column of X against the same column of Ref (both pixels × images).
template <class DX, class DR>
Vec<double> psnr_batch(const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DR>& Ref, double data_range = 1.0) {
  detail::static_require_real<DX>();
  detail::static_require_real<DR>();
  detail::require_data_range(data_range, "psnr_batch");
  detail::require_same_size(X, Ref, "psnr_batch");
  detail::require_finite_image(X, "psnr_batch", "X");
  detail::require_finite_image(Ref, "psnr_batch", "Ref");
  Vec<double> out(X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    out(j) = detail::psnr_from_mse(detail::sum_squared_diff(X.col(j), Ref.col(j)) / static_cast<double>(X.rows()),
                                   data_range);
  return out;
}

}  // namespace prilo::metrics

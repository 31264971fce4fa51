// Structural similarity (SSIM) matching scikit-image's structural_similarity defaults.
#pragma once

#include <vector>

#include "prilo/metrics/psnr.hpp"

namespace prilo::metrics {

/// scikit-image structural_similarity defaults reproduced by ssim().
inline constexpr Eigen::Index ssim_win_size = 7;
inline constexpr double ssim_k1 = 0.01;
inline constexpr double ssim_k2 = 0.03;

namespace detail {

/// Mean SSIM of two h×w row-major images (already validated), scikit-image defaults:
/// 7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (factor 49/48), and the mean of
/// the SSIM map over pixels at least 3 away from every border. skimage filters the whole image
/// with mode 'reflect' and then crops that 3-pixel strip, so every kept window lies entirely
/// inside the image and padding never enters; only those windows are computed here.
template <class DX, class DR>
double ssim_unchecked(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref, Eigen::Index h, Eigen::Index w,
                      double data_range) {
  constexpr Eigen::Index win = ssim_win_size;
  constexpr double np = static_cast<double>(win * win);
  const double cov_norm = np / (np - 1.0);
  const double c1 = (ssim_k1 * data_range) * (ssim_k1 * data_range);
  const double c2 = (ssim_k2 * data_range) * (ssim_k2 * data_range);
  const Eigen::Index oh = h - win + 1, ow = w - win + 1;  // number of full windows per axis

  // Horizontal 7-sums of x, y, x², y², xy for every row and every full-window column start.
  const auto n = static_cast<std::size_t>(h * ow);
  std::vector<double> sx(n), sy(n), sxx(n), syy(n), sxy(n);
  for (Eigen::Index r = 0; r < h; ++r)
    for (Eigen::Index c0 = 0; c0 < ow; ++c0) {
      double ax = 0, ay = 0, axx = 0, ayy = 0, axy = 0;
      for (Eigen::Index c = c0; c < c0 + win; ++c) {
        const double a = static_cast<double>(x(r * w + c));
        const double b = static_cast<double>(ref(r * w + c));
        ax += a, ay += b, axx += a * a, ayy += b * b, axy += a * b;
      }
      const auto k = static_cast<std::size_t>(r * ow + c0);
      sx[k] = ax, sy[k] = ay, sxx[k] = axx, syy[k] = ayy, sxy[k] = axy;
    }

  double total = 0;
  for (Eigen::Index r0 = 0; r0 < oh; ++r0)
    for (Eigen::Index c0 = 0; c0 < ow; ++c0) {
      double ax = 0, ay = 0, axx = 0, ayy = 0, axy = 0;
      for (Eigen::Index r = r0; r < r0 + win; ++r) {
        const auto k = static_cast<std::size_t>(r * ow + c0);
        ax += sx[k], ay += sy[k], axx += sxx[k], ayy += syy[k], axy += sxy[k];
      }
      const double ux = ax / np, uy = ay / np;
      const double vx = cov_norm * (axx / np - ux * ux);
      const double vy = cov_norm * (ayy / np - uy * uy);
      const double vxy = cov_norm * (axy / np - ux * uy);
      const double a1 = 2 * ux * uy + c1, a2 = 2 * vxy + c2;
      const double b1 = ux * ux + uy * uy + c1, b2 = vx + vy + c2;
      total += (a1 * a2) / (b1 * b2);
    }
  return total / static_cast<double>(oh * ow);
}

inline void require_ssim_dims(Eigen::Index rows, Eigen::Index h, Eigen::Index w, const char* fn) {
  require_dims(rows, h, w, fn);
  if (h < ssim_win_size || w < ssim_win_size)
    prilo::detail::fail(fn, ": image ", h, "x", w, " is smaller than the ", ssim_win_size, "x", ssim_win_size,
                        " SSIM window");
}

}  // namespace detail

/// Mean SSIM of image x against ref (h×w, row-major flattened column vectors), identical to
/// scikit-image structural_similarity(x, ref, data_range=data_range) with its defaults
/// (win_size=7, uniform window, K1=0.01, K2=0.03, use_sample_covariance=True); agrees with
/// skimage 0.19 to ~1e-15. Symmetric in (x, ref); 1 for identical images. Requires h, w >= 7.
template <class DX, class DR>
double ssim(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref, Eigen::Index h, Eigen::Index w,
            double data_range = 1.0) {
  detail::static_require_real<DX>();
  detail::static_require_real<DR>();
  detail::require_data_range(data_range, "ssim");
  detail::require_same_size(x, ref, "ssim");
  detail::require_vector(x, "ssim", "x");
  detail::require_ssim_dims(x.rows(), h, w, "ssim");
  detail::require_finite_image(x, "ssim", "x");
  detail::require_finite_image(ref, "ssim", "ref");
  return detail::ssim_unchecked(x, ref, h, w, data_range);
}

/// SSIM of every column of X against the same column of Ref (both (h*w) × images).
template <class DX, class DR>
Vec<double> ssim_batch(const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DR>& Ref, Eigen::Index h, Eigen::Index w,
                       double data_range = 1.0) {
  detail::static_require_real<DX>();
  detail::static_require_real<DR>();
  detail::require_data_range(data_range, "ssim_batch");
  detail::require_same_size(X, Ref, "ssim_batch");
  detail::require_ssim_dims(X.rows(), h, w, "ssim_batch");
  detail::require_finite_image(X, "ssim_batch", "X");
  detail::require_finite_image(Ref, "ssim_batch", "Ref");
  Vec<double> out(X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j) out(j) = detail::ssim_unchecked(X.col(j), Ref.col(j), h, w, data_range);
  return out;
}

}  // namespace prilo::metrics

// Alignment modulo the trivial ambiguities of Fourier magnitudes (circular shifts, point reflection).
#pragma once

#include <limits>

#include "prilo/metrics/psnr.hpp"

namespace prilo::metrics {

/// Applies a point reflection (optional) followed by a 2-D circular shift to an h×w image
/// (row-major flattened column vector, pixel (r, c) at r*w + c):
///   s(r, c)   = reflect ? x((-r) mod h, (-c) mod w) : x(r, c)
///   out(r, c) = s((r - dy) mod h, (c - dx) mod w)      (content moves down by dy, right by dx)
/// dy, dx may be any integers (taken mod h, w). All 2*h*w such transforms leave the
/// non-oversampled DFT magnitudes of a real image unchanged, and they form a group: every
/// composition of shifts and reflections is one of them. Any scalar type, complex included.
/// The global sign (−x has x's magnitudes too) is not among them: the alignment here is for
/// images known to be non-negative (prilo's reconstructions are clipped to [0, 1]); for signed
/// images, align x and −x and keep the better.
template <class D>
Vec<typename D::Scalar> apply_shift_reflect(const Eigen::MatrixBase<D>& x, Eigen::Index h, Eigen::Index w,
                                            Eigen::Index dy, Eigen::Index dx, bool reflect) {
  detail::require_vector(x, "apply_shift_reflect", "x");
  detail::require_dims(x.rows(), h, w, "apply_shift_reflect");
  const Eigen::Index sy = ((dy % h) + h) % h, sx = ((dx % w) + w) % w;
  Vec<typename D::Scalar> out(h * w);
  for (Eigen::Index r = 0; r < h; ++r) {
    Eigen::Index rs = r - sy;  // source row in s
    if (rs < 0) rs += h;
    if (reflect && rs != 0) rs = h - rs;  // row of x
    for (Eigen::Index c = 0; c < w; ++c) {
      Eigen::Index cs = c - sx;
      if (cs < 0) cs += w;
      if (reflect && cs != 0) cs = w - cs;
      out(r * w + c) = x(rs * w + cs);
    }
  }
  return out;
}

/// Writes all 2·h·w transforms of x (h·w) into columns c0 … c0 + 2·h·w − 1 of `out`, in the
/// order reflect = false then true, then dy = 0 … h − 1, then dx = 0 … w − 1 (column
/// c0 + (reflect·h + dy)·w + dx holds apply_shift_reflect(x, h, w, dy, dx, reflect)); x itself
/// is column c0. `out` may be a matrix or a writable expression of one (a block, a Map).
template <class D, class M>
void all_shifts_reflections(const Eigen::MatrixBase<D>& x, Eigen::Index h, Eigen::Index w,
                            const Eigen::MatrixBase<M>& out_, Eigen::Index c0 = 0) {
  auto& out = const_cast<Eigen::MatrixBase<M>&>(out_);  // Eigen's idiom for writable expressions taken by const&
  detail::require_vector(x, "all_shifts_reflections", "x");
  detail::require_dims(x.rows(), h, w, "all_shifts_reflections");
  if (c0 < 0) prilo::detail::fail("all_shifts_reflections: first column c0 must be >= 0, got ", c0);
  if (out.rows() != x.rows() || c0 + 2 * h * w > out.cols())
    prilo::detail::fail("all_shifts_reflections: output has ", out.rows(), "x", out.cols(), ", needs ", x.rows(),
                        " rows and ", c0 + 2 * h * w, " columns");
  Eigen::Index c = c0;
  for (int refl = 0; refl < 2; ++refl)
    for (Eigen::Index dy = 0; dy < h; ++dy)
      for (Eigen::Index dx = 0; dx < w; ++dx) out.col(c++) = apply_shift_reflect(x, h, w, dy, dx, refl == 1);
}

/// Result of align_to_reference: aligned == apply_shift_reflect(x, h, w, dy, dx, reflect).
template <class T>
struct Alignment {
  Vec<T> aligned;
  Eigen::Index dy = 0;
  Eigen::Index dx = 0;
  bool reflect = false;
  double mse = 0;   ///< MSE of aligned against ref (the minimum over all 2*h*w transforms)
  double psnr = 0;  ///< PSNR of aligned against ref for the given data_range (+inf if exact)
};

/// The transform of x among all h*w circular shifts × {identity, point reflection} (see
/// apply_shift_reflect) with the smallest MSE, i.e. the largest PSNR, against ref. With the
/// ground truth as ref this is analysis only (a method cannot know it); consensus (-avg) uses
/// it between two of a method's own solutions. Ties go to the first candidate in the order
/// reflect = false before true, then dy = 0..h-1, then dx = 0..w-1, so an already aligned x
/// stays unchanged. Direct O((h*w)^2) search: ~1.2M multiply-adds for 28×28.
template <class DX, class DR>
Alignment<typename DX::Scalar> align_to_reference(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DR>& ref,
                                                  Eigen::Index h, Eigen::Index w, double data_range = 1.0) {
  detail::static_require_real<DX>();
  detail::static_require_real<DR>();
  detail::require_data_range(data_range, "align_to_reference");
  detail::require_same_size(x, ref, "align_to_reference");
  detail::require_vector(x, "align_to_reference", "x");
  detail::require_dims(x.rows(), h, w, "align_to_reference");
  detail::require_finite_image(x, "align_to_reference", "x");
  detail::require_finite_image(ref, "align_to_reference", "ref");

  const Eigen::Index n = h * w;
  Vec<double> r = ref.template cast<double>();
  Alignment<typename DX::Scalar> best;
  double best_sse = std::numeric_limits<double>::infinity();
  for (int refl = 0; refl < 2; ++refl) {
    const Vec<double> s = apply_shift_reflect(x.template cast<double>(), h, w, 0, 0, refl == 1);
    for (Eigen::Index dy = 0; dy < h; ++dy)
      for (Eigen::Index dx = 0; dx < w; ++dx) {
        // Partial sums only grow, so a candidate is dropped once it reaches the best SSE.
        double sse = 0;
        for (Eigen::Index row = 0; row < h && sse < best_sse; ++row) {
          Eigen::Index rs = row - dy;
          if (rs < 0) rs += h;
          const double* srow = s.data() + rs * w;
          const double* rrow = r.data() + row * w;
          for (Eigen::Index c = 0; c < w; ++c) {
            Eigen::Index cs = c - dx;
            if (cs < 0) cs += w;
            const double d = srow[cs] - rrow[c];
            sse += d * d;
          }
        }
        if (sse < best_sse) {
          best_sse = sse;
          best.dy = dy;
          best.dx = dx;
          best.reflect = refl == 1;
        }
      }
  }
  best.aligned = apply_shift_reflect(x, h, w, best.dy, best.dx, best.reflect);
  // Recompute from the returned image so mse/psnr describe exactly what is handed back.
  best.mse = detail::sum_squared_diff(best.aligned, ref) / static_cast<double>(n);
  best.psnr = detail::psnr_from_mse(best.mse, data_range);
  return best;
}

}  // namespace prilo::metrics

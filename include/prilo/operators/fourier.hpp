// The non-oversampled 2-D DFT of h×w images (no zero padding), batched, via FFTW.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>

#include "../core.hpp"
#include "../fft/fftw.hpp"
#include "../fft/lanes.hpp"
#include "../flops.hpp"
#include "../parallel.hpp"

namespace prilo {

/// Scaling of the DFT. `unitary`: F = n^{-1/2} · DFT, so ‖Fx‖ = ‖x‖ (Parseval) and
/// Fᴴ = F⁻¹. `none`: F = DFT, (Fx)_k = Σ_m x_m e^{-2πi⟨k, m/N⟩} as in numpy.fft.fft2 and
/// torch.fft.fft2, and Fᴴ = n·F⁻¹.
enum class FourierScaling { unitary, none };

/// Which transforms the fused DFT loss (MagnitudeLoss<Fourier2d>, the solvers' hot path) runs
/// on the CPU. `fftw`: FFTW's batched plans, two images per complex transform. `lanes`: the
/// transforms of prilo/fft/lanes.hpp, one image per SIMD lane (blocks of 2·L images, L =
/// lanes::lanes<T>: 32 floats with AVX-512), with the spectra's split, the residual and the
/// merge on the same vectors; a last block of L … 2L − 1 columns runs with empty lanes, fewer
/// columns go through FFTW. Image sides must factor into 2, 3, 5 and 7. The two agree to
/// rounding (both are within a few ε·‖x‖ of the exact DFT; tests/test_operators.cpp checks
/// both against a naive DFT and the generic loss); solvers' results
/// differ in their last bits, and so may any figure that hangs on them. apply(), adjoint(),
/// forward_half() and backward_half() use FFTW with either engine. `automatic` (the default):
/// the lanes where they support the sides and the image has fewer than
/// automatic_lanes_pixels pixels, FFTW otherwise; engine() says which was chosen.
enum class FourierEngine { fftw, lanes, automatic };

/// FourierEngine::automatic takes the lanes for images of fewer pixels than this (sides
/// factoring into 2, 3, 5 and 7), FFTW's plans from 64×64 on. bench_fft_loss's batched rows
/// (benchmarks/README.md, twenty-third round), lanes' loss against FFTW's, one thread, float,
/// AVX-512 / AVX2 / SSE2 builds: 28×28 0.27 / 0.44 / 0.71×, 48×48 0.46 / 0.58 / 0.81×,
/// 32×32 0.87 / 0.96 / 1.05×, 64×64 1.19 / 1.51 / 1.54×, 128×128 1.14× (AVX-512); double
/// 28×28 0.45×, 32×32 0.97×, 64×64 1.22×.
inline constexpr long automatic_lanes_pixels = 64 * 64;

/// The 2-D DFT F of an h×w image stored row-major in a column (pixel (r, c) at r·w + c),
/// applied to every column of a batch. Output: the full n = h·w spectrum, frequency
/// (k1, k2) at k1·w + k2. Real input uses r2c transforms, complex input c2c. Copies share
/// one plan cache (plans are immutable and FFTW executes them thread-safely).
///
/// It holds the lane transform of the build's vector width, so it lives in that width's inline
/// namespace (prilo/fft/lanes.hpp), as that transform does: translation units built for
/// different targets (say one with -march=x86-64, one with AVX-512) get their own Fourier2d, and
/// with it their own MagnitudeLoss<Fourier2d<T>> and whatever is templated on them, instead of
/// sharing one definition whose lane transform has another width. That is all it separates:
/// other width-dependent code (the direct conv kernels, Rng::normal_block, the l1 passes, Eigen's
/// own kernels, which also need one EIGEN_MAX_ALIGN_BYTES) is still one definition per program,
/// so linking units built for different targets is not supported.
inline namespace PRILO_LANE_NAMESPACE {
template <class T>
class Fourier2d {
 public:
  using scalar = T;
  using C = std::complex<T>;

  Fourier2d(int h, int w, FourierScaling scaling = FourierScaling::unitary,
            FourierEngine engine = FourierEngine::automatic)
      : h_(h), w_(w), scaling_(scaling), plans_(make_plans(h, w)), lanes_(make_lanes(h, w, engine)) {}

  int height() const { return h_; }
  int width() const { return w_; }
  Eigen::Index input_size() const { return Eigen::Index(h_) * w_; }
  Eigen::Index output_size() const { return input_size(); }
  FourierScaling scaling() const { return scaling_; }
  FourierEngine engine() const { return lanes_ ? FourierEngine::lanes : FourierEngine::fftw; }
  /// The lane transform of FourierEngine::lanes (null with FFTW).
  const lanes::Dft2d<T>* lane_transform() const { return lanes_.get(); }
  /// Factor s with F = s · DFT.
  T scale() const { return scaling_ == FourierScaling::unitary ? T(1) / std::sqrt(T(input_size())) : T(1); }
  Eigen::Index half_size() const { return Eigen::Index(h_) * (w_ / 2 + 1); }
  const fftw::PlanCache<T>& plans() const { return *plans_; }
  /// One application to a real column: one r2c transform of h·w points (the FLOP account).
  Flops flops() const { return {0.0, real_fft_flops(double(input_size()))}; }
  /// Whether plans executed on column blocks of these batch arrays must be FFTW_UNALIGNED: a
  /// block's first column is aligned like the base pointer only when a column's byte size
  /// (real and half-spectrum) is a multiple of 16; otherwise (odd image sizes, Eigen blocks,
  /// unaligned bases) FFTW_UNALIGNED plans are used.
  bool needs_unaligned_plans(std::initializer_list<const void*> bases) const {
    return !fftw::Plan<T>::aligned_columns(
        {std::size_t(input_size()) * sizeof(T), std::size_t(half_size()) * sizeof(T)}, bases);
  }

  /// Full spectrum of real images: r2c into the half spectrum, then the Hermitian extension.
  CMat<T> apply(const Mat<T>& x) const {
    require_shape(x, input_size(), x.cols(), "Fourier2d::apply input");
    const Eigen::Index n = input_size(), hn = half_size(), wh = w_ / 2 + 1;
    CMat<T> half(hn, x.cols());
    forward_half(x, half);
    CMat<T> out(n, x.cols());
    const T s = scale();
    for_column_chunks(x.cols(), [&](Eigen::Index j0, Eigen::Index nb) {
      for (Eigen::Index j = j0; j < j0 + nb; ++j) {
        const C* hp = half.col(j).data();
        C* o = out.col(j).data();
        for (int k1 = 0; k1 < h_; ++k1) {
          for (int k2 = 0; k2 < w_; ++k2) {
            if (k2 < wh)
              o[k1 * w_ + k2] = hp[k1 * wh + k2] * s;
            else
              o[k1 * w_ + k2] = std::conj(hp[((h_ - k1) % h_) * wh + (w_ - k2)]) * s;
          }
        }
      }
    });
    return out;
  }

  /// Spectrum of complex images (c2c forward).
  CMat<T> apply(const CMat<T>& x) const {
    require_shape(x, input_size(), x.cols(), "Fourier2d::apply input");
    return c2c(x, fftw::Kind::c2c_forward, scale());
  }
  /// Other expressions (blocks, Maps, columns, products, Arrays), real or complex.
  template <class D>
  CMat<T> apply(const Eigen::DenseBase<D>& x) const {
    return apply(as_batch<T>(x));
  }

  /// Fᴴu for a batch of full spectra (c2c backward, scaled): complex images.
  CMat<T> adjoint(const CMat<T>& u) const {
    require_shape(u, output_size(), u.cols(), "Fourier2d::adjoint input");
    return c2c(u, fftw::Kind::c2c_backward, scale());
  }

  /// Half spectrum (h × (w/2+1), unscaled DFT) of real images via batched r2c.
  void forward_half(const Mat<T>& x, CMat<T>& half) const {
    require_shape(x, input_size(), x.cols(), "Fourier2d::forward_half input");
    half.resize(half_size(), x.cols());
    run_chunks(
        x.cols(), fftw::Kind::r2c,
        [&](const fftw::Plan<T>& p, Eigen::Index j0, Eigen::Index) {
          p.execute(x.col(j0).data(), half.col(j0).data());
        },
        x.data(), half.data());
  }

  /// Real images from Hermitian half spectra via batched c2r (unscaled; destroys `half`).
  void backward_half(CMat<T>& half, Mat<T>& x) const {
    require_shape(half, half_size(), half.cols(), "Fourier2d::backward_half input");
    x.resize(input_size(), half.cols());
    run_chunks(
        half.cols(), fftw::Kind::c2r,
        [&](const fftw::Plan<T>& p, Eigen::Index j0, Eigen::Index) {
          p.execute(half.col(j0).data(), x.col(j0).data());
        },
        half.data(), x.data());
  }

 private:
  static std::shared_ptr<const fftw::PlanCache<T>> make_plans(int h, int w) {
    if (h <= 0 || w <= 0) detail::fail("Fourier2d: image size must be positive, got ", h, "x", w);
    // pixel and bin indices are ints (FFTW's plans, the loss's bins): h·w must fit one
    if (std::int64_t(h) * std::int64_t(w) > std::numeric_limits<int>::max())
      detail::fail("Fourier2d: image size ", h, "x", w, " has more than ", std::numeric_limits<int>::max(), " pixels");
    return std::make_shared<const fftw::PlanCache<T>>(h, w);
  }

  static std::shared_ptr<const lanes::Dft2d<T>> make_lanes(int h, int w, FourierEngine engine) {
    if (engine == FourierEngine::fftw) return nullptr;
    if (engine == FourierEngine::automatic) {
      if (!lanes::Dft2d<T>::supported(h, w) || long(h) * long(w) >= automatic_lanes_pixels) return nullptr;
      return std::make_shared<const lanes::Dft2d<T>>(h, w);
    }
    if (engine != FourierEngine::lanes) detail::fail("Fourier2d: unknown engine ", int(engine));
    if (!lanes::Dft2d<T>::supported(h, w))
      detail::fail("Fourier2d: the lanes engine needs image sides that factor into 2, 3, 5 and 7, got ", h, "x", w,
                   " (use FourierEngine::fftw)");
    return std::make_shared<const lanes::Dft2d<T>>(h, w);
  }

  CMat<T> c2c(const CMat<T>& in, fftw::Kind kind, T s) const {
    CMat<T> out(in.rows(), in.cols());
    run_chunks(
        in.cols(), kind,
        [&](const fftw::Plan<T>& p, Eigen::Index j0, Eigen::Index) {
          p.execute(in.col(j0).data(), out.col(j0).data());
        },
        in.data(), out.data());
    if (s != T(1)) out *= s;
    return out;
  }

  // Runs one batched plan per column chunk, with plans chosen by needs_unaligned_plans.
  template <class F>
  void run_chunks(Eigen::Index cols, fftw::Kind kind, F&& f, const void* in, const void* out) const {
    const bool unaligned = needs_unaligned_plans({in, out});
    for_column_chunks(
        cols, [&](Eigen::Index j0, Eigen::Index nb) { f(plans_->get(kind, int(nb), unaligned), j0, nb); }, 16);
  }

  int h_, w_;
  FourierScaling scaling_;
  std::shared_ptr<const fftw::PlanCache<T>> plans_;
  std::shared_ptr<const lanes::Dft2d<T>> lanes_;
};
}  // namespace PRILO_LANE_NAMESPACE

}  // namespace prilo

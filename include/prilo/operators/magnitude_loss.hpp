// The magnitude loss ‖|Ax| − y‖² and its gradient, once for every operator, fused for the DFT.
#pragma once

#include <algorithm>

#include "../concepts/measurement_operator.hpp"
#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../flops.hpp"
#include "../parallel.hpp"
#include "fourier.hpp"

namespace prilo {

namespace detail {
template <class T>
T abs_value(T v) {
  return std::abs(v);
}
template <class T>
T abs_value(std::complex<T> v) {
  return std::sqrt(v.real() * v.real() + v.imag() * v.imag());
}
template <class Op, class U>
auto real_adjoint(const Op& op, const U& r) {
  if constexpr (requires { op.adjoint_real(r); }) {
    return op.adjoint_real(r);
  } else if constexpr (is_complex_v<typename U::Scalar> ||
                       is_complex_v<typename std::decay_t<decltype(op.adjoint(r))>::Scalar>) {
    using T = typename Op::scalar;
    return Mat<T>(op.adjoint(r).real());
  } else {
    return op.adjoint(r);
  }
}
}  // namespace detail

/// The loss's per-column values on executor E: a host vector on the CPU, a B×1 matrix elsewhere.
template <class E, class T>
using loss_column_t = std::conditional_t<std::is_same_v<E, CpuExecutor>, Vec<T>, matrix_t<E, T>>;

/// An operator the loss can evaluate on its executor's batches (matrix_t<executor_of_t<Op>, T>):
/// a MeasurementOperator on the CPU, or a device operator with the same members.
template <class Op>
concept ExecutorMeasurementOperator = requires {
  typename Op::scalar;
}
&&requires(const Op& op, const matrix_t<executor_of_t<Op>, typename Op::scalar>& x) {
  { op.input_size() } -> std::convertible_to<Eigen::Index>;
  { op.output_size() } -> std::convertible_to<Eigen::Index>;
  op.apply(x);
};

/// A 2-D DFT of real images that works on half spectra (r2c / c2r): what the fused loss needs.
template <class Op>
concept HalfSpectrumOperator = requires {
  typename Op::scalar;
}
&&requires(const Op& op) {
  { op.input_size() } -> std::convertible_to<Eigen::Index>;
  { op.output_size() } -> std::convertible_to<Eigen::Index>;
  { op.height() } -> std::convertible_to<int>;
  { op.width() } -> std::convertible_to<int>;
  { op.half_size() } -> std::convertible_to<Eigen::Index>;
  { op.scale() } -> std::convertible_to<typename Op::scalar>;
  { op.flops() } -> std::convertible_to<Flops>;
};

/// What MagnitudeLoss takes: a general operator or a half-spectrum DFT, on any executor.
template <class Op>
concept LossOperator = ExecutorMeasurementOperator<Op> || HalfSpectrumOperator<Op>;

/// f(x) = Σ_k (|(Ax)_k| − y_k)², per column of a batch, with gradient ∇f = 2·Re(Aᴴ[(|Ax| − y) ⊙
/// Ax/|Ax|]) (Ax/|Ax| taken as 0 where Ax = 0, a valid subgradient choice). One class for every
/// operator and executor (the CPU's, CUDA's): the loss is written once over the customisation
/// points magnitude_residual, magnitude_scores and (for half-spectrum DFTs, below)
/// symmetrise_half_spectrum, half_spectrum_loss and half_spectrum_scores, whose forms each
/// executor supplies. Holds a reference to the operator, which must outlive the loss.
template <class Op>
class MagnitudeLoss;

/// The general operator: apply, one residual pass, the real part of the adjoint.
template <class Op>
requires(ExecutorMeasurementOperator<Op> && !HalfSpectrumOperator<Op>) class MagnitudeLoss<Op> {
 public:
  using T = typename Op::scalar;
  using executor_type = executor_of_t<Op>;
  using matrix_type = matrix_t<executor_type, T>;

  /// Host measurements, validated (finite, non-negative), then moved to the operator's executor.
  MagnitudeLoss(const Op& op, Mat<T> y) : op_(&op) {
    require_shape(y, op.output_size(), y.cols(), "magnitude loss measurements y");
    require_magnitudes(y, "magnitude loss measurements y");
    y_ = from_host(executor(), std::move(y));
  }

  /// The loss keeps a pointer to the operator, which must outlive it: not from a temporary.
  template <class Y>
  MagnitudeLoss(const Op&&, Y) = delete;

  executor_type executor() const { return executor_of(*op_); }
  const matrix_type& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }

  /// Per-column loss of a batch x with as many columns as y, on the host.
  Vec<T> value(const matrix_type& x) const { return evaluate(x, nullptr); }
  /// Per-column loss on the host; writes the gradient (n×B) into grad.
  Vec<T> value_and_gradient(const matrix_type& x, matrix_type& grad) const { return evaluate(x, &grad); }

  /// Magnitudes |Ax| of a batch (m×B).
  matrix_type magnitudes(const matrix_type& x) const { return magnitudes_of(executor(), op_->apply(x)); }

  /// What scores() costs for p candidates: p applications and the p×m by m×B product.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * apply_flops(*op_) + Flops{2.0 * double(p) * double(op_->output_size()) * double(y_.cols()), 0.0};
  }

  /// S(c, j) = ‖|A x_c| − y_j‖² for every candidate column x_c against every measurement
  /// column y_j, on the host (p×B), as one matrix product: ‖a_c‖² + ‖y_j‖² − 2 a_cᵀ y_j.
  Mat<T> scores(const matrix_type& candidates) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "magnitude loss candidates");
    return magnitude_scores(executor(), magnitudes(candidates), y_);
  }

 private:
  Vec<T> evaluate(const matrix_type& x, matrix_type* grad) const {
    require_shape(x, op_->input_size(), y_.cols(), "magnitude loss input x");
    const auto ex = executor();
    auto u = op_->apply(x);
    loss_column_t<executor_type, T> loss;
    magnitude_residual(ex, u, y_, loss);  // u ← 2(|u| − y) u/|u|
    if (grad) *grad = detail::real_adjoint(*op_, u);
    return to_host_column(ex, std::move(loss));
  }

  const Op* op_;
  matrix_type y_;
};

/// The fused DFT path. For real x the spectrum is Hermitian, |X_k| = |X_{−k}|, so
/// Σ_k (|X_k| − y_k)² = Σ_k (|X_k| − ȳ_k)² + Σ_k (y_k − ȳ_k)² with ȳ_k = (y_k + y_{−k})/2.
/// The loss is then evaluated on the half spectrum of one r2c transform (bins that stand
/// for a conjugate pair weighted 2) and the gradient 2·s·DFTᴴ r comes from one c2r
/// transform of the Hermitian residual r: one FFT pair per image, no full spectrum. The
/// executor supplies the fused pass (half_spectrum_loss): FFTW on column blocks that stay in
/// cache on the CPU, two images per complex transform there (a + i·b, whose spectrum holds
/// both half spectra), cuFFT and one block-per-image kernel on CUDA.
template <HalfSpectrumOperator Op>
class MagnitudeLoss<Op> {
 public:
  using T = typename Op::scalar;
  using C = std::complex<T>;
  using executor_type = executor_of_t<Op>;
  using matrix_type = matrix_t<executor_type, T>;
  using column_type = loss_column_t<executor_type, T>;

  /// Host measurements, validated (finite, non-negative), then moved to the operator's executor.
  MagnitudeLoss(const Op& op, Mat<T> y) : op_(&op) {
    require_shape(y, op.output_size(), y.cols(), "magnitude loss measurements y");
    require_magnitudes(y, "magnitude loss measurements y");
    y_ = from_host(executor(), std::move(y));
    init();
  }
  /// Measurements already on a device executor, taken as valid magnitudes (finite, ≥ 0)
  /// without a check, which would need a host round trip.
  template <class M>
  requires(!std::is_same_v<M, Mat<T>> && std::is_same_v<M, matrix_type>) MagnitudeLoss(const Op& op, M y)
      : op_(&op), y_(std::move(y)) {
    require_shape(y_, op.output_size(), y_.cols(), "magnitude loss measurements y");
    init();
  }

  /// The loss keeps a pointer to the operator, which must outlive it: not from a temporary.
  template <class Y>
  MagnitudeLoss(const Op&&, Y) = delete;

  executor_type executor() const { return executor_of(*op_); }
  const matrix_type& measurements() const { return y_; }
  Eigen::Index batch() const { return y_.cols(); }
  const Op& op() const { return *op_; }
  /// Half-spectrum symmetrised magnitudes ȳ (h·(w/2+1) × B) and the bin weights (1 or 2, host).
  const matrix_type& half_measurements() const { return ybar_; }
  const Vec<T>& half_weights() const { return weight_; }
  /// Σ_k (y_k − ȳ_k)² per column: zero for magnitudes of a real image.
  const column_type& asymmetry() const { return offset_; }

  Vec<T> value(const matrix_type& x) const { return evaluate(x, nullptr); }
  Vec<T> value_and_gradient(const matrix_type& x, matrix_type& grad) const { return evaluate(x, &grad); }
  /// The per-column loss left on the executor (asynchronous on a device): for loops that
  /// read the values only now and then.
  void value(const matrix_type& x, column_type& loss) const { run(x, nullptr, loss); }
  void value_and_gradient(const matrix_type& x, matrix_type& grad, column_type& loss) const { run(x, &grad, loss); }
  /// Magnitudes |F x| of a batch (h·w × B), on the CPU.
  Mat<T> magnitudes(const Mat<T>& x) const requires std::is_same_v<matrix_type, Mat<T>> {
    return op_->apply(x).cwiseAbs();
  }

  /// What scores() costs for p candidates: p r2c transforms and the product on the half spectrum.
  Flops scores_flops(Eigen::Index p) const {
    return double(p) * op_->flops() + Flops{2.0 * double(p) * double(op_->half_size()) * double(y_.cols()), 0.0};
  }

  /// S(c, j) = ‖|F x_c| − y_j‖² for all candidates against all measurements, on the host
  /// (p×B), from one r2c per candidate and one matrix product on the weighted half spectrum.
  Mat<T> scores(const matrix_type& candidates) const {
    require_shape(candidates, op_->input_size(), candidates.cols(), "magnitude loss candidates");
    return half_spectrum_scores(executor(), *op_, candidates, ybar_, weight_, offset_, spec_);
  }

 private:
  void init() {
    const int w = op_->width(), wh = w / 2 + 1;
    weight_.resize(op_->half_size());
    for (Eigen::Index i = 0; i < weight_.size(); ++i) {
      const int k2 = int(i % wh);
      weight_(i) = (k2 == 0 || (w % 2 == 0 && k2 == w / 2)) ? T(1) : T(2);
    }
    symmetrise_half_spectrum(executor(), *op_, y_, ybar_, offset_);
  }
  void run(const matrix_type& x, matrix_type* grad, column_type& loss) const {
    require_shape(x, op_->input_size(), y_.cols(), "magnitude loss input x");
    if (grad == &x) {  // the pass rereads x (a pair that met a non-finite value) after writing grad
      matrix_type g;
      half_spectrum_loss(executor(), *op_, x, ybar_, weight_, offset_, &g, loss, spec_);
      *grad = std::move(g);
      return;
    }
    half_spectrum_loss(executor(), *op_, x, ybar_, weight_, offset_, grad, loss, spec_);
  }
  Vec<T> evaluate(const matrix_type& x, matrix_type* grad) const {
    column_type loss;
    run(x, grad, loss);
    return to_host_column(executor(), std::move(loss));
  }

  const Op* op_;
  matrix_type y_, ybar_;
  Vec<T> weight_;
  column_type offset_;
  // a device executor's spectrum workspace (the CPU keeps one per thread instead, so that
  // threads may evaluate one loss at once)
  mutable matrix_t<executor_type, C> spec_;
};

// ---- The CPU forms of the loss's customisation points ----

/// The per-column values on the host (a move on the CPU).
template <class T>
Vec<T> to_host_column(const CpuExecutor&, Vec<T>&& v) {
  return std::move(v);
}

/// loss_j = Σ_i (|u_ij| − y_ij)² and u_ij ← 2(|u_ij| − y_ij)·u_ij/|u_ij| (0 where u_ij = 0):
/// the residual whose real adjoint is the gradient. u real or complex.
template <class U, class T>
void magnitude_residual(const CpuExecutor&, Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic>& u, const Mat<T>& y,
                        Vec<T>& loss) {
  loss.resize(u.cols());
  for (Eigen::Index j = 0; j < u.cols(); ++j) {
    T acc = 0;
    for (Eigen::Index i = 0; i < u.rows(); ++i) {
      const U v = u(i, j);
      const T a = detail::abs_value(v);
      const T res = a - y(i, j);
      acc += res * res;
      // 2·(v·(res/a)) written as v·(2·(res/a)): both products by 2 are exact, so this is bit
      // for bit the former 2·Aᴴ(v·(res/a)) with the factor moved into the residual
      u(i, j) = a > T(0) ? v * (T(2) * (res / a)) : U(0);
    }
    loss(j) = acc;
  }
}

/// |u| element-wise.
template <class U>
auto magnitudes_of(const CpuExecutor&, const Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic>& u) {
  using T = typename Eigen::NumTraits<U>::Real;
  return Mat<T>(u.cwiseAbs());
}

/// S(c, j) = max(0, ‖a_c‖² + ‖y_j‖² − 2 a_cᵀ y_j) for magnitudes a (m×p) against y (m×B).
template <class T>
Mat<T> magnitude_scores(const CpuExecutor&, const Mat<T>& a, const Mat<T>& y) {
  Mat<T> s(a.cols(), y.cols());
  s.noalias() = T(-2) * a.transpose() * y;
  s.colwise() += a.colwise().squaredNorm().transpose();
  s.rowwise() += y.colwise().squaredNorm();
  return s.cwiseMax(T(0));
}

/// ȳ on the half spectrum and the asymmetry Σ_k (y_k − ȳ_k)² per column.
template <class T>
void symmetrise_half_spectrum(const CpuExecutor&, const Fourier2d<T>& op, const Mat<T>& y, Mat<T>& ybar,
                              Vec<T>& offset) {
  const int h = op.height(), w = op.width(), wh = w / 2 + 1;
  ybar.resize(op.half_size(), y.cols());
  offset.resize(y.cols());
  for (Eigen::Index j = 0; j < y.cols(); ++j) {
    T off = 0;
    for (int k1 = 0; k1 < h; ++k1) {
      for (int k2 = 0; k2 < w; ++k2) {
        const T a = y(k1 * w + k2, j), b = y(((h - k1) % h) * w + (w - k2) % w, j);
        const T mean = (a + b) / 2;
        off += (a - mean) * (a - mean);
        if (k2 < wh) ybar(k1 * wh + k2, j) = mean;
      }
    }
    offset(j) = off;
  }
}

namespace detail {
/// One bin of half_spectrum_residual (its scalar form, and its tail).
template <class T>
EIGEN_ALWAYS_INLINE void residual_bin(T* p, T yb, T wt, T s, T two_s, T& acc) {
  const T re = p[0] * s, im = p[1] * s;
  const T a = std::sqrt(re * re + im * im);
  const T res = a - yb;
  acc += wt * res * res;
  const T f0 = two_s * res / (a > T(0) ? a : T(1));
  const T f = a > T(0) ? f0 : T(0);
  p[0] = re * f;
  p[1] = im * f;
}

/// Whether half_spectrum_residual runs on Eigen's packets: T and std::complex<T> vectorised,
/// the complex packet a wrapper of T's (re, im interleaved), as on SSE, AVX, AVX-512 and NEON.
template <class T>
inline constexpr bool residual_packets = [] {
  namespace ei = Eigen::internal;
  if constexpr (ei::packet_traits<T>::Vectorizable && ei::packet_traits<std::complex<T>>::Vectorizable) {
    using CP = typename ei::packet_traits<std::complex<T>>::type;
    using P = typename ei::packet_traits<T>::type;
    constexpr bool wraps = requires(const P& v, const CP& c) {
      CP(v);
      ei::pcplxflip(c).v;
    };
    return wraps && 2 * ei::packet_traits<std::complex<T>>::size == ei::packet_traits<T>::size;
  } else {
    return false;
  }
}();

/// Loss terms of one column's half spectrum p (interleaved re, im; hn bins), overwriting p
/// with the residual r_k = 2·s·(|s X_k| − ȳ_k)·s X_k/|s X_k| (0 where X_k = 0); returns
/// Σ_k wt_k (|s X_k| − ȳ_k)². On Eigen's packets, interleaved as stored: |X_k|² lands in both
/// lanes of bin k (the squares plus their re/im swap, pcplxflip), ȳ and the weights are loaded
/// duplicated (ploaddup), and the sum counts every bin twice, halved at the end (exact). GCC
/// vectorises no scalar form of this loop (the stride-2 accesses and the reduction together;
/// it ran 2.5× slower). The division never sees a zero (a select picks 1 first) and the factor
/// is masked to 0 afterwards, so no lane can trap or produce inf/NaN.
template <class T>
T half_spectrum_residual(T* p, const T* yb, const T* wt, Eigen::Index hn, T s) {
  const T two_s = T(2) * s;
  Eigen::Index i = 0;
  T acc = 0;
  if constexpr (residual_packets<T>) {
    namespace ei = Eigen::internal;
    using P = typename ei::packet_traits<T>::type;
    using CP = typename ei::packet_traits<std::complex<T>>::type;
    constexpr Eigen::Index N = ei::packet_traits<std::complex<T>>::size;  // bins per packet
    const P ps = ei::pset1<P>(s), p2s = ei::pset1<P>(two_s), zero = ei::pset1<P>(T(0)), one = ei::pset1<P>(T(1));
    P acc0 = zero, acc1 = zero;
    auto bins = [&](Eigen::Index k, P& sum) {
      const P v = ei::pmul(ei::ploadu<P>(p + 2 * k), ps);
      const P sq = ei::pmul(v, v);
      const P a = ei::psqrt(ei::padd(sq, ei::pcplxflip(CP(sq)).v));
      const P res = ei::psub(a, ei::ploaddup<P>(yb + k));
      sum = ei::pmadd(ei::pmul(ei::ploaddup<P>(wt + k), res), res, sum);
      const P pos = ei::pcmp_lt(zero, a);
      const P f = ei::pand(ei::pdiv(ei::pmul(p2s, res), ei::pselect(pos, a, one)), pos);
      ei::pstoreu(p + 2 * k, ei::pmul(v, f));
    };
    for (const Eigen::Index pairs = whole_blocks(hn, 2 * N); i < pairs; i += 2 * N) {
      bins(i, acc0);
      bins(i + N, acc1);
    }
    if (i < whole_blocks(hn, N)) {
      bins(i, acc0);
      i += N;
    }
    acc = ei::predux(ei::padd(acc0, acc1)) / T(2);
  }
  for (; i < hn; ++i) residual_bin(p + 2 * i, yb[i], wt[i], s, two_s, acc);
  return acc;
}

/// The half spectra (h × (w/2+1), unscaled, interleaved) of two real images a and b from the
/// full spectrum z of a + i·b: A_k = (Z_k + conj Z_{−k})/2, B_k = (Z_k − conj Z_{−k})/(2i).
template <class T>
void split_pair_spectrum(const T* EIGEN_RESTRICT z, T* EIGEN_RESTRICT pa, T* EIGEN_RESTRICT pb, int h, int w) {
  const int wh = w / 2 + 1;
  const T half = T(0.5);
  for (int k1 = 0; k1 < h; ++k1) {
    const T* r = z + 2 * std::ptrdiff_t(k1) * w;
    const T* m = z + 2 * std::ptrdiff_t(k1 == 0 ? 0 : h - k1) * w;
    T* a = pa + 2 * std::ptrdiff_t(k1) * wh;
    T* b = pb + 2 * std::ptrdiff_t(k1) * wh;
    auto bin = [&](int k2, const T* mk) {  // mk: Z at the mirror −k
      const T zr = r[2 * k2], zi = r[2 * k2 + 1], ur = mk[0], ui = mk[1];
      a[2 * k2] = (zr + ur) * half;
      a[2 * k2 + 1] = (zi - ui) * half;
      b[2 * k2] = (zi + ui) * half;
      b[2 * k2 + 1] = (ur - zr) * half;
    };
    bin(0, m);
    for (int k2 = 1; k2 < wh; ++k2) bin(k2, m + 2 * (w - k2));
  }
}

/// The full spectrum W = R_a + i·R_b of two Hermitian spectra given by their halves ra, rb
/// (as split_pair_spectrum writes them): one backward c2c transform of W gives r_a + i·r_b,
/// the two c2r transforms of ra and rb. Bins whose mirror is also in the half (k2 = 0 and
/// k2 = w/2) are written twice, with the same values when the halves are Hermitian there.
template <class T>
void merge_pair_spectrum(const T* EIGEN_RESTRICT ra, const T* EIGEN_RESTRICT rb, T* EIGEN_RESTRICT z, int h, int w) {
  const int wh = w / 2 + 1;
  for (int k1 = 0; k1 < h; ++k1) {
    T* r = z + 2 * std::ptrdiff_t(k1) * w;
    T* m = z + 2 * std::ptrdiff_t(k1 == 0 ? 0 : h - k1) * w;
    const T* a = ra + 2 * std::ptrdiff_t(k1) * wh;
    const T* b = rb + 2 * std::ptrdiff_t(k1) * wh;
    auto bin = [&](int k2, T* mk) {
      const T ar = a[2 * k2], ai = a[2 * k2 + 1], br = b[2 * k2], bi = b[2 * k2 + 1];
      r[2 * k2] = ar - bi;
      r[2 * k2 + 1] = ai + br;
      mk[0] = ar + bi;
      mk[1] = br - ai;
    };
    bin(0, m);
    for (int k2 = 1; k2 < wh; ++k2) bin(k2, m + 2 * (w - k2));
  }
}
}  // namespace detail

namespace detail {
/// The columns the fused DFT loss transforms together from the start of a range: a lane block
/// of 2·L with FourierEngine::lanes, a pair with FFTW. A column's last bits depend on its
/// partners there, so whoever splits one batch (threads, processes) cuts at multiples of this:
/// the same partners, the same bits, whatever the split.
template <class T>
Eigen::Index fused_loss_granule(const Fourier2d<T>& op) {
  return op.lane_transform() ? 2 * Eigen::Index(lanes::lanes<T>) : 2;
}

/// half_spectrum_loss on one block of up to 2·L columns j0 … j0 + count − 1 with
/// FourierEngine::lanes (L = lanes::lanes<T>): lane l carries column j0 + l as the real part and
/// j0 + L + l as the imaginary part of one complex image, a + i·b (lanes without a column carry
/// zeros, whose loss and gradient are dropped); one forward 2-D transform of the block, then per
/// bin of the half spectrum and all lanes at once split_pair_spectrum, residual_bin on each image
/// and merge_pair_spectrum, one backward transform, and the real and imaginary parts back into
/// the columns' gradients. Returns whether every loss is finite (where one is not, the caller
/// redoes the affected columns alone, as for FFTW's pairs).
template <class T>
bool lane_pair_block(const lanes::Dft2d<T>& dft, const Mat<T>& x, const Mat<T>& ybar, const Vec<T>& weight,
                     const Vec<T>& offset, T s, Eigen::Index j0, int count, Mat<T>* grad, Vec<T>& loss) {
  using V = lanes::vec<T>;
  constexpr int L = lanes::lanes<T>;
  const int h = dft.height(), w = dft.width(), wh = w / 2 + 1;
  const Eigen::Index n = Eigen::Index(h) * w, hn = Eigen::Index(h) * wh;
  // kept per thread for the small images the engine is for; a workspace above 16 MiB (images
  // beyond about 180×180 pixels in float with AVX-512) is given back after the block
  thread_local std::vector<V> buf;
  const std::size_t need = 4 * std::size_t(n) + dft.work_size() + 2 * std::size_t(hn);
  if (buf.size() < need) buf.resize(need);
  struct Release {
    std::vector<V>& b;
    ~Release() {
      if (b.size() * sizeof(V) > (std::size_t(16) << 20)) std::vector<V>().swap(b);
    }
  } release{buf};
  V* zr = buf.data();  // the forward transform's planes, in place
  V* zi = zr + n;
  V* wr = zi + n;  // the merged residual spectrum, then the backward transform's output
  V* wi = wr + n;
  V* yba = wi + n;  // ȳ of the block's two column sets, lane-major
  V* ybb = yba + hn;
  V* work = ybb + hn;
  // a block of fewer than 2·L columns reads zeros for the missing ones and writes their
  // gradients into a sink
  thread_local std::vector<T> zeros, sink;
  if (count < 2 * L) {
    if (zeros.size() < std::size_t(n)) zeros.assign(std::size_t(n), T(0));
    if (grad && sink.size() < std::size_t(n)) sink.resize(std::size_t(n));
  }
  auto has = [&](int c) { return c < count; };
  // pack: lane l of pixel p is x(p, j0 + l) (real part) and x(p, j0 + L + l) (imaginary part)
  {
    const T* cols[4][L];
    for (int l = 0; l < L; ++l) {
      cols[0][l] = has(l) ? x.col(j0 + l).data() : zeros.data();
      cols[1][l] = has(L + l) ? x.col(j0 + L + l).data() : zeros.data();
      cols[2][l] = has(l) ? ybar.col(j0 + l).data() : zeros.data();
      cols[3][l] = has(L + l) ? ybar.col(j0 + L + l).data() : zeros.data();
    }
    lanes::gather_columns<T>(cols[0], n, zr);
    lanes::gather_columns<T>(cols[1], n, zi);
    lanes::gather_columns<T>(cols[2], hn, yba);
    lanes::gather_columns<T>(cols[3], hn, ybb);
  }
  dft.template run<false>(zr, zi, work);
  const V zero = {}, one = lanes::broadcast<V>(T(1)), half = lanes::broadcast<V>(T(0.5)), vs = lanes::broadcast<V>(s),
          v2s = lanes::broadcast<V>(T(2) * s);
  V acca = zero, accb = zero;
  // residual_bin on all lanes: r = 2s·(|sX| − ȳ)·sX/|sX| (0 where X = 0), acc += wt·(|sX| − ȳ)²
  auto residual = [&](V& re, V& im, const V& yb, T wt, V& acc) {
    re *= vs;
    im *= vs;
    const V a = lanes::sqrt(re * re + im * im);
    const V res = a - yb;
    acc += wt * res * res;
    const auto pos = a > zero;
    const V f0 = v2s * res / (pos ? a : one);
    const V f = pos ? f0 : zero;
    re *= f;
    im *= f;
  };
  for (int k1 = 0; k1 < h; ++k1) {
    const Eigen::Index row = Eigen::Index(k1) * w, mrow = Eigen::Index(k1 == 0 ? 0 : h - k1) * w;
    for (int k2 = 0; k2 < wh; ++k2) {
      const Eigen::Index k = row + k2, mk = mrow + (k2 == 0 ? 0 : w - k2), kh = Eigen::Index(k1) * wh + k2;
      const V ur = zr[mk], ui = zi[mk];
      V ar = (zr[k] + ur) * half, ai = (zi[k] - ui) * half;
      V br = (zi[k] + ui) * half, bi = (ur - zr[k]) * half;
      const T wt = weight[kh];
      residual(ar, ai, yba[kh], wt, acca);
      residual(br, bi, ybb[kh], wt, accb);
      wr[k] = ar - bi;
      wi[k] = ai + br;
      wr[mk] = ar + bi;
      wi[mk] = br - ai;
    }
  }
  bool finite = true;
  for (int l = 0; l < L; ++l) {
    if (has(l)) {
      loss(j0 + l) = acca[l] + offset(j0 + l);
      finite = finite && std::isfinite(loss(j0 + l));
    }
    if (has(L + l)) {
      loss(j0 + L + l) = accb[l] + offset(j0 + L + l);
      finite = finite && std::isfinite(loss(j0 + L + l));
    }
  }
  if (grad) {
    dft.template run<true>(wr, wi, work);
    T* cols[2][L];
    for (int l = 0; l < L; ++l) {
      cols[0][l] = has(l) ? grad->col(j0 + l).data() : sink.data();
      cols[1][l] = has(L + l) ? grad->col(j0 + L + l).data() : sink.data();
    }
    lanes::scatter_columns<T>(wr, n, cols[0]);
    lanes::scatter_columns<T>(wi, n, cols[1]);
  }
  return finite;
}

/// The most column pairs half_spectrum_loss transforms per block.
inline constexpr Eigen::Index max_pairs_per_block = 32;
/// Column pairs per block of half_spectrum_loss for images of n pixels: the two pair spectra
/// (c2c in and out) within 256 KiB, at least one pair and at most max_pairs_per_block.
template <class T>
Eigen::Index pairs_per_block(Eigen::Index n) {
  return std::clamp<Eigen::Index>(Eigen::Index(262144 / (2 * std::size_t(n) * sizeof(std::complex<T>))), 1,
                                  max_pairs_per_block);
}
}  // namespace detail

/// The fused pass on the CPU. One parallel region for the whole evaluation: each thread takes a
/// range of columns and runs it in blocks small enough (≤ 256 KiB of spectra) to stay in
/// cache between the passes, with the operator's cached batched plans and workspaces of its
/// own (the `spec` argument is for device executors). Two real images a, b go through one
/// complex transform of a + i·b each way, FFTW's complex transforms being vectorised where its
/// r2c and c2r codelets are not (a c2c pair for two 28×28 images took 0.6× the time of their
/// two r2c + c2r pairs): pack, c2c forward, split_pair_spectrum into both half spectra,
/// half_spectrum_residual on each, merge_pair_spectrum, c2c backward, unpack. A thread's odd
/// column out takes one r2c, the residual and one c2r, and so do both columns of a pair where
/// either loss came out non-finite (a NaN or inf in one column must not reach its partner).
/// The values are forward_half + residual + backward_half's up to rounding, with one
/// difference: a column's rounding errors are of the order of ε times the larger of its and
/// its partner's spectra (the columns of a solver's batch are images of one scale).
template <class T>
void half_spectrum_loss(const CpuExecutor&, const Fourier2d<T>& op, const Mat<T>& x, const Mat<T>& ybar,
                        const Vec<T>& weight, const Vec<T>& offset, Mat<T>* grad, Vec<T>& loss, CMat<T>& /*spec*/) {
  using C = std::complex<T>;
  const Eigen::Index n = op.input_size(), hn = op.half_size(), cols = x.cols();
  const int h = op.height(), w = op.width();
  if (grad) grad->resize(n, cols);
  const T s = op.scale();
  loss.resize(cols);
  constexpr Eigen::Index max_block = detail::max_pairs_per_block;
  const Eigen::Index block = detail::pairs_per_block<T>(n);
  const auto& plans = op.plans();
  for_column_chunks(
      cols,
      [&](Eigen::Index j0, Eigen::Index nb) {
        thread_local CMat<T> zin, zout, halves;
        halves.resize(hn, 2);
        T* za = reinterpret_cast<T*>(halves.col(0).data());
        T* zb = reinterpret_cast<T*>(halves.col(1).data());
        // one column alone: r2c, the residual, c2r (a thread's odd column out, and both columns
        // of a pair that met a non-finite value, so that it cannot reach its partner)
        auto single = [&](Eigen::Index j) {
          const bool unaligned_one = grad ? op.needs_unaligned_plans({x.col(j).data(), za, grad->col(j).data()})
                                          : op.needs_unaligned_plans({x.col(j).data(), za});
          plans.get(fftw::Kind::r2c, 1, unaligned_one).execute(x.col(j).data(), halves.col(0).data());
          loss(j) = detail::half_spectrum_residual(za, ybar.col(j).data(), weight.data(), hn, s) + offset(j);
          if (grad) plans.get(fftw::Kind::c2r, 1, unaligned_one).execute(halves.col(0).data(), grad->col(j).data());
        };
        // FourierEngine::lanes: blocks of 2·L columns on the lanes, the last one partly empty
        // when at least L columns are left for it (a block costs about what L/3 columns do
        // through FFTW); fewer go through FFTW below
        if (const auto* dft = op.lane_transform()) {
          constexpr Eigen::Index L = lanes::lanes<T>;
          while (nb >= L) {
            const Eigen::Index c = std::min(nb, 2 * L);
            if (!detail::lane_pair_block(*dft, x, ybar, weight, offset, s, j0, int(c), grad, loss))
              for (Eigen::Index l = 0; l < L; ++l) {
                const bool has_b = L + l < c;
                if (!std::isfinite(loss(j0 + l)) || (has_b && !std::isfinite(loss(j0 + L + l)))) {
                  single(j0 + l);
                  if (has_b) single(j0 + L + l);
                }
              }
            j0 += c;
            nb -= c;
          }
        }
        const Eigen::Index all_pairs = nb / 2;
        zin.resize(n, std::min(block, std::max<Eigen::Index>(all_pairs, 1)));
        zout.resize(n, zin.cols());
        // a block's pair columns are aligned like the workspaces' bases when a column's byte
        // size is a multiple of 16; otherwise FFTW_UNALIGNED plans
        const bool unaligned = !fftw::Plan<T>::aligned_columns({std::size_t(n) * sizeof(C)}, {zin.data(), zout.data()});
        for (Eigen::Index q0 = 0; q0 < all_pairs; q0 += block) {
          const Eigen::Index pairs = std::min(block, all_pairs - q0);
          const Eigen::Index b0 = j0 + 2 * q0;
          for (Eigen::Index q = 0; q < pairs; ++q) {
            const T* a = x.col(b0 + 2 * q).data();
            const T* b = x.col(b0 + 2 * q + 1).data();
            C* z = zin.col(q).data();
            for (Eigen::Index i = 0; i < n; ++i) z[i] = C(a[i], b[i]);
          }
          plans.get(fftw::Kind::c2c_forward, int(pairs), unaligned).execute(zin.data(), zout.data());
          bool isolate[max_block] = {};
          bool any_isolated = false;
          for (Eigen::Index q = 0; q < pairs; ++q) {
            const Eigen::Index ja = b0 + 2 * q, jb = ja + 1;
            detail::split_pair_spectrum(reinterpret_cast<const T*>(zout.col(q).data()), za, zb, h, w);
            loss(ja) = detail::half_spectrum_residual(za, ybar.col(ja).data(), weight.data(), hn, s) + offset(ja);
            loss(jb) = detail::half_spectrum_residual(zb, ybar.col(jb).data(), weight.data(), hn, s) + offset(jb);
            isolate[q] = !std::isfinite(loss(ja)) || !std::isfinite(loss(jb));
            any_isolated = any_isolated || isolate[q];
            if (grad) detail::merge_pair_spectrum(za, zb, reinterpret_cast<T*>(zin.col(q).data()), h, w);
          }
          if (grad) {
            plans.get(fftw::Kind::c2c_backward, int(pairs), unaligned).execute(zin.data(), zout.data());
            for (Eigen::Index q = 0; q < pairs; ++q) {
              const C* z = zout.col(q).data();
              T* ga = grad->col(b0 + 2 * q).data();
              T* gb = grad->col(b0 + 2 * q + 1).data();
              for (Eigen::Index i = 0; i < n; ++i) {
                ga[i] = z[i].real();
                gb[i] = z[i].imag();
              }
            }
          }
          if (any_isolated)
            for (Eigen::Index q = 0; q < pairs; ++q)
              if (isolate[q]) {
                single(b0 + 2 * q);
                single(b0 + 2 * q + 1);
              }
        }
        if (nb % 2 == 1) single(j0 + nb - 1);
      },
      16, detail::fused_loss_granule(op));
}

/// MII's scores on the CPU: one r2c per candidate (per-thread workspaces: MII calls this chunk
/// after chunk with the same shapes) and one product on the weighted half spectrum.
template <class T>
Mat<T> half_spectrum_scores(const CpuExecutor&, const Fourier2d<T>& op, const Mat<T>& candidates, const Mat<T>& ybar,
                            const Vec<T>& weight, const Vec<T>& offset, CMat<T>& /*spec*/) {
  thread_local CMat<T> X;
  thread_local Mat<T> a, wa;
  op.forward_half(candidates, X);
  a = (X.real().array().square() + X.imag().array().square()).sqrt().matrix() * op.scale();  // not hypot: vectorises
  wa = a.array().colwise() * weight.array();
  Mat<T> s(a.cols(), ybar.cols());
  s.noalias() = T(-2) * wa.transpose() * ybar;
  s.colwise() += (wa.array() * a.array()).colwise().sum().matrix().transpose();
  const Vec<T> yy = (ybar.array().square().colwise() * weight.array()).colwise().sum().transpose() + offset.array();
  s.rowwise() += yy.transpose();
  return s.cwiseMax(T(0));
}

/// Deduction guide helper: make_loss(op, y).
template <LossOperator Op>
MagnitudeLoss<Op> make_loss(const Op& op, Mat<typename Op::scalar> y) {
  return MagnitudeLoss<Op>(op, std::move(y));
}
/// The loss keeps a pointer to op, which must outlive it: a temporary operator is refused.
template <LossOperator Op>
void make_loss(const Op&&, Mat<typename Op::scalar>) = delete;

/// Measurements y = |Ax| of a batch of signals.
template <MeasurementOperator Op>
Mat<typename Op::scalar> measure(const Op& op, const Mat<typename Op::scalar>& x) {
  return op.apply(x).cwiseAbs();
}

}  // namespace prilo

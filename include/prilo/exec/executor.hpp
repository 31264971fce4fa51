// Executors: where an algorithm's work runs, chosen at compile time, and the customisation
// points every algorithm is written over. This header holds the concept, the CPU executor
// and the CPU forms of the customisation points; prilo/backend/cuda/executor.cuh adds the
// CUDA executor and its forms.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <span>
#include <type_traits>
#include <utility>

#include "../backend/cpu.hpp"
#include "../core.hpp"
#include "../fft/lanes.hpp"
#include "../random.hpp"

namespace prilo {

/// An executor says where work runs (the CPU's threads, a CUDA stream) and which matrix type
/// holds batches there. Algorithms (optimisers, DPR, PRILO, the pipeline) are written once over
/// the customisation points below, called unqualified with the executor as first argument, so
/// that overload resolution (and argument-dependent lookup, for executors in other namespaces)
/// picks each executor's form; there is no virtual call and no run-time dispatch. An executor
/// is a small value type: copying one copies handles, not resources.
template <class E>
concept Executor = std::copy_constructible<E> && requires {
  // the backend tag (prilo::cpu, prilo::cuda): names the storage and the default products;
  typename E::backend;
  // the matrix type of a batch of scalars T (one sample per column) on this executor.
  typename E::template matrix<float>;
  typename E::template matrix<double>;
};

/// The CPU executor: batches are prilo::Mat (Eigen, column-major), products go to Eigen's
/// GEMM (or the BLAS it is built with), FFTs to FFTW, and batched work is split over columns
/// with OpenMP (cpu::set_threads). The customisation points' CPU forms are the reference
/// behaviour every other executor matches.
struct CpuExecutor {
  using backend = cpu;
  template <class T>
  using matrix = Mat<T>;
  template <class T>
  using vector = Vec<T>;
};
static_assert(Executor<CpuExecutor>);

/// The matrix type of executor E for scalar T.
template <class E, class T>
using matrix_t = typename E::template matrix<T>;

namespace detail {
template <class E, class T>
struct vector_type {
  using type = typename E::template matrix<T>;
};
template <class E, class T>
requires requires {
  typename E::template vector<T>;
}
struct vector_type<E, T> {
  using type = typename E::template vector<T>;
};
}  // namespace detail

/// The type executor E holds a vector of scalars T in (a layer's bias): `E::vector<T>` when E
/// names one (prilo::Vec on the CPU), else its matrix type with one column.
template <class E, class T>
using vector_t = typename detail::vector_type<E, T>::type;

/// The executor a generator (or any part) runs on: `g.executor()` when it has one, the CPU
/// executor otherwise (every host-only part, e.g. nn::Sequential).
template <class G>
auto executor_of(const G& g) {
  if constexpr (requires { g.executor(); })
    return g.executor();
  else
    return CpuExecutor{};
}
template <class G>
using executor_of_t = decltype(executor_of(std::declval<const G&>()));

/// Coefficients of one Adam step k (1-based): bias corrections c1 = 1/(1−β₁^k), c2 = 1/(1−β₂^k).
template <class T>
struct AdamStep {
  T beta1, beta2, c1, c2, learning_rate, epsilon;
};

// ---------------------------------------------------------------------------------------
// Customisation points, CPU forms. Every executor provides the same set with the same
// semantics; each comment states the contract.
// ---------------------------------------------------------------------------------------

/// A rows × cols batch of zeros.
template <class T>
Mat<T> zeros(const CpuExecutor&, Eigen::Index rows, Eigen::Index cols) {
  return Mat<T>::Zero(rows, cols);
}

/// A copy of m (device-to-device on a device executor).
template <class T>
Mat<T> clone(const CpuExecutor&, const Mat<T>& m) {
  return m;
}

/// out ← s · (a − b), out resized to a's shape (a and b have the same shape).
template <class T>
void scaled_difference(const CpuExecutor&, Mat<T>& out, const Mat<T>& a, const Mat<T>& b, T s) {
  require_shape(b, a.rows(), a.cols(), "scaled_difference b");
  // one pass (same shape every call: no allocation after the first)
  if (s == T(1))
    out = a - b;
  else
    out = (a - b) * s;
}

/// ‖column j‖² for every column, on the host.
template <class T>
Vec<T> column_sq_norms(const CpuExecutor&, const Mat<T>& m) {
  return m.colwise().squaredNorm().transpose();
}

/// dst.col(j) ← src.col(j) for every j in cols (same shapes).
template <class T>
void copy_columns(const CpuExecutor&, Mat<T>& dst, const Mat<T>& src, std::span<const Eigen::Index> cols) {
  require_shape(src, dst.rows(), dst.cols(), "copy_columns source");
  for (const Eigen::Index j : cols)
    if (j < 0 || j >= dst.cols()) detail::fail("copy_columns: column ", j, " outside 0..", dst.cols() - 1);
  for (const Eigen::Index j : cols) dst.col(j) = src.col(j);
}

/// The batch on the host (a move, on the CPU).
template <class T>
Mat<T> to_host(const CpuExecutor&, Mat<T> m) {
  return m;
}
/// A host matrix on the executor (a copy, on the CPU).
template <class T>
Mat<T> from_host(const CpuExecutor&, const Mat<T>& m) {
  return m;
}

/// dst ← the columns [first, first + cols) of a host matrix, on the executor (dst resized;
/// its buffer reused when the shape repeats).
template <class T>
void copy_from_host(const CpuExecutor&, Mat<T>& dst, const Mat<T>& host, Eigen::Index first, Eigen::Index cols) {
  if (first < 0 || cols < 0 || first > host.cols() - cols)
    detail::fail("copy_from_host: columns ", first, "..", first + cols, " outside 0..", host.cols());
  dst = host.middleCols(first, cols);
}

/// g ← g + σ·u, u ~ N(0, I) drawn from rng (no draw when σ = 0).
template <class T>
void add_normal(const CpuExecutor&, Mat<T>& g, T sigma, Rng& rng) {
  if (sigma > T(0)) rng.add_normal(g.data(), g.size(), sigma);
}

namespace detail {
/// Adam's update of n values: g ← g + σ·u (when u is given), m ← β₁m + (1−β₁)g,
/// v ← β₂v + (1−β₂)g², x ← x − α (m·c₁)/(√(v·c₂) + ε), with g + σ·u, β₁m + (1−β₁)g and
/// β₂v + ((1−β₂)g)·g each one fused multiply-add where the target has FMA (detail::fmadd: what
/// GCC's default contraction made of the plain loop at -O3, so the same bits as before, now at
/// every optimisation level and -ffp-contract setting). Written on the build's SIMD vectors
/// (prilo/fft/lanes.hpp) with the target's square root: GCC vectorises the plain loop only
/// with -fno-math-errno (sqrt may set errno) and, at -O2, only where it can rule out aliasing
/// without run-time checks, so users who include these headers with their own flags got it
/// scalar: 13-14x slower on AVX-512 (benchmarks/README.md, bench_user_flags). Types without
/// SIMD vectors here (other than float and double) take the scalar loop alone.
template <class T>
void adam_span(T* x, T* m, T* v, const T* g, const T* u, T sigma, Eigen::Index n, const AdamStep<T>& c) {
  const T b1 = c.beta1, b2 = c.beta2, c1 = c.c1, c2 = c.c2, lr = c.learning_rate, eps = c.epsilon;
  const T b1c = T(1) - b1, b2c = T(1) - b2;
  Eigen::Index i = 0;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    using V = lanes::vec<T>;
    constexpr int L = lanes::lanes<T>;
    const V vb1 = lanes::broadcast<V>(b1), vb2 = lanes::broadcast<V>(b2), vs = lanes::broadcast<V>(sigma);
    for (const Eigen::Index whole = whole_blocks(n, Eigen::Index(L)); i < whole; i += L) {
      V gi = lanes::load(g + i);
      if (u) gi = lanes::fmadd(vs, lanes::load(u + i), gi);
      const V mi = lanes::fmadd(vb1, lanes::load(m + i), b1c * gi);
      const V vi = lanes::fmadd(vb2, lanes::load(v + i), (b2c * gi) * gi);
      lanes::store(m + i, mi);
      lanes::store(v + i, vi);
      lanes::store(x + i, lanes::load(x + i) - lr * (mi * c1) / (lanes::sqrt(vi * c2) + eps));
    }
  }
  for (; i < n; ++i) {
    const T gi = u ? fmadd(sigma, u[i], g[i]) : g[i];
    const T mi = fmadd(b1, m[i], b1c * gi), vi = fmadd(b2, v[i], (b2c * gi) * gi);
    m[i] = mi;
    v[i] = vi;
    x[i] -= lr * (mi * c1) / (std::sqrt(vi * c2) + eps);
  }
}
}  // namespace detail

/// One Adam update with gradient g + σ·u (u ~ N(0, I) from rng when σ > 0):
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², x ← x − α (m·c₁)/(√(v·c₂) + ε). One pass over the
/// batch: the noise is drawn block by block (Rng::normal_block, add_normal's stream) and used
/// at once, so no noisy copy of the gradient is written and read back (`scratch` is unused on
/// the CPU). All shapes equal (checked by the caller).
template <class T>
void adam_update(const CpuExecutor&, Mat<T>& x, Mat<T>& m, Mat<T>& v, const Mat<T>& grad, const AdamStep<T>& c, T sigma,
                 Rng& rng, Mat<T>& /*scratch*/) {
  const Eigen::Index n = x.size();
  T* xd = x.data();
  T* md = m.data();
  T* vd = v.data();
  const T* gd = grad.data();
  if (!(sigma > T(0))) {
    detail::adam_span<T>(xd, md, vd, gd, nullptr, T(0), n, c);
    return;
  }
  alignas(64) float u[Rng::kNormalBlock];
  for (Eigen::Index i0 = 0; i0 < n; i0 += Rng::kNormalBlock) {
    const int len = int(std::min<Eigen::Index>(Rng::kNormalBlock, n - i0));
    rng.normal_block(u, len);
    // g + σ·u: the same expression as adding σ·u to a copy of the gradient first (bit for bit)
    if constexpr (std::is_same_v<T, float>) {
      detail::adam_span<T>(xd + i0, md + i0, vd + i0, gd + i0, u, sigma, len, c);
    } else {
      alignas(64) T ut[Rng::kNormalBlock];
      for (int k = 0; k < len; ++k) ut[k] = T(u[k]);
      detail::adam_span<T>(xd + i0, md + i0, vd + i0, gd + i0, ut, sigma, len, c);
    }
  }
}

/// One gradient-descent update with gradient noise (the paper's Eq. 10 before projection):
/// x ← x − α(g + σ·u), u ~ N(0, I) from rng when σ > 0 (`scratch` may hold the noisy gradient).
template <class T>
void gradient_step(const CpuExecutor& ex, Mat<T>& x, const Mat<T>& grad, T learning_rate, T sigma, Rng& rng,
                   Mat<T>& scratch) {
  scratch = grad;
  add_normal(ex, scratch, sigma, rng);
  x.noalias() -= learning_rate * scratch;
}

/// Projects every column of x onto the policy's set around the matching (or broadcast)
/// column of centre: the policy's own project(x, centre) on the CPU.
template <class T, class P>
void project(const CpuExecutor&, const P& policy, Mat<T>& x, const Mat<T>& centre) {
  policy.project(x, centre);
}

/// Ends a phase of work: on the CPU nothing is pending; a device executor synchronises and
/// raises what its kernels flagged (e.g. a non-finite column met by the projection), so both
/// executors throw invalid_input for the same inputs.
inline void finish_phase(const CpuExecutor&, const char*) {}
/// Begins a phase of work: a device executor forgets what an earlier phase, ended by an
/// exception before its finish_phase, left flagged; nothing on the CPU.
inline void start_phase(const CpuExecutor&) {}

}  // namespace prilo

// the layers' customisation points (gemm, bias_activation, activation_cotangent, add_row_sums,
// set_zero), CPU forms
#include "kernels.hpp"

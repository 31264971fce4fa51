// Basic types, error reporting and input validation shared by every prilo header.
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

/// On a function whose loops GCC vectorises: on an AVX-512 build, use 512-bit vectors there
/// (GCC's -march=native prefers 256-bit ones on these CPUs, for the whole program). The
/// values are the same (the same operations per lane); only the loops' width changes. The
/// function is not inlined: inlined, it would take its caller's preference (a lambda called
/// inside such a function takes PRILO_INLINE_LAMBDA, which GCC may otherwise leave out of line,
/// their target options differing). A no-op on other compilers and instruction sets, and where
/// PRILO_NO_WIDE_VECTORS is defined (for CPUs whose clock drops under 512-bit code, the reason
/// GCC prefers 256 bits).
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__AVX512F__) && \
    !defined(PRILO_NO_WIDE_VECTORS)
#define PRILO_WIDE_VECTORS __attribute__((target("prefer-vector-width=512"), noinline))
#else
#define PRILO_WIDE_VECTORS
#endif

/// On a lambda that must be inlined at every optimisation level (GCC and Clang): those given
/// to static_for, and those called inside a PRILO_WIDE_VECTORS function.
#if defined(__GNUC__) || defined(__clang__)
#define PRILO_INLINE_LAMBDA __attribute__((always_inline))
#else
#define PRILO_INLINE_LAMBDA
#endif

/// On a kernel whose callees must all be inlined into it (GCC's flatten), where GCC would
/// otherwise leave one out of line: Eigen's ptranspose of a block of packets (16 × 16 floats
/// with AVX-512), which GCC called out of line at -O2 and, at -O3, from the larger kernels (the
/// block then went through memory). Not on an always_inline function: GCC flattens a function's
/// body as compiled on its own, and an always_inline one is inlined into its callers first (a
/// flattened always_inline wrapper around ptranspose still left the call). Clang accepts the
/// attribute but flattens only direct callees; it inlines these transposes by its own choice.
#if defined(__GNUC__) || defined(__clang__)
#define PRILO_FLATTEN __attribute__((flatten))
#else
#define PRILO_FLATTEN
#endif

namespace prilo {

namespace detail {
/// a·b + c rounded once where the target has FMA instructions (std::fma, one instruction
/// there; what GCC's default contraction makes of a·b + c), else a·b + c rounded twice: the
/// same bits at every optimisation level and -ffp-contract setting, where a plain a·b + c is
/// fused or not at the compiler's choice (and in a·b + c·d, either product).
/// (__FP_FAST_FMA and __FP_FAST_FMAF: the targets with FMA that define neither of the others,
/// where GCC would otherwise fuse a plain a·b + c.)
template <class T>
EIGEN_ALWAYS_INLINE T fmadd(T a, T b, T c) {
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__FP_FAST_FMA) || defined(__FP_FAST_FMAF)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

template <class F, int... I>
EIGEN_ALWAYS_INLINE void static_for_each(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
}  // namespace detail

/// f(0), f(1), …, f(N − 1), each index a std::integral_constant<int, i>: the loops of a
/// register tile (accumulators acc[R][C]) written out by construction. GCC unrolls such loops
/// of constant count and keeps the array in registers at -O3 only; at -O2 (CMake's
/// RelWithDebInfo, users' own builds) the array stayed in memory, a load and a store around
/// every FMA, and the conv decoder ran 2.1-2.4x slower (benchmarks/README.md, bench_user_flags).
/// With static_for and PRILO_INLINE_LAMBDA every index is a constant after inlining at any
/// level, the same operations in the same order (the same bits).
template <int N, class F>
EIGEN_ALWAYS_INLINE void static_for(F&& f) {
  detail::static_for_each(f, std::make_integer_sequence<int, N>{});
}

/// The end of the whole blocks of s values in [0, n) (n − n mod s; 0 for n <= 0): a vector
/// loop runs to it and a scalar loop does the rest. Computed before the loop rather than tested
/// as `i + s <= n`, with which GCC 12 warned (-Waggressive-loop-optimizations, on by default) of
/// an overflowing tail iteration where n is a constant multiple of s: -Werror builds failed.
template <class I>
constexpr I whole_blocks(I n, I s) {
  return n > 0 ? n - n % s : I(0);
}

/// Column-major dense matrix: the batch layout of the CPU backend (one column per sample).
template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class T>
using CMat = Mat<std::complex<T>>;
template <class T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// An Eigen expression of real or complex values (a block, a Map, a product, a column, an
/// Array) as the batch type operators take: Mat<T> for T, CMat<T> for std::complex<T>.
/// Operators whose apply has both a real and a complex overload take other expressions through
/// it, since Eigen builds either matrix from a real expression and the two overloads would be
/// ambiguous.
template <class T, class Derived>
auto as_batch(const Eigen::DenseBase<Derived>& x) {
  using S = typename Derived::Scalar;
  static_assert(std::is_same_v<S, T> || std::is_same_v<S, std::complex<T>>,
                "prilo operator: the batch's scalar type must be the operator's scalar or its complex type "
                "(cast the batch to the operator's precision first)");
  if constexpr (std::is_same_v<S, T>)
    return Mat<T>(x);
  else
    return CMat<T>(x);
}

/// Every error the library raises for bad input derives from std::invalid_argument,
/// and its message names the argument and the problem.
struct invalid_input : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Raised for bad files (truncated, corrupt, wrong format); the message names the file.
struct file_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
struct is_complex : std::false_type {};
template <class T>
struct is_complex<std::complex<T>> : std::true_type {};
template <class T>
inline constexpr bool is_complex_v = is_complex<T>::value;

/// Real type underlying a (possibly complex) scalar.
template <class T>
struct real_of {
  using type = T;
};
template <class T>
struct real_of<std::complex<T>> {
  using type = T;
};
template <class T>
using real_t = typename real_of<T>::type;

namespace detail {
template <class... Args>
[[noreturn]] inline void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw invalid_input(os.str());
}
/// The mean of a batch's per-column values, as progress reports and callbacks show it: NaN for
/// an empty batch (Eigen's mean() of no values reads past them).
template <class D>
double batch_mean(const Eigen::DenseBase<D>& v) {
  return v.size() == 0 ? std::numeric_limits<double>::quiet_NaN() : double(v.mean());
}
}  // namespace detail

/// Throws invalid_input "<what>: expected R×C, got r×c" when the shape differs.
template <class Derived>
void require_shape(const Eigen::DenseBase<Derived>& m, Eigen::Index rows, Eigen::Index cols, const char* what) {
  if (m.rows() != rows || m.cols() != cols)
    detail::fail(what, ": expected a ", rows, "x", cols, " matrix, got ", m.rows(), "x", m.cols());
}

/// Throws invalid_input when any entry is NaN or infinite.
template <class Derived>
void require_finite(const Eigen::DenseBase<Derived>& m, const char* what) {
  if (!m.allFinite()) detail::fail(what, ": contains NaN or infinite values");
}

/// Magnitudes must be finite and non-negative.
template <class Derived>
void require_magnitudes(const Eigen::MatrixBase<Derived>& y, const char* what) {
  require_finite(y, what);
  if (y.size() > 0 && y.minCoeff() < 0) detail::fail(what, ": magnitudes must be non-negative, found ", y.minCoeff());
}

}  // namespace prilo

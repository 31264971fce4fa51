// Element-wise activations with derivatives written in terms of their outputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "../core.hpp"
#include "parameter.hpp"

namespace prilo::nn {

/// Activation functions as stateless function objects: value(v) and derivative_from_output(y)
/// (each of these activations is monotone, so its derivative is a function of its output and
/// backprop needs only the stored outputs).
struct Identity {
  static constexpr const char* name = "identity";
  template <class T>
  static T value(T v) {
    return v;
  }
  template <class T>
  static T derivative_from_output(T) {
    return T(1);
  }
  template <class T>
  static T cotangent(T g, T) {
    return g;
  }
  /// value() on an Eigen packet of T (the direct convolution kernels fuse it into their tiles).
  template <class T, class P>
  static P value_packet(const P& v) {
    return v;
  }
};
struct Relu {
  static constexpr const char* name = "relu";
  template <class T>
  static T value(T v) {
    return v > T(0) ? v : T(0);
  }
  template <class T>
  static T derivative_from_output(T y) {
    return y > T(0) ? T(1) : T(0);
  }
  /// g·act'(y) as a select (GCC vectorises it; it does not vectorise g·(y > 0 ? 1 : 0)).
  template <class T>
  static T cotangent(T g, T y) {
    return y > T(0) ? g : T(0);
  }
  /// value() on an Eigen packet of T, the same select (NaN → 0 as the scalar form).
  template <class T, class P>
  static P value_packet(const P& v) {
    namespace ei = Eigen::internal;
    const P zero = ei::pset1<P>(T(0));
    return ei::pselect(ei::pcmp_lt(zero, v), v, zero);
  }
  /// cotangent() on Eigen packets of T, the same select.
  template <class T, class P>
  static P cotangent_packet(const P& g, const P& y) {
    namespace ei = Eigen::internal;
    const P zero = ei::pset1<P>(T(0));
    return ei::pselect(ei::pcmp_lt(zero, y), g, zero);
  }
};
/// Leaky ReLU with PyTorch's default slope 0.01.
struct LeakyRelu {
  static constexpr const char* name = "leaky_relu";
  static constexpr double slope = 0.01;
  /// max(v, slope·v): the same value as v > 0 ? v : slope·v for 0 < slope < 1 (±0 and NaN
  /// included), and a max that GCC vectorises on AVX2, where it keeps the select scalar (the
  /// multiply sits in one arm, and it may not be hoisted under -ftrapping-math).
  template <class T>
  static T value(T v) {
    return std::max(v, T(slope) * v);
  }
  template <class T>
  static T derivative_from_output(T y) {
    return y > T(0) ? T(1) : T(slope);
  }
  template <class T>
  static T cotangent(T g, T y) {
    return y > T(0) ? g : T(slope) * g;
  }
  /// value() on an Eigen packet of T: std::max(v, slope·v) as std::max computes it
  /// (v < slope·v ? slope·v : v), so every input, NaN included, gives the scalar form's value.
  template <class T, class P>
  static P value_packet(const P& v) {
    namespace ei = Eigen::internal;
    const P sv = ei::pmul(ei::pset1<P>(T(slope)), v);
    return ei::pselect(ei::pcmp_lt(v, sv), sv, v);
  }
  /// The same select on an Eigen packet of T (nn::apply_cotangent takes it where an activation
  /// has one): GCC 12 keeps every scalar form of it scalar on AVX2 (it turns each rewriting back
  /// into a branch whose arm multiplies, and may not if-convert that under -ftrapping-math),
  /// which left the LeakyReLU conv layers 5× slower than their GEMM floor.
  template <class T, class P>
  static P cotangent_packet(const P& g, const P& y) {
    namespace ei = Eigen::internal;
    return ei::pselect(ei::pcmp_lt(ei::pset1<P>(T(0)), y), g, ei::pmul(ei::pset1<P>(T(slope)), g));
  }
};
struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  template <class T>
  static T value(T v) {
    return T(1) / (T(1) + std::exp(-v));
  }
  template <class T>
  static T derivative_from_output(T y) {
    return y * (T(1) - y);
  }
  /// g·y·(1 − y) on Eigen packets of T, the scalar form's operations in its order
  /// (g·(y·(1 − y))), so the same bits: the conv layers' fills and the modulation's one-pass
  /// VJP take it instead of masking in a pass of their own.
  template <class T, class P>
  static P cotangent_packet(const P& g, const P& y) {
    namespace ei = Eigen::internal;
    return ei::pmul(g, ei::pmul(y, ei::psub(ei::pset1<P>(T(1)), y)));
  }
};
struct Tanh {
  static constexpr const char* name = "tanh";
  template <class T>
  static T value(T v) {
    return std::tanh(v);
  }
  template <class T>
  static T derivative_from_output(T y) {
    return T(1) - y * y;
  }
};

/// g·act'(y) for the activation Act with output y: Act::cotangent(g, y) where Act defines it
/// (Identity, ReLU and LeakyReLU: selects, which for ReLU GCC vectorises on AVX2 where it does
/// not vectorise g·(y > 0 ? 1 : 0)), else g·Act::derivative_from_output(y).
template <class Act, class T>
T cotangent(T g, T y) {
  if constexpr (requires { Act::cotangent(g, y); }) {
    return Act::cotangent(g, y);
  } else {
    return g * Act::derivative_from_output(y);
  }
}

/// Whether Act has value_packet: act(v) on Eigen packets of T (the direct conv kernels apply
/// it in their tiles' registers, bias_activation in its loop; otherwise the scalar form runs).
template <class Act, class T>
inline constexpr bool has_value_packet = requires(const typename Eigen::internal::packet_traits<T>::type& p) {
  Act::template value_packet<T>(p);
};

/// Whether Act has cotangent_packet: g·act'(y) on Eigen packets of T (apply_cotangent and the
/// conv layers' fills take it where it exists).
template <class Act, class T>
inline constexpr bool has_cotangent_packet = requires(const typename Eigen::internal::packet_traits<T>::type& p) {
  Act::template cotangent_packet<T>(p, p);
};

/// dst[i] = g[i]·act'(y[i]) for i < n (nn::cotangent per entry; dst may be g), in Eigen packets
/// where Act has a cotangent_packet.
template <class Act, class T>
void apply_cotangent(const T* g, const T* y, T* dst, Eigen::Index n) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<T>::type;
  Eigen::Index i = 0;
  if constexpr (ei::packet_traits<T>::Vectorizable && has_cotangent_packet<Act, T>) {
    constexpr Eigen::Index S = ei::packet_traits<T>::size;
    for (const Eigen::Index whole = whole_blocks(n, S); i < whole; i += S)
      ei::pstoreu(dst + i, Act::template cotangent_packet<T>(ei::ploadu<P>(g + i), ei::ploadu<P>(y + i)));
  }
  for (; i < n; ++i) dst[i] = cotangent<Act>(g[i], y[i]);
}

/// dst (column-major, gy.rows() apart) ← gy ⊙ act'(y) for views gy and y of one shape (blocks
/// of rows of larger matrices): one apply_cotangent over every entry when their columns are
/// contiguous, else one per column.
template <class Act, class T>
void apply_cotangent_columns(const std::type_identity_t<Eigen::Ref<const Mat<T>>>& gy,
                             const std::type_identity_t<Eigen::Ref<const Mat<T>>>& y, T* dst) {
  const Eigen::Index rows = gy.rows();
  if (gy.outerStride() == rows && y.outerStride() == rows)
    return apply_cotangent<Act>(gy.data(), y.data(), dst, gy.size());
  for (Eigen::Index j = 0; j < gy.cols(); ++j)
    apply_cotangent<Act>(gy.col(j).data(), y.col(j).data(), dst + j * rows, rows);
}

/// dst[i] = act(a·src[i] + b) for i < n (dst may be src): sigmoid through Eigen's vectorised
/// exp and tanh through its tanh (a scalar std::exp loop was 6 % of a style VAE's chained run,
/// its last modulation), the activations with value_packet in Eigen packets, a·src[i] + b one
/// fused multiply-add where the target has FMA (what GCC's contraction made of the plain loop,
/// which it vectorised at -O3 but not at -O2, where dst and src may alias: the style VAE's
/// modulations ran scalar in projects compiling the headers at -O2). With a = 1 the values are
/// act(src[i] + b) exactly (1·x is x).
template <class Act, class T>
void apply_affine_activation(const T* src, T a, T b, T* dst, Eigen::Index n) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<const A> s(src, n);
  Eigen::Map<A> d(dst, n);
  if constexpr (std::is_same_v<Act, Sigmoid>) {
    d = T(1) / (T(1) + (-(s * a + b)).exp());
  } else if constexpr (std::is_same_v<Act, Tanh>) {
    d = (s * a + b).tanh();
  } else {
    namespace ei = Eigen::internal;
    Eigen::Index i = 0;
    if constexpr (ei::packet_traits<T>::Vectorizable && has_value_packet<Act, T>) {
      using P = typename ei::packet_traits<T>::type;
      constexpr Eigen::Index S = ei::packet_traits<T>::size;
      const P pa = ei::pset1<P>(a), pb = ei::pset1<P>(b);
      for (const Eigen::Index whole = whole_blocks(n, S); i < whole; i += S)
        ei::pstoreu(dst + i, Act::template value_packet<T>(ei::pmadd(pa, ei::ploadu<P>(src + i), pb)));
    }
    for (; i < n; ++i) dst[i] = Act::value(prilo::detail::fmadd(a, src[i], b));
  }
}

/// A size-preserving activation layer (a module of a Sequential).
template <class T, class Act>
struct Activation {
  using scalar = T;
  using function = Act;
  Eigen::Index output_size(Eigen::Index in) const { return in; }
  /// No products (prilo/flops.hpp counts matrix products): Sequential::flops adds 0 here, not
  /// the dense count it assumes for a module that does not say.
  double flops_per_sample() const { return 0; }
  Eigen::Index input_size() const { return -1; }  // any

  void forward(const Mat<T>& x, Mat<T>& y) const {
    y.resize(x.rows(), x.cols());
    y = x.unaryExpr([](T v) { return Act::value(v); });
  }
  /// gx = gy ⊙ act'(x), computed from the stored output y (no weights: nothing to accumulate).
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool) {
    Mat<T> unused;
    if (gx) backward_input(x, y, gy, *gx, unused);
  }
  /// The same, const: needs no scratch (nn::apply_cotangent: packets where Act has them).
  void backward_input(const Mat<T>&, const Mat<T>& y, const Mat<T>& gy, Mat<T>& gx, Mat<T>&) const {
    if (y.rows() != gy.rows() || y.cols() != gy.cols())
      detail::fail("Activation::backward_input: output ", y.rows(), "x", y.cols(), " and its cotangent ", gy.rows(),
                   "x", gy.cols(), " differ");
    gx.resize(gy.rows(), gy.cols());
    apply_cotangent<Act>(gy.data(), y.data(), gx.data(), gy.size());
  }
  ParamList<T> parameters() { return {}; }
  void zero_grad() {}
};

template <class T>
using ReLU = Activation<T, Relu>;
template <class T>
using LeakyReLU = Activation<T, LeakyRelu>;
template <class T>
using SigmoidLayer = Activation<T, Sigmoid>;
template <class T>
using TanhLayer = Activation<T, Tanh>;

}  // namespace prilo::nn

// The layers' customisation points, CPU forms: a GEMM, the fused bias + activation, the
// activation's cotangent, row sums and zeroing. Layers (nn::Dense) are written once over
// these; prilo/backend/cuda/executor.cuh gives the CUDA forms with the same contracts.
// Included by prilo/exec/executor.hpp.
#pragma once

#include <type_traits>

#include "../core.hpp"
#include "../nn/activations.hpp"
#include "executor.hpp"

namespace prilo {

/// C ← α·op(A)·op(B) + β·C, op = transpose when trans_*. With β = 0, C is resized to
/// op(A).rows × op(B).cols and its old contents are ignored (no NaN leaks through); otherwise
/// its shape must already match. C must be another matrix than A and B (refused). On the CPU: Eigen's noalias()
/// products, with no scaling pass when α or β is 1 (so C += A·Bᵀ is one product, exactly as written in Eigen).
template <class T>
void gemm(const CpuExecutor&, bool trans_a, bool trans_b, T alpha, const Mat<T>& a, const Mat<T>& b, T beta,
          Mat<T>& c) {
  const Eigen::Index m = trans_a ? a.cols() : a.rows();
  const Eigen::Index k = trans_a ? a.rows() : a.cols();
  const Eigen::Index kb = trans_b ? b.cols() : b.rows();
  const Eigen::Index n = trans_b ? b.rows() : b.cols();
  if (k != kb) detail::fail("gemm: inner dimensions differ: op(A) is ", m, "x", k, ", op(B) is ", kb, "x", n);
  if (&c == &a || &c == &b) detail::fail("gemm: the output C is also an input (A or B): give another matrix");
  if (beta == T(0))
    c.resize(m, n);
  else
    require_shape(c, m, n, "gemm output C");
  const auto run = [&](const auto& opa, const auto& opb) {
    if (beta == T(0)) {
      if (alpha == T(1))
        c.noalias() = opa * opb;
      else
        c.noalias() = alpha * opa * opb;
    } else {
      if (beta != T(1)) c *= beta;
      if (alpha == T(1))
        c.noalias() += opa * opb;
      else
        c.noalias() += alpha * opa * opb;
    }
  };
  if (!trans_a && !trans_b)
    run(a, b);
  else if (trans_a && !trans_b)
    run(a.transpose(), b);
  else if (!trans_a)
    run(a, b.transpose());
  else
    run(a.transpose(), b.transpose());
}

/// y_ij ← act(y_ij + b_i) for every column j (b has y.rows() entries): one pass over y for the
/// element-wise activations; sigmoid and tanh go through Eigen's vectorised exp/tanh (a scalar
/// std::exp loop costs ~20 % of the decoder's forward).
/// y may be a view (a block of rows of a larger matrix: nn::Dense::forward_into).
template <class T, class Act>
void bias_activation(const CpuExecutor&, Act, std::type_identity_t<Eigen::Ref<Mat<T>>> y, const Vec<T>& b) {
  require_shape(b, y.rows(), 1, "bias_activation bias");
  if constexpr (std::is_same_v<Act, nn::Sigmoid>) {  // column by column: one pass over y
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      auto c = y.col(j).array();
      c = (T(1) + (-(c + b.array())).exp()).inverse();
    }
  } else if constexpr (std::is_same_v<Act, nn::Tanh>) {
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      auto c = y.col(j).array();
      c = (c + b.array()).tanh();
    }
  } else {
    // in Eigen packets where Act has value_packet (the same values as the scalar form): GCC
    // vectorises the plain loop at -O3 but not at -O2, where the aliasing of c and b needs a
    // run-time check (at -O2: 6.6 % of the MLP decoder's forward, 3.7 % of the conv decoder's)
    namespace ei = Eigen::internal;
    using P = typename ei::packet_traits<T>::type;
    constexpr Eigen::Index S = ei::packet_traits<T>::size;
    constexpr bool packets = ei::packet_traits<T>::Vectorizable && nn::has_value_packet<Act, T>;
    const Eigen::Index rows = y.rows();
    const T* bd = b.data();
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      T* c = y.col(j).data();
      Eigen::Index i = 0;
      if constexpr (packets)
        for (const Eigen::Index whole = whole_blocks(rows, S); i < whole; i += S)
          ei::pstoreu(c + i, Act::template value_packet<T>(ei::padd(ei::ploadu<P>(c + i), ei::ploadu<P>(bd + i))));
      for (; i < rows; ++i) c[i] = Act::value(c[i] + bd[i]);
    }
  }
}

/// out ← gy ⊙ act'(y), the derivative written in terms of the output y = act(·) (out resized
/// to gy's shape; y and gy have the same shape and may be views: one pass over the whole
/// matrices when their columns are contiguous, else column by column).
template <class T, class Act>
void activation_cotangent(const CpuExecutor&, Act, const std::type_identity_t<Eigen::Ref<const Mat<T>>>& y,
                          const std::type_identity_t<Eigen::Ref<const Mat<T>>>& gy, Mat<T>& out) {
  require_shape(y, gy.rows(), gy.cols(), "activation_cotangent y");
  out.resize(gy.rows(), gy.cols());
  nn::apply_cotangent_columns<Act>(gy, y, out.data());
}

/// gb_i ← gb_i + Σ_j g_ij (gb has g.rows() entries).
template <class T>
void add_row_sums(const CpuExecutor&, const Mat<T>& g, Vec<T>& gb) {
  require_shape(gb, g.rows(), 1, "add_row_sums gb");
  gb += g.rowwise().sum();
}

/// Every entry of m set to zero (shape kept).
template <class Derived>
void set_zero(const CpuExecutor&, Eigen::MatrixBase<Derived>& m) {
  m.setZero();
}

}  // namespace prilo

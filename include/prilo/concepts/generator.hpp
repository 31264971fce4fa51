// Concept of a layered generator G = G_k ∘ … ∘ G_1 with split points for PRILO.
#pragma once

#include <concepts>

#include "../core.hpp"

namespace prilo {

/// The batch type a generator reads and writes: G::matrix_type when it names one (a device
/// generator), prilo::Mat<G::scalar> otherwise.
template <class G>
struct generator_matrix {
  using type = Mat<typename G::scalar>;
};
template <class G>
requires requires {
  typename G::matrix_type;
}
struct generator_matrix<G> {
  using type = typename G::matrix_type;
};
template <class G>
using generator_matrix_t = typename generator_matrix<G>::type;

/// A Generator maps a batch of latents z_0 (one per column) through k layers; the
/// representation after layer i is z_i (split point i, 0 ≤ i ≤ k). Every member the solvers
/// need is listed here; M is generator_matrix_t<G> (prilo::Mat, or a device matrix). The
/// solvers also use some optional members when a generator has them, each with a fallback:
/// `vjp_input(ctr, gy, gx)` (the VJP into the caller's buffer), `blocks(i)` (the tensors of a
/// split state) and `forward_lent(i, j, z, tr)` with `tr.give_back(z)` (a recorded pass that
/// borrows z's buffer instead of copying it; nn::Sequential documents the contract).
template <class G>
concept Generator = requires(G& g, const G& cg, const generator_matrix_t<G>& z, int i, typename G::trace_type& tr,
                             const typename G::trace_type& ctr) {
  // its real scalar type;
  typename G::scalar;
  // the record of a forward pass that vector-Jacobian products consume;
  typename G::trace_type;
  // k, the number of layers (split points are 0 … k);
  { cg.depth() } -> std::convertible_to<int>;
  // the size of z_i for a split point i;
  { cg.dim(i) } -> std::convertible_to<Eigen::Index>;
  // G_{i+1}^{j}(z_i): a forward pass over any sub-range of layers;
  { cg.forward(i, i, z) } -> std::convertible_to<generator_matrix_t<G>>;
  // the layers after split point i, up to the output;
  { cg.forward_from(i, z) } -> std::convertible_to<generator_matrix_t<G>>;
  // a sub-range forward that records what the VJPs need;
  cg.forward(i, i, z, tr);
  // the recorded pass's output (the image, or z_j), read by the solvers without a copy;
  { ctr.output() } -> std::convertible_to<const generator_matrix_t<G>&>;
  // the VJP with respect to the sub-range's input;
  { cg.vjp_input(ctr, z) } -> std::convertible_to<generator_matrix_t<G>>;
  // the VJP with respect to its weights (accumulated into the generator's gradient
  // buffers), returning the input cotangent as well.
  { g.vjp_weights(ctr, z) } -> std::convertible_to<generator_matrix_t<G>>;
};

}  // namespace prilo

// The Module concept: one layer of a Sequential network (forward, VJPs, named tensors).
#pragma once

#include <concepts>

#include "../core.hpp"
#include "../nn/parameter.hpp"

namespace prilo {

/// A module maps a batch x (one sample per column) to y = M(x) and back-propagates
/// cotangents through itself; nn::Sequential chains modules without virtual calls, and
/// vector-Jacobian products through the chain call the modules' own, with the stored input x
/// and output y of each module (so `backward` may use either).
///
/// Semantic contract (relied on by Sequential and the weights files, checked by the tests):
///  * forward and backward_input are const and thread-safe: several threads may run them on
///    one module at once (solve_column_blocks does). Any scratch they need is the caller's
///    `work` matrix, never a member or a thread_local.
///  * backward_input and backward(…, &gx, …) write the same gx = (∂y/∂x)ᵀ gy.
///  * Names of parameters() are unique within the module and so are those of buffers(), and
///    no parameter shares a name with a buffer; they are stable (weights files store tensors
///    under them, qualified by the containers: "decoder.0.weight").
///  * Shapes of parameters and buffers depend only on how the module was constructed, so that
///    a freshly constructed module can be loaded from a file by name.
///
/// Each requirement is a concept of its own in prilo::detail, so that Sequential can say
/// which one a type misses.
namespace detail {

template <class M>
using module_mat = Mat<typename M::scalar>;

// its real scalar type (float or double), that of every tensor it takes or holds;
template <class M>
concept module_has_scalar = requires {
  typename M::scalar;
}
&&std::floating_point<typename M::scalar>;

// held by value in the Sequential's tuple, which is moved into place;
template <class M>
concept module_is_movable = std::movable<M>;

// the size of y for an input size n (throws invalid_input when M cannot take n inputs);
template <class M>
concept module_has_output_size = requires(const M& m, Eigen::Index n) {
  { m.output_size(n) } -> std::convertible_to<Eigen::Index>;
};

// y = M(x), const: resizes y, and reuses its storage when the shape is unchanged;
template <class M>
concept module_has_forward = module_has_scalar<M> && requires(const M& m, const module_mat<M>& x, module_mat<M>& y) {
  m.forward(x, y);
};

// the input VJP gx = (∂y/∂x)ᵀ gy given x, y = M(x) and gy, const: `work` is scratch the
// caller keeps between calls (any contents on entry and exit), so that repeated VJPs of one
// batch size allocate nothing;
template <class M>
concept module_has_backward_input = module_has_scalar<M> &&
    requires(const M& m, const module_mat<M>& x, const module_mat<M>& y, const module_mat<M>& gy, module_mat<M>& gx,
             module_mat<M>& work) {
  m.backward_input(x, y, gy, gx, work);
};

// the training VJP: writes gx into *gx unless it is null, and when accumulate_weights adds
// the weight gradients to the buffers that parameters() exposes as `grad`;
template <class M>
concept module_has_backward = module_has_scalar<M> &&
    requires(M& m, const module_mat<M>& x, const module_mat<M>& y, const module_mat<M>& gy, module_mat<M>* gx,
             bool accumulate_weights) {
  m.backward(x, y, gy, gx, accumulate_weights);
};

// its trainable tensors with their gradients, each under a name unique within the module
// (an empty list for a module without weights);
template <class M>
concept module_has_parameters = module_has_scalar<M> && requires(M& m) {
  { m.parameters() } -> std::same_as<nn::ParamList<typename M::scalar>>;
};

// clears the gradient buffers;
template <class M>
concept module_has_zero_grad = requires(M& m) {
  m.zero_grad();
};

// optionally, named non-trainable tensors saved and loaded with the parameters (e.g.
// batch-norm running statistics): a module without buffers() has none.
template <class M>
concept module_has_buffers = module_has_scalar<M> && requires(M& m) {
  { m.buffers() } -> std::same_as<nn::BufferList<typename M::scalar>>;
};
template <class M>
concept module_buffers_ok = !requires(M & m) {
  m.buffers();
}
|| module_has_buffers<M>;

}  // namespace detail

/// A layer of nn::Sequential: every requirement above (comments in prilo::detail).
template <class M>
concept Module = detail::module_has_scalar<M> && detail::module_is_movable<M> && detail::module_has_output_size<M> &&
    detail::module_has_forward<M> && detail::module_has_backward_input<M> && detail::module_has_backward<M> &&
    detail::module_has_parameters<M> && detail::module_has_zero_grad<M> && detail::module_buffers_ok<M>;

}  // namespace prilo

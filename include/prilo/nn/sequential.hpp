// A compile-time chain of modules that models the Generator concept.
#pragma once

#include <array>
#include <tuple>
#include <utility>
#include <vector>

#include "../core.hpp"
#include "parameter.hpp"

namespace prilo::nn {

/// Activations of a forward pass over modules [first, last): acts[k] is the input of
/// module k for first <= k <= last (acts[last] is the output). Reused between calls so that
/// repeated passes of the same batch size do not allocate.
template <class T>
struct Trace {
  std::vector<Mat<T>> acts;
  int first = 0, last = 0;
  const Mat<T>& input() const { return acts[first]; }
  const Mat<T>& output() const { return acts[last]; }
};

/// G = M_{k-1} ∘ … ∘ M_0, the modules stored in a tuple and called without virtual
/// dispatch. Split points are module boundaries: z_0 is the input, z_i the output of module
/// i−1, and forward(i, j, z_i) = G_{i+1}^{j}(z_i) runs modules i … j−1 (the paper's G_i^j up
/// to its 1-based naming). Vector-Jacobian products run through any sub-range, with respect
/// to the range's input (reconstruction) and to the modules' weights (training).
template <class T, class... Modules>
class Sequential {
 public:
  using scalar = T;
  using trace_type = Trace<T>;
  static constexpr int num_modules = sizeof...(Modules);

  Sequential() = default;
  explicit Sequential(Eigen::Index input_dim, Modules... m) : modules_(std::move(m)...) { set_dims(input_dim); }

  /// Number of modules k; split points are 0 … k.
  int depth() const { return num_modules; }
  /// Size of the representation at split point i (dim(0): latent, dim(depth()): output).
  Eigen::Index dim(int i) const {
    check_split(i, "dim");
    return dims_[i];
  }
  template <std::size_t I>
  auto& module() { return std::get<I>(modules_); }
  template <std::size_t I>
  const auto& module() const { return std::get<I>(modules_); }

  /// z_j = G(z_i) through modules i … j−1.
  Mat<T> forward(int i, int j, const Mat<T>& z) const {
    Trace<T> tr;
    forward(i, j, z, tr);
    return std::move(tr.acts[j]);
  }
  /// Runs the modules after split point i: G(z_i) = output.
  Mat<T> forward_from(int i, const Mat<T>& z) const { return forward(i, depth(), z); }
  /// Full forward pass from the latent.
  Mat<T> operator()(const Mat<T>& z) const { return forward(0, depth(), z); }

  /// Forward through modules i … j−1, keeping every activation in tr for a later VJP.
  void forward(int i, int j, const Mat<T>& z, Trace<T>& tr) const {
    check_range(i, j);
    require_shape(z, dims_[i], z.cols(), "generator input at the split point");
    tr.acts.resize(num_modules + 1);
    tr.first = i;
    tr.last = j;
    tr.acts[i] = z;
    for_each_module([&](auto& m, int k) {
      if (k >= i && k < j) m.forward(tr.acts[k], tr.acts[k + 1]);
    });
  }

  /// Cotangent with respect to the range's input, given the output cotangent gy.
  Mat<T> vjp_input(const Trace<T>& tr, const Mat<T>& gy) const {
    return const_cast<Sequential*>(this)->backprop(tr, gy, false);
  }
  /// As vjp_input, and adds the weight gradients of the range's modules to their buffers.
  Mat<T> vjp_weights(const Trace<T>& tr, const Mat<T>& gy) { return backprop(tr, gy, true); }

  /// All trainable tensors, in module order.
  ParamList<T> parameters() {
    ParamList<T> all;
    for_each_module([&](auto& m, int) {
      for (auto& p : m.parameters()) all.push_back(p);
    });
    return all;
  }
  void zero_grad() {
    for_each_module([&](auto& m, int) { m.zero_grad(); });
  }

 private:
  Mat<T> backprop(const Trace<T>& tr, const Mat<T>& gy, bool weights) {
    require_shape(gy, tr.acts[tr.last].rows(), tr.acts[tr.last].cols(), "generator output cotangent");
    if (tr.first == tr.last) return gy;
    // Intermediate cotangents alternate between two per-thread buffers, which keep their
    // size from step to step: a solver step allocates only the returned matrix. (Fresh
    // multi-MB temporaries every step made glibc map and unmap pages: 15 % of a DPR step.)
    thread_local Mat<T> buf[2];
    const Mat<T>* g = &gy;
    int cur = 0;
    Mat<T> result;
    for_each_module_reverse([&](auto& m, int k) {
      if (k >= tr.first && k < tr.last) {
        Mat<T>& out = k == tr.first ? result : buf[cur];
        m.backward(tr.acts[k], tr.acts[k + 1], *g, &out, weights);
        g = &out;
        cur ^= 1;
      }
    });
    return result;
  }

  void set_dims(Eigen::Index input_dim) {
    dims_[0] = input_dim;
    for_each_module([&](auto& m, int k) { dims_[k + 1] = m.output_size(dims_[k]); });
  }
  void check_split(int i, const char* what) const {
    if (i < 0 || i > num_modules) detail::fail("generator ", what, ": split point ", i, " outside 0..", num_modules);
  }
  void check_range(int i, int j) const {
    check_split(i, "forward");
    check_split(j, "forward");
    if (i > j) detail::fail("generator forward: range start ", i, " after its end ", j);
  }
  template <class F>
  void for_each_module(F&& f) const {
    for_each_impl(std::forward<F>(f), std::make_index_sequence<num_modules>{});
  }
  template <class F>
  void for_each_module(F&& f) {
    for_each_impl_mut(std::forward<F>(f), std::make_index_sequence<num_modules>{});
  }
  template <class F>
  void for_each_module_reverse(F&& f) {
    for_each_rev_impl(std::forward<F>(f), std::make_index_sequence<num_modules>{});
  }
  template <class F, std::size_t... I>
  void for_each_impl(F&& f, std::index_sequence<I...>) const {
    (f(std::get<I>(modules_), int(I)), ...);
  }
  template <class F, std::size_t... I>
  void for_each_impl_mut(F&& f, std::index_sequence<I...>) {
    (f(std::get<I>(modules_), int(I)), ...);
  }
  template <class F, std::size_t... I>
  void for_each_rev_impl(F&& f, std::index_sequence<I...>) {
    constexpr std::size_t n = sizeof...(I);
    (f(std::get<n - 1 - I>(modules_), int(n - 1 - I)), ...);
  }

  std::tuple<Modules...> modules_;
  std::array<Eigen::Index, num_modules + 1> dims_{};
};

/// Deduces Sequential<T, Modules...> from its modules.
template <class First, class... Rest>
auto make_sequential(Eigen::Index input_dim, First first, Rest... rest) {
  using T = typename First::scalar;
  return Sequential<T, First, Rest...>(input_dim, std::move(first), std::move(rest)...);
}

}  // namespace prilo::nn

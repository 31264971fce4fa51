// A compile-time chain of modules that models the Generator concept.
#pragma once

#include <array>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../concepts/module.hpp"
#include "../core.hpp"
#include "parameter.hpp"
#include "staging.hpp"

namespace prilo::nn {

/// Activations of a forward pass over modules [first, last): acts[k] is the input of
/// module k for first <= k <= last (acts[last] is the output). Reused between calls so that
/// repeated passes of the same batch size do not allocate.
///
/// A trace also holds the scratch of the vector-Jacobian products that read it: the
/// cotangents between modules (alternating between two matrices) and each module's `work`
/// matrix (one per module: a shared one would be resized, so reallocated, between layers of
/// different widths). They keep their sizes from step to step, so a solver step allocates
/// only the returned cotangent (fresh multi-MB temporaries every step made glibc map and
/// unmap pages: 15 % of a DPR step). They are `mutable` because the VJPs take the trace by const
/// reference: a trace is used by one thread at a time (each thread keeps its own, as
/// solve_column_blocks' threads do), while the generator itself may be shared.
template <class T>
struct Trace {
  std::vector<Mat<T>> acts;
  int first = 0, last = 0;
  const Mat<T>& input() const { return acts[first]; }
  const Mat<T>& output() const { return acts[last]; }
  /// Ends a Sequential::forward_lent: z gets its buffer back (contents as lent), and the trace
  /// no longer holds the pass's input, so no VJP may read it until the next forward pass.
  void give_back(Mat<T>& z) { z.swap(acts[first]); }

  mutable std::array<Mat<T>, 2> cotangents;  ///< VJP scratch: cotangents between modules
  mutable std::vector<Mat<T>> work;          ///< VJP scratch: module k's backward_input work
  /// Module k's staging buffers, for modules with staged passes (the style modules: their row
  /// blocks and style values, reused from step to step instead of allocated per call).
  mutable std::vector<Staging<Mat<T>>> staging;
};

}  // namespace prilo::nn

namespace prilo::detail {
/// Checks one module type of a Sequential<T, …> against prilo::Module, with one message per
/// missing requirement (concepts/module.hpp documents each).
template <class T, class M>
constexpr bool sequential_check_module() {
  static_assert(module_has_scalar<M>, "Sequential: module type lacks `using scalar = float or double;`");
  if constexpr (module_has_scalar<M>)
    static_assert(std::is_same_v<typename M::scalar, T>, "Sequential<T, ...>: a module's scalar type is not T");
  static_assert(module_is_movable<M>, "Sequential: module type is not movable (modules are held by value)");
  static_assert(module_has_output_size<M>,
                "Sequential: module type lacks `Eigen::Index output_size(Eigen::Index input_size) const`");
  static_assert(module_has_forward<M>,
                "Sequential: module type lacks `void forward(const Mat<T>& x, Mat<T>& y) const`");
  static_assert(module_has_backward_input<M>,
                "Sequential: module type lacks the const input VJP `void backward_input(const Mat<T>& x, const "
                "Mat<T>& y, const Mat<T>& gy, Mat<T>& gx, Mat<T>& work) const`");
  static_assert(module_has_backward<M>,
                "Sequential: module type lacks `void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, "
                "Mat<T>* gx, bool accumulate_weights)`");
  static_assert(module_has_parameters<M>, "Sequential: module type lacks `nn::ParamList<T> parameters()`");
  static_assert(module_has_zero_grad<M>, "Sequential: module type lacks `void zero_grad()`");
  static_assert(module_buffers_ok<M>,
                "Sequential: a module's buffers() must return nn::BufferList<T> (or be left out: no buffers)");
  return true;
}
/// invalid_input unless a trace of layers first..last with `activations` stored can be a
/// forward pass of a network of `depth` layers (the VJPs' check, CPU and CUDA).
inline void sequential_check_trace(int first, int last, std::size_t activations, int depth) {
  if (first < 0 || first > last || last >= int(activations) || last > depth)
    fail("Sequential VJP: the trace holds no forward pass of this network (", activations, " activations, layers ",
         first, "..", last, ", depth ", depth, ")");
}
}  // namespace prilo::detail

namespace prilo::nn {

/// G = M_{k-1} ∘ … ∘ M_0, the modules stored in a tuple and called without virtual
/// dispatch. Split points are module boundaries: z_0 is the input, z_i the output of module
/// i−1, and forward(i, j, z_i) = G_{i+1}^{j}(z_i) runs modules i … j−1 (the paper's G_i^j up
/// to its 1-based naming). Vector-Jacobian products run through any sub-range, with respect
/// to the range's input (reconstruction) and to the modules' weights (training).
///
/// Tensors are named "<module index>.<name within the module>" ("2.weight"), so weights files
/// store them by name and a module may have any number of parameters and buffers.
template <class T, class... Modules>
class Sequential {
  static_assert((prilo::detail::sequential_check_module<T, Modules>() && ...));

 public:
  using scalar = T;
  using trace_type = Trace<T>;
  static constexpr int num_modules = sizeof...(Modules);

  Sequential() = default;
  /// A chain whose input has input_dim rows (positive: modules that take any size, such as the
  /// activations, would pass a negative or zero one on, and every later size with it).
  explicit Sequential(Eigen::Index input_dim, Modules... m) : modules_(std::move(m)...) { set_dims(input_dim); }

  /// Number of modules k; split points are 0 … k.
  int depth() const { return num_modules; }
  /// Size of the representation at split point i (dim(0): latent, dim(depth()): output).
  Eigen::Index dim(int i) const {
    check_split(i, "dim");
    return dims_[i];
  }
  /// Products of one forward pass through modules i … j−1 per column (prilo/flops.hpp): each
  /// module's flops_per_sample() where it states it (convolutions; 0 for the modules without
  /// products: activations, Reshape, Upsample2d, BatchNorm2d, Duplicate), else the dense count
  /// 2·dim(k)·dim(k+1).
  double flops(int i, int j) const {
    check_range(i, j);
    double f = 0;
    for_each_module([&](const auto& m, int k) {
      if (k < i || k >= j) return;
      if constexpr (requires { m.flops_per_sample(); })
        f += double(m.flops_per_sample());
      else
        f += 2.0 * double(dims_[std::size_t(k)]) * double(dims_[std::size_t(k + 1)]);
    });
    return f;
  }
  /// The tensors of the state at split point i, as row counts: what module i−1 declares with
  /// output_blocks() (a style chain's {z_i, z0}, nn/style.hpp), else one block of dim(i).
  /// PRILO gives each block its own ball (PhaseOptions::radii).
  std::vector<Eigen::Index> blocks(int i) const {
    check_split(i, "blocks");
    std::vector<Eigen::Index> b{dims_[std::size_t(i)]};
    for_each_module([&](const auto& m, int k) {
      if constexpr (requires { m.output_blocks(); })
        if (k + 1 == i) b = m.output_blocks();
    });
    return b;
  }
  template <std::size_t I>
  auto& module() {
    return std::get<I>(modules_);
  }
  template <std::size_t I>
  const auto& module() const {
    return std::get<I>(modules_);
  }

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
    start_pass(i, j, z, tr);
    tr.acts[i] = z;
    run_modules(i, j, tr);
  }

  /// The same pass with z lent to the trace instead of copied into it: z's buffer and the
  /// trace's input buffer are swapped (until given back z holds the trace's previous buffer:
  /// any shape, unspecified contents), and tr.give_back(z) swaps them back after the VJPs (a
  /// pass that throws gives z back itself). For a solver step, where z is read by the forward
  /// pass and the VJP and only changed after them: the copy is a read and a write of the whole
  /// state per step (2.4–3.8 % of a conv VAE's chained run, whose split points hold 3136–6272
  /// values per column).
  void forward_lent(int i, int j, Mat<T>& z, Trace<T>& tr) const {
    start_pass(i, j, z, tr);
    tr.acts[i].swap(z);
    try {
      run_modules(i, j, tr);
    } catch (...) {
      tr.give_back(z);  // a pass that throws leaves z as it was
      throw;
    }
  }

 private:
  /// forward and forward_lent's checks and the trace's range.
  void start_pass(int i, int j, const Mat<T>& z, Trace<T>& tr) const {
    check_range(i, j);
    require_shape(z, dims_[i], z.cols(), "generator input at the split point");
    tr.acts.resize(num_modules + 1);
    tr.first = i;
    tr.last = j;
  }
  /// Modules i … j−1 from tr.acts[i].
  void run_modules(int i, int j, Trace<T>& tr) const {
    tr.work.resize(num_modules);  // forward and the VJPs' scratch: allocates on the first call only
    tr.staging.resize(num_modules);
    for_each_module([&](auto& m, int k) {
      if (k < i || k >= j) return;
      if constexpr (requires { m.forward(tr.acts[k], tr.acts[k + 1], tr.work[0], tr.staging[0]); })
        m.forward(tr.acts[k], tr.acts[k + 1], tr.work[std::size_t(k)], tr.staging[std::size_t(k)]);
      else
        m.forward(tr.acts[k], tr.acts[k + 1]);
    });
  }

 public:
  /// Cotangent with respect to the range's input, given the output cotangent gy. Const and
  /// thread-safe for the generator (the modules' backward_input); its scratch is tr's. gx may
  /// be gy (vjp_input(tr, g, g)): gy is then copied first.
  Mat<T> vjp_input(const Trace<T>& tr, const Mat<T>& gy) const {
    Mat<T> gx;
    backprop<false>(*this, tr, gy, gx);
    return gx;
  }
  /// The same into gx, whose buffer is reused when the shape repeats (a solver's step after
  /// step: no allocation and no free of a batch-sized block per step).
  void vjp_input(const Trace<T>& tr, const Mat<T>& gy, Mat<T>& gx) const { backprop<false>(*this, tr, gy, gx); }
  /// As vjp_input, and adds the weight gradients of the range's modules to their buffers.
  Mat<T> vjp_weights(const Trace<T>& tr, const Mat<T>& gy) {
    Mat<T> gx;
    backprop<true>(*this, tr, gy, gx);
    return gx;
  }

  /// Packs a snapshot of the weights of every module that can, for its products (a
  /// reconstruction's fixed generator; nn::Dense::pack_weights). parameters() and the modules'
  /// weight() drop the snapshots. Exists where some module can pack in this build (so
  /// nn::PacksWeights<Sequential> says whether the whole can).
  void pack_weights() requires(PacksWeights<Modules> || ...) {
    for_each_module([](auto& m, int) {
      if constexpr (PacksWeights<std::decay_t<decltype(m)>>) m.pack_weights();
    });
  }

  /// All trainable tensors, in module order, named "<module index>.<name>" ("0.weight").
  ParamList<T> parameters() {
    ParamList<T> all;
    for_each_module([&](auto& m, int k) {
      for (auto& p : m.parameters()) all.push_back({qualified(k, p.name), p.value, p.grad});
    });
    return all;
  }
  /// All saved non-trainable tensors (modules' buffers()), in module order, named likewise.
  BufferList<T> buffers() {
    BufferList<T> all;
    for_each_module([&](auto& m, int k) {
      for (auto& b : buffers_of(m)) all.push_back({qualified(k, b.name), b.value});
    });
    return all;
  }
  void zero_grad() {
    for_each_module([&](auto& m, int) { m.zero_grad(); });
  }

 private:
  static std::string qualified(int k, const std::string& name) { return std::to_string(k) + "." + name; }

  // Self is Sequential or const Sequential: the input VJP calls the modules' const
  // backward_input, the weight VJP their mutating backward.
  template <bool Weights, class Self>
  static void backprop(Self& self, const Trace<T>& tr, const Mat<T>& gy, Mat<T>& result) {
    detail::sequential_check_trace(tr.first, tr.last, tr.acts.size(), self.depth());
    require_shape(gy, tr.acts[tr.last].rows(), tr.acts[tr.last].cols(), "generator output cotangent");
    if (&gy == &result && tr.first < tr.last) {  // vjp_input(tr, g, g): a module would resize its
      const Mat<T> copy = gy;                    // output while it still reads its input
      backprop<Weights>(self, tr, copy, result);
      return;
    }
    if (tr.first == tr.last) {
      result = gy;
      return;
    }
    const Mat<T>* g = &gy;
    int cur = 0;
    self.for_each_module_reverse([&](auto& m, int k) {
      if (k >= tr.first && k < tr.last) {
        Mat<T>& out = k == tr.first ? result : tr.cotangents[cur];
        if constexpr (Weights)
          m.backward(tr.acts[k], tr.acts[k + 1], *g, &out, true);
        else if constexpr (requires { m.backward_input(tr.acts[0], tr.acts[0], *g, out, tr.work[0], tr.staging[0]); })
          m.backward_input(tr.acts[k], tr.acts[k + 1], *g, out, tr.work[std::size_t(k)], tr.staging[std::size_t(k)]);
        else
          m.backward_input(tr.acts[k], tr.acts[k + 1], *g, out, tr.work[std::size_t(k)]);
        g = &out;
        cur ^= 1;
      }
    });
  }

  void set_dims(Eigen::Index input_dim) {
    if (input_dim <= 0) detail::fail("Sequential: the input dimension must be positive, got ", input_dim);
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
  void for_each_module_reverse(F&& f) const {
    for_each_rev_impl(std::forward<F>(f), std::make_index_sequence<num_modules>{});
  }
  template <class F>
  void for_each_module_reverse(F&& f) {
    for_each_rev_impl_mut(std::forward<F>(f), std::make_index_sequence<num_modules>{});
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
  void for_each_rev_impl(F&& f, std::index_sequence<I...>) const {
    constexpr std::size_t n = sizeof...(I);
    (f(std::get<n - 1 - I>(modules_), int(n - 1 - I)), ...);
  }
  template <class F, std::size_t... I>
  void for_each_rev_impl_mut(F&& f, std::index_sequence<I...>) {
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

// A generator on the GPU: a chain of device modules (gpu::Dense, gpu::Conv2d,
// gpu::ConvTranspose2d and the style modules gpu::Duplicate, gpu::Carry, gpu::Modulate, i.e.
// prilo::nn's modules on the CUDA executor with the CPU modules' class templates) that models
// prilo::Generator on DeviceMatrix batches and runs on a CudaExecutor, so dpr, prilo_solve and
// the pipeline run on it unchanged.
#pragma once

#include "config.cuh"

#include <array>
#include <concepts>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../concepts/generator.hpp"
#include "../../nn/conv.hpp"
#include "../../nn/linear.hpp"
#include "../../nn/sequential.hpp"
#include "../../nn/style.hpp"
#include "conv.cuh"
#include "dense.cuh"
#include "device_matrix.cuh"
#include "executor.cuh"
#include "style.cuh"

namespace prilo::gpu {

/// Activations of a forward pass over modules [first, last) (acts[k] is the input of module
/// k), and the scratch of its passes: the cotangent buffers of its VJPs and one work matrix
/// that every module's forward and VJPs use in turn (a DeviceMatrix keeps its capacity when it
/// shrinks, so one matrix serves modules of every size without reallocating). Reused between
/// calls of the same batch size, so a solver step allocates nothing; the style modules' row
/// blocks and style values go through its staging buffers. A trace is used by one host thread
/// at a time.
template <class T>
struct Trace {
  std::vector<DeviceMatrix<T>> acts;
  int first = 0, last = 0;
  mutable DeviceMatrix<T> buf[2], scratch;
  mutable nn::Staging<DeviceMatrix<T>> staging;
  const DeviceMatrix<T>& input() const { return acts[first]; }
  const DeviceMatrix<T>& output() const { return acts[last]; }
  /// Ends a gpu::Sequential::forward_lent (nn::Trace::give_back's contract).
  void give_back(DeviceMatrix<T>& z) { std::swap(z, acts[first]); }
};

namespace detail {

/// An activation (nn::Relu, …) in gpu::Sequential's list stands for gpu::Dense<T, Act>.
template <class M>
concept activation_shorthand = requires(float v) {
  { M::value(v) } -> std::convertible_to<float>;
  { M::derivative_from_output(v) } -> std::convertible_to<float>;
};
template <class T, class M>
struct device_module {
  using type = M;
};
template <class T, class M>
requires activation_shorthand<M>
struct device_module<T, M> {
  using type = Dense<T, M>;
};
/// The device module an entry of gpu::Sequential's list names.
template <class T, class M>
using device_module_t = typename device_module<T, M>::type;

/// The host module a device module is uploaded from: L<T, Act, CudaExecutor> → L<T, Act>
/// (Dense, Conv2d, ConvTranspose2d), and the style modules' likewise.
template <class M>
struct host_module;
template <template <class, class, class> class L, class T, class A>
struct host_module<L<T, A, CudaExecutor>> {
  using type = L<T, A, ::prilo::CpuExecutor>;
};
template <class T>
struct host_module<nn::Duplicate<T, CudaExecutor>> {
  using type = nn::Duplicate<T, ::prilo::CpuExecutor>;
};
template <class T, class A, bool C>
struct host_module<nn::Modulate<T, A, C, CudaExecutor>> {
  using type = nn::Modulate<T, A, C, ::prilo::CpuExecutor>;
};
template <class Inner>
struct host_module<nn::Carry<Inner>> {
  using type = nn::Carry<typename host_module<Inner>::type>;
};

/// The CUDA instantiation of a host module: L<T, Act> → L<T, Act, CudaExecutor> for Dense,
/// Conv2d and ConvTranspose2d, the style modules likewise (Carry of its inner module's). No
/// `type` for a module without one (a user's host-only module).
template <class M>
struct device_form {};
template <class T, class A>
struct device_form<nn::Dense<T, A, ::prilo::CpuExecutor>> {
  using type = nn::Dense<T, A, CudaExecutor>;
};
template <class T, class A>
struct device_form<nn::Conv2d<T, A, ::prilo::CpuExecutor>> {
  using type = nn::Conv2d<T, A, CudaExecutor>;
};
template <class T, class A>
struct device_form<nn::ConvTranspose2d<T, A, ::prilo::CpuExecutor>> {
  using type = nn::ConvTranspose2d<T, A, CudaExecutor>;
};
template <class T>
struct device_form<nn::Duplicate<T, ::prilo::CpuExecutor>> {
  using type = nn::Duplicate<T, CudaExecutor>;
};
template <class T, class A, bool C>
struct device_form<nn::Modulate<T, A, C, ::prilo::CpuExecutor>> {
  using type = nn::Modulate<T, A, C, CudaExecutor>;
};
template <class Inner>
requires requires {
  typename device_form<Inner>::type;
}
struct device_form<nn::Carry<Inner>> {
  using type = nn::Carry<typename device_form<Inner>::type>;
};

/// How gpu::Sequential spells the device form of a host module, for the deduction from a host
/// chain: a dense layer as its activation (so a dense chain deduces Sequential<T, Acts...>, as
/// before the chain took other modules), every other module as its device_form.
template <class M>
struct device_spelling : device_form<M> {};
template <class T, class A>
struct device_spelling<nn::Dense<T, A, ::prilo::CpuExecutor>> {
  using type = A;
};
/// Whether a host module has a device form gpu::Sequential can hold.
template <class M>
concept has_device_form = requires {
  typename device_spelling<M>::type;
};

}  // namespace detail

/// G = M_{k−1} ∘ … ∘ M_0 with device modules M_i (gpu::Dense, gpu::Conv2d,
/// gpu::ConvTranspose2d, gpu::Duplicate, gpu::Carry, gpu::Modulate): the device counterpart of
/// nn::Sequential with the same split points (module boundaries), state blocks and semantics,
/// built by uploading a host model (the VAE's, the conv VAE's or the style VAE's decoder). An entry of Modules is a
/// device module, or an activation Act as shorthand for gpu::Dense<T, Act>: `gpu::Sequential<T, nn::Relu, nn::Sigmoid>`
/// is a chain of two dense layers, `gpu::Sequential<T, nn::Relu, gpu::ConvTranspose2d<T, nn::Relu>,
/// gpu::ConvTranspose2d<T, nn::Sigmoid>>` the conv decoder; `gpu::Sequential(host)` deduces
/// either from the host chain. Every module holds a copy of the generator's executor, so its
/// work runs on that cuBLAS handle and stream.
template <class T, class... Modules>
class Sequential {
  using layers_type = std::tuple<detail::device_module_t<T, Modules>...>;
  static_assert((std::is_same_v<typename detail::device_module_t<T, Modules>::scalar, T> && ...),
                "gpu::Sequential<T, ...>: a module's scalar type is not T");
  static_assert((std::is_same_v<typename detail::device_module_t<T, Modules>::executor_type, CudaExecutor> && ...),
                "gpu::Sequential: every module must run on the CUDA executor (gpu::Dense, gpu::Conv2d, "
                "gpu::ConvTranspose2d, gpu::Duplicate, gpu::Carry, gpu::Modulate)");

 public:
  using scalar = T;
  using matrix_type = DeviceMatrix<T>;
  using trace_type = Trace<T>;
  /// The host chain this generator is uploaded from.
  using host_type = nn::Sequential<T, typename detail::host_module<detail::device_module_t<T, Modules>>::type...>;
  static constexpr int num_layers = sizeof...(Modules);

  Sequential() = default;
  /// Uploads the weights of a host model (gradients start at zero).
  explicit Sequential(const host_type& host, CudaExecutor ex = {}) : ex_(std::move(ex)) {
    upload(host, std::make_index_sequence<num_layers>{});
    for (int i = 0; i <= num_layers; ++i) dims_[std::size_t(i)] = host.dim(i);
  }

  CudaExecutor executor() const { return ex_; }
  int depth() const { return num_layers; }
  Eigen::Index dim(int i) const {
    check_split(i, "dim");
    return dims_[std::size_t(i)];
  }
  /// The tensors of the state at split point i, as row counts (as nn::Sequential::blocks): the
  /// output_blocks() of the module before it (a style chain's {z_i, z0}), else one block.
  std::vector<Eigen::Index> blocks(int i) const {
    check_split(i, "blocks");
    std::vector<Eigen::Index> b{dims_[std::size_t(i)]};
    for_each_layer([&](const auto& l, int k) {
      if constexpr (requires { l.output_blocks(); })
        if (k + 1 == i) b = l.output_blocks();
    });
    return b;
  }
  /// Products of one forward pass through modules i … j−1 per column, as nn::Sequential::flops
  /// counts them (a module's flops_per_sample(), else the dense 2·dim(k)·dim(k+1)).
  double flops(int i, int j) const {
    check_range(i, j);
    double f = 0;
    for_each_layer([&](const auto& l, int k) {
      if (k < i || k >= j) return;
      if constexpr (requires { l.flops_per_sample(); })
        f += double(l.flops_per_sample());
      else
        f += 2.0 * double(dims_[std::size_t(k)]) * double(dims_[std::size_t(k + 1)]);
    });
    return f;
  }
  template <std::size_t I>
  auto& layer() {
    return std::get<I>(layers_);
  }
  template <std::size_t I>
  const auto& layer() const {
    return std::get<I>(layers_);
  }

  DeviceMatrix<T> forward(int i, int j, const DeviceMatrix<T>& z) const {
    Trace<T> tr;
    forward(i, j, z, tr);
    return std::move(tr.acts[std::size_t(j)]);
  }
  DeviceMatrix<T> forward_from(int i, const DeviceMatrix<T>& z) const { return forward(i, depth(), z); }
  DeviceMatrix<T> operator()(const DeviceMatrix<T>& z) const { return forward(0, depth(), z); }

  void forward(int i, int j, const DeviceMatrix<T>& z, Trace<T>& tr) const {
    start_pass(i, j, z, tr);
    tr.acts[std::size_t(i)].copy_from(z, ex_.stream());
    run_layers(i, j, tr);
  }
  /// The same pass with z lent to the trace (nn::Sequential::forward_lent's contract): the
  /// buffers are swapped on the host, no device copy; the work stays ordered on the stream.
  void forward_lent(int i, int j, DeviceMatrix<T>& z, Trace<T>& tr) const {
    start_pass(i, j, z, tr);
    std::swap(tr.acts[std::size_t(i)], z);
    try {
      run_layers(i, j, tr);
    } catch (...) {
      tr.give_back(z);
      throw;
    }
  }

 private:
  void start_pass(int i, int j, const DeviceMatrix<T>& z, Trace<T>& tr) const {
    check_range(i, j);
    require_shape(z, dims_[std::size_t(i)], z.cols(), "gpu generator input at the split point");
    tr.acts.resize(num_layers + 1);
    tr.first = i;
    tr.last = j;
  }
  void run_layers(int i, int j, Trace<T>& tr) const {
    for_each_layer([&](const auto& l, int k) {
      if (k < i || k >= j) return;
      const DeviceMatrix<T>& x = tr.acts[std::size_t(k)];
      DeviceMatrix<T>& y = tr.acts[std::size_t(k + 1)];
      if constexpr (requires { l.forward(x, y, tr.scratch, tr.staging); })
        l.forward(x, y, tr.scratch, tr.staging);  // a style module: row blocks in the trace's staging
      else if constexpr (requires { l.forward(x, y, tr.scratch); })
        l.forward(x, y, tr.scratch);  // a convolution: its im2col matrix in the trace's scratch
      else
        l.forward(x, y);
    });
  }

 public:
  /// Cotangent with respect to the range's input, given the output cotangent gy.
  DeviceMatrix<T> vjp_input(const Trace<T>& tr, const DeviceMatrix<T>& gy) const {
    DeviceMatrix<T> result;
    vjp_input(tr, gy, result);
    return result;
  }
  /// The same into result, whose device buffer is reused when the shape repeats: a solver
  /// step after step allocates nothing (a fresh result per step was a cudaMalloc and a
  /// cudaFree, which waits for the device, per step).
  /// result may be gy (vjp_input(tr, g, g)): gy is then copied first, as on the CPU.
  void vjp_input(const Trace<T>& tr, const DeviceMatrix<T>& gy, DeviceMatrix<T>& result) const {
    check_trace(tr);
    require_shape(gy, tr.output().rows(), tr.output().cols(), "gpu generator output cotangent");
    if (&gy == &result) {  // a module would resize its output while it still reads its input
      if (tr.first == tr.last) return;
      const DeviceMatrix<T> copy = gy.clone(ex_.stream());
      vjp_input(tr, copy, result);
      return;
    }
    if (tr.first == tr.last) {
      result.copy_from(gy, ex_.stream());
      return;
    }
    const DeviceMatrix<T>* g = &gy;
    int cur = 0;
    for_each_layer_reverse([&](const auto& l, int k) {
      if (k >= tr.first && k < tr.last) {
        DeviceMatrix<T>& out = k == tr.first ? result : tr.buf[cur];
        const DeviceMatrix<T>&x = tr.acts[std::size_t(k)], &y = tr.acts[std::size_t(k + 1)];
        if constexpr (requires { l.backward_input(x, y, *g, out, tr.scratch, tr.staging); })
          l.backward_input(x, y, *g, out, tr.scratch, tr.staging);
        else
          l.backward_input(x, y, *g, out, tr.scratch);
        g = &out;
        cur ^= 1;
      }
    });
  }
  /// As vjp_input, and adds the weight gradients of the range's modules to their buffers.
  DeviceMatrix<T> vjp_weights(const Trace<T>& tr, const DeviceMatrix<T>& gy) {
    check_trace(tr);
    require_shape(gy, tr.output().rows(), tr.output().cols(), "gpu generator output cotangent");
    if (tr.first == tr.last) return gy.clone(ex_.stream());
    DeviceMatrix<T> result;
    const DeviceMatrix<T>* g = &gy;
    int cur = 0;
    for_each_layer_reverse_mut([&](auto& l, int k) {
      if (k >= tr.first && k < tr.last) {
        DeviceMatrix<T>& out = k == tr.first ? result : tr.buf[cur];
        l.backward(tr.acts[std::size_t(k)], tr.acts[std::size_t(k + 1)], *g, &out, true);
        g = &out;
        cur ^= 1;
      }
    });
    return result;
  }
  /// Clears every module's weight gradients.
  void zero_grad() {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (std::get<I>(layers_).zero_grad(), ...);
    }
    (std::make_index_sequence<num_layers>{});
  }

 private:
  template <std::size_t... I>
  void upload(const host_type& host, std::index_sequence<I...>) {
    ((std::get<I>(layers_).set_executor(ex_), std::get<I>(layers_).upload(host.template module<I>())), ...);
  }
  void check_split(int i, const char* what) const {
    if (i < 0 || i > num_layers)
      ::prilo::detail::fail("gpu generator ", what, ": split point ", i, " outside 0..", num_layers);
  }
  void check_range(int i, int j) const {
    check_split(i, "forward");
    check_split(j, "forward");
    if (i > j) ::prilo::detail::fail("gpu generator forward: range start ", i, " after its end ", j);
  }
  /// The VJPs' check that tr holds a forward pass of this network (nn::Sequential's).
  void check_trace(const Trace<T>& tr) const {
    ::prilo::detail::sequential_check_trace(tr.first, tr.last, tr.acts.size(), depth());
  }
  template <class F>
  void for_each_layer(F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::get<I>(layers_), int(I)), ...);
    }
    (std::make_index_sequence<num_layers>{});
  }
  template <class F>
  void for_each_layer_reverse(F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::get<num_layers - 1 - I>(layers_), int(num_layers - 1 - I)), ...);
    }
    (std::make_index_sequence<num_layers>{});
  }
  template <class F>
  void for_each_layer_reverse_mut(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::get<num_layers - 1 - I>(layers_), int(num_layers - 1 - I)), ...);
    }
    (std::make_index_sequence<num_layers>{});
  }

  layers_type layers_;
  std::array<Eigen::Index, num_layers + 1> dims_{};
  CudaExecutor ex_;
};

/// gpu::Sequential from a host chain whose modules all have device forms (dense, convolution
/// and style modules): Sequential(host) deduces the device modules, a dense layer spelled as
/// its activation (detail::device_spelling).
template <class T, class... HostModules>
requires(detail::has_device_form<HostModules>&&...)
    Sequential(const nn::Sequential<T, HostModules...>&, CudaExecutor = {})
->Sequential<T, typename detail::device_spelling<HostModules>::type...>;

}  // namespace prilo::gpu

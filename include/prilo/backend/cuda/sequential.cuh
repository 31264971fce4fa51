// A generator on the GPU: a chain of dense layers (gpu::Dense, i.e. nn::Dense on the CUDA
// executor: the CPU layer's bodies) that models prilo::Generator on DeviceMatrix batches and
// runs on a CudaExecutor, so dpr, prilo_solve and the pipeline run on it unchanged.
#pragma once

#include "config.cuh"

#include <array>
#include <tuple>
#include <utility>
#include <vector>

#include "../../concepts/generator.hpp"
#include "../../nn/linear.hpp"
#include "../../nn/sequential.hpp"
#include "dense.cuh"
#include "device_matrix.cuh"
#include "executor.cuh"

namespace prilo::gpu {

/// Activations of a forward pass over layers [first, last) (acts[k] is the input of layer k),
/// and the cotangent buffers of its VJPs: reused between calls of the same batch size, so a
/// solver step allocates nothing. A trace is used by one host thread at a time.
template <class T>
struct Trace {
  std::vector<DeviceMatrix<T>> acts;
  int first = 0, last = 0;
  mutable DeviceMatrix<T> buf[2], scratch;
  const DeviceMatrix<T>& input() const { return acts[first]; }
  const DeviceMatrix<T>& output() const { return acts[last]; }
};

/// G = L_{k−1} ∘ … ∘ L_0 with L_i = gpu::Dense<T, Act_i>: the device counterpart of
/// nn::Sequential<T, nn::Dense<T, Act_i>...> with the same split points (layer boundaries)
/// and semantics, built by uploading a host model (e.g. the VAE decoder). Every layer holds a
/// copy of the generator's executor, so its work runs on that cuBLAS handle and stream.
template <class T, class... Acts>
class Sequential {
 public:
  using scalar = T;
  using matrix_type = DeviceMatrix<T>;
  using trace_type = Trace<T>;
  using host_type = nn::Sequential<T, nn::Dense<T, Acts>...>;
  static constexpr int num_layers = sizeof...(Acts);

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
  template <std::size_t I>
  auto& layer() {
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
    check_range(i, j);
    require_shape(z, dims_[std::size_t(i)], z.cols(), "gpu generator input at the split point");
    tr.acts.resize(num_layers + 1);
    tr.first = i;
    tr.last = j;
    tr.acts[std::size_t(i)].copy_from(z, ex_.stream());
    for_each_layer([&](const auto& l, int k) {
      if (k >= i && k < j) l.forward(tr.acts[std::size_t(k)], tr.acts[std::size_t(k + 1)]);
    });
  }

  /// Cotangent with respect to the range's input, given the output cotangent gy.
  DeviceMatrix<T> vjp_input(const Trace<T>& tr, const DeviceMatrix<T>& gy) const {
    require_shape(gy, tr.output().rows(), tr.output().cols(), "gpu generator output cotangent");
    DeviceMatrix<T> result;
    if (tr.first == tr.last) return gy.clone(ex_.stream());
    const DeviceMatrix<T>* g = &gy;
    int cur = 0;
    for_each_layer_reverse([&](const auto& l, int k) {
      if (k >= tr.first && k < tr.last) {
        DeviceMatrix<T>& out = k == tr.first ? result : tr.buf[cur];
        l.backward_input(tr.acts[std::size_t(k)], tr.acts[std::size_t(k + 1)], *g, out, tr.scratch);
        g = &out;
        cur ^= 1;
      }
    });
    return result;
  }
  /// As vjp_input, and adds the weight gradients of the range's layers to their buffers.
  DeviceMatrix<T> vjp_weights(const Trace<T>& tr, const DeviceMatrix<T>& gy) {
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

  std::tuple<Dense<T, Acts>...> layers_;
  std::array<Eigen::Index, num_layers + 1> dims_{};
  CudaExecutor ex_;
};

/// gpu::Sequential from a host chain of dense layers: Sequential(host) deduces the activations.
template <class T, class... Acts>
Sequential(const nn::Sequential<T, nn::Dense<T, Acts>...>&, CudaExecutor = {}) -> Sequential<T, Acts...>;

}  // namespace prilo::gpu

// gpu::OnDevice: the placement that runs prilo::reconstruct's latent methods on the GPU.
#pragma once

#include "config.cuh"

#include "../../methods.hpp"
#include "executor.cuh"
#include "fft.cuh"
#include "gaussian.cuh"
#include "sequential.cuh"

namespace prilo::gpu {

/// A placement for prilo::run_method and prilo::reconstruct (see prilo::OnHost): uploads the
/// host decoder (a chain of dense, convolution and style modules: the VAE's, the conv VAE's
/// and the style VAE's decoders; a chain with a module that has no device form is refused by
/// run_method with a message) and the host operator (the DFT, a real or complex
/// Gaussian matrix) to the device of `executor`, so that DPR, PRILO and MII run there on the
/// same solver bodies; y, the starts' seeds and the results stay host matrices, so a run is
/// compared with the CPU's image for image.
///
///   const auto results = prilo::reconstruct(prilo::gpu::OnDevice{}, methods, vae, op, y, cfg, opt);
struct OnDevice {
  static constexpr const char* name = "cuda";
  CudaExecutor executor{};

  /// The device chain of a host chain whose modules all have device forms (a dense chain
  /// gives Sequential<T, Acts...>, the conv decoder Sequential<T, Relu, gpu::ConvTranspose2d<…>…>,
  /// the style decoder Sequential<T, gpu::Duplicate<T>, gpu::Carry<gpu::Dense<T>>, gpu::Modulate<…>…>).
  template <class T, class... Modules>
  requires(detail::has_device_form<Modules>&&...) auto generator(const nn::Sequential<T, Modules...>& host) const {
    return Sequential<T, typename detail::device_spelling<Modules>::type...>(host, executor);
  }
  template <class T>
  Fourier2d<T> op(const prilo::Fourier2d<T>& host) const {
    return Fourier2d<T>(host, executor);
  }
  template <class T>
  GaussianReal<T> op(const prilo::GaussianReal<T>& host) const {
    return GaussianReal<T>(host, executor);
  }
  template <class T>
  GaussianComplex<T> op(const prilo::GaussianComplex<T>& host) const {
    return GaussianComplex<T>(host, executor);
  }
};

}  // namespace prilo::gpu

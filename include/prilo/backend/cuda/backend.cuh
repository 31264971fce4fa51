// The CUDA backend tag: DeviceMatrix batches, cuBLAS products, cuFFT transforms, Philox noise.
#pragma once

#include "config.cuh"

#include <cuda_runtime.h>

#include <complex>

#include "../../concepts/backend.hpp"
#include "../cpu.hpp"
#include "blas.cuh"
#include "device_matrix.cuh"
#include "error.cuh"
#include "random.cuh"

namespace prilo {

/// Backend tag for NVIDIA GPUs: storage is gpu::DeviceMatrix (device memory, column-major,
/// one sample per column, like prilo::Mat), dense products go to cuBLAS, FFTs to cuFFT
/// (gpu::Fourier2d), random numbers come from counter-based Philox streams (gpu::Philox).
/// Kernels use the current device (cudaSetDevice) and the stream they are given.
struct cuda {
  static constexpr const char* name = "cuda";
  template <class T>
  using matrix = gpu::DeviceMatrix<T>;
  template <class T>
  using complex_matrix = gpu::DeviceMatrix<std::complex<T>>;
  using rng = gpu::Philox;

  /// Threads the current device can keep resident (SMs × max threads per SM); 1 when no
  /// device is usable (never throws).
  static int threads() {
    int dev = 0, sms = 0, per_sm = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return 1;
    }
    return sms * per_sm > 0 ? sms * per_sm : 1;
  }
  /// No-op: the GPU schedules its own threads (kept for interface parity with prilo::cpu).
  static void set_threads(int) {}

  /// C = alpha · op(A) · op(B) + beta · C on the calling thread's default cuBLAS handle.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, T alpha, const gpu::DeviceMatrix<T>& a, const gpu::DeviceMatrix<T>& b,
                   T beta, gpu::DeviceMatrix<T>& c) {
    gpu::gemm(gpu::default_blas_handle(), trans_a, trans_b, alpha, a, b, beta, c);
  }
};

static_assert(Backend<cuda>);
static_assert(Backend<cpu>);

#ifdef PRILO_DEFAULT_BACKEND_CUDA
using default_backend = cuda;
#endif

/// Short name for device batches.
template <class T>
using DeviceMatrix = gpu::DeviceMatrix<T>;

}  // namespace prilo

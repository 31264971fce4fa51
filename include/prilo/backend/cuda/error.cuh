// Error checking for the CUDA runtime, cuBLAS, cuFFT and cuRAND: every failing call checked by
// these macros throws prilo::gpu::cuda_error (a std::runtime_error) whose message names the
// call and its status. The Thrust helpers of elementwise.cuh (fill, axpy, sum, squared_norm,
// max_abs_diff) throw Thrust's thrust::system_error instead.
#pragma once

#include "config.cuh"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <curand.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace prilo::gpu {

/// Raised when a CUDA runtime, cuBLAS, cuFFT or cuRAND call fails.
struct cuda_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {

inline const char* status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cublasStatus_t";
  }
}

inline const char* status_name(cufftResult s) {
  switch (s) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    default: return "unknown cufftResult";
  }
}

inline const char* status_name(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR";
    default: return "curandStatus_t error";
  }
}

[[noreturn]] inline void throw_error(const char* call, const char* file, int line, const std::string& what) {
  std::ostringstream os;
  os << call << " failed: " << what << " (" << file << ":" << line << ")";
  throw cuda_error(os.str());
}

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a non-sticky error so later calls start clean
  throw_error(call, file, line, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
}
inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) throw_error(call, file, line, status_name(s));
}
inline void check(cufftResult s, const char* call, const char* file, int line) {
  if (s != CUFFT_SUCCESS) throw_error(call, file, line, status_name(s));
}
inline void check(curandStatus_t s, const char* call, const char* file, int line) {
  if (s != CURAND_STATUS_SUCCESS) throw_error(call, file, line, status_name(s));
}

}  // namespace detail

/// Number of usable CUDA devices; 0 (never an exception) when the driver or a device is missing.
inline int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

/// True when at least one CUDA device can be used.
inline bool has_device() noexcept {
  return device_count() > 0;
}

}  // namespace prilo::gpu

/// Checks a CUDA runtime / cuBLAS / cuFFT / cuRAND call; throws prilo::gpu::cuda_error naming it.
#define PRILO_CUDA_CHECK(call) ::prilo::gpu::detail::check((call), #call, __FILE__, __LINE__)
#define PRILO_CUBLAS_CHECK(call) ::prilo::gpu::detail::check((call), #call, __FILE__, __LINE__)
#define PRILO_CUFFT_CHECK(call) ::prilo::gpu::detail::check((call), #call, __FILE__, __LINE__)
#define PRILO_CURAND_CHECK(call) ::prilo::gpu::detail::check((call), #call, __FILE__, __LINE__)
/// Checks the launch of the kernel just issued (configuration errors surface here).
#define PRILO_CUDA_CHECK_LAUNCH() ::prilo::gpu::detail::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

// The FP32 fused-multiply-add peak of a GPU, measured: the figure a run on the CUDA executor
// is compared with (prilo-reconstruct-cuda's work table), as prilo::measure_peak_gflops is on
// the CPU; and the CUDA-event timer it (and benchmarks/cuda) times with.
#pragma once

#include "config.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "device_matrix.cuh"
#include "error.cuh"

namespace prilo::gpu {

namespace detail {
inline constexpr int kPeakChains = 8;     // independent FMA chains per thread
inline constexpr int kPeakThreads = 256;  // threads per block
inline constexpr int kPeakBlocksPerSm = 8;

/// Each thread runs kPeakChains independent chains acc ← acc·a + b for `rounds` × 64 steps
/// and writes their sum, so that nothing can be optimised away (and a test can check it).
/// (A template, as every kernel in these headers, so that it is defined once across units.)
template <class T>
__global__ void fma_chains_kernel(T a, T b, int rounds, T* out) {
  T acc[kPeakChains];
#pragma unroll
  for (int c = 0; c < kPeakChains; ++c) acc[c] = T(0.5f + float(c) + 1e-3f * float(threadIdx.x & 7));
  for (int r = 0; r < rounds; ++r) {
#pragma unroll
    for (int i = 0; i < 64; ++i) {
#pragma unroll
      for (int c = 0; c < kPeakChains; ++c) acc[c] = fmaf(acc[c], a, b);
    }
  }
  T s = 0;
#pragma unroll
  for (int c = 0; c < kPeakChains; ++c) s += acc[c];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
}  // namespace detail

/// What the peak kernel computes in one thread (lane `lane` of its block), on the host: the
/// same chains in the same order, for checking the device's result.
inline float peak_chain_sum(float a, float b, int rounds, int lane) {
  float s = 0;
  for (int c = 0; c < detail::kPeakChains; ++c) {
    float acc = 0.5f + float(c) + 1e-3f * float(lane & 7);
    for (long i = 0; i < long(rounds) * 64; ++i) acc = std::fma(acc, a, b);
    s += acc;
  }
  return s;
}

/// A pair of CUDA events timing work queued on one stream (measure_peak's timer, and the CUDA
/// benchmarks'). Each event is destroyed by its own member, also when creating the other fails.
class EventTimer {
 public:
  void start(cudaStream_t s = nullptr) { PRILO_CUDA_CHECK(cudaEventRecord(start_.e, s)); }
  /// Seconds since start(), after waiting for the work.
  double stop(cudaStream_t s = nullptr) {
    PRILO_CUDA_CHECK(cudaEventRecord(stop_.e, s));
    PRILO_CUDA_CHECK(cudaEventSynchronize(stop_.e));
    float ms = 0;
    PRILO_CUDA_CHECK(cudaEventElapsedTime(&ms, start_.e, stop_.e));
    return double(ms) * 1e-3;
  }

 private:
  struct Event {  // owns one cudaEvent_t
    cudaEvent_t e = nullptr;
    Event() { PRILO_CUDA_CHECK(cudaEventCreate(&e)); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    ~Event() { (void)cudaEventDestroy(e); }
  };
  Event start_, stop_;
};

/// A measurement of measure_peak.
struct PeakMeasurement {
  double gflops = 0;
  int rounds = 0;         // rounds × 64 FMAs per chain in the timed launches
  float thread0_sum = 0;  // thread 0's result of the last launch
  std::string device;     // the device's name
};
/// The measured FP32 FMA peak of the current device, in GFLOP/s: independent FMA chains on
/// kPeakBlocksPerSm blocks of kPeakThreads threads per multiprocessor, lengthened until one
/// launch takes about a millisecond, best of five timed launches after a warm-up (CUDA events on
/// `stream`; a few milliseconds in all). thread0_sum is peak_chain_sum(0.99999994f, 1e-7f,
/// rounds, 0) computed on the device (the check that the work was done). Other work on the GPU
/// lowers it: measure on an idle device.
inline PeakMeasurement measure_peak(cudaStream_t stream = nullptr) {
  int dev = 0;
  PRILO_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  PRILO_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));  // its name and multiprocessor count
  const int blocks = std::max(1, prop.multiProcessorCount) * detail::kPeakBlocksPerSm;
  DeviceMatrix<float> out(detail::kPeakThreads, blocks);
  EventTimer timer;
  const float a = 0.99999994f, b = 1e-7f;
  auto launch = [&](int rounds) {
    detail::fma_chains_kernel<float><<<blocks, detail::kPeakThreads, 0, stream>>>(a, b, rounds, out.data());
    PRILO_CUDA_CHECK_LAUNCH();
  };
  auto timed_ms = [&](int rounds) {
    timer.start(stream);
    launch(rounds);
    return timer.stop(stream) * 1e3;
  };
  PeakMeasurement m;
  m.device = prop.name;
  int rounds = 16;
  launch(rounds);  // warm-up: the module is loaded and the clocks come up
  while (timed_ms(rounds) < 1.0 && rounds < (1 << 20)) rounds *= 2;
  double best_ms = 1e300;
  for (int t = 0; t < 5; ++t) best_ms = std::min(best_ms, timed_ms(rounds));
  const double flop = 2.0 * detail::kPeakChains * 64.0 * double(rounds) * double(blocks) * detail::kPeakThreads;
  m.gflops = flop / (best_ms * 1e-3) / 1e9;
  m.rounds = rounds;
  PRILO_CUDA_CHECK(cudaMemcpy(&m.thread0_sum, out.data(), sizeof(float), cudaMemcpyDeviceToHost));
  return m;
}

}  // namespace prilo::gpu

// Counter-based random numbers for device kernels: a seeded Philox4x32-10 stream (cuRAND).
#pragma once

#include "config.cuh"

#include <curand_kernel.h>

#include <cstdint>

namespace prilo::gpu {

/// The CUDA backend's random generator: a Philox4x32-10 key (the seed) and a host-side step
/// counter. A kernel draw is identified by (seed, element index, step), so it needs no stored
/// per-thread state and gives the same numbers for any launch configuration. Each call of
/// next_step() hands out a fresh step; normal(...) is the draw of one element in one step.
class Philox {
 public:
  explicit Philox(std::uint64_t seed = 0) : seed_(seed) {}
  void reseed(std::uint64_t seed) {
    seed_ = seed;
    step_ = 0;
  }
  std::uint64_t seed() const { return seed_; }
  std::uint64_t step() const { return step_; }
  /// Reserves one step (four 32-bit draws per element) and returns its number.
  std::uint64_t next_step() { return step_++; }
  /// An independent generator (a different key) derived from this one.
  Philox split() { return Philox(seed_ * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull + next_step()); }

  /// N(0, 1) for element `index` in step `step` of the stream with key `seed` (device code).
  template <class T>
  __device__ static T normal(std::uint64_t seed, std::uint64_t index, std::uint64_t step) {
    curandStatePhilox4_32_10_t s;
    curand_init(seed, index, step * 4, &s);
    if constexpr (sizeof(T) == sizeof(double))
      return T(curand_normal_double(&s));
    else
      return T(curand_normal(&s));
  }

 private:
  std::uint64_t seed_ = 0;
  std::uint64_t step_ = 0;
};

}  // namespace prilo::gpu

// Gradient-noise schedules: none, and Welling–Teh σ_k² = η / (1 + k)^γ.
#pragma once

#include <cmath>

#include "../concepts/noise_schedule.hpp"
#include "../core.hpp"

namespace prilo {

/// No gradient noise.
struct NoNoise {
  static constexpr bool enabled = false;
  template <class T>
  T sigma(int) const {
    return T(0);
  }
};

/// Welling & Teh (2011): σ_k² = η / (1 + k)^γ. The paper uses η = 0.02, γ = 0.55.
struct WellingTeh {
  static constexpr bool enabled = true;
  double eta = 0.02;
  double gamma = 0.55;
  template <class T>
  T sigma(int k) const {
    if (!(eta >= 0) || !std::isfinite(eta)) detail::fail("WellingTeh: eta must be finite and >= 0, got ", eta);
    if (k < 0) detail::fail("WellingTeh: the step index must be >= 0, got ", k);
    if (eta == 0) return T(0);  // no noise (what the formula gives for every finite gamma)
    if (!std::isfinite(gamma)) detail::fail("WellingTeh: gamma must be finite, got ", gamma);
    return T(std::sqrt(eta / std::pow(1.0 + k, gamma)));
  }
};

static_assert(NoiseSchedule<NoNoise, float>);
static_assert(NoiseSchedule<WellingTeh, double>);

}  // namespace prilo

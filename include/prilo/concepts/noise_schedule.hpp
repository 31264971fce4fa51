// Concept of a gradient-noise schedule: the noise standard deviation at step k.
#pragma once

#include <concepts>

namespace prilo {

/// A NoiseSchedule gives σ_k, the standard deviation of the Gaussian noise u_k ~ N(0, σ_k² I)
/// added to the gradient at step k (k = 0, 1, …).
template <class S, class T>
concept NoiseSchedule = requires(const S& s, int k) {
  // σ_k ≥ 0 for step k;
  { s.template sigma<T>(k) } -> std::convertible_to<T>;
  // whether the schedule ever adds noise (lets optimisers skip sampling at compile time).
  { S::enabled } -> std::convertible_to<bool>;
};

}  // namespace prilo

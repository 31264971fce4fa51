// Concept of a compute backend: a tag type naming storage, dense products and random numbers.
#pragma once

#include <concepts>

#include "../core.hpp"

namespace prilo {

/// A Backend is a tag type (prilo::cpu, prilo::cuda) that algorithms take as a template
/// argument. It names:
template <class B>
concept Backend = requires {
  // a printable name, shown by the programs ("cpu", "cuda");
  { B::name } -> std::convertible_to<const char*>;
  // the batch storage: a matrix with one sample per column, for float and double;
  typename B::template matrix<float>;
  typename B::template matrix<double>;
  // complex batches (FFT outputs, complex measurements);
  typename B::template complex_matrix<float>;
  // a seeded random generator type;
  typename B::rng;
  // the threads it may use for batched work.
  { B::threads() } -> std::convertible_to<int>;
}
&&requires(typename B::template matrix<float>& m) {
  // matrices know their shape.
  { m.rows() } -> std::convertible_to<long>;
  { m.cols() } -> std::convertible_to<long>;
};

}  // namespace prilo

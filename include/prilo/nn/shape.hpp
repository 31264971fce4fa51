// The shape of one sample's feature maps, and how a batch of them is laid out.
#pragma once

#include <limits>

#include "../core.hpp"

namespace prilo::nn {

/// C feature maps of H×W pixels. A batch holds one sample per column, each sample's
/// maps in PyTorch's order (channel, row, column): element (c, h, w) of sample j is
/// x((c·H + h)·W + w, j). Reshaping between a flat vector and feature maps is therefore free:
/// a dense layer's output of size C·H·W is C maps of H×W.
struct Shape3 {
  Eigen::Index channels = 0, height = 0, width = 0;
  Eigen::Index size() const { return channels * height * width; }
  Eigen::Index pixels() const { return height * width; }
  friend bool operator==(const Shape3&, const Shape3&) = default;
};

/// Fails with a message naming `what` unless every extent is positive and the element count
/// C·H·W fits Eigen::Index (size() and pixels() would overflow silently, and so would every
/// offset (c·H + h)·W + w computed from them). Per sample: a batch's C·H·W × n matrix that
/// exists has fewer elements than Index counts, and Eigen refuses to allocate one that would
/// not (std::bad_alloc).
inline void require_positive(const Shape3& s, const char* what) {
  if (s.channels <= 0 || s.height <= 0 || s.width <= 0)
    detail::fail(what, ": feature-map shape must be positive, got ", s.channels, "x", s.height, "x", s.width);
  constexpr Eigen::Index most = std::numeric_limits<Eigen::Index>::max();
  if (s.height > most / s.width || s.channels > most / (s.height * s.width))
    detail::fail(what, ": feature-map shape ", s.channels, "x", s.height, "x", s.width, " has more elements than ",
                 most, " (the index type's range)");
}

}  // namespace prilo::nn

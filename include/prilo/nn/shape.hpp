// The shape of one sample's feature maps, and how a batch of them is laid out.
#pragma once

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

/// Fails with a message naming `what` unless every extent is positive.
inline void require_positive(const Shape3& s, const char* what) {
  if (s.channels <= 0 || s.height <= 0 || s.width <= 0)
    detail::fail(what, ": feature-map shape must be positive, got ", s.channels, "x", s.height, "x", s.width);
}

}  // namespace prilo::nn

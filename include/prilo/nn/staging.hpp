// nn::Staging: the scratch matrices of a module pass that copies row blocks in and out of its
// stacked columns (the style modules, nn/style.hpp), kept by a trace between calls.
#pragma once

namespace prilo::nn {

/// Staging buffers of a style module's pass: the row blocks copied out of the stacked columns
/// [h; z0] and the modulation's style values. A pass called without one makes its own;
/// nn::Sequential's trace keeps one per module and gpu::Sequential's one for all modules (a
/// DeviceMatrix keeps its capacity when it shrinks), so that a solver step reuses their
/// buffers instead of allocating (M: prilo::Mat or gpu::DeviceMatrix).
template <class M>
struct Staging {
  M a, b, c, d;
  /// Carry's copies of the feature rows of its input and output, and the forward pass they
  /// belong to (the addresses and column count of that pass's x and y): a VJP that gets the
  /// same x and y, unchanged since, with this staging reads them instead of copying the rows out
  /// again. Only Carry writes them; it clears the key before it touches the copies, and only its
  /// forward sets it.
  M fx, fy;
  const void* key_x = nullptr;
  const void* key_y = nullptr;
  long long key_cols = -1;
};

}  // namespace prilo::nn

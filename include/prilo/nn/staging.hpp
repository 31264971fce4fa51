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
};

}  // namespace prilo::nn

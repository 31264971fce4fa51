// Fully connected layer on the GPU: prilo::nn::Dense on the CUDA executor. The layer's bodies
// are those of prilo/nn/linear.hpp; the executor supplies cuBLAS GEMMs and the fused bias +
// activation, cotangent and row-sum kernels (backend/cuda/executor.cuh).
#pragma once

#include "config.cuh"

#include "../../nn/linear.hpp"
#include "executor.cuh"

namespace prilo::gpu {

/// y = act(W x + b) for a device batch x (one sample per column), W ∈ ℝ^{out×in}, the bias an
/// out×1 device matrix: prilo::nn::Dense<T, Act, CudaExecutor>, the same class template and
/// bodies as the CPU layer. Work is queued on the executor's handle and stream (by default
/// the calling thread's default cuBLAS handle; set_executor or a constructor's last argument
/// picks another). Built from a CPU layer (`gpu::Dense<T, Act> d(host)`, `d.upload(host)`),
/// copied back with `d.download(host)`, or drawn as nn::Dense(in, out, rng) draws.
template <class T, class Act = nn::Identity>
using Dense = nn::Dense<T, Act, CudaExecutor>;

/// y = W x + b on the GPU.
template <class T>
using Linear = Dense<T, nn::Identity>;

}  // namespace prilo::gpu

// The CUDA backend of prilo (umbrella header; include from .cu files compiled by nvcc).
//
//   prilo::cuda              backend tag (satisfies prilo::Backend)
//   prilo::gpu::DeviceMatrix move-only device batches, upload/download to prilo::Mat
//   prilo::gpu::BlasHandle, gemm, Dense       cuBLAS products and fused dense layers
//   prilo::gpu::Conv2d, ConvTranspose2d       convolution layers (im2col/col2im kernels + cuBLAS)
//   prilo::gpu::Duplicate, Carry, Modulate    the style modules (z0 fed into every layer)
//   prilo::gpu::Fourier2d, MagnitudeLoss      cuFFT plans and the fused DFT magnitude loss
//   prilo::gpu::L1Ball                        batched exact l1-ball projection
//   prilo::gpu::CudaExecutor                  the executor: customisation points on device batches
//   prilo::gpu::Adam, GradientDescent         prilo::Adam / GradientDescent on the CUDA executor
//   prilo::gpu::Sequential                    a device generator (dense, conv, style modules) for dpr, prilo_solve
//                                             and the pipeline (prilo/pipeline.hpp)
//
// See docs/cuda.md.
#pragma once

#include "cuda/config.cuh"

#include "cuda/adam.cuh"
#include "cuda/backend.cuh"
#include "cuda/blas.cuh"
#include "cuda/conv.cuh"
#include "cuda/dense.cuh"
#include "cuda/device_matrix.cuh"
#include "cuda/elementwise.cuh"
#include "cuda/error.cuh"
#include "cuda/executor.cuh"
#include "cuda/fft.cuh"
#include "cuda/gaussian.cuh"
#include "cuda/l1_ball.cuh"
#include "cuda/magnitude_loss.cuh"
#include "cuda/peak.cuh"
#include "cuda/placement.cuh"
#include "cuda/random.cuh"
#include "cuda/sequential.cuh"
#include "cuda/style.cuh"

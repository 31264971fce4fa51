// prilo-reconstruct-cuda: prilo-reconstruct compiled by nvcc with the CUDA backend, so that
// `--backend cuda` runs DPR, PRILO and MII on the GPU (the same program otherwise).
#include <prilo/backend/cuda/config.cuh>  // first: Eigen in host-only mode, before any Eigen header

#define PRILO_RECONSTRUCT_CUDA 1
#include "reconstruct.cpp"

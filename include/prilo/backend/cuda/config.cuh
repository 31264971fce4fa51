// Included first by every CUDA header of prilo. prilo uses Eigen only in host code, so Eigen's
// own CUDA support (device annotations on every Eigen function, which makes nvcc warn about
// Eigen internals) is switched off unless the user asks to keep it (PRILO_KEEP_EIGEN_CUDA) or
// has configured Eigen before including prilo.
#pragma once

#if !defined(PRILO_KEEP_EIGEN_CUDA) && !defined(EIGEN_NO_CUDA) && !defined(EIGEN_WORLD_VERSION)
#define EIGEN_NO_CUDA
#endif

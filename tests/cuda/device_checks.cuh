// What the CUDA tests share: the tolerance of a device result against the host one, the
// relative error they compare, and the check of a device generator against the host chain it
// was uploaded from at every split range.
#pragma once

#include <doctest/doctest.h>

#include <prilo/backend/cuda/device_matrix.cuh>
#include <prilo/backend/cuda/sequential.cuh>
#include <prilo/core.hpp>
#include <prilo/random.hpp>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace prilo_cuda_test {

using prilo::Mat;
using prilo::gpu::DeviceMatrix;

/// The agreement a device result must reach with the host one (float: the kernels sum in
/// other orders; double: rounding only).
template <class T>
constexpr double tol() {
  return std::is_same_v<T, float> ? 2e-4 : 1e-10;
}

/// max |a − b| relative to max(1, max |b|).
template <class A, class B>
double rel_err(const A& a, const B& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  if (a.size() == 0) return 0.0;
  const double scale = std::max(1.0, double(b.cwiseAbs().maxCoeff()));
  return double((a - b).cwiseAbs().maxCoeff()) / scale;
}

/// A device generator against its host chain: sizes, state blocks and FLOP count, then the
/// forward pass and the input VJP (both forms, the in-place one twice so that the trace's
/// buffers are reused) of every split range (i, j) on a random batch.
template <class T, class Host, class Device>
void check_split_ranges(const Host& host, const Device& dev, Eigen::Index batch, std::uint64_t seed) {
  REQUIRE(dev.depth() == host.depth());
  for (int i = 0; i <= host.depth(); ++i) {
    CHECK(dev.dim(i) == host.dim(i));
    CHECK(dev.blocks(i) == host.blocks(i));
  }
  CHECK(dev.flops(0, host.depth()) == host.flops(0, host.depth()));
  prilo::Rng rng(seed);
  const Mat<T> z = rng.normal_matrix<T>(host.dim(0), batch);
  CHECK(rel_err(dev(DeviceMatrix<T>(z)).download(), host(z)) < tol<T>());
  for (int i = 0; i < host.depth(); ++i)
    for (int j = i + 1; j <= host.depth(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      const Mat<T> zi = host.forward(0, i, z);
      typename Host::trace_type htr;
      prilo::gpu::Trace<T> dtr;
      host.forward(i, j, zi, htr);
      dev.forward(i, j, DeviceMatrix<T>(zi), dtr);
      CHECK(rel_err(dtr.output().download(), htr.output()) < tol<T>());
      const Mat<T> gy = rng.normal_matrix<T>(host.dim(j), batch);
      const Mat<T> want = host.vjp_input(htr, gy);
      CHECK(rel_err(dev.vjp_input(dtr, DeviceMatrix<T>(gy)).download(), want) < 10 * tol<T>());
      DeviceMatrix<T> g;
      dev.vjp_input(dtr, DeviceMatrix<T>(gy), g);
      dev.vjp_input(dtr, DeviceMatrix<T>(gy), g);
      CHECK(rel_err(g.download(), want) < 10 * tol<T>());
      if constexpr (requires(DeviceMatrix<T> & m) { dev.forward_lent(i, j, m, dtr); }) {
        // the lent pass: the same output and VJP with no device copy of z_i, given back as it was
        DeviceMatrix<T> dz(zi);
        const T* own = dz.data();
        prilo::gpu::Trace<T> ltr;
        dev.forward_lent(i, j, dz, ltr);
        CHECK(ltr.input().data() == own);
        CHECK(rel_err(ltr.output().download(), htr.output()) < tol<T>());
        CHECK(rel_err(dev.vjp_input(ltr, DeviceMatrix<T>(gy)).download(), want) < 10 * tol<T>());
        ltr.give_back(dz);
        CHECK(dz.data() == own);
        CHECK(dz.download() == zi);
      }
    }
}

}  // namespace prilo_cuda_test

// A small generator and its Fourier measurements, shared by the test bodies of every executor
// and by the MPI test.
#pragma once

#include <prilo/nn/linear.hpp>
#include <prilo/nn/sequential.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/operators/magnitude_loss.hpp>
#include <prilo/random.hpp>

namespace bodies {

using prilo::Mat;

/// A small decoder 6 → 24 → 36 (6×6 images), ReLU then sigmoid, and its measurements.
template <class T>
struct Problem {
  using Host = prilo::nn::Sequential<T, prilo::nn::Dense<T, prilo::nn::Relu>, prilo::nn::Dense<T, prilo::nn::Sigmoid>>;
  Host gen;
  prilo::Fourier2d<T> op{6, 6};
  Mat<T> z_true, x_true, y;

  explicit Problem(int images, std::uint64_t seed = 3) {
    prilo::Rng rng(seed);
    gen =
        Host(6, prilo::nn::Dense<T, prilo::nn::Relu>(6, 24, rng), prilo::nn::Dense<T, prilo::nn::Sigmoid>(24, 36, rng));
    z_true = rng.normal_matrix<T>(6, images);
    x_true = gen.forward_from(0, z_true);
    y = op.apply(x_true).cwiseAbs();
  }
  /// Mean magnitude error ‖|F x| − y‖² / m of host images x.
  double error(const Mat<T>& x) const {
    return double(prilo::MagnitudeLoss<prilo::Fourier2d<T>>(op, y).value(x).mean()) / double(op.output_size());
  }
};

}  // namespace bodies

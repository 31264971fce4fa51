// Test bodies shared by every executor: the CPU suite (tests/test_executor.cpp) runs them on
// prilo::Mat, the CUDA suite (tests/cuda/test_cuda_solvers.cu) on device batches. A Backend
// adapter says how to put a host generator and a DFT on its executor.
#pragma once

#include <doctest/doctest.h>

#include <cmath>

#include <prilo/nn/linear.hpp>
#include <prilo/nn/sequential.hpp>
#include <prilo/operators/fourier.hpp>
#include <prilo/pipeline.hpp>
#include <prilo/random.hpp>
#include <prilo/solvers/latent.hpp>

#include "problem.hpp"

namespace bodies {

using prilo::Mat;

/// DPR with restarts through the pipeline, noise off: lowers the magnitude error of the
/// random starts more than tenfold, and reports what it solved. Returns the images.
template <class Backend, class T>
Mat<T> dpr_pipeline_lowers_error() {
  const Problem<T> p(8);
  const auto gen = Backend::generator(p.gen);
  const auto op = Backend::fourier(p.op);
  prilo::Rng rng(11);
  const Mat<T> starts = prilo::random_latents(p.gen, 8, rng);
  const double before = p.error(p.gen.forward_from(0, starts));
  prilo::DprOptions<T> opt;
  opt.phase = {.steps = 500, .radius = T(100), .learning_rate = T(0.1)};
  opt.noise.enabled = false;
  prilo::Rng solve_rng(12);
  const auto r = prilo::reconstruct_dpr(gen, op, p.y, prilo::LatentStart::random, {}, opt, solve_rng,
                                        {.restarts = 4, .blocks = {.blocks = 1}});
  REQUIRE(r.best.x.rows() == 36);
  REQUIRE(r.best.x.cols() == 8);
  REQUIRE(r.best.z.rows() == 6);
  CHECK(r.best.chosen_restart.size() == 8u);
  const double after = p.error(r.best.x);
  CHECK(after < before / 10);  // measured: 28× lower (random starts on a non-convex problem)
  // the reported error is the error of the returned images
  CHECK(double(r.best.magnitude_error.mean()) == doctest::Approx(after).epsilon(1e-3));
  return r.best.x;
}

/// PRILO (chained reading, keep-best) from MII starts, noise off: no worse than its MII start
/// by construction of keep-best, and far better in practice on this problem.
template <class Backend, class T>
Mat<T> prilo_mii_pipeline_lowers_error() {
  const Problem<T> p(8);
  const auto gen = Backend::generator(p.gen);
  const auto op = Backend::fourier(p.op);
  prilo::PriloOptions<T> opt;
  opt.initial = {.steps = 100, .radius = T(100), .learning_rate = T(0.05)};
  opt.stages = {{.layer = 1, .repetitions = 2, .forward = {.steps = 100, .radius = T(10), .learning_rate = T(0.02)}}};
  opt.reading = prilo::PriloReading::chained;
  opt.noise.enabled = false;
  prilo::Rng rng(5);
  const auto r = prilo::reconstruct_prilo(gen, op, p.y, prilo::LatentStart::mii, {.candidates = 256, .chunk = 100}, opt,
                                          rng, {.restarts = 1, .blocks = {.blocks = 1}});
  prilo::Rng mii_rng(5);
  const Mat<T> z_mii = prilo::mii_latents(p.gen, prilo::MagnitudeLoss<prilo::Fourier2d<T>>(p.op, p.y), 1,
                                          {.candidates = 256, .chunk = 100}, mii_rng);
  const double start = p.error(p.gen.forward_from(0, z_mii));
  const double after = p.error(r.best.x);
  CHECK(after <= start);
  CHECK(after < start / 1000);  // measured: 3.8e-4 → 1e-10
  return r.best.x;
}

/// A non-finite start is an error on every executor (invalid_input), never a silent result.
template <class Backend, class T>
void nonfinite_start_is_an_error() {
  const Problem<T> p(2);
  const auto gen = Backend::generator(p.gen);
  const auto op = Backend::fourier(p.op);
  using prilo::make_magnitude_loss;  // the executor's form is found by argument-dependent lookup
  const auto loss = make_magnitude_loss(op, p.y);
  Mat<T> z0 = Mat<T>::Zero(6, 2);
  z0(0, 1) = std::numeric_limits<T>::quiet_NaN();
  prilo::DprOptions<T> opt;
  opt.phase.steps = 3;
  prilo::Rng rng(1);
  CHECK_THROWS_AS(prilo::dpr(gen, loss, Backend::upload(z0), opt, rng), prilo::invalid_input);
}

}  // namespace bodies

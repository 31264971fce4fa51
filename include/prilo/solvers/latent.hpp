// Latent-space solvers: DPR (Hand et al.) and PRILO (intermediate layer optimisation).
#pragma once

#include <limits>
#include <type_traits>
#include <string>

#include "../concepts/generator.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../optim/optimizers.hpp"
#include "../projection/l1_ball.hpp"
#include "../schedule/noise.hpp"
#include "common.hpp"

namespace prilo {

/// One projected-gradient phase: `steps` Adam steps with learning rate `learning_rate`,
/// each followed by the projection onto the l1 ball of radius `radius` around the phase's
/// centre (radius = +∞ or constrain = false: no projection).
template <class T>
struct PhaseOptions {
  int steps = 100;
  T radius = T(100);
  T learning_rate = T(0.1);
  bool constrain = true;
  bool enabled = true;
};

/// Gradient noise of every phase: Welling–Teh σ_k² = η/(1+k)^γ, k counted per phase.
struct NoiseOptions {
  bool enabled = true;
  double eta = 0.02;
  double gamma = 0.55;
};

/// DPR: min_{z0} ‖|A G(z0)| − y‖² by projected Adam from the given start, in the l1 ball of
/// `phase.radius` around 0.
template <class T>
struct DprOptions {
  PhaseOptions<T> phase{.steps = 150, .radius = T(100), .learning_rate = T(0.1)};
  NoiseOptions noise{};
  int history_stride = 10;
  ProgressFn progress = {};
};

/// One PRILO stage (the paper's Tables 7 and 8): repeated `repetitions` times, A optimises
/// z_layer in an l1 ball around its current value, B back-projects to z0 in an l1 ball around
/// 0, C refines z0 for the magnitude loss in an l1 ball around the back-projected z0.
template <class T>
struct PriloStage {
  int layer = 1;
  int repetitions = 1;
  PhaseOptions<T> forward{.steps = 150, .radius = T(50), .learning_rate = T(0.05)};   ///< A
  PhaseOptions<T> back{.steps = 100, .radius = T(100), .learning_rate = T(0.1)};       ///< B
  PhaseOptions<T> refine{.steps = 100, .radius = T(10), .learning_rate = T(0.05)};     ///< C
};

template <class T>
struct PriloOptions {
  PhaseOptions<T> initial{.steps = 150, .radius = T(100), .learning_rate = T(0.1)};  ///< initial z0
  std::vector<PriloStage<T>> stages;
  NoiseOptions noise{};
  /// Return, per image, the z0 with the lowest magnitude error among the ends of the
  /// initial optimisation and of every C phase (PRILO's later stages can lose what an earlier
  /// one found; this uses only the measurements). false: the z0 after the last phase.
  bool keep_best = true;
  /// Also consider the range-extended images G_{i+1}^k(z_i*) that the forward phases (A)
  /// reach: keep, per image, whichever image (from z0 or from an A phase) has the lowest
  /// magnitude error. Off in the paper's method; measured in docs/results.md.
  bool keep_best_range_extended = false;
  int history_stride = 10;
  ProgressFn progress = {};
};

namespace detail {

template <class T>
using LatentAdam = Adam<T, L1Ball<T>, WellingTeh>;

template <class T>
LatentAdam<T> make_adam(const PhaseOptions<T>& ph, const NoiseOptions& noise) {
  const T r = ph.constrain ? ph.radius : std::numeric_limits<T>::infinity();
  return LatentAdam<T>({.learning_rate = ph.learning_rate}, L1Ball<T>{.radius = r},
                       WellingTeh{.eta = noise.enabled ? noise.eta : 0.0, .gamma = noise.gamma});
}

/// Minimises the magnitude loss over the representation z at split point `layer`, starting
/// from z and staying in the l1 ball around `centre`. Returns the final per-column loss.
template <Generator G, class Loss, class T = typename G::scalar>
Vec<T> optimise_magnitude(const G& gen, int layer, const Loss& loss, Mat<T>& z, const Mat<T>& centre,
                          const PhaseOptions<T>& ph, const NoiseOptions& noise, Rng& rng, SolveResult<T>& res,
                          int& global_step, int stride, const ProgressFn& progress, const std::string& method,
                          const std::string& stage) {
  typename G::trace_type tr;
  Mat<T> gx, gz;
  auto adam = make_adam(ph, noise);
  Vec<T> l;
  for (int k = 0; k < ph.steps; ++k) {
    gen.forward(layer, gen.depth(), z, tr);
    l = loss.value_and_gradient(tr.output(), gx);
    gz = gen.vjp_input(tr, gx);
    adam.step(z, gz, centre, rng);
    ++global_step;
    record(res, global_step, l, stride);
    if (progress && stride > 0 && (k + 1) % stride == 0) progress({method, stage, k + 1, ph.steps, double(l.mean())});
  }
  return loss.value(gen.forward_from(layer, z));
}

/// Back-projection (step B): min_{z0} ‖G_0^{layer}(z0) − target‖² in the l1 ball of radius
/// ph.radius around 0, from the start z0.
template <Generator G, class T = typename G::scalar>
void back_project(const G& gen, int layer, const Mat<T>& target, Mat<T>& z0, const PhaseOptions<T>& ph,
                  const NoiseOptions& noise, Rng& rng, const ProgressFn& progress, const std::string& method,
                  const std::string& stage, int stride) {
  typename G::trace_type tr;
  Mat<T> gz, diff;
  const Mat<T> zero = Mat<T>::Zero(z0.rows(), 1);
  auto adam = make_adam(ph, noise);
  for (int k = 0; k < ph.steps; ++k) {
    gen.forward(0, layer, z0, tr);
    diff = tr.output() - target;  // same shape every step: no allocation after the first
    const bool report = progress && stride > 0 && (k + 1) % stride == 0;
    const double mean_sq = report ? double(diff.colwise().squaredNorm().mean()) : 0.0;
    diff *= T(2);
    gz = gen.vjp_input(tr, diff);
    adam.step(z0, gz, zero, rng);
    if (report) progress({method, stage, k + 1, ph.steps, mean_sq});
  }
}

template <Generator G, class Loss, class T = typename G::scalar>
SolveResult<T> finish(const G& gen, const Loss& loss, Mat<T> z0, SolveResult<T> res) {
  res.x = gen.forward_from(0, z0);
  res.magnitude_error = loss.value(res.x) / T(loss.op().output_size());
  res.z = std::move(z0);
  return res;
}

}  // namespace detail

/// DPR (Hand, Leong & Voroninski 2018): projected Adam on z0 for ‖|A G(z0)| − y‖².
/// z0 holds one start per measurement column of `loss`.
template <Generator G, class Loss, class T = typename G::scalar>
SolveResult<T> dpr(const G& gen, const Loss& loss, std::type_identity_t<Mat<T>> z0, const DprOptions<T>& opt, Rng& rng) {
  require_shape(z0, gen.dim(0), loss.batch(), "dpr start z0");
  SolveResult<T> res;
  int step = 0;
  const Mat<T> zero = Mat<T>::Zero(z0.rows(), 1);
  detail::optimise_magnitude(gen, 0, loss, z0, zero, opt.phase, opt.noise, rng, res, step, opt.history_stride,
                             opt.progress, "dpr", "z0");
  return detail::finish(gen, loss, std::move(z0), std::move(res));
}

/// PRILO: the initial optimisation of z0, then every stage in order, each repeated as
/// configured, each repetition made of A (forward optimisation of z_i), B (back-projection)
/// and C (refinement); any of them can be disabled (PhaseOptions::enabled), as can the balls
/// (constrain) and the noise. Without B, C starts from G_1^i's preimage it cannot have, so
/// the stage's result is taken from A alone only when B and C are both disabled (then the
/// reconstruction is G_{i+1}^k(z_i*), the "only step A" ablation, and z is left empty).
template <Generator G, class Loss, class T = typename G::scalar>
SolveResult<T> prilo_solve(const G& gen, const Loss& loss, std::type_identity_t<Mat<T>> z0, const PriloOptions<T>& opt, Rng& rng) {
  require_shape(z0, gen.dim(0), loss.batch(), "prilo start z0");
  for (const auto& st : opt.stages)
    if (st.layer < 1 || st.layer >= gen.depth())
      detail::fail("prilo: stage layer ", st.layer, " must be an intermediate split point in 1..", gen.depth() - 1);
  SolveResult<T> res;
  int step = 0;
  const Mat<T> zero = Mat<T>::Zero(z0.rows(), 1);
  if (opt.initial.enabled)
    detail::optimise_magnitude(gen, 0, loss, z0, zero, opt.initial, opt.noise, rng, res, step, opt.history_stride,
                               opt.progress, "prilo", "initial z0");
  Mat<T> x_only_a;  // set when a stage runs A without B and C
  Mat<T> best_z = z0;
  Mat<T> best_x = gen.forward_from(0, z0);
  Vec<T> best_loss = loss.value(best_x);
  auto keep_x = [&](const Mat<T>& x, const Mat<T>* z) {
    const Vec<T> l = loss.value(x);
    for (Eigen::Index j = 0; j < l.size(); ++j)
      if (l(j) < best_loss(j)) {
        best_loss(j) = l(j);
        best_x.col(j) = x.col(j);
        if (z) best_z.col(j) = z->col(j);
      }
  };
  auto keep = [&] {
    if (opt.keep_best) keep_x(gen.forward_from(0, z0), &z0);
  };
  for (const auto& st : opt.stages) {
    for (int rep = 0; rep < st.repetitions; ++rep) {
      // built with append: GCC 12 warns falsely (-Wrestrict, bug 105329) on "literal" + string
      std::string tag = "z";
      tag.append(std::to_string(st.layer)).append(" rep ").append(std::to_string(rep + 1)).append("/").append(
          std::to_string(st.repetitions));
      const std::string tag_a = std::string("A ").append(tag), tag_b = std::string("B ").append(tag),
                        tag_c = std::string("C ").append(tag);
      Mat<T> zi = gen.forward(0, st.layer, z0);
      if (st.forward.enabled) {
        const Mat<T> centre = zi;
        detail::optimise_magnitude(gen, st.layer, loss, zi, centre, st.forward, opt.noise, rng, res, step,
                                   opt.history_stride, opt.progress, "prilo", tag_a);
        if (opt.keep_best_range_extended) keep_x(gen.forward_from(st.layer, zi), nullptr);
      }
      if (!st.back.enabled && !st.refine.enabled) {
        x_only_a = gen.forward_from(st.layer, zi);
        continue;
      }
      x_only_a.resize(0, 0);
      if (st.back.enabled)
        detail::back_project(gen, st.layer, zi, z0, st.back, opt.noise, rng, opt.progress, "prilo", tag_b,
                             opt.history_stride);
      if (st.refine.enabled) {
        const Mat<T> centre = z0;
        detail::optimise_magnitude(gen, 0, loss, z0, centre, st.refine, opt.noise, rng, res, step, opt.history_stride,
                                   opt.progress, "prilo", tag_c);
      }
      keep();
    }
  }
  if (x_only_a.size()) {
    res.x = std::move(x_only_a);
    res.magnitude_error = loss.value(res.x) / T(loss.op().output_size());
    return res;
  }
  keep();
  if (opt.keep_best_range_extended) {
    // the image may come from an A phase (no latent reproduces it exactly): z is the latent
    // kept for it by the z0 phases
    res.x = std::move(best_x);
    res.magnitude_error = best_loss / T(loss.op().output_size());
    res.z = std::move(best_z);
    return res;
  }
  return detail::finish(gen, loss, opt.keep_best ? std::move(best_z) : std::move(z0), std::move(res));
}

}  // namespace prilo

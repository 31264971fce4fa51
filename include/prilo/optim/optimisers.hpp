// Projected gradient descent and Adam with projection and gradient-noise policies, over any executor.
#pragma once

#include <cmath>
#include <type_traits>

#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../nn/parameter.hpp"
#include "../projection/none.hpp"
#include "../random.hpp"
#include "../schedule/noise.hpp"

namespace prilo {

template <class T>
struct GradientDescentOptions {
  T learning_rate = T(0.01);
};

template <class T>
struct AdamOptions {
  T learning_rate = T(1e-3);
  T beta1 = T(0.9);
  T beta2 = T(0.999);
  T epsilon = T(1e-8);
};

namespace detail {
/// The step's shapes, checked before the step moves x, the moments and the count: the gradient
/// of x's shape; the centre x's rows by x's columns or 1, or, where `empty_centre` (the CUDA
/// executor's Unconstrained takes none), empty. On the CPU every projection policy refuses an
/// empty centre for a non-empty batch (ProjectionPolicy's contract), after the step had moved.
template <class M>
void check_step_inputs(const M& x, const M& grad, const M& centre, bool empty_centre) {
  require_shape(grad, x.rows(), x.cols(), "optimiser gradient");
  if (!(centre.rows() == x.rows() && (centre.cols() == x.cols() || centre.cols() == 1)) &&
      !(centre.size() == 0 && (empty_centre || x.size() == 0)))
    fail("optimiser centre: expected ", x.rows(), "x", x.cols(), " or ", x.rows(), "x1, got ", centre.rows(), "x",
         centre.cols());
}
/// The checks every training loop makes of its schedule (train_vae, train_li_encoder,
/// train_placement_scorer): invalid_input, prefixed by `who`, unless epochs and batch are at
/// least 1 and the learning rate is positive and finite.
inline void check_training_schedule(const char* who, int epochs, Eigen::Index batch, double learning_rate) {
  if (epochs < 1) fail(who, ": epochs must be at least 1, got ", epochs);
  if (batch < 1) fail(who, ": batch must be at least 1, got ", batch);
  if (!(learning_rate > 0) || !std::isfinite(learning_rate))
    fail(who, ": the learning rate must be positive and finite, got ", learning_rate);
}
/// An optimiser's options: invalid_input unless the learning rate is finite and ≥ 0 and, for
/// Adam, β₁ and β₂ are in [0, 1) and ε is finite and > 0 (outside them every step writes NaN
/// or inf, or the bias correction divides by zero; with ε = 0 a zero gradient entry, as a dead
/// ReLU gives, makes 0/0).
template <class T>
void check_options(const GradientDescentOptions<T>& o, const char* who) {
  if (!(o.learning_rate >= T(0)) || !std::isfinite(o.learning_rate))
    fail(who, ": the learning rate must be finite and >= 0, got ", o.learning_rate);
}
template <class T>
void check_options(const AdamOptions<T>& o, const char* who) {
  check_options(GradientDescentOptions<T>{o.learning_rate}, who);
  if (!(o.beta1 >= T(0) && o.beta1 < T(1)) || !(o.beta2 >= T(0) && o.beta2 < T(1)))
    fail(who, ": beta1 and beta2 must be in [0, 1), got ", o.beta1, " and ", o.beta2);
  if (!(o.epsilon > T(0)) || !std::isfinite(o.epsilon))
    fail(who, ": epsilon must be finite and > 0 (0 makes a zero gradient entry 0/0), got ", o.epsilon);
}
}  // namespace detail

/// Projected gradient descent with gradient noise (the paper's Eq. 10):
/// x ← P(x − α(∇f(x) + u_k)), u_k ~ N(0, σ_k² I), P the projection onto the set around
/// `centre` (per column). Written once over the executor's customisation points
/// (prilo/exec/executor.hpp): Exec = CpuExecutor works on prilo::Mat, the CUDA executor on
/// device batches.
template <class T, class Projection = NoProjection, class Noise = NoNoise, Executor Exec = CpuExecutor>
class GradientDescent {
 public:
  using matrix = matrix_t<Exec, T>;

  GradientDescent(GradientDescentOptions<T> opt = {}, Projection proj = {}, Noise noise = {}, Exec ex = {})
      : opt_(opt), proj_(std::move(proj)), noise_(noise), ex_(std::move(ex)) {
    detail::check_options(opt_, "GradientDescent");
  }
  void reset() { k_ = 0; }
  int iteration() const { return k_; }
  Projection& projection() { return proj_; }

  void step(matrix& x, const matrix& grad, const matrix& centre, Rng& rng) {
    detail::check_step_inputs(x, grad, centre, !std::is_same_v<Exec, CpuExecutor>);
    T sigma = T(0);
    if constexpr (Noise::enabled) sigma = noise_.template sigma<T>(k_);
    gradient_step(ex_, x, grad, opt_.learning_rate, sigma, rng, g_);
    project(ex_, proj_, x, centre);
    ++k_;
  }

 private:
  GradientDescentOptions<T> opt_;
  Projection proj_;
  Noise noise_;
  Exec ex_;
  matrix g_;
  int k_ = 0;
};

/// Adam (Kingma & Ba 2015) on a batch variable with bias correction, the same noise
/// injection on the gradient and a projection after every step:
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², x ← P(x − α m̂ / (√v̂ + ε)).
/// Each column is an independent problem; moments are element-wise, so columns never mix.
/// Written once over the executor's customisation points, like GradientDescent.
template <class T, class Projection = NoProjection, class Noise = NoNoise, Executor Exec = CpuExecutor>
class Adam {
 public:
  using matrix = matrix_t<Exec, T>;

  Adam(AdamOptions<T> opt = {}, Projection proj = {}, Noise noise = {}, Exec ex = {})
      : opt_(opt), proj_(std::move(proj)), noise_(noise), ex_(std::move(ex)) {
    detail::check_options(opt_, "Adam");
  }
  void reset() {
    k_ = 0;
    m_ = matrix();
    v_ = matrix();
  }
  int iteration() const { return k_; }
  Projection& projection() { return proj_; }
  const matrix& first_moment() const { return m_; }
  const matrix& second_moment() const { return v_; }

  void step(matrix& x, const matrix& grad, const matrix& centre, Rng& rng) {
    detail::check_step_inputs(x, grad, centre, !std::is_same_v<Exec, CpuExecutor>);
    if (m_.rows() != x.rows() || m_.cols() != x.cols()) {  // a new problem: fresh moments, bias correction from step 1
      m_ = zeros<T>(ex_, x.rows(), x.cols());
      v_ = zeros<T>(ex_, x.rows(), x.cols());
      k_ = 0;
    }
    T sigma = T(0);
    if constexpr (Noise::enabled) sigma = noise_.template sigma<T>(k_);
    ++k_;
    const T b1 = opt_.beta1, b2 = opt_.beta2;
    const AdamStep<T> c{
        b1,          b2, T(1) / (T(1) - std::pow(b1, T(k_))), T(1) / (T(1) - std::pow(b2, T(k_))), opt_.learning_rate,
        opt_.epsilon};
    adam_update(ex_, x, m_, v_, grad, c, sigma, rng, g_);
    project(ex_, proj_, x, centre);
  }

 private:
  AdamOptions<T> opt_;
  Projection proj_;
  Noise noise_;
  Exec ex_;
  matrix m_, v_, g_;
  int k_ = 0;
};

/// Adam over a model's parameter list (training). State is kept by the parameter's index
/// in the list, so the list must keep its order between steps.
template <class T>
class AdamTrainer {
 public:
  explicit AdamTrainer(AdamOptions<T> opt = {}) : opt_(opt) { detail::check_options(opt_, "AdamTrainer"); }
  void step(nn::ParamList<T>& params) {
    if (m_.size() != params.size()) {
      // fresh moments only for a fresh trainer: restored or used moments of another list would
      // be dropped while the step count (and so the bias correction) went on
      if (!m_.empty() || k_ != 0)
        detail::fail("AdamTrainer: the parameter list has ", params.size(), " tensors, its moments ", m_.size(),
                     " (at step ", k_, "): the list must keep its tensors from step to step");
      m_.clear();
      v_.clear();
      for (auto& p : params) {
        m_.push_back(Mat<T>::Zero(p.value.rows(), p.value.cols()));
        v_.push_back(Mat<T>::Zero(p.value.rows(), p.value.cols()));
      }
    }
    ++k_;
    const T b1 = opt_.beta1, b2 = opt_.beta2;
    const T c1 = T(1) / (T(1) - std::pow(b1, T(k_)));
    const T c2 = T(1) / (T(1) - std::pow(b2, T(k_)));
    for (std::size_t q = 0; q < params.size(); ++q) {
      auto& p = params[q];
      require_shape(p.value, m_[q].rows(), m_[q].cols(), "AdamTrainer parameter");
      require_shape(v_[q], m_[q].rows(), m_[q].cols(), "AdamTrainer second moment");
      require_shape(p.grad, m_[q].rows(), m_[q].cols(), "AdamTrainer gradient");
      detail::adam_span<T>(p.value.data(), m_[q].data(), v_[q].data(), p.grad.data(), nullptr, T(0), p.value.size(),
                           AdamStep<T>{b1, b2, c1, c2, opt_.learning_rate, opt_.epsilon});
    }
  }
  int iteration() const { return k_; }
  /// The moments (one per parameter, in list order) and the step count, for checkpoints.
  const std::vector<Mat<T>>& first_moments() const { return m_; }
  const std::vector<Mat<T>>& second_moments() const { return v_; }
  /// Continues from saved moments and step count (shapes must match the parameter list).
  void restore(std::vector<Mat<T>> m, std::vector<Mat<T>> v, int k) {
    if (m.size() != v.size())
      detail::fail("AdamTrainer::restore: ", m.size(), " first and ", v.size(), " second moments");
    if (k < 0) detail::fail("AdamTrainer::restore: the step count must be >= 0, got ", k);
    for (std::size_t q = 0; q < m.size(); ++q)
      if (m[q].rows() != v[q].rows() || m[q].cols() != v[q].cols())
        detail::fail("AdamTrainer::restore: moment ", q, " is ", m[q].rows(), "x", m[q].cols(), " (first) and ",
                     v[q].rows(), "x", v[q].cols(), " (second)");
    m_ = std::move(m);
    v_ = std::move(v);
    k_ = k;
  }

 private:
  AdamOptions<T> opt_;
  std::vector<Mat<T>> m_, v_;
  int k_ = 0;
};

}  // namespace prilo

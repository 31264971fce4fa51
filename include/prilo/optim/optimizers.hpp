// Projected gradient descent and Adam with projection and gradient-noise policies.
#pragma once

#include "../core.hpp"
#include "../random.hpp"
#include "../schedule/noise.hpp"
#include "../nn/parameter.hpp"
#include "../projection/none.hpp"

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
template <class T>
void check_step_inputs(const Mat<T>& x, const Mat<T>& grad, const Mat<T>& centre) {
  require_shape(grad, x.rows(), x.cols(), "optimiser gradient");
  if (centre.size() != 0 && !(centre.rows() == x.rows() && (centre.cols() == x.cols() || centre.cols() == 1)))
    fail("optimiser centre: expected ", x.rows(), "x", x.cols(), " or ", x.rows(), "x1, got ", centre.rows(), "x",
         centre.cols());
}
template <class T, class Noise>
void add_noise(Mat<T>& g, const Noise& noise, int k, Rng& rng) {
  if constexpr (Noise::enabled) {
    const T s = noise.template sigma<T>(k);
    if (s > T(0)) rng.add_normal(g.data(), g.size(), s);
  }
}
}  // namespace detail

/// Projected gradient descent with gradient noise (the paper's Eq. 10):
/// x ← P(x − α(∇f(x) + u_k)), u_k ~ N(0, σ_k² I), P the projection onto the set around
/// `centre` (per column).
template <class T, class Projection = NoProjection, class Noise = NoNoise>
class GradientDescent {
 public:
  GradientDescent(GradientDescentOptions<T> opt = {}, Projection proj = {}, Noise noise = {})
      : opt_(opt), proj_(std::move(proj)), noise_(noise) {}
  void reset() { k_ = 0; }
  int iteration() const { return k_; }
  Projection& projection() { return proj_; }

  void step(Mat<T>& x, const Mat<T>& grad, const Mat<T>& centre, Rng& rng) {
    detail::check_step_inputs(x, grad, centre);
    g_ = grad;
    detail::add_noise(g_, noise_, k_, rng);
    x.noalias() -= opt_.learning_rate * g_;
    proj_.project(x, centre);
    ++k_;
  }

 private:
  GradientDescentOptions<T> opt_;
  Projection proj_;
  Noise noise_;
  Mat<T> g_;
  int k_ = 0;
};

/// Adam (Kingma & Ba 2015) on a batch variable with bias correction, the same noise
/// injection on the gradient and a projection after every step:
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², x ← P(x − α m̂ / (√v̂ + ε)).
/// Each column is an independent problem; moments are element-wise, so columns never mix.
template <class T, class Projection = NoProjection, class Noise = NoNoise>
class Adam {
 public:
  Adam(AdamOptions<T> opt = {}, Projection proj = {}, Noise noise = {}) : opt_(opt), proj_(std::move(proj)), noise_(noise) {}
  void reset() {
    k_ = 0;
    m_.resize(0, 0);
    v_.resize(0, 0);
  }
  int iteration() const { return k_; }
  Projection& projection() { return proj_; }

  void step(Mat<T>& x, const Mat<T>& grad, const Mat<T>& centre, Rng& rng) {
    detail::check_step_inputs(x, grad, centre);
    if (m_.rows() != x.rows() || m_.cols() != x.cols()) {
      m_ = Mat<T>::Zero(x.rows(), x.cols());
      v_ = Mat<T>::Zero(x.rows(), x.cols());
    }
    const Mat<T>* g = &grad;
    if constexpr (Noise::enabled) {
      g_ = grad;
      detail::add_noise(g_, noise_, k_, rng);
      g = &g_;
    }
    ++k_;
    const T b1 = opt_.beta1, b2 = opt_.beta2;
    const T c1 = T(1) / (T(1) - std::pow(b1, T(k_)));
    const T c2 = T(1) / (T(1) - std::pow(b2, T(k_)));
    const T lr = opt_.learning_rate, eps = opt_.epsilon;
    const Eigen::Index n = x.size();
    T* xd = x.data();
    T* md = m_.data();
    T* vd = v_.data();
    const T* gd = g->data();
    for (Eigen::Index i = 0; i < n; ++i) {
      md[i] = b1 * md[i] + (T(1) - b1) * gd[i];
      vd[i] = b2 * vd[i] + (T(1) - b2) * gd[i] * gd[i];
      xd[i] -= lr * (md[i] * c1) / (std::sqrt(vd[i] * c2) + eps);
    }
    proj_.project(x, centre);
  }

 private:
  AdamOptions<T> opt_;
  Projection proj_;
  Noise noise_;
  Mat<T> m_, v_, g_;
  int k_ = 0;
};

/// Adam over a model's parameter list (training). State is kept by the parameter's index
/// in the list, so the list must keep its order between steps.
template <class T>
class AdamTrainer {
 public:
  explicit AdamTrainer(AdamOptions<T> opt = {}) : opt_(opt) {}
  void step(nn::ParamList<T>& params) {
    if (m_.size() != params.size()) {
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
      const Eigen::Index n = p.value.size();
      T* x = p.value.data();
      const T* g = p.grad.data();
      T* m = m_[q].data();
      T* v = v_[q].data();
      for (Eigen::Index i = 0; i < n; ++i) {
        m[i] = b1 * m[i] + (T(1) - b1) * g[i];
        v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
        x[i] -= opt_.learning_rate * (m[i] * c1) / (std::sqrt(v[i] * c2) + opt_.epsilon);
      }
    }
  }
  int iteration() const { return k_; }

 private:
  AdamOptions<T> opt_;
  std::vector<Mat<T>> m_, v_;
  int k_ = 0;
};

}  // namespace prilo

// A user-defined measurement operator that plugs into prilo through the concept alone:
// a random row subsampling of the DFT ("missing frequencies"), composed at compile time behind
// zero padding (oversampling), a coded-diffraction mask and the DFT, then used with the
// magnitude loss, the adjoint checker and a projected-gradient solve.
#include <cstdio>
#include <prilo/operators.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/projection.hpp>
#include <prilo/testing/checkers.hpp>

namespace {

/// Keeps the measurements at the given indices: (S u)_k = u_{idx[k]}; Sᴴ scatters back.
/// Works on real or complex batches; no base class, no virtual functions.
template <class T>
class Subsample {
 public:
  using scalar = T;
  Subsample(Eigen::Index n, std::vector<Eigen::Index> idx) : n_(n), idx_(std::move(idx)) {
    for (auto i : idx_)
      if (i < 0 || i >= n_) throw prilo::invalid_input("Subsample: index " + std::to_string(i) + " out of range");
  }
  Eigen::Index input_size() const { return n_; }
  Eigen::Index output_size() const { return Eigen::Index(idx_.size()); }
  template <class S>
  prilo::Mat<S> apply(const prilo::Mat<S>& u) const {
    prilo::require_shape(u, n_, u.cols(), "Subsample::apply input");
    prilo::Mat<S> out(output_size(), u.cols());
    for (Eigen::Index k = 0; k < output_size(); ++k) out.row(k) = u.row(idx_[std::size_t(k)]);
    return out;
  }
  template <class S>
  prilo::Mat<S> adjoint(const prilo::Mat<S>& v) const {
    prilo::Mat<S> out = prilo::Mat<S>::Zero(n_, v.cols());
    for (Eigen::Index k = 0; k < output_size(); ++k) out.row(idx_[std::size_t(k)]) += v.row(k);
    return out;
  }

 private:
  Eigen::Index n_;
  std::vector<Eigen::Index> idx_;
};

}  // namespace

int main() {
  using T = double;
  using namespace prilo;
  // an 8×8 image padded to 16×16: 64 unknowns, about 192 magnitudes kept (3 per unknown;
  // with fewer magnitudes than unknowns the image would not be determined by them)
  const int h = 8, w = 8, n = h * w, ph = 16, pw = 16, np = ph * pw;
  Rng rng(42);
  std::vector<Eigen::Index> keep;
  for (Eigen::Index i = 0; i < np; ++i)
    if (rng.uniform() < 0.75) keep.push_back(i);
  // A = S ∘ F ∘ M ∘ P: pad, mask, DFT, then keep 75 % of the frequencies.
  auto op =
      compose(Subsample<T>(np, keep),
              compose(Fourier2d<T>(ph, pw), compose(ComplexMask<T>::random_phase(np, 7), ZeroPad<T>(h, w, ph, pw))));
  static_assert(MeasurementOperator<decltype(op)>);
  std::printf("operator: %ld -> %ld measurements, adjoint test error %.2e\n", long(op.input_size()),
              long(op.output_size()), testing::check_adjoint(op, 2, rng));

  // Recover a random non-negative image from |Ax| by projected gradient descent on the box.
  Mat<T> x_true = (rng.normal_matrix<T>(n, 1).array().abs()).matrix();
  Mat<T> y = measure(op, x_true);
  MagnitudeLoss<decltype(op)> loss(op, y);
  Mat<T> x = Mat<T>::Constant(n, 1, 0.5), g;
  Adam<T, Box<T>> adam({.learning_rate = 0.02}, Box<T>{.lo = 0, .hi = 10});
  const Mat<T> centre = Mat<T>::Zero(n, 1);
  for (int k = 0; k <= 3000; ++k) {
    const T f = loss.value_and_gradient(x, g)(0);
    if (k % 500 == 0)
      std::printf("step %4d  loss %.6g  relative error %.4f\n", k, f, (x - x_true).norm() / x_true.norm());
    adam.step(x, g, centre, rng);
  }
  // the image is determined by its magnitudes here (3 per unknown, a generic mask): the solve
  // must find it (the example's test fails otherwise)
  const double err = (x - x_true).norm() / x_true.norm();
  if (!(err < 1e-6)) {
    std::fprintf(stderr, "custom_operator: relative error %.3g after 3000 steps, expected < 1e-6\n", err);
    return 1;
  }
  return 0;
}

// Every shipped model satisfies its concept, and wrong types do not.
#include <doctest/doctest.h>

#include <prilo/prilo.hpp>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_concepts {

using namespace prilo;

namespace {
struct NotAnOperator {
  using scalar = float;
  Eigen::Index input_size() const { return 1; }
};
struct NotAGenerator {
  using scalar = float;
  int depth() const { return 1; }
};
// A layer without the const input VJP (backward_input): a const generator could not
// back-propagate through it.
struct NotAModule {
  using scalar = float;
  Eigen::Index output_size(Eigen::Index n) const { return n; }
  void forward(const Mat<float>& x, Mat<float>& y) const { y = x; }
  void backward(const Mat<float>&, const Mat<float>&, const Mat<float>& gy, Mat<float>* gx, bool) {
    if (gx) *gx = gy;
  }
  nn::ParamList<float> parameters() { return {}; }
  void zero_grad() {}
};
// The same layer made complete, but with buffers() of the wrong type.
struct BadBuffersModule : NotAModule {
  void backward_input(const Mat<float>&, const Mat<float>&, const Mat<float>& gy, Mat<float>& gx, Mat<float>&) const {
    gx = gy;
  }
  std::vector<Mat<float>> buffers() { return {}; }
};
// ... and with its buffers right: a module.
struct IdentityModule : BadBuffersModule {
  nn::BufferList<float> buffers() { return {}; }
};
struct NotAProjection {
  void project(int) const {}
};
struct NotABackend {};
struct BadSchedule {
  static constexpr bool enabled = true;
};
}  // namespace

static_assert(Backend<cpu>);
static_assert(!Backend<NotABackend>);

static_assert(MeasurementOperator<Fourier2d<float>>);
static_assert(MeasurementOperator<Fourier2d<double>>);
static_assert(MeasurementOperator<GaussianReal<float>>);
static_assert(MeasurementOperator<GaussianComplex<double>>);
static_assert(MeasurementOperator<Composed<Fourier2d<float>, ZeroPad<float>>>);
static_assert(MeasurementOperator<Composed<Fourier2d<double>, ComplexMask<double>>>);
static_assert(!MeasurementOperator<NotAnOperator>);
static_assert(!MeasurementOperator<int>);

static_assert(Generator<nn::Vae<float>::Decoder>);
static_assert(Generator<nn::Vae<double>::Encoder>);
static_assert(Generator<nn::Sequential<double, nn::Linear<double>, nn::ReLU<double>>>);
static_assert(!Generator<NotAGenerator>);
static_assert(!Generator<nn::Linear<float>>);

static_assert(Module<nn::Linear<float>>);
static_assert(Module<nn::Linear<double>>);
static_assert(Module<nn::Dense<float, nn::Relu>>);
static_assert(Module<nn::Dense<double, nn::LeakyRelu>>);
static_assert(Module<nn::Dense<float, nn::Sigmoid>>);
static_assert(Module<nn::Dense<double, nn::Tanh>>);
static_assert(Module<nn::ReLU<float>>);
static_assert(Module<nn::LeakyReLU<double>>);
static_assert(Module<nn::SigmoidLayer<float>>);
static_assert(Module<nn::TanhLayer<double>>);
static_assert(Module<IdentityModule>);
static_assert(!Module<NotAModule>);
static_assert(!detail::module_has_backward_input<NotAModule>);  // the requirement it misses
static_assert(!Module<BadBuffersModule>);
static_assert(!Module<int>);
static_assert(!Module<nn::Vae<float>::Decoder>);  // a whole network is a Generator, not a layer

static_assert(ProjectionPolicy<L1Ball<float>, float>);
static_assert(ProjectionPolicy<L1Ball<double, l1::duchi<double>>, double>);
static_assert(ProjectionPolicy<L2Ball<double>, double>);
static_assert(ProjectionPolicy<Box<float>, float>);
static_assert(ProjectionPolicy<NoProjection, double>);
static_assert(!ProjectionPolicy<NotAProjection, double>);

static_assert(NoiseSchedule<NoNoise, float>);
static_assert(NoiseSchedule<WellingTeh, double>);
static_assert(!NoiseSchedule<BadSchedule, double>);

TEST_CASE("Concepts accept every shipped model and reject wrong types (checked at compile time)") {
  CHECK(std::string(cpu::name) == "cpu");
}

}  // namespace prilo_test_concepts

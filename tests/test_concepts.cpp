// Every shipped model satisfies its concept, and wrong types do not.
#include <doctest/doctest.h>

#include <prilo/prilo.hpp>

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

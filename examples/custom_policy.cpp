// A user's own projection and noise schedule plugged into PRILO without touching a library
// header: the forward phases are confined to a box (an l∞ ball) instead of the paper's l1
// ball, and the gradient noise is constant. Runs the chained PRILO-MII on 16 MNIST test images
// (reduced steps) with the paper's policies and with these, and checks both beat their start.
//   usage: custom_policy [data folder, default $PRILO_DATA or the source tree's data/]
#include <cstdio>
#include <cstdlib>
#include <prilo/prilo.hpp>

namespace {

/// Projection onto the box {p : |p_i − c_i| ≤ half_width} around each centre column: the
/// contract of prilo::ProjectionPolicy (columns inside are untouched, a bad width throws).
template <class T>
struct Box {
  T half_width = T(1);
  void project(Eigen::Ref<prilo::Mat<T>> x, const Eigen::Ref<const prilo::Mat<T>>& centre) const {
    if (!(half_width >= T(0))) throw prilo::invalid_input("Box: half_width must be >= 0");
    if (centre.rows() != x.rows() || (centre.cols() != x.cols() && centre.cols() != 1))
      throw prilo::invalid_input("Box: centre must be n x cols or n x 1");
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const auto c = centre.col(centre.cols() == 1 ? 0 : j);
      x.col(j) = x.col(j).array().max(c.array() - half_width).min(c.array() + half_width).matrix();
    }
  }
};

/// Constant gradient noise σ_k = sigma.
struct ConstantNoise {
  static constexpr bool enabled = true;
  double sigma_value = 0.01;
  template <class T>
  T sigma(int) const {
    return T(sigma_value);
  }
};

/// The policies: a box whose half-width is the phase's l1 radius spread over 50 coordinates
/// (unbounded when the phase is unconstrained), and constant noise.
struct BoxPolicies {
  template <class T>
  static Box<T> projection(const prilo::PhaseOptions<T>& ph) {
    return {.half_width = ph.constrain ? ph.radius / T(50) : std::numeric_limits<T>::infinity()};
  }
  static ConstantNoise noise(const prilo::NoiseOptions& n) { return {.sigma_value = n.enabled ? 0.01 : 0.0}; }
};
static_assert(prilo::ProjectionPolicy<Box<float>, float>);
static_assert(prilo::NoiseSchedule<ConstantNoise, float>);
static_assert(prilo::LatentPolicies<BoxPolicies, float>);

}  // namespace

int main(int argc, char** argv) try {
  using T = float;
  using namespace prilo;
  const char* env = std::getenv("PRILO_DATA");
  const std::string data = argc > 1 ? argv[1] : (env && *env) ? env : std::string(PRILO_SOURCE_DIR) + "/data";
  auto set = io::load_dataset<T>(data, "mnist", "test", 0, 16);
  auto vae = nn::load_vae<T>(std::string(PRILO_SOURCE_DIR) + "/models/vae-mnist.prw");
  Fourier2d<T> F(28, 28);
  const Mat<T> y = measure(F, set.images);
  PriloOptions<T> opt;
  opt.reading = PriloReading::chained;
  opt.initial = {.steps = 100, .radius = 100, .learning_rate = 0.3f};
  opt.stages = {PriloStage<T>{.layer = 1, .repetitions = 1}, PriloStage<T>{.layer = 2, .repetitions = 3}};
  opt.stages[0].forward = {.steps = 100, .radius = 50, .learning_rate = 0.3f};
  opt.stages[1].forward = {.steps = 150, .radius = 100, .learning_rate = 0.3f};
  const RestartOptions ro{.restarts = 2};
  const MiiOptions mii{.candidates = 2000};

  Rng r0(1);
  const MagnitudeLoss<Fourier2d<T>> loss(F, y);
  const Mat<T> start = vae.decoder().forward_from(0, latent_starts(vae.decoder(), loss, LatentStart::mii, 1, mii, r0));
  const double start_err = loss.value(start).mean() / 784.0;
  Rng r1(2), r2(2);
  const auto paper = reconstruct_prilo(vae.decoder(), F, y, LatentStart::mii, mii, opt, r1, ro);
  const auto boxed = reconstruct_prilo<BoxPolicies>(vae.decoder(), F, y, LatentStart::mii, mii, opt, r2, ro);
  const double pe = paper.best.magnitude_error.mean(), be = boxed.best.magnitude_error.mean();
  std::printf(
      "mean magnitude error on 16 MNIST test images: MII start %.3g, PRILO-chain-MII with the paper's l1 balls "
      "%.3g, with the user's box and constant noise %.3g\n",
      start_err, pe, be);
  std::printf("mean plain PSNR: paper's policies %.2f dB, user's policies %.2f dB\n",
              metrics::psnr_batch(paper.best.x, set.images).mean(),
              metrics::psnr_batch(boxed.best.x, set.images).mean());
  if (!(pe < start_err && be < start_err)) {
    std::fprintf(stderr, "custom_policy: a solve did not lower the magnitude error of its start\n");
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "custom_policy: error: %s\n", e.what());
  return 1;
}

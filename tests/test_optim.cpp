// Optimisers and noise schedules.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <numbers>
#include <prilo/nn/linear.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/projection.hpp>
#include <utility>
#include <vector>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_optim {

using namespace prilo;

TEST_CASE("Welling-Teh schedule: sigma_k^2 = eta / (1 + k)^gamma") {
  WellingTeh s{.eta = 0.02, .gamma = 0.55};
  CHECK(s.sigma<double>(0) == doctest::Approx(std::sqrt(0.02)));
  CHECK(s.sigma<double>(9) * s.sigma<double>(9) == doctest::Approx(0.02 / std::pow(10.0, 0.55)));
  CHECK(s.sigma<double>(100) < s.sigma<double>(10));
  CHECK(NoNoise{}.sigma<double>(3) == 0.0);
  CHECK_THROWS_WITH((WellingTeh{.eta = -1}.sigma<double>(0)), doctest::Contains("eta"));
}

TEST_CASE("Adam and gradient descent minimise a quadratic, projections keep iterates feasible") {
  Rng rng(1);
  const Mat<double> target = rng.normal_matrix<double>(10, 3);
  const Mat<double> centre = Mat<double>::Zero(10, 1);
  // f(x) = ||x - target||^2, gradient 2 (x - target)
  Mat<double> x = Mat<double>::Zero(10, 3);
  Adam<double> adam({.learning_rate = 0.01});
  for (int k = 0; k < 6000; ++k) adam.step(x, 2 * (x - target), centre, rng);
  CHECK((x - target).norm() < 1e-3);
  Mat<double> xg = Mat<double>::Zero(10, 3);
  GradientDescent<double> gd({.learning_rate = 0.1});
  for (int k = 0; k < 200; ++k) gd.step(xg, 2 * (xg - target), centre, rng);
  CHECK((xg - target).norm() < 1e-8);
  // constrained: the minimiser over the l1 ball is the projection of the target
  Mat<double> xc = Mat<double>::Zero(10, 3);
  GradientDescent<double, L1Ball<double>> pgd({.learning_rate = 0.1}, L1Ball<double>{.radius = 1.0});
  for (int k = 0; k < 500; ++k) {
    pgd.step(xc, 2 * (xc - target), centre, rng);
    for (int j = 0; j < 3; ++j) CHECK(xc.col(j).lpNorm<1>() <= 1.0 + 1e-12);
  }
  Mat<double> proj = target;
  L1Ball<double>{.radius = 1.0}.project(proj, centre);
  CHECK((xc - proj).norm() < 1e-8);
}

TEST_CASE("Gradient noise follows the schedule and the seed") {
  Rng a(5), b(5);
  Mat<double> x1 = Mat<double>::Zero(2000, 1), x2 = x1;
  const Mat<double> g = Mat<double>::Zero(2000, 1), c = Mat<double>::Zero(2000, 1);
  GradientDescent<double, NoProjection, WellingTeh> s1({.learning_rate = 1.0}, {},
                                                       WellingTeh{.eta = 0.04, .gamma = 0.55});
  GradientDescent<double, NoProjection, WellingTeh> s2({.learning_rate = 1.0}, {},
                                                       WellingTeh{.eta = 0.04, .gamma = 0.55});
  s1.step(x1, g, c, a);
  s2.step(x2, g, c, b);
  CHECK(x1 == x2);  // same seed, same noise
  // with a zero gradient the step is -u, u ~ N(0, 0.04): sample std 0.2
  const double sd = std::sqrt(x1.squaredNorm() / 2000.0);
  CHECK(sd == doctest::Approx(0.2).epsilon(0.06));
}

TEST_CASE("Optimisers reject mismatched shapes") {
  Rng rng(1);
  Mat<double> x = Mat<double>::Zero(4, 2);
  Adam<double> adam;
  CHECK_THROWS_WITH(adam.step(x, Mat<double>::Zero(3, 2), Mat<double>::Zero(4, 1), rng), doctest::Contains("gradient"));
  CHECK_THROWS_WITH(adam.step(x, Mat<double>::Zero(4, 2), Mat<double>::Zero(4, 3), rng), doctest::Contains("centre"));
}

TEST_CASE("Optimisers refuse options under which every step writes NaN, and a restore that does not fit") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(Adam<double>(AdamOptions<double>{.learning_rate = nan}),
                       doctest::Contains("Adam: the learning rate"), invalid_input);
  CHECK_THROWS_WITH_AS(Adam<double>(AdamOptions<double>{.learning_rate = -1}), doctest::Contains("learning rate"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(Adam<double>(AdamOptions<double>{.beta1 = 1}),
                       doctest::Contains("beta1 and beta2 must be in [0, 1)"), invalid_input);
  CHECK_THROWS_AS(Adam<double>(AdamOptions<double>{.beta2 = 2}), invalid_input);
  CHECK_THROWS_WITH_AS(Adam<double>(AdamOptions<double>{.epsilon = -1}), doctest::Contains("epsilon"), invalid_input);
  CHECK_THROWS_WITH_AS(GradientDescent<double>(GradientDescentOptions<double>{nan}),
                       doctest::Contains("GradientDescent: the learning rate"), invalid_input);
  CHECK_THROWS_WITH_AS(AdamTrainer<double>(AdamOptions<double>{.beta1 = -0.5}), doctest::Contains("AdamTrainer"),
                       invalid_input);
  CHECK_NOTHROW(Adam<double>(AdamOptions<double>{.learning_rate = 0, .beta1 = 0, .beta2 = 0, .epsilon = 1e-300}));
  // epsilon 0 turned every zero gradient entry (a dead ReLU's) into 0/0 = NaN
  CHECK_THROWS_WITH_AS(Adam<double>(AdamOptions<double>{.epsilon = 0}),
                       doctest::Contains("epsilon must be finite and > 0 (0 makes a zero gradient entry 0/0), got 0"),
                       invalid_input);
  CHECK_THROWS_AS(AdamTrainer<double>(AdamOptions<double>{.epsilon = 0}), invalid_input);
  // a restore whose moments do not match each other, the parameters or a count below 0
  Rng rng(2);
  nn::Linear<double> layer(5, 4, rng);
  auto params = layer.parameters();
  AdamTrainer<double> t;
  std::vector<Mat<double>> m, v, small;
  for (const auto& p : params) {
    m.push_back(Mat<double>::Zero(p.value.rows(), p.value.cols()));
    small.push_back(Mat<double>::Zero(1, 1));
  }
  v = m;
  CHECK_THROWS_WITH_AS(t.restore(m, small, 3), doctest::Contains("AdamTrainer::restore: moment 0 is 4x5 (first)"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(t.restore(m, v, -1), doctest::Contains("step count must be >= 0"), invalid_input);
  t.restore(small, small, 3);
  CHECK_THROWS_WITH_AS(t.step(params), doctest::Contains("AdamTrainer parameter"), invalid_input);
  t.restore(m, v, 3);
  CHECK_NOTHROW(t.step(params));
  // another list after restored moments: it started fresh moments at step 4 (a first step
  // about 2.5x the learning rate); a fresh trainer still takes any list
  nn::ParamList<double> fewer(params.begin(), params.begin() + 1);
  CHECK_THROWS_WITH_AS(t.step(fewer),
                       doctest::Contains("AdamTrainer: the parameter list has 1 tensors, its moments 2 (at step 4)"),
                       invalid_input);
  AdamTrainer<double> restored_empty;
  restored_empty.restore({}, {}, 7);
  CHECK_THROWS_AS(restored_empty.step(params), invalid_input);
  AdamTrainer<double> fresh;
  CHECK_NOTHROW(fresh.step(fewer));
}

TEST_CASE("An optimiser step refuses a centre that does not fit before it moves anything") {
  Rng rng(4);
  Mat<double> x = Mat<double>::Ones(3, 2);
  const Mat<double> g = Mat<double>::Constant(3, 2, 0.5), empty;
  Adam<double> adam;
  GradientDescent<double> gd;
  CHECK_THROWS_WITH_AS(adam.step(x, g, empty, rng), doctest::Contains("optimiser centre: expected 3x2 or 3x1, got 0x0"),
                       invalid_input);
  CHECK_THROWS_AS(gd.step(x, g, Mat<double>::Zero(3, 3), rng), invalid_input);
  CHECK(x == Mat<double>::Ones(3, 2));  // untouched: x, and the count
  CHECK(adam.iteration() == 0);
  CHECK(gd.iteration() == 0);
  Mat<double> none(0, 0);
  adam.step(none, none, empty, rng);  // an empty batch with an empty centre: nothing to do
  adam.step(x, g, Mat<double>::Zero(3, 1), rng);
  CHECK(adam.iteration() == 1);
}

TEST_CASE("Rng::shuffle is Fisher-Yates on its own stream: a permutation, the same draws as the explicit loop") {
  std::vector<Eigen::Index> v(1000), ref(1000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = ref[i] = Eigen::Index(i);
  Rng a(17), b(17);
  a.shuffle(v);
  for (std::size_t i = ref.size() - 1; i > 0; --i) std::swap(ref[i], ref[b.below(std::uint64_t(i) + 1)]);
  CHECK(v == ref);
  CHECK(a.next_u64() == b.next_u64());  // the same number of draws
  std::vector<Eigen::Index> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == Eigen::Index(i));
  int moved = 0;
  for (std::size_t i = 0; i < v.size(); ++i) moved += v[i] != Eigen::Index(i);
  CHECK(moved > 900);
  std::vector<int> empty, one{5};
  a.shuffle(empty);
  a.shuffle(one);
  CHECK(one == std::vector<int>{5});
}

TEST_CASE("Rng::add_normal keeps its stream: pinned values, and normal_block blocks are the same stream") {
  // values of the stream as it was before normal_block was split out (state in locals, the
  // conversions in a vectorised loop): every latent solver's gradient noise, hence every
  // published figure, depends on it (tolerance: the vectorised log and the sin/cos
  // polynomials may round differently on another instruction set or with other contractions,
  // and round differently from the code these values came from; a changed stream differs in
  // the first digit)
  Rng r(3);
  std::vector<float> x(1001, 0.0f);
  r.add_normal(x.data(), 1001, 1.0f);
  const std::pair<int, float> pinned[] = {
      {0, 0.527610183f},    {1, -0.679636359f},  {2, 0.813868999f},  {255, -0.0195521861f}, {510, -1.47569442f},
      {511, -0.215732127f}, {512, -0.79166162f}, {513, 1.03988266f}, {999, 0.376921892f},   {1000, 0.632378221f}};
  for (const auto& [i, v] : pinned) {
    CAPTURE(i);
    CHECK(x[std::size_t(i)] == doctest::Approx(v).epsilon(1e-5));
  }
  CHECK(r.next_u64() == 2055660251895086657ull);  // 501 draws for 1001 samples, then the next
  // normal_block, block after block, is add_normal's stream; a short block draws only what it uses
  for (int n : {1, 7, 512, 513, 1500}) {
    CAPTURE(n);
    Rng a(21), b(21);
    std::vector<float> viaadd(static_cast<std::size_t>(n), 0.0f), viablock(static_cast<std::size_t>(n));
    a.add_normal(viaadd.data(), n, 1.0f);
    for (int i = 0; i < n; i += Rng::kNormalBlock)
      b.normal_block(viablock.data() + i, std::min(Rng::kNormalBlock, n - i));
    CHECK(viaadd == viablock);
    CHECK(a.next_u64() == b.next_u64());
  }
  float u[1];
  CHECK_THROWS_WITH(r.normal_block(u, Rng::kNormalBlock + 1), doctest::Contains("normal_block"));
}

TEST_CASE("Rng::normal_block is Box-Muller of its draws, to float accuracy, in every quadrant") {
  // the same 64-bit draws (next_u64 of a copy), the same 24-bit uniforms, the transform in
  // double: r·cos(2πu2), r·sin(2πu2), r = sqrt(-2 ln u1)
  Rng a(41);
  Rng b = a;
  alignas(64) float u[Rng::kNormalBlock];
  double worst = 0;
  int quadrant_hits[4] = {0, 0, 0, 0};
  for (int round = 0; round < 256; ++round) {
    a.normal_block(u, Rng::kNormalBlock);
    for (int k = 0; k < Rng::kNormalBlock / 2; ++k) {
      const std::uint64_t d = b.next_u64();
      const double u1 = double((d >> 40) + 1) * 0x1.0p-24, u2 = double((d >> 16) & 0xFFFFFFull) * 0x1.0p-24;
      const double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * std::numbers::pi * u2;
      ++quadrant_hits[int(u2 * 4)];
      for (const auto& [got, want] :
           {std::pair{u[2 * k], r * std::cos(th)}, std::pair{u[2 * k + 1], r * std::sin(th)}}) {
        const double err = std::abs(double(got) - want) / std::max(1.0, r);
        worst = std::max(worst, err);
        if (err > 3.5e-7) {
          CAPTURE(round);
          CAPTURE(k);
          CAPTURE(u2);
          CHECK(err <= 3.5e-7);
        }
      }
    }
  }
  CAPTURE(worst);
  // measured 2.2e-7 (the exact quarter-turn reduction; a few float ulps of r); with θ = 2π·u2
  // rounded to float and libm's sinf/cosf the same draws are 4.1e-7 off (errors relative to
  // max(1, r))
  CHECK(worst <= 3.5e-7);
  for (int h : quadrant_hits) CHECK(h > 15000);
  CHECK(a.next_u64() == b.next_u64());  // one draw per pair, nothing else
}

TEST_CASE("Rng::normal_block: a short block is the prefix of a whole one and draws one value per pair") {
  // the pairs go through in chunks, the next chunk's draws taken during the current chunk's
  // transform: every length around the chunk boundaries writes exactly its samples, the same
  // bits as the first samples of a whole block, and leaves the state (len + 1) / 2 draws on
  alignas(64) float whole[Rng::kNormalBlock], part[Rng::kNormalBlock + 1];
  for (int len : {0, 1, 2, 3, 62, 63, 64, 65, 66, 127, 128, 129, 130, 191, 255, 256, 257, 448, 449, 510, 511, 512}) {
    CAPTURE(len);
    Rng a(57), b(57), c(57);
    a.normal_block(whole, Rng::kNormalBlock);
    std::fill(std::begin(part), std::end(part), std::numeric_limits<float>::quiet_NaN());
    b.normal_block(part, len);
    CHECK(std::memcmp(part, whole, sizeof(float) * std::size_t(len)) == 0);
    CHECK(std::all_of(part + len, std::end(part), [](float v) { return std::isnan(v); }));  // nothing past len
    for (int k = 0; k < (len + 1) / 2; ++k) c.next_u64();
    CHECK(b.next_u64() == c.next_u64());
  }
}

TEST_CASE("Rng::add_normal adds N(0, sigma^2) samples: moments, tails, odd lengths, reproducible") {
  for (int n : {1, 2, 511, 512, 513, 200001}) {
    Rng a(3), b(3);
    std::vector<double> x(std::size_t(n), 5.0), y(std::size_t(n), 5.0);
    a.add_normal(x.data(), n, 2.0);
    b.add_normal(y.data(), n, 2.0);
    CHECK(x == y);                       // same seed, same stream
    for (double v : x) CHECK(v != 5.0);  // every entry (also the last of an odd n) got a sample
  }
  const int n = 400001;
  Rng rng(11);
  std::vector<float> x(std::size_t(n), 1.0f);
  rng.add_normal(x.data(), n, 0.5f);
  double m1 = 0, m2 = 0, m4 = 0, within1 = 0, within2 = 0;
  for (float v : x) {
    const double z = (double(v) - 1.0) / 0.5;
    m1 += z;
    m2 += z * z;
    m4 += z * z * z * z;
    within1 += std::abs(z) < 1.0;
    within2 += std::abs(z) < 2.0;
  }
  m1 /= n, m2 /= n, m4 /= n, within1 /= n, within2 /= n;
  CHECK(std::abs(m1) < 5.0 / std::sqrt(double(n)));
  CHECK(std::abs(m2 - 1.0) < 0.01);
  CHECK(std::abs(m4 - 3.0) < 0.05);
  CHECK(std::abs(within1 - 0.682689) < 0.004);
  CHECK(std::abs(within2 - 0.954500) < 0.002);
  // consecutive samples (the two outputs of a pair, and across pairs) are uncorrelated
  double c = 0;
  for (int i = 0; i + 1 < n; ++i) c += (double(x[i]) - 1.0) * (double(x[i + 1]) - 1.0) / 0.25;
  CHECK(std::abs(c / (n - 1)) < 0.01);
}

TEST_CASE("Rng::normal_matrix refuses negative sizes and a sigma that is negative or not finite, by name") {
  Rng rng(4);
  CHECK_THROWS_WITH_AS(rng.normal_matrix<float>(-1, 3), doctest::Contains("Rng::normal_matrix: sizes"), invalid_input);
  CHECK_THROWS_WITH_AS(rng.normal_matrix<float>(3, -2), doctest::Contains("Rng::normal_matrix: sizes"), invalid_input);
  CHECK_THROWS_WITH_AS(rng.normal_matrix<float>(3, 2, std::nan("")), doctest::Contains("sigma"), invalid_input);
  CHECK_THROWS_WITH_AS(rng.normal_matrix<float>(3, 2, -0.5), doctest::Contains("sigma"), invalid_input);
  CHECK_THROWS_WITH_AS(rng.normal_matrix<float>(3, 2, HUGE_VAL), doctest::Contains("sigma"), invalid_input);
  // the legal edges: empty matrices and sigma 0
  CHECK(rng.normal_matrix<float>(0, 3).size() == 0);
  CHECK(rng.normal_matrix<double>(4, 2, 0.0).isZero(0.0));
}

}  // namespace prilo_test_optim

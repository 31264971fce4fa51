// Tests for prilo::metrics: PSNR/SSIM against scikit-image reference values, summary, alignment.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "prilo/metrics/metrics.hpp"
#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_metrics {

namespace {

using prilo::Mat;
using prilo::Vec;
using Index = Eigen::Index;
namespace pm = prilo::metrics;
using prilo::test_support::error_of;

// ---- Image generators, mirrored exactly by tests/reference/skimage_reference.py -----------
// Images hold integers k in [0, 255] (row-major, pixel (r, c) at r*w + c); divide by 255.

struct Lcg {  // state <- (1103515245*state + 12345) mod 2^31; output state >> 16
  std::uint64_t state;
  explicit Lcg(std::uint64_t seed) : state(seed % (1ull << 31)) {}
  std::int64_t next() {
    state = (1103515245ull * state + 12345ull) % (1ull << 31);
    return static_cast<std::int64_t>(state >> 16);
  }
};

using IntImage = std::vector<std::int64_t>;

IntImage pattern_a(Index h, Index w) {
  IntImage k(static_cast<std::size_t>(h * w));
  for (Index r = 0; r < h; ++r)
    for (Index c = 0; c < w; ++c)
      k[static_cast<std::size_t>(r * w + c)] = (r * r * 3 + c * c * 2 + r * c * 5 + 7 * r + 11 * c) % 256;
  return k;
}

IntImage pattern_b(Index h, Index w) {
  IntImage k(static_cast<std::size_t>(h * w));
  for (Index r = 0; r < h; ++r)
    for (Index c = 0; c < w; ++c)
      k[static_cast<std::size_t>(r * w + c)] = 40 + 170 * ((r / 4 + c / 5) % 2) + (r * c) % 37;
  return k;
}

IntImage add_noise(IntImage k, std::uint64_t seed, std::int64_t amp) {
  Lcg g(seed);
  for (auto& v : k) v = std::min<std::int64_t>(255, std::max<std::int64_t>(0, v + g.next() % (2 * amp + 1) - amp));
  return k;
}

IntImage lcg_image(Index h, Index w, std::uint64_t seed) {
  Lcg g(seed);
  IntImage k(static_cast<std::size_t>(h * w));
  for (auto& v : k) v = g.next() % 256;
  return k;
}

IntImage contrast(IntImage k) {
  for (auto& v : k) v = (3 * v) / 4 + 32;
  return k;
}

Vec<double> to_unit(const IntImage& k) {
  Vec<double> v(static_cast<Index>(k.size()));
  for (std::size_t i = 0; i < k.size(); ++i) v(static_cast<Index>(i)) = static_cast<double>(k[i]) / 255.0;
  return v;
}

struct RefCase {
  const char* name;
  Index h, w;
  double psnr, ssim, ssim255;  // ssim255: images scaled by 255 with data_range = 255
  std::function<IntImage(Index, Index)> x, ref;
};

// Values printed by tests/reference/skimage_reference.py with scikit-image 0.19.3 (numpy 1.24.2).
std::vector<RefCase> reference_cases() {
  return {
      {"a28_noisy", 28, 28, 26.78516232261031, 0.9877527448712097, 0.9877527448712095,
       [](Index h, Index w) { return add_noise(pattern_a(h, w), 1, 20); }, pattern_a},
      {"a28_vs_b28", 28, 28, 7.041501186625913, 0.020339332990711185, 0.020339332990711525, pattern_b, pattern_a},
      {"b20x31_noisy", 20, 31, 19.414415254189468, 0.9515028313515054, 0.9515028313515058,
       [](Index h, Index w) { return add_noise(pattern_b(h, w), 7, 50); }, pattern_b},
      {"b20x31_contrast", 20, 31, 21.403436034044333, 0.9596862603433738, 0.9596862603433738,
       [](Index h, Index w) { return contrast(pattern_b(h, w)); }, pattern_b},
      {"lcg7x9", 7, 9, 7.198310489891063, -0.1811641700312765, -0.1811641700312764,
       [](Index h, Index w) { return lcg_image(h, w, 3); }, [](Index h, Index w) { return lcg_image(h, w, 4); }},
  };
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("metrics: psnr and ssim match scikit-image reference values") {
  for (const auto& rc : reference_cases()) {
    CAPTURE(rc.name);
    const Vec<double> x = to_unit(rc.x(rc.h, rc.w));
    const Vec<double> ref = to_unit(rc.ref(rc.h, rc.w));
    CHECK(pm::psnr(x, ref) == doctest::Approx(rc.psnr).epsilon(1e-12));
    CHECK(std::abs(pm::ssim(x, ref, rc.h, rc.w) - rc.ssim) < 1e-10);
    const Vec<double> x255 = x * 255.0, ref255 = ref * 255.0;
    CHECK(std::abs(pm::ssim(x255, ref255, rc.h, rc.w, 255.0) - rc.ssim255) < 1e-10);
    CHECK(pm::psnr(x255, ref255, 255.0) == doctest::Approx(rc.psnr).epsilon(1e-10));
    // float inputs are promoted to double: agreement limited by the float rounding of pixels.
    const Vec<float> xf = x.cast<float>(), reff = ref.cast<float>();
    CHECK(std::abs(pm::ssim(xf, reff, rc.h, rc.w) - rc.ssim) < 1e-5);
    CHECK(std::abs(pm::psnr(xf, reff) - rc.psnr) < 1e-4);
  }
}

TEST_CASE("metrics: batched psnr/ssim equal the per-image values, column by column") {
  const Index h = 28, w = 28;
  Mat<double> X(h * w, 3), R(h * w, 3);
  X.col(0) = to_unit(add_noise(pattern_a(h, w), 1, 20));
  R.col(0) = to_unit(pattern_a(h, w));
  X.col(1) = to_unit(pattern_b(h, w));
  R.col(1) = to_unit(pattern_a(h, w));
  X.col(2) = R.col(0);
  R.col(2) = R.col(0);
  const Vec<double> p = pm::psnr_batch(X, R);
  const Vec<double> s = pm::ssim_batch(X, R, h, w);
  REQUIRE(p.size() == 3);
  REQUIRE(s.size() == 3);
  for (Index j = 0; j < 3; ++j) {
    CHECK(p(j) == pm::psnr(X.col(j), R.col(j)));
    CHECK(s(j) == pm::ssim(X.col(j), R.col(j), h, w));
  }
  CHECK(std::isinf(p(2)));
  CHECK(s(2) == 1.0);
  CHECK(pm::psnr_batch(Mat<double>(4, 0), Mat<double>(4, 0)).size() == 0);
}

TEST_CASE("metrics: identical images, symmetry, mse") {
  const Index h = 20, w = 31;
  const Vec<double> a = to_unit(add_noise(pattern_b(h, w), 7, 50));
  const Vec<double> b = to_unit(pattern_a(h, w));
  CHECK(pm::psnr(a, a) == std::numeric_limits<double>::infinity());
  CHECK(pm::mse(a, a) == 0.0);
  CHECK(pm::ssim(a, a, h, w) == 1.0);
  // symmetric up to rounding (FMA contraction under -march=native may reorder the products)
  CHECK(pm::ssim(a, b, h, w) == doctest::Approx(pm::ssim(b, a, h, w)).epsilon(1e-12));
  CHECK(pm::psnr(a, b) == pm::psnr(b, a));
  // Hand-computed: mse of (0,0,0,0) vs (1,1,0,0) is 0.5 -> psnr = 10 log10(2).
  Vec<double> u = Vec<double>::Zero(4), v = Vec<double>::Zero(4);
  v(0) = v(1) = 1.0;
  CHECK(pm::mse(u, v) == 0.5);
  CHECK(pm::psnr(u, v) == doctest::Approx(10.0 * std::log10(2.0)));
  CHECK(pm::psnr(u, v, 2.0) == doctest::Approx(10.0 * std::log10(8.0)));
  // Constant images: SSIM of a constant against itself is 1 (C1, C2 keep it defined).
  const Vec<double> c = Vec<double>::Constant(h * w, 0.25);
  CHECK(pm::ssim(c, c, h, w) == 1.0);
}

TEST_CASE("metrics: summary and cap_psnr") {
  SUBCASE("odd count") {
    const auto s = pm::summary(std::vector<double>{10, 2, 3, 1, 4});
    CHECK(s.count == 5);
    CHECK(s.mean == doctest::Approx(4.0));
    CHECK(s.median == 3.0);
    // sample variance 50/4 = 12.5 -> 1.96 * sqrt(12.5) / sqrt(5) = 1.96 * sqrt(2.5)
    CHECK(s.ci95 == doctest::Approx(1.96 * std::sqrt(2.5)));
    CHECK(s.ci95 == doctest::Approx(3.0990321).epsilon(1e-7));
  }
  SUBCASE("even count, Eigen input") {
    Vec<double> v(4);
    v << 4, 1, 3, 2;
    const auto s = pm::summary(v);
    CHECK(s.count == 4);
    CHECK(s.mean == doctest::Approx(2.5));
    CHECK(s.median == 2.5);
    CHECK(s.ci95 == doctest::Approx(1.96 * std::sqrt(5.0 / 3.0) / 2.0));
  }
  SUBCASE("single value: CI undefined") {
    const auto s = pm::summary(std::vector<double>{0.7});
    CHECK(s.mean == 0.7);
    CHECK(s.median == 0.7);
    CHECK(s.count == 1);
    CHECK(std::isnan(s.ci95));
  }
  SUBCASE("infinite PSNR must be capped first") {
    Vec<double> p(3);
    p << 30.0, std::numeric_limits<double>::infinity(), 150.0;
    CHECK(contains(error_of<prilo::invalid_input>([&] { pm::summary(p); }), "cap_psnr"));
    const Vec<double> c = pm::cap_psnr(p);
    CHECK(c(0) == 30.0);
    CHECK(c(1) == pm::psnr_cap_db);
    CHECK(c(2) == 100.0);
    CHECK(pm::summary(c).mean == doctest::Approx((30.0 + 200.0) / 3.0));
    CHECK(pm::cap_psnr(p, 50.0)(1) == 50.0);
  }
  SUBCASE("empty and NaN") {
    CHECK(contains(error_of<prilo::invalid_input>([] { pm::summary(std::vector<double>{}); }), "no values"));
    CHECK(contains(error_of<prilo::invalid_input>([] {
                     pm::summary(std::vector<double>{1.0, std::nan("")});
                   }),
                   "value 1"));
    CHECK(contains(error_of<prilo::invalid_input>([] { pm::summary(Mat<double>::Zero(2, 2)); }), "vector"));
  }
}

TEST_CASE("metrics: image sides whose product overflows are refused, not wrapped to the image's length") {
  // 2^32 · 2^32 wraps to 0 in 64 bits: the length check passed and the shift read through a null pointer.
  // The exponent through a volatile: with the size a constant, GCC propagated it into the loop
  // that the check guards and warned of the overflow there (-Waggressive-loop-optimizations)
  volatile int exponent = 32;
  const Eigen::Index big = Eigen::Index(1) << exponent;
  CHECK_THROWS_WITH_AS(pm::apply_shift_reflect(Vec<float>(0), big, big, 0, 0, false),
                       doctest::Contains("does not match the image length 0"), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(pm::apply_shift_reflect(Vec<float>::Ones(12), 3, 5, 0, 0, false),
                       doctest::Contains("does not match the image length 12"), prilo::invalid_input);
  CHECK(pm::apply_shift_reflect(Vec<float>::Ones(12), 3, 4, 1, 1, true).isOnes());
}

TEST_CASE("metrics: apply_shift_reflect definition and group properties") {
  const Index h = 3, w = 4;
  Vec<double> x(h * w);
  for (Index i = 0; i < h * w; ++i) x(i) = static_cast<double>(i);  // x(r, c) = 4r + c
  const Vec<double> s = pm::apply_shift_reflect(x, h, w, 1, 2, false);
  // out(r, c) = x((r-1) mod 3, (c-2) mod 4)
  CHECK(s(0 * w + 0) == x(2 * w + 2));
  CHECK(s(1 * w + 2) == x(0 * w + 0));
  CHECK(s(2 * w + 3) == x(1 * w + 1));
  const Vec<double> rf = pm::apply_shift_reflect(x, h, w, 0, 0, true);  // x(-r, -c)
  CHECK(rf(0) == x(0));
  CHECK(rf(0 * w + 1) == x(0 * w + 3));
  CHECK(rf(1 * w + 1) == x(2 * w + 3));
  CHECK(rf(2 * w + 0) == x(1 * w + 0));
  // Negative and oversized shifts are taken modulo the size.
  CHECK(pm::apply_shift_reflect(x, h, w, -2, 6, false) == pm::apply_shift_reflect(x, h, w, 1, 2, false));
  // Transforms with a reflection are involutions; a shift is undone by the opposite shift.
  CHECK(pm::apply_shift_reflect(pm::apply_shift_reflect(x, h, w, 2, 3, true), h, w, 2, 3, true) == x);
  CHECK(pm::apply_shift_reflect(pm::apply_shift_reflect(x, h, w, 2, 3, false), h, w, -2, -3, false) == x);
  // Complex input works too.
  const Vec<std::complex<double>> z = x.cast<std::complex<double>>();
  CHECK(pm::apply_shift_reflect(z, h, w, 1, 2, false).real() == s);
  // all 2·h·w of them at once, in the documented column order, from column c0
  Mat<double> all = Mat<double>::Zero(h * w, 2 * h * w + 1);
  pm::all_shifts_reflections(x, h, w, all, 1);
  CHECK(all.col(0).isZero());
  for (int refl = 0; refl < 2; ++refl)
    for (Index dy = 0; dy < h; ++dy)
      for (Index dx = 0; dx < w; ++dx)
        CHECK(all.col(1 + (refl * h + dy) * w + dx) == pm::apply_shift_reflect(x, h, w, dy, dx, refl == 1));
  CHECK_THROWS_AS(pm::all_shifts_reflections(x, h, w, all, 2), prilo::invalid_input);
  CHECK_THROWS_WITH_AS(pm::all_shifts_reflections(x, h, w, all, -1),
                       doctest::Contains("first column c0 must be >= 0, got -1"), prilo::invalid_input);
  // into a block of a larger matrix (a writable expression)
  Mat<double> wide = Mat<double>::Zero(h * w, 2 * h * w + 3);
  pm::all_shifts_reflections(x, h, w, wide.rightCols(2 * h * w));
  CHECK(wide.rightCols(2 * h * w) == all.rightCols(2 * h * w));
  CHECK(wide.leftCols(3).isZero());
}

TEST_CASE("metrics: shifts and reflections leave DFT magnitudes unchanged") {
  const Index h = 5, w = 6;
  const Vec<double> x = to_unit(lcg_image(h, w, 11));
  auto dft_abs = [&](const Vec<double>& img) {
    Vec<double> out(h * w);
    const double pi = std::acos(-1.0);
    for (Index u = 0; u < h; ++u)
      for (Index v = 0; v < w; ++v) {
        std::complex<double> acc = 0;
        for (Index r = 0; r < h; ++r)
          for (Index c = 0; c < w; ++c)
            acc += img(r * w + c) * std::polar(1.0, -2 * pi * (double(u * r) / double(h) + double(v * c) / double(w)));
        out(u * w + v) = std::abs(acc);
      }
    return out;
  };
  const Vec<double> m = dft_abs(x);
  for (bool refl : {false, true})
    for (Index dy : {0, 2, 4})
      for (Index dx : {0, 1, 5}) CHECK((dft_abs(pm::apply_shift_reflect(x, h, w, dy, dx, refl)) - m).norm() < 1e-12);
}

TEST_CASE("metrics: align_to_reference recovers known shifts and reflections") {
  struct T {
    Index h, w, dy, dx;
    bool reflect;
  };
  for (const T t : {T{28, 28, 5, 23, true}, T{28, 28, 13, 1, false}, T{20, 31, 0, 0, true}, T{20, 31, 19, 30, false},
                    T{20, 31, 7, 0, true}, T{28, 28, 0, 0, false}}) {
    CAPTURE(t.h);
    CAPTURE(t.dy);
    CAPTURE(t.dx);
    CAPTURE(t.reflect);
    const Vec<double> ref = to_unit(lcg_image(t.h, t.w, 5));
    const Vec<double> x = pm::apply_shift_reflect(ref, t.h, t.w, t.dy, t.dx, t.reflect);
    const auto a = pm::align_to_reference(x, ref, t.h, t.w);
    CHECK(a.aligned == ref);
    CHECK(a.mse == 0.0);
    CHECK(std::isinf(a.psnr));
    CHECK(a.reflect == t.reflect);
    // The undoing transform: the same one if reflected (involution), the opposite shift otherwise.
    const Index ey = t.reflect ? t.dy : (t.h - t.dy) % t.h, ex = t.reflect ? t.dx : (t.w - t.dx) % t.w;
    CHECK(a.dy == ey);
    CHECK(a.dx == ex);
    CHECK(pm::apply_shift_reflect(x, t.h, t.w, a.dy, a.dx, a.reflect) == a.aligned);
  }
  SUBCASE("noisy, float, data_range") {
    const Index h = 20, w = 31;
    const Vec<double> ref = to_unit(pattern_b(h, w));
    const Vec<double> noisy = to_unit(add_noise(pattern_b(h, w), 9, 30));
    const Vec<float> x = pm::apply_shift_reflect(noisy, h, w, 3, 17, true).cast<float>();
    const auto a = pm::align_to_reference(x, ref.cast<float>().eval(), h, w, 2.0);
    CHECK(a.reflect);
    CHECK(a.dy == 3);
    CHECK(a.dx == 17);
    CHECK((a.aligned.cast<double>() - noisy).norm() < 1e-6);
    CHECK(a.mse == doctest::Approx(pm::mse(a.aligned, ref.cast<float>())));
    CHECK(a.psnr == doctest::Approx(pm::psnr(a.aligned, ref.cast<float>(), 2.0)));
  }
  SUBCASE("ties keep x unchanged") {
    const Vec<double> c = Vec<double>::Constant(28 * 28, 0.5);
    const auto a = pm::align_to_reference(c, c, 28, 28);
    CHECK(a.dy == 0);
    CHECK(a.dx == 0);
    CHECK_FALSE(a.reflect);
  }
}

TEST_CASE("metrics: bad input raises invalid_input naming the problem") {
  const Vec<double> a = Vec<double>::Zero(784), b = Vec<double>::Zero(783);
  std::string e = error_of<prilo::invalid_input>([&] { pm::psnr(a, b); });
  CHECK(contains(e, "psnr"));
  CHECK(contains(e, "size mismatch"));
  e = error_of<prilo::invalid_input>([&] { pm::ssim(a, a, 28, 27); });
  CHECK(contains(e, "ssim"));
  CHECK(contains(e, "h*w"));
  CHECK(contains(e, "784"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::ssim(a, b, 28, 28); }), "size mismatch"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::ssim(Vec<double>::Zero(36), Vec<double>::Zero(36), 6, 6); }),
                 "smaller than the 7x7"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::ssim(a, a, 28, 28, 0.0); }), "data_range"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::psnr(a, a, -1.0); }), "data_range"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::ssim(a, a, -28, -28); }), "positive"));
  CHECK(contains(error_of<prilo::invalid_input>(
                     [&] { pm::ssim_batch(Mat<double>::Zero(784, 2), Mat<double>::Zero(784, 3), 28, 28); }),
                 "size mismatch"));
  CHECK(contains(error_of<prilo::invalid_input>(
                     [&] { pm::ssim_batch(Mat<double>::Zero(780, 2), Mat<double>::Zero(780, 2), 28, 28); }),
                 "h*w"));
  CHECK(contains(
      error_of<prilo::invalid_input>([&] { pm::psnr_batch(Mat<double>::Zero(4, 2), Mat<double>::Zero(5, 2)); }),
      "size mismatch"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::psnr(Mat<double>::Zero(4, 2), Mat<double>::Zero(4, 2)); }),
                 "column vector"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::psnr(Vec<double>(), Vec<double>()); }), "empty"));
  Vec<double> n = a;
  n(3) = std::nan("");
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::psnr(n, a); }), "NaN"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::ssim(a, n, 28, 28); }), "ref contains NaN"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::align_to_reference(a, b, 28, 28); }), "size mismatch"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::align_to_reference(a, a, 27, 28); }), "h*w"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::apply_shift_reflect(a, 28, 29, 0, 0, false); }),
                 "apply_shift_reflect"));
  CHECK(contains(error_of<prilo::invalid_input>([&] { pm::apply_shift_reflect(a, 0, 0, 0, 0, false); }), "positive"));
}

}  // namespace prilo_test_metrics

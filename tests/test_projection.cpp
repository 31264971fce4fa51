// Tests of the projection policies (l1, l2, box, none) and of the l1 algorithms (Duchi, Condat, Newton).
#include <prilo/projection.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_projection {

namespace {

using prilo::Mat;
using Index = Eigen::Index;

static_assert(prilo::ProjectionPolicy<prilo::L1Ball<float>, float>);
static_assert(prilo::ProjectionPolicy<prilo::L1Ball<double, prilo::l1::condat>, double>);
static_assert(prilo::ProjectionPolicy<prilo::L1Ball<double, prilo::l1::duchi>, double>);
static_assert(prilo::ProjectionPolicy<prilo::L2Ball<double>, double>);
static_assert(prilo::ProjectionPolicy<prilo::Box<float>, float>);
static_assert(prilo::ProjectionPolicy<prilo::NoProjection, float>);
static_assert(prilo::ProjectionPolicy<prilo::NoProjection, double>);
static_assert(!prilo::ProjectionPolicy<prilo::L1Ball<float>, double>);
static_assert(!prilo::ProjectionPolicy<prilo::L2Ball<double>, int>);

/// Checks that f() throws prilo::invalid_input whose message contains every given substring.
template <class F>
void check_throws_naming(F&& f, std::initializer_list<const char*> parts) {
  bool thrown = false;
  try {
    f();
  } catch (const prilo::invalid_input& e) {
    thrown = true;
    const std::string msg = e.what();
    for (const char* p : parts) {
      INFO("message: ", msg, "  expected to contain: ", p);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
  CHECK_MESSAGE(thrown, "expected prilo::invalid_input");
}

template <class T>
bool same_bits(const T* a, const T* b, Index n) {
  return n == 0 || std::memcmp(a, b, std::size_t(n) * sizeof(T)) == 0;  // (an empty vector's data() may be null)
}

template <class T>
T l1norm(const std::vector<T>& x) {
  long double s = 0;
  for (T v : x) s += std::abs(v);
  return T(s);
}

template <class T>
T maxabs(const std::vector<T>& x) {
  T m = 0;
  for (T v : x) m = std::max(m, std::abs(v));
  return m;
}

/// Several input families: Gaussian, heavy-tailed, sparse, all-equal magnitudes, heavy ties.
template <class T>
std::vector<T> make_input(int family, Index n, std::mt19937& g) {
  std::vector<T> x(static_cast<std::size_t>(n));
  std::normal_distribution<T> normal;
  std::cauchy_distribution<T> cauchy;
  std::uniform_int_distribution<int> die(-3, 3);
  std::bernoulli_distribution coin;
  for (auto& v : x) {
    switch (family) {
      case 0: v = normal(g); break;
      case 1: v = std::clamp(cauchy(g), T(-1e6), T(1e6)); break;
      case 2: v = coin(g) && coin(g) ? normal(g) : T(0); break;
      case 3: v = coin(g) ? T(0.75) : T(-0.75); break;
      default: v = T(die(g)); break;
    }
  }
  return x;
}

/// Tolerance of one projected entry: rounding of tau, a sum of up to n terms and one division.
template <class T>
T entry_tol(Index n, T scale) {
  return T(16) * std::numeric_limits<T>::epsilon() * (std::sqrt(T(n)) + T(1)) * scale;
}

/// KKT conditions of p = P_{B_1(r)}(x): either ||x||_1 <= r and p = x, or there is tau >= 0 with
/// x_i - p_i = tau sign(p_i) where p_i != 0, |x_i| <= tau where p_i = 0, and ||p||_1 = r.
template <class T>
void check_l1_kkt(const std::vector<T>& x, const std::vector<T>& p, T r) {
  const Index n = Index(x.size());
  // The inside test uses the library's own ||x||_1 (the lane-wise sum), so that r = ||x||_1 is
  // classified exactly as the algorithms classify it.
  const T norm = prilo::l1::detail::abs_sum(x.data(), n);
  if (norm <= r) {
    CHECK(same_bits(x.data(), p.data(), n));
    return;
  }
  const T tol = entry_tol<T>(n, std::max(maxabs(x), r));
  // tau from the largest magnitude (always active when r > 0); for r == 0 every p_i is 0.
  Index imax = 0;
  for (Index i = 0; i < n; ++i)
    if (std::abs(x[std::size_t(i)]) > std::abs(x[std::size_t(imax)])) imax = i;
  const T tau = std::abs(x[std::size_t(imax)]) - std::abs(p[std::size_t(imax)]);
  CHECK(tau >= -tol);
  Index active = 0;
  for (Index i = 0; i < n; ++i) {
    const T xi = x[std::size_t(i)], pi = p[std::size_t(i)];
    if (pi != T(0)) {
      ++active;
      CHECK(std::signbit(pi) == std::signbit(xi));
      CHECK(std::abs((xi - pi) - std::copysign(tau, pi)) <= tol);
    } else {
      CHECK(std::abs(xi) <= tau + tol);
    }
  }
  CHECK(std::abs(l1norm(p) - r) <= T(active + 1) * tol);
}

/// Every l1 algorithm (in place and out of place) against Duchi's reference on one input.
template <class T>
void check_all_algorithms(const std::vector<T>& x, T r) {
  const Index n = Index(x.size());
  std::vector<T> ref = x;
  prilo::l1::duchi(ref.data(), n, r);
  check_l1_kkt(x, ref, r);
  const T tol = entry_tol<T>(n, std::max(maxabs(x), r));
  auto agree = [&](const std::vector<T>& p, const char* name) {
    INFO("algorithm ", std::string(name), ", n = ", n, ", r = ", r);
    check_l1_kkt(x, p, r);
    T err = 0;
    for (Index i = 0; i < n; ++i) err = std::max(err, std::abs(p[std::size_t(i)] - ref[std::size_t(i)]));
    CHECK(err <= tol);
  };
  std::vector<T> a = x;
  prilo::l1::condat(a.data(), n, r);
  agree(a, "condat");
  a = x;
  prilo::l1::newton(a.data(), n, r);
  agree(a, "newton");
  std::vector<T> out(x.size(), T(-7));
  prilo::l1::newton(x.data(), out.data(), n, r);
  agree(out, "newton (out of place)");
  for (int budget : {1, 2}) {  // a tiny pass budget forces the Condat fallback
    a = x;
    prilo::l1::detail::newton_impl(static_cast<const T*>(a.data()), a.data(), n, r, budget);
    agree(a, "newton with fallback");
  }
}

}  // namespace

TEST_CASE_TEMPLATE("l1 algorithms agree with Duchi and satisfy KKT", T, float, double) {
  std::mt19937 g(20240601);
  const Index sizes[] = {1, 2, 3, 7, 100, 784, 4096};
  const T fractions[] = {T(0), T(1e-30), T(1e-6), T(0.01), T(0.1), T(0.5), T(0.9), T(0.999999), T(1), T(10)};
  for (int family = 0; family < 5; ++family)
    for (Index n : sizes)
      for (T f : fractions) {
        const std::vector<T> x = make_input<T>(family, n, g);
        const T r = f * l1norm(x);
        INFO("family ", family, ", n = ", n, ", r/||x||_1 = ", f);
        check_all_algorithms(x, r);
      }
  // Absolute radii: tiny, huge and infinite.
  const std::vector<T> x = make_input<T>(0, 100, g);
  for (T r : {std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::min(), T(1e-3), T(1e30),
              std::numeric_limits<T>::infinity()})
    check_all_algorithms(x, r);
}

TEST_CASE_TEMPLATE("l1 special cases are exact", T, float, double) {
  SUBCASE("n = 1: p = sign(x) r") {
    for (T v : {T(5), T(-5)}) {
      T a = v, b = v, c = v;
      prilo::l1::newton(&a, 1, T(2));
      prilo::l1::condat(&b, 1, T(2));
      prilo::l1::duchi(&c, 1, T(2));
      CHECK(a == std::copysign(T(2), v));
      CHECK(b == a);
      CHECK(c == a);
    }
  }
  SUBCASE("all-equal magnitudes shrink uniformly") {
    std::vector<T> x(64);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0) ? T(-2) : T(2);
    std::vector<T> p = x;
    prilo::l1::newton(p.data(), 64, T(32));  // tau = 2 - 32/64 = 1.5
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(p[i] == std::copysign(T(0.5), x[i]));
  }
  SUBCASE("zero radius gives exactly zero; inside points are untouched bit for bit") {
    std::mt19937 g(7);
    const std::vector<T> x = make_input<T>(0, 500, g);
    using InPlace = void (*)(T*, Index, T);
    for (InPlace inplace :
         {InPlace(&prilo::l1::newton<T>), InPlace(&prilo::l1::condat<T>), InPlace(&prilo::l1::duchi<T>)}) {
      std::vector<T> p = x;
      inplace(p.data(), 500, T(0));
      CHECK(std::all_of(p.begin(), p.end(), [](T v) { return v == T(0); }));
      p = x;
      inplace(p.data(), 500, l1norm(x) * T(1.001));
      CHECK(same_bits(p.data(), x.data(), 500));
    }
    std::vector<T> empty;
    prilo::l1::newton(empty.data(), 0, T(1));  // n = 0 is a no-op
  }
  SUBCASE("free functions reject bad radius and non-finite input") {
    std::vector<T> x = {T(1), T(2)};
    check_throws_naming([&] { prilo::l1::newton(x.data(), 2, T(-1)); }, {"l1::newton", "radius", ">= 0", "-1"});
    check_throws_naming([&] { prilo::l1::condat(x.data(), 2, std::numeric_limits<T>::quiet_NaN()); },
                        {"l1::condat", "radius is NaN"});
    x[1] = std::numeric_limits<T>::quiet_NaN();
    check_throws_naming([&] { prilo::l1::duchi(x.data(), 2, T(1)); }, {"l1::duchi", "NaN"});
  }
}

TEST_CASE_TEMPLATE("L1Ball policy: batches, centres, broadcast, all algorithms", T, float, double) {
  std::mt19937 g(99);
  const Index n = 50, m = 6;
  Mat<T> x(n, m), c(n, m);
  std::normal_distribution<T> normal;
  for (Index k = 0; k < x.size(); ++k) x.data()[k] = T(3) * normal(g);
  for (Index k = 0; k < c.size(); ++k) c.data()[k] = normal(g);
  const T r = T(20);
  auto expected = [&](const Mat<T>& xs, const Mat<T>& cs) {
    Mat<T> e = xs;
    for (Index j = 0; j < xs.cols(); ++j) {
      const Index cj = cs.cols() == 1 ? 0 : j;
      std::vector<T> d(static_cast<std::size_t>(n));
      for (Index i = 0; i < n; ++i) d[std::size_t(i)] = xs(i, j) - cs(i, cj);
      if (l1norm(d) <= r) continue;
      prilo::l1::duchi(d.data(), n, r);
      for (Index i = 0; i < n; ++i) e(i, j) = cs(i, cj) + d[std::size_t(i)];
    }
    return e;
  };
  // Column 2 is moved inside its ball: it must come back untouched.
  x.col(2) = c.col(2) + Mat<T>::Constant(n, 1, T(0.1));
  const T tol = entry_tol<T>(n, T(20));
  auto run = [&](const auto& policy, const Mat<T>& cs) {
    Mat<T> p = x;
    policy.project(p, cs);
    const Mat<T> e = expected(x, cs);
    CHECK((p - e).cwiseAbs().maxCoeff() <= tol);
    for (Index j = 0; j < m; ++j) CHECK((p.col(j) - cs.col(cs.cols() == 1 ? 0 : j)).cwiseAbs().sum() <= r * (1 + tol));
    return p;
  };
  const Mat<T> p = run(prilo::L1Ball<T>{.radius = r}, c);
  CHECK(same_bits(p.col(2).data(), x.col(2).data(), n));
  run(prilo::L1Ball<T, prilo::l1::condat>{.radius = r}, c);
  run(prilo::L1Ball<T, prilo::l1::duchi>{.radius = r}, c);
  run(prilo::L1Ball<T>{.radius = r}, c.col(0));  // broadcast centre

  // A block of a larger matrix (outer stride) is projected in place too.
  Mat<T> big = Mat<T>::Zero(n + 3, m);
  big.topRows(n) = x;
  prilo::L1Ball<T>{.radius = r}.project(big.topRows(n), c);
  CHECK((big.topRows(n) - expected(x, c)).cwiseAbs().maxCoeff() <= tol);
  CHECK(big.bottomRows(3).isZero());

  // Radius 0 projects exactly to the centre.
  Mat<T> z = x;
  prilo::L1Ball<T>{.radius = 0}.project(z, c);
  CHECK(z == c);
}

// long double has no masked pass (l1::newton needs IEEE bits as a 32- or 64-bit integer), but
// the policy over Duchi or Condat compiles and projects: L1Ball<long double, l1::duchi> did not
// compile before, as project() named l1::newton<long double> to compare algorithms.
static_assert(prilo::ProjectionPolicy<prilo::L1Ball<long double, prilo::l1::duchi>, long double>);
TEST_CASE("L1Ball with long double: Duchi and Condat give the double projection") {
  using L = long double;
  std::mt19937 g(5);
  std::normal_distribution<double> normal;
  const Index n = 37, m = 3;
  Mat<double> xd(n, m), cd(n, m);
  for (Index k = 0; k < xd.size(); ++k) xd.data()[k] = 3 * normal(g);
  for (Index k = 0; k < cd.size(); ++k) cd.data()[k] = normal(g);
  const double r = 10;
  Mat<double> pd = xd;
  prilo::L1Ball<double, prilo::l1::duchi>{.radius = r}.project(pd, cd);
  const Mat<L> xl = xd.cast<L>(), cl = cd.cast<L>();
  Mat<L> pl = xl, pc = xl;
  prilo::L1Ball<L, prilo::l1::duchi>{.radius = L(r)}.project(pl, cl);
  prilo::L1Ball<L, prilo::l1::condat>{.radius = L(r)}.project(pc, cl);
  for (Index j = 0; j < m; ++j) {
    CHECK(double((pl.col(j) - cl.col(j)).cwiseAbs().sum()) == doctest::Approx(r).epsilon(1e-15));
    CHECK(double((pc.col(j) - cl.col(j)).cwiseAbs().sum()) == doctest::Approx(r).epsilon(1e-15));
  }
  CHECK((pl.cast<double>() - pd).cwiseAbs().maxCoeff() <= 1e-13);
  CHECK((pc - pl).cwiseAbs().maxCoeff() <= L(1e-16));
}

/// l1::newton behind a function of its own: L1Ball over it takes the policy's generic path
/// (subtract the centre, the algorithm, add the centre back) instead of the inlined one.
template <class T>
void newton_generic(T* x, Index n, T r) {
  prilo::l1::newton(x, n, r);
}

TEST_CASE_TEMPLATE("L1Ball's inlined Newton path gives the generic path's bits", T, float, double) {
  // L1Ball<T> (l1::newton) reuses the distance as the norm and adds the centre in the soft
  // threshold's pass; columns inside and outside their balls, every tail length, heavy tails.
  // The policy picks its path by this trait: the default takes the inlined one, the wrapper not
  static_assert(prilo::detail::same_l1_algorithm<T, &prilo::l1::newton<T>, &prilo::l1::newton<T>>::value);
  static_assert(!prilo::detail::same_l1_algorithm<T, &newton_generic<T>, &prilo::l1::newton<T>>::value);
  static_assert(!prilo::detail::same_l1_algorithm<T, &prilo::l1::condat<T>, &prilo::l1::newton<T>>::value);
  std::mt19937 g(7);
  std::normal_distribution<T> normal;
  std::cauchy_distribution<T> cauchy;
  for (Index n = 1; n <= 70; n += (n < 40 ? 1 : 7)) {
    CAPTURE(n);
    const Index m = 9;
    Mat<T> x(n, m), c(n, m);
    for (Index k = 0; k < x.size(); ++k) x.data()[k] = k % 3 == 0 ? cauchy(g) : normal(g);
    for (Index k = 0; k < c.size(); ++k) c.data()[k] = T(0.5) * normal(g);
    for (const T r : {T(0.3), T(2), T(0.9) * T(n)}) {
      CAPTURE(r);
      Mat<T> fused = x, generic = x;
      prilo::L1Ball<T>{.radius = r}.project(fused, c);
      prilo::L1Ball<T, &newton_generic<T>>{.radius = r}.project(generic, c);
      CHECK(same_bits(fused.data(), generic.data(), fused.size()));
    }
  }
}

/// The plain form of the l1 reductions: accumulator i mod L takes value i in order, then the
/// pairwise sum of the L accumulators (l1::detail::reduce_lanes).
template <class T, Index L, class F>
T lane_sum(Index n, F&& term) {
  T acc[L] = {};
  for (Index i = 0; i < n; ++i) acc[i % L] += term(i);
  return prilo::l1::detail::reduce_lanes(acc);
}

TEST_CASE_TEMPLATE("l1's passes on SIMD vectors give the plain loops' bits", T, float, double) {
  // abs_sum, abs_diff_sum, sum_above, soft_threshold and L1Ball's two centre passes run on the
  // build's vectors (so that -O2 builds get them vectorised too); each against its scalar form
  // bit for bit, over lengths with whole blocks and every tail, -0 among the values
  namespace ld = prilo::l1::detail;
  constexpr Index L = ld::kLanes<T>, LM = ld::kMaskLanes;
  std::mt19937 g(11);
  std::normal_distribution<T> normal;
  for (Index n = 0; n <= 200; n += (n < 100 ? 1 : 33)) {
    CAPTURE(n);
    std::vector<T> x(static_cast<std::size_t>(n)), c(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) {
      x[std::size_t(i)] = i % 11 == 5 ? T(-0.0) : normal(g);
      c[std::size_t(i)] = T(0.3) * normal(g);
    }
    const T* xp = x.data();
    const T* cp = c.data();
    const T s = ld::abs_sum(xp, n), want_s = lane_sum<T, L>(n, [&](Index i) { return std::abs(xp[i]); });
    CHECK(std::memcmp(&s, &want_s, sizeof(T)) == 0);
    const T d = ld::abs_diff_sum(xp, cp, n),
            want_d = lane_sum<T, L>(n, [&](Index i) { return std::abs(xp[i] - cp[i]); });
    CHECK(std::memcmp(&d, &want_d, sizeof(T)) == 0);
    for (const T tau : {T(-0.0), T(0), T(0.2), T(1.5)}) {
      CAPTURE(tau);
      const auto [sum, count] = ld::sum_above(xp, n, tau);
      const T want_sum = lane_sum<T, LM>(n, [&](Index i) { return std::abs(xp[i]) > tau ? std::abs(xp[i]) : T(0); });
      Index want_count = 0;
      for (Index i = 0; i < n; ++i) want_count += std::abs(xp[i]) > tau;
      CHECK(std::memcmp(&sum, &want_sum, sizeof(T)) == 0);
      CHECK(count == want_count);
    }
    std::vector<T> soft(static_cast<std::size_t>(n)), want_soft(static_cast<std::size_t>(n));
    ld::soft_threshold(xp, soft.data(), n, T(0.4));
    for (Index i = 0; i < n; ++i) want_soft[std::size_t(i)] = ld::soft(xp[i], T(0.4));
    CHECK(same_bits(soft.data(), want_soft.data(), n));
    // the policy: x − c, Newton's threshold on it, soft(·) + c (or + c after another algorithm)
    if (n > 0) {
      Mat<T> p = Eigen::Map<const Mat<T>>(xp, n, 1), pc = p;
      const Mat<T> cm = Eigen::Map<const Mat<T>>(cp, n, 1);
      const T r = T(0.25) * want_d;
      prilo::L1Ball<T>{.radius = r}.project(p, cm);
      prilo::L1Ball<T, &prilo::l1::condat<T>>{.radius = r}.project(pc, cm);
      std::vector<T> shifted(static_cast<std::size_t>(n)), want(static_cast<std::size_t>(n)),
          want_c(static_cast<std::size_t>(n));
      for (Index i = 0; i < n; ++i) shifted[std::size_t(i)] = xp[i] - cp[i];
      const T tau = ld::newton_tau(shifted.data(), n, r, want_d, ld::kNewtonMaxPasses);
      for (Index i = 0; i < n; ++i) want[std::size_t(i)] = ld::soft(shifted[std::size_t(i)], tau) + cp[i];
      prilo::l1::condat(shifted.data(), n, r);
      for (Index i = 0; i < n; ++i) want_c[std::size_t(i)] = shifted[std::size_t(i)] + cp[i];
      CHECK(same_bits(p.data(), want.data(), n));
      CHECK(same_bits(pc.data(), want_c.data(), n));
    }
  }
}

TEST_CASE_TEMPLATE("L2Ball policy: closed form, inside untouched, overflow-safe", T, float, double) {
  std::mt19937 g(5);
  std::normal_distribution<T> normal;
  const Index n = 40, m = 4;
  Mat<T> x(n, m), c(n, 1);
  for (Index k = 0; k < x.size(); ++k) x.data()[k] = T(2) * normal(g);
  for (Index k = 0; k < c.size(); ++k) c.data()[k] = normal(g);
  x.col(1) = c.col(0) + Mat<T>::Constant(n, 1, T(0.01));  // inside
  const T r = T(3);
  Mat<T> p = x;
  prilo::L2Ball<T>{.radius = r}.project(p, c);
  const T tol = T(64) * std::numeric_limits<T>::epsilon() * T(10);
  for (Index j = 0; j < m; ++j) {
    const T dist = (x.col(j) - c.col(0)).norm();
    if (dist <= r) {
      CHECK(same_bits(p.col(j).data(), x.col(j).data(), n));
    } else {  // p = c + r (x - c) / ||x - c||
      CHECK((p.col(j) - (c.col(0) + r * (x.col(j) - c.col(0)) / dist)).cwiseAbs().maxCoeff() <= tol);
      CHECK(std::abs((p.col(j) - c.col(0)).norm() - r) <= tol);
    }
  }
  Mat<T> z = x;
  prilo::L2Ball<T>{.radius = 0}.project(z, c);
  for (Index j = 0; j < m; ++j) CHECK(z.col(j) == c.col(0));
  // Squares would overflow: the rescaled norm still gives the right direction and length.
  const T huge = std::numeric_limits<T>::max() / T(4);
  Mat<T> h(2, 1), hc = Mat<T>::Zero(2, 1);
  h << huge, -huge;
  prilo::L2Ball<T>{.radius = 2}.project(h, hc);
  CHECK(std::abs(h(0) - std::sqrt(T(2))) <= T(4) * std::numeric_limits<T>::epsilon());
  CHECK(std::abs(h(1) + std::sqrt(T(2))) <= T(4) * std::numeric_limits<T>::epsilon());
  // Tiny differences whose squares underflow are still outside a zero-radius ball.
  Mat<T> t(1, 1), tc = Mat<T>::Zero(1, 1);
  t(0) = std::numeric_limits<T>::denorm_min();
  prilo::L2Ball<T>{.radius = 0}.project(t, tc);
  CHECK(t(0) == T(0));
}

TEST_CASE_TEMPLATE("Box and NoProjection policies", T, float, double) {
  Mat<T> x(3, 2);
  x << T(-2), T(0.5), T(0.25), T(7), T(1), T(-0.0);
  const Mat<T> x0 = x;
  Mat<T> c = Mat<T>::Constant(3, 1, T(100));  // ignored by Box
  prilo::Box<T>{.lo = 0, .hi = 1}.project(x, c);
  for (Index k = 0; k < x.size(); ++k) CHECK(x.data()[k] == std::clamp(x0.data()[k], T(0), T(1)));
  CHECK(std::signbit(x(2, 1)));  // -0.0 is inside [0, 1] and untouched bit for bit
  Mat<T> y = x0;
  prilo::Box<T>{.hi = 1}.project(y, c);  // lower bound defaults to -infinity
  CHECK(y(0, 0) == T(-2));
  CHECK(y(1, 1) == T(1));
  Mat<T> u = x0;
  prilo::NoProjection{}.project(u, c);
  CHECK(same_bits(u.data(), x0.data(), u.size()));
}

TEST_CASE_TEMPLATE("bad input throws invalid_input naming the problem", T, float, double) {
  Mat<T> x = Mat<T>::Ones(4, 3);
  const Mat<T> c = Mat<T>::Zero(4, 3);
  const Mat<T> wrong_rows = Mat<T>::Zero(5, 3), wrong_cols = Mat<T>::Zero(4, 2);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  check_throws_naming([&] { prilo::L1Ball<T>{.radius = -1}.project(x, c); }, {"L1Ball", "radius", ">= 0", "-1"});
  check_throws_naming([&] { prilo::L1Ball<T>{.radius = nan}.project(x, c); }, {"L1Ball", "radius is NaN"});
  check_throws_naming([&] { prilo::L1Ball<T>{}.project(x, c); }, {"L1Ball", "radius is NaN"});
  check_throws_naming([&] { prilo::L2Ball<T>{.radius = -2}.project(x, c); }, {"L2Ball", "radius", "-2"});
  check_throws_naming([&] { prilo::L2Ball<T>{.radius = nan}.project(x, c); }, {"L2Ball", "radius is NaN"});
  check_throws_naming([&] { prilo::Box<T>{.lo = 1, .hi = 0}.project(x, c); }, {"Box", "lo = 1", "hi = 0"});
  check_throws_naming([&] { prilo::Box<T>{.lo = nan}.project(x, c); }, {"Box", "NaN"});
  for (const Mat<T>* bad : {&wrong_rows, &wrong_cols}) {
    const std::string got = std::to_string(bad->rows()) + "x" + std::to_string(bad->cols());
    check_throws_naming([&] { prilo::L1Ball<T>{.radius = 1}.project(x, *bad); },
                        {"L1Ball", "shape", "4x3", got.c_str()});
    check_throws_naming([&] { prilo::L2Ball<T>{.radius = 1}.project(x, *bad); },
                        {"L2Ball", "shape", "4x3", got.c_str()});
    check_throws_naming([&] { prilo::Box<T>{}.project(x, *bad); }, {"Box", "shape", got.c_str()});
    check_throws_naming([&] { prilo::NoProjection{}.project(x, *bad); }, {"NoProjection", "shape", got.c_str()});
  }
  x(1, 1) = nan;
  check_throws_naming([&] { prilo::L1Ball<T>{.radius = 1}.project(x, c); }, {"L1Ball", "column 1 of x", "NaN"});
  check_throws_naming([&] { prilo::L2Ball<T>{.radius = 1}.project(x, c); }, {"L2Ball", "column 1 of x", "NaN"});
  x(1, 1) = 1;
  Mat<T> cn = c;
  cn(2, 2) = -std::numeric_limits<T>::infinity();
  check_throws_naming([&] { prilo::L1Ball<T>{.radius = 1}.project(x, cn); },
                      {"L1Ball", "column 2 of the centre", "NaN or infinite"});
  check_throws_naming([&] { prilo::L2Ball<T>{.radius = 1}.project(x, cn); },
                      {"L2Ball", "column 2 of the centre", "NaN or infinite"});
  // finite values whose distance overflows are not called NaN
  const T big = std::numeric_limits<T>::max();
  Mat<T> far = x, cf = c;
  far(0, 0) = big;
  cf(0, 0) = -big;
  for (const char* who : {"L1Ball", "L2Ball"}) {
    const auto run = [&] {
      if (std::string(who) == "L1Ball")
        prilo::L1Ball<T>{.radius = 1}.project(far, cf);
      else
        prilo::L2Ball<T>{.radius = 1}.project(far, cf);
    };
    check_throws_naming(run, {who, "column 0 of x and its centre are finite but too far apart", "overflows"});
  }
}

}  // namespace prilo_test_projection

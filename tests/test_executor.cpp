// The executor layer on the CPU: the customisation points' contracts, and the test bodies
// every executor runs (tests/bodies/latent_bodies.hpp; the CUDA suite runs the same ones).
#include <doctest/doctest.h>

#include <prilo/exec/executor.hpp>
#include <prilo/optim/optimisers.hpp>
#include <prilo/projection/l1_ball.hpp>

#include <array>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <prilo/backend/cpu.hpp>

#if defined(__linux__)
#include <sys/resource.h>
#endif

#include "bodies/latent_bodies.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_executor {

namespace {

using prilo::CpuExecutor;
using prilo::Mat;
using prilo::Vec;

struct CpuBackend {
  template <class G>
  static const G& generator(const G& host) {
    return host;
  }
  template <class T>
  static const prilo::Fourier2d<T>& fourier(const prilo::Fourier2d<T>& op) {
    return op;
  }
  template <class T>
  static Mat<T> upload(const Mat<T>& m) {
    return m;
  }
};

static_assert(prilo::Executor<CpuExecutor>);
static_assert(!prilo::Executor<int>);
static_assert(std::same_as<prilo::matrix_t<CpuExecutor, float>, Mat<float>>);
static_assert(prilo::Loss<prilo::MagnitudeLoss<prilo::Fourier2d<float>>, Mat<float>>);
static_assert(!prilo::Loss<prilo::Fourier2d<float>, Mat<float>>, "an operator is not a loss");

TEST_CASE_TEMPLATE("CPU customisation points keep their contracts", T, float, double) {
  const CpuExecutor ex;
  prilo::Rng rng(2);
  const Mat<T> a = rng.normal_matrix<T>(5, 4), b = rng.normal_matrix<T>(5, 4);
  Mat<T> d;
  scaled_difference(ex, d, a, b, T(2));
  CHECK(d.isApprox(T(2) * (a - b)));
  const Vec<T> n = column_sq_norms(ex, d);
  for (int j = 0; j < 4; ++j) CHECK(n(j) == doctest::Approx(double(d.col(j).squaredNorm())));
  Mat<T> dst = prilo::zeros<T>(ex, 5, 4);
  const std::vector<Eigen::Index> cols{1, 3};
  copy_columns(ex, dst, a, cols);
  CHECK(dst.col(1) == a.col(1));
  CHECK(dst.col(3) == a.col(3));
  CHECK(dst.col(0).isZero());
  CHECK_THROWS_AS(copy_columns(ex, dst, Mat<T>(Mat<T>::Zero(5, 3)), cols), prilo::invalid_input);
  // a column outside the matrix: named, as on the CUDA executor (it read and wrote past them)
  const std::vector<Eigen::Index> outside{1, 4};
  CHECK_THROWS_WITH_AS(copy_columns(ex, dst, a, outside), "copy_columns: column 4 outside 0..3", prilo::invalid_input);
  Mat<T> part;
  copy_from_host(ex, part, a, 1, 2);
  CHECK(part == a.middleCols(1, 2));
  CHECK_THROWS_WITH_AS(copy_from_host(ex, part, a, 3, 2), "copy_from_host: columns 3..5 outside 0..4",
                       prilo::invalid_input);
  CHECK_THROWS_AS(copy_from_host(ex, part, a, -1, 1), prilo::invalid_input);
  // noise: σ = 0 draws nothing, σ > 0 draws from the given stream reproducibly
  prilo::Rng r1(9), r2(9);
  Mat<T> g1 = Mat<T>::Zero(50, 40), g2 = g1;
  add_normal(ex, g1, T(0), r1);
  CHECK(g1.isZero());
  CHECK(r1.next_u64() == r2.next_u64());
  add_normal(ex, g1, T(0.5), r1);
  add_normal(ex, g2, T(0.5), r2);
  CHECK(g1 == g2);
  const double var = double((g1.array() - g1.mean()).square().mean());
  CHECK(var == doctest::Approx(0.25).epsilon(0.1));
}

TEST_CASE_TEMPLATE("CPU adam_update: noise drawn in the pass equals noise added to a copy of the gradient first", T,
                   float, double) {
  // the fused pass against the unfused formula, bit for bit, over lengths around the noise
  // block (512) and with σ = 0 (no draw)
  const CpuExecutor ex;
  prilo::Rng data(4);
  for (const Eigen::Index rows : {3, 100, 300}) {
    for (const T sigma : {T(0), T(0.3)}) {
      CAPTURE(rows);
      CAPTURE(sigma);
      const Eigen::Index cols = 5;
      const Mat<T> x0 = data.normal_matrix<T>(rows, cols), g = data.normal_matrix<T>(rows, cols);
      const Mat<T> m0 = data.normal_matrix<T>(rows, cols) * T(0.1);
      const Mat<T> v0 = data.normal_matrix<T>(rows, cols).cwiseAbs() * T(0.1);
      const prilo::AdamStep<T> c{T(0.9), T(0.999), T(1.5), T(2.5), T(0.05), T(1e-8)};
      prilo::Rng r1(77), r2(77);
      Mat<T> x = x0, m = m0, v = v0, scratch;
      adam_update(ex, x, m, v, g, c, sigma, r1, scratch);
      Mat<T> gn = g;
      add_normal(ex, gn, sigma, r2);
      Mat<T> xr = x0, mr = m0, vr = v0;
      for (Eigen::Index i = 0; i < xr.size(); ++i) {  // each a·b + c fused where the target has FMA
        mr(i) = prilo::detail::fmadd(c.beta1, mr(i), (T(1) - c.beta1) * gn(i));
        vr(i) = prilo::detail::fmadd(c.beta2, vr(i), (T(1) - c.beta2) * gn(i) * gn(i));
        xr(i) -= c.learning_rate * (mr(i) * c.c1) / (std::sqrt(vr(i) * c.c2) + c.epsilon);
      }
      CHECK(m == mr);
      CHECK(v == vr);
      CHECK(x == xr);
      CHECK(r1.next_u64() == r2.next_u64());  // the same draws
      if (sigma == T(0)) CHECK(gn == g);
    }
  }
}

static_assert(std::same_as<prilo::vector_t<CpuExecutor, float>, Vec<float>>);
struct MatrixOnlyExecutor {  // names no vector type: vectors are one-column matrices
  using backend = prilo::cpu;
  template <class T>
  using matrix = Mat<T>;
};
static_assert(std::same_as<prilo::vector_t<MatrixOnlyExecutor, double>, Mat<double>>);

TEST_CASE_TEMPLATE("AdamTrainer's step is the executor's update with σ = 0, bit for bit", T, float, double) {
  // both run detail::adam_span; the trainer's bias corrections from its step count
  prilo::Rng data(6);
  Mat<T> w = data.normal_matrix<T>(37, 3), gw = data.normal_matrix<T>(37, 3);
  const Mat<T> w0 = w;
  prilo::nn::ParamList<T> params;
  params.push_back({"w", Eigen::Map<Mat<T>>(w.data(), 37, 3), Eigen::Map<Mat<T>>(gw.data(), 37, 3)});
  prilo::AdamTrainer<T> trainer({.learning_rate = T(0.01)});
  Mat<T> x = w0, m = Mat<T>::Zero(37, 3), v = m, scratch;
  prilo::Rng unused(1);
  for (int k = 1; k <= 3; ++k) {
    trainer.step(params);
    const T c1 = T(1) / (T(1) - std::pow(T(0.9), T(k))), c2 = T(1) / (T(1) - std::pow(T(0.999), T(k)));
    adam_update(CpuExecutor{}, x, m, v, gw, prilo::AdamStep<T>{T(0.9), T(0.999), c1, c2, T(0.01), T(1e-8)}, T(0),
                unused, scratch);
    CHECK(w == x);
  }
  CHECK(x != w0);
}

TEST_CASE("static_for: f(0), ..., f(N - 1) in order, each index a compile-time constant") {
  std::vector<int> seen;
  std::size_t sizes = 0;
  prilo::static_for<5>([&](auto i) {
    static_assert(decltype(i)::value >= 0 && decltype(i)::value < 5);
    const std::array<int, decltype(i)::value + 1> a{};  // the index as a template argument
    sizes += a.size();
    seen.push_back(i);
  });
  CHECK(seen == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(sizes == 15u);
  int calls = 0;
  prilo::static_for<0>([&](auto) { ++calls; });
  CHECK(calls == 0);
}

TEST_CASE_TEMPLATE("CPU gemm: every transposition, alpha and beta, against Eigen's own products", T, float, double) {
  const CpuExecutor ex;
  prilo::Rng rng(3);
  const Eigen::Index m = 7, k = 5, n = 6;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Mat<T> a = ta ? rng.normal_matrix<T>(k, m) : rng.normal_matrix<T>(m, k);
      const Mat<T> b = tb ? rng.normal_matrix<T>(n, k) : rng.normal_matrix<T>(k, n);
      const Mat<T> opa = ta ? Mat<T>(a.transpose()) : a, opb = tb ? Mat<T>(b.transpose()) : b;
      const Mat<T> prod = opa * opb;
      // beta = 0: C is resized and its old contents (here NaN) are ignored
      Mat<T> c = Mat<T>::Constant(2, 3, std::numeric_limits<T>::quiet_NaN());
      gemm(ex, ta, tb, T(1), a, b, T(0), c);
      CHECK(c.rows() == m);
      CHECK(c.cols() == n);
      CHECK(c.isApprox(prod));
      gemm(ex, ta, tb, T(-2), a, b, T(0), c);
      CHECK(c.isApprox(T(-2) * prod));
      // beta ≠ 0 accumulates into C of the right shape
      const Mat<T> c0 = rng.normal_matrix<T>(m, n);
      c = c0;
      gemm(ex, ta, tb, T(1), a, b, T(1), c);
      CHECK(c.isApprox(c0 + prod));
      c = c0;
      gemm(ex, ta, tb, T(3), a, b, T(0.5), c);
      CHECK(c.isApprox(T(0.5) * c0 + T(3) * prod));
      Mat<T> wrong(m + 1, n);
      CHECK_THROWS_AS(gemm(ex, ta, tb, T(1), a, b, T(1), wrong), prilo::invalid_input);
    }
  // the products the layers use are Eigen's noalias() products bit for bit (no scaling pass)
  const Mat<T> w = rng.normal_matrix<T>(9, 4), x = rng.normal_matrix<T>(4, 11), g = rng.normal_matrix<T>(9, 11);
  Mat<T> y, want;
  gemm(ex, false, false, T(1), w, x, T(0), y);
  want.noalias() = w * x;
  CHECK(y == want);
  Mat<T> gw = rng.normal_matrix<T>(9, 4), gw_want = gw;
  gemm(ex, false, true, T(1), g, x, T(1), gw);
  gw_want.noalias() += g * x.transpose();
  CHECK(gw == gw_want);
  Mat<T> gx;
  gemm(ex, true, false, T(1), w, g, T(0), gx);
  want.noalias() = w.transpose() * g;
  CHECK(gx == want);
  CHECK_THROWS_AS(gemm(ex, false, false, T(1), w, g, T(0), gx), prilo::invalid_input);  // 9x4 · 9x11
}

template <class T, class Act>
void check_layer_kernels(bool exact) {
  const std::string act = Act::name;
  CAPTURE(act);
  const CpuExecutor ex;
  prilo::Rng rng(5);
  // 37 rows: whole SIMD packets and a tail in every column (the packet loop of the exact
  // activations), with -0, NaN and infinities among the exact ones' inputs
  Mat<T> pre = rng.normal_matrix<T>(37, 7, 2.0);
  Vec<T> b = rng.normal_matrix<T>(37, 1).col(0);
  if (exact) {
    const T inf = std::numeric_limits<T>::infinity();
    pre(1, 0) = std::numeric_limits<T>::quiet_NaN();
    pre(2, 1) = inf;
    pre(20, 2) = -inf;
    pre(3, 3) = T(-0.0);
    b(3) = T(-0.0);  // -0 + -0 = -0
    pre(36, 4) = -std::numeric_limits<T>::quiet_NaN();
  }
  Mat<T> y = pre;
  bias_activation(ex, Act{}, y, b);
  int differ = 0;
  for (Eigen::Index j = 0; j < y.cols(); ++j)
    for (Eigen::Index i = 0; i < y.rows(); ++i) {
      const T want = Act::value(T(pre(i, j) + b(i)));
      if (exact)
        differ += std::memcmp(&y(i, j), &want, sizeof(T)) != 0;  // bit for bit: NaN and -0 too
      else
        CHECK(double(y(i, j)) == doctest::Approx(double(want)).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-14));
    }
  CHECK(differ == 0);
  CHECK_THROWS_AS(bias_activation(ex, Act{}, y, Vec<T>(Vec<T>::Zero(12))), prilo::invalid_input);

  const Mat<T> gy = rng.normal_matrix<T>(37, 7);
  Mat<T> out(1, 1);
  activation_cotangent(ex, Act{}, y, gy, out);
  REQUIRE(out.rows() == 37);
  REQUIRE(out.cols() == 7);
  for (Eigen::Index k = 0; k < out.size(); ++k) CHECK(out(k) == gy(k) * Act::derivative_from_output(y(k)));
}

TEST_CASE_TEMPLATE("CPU layer kernels: bias + activation, its cotangent, row sums, zeroing", T, float, double) {
  check_layer_kernels<T, prilo::nn::Identity>(true);
  check_layer_kernels<T, prilo::nn::Relu>(true);
  check_layer_kernels<T, prilo::nn::LeakyRelu>(true);
  check_layer_kernels<T, prilo::nn::Sigmoid>(false);  // Eigen's vectorised exp: within an ulp or so
  check_layer_kernels<T, prilo::nn::Tanh>(false);

  const CpuExecutor ex;
  prilo::Rng rng(6);
  const Mat<T> g = rng.normal_matrix<T>(8, 30);
  const Vec<T> gb0 = rng.normal_matrix<T>(8, 1).col(0);
  Vec<T> gb = gb0;
  add_row_sums(ex, g, gb);
  for (Eigen::Index i = 0; i < 8; ++i) CHECK(double(gb(i)) == doctest::Approx(double(gb0(i) + g.row(i).sum())));
  add_row_sums(ex, Mat<T>(8, 0), gb);  // no columns: nothing added
  CHECK(gb.isApprox(gb0 + g.rowwise().sum()));
  Vec<T> short_gb(7);
  CHECK_THROWS_WITH_AS(add_row_sums(ex, g, short_gb), doctest::Contains("add_row_sums gb"), prilo::invalid_input);
  Mat<T> out;  // y narrower than gy: named (it read past y)
  CHECK_THROWS_WITH_AS(activation_cotangent<T>(ex, prilo::nn::Relu{}, Mat<T>(g.leftCols(29)), g, out),
                       doctest::Contains("activation_cotangent y"), prilo::invalid_input);
  // C given as A or B: refused (the product read what it had already written)
  Mat<T> sq = rng.normal_matrix<T>(8, 8), other = sq;
  CHECK_THROWS_WITH_AS(gemm(ex, false, false, T(1), sq, other, T(0), sq), doctest::Contains("C is also an input"),
                       prilo::invalid_input);
  CHECK_THROWS_AS(gemm(ex, false, true, T(1), other, sq, T(1), sq), prilo::invalid_input);
  Mat<T> m = g;
  set_zero(ex, m);
  CHECK(m.rows() == 8);
  CHECK(m.cols() == 30);
  CHECK(m.isZero(0));
  set_zero(ex, gb);
  CHECK(gb.isZero(0));
}

TEST_CASE("Adam over the CPU executor is Adam: one step by hand") {
  prilo::Adam<double> adam({.learning_rate = 0.1});
  Mat<double> x(1, 1), g(1, 1), c = Mat<double>::Zero(1, 1);
  x << 1.0;
  g << 0.5;
  prilo::Rng rng(1);
  adam.step(x, g, c, rng);
  // m̂ = g, v̂ = g², step = α g / (|g| + ε)
  CHECK(x(0, 0) == doctest::Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-12));
}

TEST_CASE_TEMPLATE("Executor bodies on the CPU: DPR through the pipeline", T, float, double) {
  bodies::dpr_pipeline_lowers_error<CpuBackend, T>();
}
TEST_CASE_TEMPLATE("Executor bodies on the CPU: PRILO-MII (chained) through the pipeline", T, float, double) {
  bodies::prilo_mii_pipeline_lowers_error<CpuBackend, T>();
}
TEST_CASE("Executor bodies on the CPU: a non-finite start is an error") {
  bodies::nonfinite_start_is_an_error<CpuBackend, double>();
}

// glibc's own allocator (not a sanitizer's, which replaces malloc and ignores mallopt)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PRILO_TEST_OWN_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define PRILO_TEST_OWN_MALLOC 0
#endif
#endif
#ifndef PRILO_TEST_OWN_MALLOC
#define PRILO_TEST_OWN_MALLOC 1
#endif

TEST_CASE("cpu::retain_freed_memory: blocks freed and allocated again fault no new pages") {
#if defined(__GLIBC__) && defined(__linux__) && PRILO_TEST_OWN_MALLOC
  // 40 blocks of 1 MiB written and freed, four times over: with glibc's defaults the free
  // space at the top of the heap is given back every round and every page faults again
  // (about 4 × 10240 minor faults here); kept, only the first touch of each page faults
  REQUIRE(prilo::cpu::retain_freed_memory());
  auto faults = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return long(u.ru_minflt);
  };
  auto rounds = [&] {
    const long f0 = faults();
    for (int r = 0; r < 4; ++r) {
      std::vector<char*> blocks;
      for (int k = 0; k < 40; ++k) {
        char* p = static_cast<char*>(std::malloc(std::size_t(1) << 20));
        REQUIRE(p != nullptr);
        for (std::size_t i = 0; i < (std::size_t(1) << 20); i += 4096) p[i] = char(k);
        blocks.push_back(p);
      }
      for (char* p : blocks) std::free(p);
    }
    return faults() - f0;
  };
  rounds();  // the pages enter the process once
  const long again = rounds();
  CAPTURE(again);
  CHECK(again < 1024);  // of 4 × 40 × 256 pages touched
#else
  MESSAGE("not glibc's own allocator on Linux: retain_freed_memory is a no-op here");
#endif
}

}  // namespace

}  // namespace prilo_test_executor

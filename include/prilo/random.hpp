// Deterministic, seeded random numbers: the same draws on every platform (the normals made from
// them can differ in their last bits with another libm, or, for normal_block, instruction set).
#pragma once

#include <array>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <utility>

#include "core.hpp"
#include "fft/lanes.hpp"

namespace prilo {

/// SplitMix64-seeded xoshiro256** generator with Box–Muller normals. Unlike
/// std::normal_distribution, the stream is specified here, so a seed gives the same
/// numbers with every compiler and standard library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& si : s_) {
      x += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      si = z ^ (z >> 31);
    }
    has_spare_ = false;
  }

  std::uint64_t next_u64() { return step(s_[0], s_[1], s_[2], s_[3]); }

  /// The whole state (xoshiro words, whether a Box–Muller spare is pending, the spare's bits),
  /// for checkpoints: set_state(state()) continues the stream exactly.
  std::array<std::uint64_t, 6> state() const {
    std::uint64_t spare_bits = 0;
    std::memcpy(&spare_bits, &spare_, sizeof spare_bits);
    return {s_[0], s_[1], s_[2], s_[3], has_spare_ ? 1u : 0u, spare_bits};
  }
  void set_state(const std::array<std::uint64_t, 6>& st) {
    for (int i = 0; i < 4; ++i) s_[i] = st[std::size_t(i)];
    has_spare_ = st[4] != 0;
    std::memcpy(&spare_, &st[5], sizeof spare_);
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) { return static_cast<std::uint64_t>(uniform() * static_cast<double>(n)); }

  /// Fisher–Yates: permutes v uniformly at random, drawing below(i + 1) for i = size − 1 … 1 (the
  /// training programs' epoch shuffles; the order of the draws is part of their streams).
  template <class V>
  void shuffle(V& v) {
    for (std::size_t i = v.size(); i-- > 1;) std::swap(v[i], v[below(std::uint64_t(i) + 1)]);
  }

  /// Standard normal N(0, 1).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0;
    do u1 = uniform();
    while (u1 <= 0.0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }

  /// Fills m with N(0, sigma²) samples, column by column.
  template <class Derived>
  void fill_normal(Eigen::MatrixBase<Derived>& m, double sigma = 1.0) {
    using S = typename Derived::Scalar;
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = static_cast<S>(sigma * normal());
  }

  /// A fresh matrix of N(0, sigma²) samples; invalid_input for negative sizes or a sigma that
  /// is negative or not finite.
  template <class T>
  Mat<T> normal_matrix(Eigen::Index rows, Eigen::Index cols, double sigma = 1.0) {
    if (rows < 0 || cols < 0) detail::fail("Rng::normal_matrix: sizes must be >= 0, got ", rows, "x", cols);
    if (!(std::isfinite(sigma) && sigma >= 0))
      detail::fail("Rng::normal_matrix: sigma must be finite and >= 0, got ", sigma);
    Mat<T> m(rows, cols);
    fill_normal(m, sigma);
    return m;
  }

  /// The most samples normal_block writes per call.
  static constexpr int kNormalBlock = 512;

  /// Writes `len` ≤ kNormalBlock N(0, 1) samples to u (single precision): the fast path for
  /// gradient noise. Box–Muller on up to 256 pairs, one 64-bit draw per pair (24 bits for
  /// each uniform; u1 ∈ (0, 1], so |N| ≤ 5.8): r = √(−2 ln u1) with Eigen's vectorised log,
  /// and the pair r·(cos θ, sin θ), θ = 2π·u2, from one quarter-turn reduction done on u2's
  /// integer bits (exact) and two short polynomials on [−π/4, π/4) that share it. About 10×
  /// faster than normal() per sample (2 against 21 ns on the 2-core AVX2 VM), which spends its
  /// time in scalar double log and sincos.
  /// Its own stream, not normal()'s (its draws are next_u64()'s; its values can differ in the
  /// last bits between instruction sets, as Eigen's vectorised log and square root round
  /// differently with AVX2 and AVX-512), and it does not touch normal()'s spare value. A
  /// sequence of calls of kNormalBlock samples (the last one shorter) is add_normal's stream.
  /// Its loops run on 512-bit vectors where the build has them (PRILO_WIDE_VECTORS: 0.83 of
  /// the time at 256 bits, bench_solver's normal_block/512 on the Intel VM; the same values).
  PRILO_WIDE_VECTORS void normal_block(float* u, int len) {
    if (len < 0 || len > kNormalBlock) detail::fail("Rng::normal_block: 0..", kNormalBlock, " samples, got ", len);
    // The pairs go through in chunks of kChunk. The state steps are serial (each xoshiro step
    // needs the last) while the transform is vector work, so the steps for the next chunk are
    // taken between the current chunk's vector loops, where the core runs both at once (0.68
    // of the time of drawing all 256 first, bench_solver's normal_block/512 on the Intel VM;
    // the same draws, so the same bits). The choice between cos t and sin t is a select, the
    // same value as the products with w ∈ {0, 1} this code used before.
    constexpr int kChunk = 32;
    const int m = (len + 1) / 2;  // pairs
    std::uint64_t s0 = s_[0], s1 = s_[1], s2 = s_[2], s3 = s_[3];
    alignas(64) std::uint64_t draws[2][kChunk];
    int drawn = 0;
    // the state words s1 of the next steps (the outputs are made of them) into d[drawn, upto)
    const auto take = [&](std::uint64_t* d, int upto) PRILO_INLINE_LAMBDA {
      for (; drawn < upto; ++drawn) {
        d[drawn] = s1;
        advance(s0, s1, s2, s3);
      }
    };
    take(draws[0], std::min(kChunk, m));
    for (int c0 = 0, b = 0; c0 < m; c0 += kChunk, b ^= 1) {
      std::uint64_t* draw = draws[b];
      std::uint64_t* next = draws[b ^ 1];
      const int mc = std::min(kChunk, m - c0);                // pairs in this chunk
      const int mn = std::clamp(m - c0 - kChunk, 0, kChunk);  // and in the next
      for (int k = mc; k < kChunk; ++k) draw[k] = 0;          // lanes of a short chunk: computed, not used
      drawn = 0;
      // θ = 2π·j/2²⁴ for u2's 24 bits j. With j' = j + 2²¹ (mod 2²⁴), θ = q·π/2 + t, quadrant
      // q = j' >> 22 and t = ((j' mod 2²²) − 2²¹)·2π/2²⁴ ∈ [−π/4, π/4): integer operations, so
      // the reduction is exact. cos θ and sin θ are then ±cos t or ±sin t: cos θ = sc·(cos t or
      // sin t for odd q), sin θ = ss·(sin t or cos t), sc = −1 for q ∈ {1, 2}, ss = −1 for
      // q ∈ {2, 3} (a sign and a choice: exact).
      alignas(64) float u1[kChunk], t[kChunk], sc[kChunk], ss[kChunk];
      alignas(64) std::int32_t swap[kChunk];
      constexpr float kStep = 6.28318530717958647692f * 0x1.0p-24f;
      for (int k = 0; k < kChunk; ++k) {
        const std::uint64_t d = scramble(draw[k]);  // xoshiro256**'s output, next_u64()'s value
        // 24 bits each, exact in float (as 32-bit integers, which vectorise best)
        u1[k] = float(std::int32_t(d >> 40) + 1) * 0x1.0p-24f;  // (0, 1]
        const std::int32_t j = (std::int32_t((d >> 16) & 0xFFFFFFull) + 0x200000) & 0xFFFFFF;
        const std::int32_t q = j >> 22;
        t[k] = float((j & 0x3FFFFF) - 0x200000) * kStep;
        swap[k] = q & 1;
        sc[k] = float(1 - ((q + 1) & 2));
        ss[k] = float(1 - (q & 2));
      }
      take(next, mn / 2);
      using A = Eigen::Array<float, kChunk, 1>;
      alignas(64) float r[kChunk];
      Eigen::Map<A, Eigen::Aligned64> rv(r);
      rv = (-2.0f * Eigen::Map<const A, Eigen::Aligned64>(u1).log()).sqrt();
      take(next, mn);
      alignas(64) float c[kChunk], sn[kChunk];
      for (int k = 0; k < kChunk; ++k) {
        // minimax polynomials of sin and cos on [−π/4, π/4] (Cephes' single-precision sinf/cosf)
        const float tk = t[k], t2 = tk * tk;
        const float sin_t = tk + tk * t2 * (-1.6666654611e-1f + t2 * (8.3321608736e-3f + t2 * -1.9515295891e-4f));
        const float cos_t =
            1.0f - 0.5f * t2 +
            t2 * t2 * (4.166664568298827e-2f + t2 * (-1.388731625493765e-3f + t2 * 2.443315711809948e-5f));
        const bool w = swap[k] != 0;
        c[k] = r[k] * sc[k] * (w ? sin_t : cos_t);
        sn[k] = r[k] * ss[k] * (w ? cos_t : sin_t);
      }
      float* uc = u + 2 * c0;
      const int full = std::min(kChunk, (len - 2 * c0) / 2);  // pairs with both samples used
      int k = 0;
      if (full == kChunk) {  // a whole chunk: the pairs interleaved on vectors (GCC's -O2 kept the loop scalar)
        using V = lanes::vec<float>;
        constexpr int L = lanes::lanes<float>;
        static_for<kChunk / L>([&](auto v) PRILO_INLINE_LAMBDA {
          V a, b;
          lanes::interleave(lanes::load(c + v * L), lanes::load(sn + v * L), a, b);
          lanes::store(uc + 2 * v * L, a);
          lanes::store(uc + 2 * v * L + L, b);
        });
        k = kChunk;
      }
      for (; k < full; ++k) {
        uc[2 * k] = c[k];
        uc[2 * k + 1] = sn[k];
      }
      if (full < mc) uc[2 * full] = c[full];  // len odd: the last pair's sine is dropped
    }
    s_[0] = s0;
    s_[1] = s1;
    s_[2] = s2;
    s_[3] = s3;
  }

  /// Adds sigma·N(0, 1) samples to x[0], …, x[n−1] (normal_block's stream, in blocks of
  /// kNormalBlock).
  template <class T>
  void add_normal(T* x, Eigen::Index n, T sigma) {
    alignas(64) float u[kNormalBlock];
    for (Eigen::Index i = 0; i < n; i += kNormalBlock) {
      const int len = int(std::min<Eigen::Index>(kNormalBlock, n - i));
      normal_block(u, len);
      T* p = x + i;
      for (int k = 0; k < len; ++k) p[k] = detail::fmadd(sigma, T(u[k]), p[k]);  // adam_update's g + σ·u
    }
  }

  /// An independent generator derived from this one (for per-thread or per-restart streams).
  Rng split() { return Rng(next_u64()); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  /// One xoshiro256** step on the state words s0..s3: returns the output and advances them.
  static std::uint64_t step(std::uint64_t& s0, std::uint64_t& s1, std::uint64_t& s2, std::uint64_t& s3) {
    const std::uint64_t result = scramble(s1);
    advance(s0, s1, s2, s3);
    return result;
  }
  /// xoshiro256**'s output of a state whose second word is s1.
  static std::uint64_t scramble(std::uint64_t s1) { return rotl(s1 * 5, 7) * 9; }
  /// xoshiro256**'s state transition (linear over GF(2)).
  static void advance(std::uint64_t& s0, std::uint64_t& s1, std::uint64_t& s2, std::uint64_t& s3) {
    const std::uint64_t t = s1 << 17;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 45);
  }
  std::uint64_t s_[4]{};
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace prilo

// solve_column_blocks: the batch split into column blocks, one per thread, and joined again.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <prilo/prilo.hpp>
#include <stdexcept>
#include <vector>

#include "test_support.hpp"

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_column_blocks {

using namespace prilo;
using T = double;

namespace {

struct Problem {
  Fourier2d<T> F{8, 8};
  Mat<T> x;
  Mat<T> y;
  explicit Problem(Eigen::Index cols) {
    Rng rng(5);
    x = rng.normal_matrix<T>(64, cols).cwiseAbs();
    y = measure(F, x);
  }
};

using test_support::error_of;
using test_support::OnExit;
using test_support::ThreadGuard;

}  // namespace

TEST_CASE("parallel_for_dynamic: every item once, with its thread's index; an item's exception reaches the caller") {
  for (const int threads : {1, 2, 3}) {
    CAPTURE(threads);
    constexpr Eigen::Index count = 37;
    std::vector<std::atomic<int>> hits(count);
    std::vector<int> owner(count, -1);
    // items of uneven cost (as -resolve's images): a thread takes the next one when it is done
    parallel_for_dynamic(count, threads, [&](Eigen::Index i, int t) {
      volatile double s = 0;
      for (Eigen::Index k = 0; k < (i % 5) * 20000; ++k) s = s + 1e-9 * double(k);
      hits[std::size_t(i)].fetch_add(1);
      owner[std::size_t(i)] = t;
    });
    for (Eigen::Index i = 0; i < count; ++i) {
      CHECK(hits[std::size_t(i)].load() == 1);
      CHECK(owner[std::size_t(i)] >= 0);
      CHECK(owner[std::size_t(i)] < threads);
    }
    // the others still run; the first exception is rethrown on the calling thread
    std::atomic<int> ran{0};
    CHECK_THROWS_WITH_AS(parallel_for_dynamic(count, threads,
                                              [&](Eigen::Index i, int) {
                                                ran.fetch_add(1);
                                                if (i == 5) throw std::runtime_error("item 5 failed");
                                              }),
                         "item 5 failed", std::runtime_error);
    CHECK(ran.load() == count);
  }
}

TEST_CASE("for_column_chunks: ranges cover the columns once, at least min_cols wide, starting at whole granules") {
  const test_support::ThreadGuard guard;
  for (const int threads : {1, 2, 3})
    for (const Eigen::Index cols : {Eigen::Index(1), Eigen::Index(15), Eigen::Index(34), Eigen::Index(97)})
      for (const Eigen::Index granule : {Eigen::Index(1), Eigen::Index(2), Eigen::Index(32), Eigen::Index(200)}) {
        CAPTURE(threads);
        CAPTURE(cols);
        CAPTURE(granule);
        cpu::set_threads(threads);
        std::mutex m;
        std::vector<std::pair<Eigen::Index, Eigen::Index>> ranges;
        for_column_chunks(
            cols,
            [&](Eigen::Index j0, Eigen::Index n) {
              const std::lock_guard<std::mutex> lock(m);
              ranges.emplace_back(j0, n);
            },
            8, granule);
        std::sort(ranges.begin(), ranges.end());
        Eigen::Index next = 0;
        for (const auto& [j0, n] : ranges) {
          CHECK(j0 == next);  // contiguous, in order, none twice
          CHECK(n >= 1);
          CHECK(j0 % granule == 0);
          if (ranges.size() > 1 && (granule == 1 || j0 + n < cols)) CHECK(n >= 8);  // the last: what is left
          next = j0 + n;
        }
        CHECK(next == cols);
        // as many ranges as threads allow: min_cols and whole granules permitting
        const Eigen::Index most =
            std::min({Eigen::Index(threads), std::max<Eigen::Index>(1, cols / 8), (cols + granule - 1) / granule});
        CHECK(Eigen::Index(ranges.size()) == most);
      }
}

TEST_CASE("column blocks: blocks cover the batch in order and the results are joined in column order") {
  Problem p(10);
  MagnitudeLoss<Fourier2d<T>> loss(p.F, p.y);
  Rng rng(1);
  Rng draw(3);  // the start's own seeded stream (Eigen's Random is the global rand(): test order)
  const Mat<T> start = draw.normal_matrix<T>(3, 10);
  std::mutex m;
  std::vector<ColumnBlock> seen;
  auto r = solve_column_blocks(loss, start, rng,
                               [&](const MagnitudeLoss<Fourier2d<T>>& l, Mat<T> s, Rng&, const ColumnBlock& b) {
                                 {
                                   std::lock_guard lock(m);
                                   seen.push_back(b);
                                 }
                                 // the block's loss holds exactly the block's measurement columns
                                 CHECK(l.measurements() == p.y.middleCols(b.first, b.columns));
                                 CHECK(s == start.middleCols(b.first, b.columns));
                                 SolveResult<T> out;
                                 out.x = s * T(2);
                                 out.z = s;
                                 out.magnitude_error = Vec<T>::Constant(b.columns, T(b.index));
                                 out.history = Mat<T>::Constant(2, b.columns, T(b.first));
                                 out.history_steps = {5, 10};
                                 return out;
                               },
                               {.blocks = 3, .min_columns = 1});
  REQUIRE(seen.size() == 3);
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  Eigen::Index next = 0;
  for (const auto& b : seen) {
    CHECK(b.count == 3);
    CHECK(b.first == next);
    CHECK(b.columns >= 3);
    next += b.columns;
  }
  CHECK(next == 10);
  CHECK(r.x == start * T(2));
  CHECK(r.z == start);
  CHECK(r.history_steps == std::vector<int>{5, 10});
  for (const auto& b : seen)
    for (Eigen::Index j = b.first; j < b.first + b.columns; ++j) {
      CHECK(r.magnitude_error(j) == T(b.index));
      CHECK(r.history(1, j) == T(b.first));
    }
}

TEST_CASE("column blocks: a block solver that returns another number of columns is named, not written past") {
  Problem p(10);
  MagnitudeLoss<Fourier2d<T>> loss(p.F, p.y);
  Rng draw(3);
  const Mat<T> start = draw.normal_matrix<T>(3, 10);
  for (const int extra : {1, -1}) {
    Rng rng(1);
    const std::string e = error_of([&] {
      (void)solve_column_blocks(loss, start, rng,
                                [&](const MagnitudeLoss<Fourier2d<T>>& l, Mat<T> s, Rng&, const ColumnBlock& b) {
                                  SolveResult<T> out;
                                  const Eigen::Index n =
                                      b.index == 0 ? s.cols() + extra : s.cols();  // block 0 miscounts
                                  out.x = Mat<T>::Zero(l.op().input_size(), n);
                                  out.magnitude_error = Vec<T>::Zero(n);
                                  return out;
                                },
                                {.blocks = 3, .min_columns = 1});
    });
    CHECK_MESSAGE(e.find("solve_column_blocks: ") != std::string::npos, e);
    CHECK_MESSAGE(e.find("columns") != std::string::npos, e);
  }
}

TEST_CASE("column blocks: one block is a direct call with the caller's loss and random stream") {
  Problem p(20);
  MagnitudeLoss<Fourier2d<T>> loss(p.F, p.y);
  Rng rng(1);
  Rng draw(3);  // the start's own seeded stream (Eigen's Random is the global rand(): test order)
  const Mat<T> start = draw.normal_matrix<T>(3, 20);
  int calls = 0;
  // 20 columns with blocks of at least 16: one block, whatever the thread count
  auto r = solve_column_blocks(loss, start, rng,
                               [&](const MagnitudeLoss<Fourier2d<T>>& l, Mat<T> s, Rng& g, const ColumnBlock& b) {
                                 ++calls;
                                 CHECK(&l == &loss);
                                 CHECK(&g == &rng);
                                 CHECK(b.count == 1);
                                 CHECK(b.columns == 20);
                                 SolveResult<T> out;
                                 out.x = s;
                                 out.magnitude_error = Vec<T>::Zero(s.cols());
                                 return out;
                               },
                               {.blocks = 4, .min_columns = 16});
  CHECK(calls == 1);
  CHECK(r.x == start);
}

TEST_CASE("column blocks: an exception in any block reaches the caller") {
  ThreadGuard guard;
  cpu::set_threads(2);
  Problem p(12);
  MagnitudeLoss<Fourier2d<T>> loss(p.F, p.y);
  Rng rng(1);
  const Mat<T> start = Mat<T>::Zero(3, 12);
  std::atomic<int> calls{0};
  auto solve = [&](const MagnitudeLoss<Fourier2d<T>>&, Mat<T> s, Rng&, const ColumnBlock& b) {
    ++calls;
    if (b.index == 2) throw invalid_input("block two failed");
    SolveResult<T> out;
    out.x = s;
    out.magnitude_error = Vec<T>::Zero(s.cols());
    return out;
  };
  CHECK_THROWS_WITH_AS(solve_column_blocks(loss, start, rng, solve, {.blocks = 3, .min_columns = 1}),
                       "block two failed", invalid_input);
  CHECK(calls == 3);
  CHECK_THROWS_AS(solve_column_blocks(loss, start, rng, solve, {.blocks = -1}), invalid_input);
  CHECK_THROWS_AS(solve_column_blocks(loss, start, rng, solve, {.blocks = 2, .min_columns = 0}), invalid_input);
  CHECK_THROWS_AS(solve_column_blocks(loss, Mat<T>(Mat<T>::Zero(3, 11)), rng, solve), invalid_input);
}

TEST_CASE(
    "column blocks: DPR on fixed blocks gives the same result with 1 and 2 threads, and each block's own result") {
  ThreadGuard guard;
  Problem p(24);
  MagnitudeLoss<Fourier2d<T>> loss(p.F, p.y);
  const nn::Vae<T> vae(64, 32, 6, 11);
  DprOptions<T> opt;
  opt.phase.steps = 30;
  opt.history_stride = 10;
  Rng start_rng(2);
  const Mat<T> z0 = random_latents(vae.decoder(), 24, start_rng);
  auto run = [&](int threads) {
    cpu::set_threads(threads);
    Rng rng(9);
    return solve_column_blocks(loss, z0, rng,
                               [&](const auto& l, Mat<T> s, Rng& g, const ColumnBlock&) {
                                 return dpr(vae.decoder(), l, std::move(s), opt, g);
                               },
                               {.blocks = 2, .min_columns = 1});
  };
  const SolveResult<T> one = run(1), two = run(2);
  CHECK(one.x == two.x);
  CHECK(one.z == two.z);
  CHECK(one.magnitude_error == two.magnitude_error);
  REQUIRE(one.history.rows() == 3);
  CHECK(one.history.cols() == 24);
  // the joined magnitude errors belong to the joined images
  const Vec<T> e = loss.value(one.x) / T(64);
  CHECK((e - one.magnitude_error).cwiseAbs().maxCoeff() <= 1e-12 * (1 + e.cwiseAbs().maxCoeff()));
  // the solver lowered the loss (it ran on every block)
  const Vec<T> e0 = loss.value(vae.decoder().forward_from(0, z0)) / T(64);
  CHECK(one.magnitude_error.head(12).mean() < e0.head(12).mean());
  CHECK(one.magnitude_error.tail(12).mean() < e0.tail(12).mean());
  // each block's own result: block b is DPR called directly on its 12 columns with the b-th
  // rng.split() of the caller's stream (the splits taken in block order before the blocks run)
  cpu::set_threads(1);
  Rng rng(9);
  std::vector<Rng> streams;
  for (int b = 0; b < 2; ++b) streams.push_back(rng.split());
  for (int b = 0; b < 2; ++b) {
    CAPTURE(b);
    const MagnitudeLoss<Fourier2d<T>> block_loss(p.F, Mat<T>(p.y.middleCols(12 * b, 12)));
    const SolveResult<T> own =
        dpr(vae.decoder(), block_loss, Mat<T>(z0.middleCols(12 * b, 12)), opt, streams[std::size_t(b)]);
    CHECK(one.x.middleCols(12 * b, 12) == own.x);
    CHECK(one.z.middleCols(12 * b, 12) == own.z);
    CHECK(one.magnitude_error.segment(12 * b, 12) == own.magnitude_error);
  }
}

#if defined(PRILO_HAS_MXCSR)
namespace {
// A denormal float's product with 1, computed at run time (volatile: no constant folding).
float denormal_times_one() {
  volatile float tiny = std::numeric_limits<float>::denorm_min() * 64;
  volatile float one = 1.f;
  return tiny * one;
}
}  // namespace

TEST_CASE("FlushDenormals: prilo's parallel work flushes denormals, the caller's thread keeps its own mode") {
  REQUIRE(flush_denormals());  // the default
  REQUIRE(denormal_times_one() > 0.f);
  {
    const FlushDenormals guard;
    CHECK(denormal_times_one() == 0.f);
  }
  CHECK(denormal_times_one() > 0.f);  // restored
  // every item of parallel_for and parallel_for_dynamic, on every thread, and a single chunk
  std::vector<float> seen(8, 1.f), seen_dynamic(8, 1.f);
  parallel_for(8, 2, [&](Eigen::Index i) { seen[std::size_t(i)] = denormal_times_one(); });
  parallel_for_dynamic(8, 2, [&](Eigen::Index i, int) { seen_dynamic[std::size_t(i)] = denormal_times_one(); });
  for (std::size_t i = 0; i < 8; ++i) {
    CHECK(seen[i] == 0.f);
    CHECK(seen_dynamic[i] == 0.f);
  }
  float chunk = 1.f;
  for_column_chunks(
      4, [&](Eigen::Index, Eigen::Index) { chunk = denormal_times_one(); }, 8);
  CHECK(chunk == 0.f);
  CHECK(denormal_times_one() > 0.f);
  // switched off: gradual underflow inside the work too (the setting restored however the case ends)
  const OnExit restore_flush{[saved = flush_denormals()] { set_flush_denormals(saved); }};
  set_flush_denormals(false);
  parallel_for(2, 2, [&](Eigen::Index i) { seen[std::size_t(i)] = denormal_times_one(); });
  set_flush_denormals(true);
  CHECK(seen[0] > 0.f);
  CHECK(seen[1] > 0.f);
  // a guard inside the caller's own flushing mode leaves it on
  const unsigned before = _mm_getcsr();
  _mm_setcsr(before | 0x8040);
  { const FlushDenormals guard; }
  CHECK(denormal_times_one() == 0.f);
  _mm_setcsr(before);
}

#if defined(_OPENMP)
// What a raw OpenMP region (not prilo's helpers, which flush per item themselves: the BLAS's
// own threaded products) computes on each of its 2 threads.
std::vector<float> raw_region_products() {
  std::vector<float> seen(2, -1.f);
#pragma omp parallel num_threads(2)
  seen[std::size_t(omp_get_thread_num())] = denormal_times_one();
  return seen;
}

TEST_CASE("FlushDenormalsTeam: the OpenMP team flushes denormals while it lives, then every thread's mode is back") {
  REQUIRE(flush_denormals());
  // OpenMP's thread count and the flushing setting restored however the case ends
  const OnExit restore_threads{[saved = omp_get_max_threads()] { omp_set_num_threads(saved); }};
  const OnExit restore_flush{[saved = flush_denormals()] { set_flush_denormals(saved); }};
  omp_set_num_threads(2);
  REQUIRE(raw_region_products() == std::vector<float>(2, denormal_times_one()));  // gradual underflow
  REQUIRE(denormal_times_one() > 0.f);
  {
    const FlushDenormalsTeam guard;
    CHECK(denormal_times_one() == 0.f);
    CHECK(raw_region_products() == std::vector<float>(2, 0.f));
  }
  CHECK(denormal_times_one() > 0.f);
  CHECK(raw_region_products() == std::vector<float>(2, denormal_times_one()));
  // switched off: nothing changes
  set_flush_denormals(false);
  {
    const FlushDenormalsTeam guard;
    CHECK(raw_region_products() == std::vector<float>(2, denormal_times_one()));
  }
  set_flush_denormals(true);
  // inside a parallel region: the calling thread alone, restored after
  std::vector<float> inside(2, -1.f), after(2, -1.f);
#pragma omp parallel num_threads(2)
  {
    const std::size_t t = std::size_t(omp_get_thread_num());
    if (t == 1) {
      const FlushDenormalsTeam guard;
      inside[t] = denormal_times_one();
    } else {
      inside[t] = 1.f;
    }
#pragma omp barrier
    after[t] = denormal_times_one();
  }
  CHECK(inside[1] == 0.f);
  CHECK(after[0] > 0.f);
  CHECK(after[1] > 0.f);
}
#endif
#endif

}  // namespace prilo_test_column_blocks

// Benchmarks of single solver steps (DPR, PRILO step A, back-projection) and of MII scoring,
// against the bare matrix products of a DPR step.
//
// Methodology:
//  * Generator: prilo::nn::Vae<float>(784, 500, 100, 1).decoder(), randomly initialised (speed
//    does not depend on training). Operator: Fourier2d<float>(28, 28), unitary, FourierEngine::fftw
//    (FFTW's transforms in the loss; the _lanes row: FourierEngine::lanes); measurements
//    y = |F G(z_true)| of random latents; Adam with Welling–Teh noise (η = 0.02, γ = 0.55) and
//    the L1Ball projection (l1::newton), built by prilo::detail::make_adam exactly as the solvers
//    do. Every iteration is one step of the same code as detail::optimise_magnitude /
//    detail::back_project (the loop body copied, without the history recording):
//      dpr_step:       forward(0,3) + value_and_gradient + vjp_input + Adam step (ball r=100
//                      around 0, lr 0.1), at batch 1, 16, 1024;
//      prilo_step_a:   the same on z2 (forward(2,3), ball r=100 around the start z2, lr 0.05),
//                      batch 1024;
//      back_projection: forward(0,2), diff = z2(z0) − target, vjp_input(2·diff), Adam step
//                      (ball r=100 around 0, lr 0.1), batch 1024.
//    The optimiser state carries over between iterations (a long phase); z stays in the ball.
//  * mii_scores: decoder forward of 5000 N(0, I) latents in chunks of 1024 (MiiOptions::chunk)
//    + MagnitudeLoss::scores against 64 measurements, as in prilo::mii_latents without the
//    sampling and the sort; mii_latents: the complete prilo::mii_latents call (R = 1).
//  * Baseline gemm_dpr: the six bare products of a DPR step at the same batch (W1 z, W2 h1,
//    W3 h2, W3ᵀ g3, W2ᵀ g2, W1ᵀ g1) into preallocated matrices. ratio = wall time of the step /
//    that baseline's (same batch and threads), measured in the same run; ratio_cpu: the same
//    with process CPU time (robust on a loaded machine for single-thread rows); ratio_min:
//    alternating rounds of baseline and step after the timed loop, fastest round of each (robust
//    against other load: the headline figure; the optimiser state keeps advancing).
//  * gemm_dpr_packed / dpr_step_packed (builds with oneDNN, batch 1024): the same pair as the
//    programs run it: the decoder a copy with its weights packed (nn::Dense::pack_weights, as
//    OnHost hands it to the solvers), the six bare products through onednn::PackedWeights,
//    both under FlushDenormals (as prilo's parallel helpers and run_method run a solve); the
//    ratios against the packed products. dpr_step_packed_lanes: the same step with the loss on
//    FourierEngine::lanes (what FourierEngine::automatic, the default, takes for 28×28), ratios
//    against the same products.
//  * normal_block: Rng::normal_block, 512 N(0, 1) samples a call (items = samples).
//    adam_noise: the CPU executor's adam_update with gradient noise (σ = 0.01, each sample
//    drawn in the pass) on 3136 × 256 floats (a conv VAE's split point of 64 × 7 × 7 maps for
//    256 image-restarts); ratio_min: against the same update without noise (σ = 0: a pass
//    reading x, m, v, g and writing x, m, v), i.e. what the noise adds to the pass.
//  * Threads: 1 for everything, and 2 for the batched items (prilo::cpu::set_threads). Wall time.
// Run: OMP_NUM_THREADS=1 ./bench_solver
#include <prilo/backend/cpu.hpp>
#include <prilo/init/initialisers.hpp>
#include <prilo/nn/vae.hpp>
#include <prilo/operators.hpp>
#include <prilo/parallel.hpp>
#include <prilo/solvers/latent.hpp>

#include <benchmark/benchmark.h>

#include "timing.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace {

using namespace prilo_bench;

using T = float;
using Mat = prilo::Mat<T>;
using Index = Eigen::Index;
using Op = prilo::Fourier2d<T>;
using Loss = prilo::MagnitudeLoss<Op>;

constexpr Index kLatent = 100, kHidden = 500, kData = 784;

struct Model {
  prilo::nn::Vae<T> vae{kData, kHidden, kLatent, 1};
  Op op{28, 28, prilo::FourierScaling::unitary,
        prilo::FourierEngine::fftw};  // the rows' loss: FFTW's (automatic: lanes)
  Op lanes_op{28, 28, prilo::FourierScaling::unitary, prilo::FourierEngine::lanes};
};
Model& model() {
  static Model m;
  return m;
}
#if defined(PRILO_HAVE_ONEDNN)
/// A copy of the decoder with its weights packed, as OnHost hands it to the solvers.
const auto& packed_decoder() {
  static const auto d = [] {
    auto copy = model().vae.decoder();
    copy.pack_weights();
    return copy;
  }();
  return d;
}
#endif

/// Measurements of B random decoder outputs, and a loss over them.
struct Problem {
  Index batch;
  std::unique_ptr<Loss> loss, lanes_loss;
  Mat z0;  // a start
  explicit Problem(Index b) : batch(b) {
    Model& m = model();
    prilo::Rng rng(100 + std::uint64_t(b));
    const Mat truth = m.vae.decoder()(rng.normal_matrix<T>(kLatent, b));
    loss = std::make_unique<Loss>(m.op, prilo::measure(m.op, truth));
    lanes_loss = std::make_unique<Loss>(m.lanes_op, loss->measurements());
    z0 = rng.normal_matrix<T>(kLatent, b);
  }
};
Problem& problem(Index b) {
  static std::map<Index, std::unique_ptr<Problem>> cache;
  auto& slot = cache[b];
  if (!slot) slot = std::make_unique<Problem>(b);
  return *slot;
}

std::map<std::string, Times>& baseline_times() {
  static std::map<std::string, Times> m;
  return m;
}
std::string key(Index b, int t, bool packed) {
  std::string k = "b";  // appended step by step: GCC 12 warns falsely (-Wrestrict) on "b" + to_string(...)
  k += std::to_string(b);
  k += "/t";
  k += std::to_string(t);
  if (packed) k += "/packed";
  return k;
}
void set_ratio(benchmark::State& state, const Times& t, Index b, int threads, bool packed) {
  const auto it = baseline_times().find(key(b, threads, packed));
  if (it == baseline_times().end()) return;
  state.counters["ratio"] = t.wall / it->second.wall;
  state.counters["ratio_cpu"] = t.cpu / it->second.cpu;
}

prilo::NoiseOptions noise() {
  return {.enabled = true, .eta = 0.02, .gamma = 0.55};
}

/// The six bare products of one DPR step, into preallocated matrices.
struct GemmDpr {
  const Mat &w1, &w2, &w3;
  Mat z, g3, h1, h2, out, g2, g1, gz;
  explicit GemmDpr(Index b)
      : w1(model().vae.decoder().module<0>().weight()),
        w2(model().vae.decoder().module<1>().weight()),
        w3(model().vae.decoder().module<2>().weight()),
        h1(kHidden, b),
        h2(kHidden, b),
        out(kData, b),
        g2(kHidden, b),
        g1(kHidden, b),
        gz(kLatent, b) {
    prilo::Rng rng(5);
    z = rng.normal_matrix<T>(kLatent, b);
    g3 = rng.normal_matrix<T>(kData, b);
  }
  void operator()() {
    h1.noalias() = w1 * z;
    h2.noalias() = w2 * h1;
    out.noalias() = w3 * h2;
    g2.noalias() = w3.transpose() * g3;
    g1.noalias() = w2.transpose() * g2;
    gz.noalias() = w1.transpose() * g1;
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(gz.data());
    benchmark::ClobberMemory();
  }
};

#if defined(PRILO_HAVE_ONEDNN)
/// The same six products through the weights packed once (onednn::PackedWeights), as the
/// packed decoder runs them.
struct PackedGemmDpr {
  GemmDpr m;
  prilo::onednn::PackedWeights p1, p2, p3;
  explicit PackedGemmDpr(Index b) : m(b), p1(m.w1), p2(m.w2), p3(m.w3) {}
  void operator()() {
    p1.product(false, m.z, m.h1);
    p2.product(false, m.h1, m.h2);
    p3.product(false, m.h2, m.out);
    p3.product(true, m.g3, m.g2);
    p2.product(true, m.g2, m.g1);
    p1.product(true, m.g1, m.gz);
    benchmark::DoNotOptimize(m.out.data());
    benchmark::DoNotOptimize(m.gz.data());
    benchmark::ClobberMemory();
  }
};
#endif

/// Calls f with the six bare products of a DPR step at batch b: packed (PackedGemmDpr, builds
/// with oneDNN) or unpacked (GemmDpr, OpenBLAS through Eigen).
template <class F>
void with_gemm_dpr(Index b, [[maybe_unused]] bool packed, F&& f) {
#if defined(PRILO_HAVE_ONEDNN)
  if (packed) return f(PackedGemmDpr(b));
#endif
  f(GemmDpr(b));
}

/// The bare products, unpacked or packed (under FlushDenormals, as the programs run them).
void bm_gemm_dpr(benchmark::State& state, Index b, int t, bool packed) {
  prilo::cpu::set_threads(t);
  std::optional<prilo::FlushDenormals> flush;
  if (packed) flush.emplace();
  with_gemm_dpr(b, packed, [&](auto&& gemm) {
    const Times t0 = now();
    for (auto _ : state) gemm();
    baseline_times()[key(b, t, packed)] = per_iteration(state, t0);
  });
  state.SetItemsProcessed(state.iterations() * b);
}

/// One magnitude-loss step at split point `layer` (DPR: layer 0; PRILO step A: layer 2), the
/// body of detail::optimise_magnitude.
void bm_magnitude_step(benchmark::State& state, Index b, int t, int layer, bool packed = false, bool lanes = false) {
  prilo::cpu::set_threads(t);
#if defined(PRILO_HAVE_ONEDNN)
  const auto& gen = packed ? packed_decoder() : std::as_const(model().vae.decoder());
  std::optional<prilo::FlushDenormals> flush;
  if (packed) flush.emplace();
#else
  const auto& gen = std::as_const(model().vae.decoder());
#endif
  Problem& p = problem(b);
  prilo::Rng rng(11);
  const prilo::PhaseOptions<T> ph = layer == 0
                                        ? prilo::PhaseOptions<T>{.steps = 1000, .radius = 100, .learning_rate = T(0.1)}
                                        : prilo::PhaseOptions<T>{.steps = 300, .radius = 100, .learning_rate = T(0.05)};
  Mat z = layer == 0 ? p.z0 : gen.forward(0, layer, p.z0);
  const Mat centre = layer == 0 ? Mat(Mat::Zero(kLatent, 1)) : z;
  auto adam = prilo::detail::make_adam(ph, noise());
  typename std::remove_cvref_t<decltype(gen)>::trace_type tr;
  Mat gx, gz;
  prilo::Vec<T> l;
  auto step = [&] {
    gen.forward(layer, gen.depth(), z, tr);
    l = (lanes ? p.lanes_loss : p.loss)->value_and_gradient(tr.output(), gx);
    gz = gen.vjp_input(tr, gx);
    adam.step(z, gz, centre, rng);
  };
  step();  // warm-up: buffers, FFT plans
  const Times t0 = now();
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(z.data());
    benchmark::DoNotOptimize(l.data());
    benchmark::ClobberMemory();
  }
  const Times tm = per_iteration(state, t0);
  if (layer == 0) {
    set_ratio(state, tm, b, t, packed);
    with_gemm_dpr(b, packed,
                  [&](auto&& gemm) { state.counters["ratio_min"] = interleaved(gemm, step, tm.wall).ratio; });
  }
  state.SetItemsProcessed(state.iterations() * b);
}

/// One back-projection step onto z2 (the body of detail::back_project).
void bm_back_projection(benchmark::State& state, Index b, int t) {
  prilo::cpu::set_threads(t);
  auto& gen = model().vae.decoder();
  Problem& p = problem(b);
  prilo::Rng rng(13);
  constexpr int layer = 2;
  const Mat target = gen.forward(0, layer, rng.normal_matrix<T>(kLatent, b));
  Mat z0 = p.z0;
  const Mat zero = Mat::Zero(kLatent, 1);
  auto adam =
      prilo::detail::make_adam(prilo::PhaseOptions<T>{.steps = 100, .radius = 100, .learning_rate = T(0.1)}, noise());
  typename std::remove_cvref_t<decltype(gen)>::trace_type tr;
  Mat gz;
  auto step = [&] {
    gen.forward(0, layer, z0, tr);
    const Mat diff = tr.output() - target;
    gz = gen.vjp_input(tr, T(2) * diff);
    adam.step(z0, gz, zero, rng);
  };
  step();
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(z0.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * b);
}

constexpr Index kCandidates = 5000, kMiiBatch = 64;

/// Decoder forward of 5000 latents (chunks of 1024) + MagnitudeLoss::scores against 64 images.
void bm_mii_scores(benchmark::State& state, int t) {
  prilo::cpu::set_threads(t);
  auto& gen = model().vae.decoder();
  Problem& p = problem(kMiiBatch);
  prilo::Rng rng(17);
  const Mat cand = rng.normal_matrix<T>(kLatent, kCandidates);
  const Index chunk = prilo::MiiOptions{}.chunk;
  Mat s;
  for (auto _ : state) {
    s = prilo::mii_scores(gen, *p.loss, cand, chunk);  // decode in chunks of 1024 + score
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kCandidates * kMiiBatch);
}

/// The complete prilo::mii_latents (sampling, scoring, selection), R = 1.
void bm_mii_latents(benchmark::State& state, int t) {
  prilo::cpu::set_threads(t);
  auto& gen = model().vae.decoder();
  Problem& p = problem(kMiiBatch);
  prilo::Rng rng(19);
  for (auto _ : state) {
    Mat z = prilo::mii_latents(gen, *p.loss, 1, prilo::MiiOptions{.candidates = kCandidates}, rng);
    benchmark::DoNotOptimize(z.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kCandidates * kMiiBatch);
}

/// Rng::normal_block alone: 512 samples a call.
void bm_normal_block(benchmark::State& state) {
  prilo::Rng rng(23);
  alignas(64) float u[prilo::Rng::kNormalBlock];
  for (auto _ : state) {
    rng.normal_block(u, prilo::Rng::kNormalBlock);
    benchmark::DoNotOptimize(u);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * prilo::Rng::kNormalBlock);
}

/// adam_update with noise drawn in the pass, against the same pass without noise.
void bm_adam_noise(benchmark::State& state, Index rows, Index cols) {
  prilo::cpu::set_threads(1);
  const prilo::CpuExecutor ex;
  prilo::Rng rng(29);
  Mat x = rng.normal_matrix<T>(rows, cols), m = Mat::Zero(rows, cols), v = Mat::Zero(rows, cols);
  const Mat g = rng.normal_matrix<T>(rows, cols);
  Mat scratch;
  const prilo::AdamStep<T> c{
      .beta1 = T(0.9), .beta2 = T(0.999), .c1 = T(1), .c2 = T(1), .learning_rate = T(1e-3), .epsilon = T(1e-8)};
  auto noisy = [&] { prilo::adam_update(ex, x, m, v, g, c, T(0.01), rng, scratch); };
  auto plain = [&] { prilo::adam_update(ex, x, m, v, g, c, T(0), rng, scratch); };
  noisy();
  const Times t0 = now();
  for (auto _ : state) {
    noisy();
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  const Times tm = per_iteration(state, t0);
  state.counters["ratio_min"] = interleaved(plain, noisy, tm.wall).ratio;
  state.SetItemsProcessed(state.iterations() * rows * cols);
}

const bool registered = [] {
  benchmark::RegisterBenchmark("normal_block/512", bm_normal_block);
  benchmark::RegisterBenchmark("adam_noise/float/3136x256/t1", [](benchmark::State& s) {
    bm_adam_noise(s, 3136, 256);
  })->UseRealTime();
  for (int t : {1, 2}) {
    const std::string ts = "/t" + std::to_string(t);
    for (Index b : {Index(1), Index(16), Index(1024)}) {
      const std::string bs = "/float/b" + std::to_string(b) + ts;
      benchmark::RegisterBenchmark(("gemm_dpr" + bs).c_str(), [b, t](benchmark::State& s) {
        bm_gemm_dpr(s, b, t, false);
      })->UseRealTime();
      benchmark::RegisterBenchmark(("dpr_step" + bs).c_str(), [b, t](benchmark::State& s) {
        bm_magnitude_step(s, b, t, 0);
      })->UseRealTime();
    }
    const std::string bs = "/float/b1024" + ts;
#if defined(PRILO_HAVE_ONEDNN)
    benchmark::RegisterBenchmark(("gemm_dpr_packed" + bs).c_str(), [t](benchmark::State& s) {
      bm_gemm_dpr(s, 1024, t, true);
    })->UseRealTime();
    benchmark::RegisterBenchmark(("dpr_step_packed" + bs).c_str(), [t](benchmark::State& s) {
      bm_magnitude_step(s, 1024, t, 0, true);
    })->UseRealTime();
    benchmark::RegisterBenchmark(("dpr_step_packed_lanes" + bs).c_str(), [t](benchmark::State& s) {
      bm_magnitude_step(s, 1024, t, 0, true, true);
    })->UseRealTime();
#endif
    benchmark::RegisterBenchmark(("prilo_step_a_z2" + bs).c_str(), [t](benchmark::State& s) {
      bm_magnitude_step(s, 1024, t, 2);
    })->UseRealTime();
    benchmark::RegisterBenchmark(("back_projection_z2" + bs).c_str(), [t](benchmark::State& s) {
      bm_back_projection(s, 1024, t);
    })->UseRealTime();
    const std::string ms = "/float/p5000_b64" + ts;
    benchmark::RegisterBenchmark(("mii_scores" + ms).c_str(), [t](benchmark::State& s) { bm_mii_scores(s, t); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("mii_latents" + ms).c_str(), [t](benchmark::State& s) { bm_mii_latents(s, t); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

// Benchmarks of the convolution layers (nn/conv.hpp) at the shapes of the conv VAE on 28×28
// images, batch 256, float, against their floor: the bare im2col/col2im and GEMMs of the same
// shapes.
//
// Methodology:
//  * Layers (k = 4, s = 2, p = 1, as the DCGAN-like encoder and decoder of issue 12):
//      enc1  Conv2d<LeakyRelu>           1×28×28 → 32×14×14
//      enc2  Conv2d<LeakyRelu>          32×14×14 → 64×7×7
//      dec1  ConvTranspose2d<Relu>       64×7×7  → 32×14×14
//      dec2  ConvTranspose2d<Sigmoid>   32×14×14 → 1×28×28
//    random PyTorch-like weights, inputs N(0, 1), output cotangents N(0, 1).
//  * Work: forward (layer.forward); vjp_input (forward + backward_input, the solvers' step);
//    train (forward + backward with the input cotangent and the weight gradients).
//  * Floor "im2col_gemm": the bare computation of the same work on the whole batch at once,
//    with operands already in the layers' interleaved layout (nn::conv_detail: the batch as
//    one block, the sample index innermost; (batch·pixels) × channels), no bias, no
//    activation, no layout copies:
//      Conv2d           forward  A = im2col(x), Y = A·W;
//                       input    + B = G·Wᵀ, col2im(B);   train  + ∂W = Aᵀ·G
//      ConvTranspose2d  forward  B = X·Wᵀ, col2im(B);
//                       input    + A = im2col(G), Gx = A·W;   train  + ∂W = Aᵀ·X
//    im2col and col2im are nn::conv_detail's (one thread); the GEMMs are Eigen products
//    (OpenBLAS with EIGEN_USE_BLAS) on the thread count of the row.
//    Floor "gemm": the same GEMMs alone.
//  * Counters: ratio = wall time per iteration / the im2col_gemm floor's, ratio_gemm = the
//    same against the gemm floor (both floors run right before the layer in the same
//    process); ratio_min = fastest of 15 interleaved rounds of layer and im2col_gemm floor
//    (robust against other load: the headline figure); ratio_cpu = the same as ratio with
//    process CPU time; GFLOPS counts the GEMMs' 2·m·n·k.
//  * PRILO_CONV_BLOCK=n (environment) sets the layers' samples per block (default: chosen
//    by the layer), to compare block sizes; PRILO_CONV_ALGORITHM=im2col_gemm|direct how the
//    Conv2d layers compute (nn::ConvAlgorithm; default automatic: enc1 direct, enc2 im2col_gemm).
//  * Threads 1 and 2 (prilo::cpu::set_threads: OpenMP and Eigen); wall-clock times.
//  * conv_decoder/…: the conv VAE's whole decoder (nn::ConvVae, batch 256), the items that
//    benchmarks/compare_pytorch.py times PyTorch on.
//  * conv_algorithm/…: a Conv2d from C_in = 1–4 channels by the direct kernels, with
//    `direct_over_gemm` (interleaved fastest rounds against the same layer by im2col + GEMM).
//  * modulate/…: the style VAE's modulations (act(u ⊙ (1 + γ(z0)) + β(z0)) per channel: the
//    hidden ones nn::Modulate<LeakyRelu> with z0 of 100 rows carried, the image's
//    nn::Modulate<Sigmoid, false>), forward and forward + input VJP at batch 256, one thread;
//    GB_per_s counts the features read and written once per pass.
// Run: OMP_NUM_THREADS=1 ./bench_conv
#include <prilo/backend/cpu.hpp>
#include <prilo/nn/conv.hpp>
#include <prilo/nn/conv_vae.hpp>
#include <prilo/nn/style.hpp>
#include <prilo/random.hpp>

#include <benchmark/benchmark.h>

#include "conv_workloads.hpp"
#include "timing.hpp"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

namespace {

using namespace prilo_bench;
namespace cd = prilo::nn::conv_detail;

using T = float;
using Mat = prilo::Mat<T>;
using Index = Eigen::Index;
using prilo::nn::Shape3;

constexpr Index kBatch = 256;

enum class Work { forward, vjp_input, train };
const char* name(Work w) {
  return w == Work::forward ? "forward" : (w == Work::vjp_input ? "vjp_input" : "train");
}
double products(Work w) {  // GEMMs per pass
  return w == Work::forward ? 1 : (w == Work::vjp_input ? 2 : 3);
}

Index block_from_env() {
  const char* e = std::getenv("PRILO_CONV_BLOCK");
  return e ? std::atol(e) : 0;
}
/// PRILO_CONV_ALGORITHM=im2col_gemm|direct (default automatic): how the Conv2d layers compute.
prilo::nn::ConvAlgorithm algorithm_from_env() {
  const char* e = std::getenv("PRILO_CONV_ALGORITHM");
  const std::string v = e ? e : "automatic";
  if (v == "im2col_gemm") return prilo::nn::ConvAlgorithm::im2col_gemm;
  if (v == "direct") return prilo::nn::ConvAlgorithm::direct;
  if (v != "automatic") {
    std::fprintf(stderr, "bench_conv: PRILO_CONV_ALGORITHM must be automatic, im2col_gemm or direct, got '%s'\n", e);
    std::exit(2);
  }
  return prilo::nn::ConvAlgorithm::automatic;
}

/// One pass of a layer as the benchmarks time it: forward, then the input VJP (vjp_input) or
/// both VJPs (train), its results kept from being optimised away.
template <class Layer>
void layer_pass(Layer& l, Work w, const Mat& x, Mat& y, const Mat& gy, Mat& gx, Mat& work) {
  l.forward(x, y);
  if (w == Work::vjp_input) l.backward_input(x, y, gy, gx, work);
  if (w == Work::train) l.backward(x, y, gy, &gx, true);
  benchmark::DoNotOptimize(y.data());
  benchmark::DoNotOptimize(gx.data());
  benchmark::ClobberMemory();
}

/// One benchmarked layer with its buffers and the buffers of its floor.
struct Case {
  std::string label;
  double flop_forward = 0;                // one GEMM over the batch
  std::function<void(Work)> layer;        // the layer's pass
  std::function<void(Work, bool)> floor;  // the floor's pass (true: with im2col/col2im)
};

struct ConvCase {
  prilo::nn::Conv2d<T, prilo::nn::LeakyRelu> conv;
  cd::Geometry g;
  Mat x, y, gy, gx, work;
  Mat a, yb, gb, bb, gxf, gw;
  ConvCase(Shape3 in, Index co, prilo::Rng& rng) : conv(in, co, 4, 2, 1, rng) {
    conv.set_block_samples(block_from_env());
    conv.set_algorithm(algorithm_from_env());
    const Shape3 out = conv.output_shape();
    g.in = in;
    g.k = 4;
    g.s = 2;
    g.p = 1;
    g.out_h = out.height;
    g.out_w = out.width;
    x = rng.normal_matrix<T>(in.size(), kBatch);
    gy = rng.normal_matrix<T>(out.size(), kBatch);
    const Index R = kBatch * out.pixels();
    a = Mat::Zero(R, g.patch());
    yb = Mat(R, co);
    gb = rng.normal_matrix<T>(R, co);
    bb = Mat(R, g.patch());
    gxf = Mat(in.size(), kBatch);
    gw = Mat::Zero(g.patch(), co);
  }
  void layer(Work w) { layer_pass(conv, w, x, y, gy, gx, work); }
  void floor(Work w, bool with_im2col) {
    if (with_im2col) cd::im2col(g, x.data(), kBatch, a.data());
    yb.noalias() = a * conv.weight();
    if (w != Work::forward) {
      bb.noalias() = gb * conv.weight().transpose();
      if (with_im2col) {
        gxf.setZero();
        cd::col2im_add(g, bb.data(), kBatch, gxf.data());
      }
    }
    if (w == Work::train) gw.noalias() += a.transpose() * gb;
    benchmark::DoNotOptimize(yb.data());
    benchmark::DoNotOptimize(gxf.data());
    benchmark::ClobberMemory();
  }
};

template <class Act>
struct TransposedCase {
  prilo::nn::ConvTranspose2d<T, Act> tc;
  cd::Geometry g;  // the adjoint convolution
  Mat x, y, gy, gx, work;
  Mat xs, bb, yf, a, gxs, gw;
  TransposedCase(Shape3 in, Index co, prilo::Rng& rng) : tc(in, co, 4, 2, 1, 0, rng) {
    tc.set_block_samples(block_from_env());
    tc.set_algorithm(algorithm_from_env());
    const Shape3 out = tc.output_shape();
    g.in = out;
    g.k = 4;
    g.s = 2;
    g.p = 1;
    g.out_h = in.height;
    g.out_w = in.width;
    x = rng.normal_matrix<T>(in.size(), kBatch);
    gy = rng.normal_matrix<T>(out.size(), kBatch);
    const Index R = kBatch * in.pixels();
    xs = rng.normal_matrix<T>(R, in.channels);
    bb = Mat(R, g.patch());
    yf = Mat(out.size(), kBatch);
    a = Mat::Zero(R, g.patch());
    gxs = Mat(R, in.channels);
    gw = Mat::Zero(g.patch(), in.channels);
  }
  void layer(Work w) { layer_pass(tc, w, x, y, gy, gx, work); }
  void floor(Work w, bool with_im2col) {
    bb.noalias() = xs * tc.weight().transpose();
    if (with_im2col) {
      yf.setZero();
      cd::col2im_add(g, bb.data(), kBatch, yf.data());
    }
    if (w != Work::forward) {
      if (with_im2col) cd::im2col(g, gy.data(), kBatch, a.data());
      gxs.noalias() = a * tc.weight();
    }
    if (w == Work::train) gw.noalias() += a.transpose() * xs;
    benchmark::DoNotOptimize(yf.data());
    benchmark::DoNotOptimize(gxs.data());
    benchmark::ClobberMemory();
  }
};

std::vector<Case>& cases() {
  static std::vector<Case> c = [] {
    prilo::Rng rng(5);
    std::vector<Case> v;
    auto conv = [&](const char* label, Shape3 in, Index co) {
      auto s = std::make_shared<ConvCase>(in, co, rng);
      v.push_back({label, kBatch * s->conv.flops_per_sample(), [s](Work w) { s->layer(w); },
                   [s](Work w, bool i) { s->floor(w, i); }});
    };
    auto transposed = [&](const char* label, Shape3 in, Index co, auto act) {
      using A = decltype(act);
      auto s = std::make_shared<TransposedCase<A>>(in, co, rng);
      v.push_back({label, kBatch * s->tc.flops_per_sample(), [s](Work w) { s->layer(w); },
                   [s](Work w, bool i) { s->floor(w, i); }});
    };
    conv("enc1_conv_1x28x28_to_32x14x14", {1, 28, 28}, 32);
    conv("enc2_conv_32x14x14_to_64x7x7", {32, 14, 14}, 64);
    transposed("dec1_convT_64x7x7_to_32x14x14", {64, 7, 7}, 32, prilo::nn::Relu{});
    transposed("dec2_convT_32x14x14_to_1x28x28", {32, 14, 14}, 1, prilo::nn::Sigmoid{});
    return v;
  }();
  return c;
}

std::map<std::string, Times>& floor_times() {
  static std::map<std::string, Times> m;
  return m;
}
std::string key(std::size_t c, Work w, int threads, bool im2col) {
  return std::to_string(c) + name(w) + std::to_string(threads) + (im2col ? "i" : "g");
}

void bm_floor(benchmark::State& state, std::size_t c, Work w, int threads, bool im2col) {
  prilo::cpu::set_threads(threads);
  Case& cs = cases()[c];
  cs.floor(w, im2col);  // warm-up
  const Times t0 = now();
  for (auto _ : state) cs.floor(w, im2col);
  const Times t = per_iteration(state, t0);
  floor_times()[key(c, w, threads, im2col)] = t;
  state.counters["GFLOPS"] = products(w) * cs.flop_forward / t.wall / 1e9;
}

void bm_layer(benchmark::State& state, std::size_t c, Work w, int threads) {
  prilo::cpu::set_threads(threads);
  Case& cs = cases()[c];
  cs.layer(w);  // warm-up: buffers
  const Times t0 = now();
  for (auto _ : state) cs.layer(w);
  const Times t = per_iteration(state, t0);
  state.counters["GFLOPS"] = products(w) * cs.flop_forward / t.wall / 1e9;
  const auto fi = floor_times().find(key(c, w, threads, true));
  const auto fg = floor_times().find(key(c, w, threads, false));
  if (fg != floor_times().end()) state.counters["ratio_gemm"] = t.wall / fg->second.wall;
  if (fi != floor_times().end()) {
    state.counters["ratio"] = t.wall / fi->second.wall;
    state.counters["ratio_cpu"] = t.cpu / fi->second.cpu;
    const Interleaved r = interleaved([&] { cs.floor(w, true); }, [&] { cs.layer(w); }, t.wall);
    state.counters["ratio_min"] = r.ratio;
    state.counters["GFLOPS_best"] = products(w) * cs.flop_forward / r.fn / 1e9;
  }
}

/// The same Conv2d<LeakyRelu> (C_in×28×28 → C_out×14×14, k 4, s 2, p 1, batch 256) by both CPU
/// algorithms (nn::ConvAlgorithm): the timed loop is the direct kernels; `direct_over_gemm` is
/// the fastest-round ratio of 15 interleaved rounds against im2col + GEMM (below 1: direct
/// faster). Where the automatic choice's threshold (C_in·k² ≤ 32) comes from.
void bm_algorithms(benchmark::State& state, Index cin, Index cout, Work w, int threads) {
  prilo::cpu::set_threads(threads);
  prilo::Rng rng(7);
  prilo::nn::Conv2d<T, prilo::nn::LeakyRelu> direct({cin, 28, 28}, cout, 4, 2, 1, rng);
  auto gemm = direct;
  direct.set_algorithm(prilo::nn::ConvAlgorithm::direct);
  gemm.set_algorithm(prilo::nn::ConvAlgorithm::im2col_gemm);
  const Mat x = rng.normal_matrix<T>(direct.input_size(), kBatch);
  Mat y, gx, work;
  direct.forward(x, y);
  const Mat gy = rng.normal_matrix<T>(y.rows(), kBatch);
  auto run = [&](prilo::nn::Conv2d<T, prilo::nn::LeakyRelu>& c) { layer_pass(c, w, x, y, gy, gx, work); };
  run(direct);
  run(gemm);
  const Times t0 = now();
  for (auto _ : state) run(direct);
  const Times t = per_iteration(state, t0);
  state.counters["GFLOPS"] = products(w) * kBatch * direct.flops_per_sample() / t.wall / 1e9;
  state.counters["direct_over_gemm"] = interleaved([&] { run(gemm); }, [&] { run(direct); }, t.wall).ratio;
}

/// The style VAE's modulation of C channels × P pixels (z0: 100 rows), batch 256, one thread:
/// forward, or forward + input VJP. Act and Carry as nn::Modulate's (the hidden modulations:
/// LeakyReLU, z0 carried; the image's: the sigmoid, z0 dropped).
template <class Act, bool Carry>
void bm_modulate(benchmark::State& state, Index channels, Index pixels, bool vjp) {
  prilo::cpu::set_threads(1);
  constexpr Index d = 100;
  prilo::Rng rng(43);
  const prilo::nn::Modulate<T, Act, Carry> m(channels, pixels, d, rng);
  const Mat x = rng.normal_matrix<T>(channels * pixels + d, kBatch);
  const Mat gy = rng.normal_matrix<T>(m.output_size(x.rows()), kBatch);
  Mat y, gx, work;
  const auto pass = [&] {
    m.forward(x, y);
    if (vjp) m.backward_input(x, y, gy, gx, work);
  };
  pass();
  for (auto _ : state) {
    pass();
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  // features read and written: forward u → y; the VJP reads gy, y and u and writes gx
  const double values = double(channels * pixels) * kBatch * (vjp ? 6 : 2);
  state.counters["GB_per_s"] = benchmark::Counter(values * sizeof(T), benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
}

const bool registered = [] {
  for (auto [c, p, label] : {std::tuple<Index, Index, const char*>{64, 49, "m0_64x7x7"},
                             {32, 196, "m1_32x14x14"},
                             {1, 784, "m2_1x28x28_sigmoid"}})
    for (bool vjp : {false, true})
      benchmark::RegisterBenchmark(
          ("modulate/" + std::string(label) + (vjp ? "/vjp_input" : "/forward") + "/float/b256/t1").c_str(),
          [c = c, p = p, vjp](benchmark::State& s) {
            if (c == 1)
              bm_modulate<prilo::nn::Sigmoid, false>(s, c, p, vjp);
            else
              bm_modulate<prilo::nn::LeakyRelu, true>(s, c, p, vjp);
          })
          ->UseRealTime();
  for (int t : {1, 2}) {
    const std::string ts = "/t" + std::to_string(t);
    for (const char* w : {"forward", "vjp_input", "vjp_weights"})
      benchmark::RegisterBenchmark(("conv_decoder/" + std::string(w) + "/float/b256" + ts).c_str(),
                                   [w, t](benchmark::State& s) { conv_decoder(s, w, t); })
          ->UseRealTime();
    for (auto [cin, cout] : {std::pair<Index, Index>{1, 32}, {2, 32}, {3, 32}, {4, 64}})
      for (Work w : {Work::forward, Work::vjp_input, Work::train})
        benchmark::RegisterBenchmark(("conv_algorithm/c" + std::to_string(cin) + "x28x28_to_" + std::to_string(cout) +
                                      "/" + name(w) + "/float/b256" + ts)
                                         .c_str(),
                                     [cin, cout, w, t](benchmark::State& s) { bm_algorithms(s, cin, cout, w, t); })
            ->UseRealTime();
    for (std::size_t c = 0; c < cases().size(); ++c)
      for (Work w : {Work::forward, Work::vjp_input, Work::train}) {
        const std::string suffix = "/" + cases()[c].label + "/" + name(w) + "/float/b256" + ts;
        benchmark::RegisterBenchmark(("floor_gemm" + suffix).c_str(), [c, w, t](benchmark::State& s) {
          bm_floor(s, c, w, t, false);
        })->UseRealTime();
        benchmark::RegisterBenchmark(("floor_im2col_gemm" + suffix).c_str(), [c, w, t](benchmark::State& s) {
          bm_floor(s, c, w, t, true);
        })->UseRealTime();
        benchmark::RegisterBenchmark(("layer" + suffix).c_str(), [c, w, t](benchmark::State& s) {
          bm_layer(s, c, w, t);
        })->UseRealTime();
      }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

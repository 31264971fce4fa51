// Google Benchmark of the CUDA backend's kernels, timed with CUDA events (manual time: only
// the GPU work between the two events counts; input resets happen outside them).
//   * l1-ball projection, batch 1024 × n = 500, radius 0.1·‖x‖₁ per column;
//   * fused DFT magnitude loss + gradient (R2C, kernel, C2R): 28×28 and 256×256 images;
//   * MLP 100-500-500-784 (ReLU, ReLU, sigmoid): forward, and forward + backward, batch 1024;
//   * one Adam step with Welling–Teh noise followed by the l1 projection, batch 1024;
//   * the conv VAE's decoder (gpu::Sequential uploaded from nn::ConvVae's: dense 100 → 64×7×7,
//     ConvTranspose2d to 32×14×14 and 1×28×28) at batch 256: forward, forward + input VJP,
//     forward + input and weight VJPs (bench_conv's conv_decoder items on the GPU).
// Without a usable CUDA device the program prints a message and exits with status 0.
// Run: ./prilo_cuda_bench --benchmark_filter=l1   (any Google Benchmark flag)
#include <prilo/backend/cuda.cuh>
#include <prilo/nn/conv_vae.hpp>
#include <prilo/random.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <vector>

namespace {

using prilo::Mat;
using prilo::gpu::DeviceMatrix;
using prilo::gpu::EventTimer;

template <class T>
Mat<T> randn(Eigen::Index r, Eigen::Index c, std::uint64_t seed, double sigma = 1.0) {
  prilo::Rng rng(seed);
  return rng.normal_matrix<T>(r, c, sigma);
}

template <class T>
void BM_l1_project(benchmark::State& state) {
  const Eigen::Index n = state.range(0), batch = state.range(1);
  const Mat<T> x = randn<T>(n, batch, 1);
  const T radius = T(0.1) * T(x.cwiseAbs().colwise().sum().mean());
  const DeviceMatrix<T> x0(x), centre = DeviceMatrix<T>::zeros(n, 1);
  DeviceMatrix<T> work(n, batch);
  const prilo::gpu::L1Ball<T> proj{.radius = radius};
  EventTimer timer;
  for (auto _ : state) {
    work.copy_from(x0);
    timer.start();
    proj.project(work, centre);
    state.SetIterationTime(timer.stop());
  }
  state.SetItemsProcessed(state.iterations() * n * batch);
  state.SetBytesProcessed(state.iterations() * n * batch * Eigen::Index(sizeof(T)));
}

template <class T>
void BM_fft_loss_grad(benchmark::State& state) {
  const int h = int(state.range(0)), w = int(state.range(1));
  const Eigen::Index batch = state.range(2), n = Eigen::Index(h) * w;
  prilo::gpu::Fourier2d<T> op(h, w);
  // measurements of other random images, generated on the device side via the loss itself
  DeviceMatrix<T> y = DeviceMatrix<T>::zeros(n, batch);
  prilo::gpu::fill(y, T(1));
  prilo::gpu::MagnitudeLoss<T> loss(op, std::move(y));
  const DeviceMatrix<T> x(randn<T>(n, batch, 2));
  DeviceMatrix<T> grad, value;
  loss.value_and_gradient(x, grad, value);  // creates the plans
  EventTimer timer;
  for (auto _ : state) {
    timer.start();
    loss.value_and_gradient(x, grad, value);
    state.SetIterationTime(timer.stop());
  }
  state.SetItemsProcessed(state.iterations() * batch);  // images
}

struct Mlp {
  prilo::gpu::Dense<float, prilo::nn::Relu> l1, l2;
  prilo::gpu::Dense<float, prilo::nn::Sigmoid> l3;
  DeviceMatrix<float> h1, h2, out, g2, g1, g0;
  explicit Mlp(prilo::Rng& rng) : l1(100, 500, rng), l2(500, 500, rng), l3(500, 784, rng) {}
  void forward(const DeviceMatrix<float>& z) {
    l1.forward(z, h1);
    l2.forward(h1, h2);
    l3.forward(h2, out);
  }
  void backward(const DeviceMatrix<float>& z, const DeviceMatrix<float>& gout, bool weights) {
    l3.backward(h2, out, gout, &g2, weights);
    l2.backward(h1, h2, g2, &g1, weights);
    l1.backward(z, h1, g1, &g0, weights);
  }
};

void BM_mlp(benchmark::State& state) {
  const Eigen::Index batch = state.range(0);
  const bool backward = state.range(1) != 0;
  prilo::Rng rng(3);
  Mlp mlp(rng);
  const DeviceMatrix<float> z(randn<float>(100, batch, 4)), gout(randn<float>(784, batch, 5));
  mlp.forward(z);
  EventTimer timer;
  for (auto _ : state) {
    timer.start();
    mlp.forward(z);
    if (backward) mlp.backward(z, gout, true);
    state.SetIterationTime(timer.stop());
  }
  const double flops = 2.0 * double(batch) * (100 * 500 + 500 * 500 + 500 * 784) * (backward ? 3 : 1);
  state.counters["FLOP/s"] = benchmark::Counter(flops * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_adam_l1_step(benchmark::State& state) {
  const Eigen::Index n = state.range(0), batch = state.range(1);
  DeviceMatrix<float> x(randn<float>(n, batch, 6)), g(randn<float>(n, batch, 7));
  const DeviceMatrix<float> centre = DeviceMatrix<float>::zeros(n, 1);
  prilo::gpu::Adam<float, prilo::gpu::L1Ball<float>, prilo::WellingTeh> adam(
      {.learning_rate = 0.01f}, prilo::gpu::L1Ball<float>{.radius = 0.1f * float(n)}, prilo::WellingTeh{});
  prilo::Rng rng(8);  // keys the device Philox stream
  adam.step(x, g, centre, rng);
  EventTimer timer;
  for (auto _ : state) {
    timer.start();
    adam.step(x, g, centre, rng);
    state.SetIterationTime(timer.stop());
  }
  state.SetItemsProcessed(state.iterations() * n * batch);
}

/// The conv VAE's whole decoder on the device, batch 256 (range 0): range 1 = 0 forward, 1
/// forward + input VJP (the solvers' step), 2 forward + input and weight VJPs (training).
void BM_conv_decoder(benchmark::State& state) {
  const Eigen::Index batch = state.range(0);
  const int work = int(state.range(1));
  const prilo::nn::ConvVae<float> vae(prilo::nn::ConvVaeSizes{}, 3);
  prilo::gpu::Sequential dec(vae.decoder());
  const DeviceMatrix<float> z(randn<float>(100, batch, 4)), gy(randn<float>(784, batch, 5));
  prilo::gpu::Trace<float> tr;
  auto run = [&] {
    dec.forward(0, dec.depth(), z, tr);
    if (work == 1) benchmark::DoNotOptimize(dec.vjp_input(tr, gy));
    if (work == 2) benchmark::DoNotOptimize(dec.vjp_weights(tr, gy));
  };
  run();
  EventTimer timer;
  for (auto _ : state) {
    timer.start();
    run();
    state.SetIterationTime(timer.stop());
  }
  const double flops = dec.flops(0, dec.depth()) * double(batch) * (work + 1);
  state.counters["FLOP/s"] = benchmark::Counter(flops * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace

BENCHMARK(BM_l1_project<float>)->Args({500, 1024})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_l1_project<double>)->Args({500, 1024})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_fft_loss_grad<float>)
    ->Args({28, 28, 1024})
    ->Args({256, 256, 64})
    ->Args({256, 256, 1024})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_fft_loss_grad<double>)
    ->Args({28, 28, 1024})
    ->Args({256, 256, 64})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mlp)
    ->ArgNames({"batch", "backward"})
    ->Args({1024, 0})
    ->Args({1024, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_adam_l1_step)->Args({100, 1024})->Args({500, 1024})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_conv_decoder)
    ->ArgNames({"batch", "work"})
    ->Args({256, 0})
    ->Args({256, 1})
    ->Args({256, 2})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  if (prilo::gpu::device_count() <= 0) {
    std::printf("prilo CUDA benchmarks: no CUDA device found, skipping\n");
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

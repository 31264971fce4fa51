// Uses the installed headers: DFT magnitudes of an image, the loss at the truth, and a short
// DPR run split into column blocks (the README's usage).
#include <cstdio>
#include <prilo/prilo.hpp>

int main() {
  using namespace prilo;
  Rng rng(1);
  Fourier2d<double> F(8, 8);
  Mat<double> x = rng.normal_matrix<double>(64, 32).cwiseAbs();
  MagnitudeLoss<Fourier2d<double>> loss(F, measure(F, x));
  const double v = loss.value(x).sum();
  std::printf("prilo consumer: loss at the truth %.3g\n", v);

  const nn::Vae<double> vae(64, 16, 4, 2);
  DprOptions<double> opt;
  opt.phase.steps = 20;
  const Mat<double> z0 = random_latents(vae.decoder(), 32, rng);
  const SolveResult<double> r = solve_column_blocks(
      loss, z0, rng,
      [&](const auto& block_loss, Mat<double> z, Rng& g, const ColumnBlock&) {
        return dpr(vae.decoder(), block_loss, std::move(z), opt, g);
      },
      {.blocks = 2});
  std::printf("prilo consumer: DPR on 2 column blocks, %ld images, mean magnitude error %.3g\n", long(r.x.cols()),
              r.magnitude_error.mean());
  return v < 1e-20 && r.x.cols() == 32 && r.magnitude_error.allFinite() ? 0 : 1;
}

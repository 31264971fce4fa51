// Uses the installed headers: DFT magnitudes of an image, the loss at the truth, a short
// DPR run split into column blocks, and the README's pipeline calls (chained PRILO-MII with
// restarts, HIO, resolve).
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
  const SolveResult<double> r =
      solve_column_blocks(loss, z0, rng,
                          [&](const auto& block_loss, Mat<double> z, Rng& g, const ColumnBlock&) {
                            return dpr(vae.decoder(), block_loss, std::move(z), opt, g);
                          },
                          {.blocks = 2});
  std::printf("prilo consumer: DPR on 2 column blocks, %ld images, mean magnitude error %.3g\n", long(r.x.cols()),
              r.magnitude_error.mean());

  // the README's usage: chained PRILO-MII with restarts, HIO, -resolve
  PriloOptions<double> po{.initial = {.steps = 10, .radius = 100, .learning_rate = 0.3},
                          .reading = PriloReading::chained};
  po.stages = {
      PriloStage<double>{.layer = 1, .forward = {.steps = 10, .radius = 50, .learning_rate = 0.3}},
      PriloStage<double>{.layer = 2, .repetitions = 2, .forward = {.steps = 10, .radius = 100, .learning_rate = 0.3}}};
  const Mat<double> y = measure(F, x);
  RestartResult<double> p = reconstruct_prilo(vae.decoder(), F, y, LatentStart::mii, MiiOptions{.candidates = 100}, po,
                                              rng, RestartOptions{.restarts = 2});
  FienupOptions<double> fo;
  fo.iterations = 20;
  fo.final_er = 5;  // HIO steps, then ER
  RestartResult<double> h = reconstruct_fienup(F, y, true, fo, rng, RestartOptions{.restarts = 2});
  SolveResult<double> s =
      resolve(vae, F, y, {&p.best.x, &h.best.x}, ResolveOptions{.consistency_threshold = 1e-6, .placement_weight = 10});
  std::printf("prilo consumer: chained PRILO-MII %zu phases, resolve mean magnitude error %.3g\n", p.best.phases.size(),
              s.magnitude_error.mean());
  return v < 1e-20 && r.x.cols() == 32 && r.magnitude_error.allFinite() && p.best.phases.size() == 4 &&
                 s.magnitude_error.allFinite()
             ? 0
             : 1;
}

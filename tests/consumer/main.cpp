// Uses the installed headers: DFT magnitudes of an image and the loss at the truth.
#include <cstdio>
#include <prilo/prilo.hpp>

int main() {
  prilo::Rng rng(1);
  prilo::Fourier2d<double> F(8, 8);
  prilo::Mat<double> x = rng.normal_matrix<double>(64, 2);
  prilo::MagnitudeLoss<prilo::Fourier2d<double>> loss(F, prilo::measure(F, x));
  const double v = loss.value(x).sum();
  std::printf("prilo consumer: loss at the truth %.3g\n", v);
  return v < 1e-20 ? 0 : 1;
}

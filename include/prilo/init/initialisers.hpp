// Initialisations of the latent z0: random, and the magnitude-informed initialisation (MII).
#pragma once

#include <algorithm>
#include <numeric>
#include <type_traits>

#include "../concepts/generator.hpp"
#include "../exec/executor.hpp"
#include "../random.hpp"

namespace prilo {

/// z0 ~ N(0, I): `cols` independent standard-normal latents.
template <Generator G, class T = typename G::scalar>
Mat<T> random_latents(const G& gen, Eigen::Index cols, Rng& rng) {
  if (cols < 0) detail::fail("random_latents: the number of latents must be >= 0, got ", cols);
  return rng.normal_matrix<T>(gen.dim(0), cols);
}

struct MiiOptions {
  Eigen::Index candidates = 5000;  ///< p, the number of sampled latents
  Eigen::Index chunk = 1024;       ///< candidates scored per block (bounds memory)
};

namespace detail {
/// MII's checks before any work: the chunk, and the generator's images against the loss's
/// operator (where the loss names it).
template <class G, class Loss>
void check_mii(const G& gen, const Loss& loss, Eigen::Index chunk) {
  if (chunk < 1) fail("mii: chunk must be >= 1, got ", chunk);
  if constexpr (requires { loss.op().input_size(); })
    if (gen.dim(gen.depth()) != loss.op().input_size())
      fail("mii: the generator makes images of ", gen.dim(gen.depth()), " values, the loss's operator takes ",
           loss.op().input_size());
}
}  // namespace detail

/// S(c, j) = ‖|A G(z_c)| − y_j‖² for every candidate latent z_c (columns of `candidates`)
/// against every measurement column of `loss`: the candidates are decoded `chunk` at a time
/// (bounding memory) into buffers reused from chunk to chunk, and scored by
/// MagnitudeLoss::scores. The p×B matrix that MII selects from. `candidates` may be any
/// expression of the generator's scalar (evaluated once).
template <Generator G, class Loss, class T = typename G::scalar>
Mat<T> mii_scores(const G& gen, const Loss& loss, const std::type_identity_t<Mat<T>>& candidates,
                  Eigen::Index chunk = 1024) {
  detail::check_mii(gen, loss, chunk);
  require_shape(candidates, gen.dim(0), candidates.cols(), "mii candidates");
  static_assert(
      requires(const generator_matrix_t<G>& x) {
        { loss.scores(x) } -> std::convertible_to<Mat<T>>;
      },
      "mii: the loss needs scores(images) -> host p x B matrix of magnitude errors");
  const auto ex = executor_of(gen);
  const Eigen::Index p = candidates.cols();
  Mat<T> s(p, loss.batch());
  typename G::trace_type tr;
  generator_matrix_t<G> in;
  for (Eigen::Index c = 0; c < p; c += chunk) {
    const Eigen::Index nc = std::min(chunk, p - c);
    copy_from_host(ex, in, candidates, c, nc);  // same shape every full chunk: no allocation
    gen.forward(0, gen.depth(), in, tr);
    s.middleRows(c, nc) = loss.scores(tr.output());
  }
  return s;
}

/// MII (the paper's Eq. 8): sample p latents, score every candidate against every
/// measurement column at once (MagnitudeLoss::scores: a matrix product), and return, for
/// restart r = 0 … R−1 and image j, the latent with the (r+1)-th lowest magnitude error, as
/// column r·B + j. Restarts thus start from distinct good candidates.
template <Generator G, class Loss, class T = typename G::scalar>
Mat<T> mii_latents(const G& gen, const Loss& loss, int restarts, const MiiOptions& opt, Rng& rng) {
  if (restarts < 1) detail::fail("mii: restarts must be >= 1, got ", restarts);
  if (opt.candidates < restarts)
    detail::fail("mii: need at least as many candidates (", opt.candidates, ") as restarts (", restarts, ")");
  detail::check_mii(gen, loss, opt.chunk);  // before any draw: a refused call leaves rng as it was
  const Eigen::Index B = loss.batch(), p = opt.candidates;
  const Mat<T> cand = rng.normal_matrix<T>(gen.dim(0), p);
  const Mat<T> s = mii_scores(gen, loss, cand, opt.chunk);
  Mat<T> z(gen.dim(0), B * restarts);
  std::vector<Eigen::Index> idx(p);
  for (Eigen::Index j = 0; j < B; ++j) {
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + restarts, idx.end(), [&](Eigen::Index a, Eigen::Index b) {
      return s(a, j) < s(b, j) || (s(a, j) == s(b, j) && a < b);
    });
    for (int r = 0; r < restarts; ++r) z.col(r * B + j) = cand.col(idx[r]);
  }
  return z;
}

}  // namespace prilo

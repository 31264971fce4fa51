// Projection onto a product of sets, one per block of rows: the constraint of a split state
// that holds several tensors (e.g. z_i and z0 of a style generator, each in its own l1 ball).
#pragma once

#include <numeric>
#include <vector>

#include "../concepts/projection.hpp"
#include "../core.hpp"

namespace prilo {

/// Rows [o_k, o_k + sizes[k]) of every column (o_k the sum of the sizes before k) are
/// projected by parts[k] around the same rows of the centre. The Euclidean projection onto
/// a product of sets is the product of the projections, so this is exact whenever every
/// part is. Sizes must sum to the rows of x; both vectors must have the same length.
template <class T, class P>
struct BlockProjection {
  std::vector<Eigen::Index> sizes;
  std::vector<P> parts;

  void project(Eigen::Ref<Mat<T>> x, const Eigen::Ref<const Mat<T>>& centre) const {
    detail::require_centre_shape(x, centre, "BlockProjection");
    if (sizes.size() != parts.size())
      detail::fail("BlockProjection: ", sizes.size(), " block sizes but ", parts.size(), " projections");
    for (std::size_t k = 0; k < sizes.size(); ++k)
      if (sizes[k] < 0) detail::fail("BlockProjection: block ", k, " has a negative size ", sizes[k]);
    const Eigen::Index total = std::accumulate(sizes.begin(), sizes.end(), Eigen::Index(0));
    if (total != x.rows())
      detail::fail("BlockProjection: block sizes sum to ", total, " but the state has ", x.rows(), " rows");
    Eigen::Index at = 0;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      parts[k].project(x.middleRows(at, sizes[k]), centre.middleRows(at, sizes[k]));
      at += sizes[k];
    }
  }
};

}  // namespace prilo

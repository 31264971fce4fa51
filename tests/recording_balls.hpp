// Projection policies that record every projection PRILO's solver asks for (the rows, the
// radius, the centre it passes, the projected point), and the check of a chained run's balls
// against them: tests/test_style.cpp, test_style_vae.cpp and test_split_state.cpp share them.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <limits>
#include <vector>

#include <prilo/projection/l1_ball.hpp>
#include <prilo/solvers/latent.hpp>

namespace prilo::test_support {

/// Projection policies that record, per call, the rows they saw, the radius, the centre the
/// solver passed and the projected point: which ball, around which point, each block of the
/// state was kept in.
struct Seen {
  Eigen::Index rows;
  double radius;
  prilo::Mat<double> centre, x;
};
inline std::vector<Seen> seen;  // cleared by each test before its solve
struct RecordingL1 {
  double radius;
  void project(Eigen::Ref<prilo::Mat<double>> x, const Eigen::Ref<const prilo::Mat<double>>& centre) const {
    prilo::L1Ball<double>{.radius = radius}.project(x, centre);
    seen.push_back({x.rows(), radius, prilo::Mat<double>(centre), prilo::Mat<double>(x)});
  }
};
struct RecordingPolicies {
  template <class T>
  static RecordingL1 projection(const prilo::PhaseOptions<T>& ph) {
    return {ph.constrain ? double(ph.radius) : std::numeric_limits<double>::infinity()};
  }
  static prilo::NoNoise noise(const prilo::NoiseOptions&) { return {}; }
};

/// Checks `seen` against a chained PRILO run (PriloReading::chained, forward phases only): the
/// initial phase's steps project z0 into the ball of opt.initial.radius around the origin;
/// then every step of a stage's forward phase projects each block of the split state into the
/// ball of that block's radius around the phase's centre: G_{at→layer} of the state where the
/// previous phase ended (the initial phase's z0*, or the previous stage's z_i*) for the first
/// repetition, the previous repetition's end for the others (the ball re-centred there).
template <class G>
void check_chained_balls(const G& g, const prilo::PriloOptions<double>& opt) {
  std::size_t k = 0;
  const Eigen::Index d = g.dim(0);
  for (int s = 0; s < opt.initial.steps; ++s, ++k) {
    REQUIRE(k < seen.size());
    CHECK(seen[k].rows == d);
    CHECK(seen[k].radius == double(opt.initial.radius));
    CHECK(seen[k].centre == prilo::Mat<double>::Zero(d, 1));
  }
  REQUIRE(k > 0);
  prilo::Mat<double> state = seen[k - 1].x;  // z0*
  int at = 0;
  for (const auto& st : opt.stages) {
    const std::vector<Eigen::Index> blocks = g.blocks(st.layer);
    REQUIRE(blocks.size() == st.forward.radii.size());
    for (int rep = 0; rep < st.repetitions; ++rep) {
      CAPTURE(st.layer);
      CAPTURE(rep);
      const prilo::Mat<double> centre = at == st.layer ? state : prilo::Mat<double>(g.forward(at, st.layer, state));
      REQUIRE(centre.rows() == g.dim(st.layer));
      prilo::Mat<double> end(centre.rows(), centre.cols());
      for (int step = 0; step < st.forward.steps; ++step) {
        Eigen::Index row = 0;
        for (std::size_t b = 0; b < blocks.size(); ++b, ++k) {
          REQUIRE(k < seen.size());
          REQUIRE(seen[k].rows == blocks[b]);
          CHECK(seen[k].radius == double(st.forward.radii[b]));
          CHECK(seen[k].centre == centre.middleRows(row, blocks[b]));
          end.middleRows(row, blocks[b]) = seen[k].x;
          row += blocks[b];
        }
      }
      state = end;
      at = st.layer;
    }
  }
  CHECK(k == seen.size());  // no other projection
}

}  // namespace prilo::test_support

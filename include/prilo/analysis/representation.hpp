// The representation limit of a generator (an analysis: it fits the ground-truth images, which
// no reconstruction method sees): how close G gets to given images through its latent z0, and
// through an intermediate representation z_i in an l1 ball around G_0^i(z0*), the set that
// PRILO's forward phases search. It bounds what any method with this prior can reach.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../concepts/generator.hpp"
#include "../concepts/vae.hpp"
#include "../metrics/psnr.hpp"
#include "../parallel.hpp"
#include "../random.hpp"
#include "../solvers/column_blocks.hpp"
#include "../solvers/latent.hpp"

namespace prilo::analysis {

/// The "operator" of an image-space fit: the identity on n pixels, so that the error a Loss
/// reports per column, divided by output_size(), is the fit's mean squared error.
struct ImageSpace {
  Eigen::Index n = 0;
  Eigen::Index input_size() const { return n; }
  Eigen::Index output_size() const { return n; }
  Flops flops() const { return {double(n), 0.0}; }  ///< the difference x − t
};

/// f(x_j) = ‖x_j − t_j‖² per column, with gradient 2 (x − t): the Loss the latent solvers'
/// phases minimise when they fit images t (here: the ground truth) instead of measurements.
/// Holds its operator by reference, as MagnitudeLoss does.
template <class T>
class ImageDistance {
 public:
  using scalar = T;
  using matrix_type = Mat<T>;

  ImageDistance(const ImageSpace& op, Mat<T> targets) : op_(&op), t_(std::move(targets)) {
    require_shape(t_, op.n, t_.cols(), "image distance targets");
  }
  ImageDistance(const ImageSpace&&, Mat<T>) = delete;  ///< it keeps a pointer: not from a temporary
  Eigen::Index batch() const { return t_.cols(); }
  const ImageSpace& op() const { return *op_; }
  /// The target images (the name the column-block solver uses for a loss's data).
  const Mat<T>& measurements() const { return t_; }

  Vec<T> value(const Mat<T>& x) const {
    require_shape(x, t_.rows(), t_.cols(), "image distance x");
    return (x - t_).colwise().squaredNorm().transpose();
  }
  Vec<T> value_and_gradient(const Mat<T>& x, Mat<T>& grad) const {
    require_shape(x, t_.rows(), t_.cols(), "image distance x");
    grad = x - t_;
    Vec<T> v = grad.colwise().squaredNorm().transpose();
    grad *= T(2);
    return v;
  }

 private:
  const ImageSpace* op_;
  Mat<T> t_;
};

/// One ball in which z_i is fitted: the split point `layer` (1 … depth − 1) and the fit's
/// phase: its l1 radius around G_0^i(z0*) (or `radii`, one per tensor of the split state,
/// as PhaseOptions::radii; `constrain = false` or radius +∞: no ball), steps and learning
/// rate (Adam, no gradient noise).
template <class T>
struct SplitBall {
  int layer = 1;
  PhaseOptions<T> phase{.steps = 500, .radius = T(10), .learning_rate = T(0.01)};
};

/// A ball's label: "10", "40/10" (one radius per tensor), "inf" (no ball); two balls with the
/// same label are the same set.
template <class T>
std::string ball_label(const PhaseOptions<T>& p) {
  auto one = [](T r) {
    if (std::isinf(r)) return std::string("inf");
    std::ostringstream s;
    s << r;
    return s.str();
  };
  if (!p.constrain) return "inf";
  if (p.radii.empty()) return one(p.radius);
  std::string out;
  for (std::size_t b = 0; b < p.radii.size(); ++b) out += (b ? "/" : "") + one(p.radii[b]);
  return out;
}

/// Appends the ball {layer, p} to `balls` unless the same ball (same layer and label) is there.
template <class T>
void add_ball(std::vector<SplitBall<T>>& balls, int layer, const PhaseOptions<T>& p) {
  for (const auto& b : balls)
    if (b.layer == layer && ball_label(b.phase) == ball_label(p)) return;
  balls.push_back({layer, p});
}

/// Whether a PRILO stage runs a forward phase (repetitions ≥ 1, forward phase enabled): the
/// stages whose balls config_split_points and config_balls read.
template <class T>
bool runs_forward_phase(const PriloStage<T>& s) {
  return s.repetitions >= 1 && s.forward.enabled;
}

/// A reconstruction config's PRILO section, named for errors ("prilo", "prilo_chain").
template <class T>
struct NamedPriloSection {
  std::string name;
  const PriloOptions<T>* options = nullptr;
};

/// The split points the stages of `sections` name (stages that run: repetitions ≥ 1, forward
/// phase enabled), in increasing order, each once; invalid_input naming the section and stage
/// whose layer is not a split point of a decoder of `depth` layers (1 … depth − 1).
template <class T>
std::vector<int> config_split_points(const std::vector<NamedPriloSection<T>>& sections, int depth) {
  std::vector<int> points;
  for (const auto& [name, o] : sections)
    for (std::size_t k = 0; k < o->stages.size(); ++k) {
      const auto& s = o->stages[k];
      if (!runs_forward_phase(s)) continue;
      if (s.layer < 1 || s.layer >= depth)
        detail::fail(name, ".stages[", k, "].layer ", s.layer, " is not a split point of a decoder of ", depth,
                     " layers (1..", depth - 1, ")");
      if (std::find(points.begin(), points.end(), s.layer) == points.end()) points.push_back(s.layer);
    }
  std::sort(points.begin(), points.end());
  return points;
}

/// The balls PRILO's forward phases search at each of `points`, as prilo-represent fits them by
/// default: each running stage's forward ball at its layer; for a chained stage of R > 1
/// repetitions (each re-centring its ball) also R times its radius, the ball those repetitions
/// can reach from the stage's first centre; at every point, in increasing radius, then the
/// whole space (radius +∞). Each ball once a point. `base` gives every fit's steps and
/// learning rate (its radius is replaced).
template <class T>
std::vector<SplitBall<T>> config_balls(const std::vector<NamedPriloSection<T>>& sections,
                                       const std::vector<int>& points, const PhaseOptions<T>& base) {
  std::vector<std::pair<int, PhaseOptions<T>>> found;
  for (const auto& section : sections)
    for (const auto& s : section.options->stages) {
      if (!runs_forward_phase(s)) continue;
      PhaseOptions<T> p = base;
      p.radius = s.forward.radius;
      p.radii = s.forward.radii;
      p.constrain = s.forward.constrain;
      found.push_back({s.layer, p});
      if (section.options->reading == PriloReading::chained && s.repetitions > 1 && p.constrain) {
        p.radius *= T(s.repetitions);
        for (T& r : p.radii) r *= T(s.repetitions);
        found.push_back({s.layer, p});
      }
    }
  std::vector<SplitBall<T>> balls;
  for (const int i : points) {
    std::vector<PhaseOptions<T>> here;
    for (const auto& [layer, p] : found)
      if (layer == i) here.push_back(p);
    std::stable_sort(here.begin(), here.end(), [](const PhaseOptions<T>& a, const PhaseOptions<T>& b) {
      return (a.radii.empty() ? a.radius : a.radii[0]) < (b.radii.empty() ? b.radius : b.radii[0]);
    });
    for (const auto& p : here) add_ball(balls, i, p);
    PhaseOptions<T> unconstrained = base;
    unconstrained.radius = std::numeric_limits<T>::infinity();
    add_ball(balls, i, unconstrained);
  }
  return balls;
}

/// The options of representation_limit.
template <class T>
struct RepresentationOptions {
  /// The z0 fit: min ‖G(z0) − x‖² over the l1 ball of `latent.radius` around 0 (100: the ball
  /// of the paper's DPR and of PRILO's initial phase), by Adam without gradient noise.
  PhaseOptions<T> latent{.steps = 1000, .radius = T(100), .learning_rate = T(0.05)};
  /// N(0, I) starts of the z0 fit beside the given ones (the VAE encoder's mean): the fit of
  /// lowest image error is kept per image.
  int random_starts = 3;
  /// After its phase, every fit runs `polish_rounds` rounds of `polish_steps` more steps, each
  /// at the previous rate × polish_factor (fresh Adam moments, same ball), each from the
  /// lowest-error point so far: Adam at a constant rate stalls at a distance the rate sets
  /// (or wanders off), smaller rates then refine.
  int polish_steps = 0;
  int polish_rounds = 1;
  double polish_factor = 0.1;
  /// The z_i fits (reported in this order; a ball is fitted after the balls at its split
  /// point that it contains). Each starts, per image, from the best feasible point known:
  /// G_0^i(z0*) (the ball's centre) or the fit of a ball at the same split point that it
  /// contains; and keeps that start when the optimisation ends higher. So the errors are
  /// non-increasing along nested balls, and never above the z0 fit's.
  std::vector<SplitBall<T>> balls;
  std::uint64_t seed = 0;
  /// Column blocks over threads (solvers/column_blocks.hpp; parts must stay 1); results
  /// depend on the number of blocks through the random starts only.
  ColumnBlockOptions blocks{};
  /// Progress of block 0 (the calling thread), every 100 steps of a phase.
  ProgressFn progress = {};
  /// This call's own stop request (prilo/interrupt.hpp: a std::stop_source's token); the
  /// process-wide request_stop() stops every call.
  std::stop_token stop{};
};

/// The fit of one ball, per image.
template <class T>
struct BallFit {
  SplitBall<T> ball;
  Mat<T> x;           ///< G_i^k(z_i*), pixels × images
  Mat<T> z;           ///< z_i*, dim(i) × images
  Vec<double> error;  ///< ‖G_i^k(z_i*) − x‖₂ (in double)
  Vec<double> psnr;   ///< PSNR of G_i^k(z_i*) against x, data range 1 (analysis)
};

/// What representation_limit finds, per image (one column each).
template <class T>
struct RepresentationResult {
  Mat<T> x0;                      ///< G(z0*), the best z0 fit
  Mat<T> z0;                      ///< z0*
  Vec<double> error0;             ///< ‖G(z0*) − x‖₂
  Vec<double> psnr0;              ///< PSNR of G(z0*) (analysis)
  std::vector<int> start0;        ///< the start that won: 0 … given − 1 the given ones, then random
  std::vector<BallFit<T>> balls;  ///< one per RepresentationOptions::balls, in order
};

namespace detail {

using prilo::detail::fail;

/// Per-column ‖a − b‖² accumulated in double (selection and reports use these, so that a kept
/// start is compared exactly as it is reported).
template <class T>
Vec<double> sq_errors(const Mat<T>& a, const Mat<T>& b) {
  Vec<double> e(a.cols());
  for (Eigen::Index j = 0; j < a.cols(); ++j) {
    double s = 0;
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      const double d = double(a(i, j)) - double(b(i, j));
      s += d * d;
    }
    e(j) = s;
  }
  return e;
}

template <class T>
bool unconstrained(const PhaseOptions<T>& p) {
  if (!p.constrain) return true;
  if (p.radii.empty()) return std::isinf(p.radius);
  return std::all_of(p.radii.begin(), p.radii.end(), [](T r) { return std::isinf(r); });
}

/// Whether the ball of `inner` lies inside the ball of `outer` (same centre, same split
/// state): l1 balls of one radius R over the state or products of per-tensor balls r_b.
/// A product of balls r_b lies in the ball of radius Σ r_b; the ball of radius R lies in the
/// product when R ≤ min r_b.
template <class T>
bool ball_contains(const PhaseOptions<T>& outer, const PhaseOptions<T>& inner) {
  if (unconstrained(outer)) return true;
  if (unconstrained(inner)) return false;
  const bool ob = outer.radii.size() > 1, ib = inner.radii.size() > 1;
  const T ro = outer.radii.size() == 1 ? outer.radii[0] : outer.radius;
  const T ri = inner.radii.size() == 1 ? inner.radii[0] : inner.radius;
  if (!ob && !ib) return ri <= ro;
  if (ob && ib) {
    if (outer.radii.size() != inner.radii.size()) return false;
    for (std::size_t b = 0; b < outer.radii.size(); ++b)
      if (inner.radii[b] > outer.radii[b]) return false;
    return true;
  }
  if (ib) {  // product of inner balls inside one outer ball
    T sum = 0;
    for (T r : inner.radii) sum += r;
    return sum <= ro;
  }
  return ri <= *std::min_element(outer.radii.begin(), outer.radii.end());
}

/// The order in which to fit the balls: by split point, then by how many of the other balls
/// at that split point each contains (a ball after those it contains), then as given.
template <class T>
std::vector<std::size_t> ball_order(const std::vector<SplitBall<T>>& balls) {
  std::vector<std::size_t> order(balls.size()), inside(balls.size(), 0);
  for (std::size_t b = 0; b < balls.size(); ++b) {
    order[b] = b;
    for (std::size_t a = 0; a < balls.size(); ++a)
      if (a != b && balls[a].layer == balls[b].layer && ball_contains(balls[b].phase, balls[a].phase)) ++inside[b];
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return balls[a].layer != balls[b].layer ? balls[a].layer < balls[b].layer : inside[a] < inside[b];
  });
  return order;
}

/// The noise-free phase of a fit.
inline NoiseOptions no_noise() {
  return {.enabled = false};
}

/// A solver callback keeping, per column, the lowest-loss iterate of a phase: a step's event
/// carries the loss of the iterate before the step, which it copied at the previous event.
template <class T>
struct KeepBestIterate {
  const Mat<T>& z;  ///< the solver's iterate
  Mat<T> before;    ///< the iterate whose loss the next event reports
  Mat<T> best_z;
  Vec<T> best_l;

  explicit KeepBestIterate(const Mat<T>& iterate)
      : z(iterate),
        before(iterate),
        best_z(iterate),
        best_l(Vec<T>::Constant(iterate.cols(), std::numeric_limits<T>::infinity())) {}
  /// Keeps the columns of `at` whose loss l is the lowest so far.
  void keep(const Vec<T>& l, const Mat<T>& at) {
    for (Eigen::Index j = 0; j < l.size(); ++j)
      if (l(j) < best_l(j)) {
        best_l(j) = l(j);
        best_z.col(j) = at.col(j);
      }
  }
  bool step_taken(const StepEvent<T>& e) {
    keep(e.loss, before);
    before = z;
    return false;
  }
};

/// One fit (its phase, then the polish rounds) on the latent solvers' optimise_magnitude,
/// minimising ‖G_layer^k(z) − t‖² from z in the ball of `ph` around `centre`. The start is
/// first projected onto the ball; a callback keeps, per column, the best iterate of every
/// step (Adam at a constant rate is not monotone: it can leave a good basin), each round
/// continues from the best point so far, and z ends at the best point of all.
template <class Policies, class G, class T>
void fit_phase(const G& gen, int layer, const ImageDistance<T>& loss, Mat<T>& z, const Mat<T>& centre,
               const PhaseOptions<T>& ph, const RepresentationOptions<T>& opt, Rng& rng, const ProgressFn& progress,
               const std::string& name) {
  const auto ex = executor_of(gen);
  prilo::detail::with_optimiser<Policies>(ex, ph, no_noise(), prilo::detail::state_blocks(gen, layer),
                                          [&](auto& o) { project(ex, o.projection(), z, centre); });
  KeepBestIterate<T> best(z);
  auto run = [&](const PhaseOptions<T>& p, const std::string& n) {
    if (p.steps <= 0) return;
    SolveResult<T> scratch;
    const ObserverFn<T> none;
    best.before = z;
    prilo::detail::PhaseContext<T, KeepBestIterate<T>> ctx{scratch, 0,           progress ? 100 : 0, progress,
                                                           none,    "represent", {{best}},           opt.stop};
    const Vec<T> l =
        prilo::detail::optimise_magnitude<Policies>(gen, layer, loss, z, centre, p, no_noise(), rng, ctx, n, 'D');
    best.keep(l, z);  // the last iterate, which no event reported
    z = best.best_z;  // the next round continues from the best point
  };
  PhaseOptions<T> p = ph;
  p.enabled = true;
  run(p, name);
  for (int r = 1; r <= opt.polish_rounds && opt.polish_steps > 0; ++r) {
    p.steps = opt.polish_steps;
    p.learning_rate = T(double(p.learning_rate) * opt.polish_factor);
    run(p, name + " polish " + std::to_string(r));
  }
}

/// The whole analysis on one column block: X (n × B), given starts S (d × B·g, start r of
/// image j in column r·B + j; may be empty).
template <class Policies, class G, class T>
RepresentationResult<T> represent_block(const G& gen, const Mat<T>& X, const Mat<T>& given, int n_given,
                                        const RepresentationOptions<T>& opt, Rng& rng, const ProgressFn& progress) {
  const Eigen::Index B = X.cols(), d = gen.dim(0);
  const int starts = n_given + opt.random_starts;
  const ImageSpace space{X.rows()};
  RepresentationResult<T> out;
  // the z0 fit, all starts as one batch
  Mat<T> Z(d, B * starts);
  if (n_given > 0) Z.leftCols(B * n_given) = given;
  if (opt.random_starts > 0) Z.rightCols(B * opt.random_starts) = rng.normal_matrix<T>(d, B * opt.random_starts);
  {
    const ImageDistance<T> loss(space, prilo::detail::tile_columns(X, starts));
    const Mat<T> zero = Mat<T>::Zero(d, 1);
    fit_phase<Policies>(gen, 0, loss, Z, zero, opt.latent, opt, rng, progress, "z0");
  }
  const Mat<T> Xall = gen.forward_from(0, Z);
  const Vec<double> e_all = sq_errors(Xall, prilo::detail::tile_columns(X, starts));
  out.z0.resize(d, B);
  out.start0.assign(std::size_t(B), 0);
  for (Eigen::Index j = 0; j < B; ++j) {
    int best = 0;
    for (int r = 1; r < starts; ++r)
      if (e_all(r * B + j) < e_all(best * B + j)) best = r;
    out.start0[std::size_t(j)] = best;
    out.z0.col(j) = Z.col(best * B + j);
  }
  out.x0 = gen.forward_from(0, out.z0);
  const Vec<double> e0 = sq_errors(out.x0, X);
  out.error0 = e0.cwiseSqrt();

  const ImageDistance<T> loss(space, X);
  // balls that contain others run after them (and start from their fits)
  const std::vector<std::size_t> order = ball_order(opt.balls);
  std::vector<BallFit<T>> fits(opt.balls.size());
  std::vector<bool> done(opt.balls.size(), false);
  for (const std::size_t b : order) {
    const SplitBall<T>& ball = opt.balls[b];
    const int i = ball.layer;
    BallFit<T> fit{ball, out.x0, gen.forward(0, i, out.z0), {}, {}};
    const Mat<T> centre = fit.z;
    Vec<double> e_start = e0;  // the centre's image is G(z0*)
    for (std::size_t a = 0; a < fits.size(); ++a) {
      const BallFit<T>& prev = fits[a];
      if (!done[a] || prev.ball.layer != i || !ball_contains(ball.phase, prev.ball.phase)) continue;
      for (Eigen::Index j = 0; j < B; ++j) {
        const double e = prev.error(j) * prev.error(j);
        if (e < e_start(j)) {
          e_start(j) = e;
          fit.z.col(j) = prev.z.col(j);
          fit.x.col(j) = prev.x.col(j);
        }
      }
    }
    Mat<T> z = fit.z;
    std::string stage = "z";  // (not "z" + to_string(i): GCC 12 warns falsely, -Wrestrict, on that at -O2)
    stage += std::to_string(i);
    fit_phase<Policies>(gen, i, loss, z, centre, ball.phase, opt, rng, progress, stage);
    const Mat<T> x = gen.forward_from(i, z);
    const Vec<double> e = sq_errors(x, X);
    for (Eigen::Index j = 0; j < B; ++j)
      if (e(j) < e_start(j)) {
        e_start(j) = e(j);
        fit.z.col(j) = z.col(j);
        fit.x.col(j) = x.col(j);
      }
    fit.error = e_start.cwiseSqrt();
    fits[b] = std::move(fit);
    done[b] = true;
  }
  out.balls = std::move(fits);
  return out;
}

/// Joins per-block results in column order.
template <class T>
RepresentationResult<T> join(std::vector<RepresentationResult<T>>& parts, Eigen::Index cols) {
  RepresentationResult<T> out;
  const RepresentationResult<T>& p0 = parts.front();
  out.x0.resize(p0.x0.rows(), cols);
  out.z0.resize(p0.z0.rows(), cols);
  out.error0.resize(cols);
  out.balls = p0.balls;
  for (auto& f : out.balls) {
    f.x.resize(f.x.rows(), cols);
    f.z.resize(f.z.rows(), cols);
    f.error.resize(cols);
  }
  Eigen::Index c = 0;
  for (auto& p : parts) {
    const Eigen::Index n = p.x0.cols();
    out.x0.middleCols(c, n) = p.x0;
    out.z0.middleCols(c, n) = p.z0;
    out.error0.segment(c, n) = p.error0;
    out.start0.insert(out.start0.end(), p.start0.begin(), p.start0.end());
    for (std::size_t b = 0; b < out.balls.size(); ++b) {
      out.balls[b].x.middleCols(c, n) = p.balls[b].x;
      out.balls[b].z.middleCols(c, n) = p.balls[b].z;
      out.balls[b].error.segment(c, n) = p.balls[b].error;
    }
    c += n;
  }
  return out;
}

}  // namespace detail

/// The representation limit of generator `gen` (a CPU Generator) on images X (pixels × B, in
/// [0, 1]) — an analysis: it fits the ground truth. Per image:
///  * e0 = min ‖G(z0) − x‖₂ over z0 in the l1 ball of opt.latent.radius around 0, from the
///    given starts (`starts`: dim(0) × B·g, start r of image j in column r·B + j, e.g. the VAE
///    encoder's mean; may be empty) and opt.random_starts N(0, I) starts, keeping the lowest;
///  * for every ball of opt.balls, e_i = min ‖G_i^k(z_i) − x‖₂ over z_i in the l1 ball (or
///    the per-tensor balls) around G_0^i(z0*).
/// Fits are Adam without gradient noise on the latent solvers' phases (`Policies`' projection);
/// being local optimisations, they are upper bounds of the true minima. PSNR with data range 1.
template <class Policies = PaperPolicies, Generator G, class T = typename G::scalar>
RepresentationResult<T> representation_limit(const G& gen, const std::type_identity_t<Mat<T>>& X,
                                             const RepresentationOptions<T>& opt,
                                             const std::type_identity_t<Mat<T>>& starts = Mat<T>()) {
  static_assert(std::is_same_v<generator_matrix_t<G>, Mat<T>>,
                "representation_limit: the generator must run on the CPU (its matrix type prilo::Mat<T>)");
  static_assert(LatentPolicies<Policies, T>, "representation_limit: Policies must model prilo::LatentPolicies");
  using detail::fail;
  const int k = gen.depth();
  const Eigen::Index B = X.cols();
  if (X.rows() != gen.dim(k))
    fail("representation_limit images: expected ", gen.dim(k), " pixels per column (the generator's output), got ",
         X.rows());
  if (B == 0) fail("representation_limit images: no images (0 columns)");
  if (!X.allFinite()) fail("representation_limit images: contain NaN or infinite values");
  if (starts.size() != 0 && (starts.rows() != gen.dim(0) || starts.cols() % B != 0))
    fail("representation_limit starts: expected ", gen.dim(0), " rows and a multiple of ", B, " columns, got ",
         starts.rows(), "x", starts.cols());
  if (!starts.allFinite()) fail("representation_limit starts: contain NaN or infinite values");
  const int n_given = starts.size() == 0 ? 0 : int(starts.cols() / B);
  if (opt.random_starts < 0) fail("representation_limit random_starts: must be >= 0, got ", opt.random_starts);
  if (n_given + opt.random_starts < 1) fail("representation_limit: no starts for the z0 fit (none given, 0 random)");
  if (opt.latent.steps < 0 || opt.polish_steps < 0 || opt.polish_rounds < 0)
    fail("representation_limit: steps must be >= 0");
  if (opt.blocks.parts != 1)
    fail("representation_limit blocks: distributed parts are not supported (parts = ", opt.blocks.parts, ")");
  // an infinite factor made the polish rounds' learning rate inf: Adam refused it without naming this option
  if (!(opt.polish_factor > 0 && std::isfinite(opt.polish_factor)))
    fail("representation_limit polish_factor: must be finite and > 0, got ", opt.polish_factor);
  // every fit's learning rate, radius and radii before any fit runs (Adam and the ball refused
  // them only when that fit was reached, after the work before it), and the last polish
  // round's rate finite
  constexpr bool l1_radii = std::is_same_v<Policies, PaperPolicies>;
  const auto check_fit = [&](const auto& phase, const std::string& what) {
    prilo::detail::check_phase_options(phase, "representation_limit", what.c_str(), l1_radii);
    if (opt.polish_steps > 0 &&
        !std::isfinite(double(phase.learning_rate) * std::pow(opt.polish_factor, double(opt.polish_rounds))))
      fail("representation_limit ", what, " fit: the last polish round's learning rate (", phase.learning_rate, " x ",
           opt.polish_factor, "^", opt.polish_rounds, ") is not finite");
  };
  check_fit(opt.latent, "z0");
  for (const auto& b : opt.balls) {
    if (b.layer < 1 || b.layer >= k)
      fail("representation_limit ball: split point ", b.layer, " must be an intermediate split point in 1..", k - 1);
    check_fit(b.phase, "ball (split point " + std::to_string(b.layer) + ")");
    if (!b.phase.radii.empty() && b.phase.radii.size() != prilo::detail::state_blocks(gen, b.layer).size())
      fail("representation_limit ball at split point ", b.layer, ": the split state has ",
           prilo::detail::state_blocks(gen, b.layer).size(), " tensor(s) but ", b.phase.radii.size(),
           " radii were given");
  }
  Rng rng(opt.seed);
  const ColumnPartition split = column_partition(B, opt.blocks);
  const Eigen::Index nb = split.blocks;
  auto block_starts = [&](Eigen::Index j0, Eigen::Index n) {
    Mat<T> s(gen.dim(0), n * n_given);
    for (int r = 0; r < n_given; ++r) s.middleCols(r * n, n) = starts.middleCols(r * B + j0, n);
    return s;
  };
  RepresentationResult<T> out;
  if (nb == 1) {
    out = detail::represent_block<Policies>(gen, X, block_starts(0, B), n_given, opt, rng, opt.progress);
  } else {
    std::vector<Rng> streams;
    for (Eigen::Index b = 0; b < nb; ++b) streams.push_back(rng.split());
    std::vector<RepresentationResult<T>> parts(static_cast<std::size_t>(nb));
    parallel_for(nb, int(std::min<Eigen::Index>(nb, max_threads())), [&](Eigen::Index b) {
      const Eigen::Index j0 = B * b / nb, j1 = B * (b + 1) / nb;
      parts[std::size_t(b)] =
          detail::represent_block<Policies>(gen, Mat<T>(X.middleCols(j0, j1 - j0)), block_starts(j0, j1 - j0), n_given,
                                            opt, streams[std::size_t(b)], b == 0 ? opt.progress : ProgressFn{});
    });
    out = detail::join(parts, B);
  }
  out.psnr0 = metrics::psnr_batch(out.x0, X);
  for (auto& f : out.balls) f.psnr = metrics::psnr_batch(f.x, X);
  return out;
}

/// The representation limit of a VAE's decoder: as above, with the encoder's mean μ(x) of
/// every image as a start of the z0 fit (when the model has encode(x) → {μ, log σ²}, as the
/// shipped VAEs do), beside opt.random_starts random ones.
template <class Policies = PaperPolicies, VaeModel V, class T = typename V::scalar>
RepresentationResult<T> representation_limit_vae(const V& vae, const std::type_identity_t<Mat<T>>& X,
                                                 const RepresentationOptions<T>& opt) {
  if constexpr (requires { vae.encode(X).first; }) {
    if (X.rows() != vae.data_dim())
      detail::fail("representation_limit images: expected ", vae.data_dim(), " pixels per column, got ", X.rows());
    const Mat<T> mu = vae.encode(X).first;
    return representation_limit<Policies>(vae.decoder(), X, opt, mu);
  } else {
    return representation_limit<Policies>(vae.decoder(), X, opt);
  }
}

}  // namespace prilo::analysis

// Style modules: generators that feed the latent z0 into every layer (the paper's StyleGAN
// runs, Tables 9/10), built from ordinary modules in an nn::Sequential, on any executor (the
// CPU forms of their customisation points are below; backend/cuda/style.cuh has the CUDA ones).
#pragma once

#include <cmath>
#include <concepts>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core.hpp"
#include "../exec/executor.hpp"
#include "../exec/kernels.hpp"
#include "../random.hpp"
#include "activations.hpp"
#include "parameter.hpp"
#include "shape.hpp"
#include "staging.hpp"
#include "weight_and_bias.hpp"

namespace prilo::nn {

/// The sizes of a modulation: C channels of P pixels, a style (z0) of d rows.
struct ModulateShape {
  Eigen::Index channels = 0, pixels = 0, style = 0;
  Eigen::Index features() const { return channels * pixels; }
};

}  // namespace prilo::nn

namespace prilo {

namespace detail {
/// Throws invalid_input unless rows [dst_row, dst_row + n) of a dst_rows × dst_cols matrix and
/// rows [src_row, src_row + n) of a src_rows × src_cols one exist and the column counts agree.
inline void check_row_copy(Eigen::Index dst_rows, Eigen::Index dst_cols, Eigen::Index dst_row, Eigen::Index src_rows,
                           Eigen::Index src_cols, Eigen::Index src_row, Eigen::Index n) {
  if (dst_cols != src_cols) fail("copy_rows: the source has ", src_cols, " columns, the destination ", dst_cols);
  if (n < 0 || dst_row < 0 || src_row < 0 || dst_row + n > dst_rows || src_row + n > src_rows)
    fail("copy_rows: ", n, " rows from row ", src_row, " of ", src_rows, " into row ", dst_row, " of ", dst_rows);
}
}  // namespace detail

// ---- customisation points of the style modules, CPU forms ----

/// dst rows [dst_row, dst_row + n) ← src rows [src_row, src_row + n), every column (dst has
/// src's column count and the rows).
template <class T>
void copy_rows(const CpuExecutor&, Mat<T>& dst, Eigen::Index dst_row, const Mat<T>& src, Eigen::Index src_row,
               Eigen::Index n) {
  detail::check_row_copy(dst.rows(), dst.cols(), dst_row, src.rows(), src.cols(), src_row, n);
  dst.middleRows(dst_row, n) = src.middleRows(src_row, n);
}

/// out ← src rows [a, a + n) + src rows [b, b + n) (out resized to n × src.cols()).
template <class T>
void add_row_blocks(const CpuExecutor&, Mat<T>& out, const Mat<T>& src, Eigen::Index a, Eigen::Index b,
                    Eigen::Index n) {
  detail::check_row_copy(n, src.cols(), 0, src.rows(), src.cols(), a, n);
  detail::check_row_copy(n, src.cols(), 0, src.rows(), src.cols(), b, n);
  out = src.middleRows(a, n) + src.middleRows(b, n);
}

namespace detail {
/// [γ; β] = W z0 + b for every column into s (2C × B), z0 the bottom rows of x.
template <class T>
void modulation_style(const Mat<T>& w, const Vec<T>& b, const nn::ModulateShape& sh, const Mat<T>& x, Mat<T>& s) {
  s.resize(2 * sh.channels, x.cols());
  s.noalias() = w * x.bottomRows(sh.style);
  s.colwise() += b;
}

/// One channel of nn::Modulate's VJP in one pass over its n values, for an activation with a
/// cotangent_packet: with v = g ⊙ act'(y), returns {Σ v·u, Σ v} and, when out is given, writes
/// v·scale to it. Eigen packets with two accumulators per sum, the tail per entry.
template <class Act, class T>
std::pair<T, T> modulate_channel_vjp(const T* g, const T* y, const T* u, T* out, Eigen::Index n, T scale) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<T>::type;
  constexpr Eigen::Index S = ei::packet_traits<T>::size;
  const P zero = ei::pset1<P>(T(0)), sc = ei::pset1<P>(scale);
  P gu0 = zero, gu1 = zero, g0 = zero, g1 = zero;
  const auto one = [&](Eigen::Index k, P& gu_acc, P& g_acc) {
    const P v = Act::template cotangent_packet<T>(ei::ploadu<P>(g + k), ei::ploadu<P>(y + k));
    gu_acc = ei::pmadd(v, ei::ploadu<P>(u + k), gu_acc);
    g_acc = ei::padd(g_acc, v);
    if (out) ei::pstoreu(out + k, ei::pmul(v, sc));
  };
  Eigen::Index i = 0;
  for (const Eigen::Index pairs = whole_blocks(n, 2 * S); i < pairs; i += 2 * S) {
    one(i, gu0, g0);
    one(i + S, gu1, g1);
  }
  if (i < whole_blocks(n, S)) {
    one(i, gu0, g0);
    i += S;
  }
  T gu = ei::predux(ei::padd(gu0, gu1)), gsum = ei::predux(ei::padd(g0, g1));
  for (; i < n; ++i) {
    const T v = nn::cotangent<Act>(g[i], y[i]);
    gu += v * u[i];
    gsum += v;
    if (out) out[i] = v * scale;
  }
  return {gu, gsum};
}
}  // namespace detail

/// y ← [act(u ⊙ (1 + γ(z0)) + β(z0)); z0 if Carry] for x = [u; z0] (nn::Modulate's forward);
/// the style values in st.a.
template <class T, class Act, bool Carry>
void modulate_forward(const CpuExecutor&, Act, std::bool_constant<Carry>, const nn::ModulateShape& sh, const Mat<T>& w,
                      const Vec<T>& b, const Mat<T>& x, Mat<T>& y, nn::Staging<Mat<T>>& st) {
  Mat<T>& s = st.a;
  detail::modulation_style(w, b, sh, x, s);
  const Eigen::Index C = sh.channels, P = sh.pixels;
  y.resize(sh.features() + (Carry ? sh.style : 0), x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const T* u = x.col(j).data();
    T* out = y.col(j).data();
    for (Eigen::Index c = 0; c < C; ++c)
      nn::apply_affine_activation<Act>(u + c * P, T(1) + s(c, j), s(C + c, j), out + c * P, P);
  }
  if constexpr (Carry) y.bottomRows(sh.style) = x.bottomRows(sh.style);
}

/// nn::Modulate's VJPs: gx (if given) and the style cotangent [∂γ; ∂β] into gs (2C × B), with
/// g = gy ⊙ act'(y): ∂/∂u = g ⊙ (1 + γ), ∂/∂γ_c = Σ_p g u, ∂/∂β_c = Σ_p g,
/// ∂/∂z0 = Wᵀ[∂γ; ∂β] (+ the carried cotangent). Style values in st.a. gx must not alias x
/// (a channel's rows of gx are written before that channel's u is read).
template <class T, class Act, bool Carry>
void modulate_vjp(const CpuExecutor&, Act, std::bool_constant<Carry>, const nn::ModulateShape& sh, const Mat<T>& w,
                  const Vec<T>& b, const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, Mat<T>& gs,
                  nn::Staging<Mat<T>>& st) {
  Mat<T>& s = st.a;
  detail::modulation_style(w, b, sh, x, s);
  const Eigen::Index C = sh.channels, P = sh.pixels, d = sh.style;
  gs.resize(2 * C, x.cols());
  if (gx) gx->resize(sh.features() + d, x.cols());
  // per channel, for an activation with a cotangent_packet (ReLU, LeakyReLU, the sigmoid), one
  // pass over its P values (detail::modulate_channel_vjp: v = gy ⊙ act'(y), the sums Σ v·u and
  // Σ v, and v·(1 + γ) into gx's rows when gx is wanted; four passes were 5.8 % of a style VAE's
  // PRILO-MII run); for the others v by nn::apply_cotangent (vectorised by the compiler), then
  // Eigen's vectorised sums and the scaling, on P values that stay in the L1 cache (a scalar
  // loop with running sums cannot vectorise: its sums are ordered)
  constexpr bool one_pass = Eigen::internal::packet_traits<T>::Vectorizable && nn::has_cotangent_packet<Act, T>;
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  A tmp(one_pass || gx ? 0 : P);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const T* u = x.col(j).data();
    const T* yo = y.col(j).data();
    const T* g = gy.col(j).data();
    for (Eigen::Index c = 0; c < C; ++c) {
      const Eigen::Index o = c * P;
      T* v = gx ? gx->col(j).data() + o : tmp.data();
      if constexpr (one_pass) {
        std::tie(gs(c, j), gs(C + c, j)) =
            detail::modulate_channel_vjp<Act>(g + o, yo + o, u + o, gx ? v : nullptr, P, T(1) + s(c, j));
      } else {
        nn::apply_cotangent<Act>(g + o, yo + o, v, P);
        Eigen::Map<A> vm(v, P);
        gs(c, j) = (vm * Eigen::Map<const A>(u + o, P)).sum();
        gs(C + c, j) = vm.sum();
        if (gx) vm *= T(1) + s(c, j);
      }
    }
  }
  if (gx) {
    auto gz = gx->bottomRows(d);
    gz.noalias() = w.transpose() * gs;
    if constexpr (Carry) gz += gy.bottomRows(d);
  }
}

/// ∂W += [∂γ; ∂β] z0ᵀ and ∂b += Σ_columns [∂γ; ∂β] (nn::Modulate's weight gradients), called
/// right after modulate_vjp with the same staging (a device form may read what it staged).
template <class T>
void modulate_accumulate(const CpuExecutor&, const nn::ModulateShape& sh, const Mat<T>& gs, const Mat<T>& x, Mat<T>& gw,
                         Vec<T>& gb, nn::Staging<Mat<T>>&) {
  gw.noalias() += gs * x.bottomRows(sh.style).transpose();
  gb += gs.rowwise().sum();
}

}  // namespace prilo

namespace prilo::nn {

/// A style generator carries z0 beside the features: between modules, one sample is the column
/// [h; z0] (the features h first, then the d rows of z0), so that a split point holds the two
/// tensors {z_i, z0} and PRILO optimises both, each in its own l1 ball
/// (PhaseOptions::radii, Sequential::blocks). Three modules build such a chain:
///   Duplicate (z0 → [z0; z0]), Carry<Inner> ([h; z0] → [Inner(h); z0]) and Modulate
///   ([u; z0] → [act(u ⊙ (1 + γ(z0)) + β(z0)); z0], per-channel scale and shift from an affine map
///   of z0: the feature-wise affine injection that plays the part of StyleGAN's modulation).
/// Their VJPs are exact; the cotangent of z0 collects every layer's contribution through the
/// carried rows. Each is one class template over the executor (the CPU by default; the CUDA
/// instantiations are gpu::Duplicate, gpu::Modulate and Carry of a device layer), its body
/// written over the customisation points copy_rows, add_row_blocks, modulate_forward,
/// modulate_vjp and modulate_accumulate.

/// z → [z; z]: the start of a style chain (the second copy is the carried z0).
template <class T, class Exec = CpuExecutor>
class Duplicate {
  static_assert(Executor<Exec>, "Duplicate: Exec must model prilo::Executor");

 public:
  using scalar = T;
  using executor_type = Exec;
  using matrix_type = matrix_t<Exec, T>;
  Duplicate() = default;
  explicit Duplicate(Eigen::Index dim, Exec ex = {}) : d_(dim), ex_(std::move(ex)) {
    if (dim <= 0) detail::fail("Duplicate: size must be positive, got ", dim);
  }
  /// The same module on executor ex (e.g. gpu::Duplicate from nn::Duplicate).
  template <class From>
  requires(!std::is_same_v<From, Exec>) explicit Duplicate(const Duplicate<T, From>& other, Exec ex = {})
      : ex_(std::move(ex)) {
    upload(other);
  }
  template <class From>
  void upload(const Duplicate<T, From>& other) {
    d_ = other.dim();
  }
  Eigen::Index dim() const { return d_; }
  const Exec& executor() const { return ex_; }
  void set_executor(Exec ex) { ex_ = std::move(ex); }

  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != d_) detail::fail("Duplicate: expects ", d_, " inputs, got ", in);
    return 2 * d_;
  }
  double flops_per_sample() const { return 0; }
  /// The state after this module: the features (a copy of z0) and the carried z0.
  std::vector<Eigen::Index> output_blocks() const { return {d_, d_}; }

  void forward(const matrix_type& x, matrix_type& y) const {
    require_shape(x, d_, x.cols(), "Duplicate input");
    y.resize(2 * d_, x.cols());
    copy_rows(ex_, y, 0, x, 0, d_);
    copy_rows(ex_, y, d_, x, 0, d_);
  }
  void backward_input(const matrix_type&, const matrix_type&, const matrix_type& gy, matrix_type& gx,
                      matrix_type&) const {
    require_shape(gy, 2 * d_, gy.cols(), "Duplicate output cotangent");
    add_row_blocks(ex_, gx, gy, 0, d_, d_);
  }
  void backward(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx, bool) {
    matrix_type work;
    if (gx) backward_input(x, y, gy, *gx, work);
  }
  ParamList<T> parameters() { return {}; }
  void zero_grad() {}

 private:
  Eigen::Index d_ = 0;
  [[no_unique_address]] Exec ex_;
};

/// Whether a module reads and writes blocks of rows in place: CPU modules with
/// forward_into(x, y), backward_input_into(x, y, gy, gx, work) and the mutating
/// backward_into(x, y, gy, gx*, accumulate_weights) over Eigen::Ref views (nn::Dense,
/// nn::Conv2d and nn::ConvTranspose2d on the CPU).
template <class M, class T = typename M::scalar>
concept InPlaceRows = requires(M& m, const M& c, const Eigen::Ref<const Mat<T>>& a, Eigen::Ref<Mat<T>> b,
                               Mat<T>& work) {
  c.forward_into(a, b);
  c.backward_input_into(a, a, a, b, work);
  m.backward_into(a, a, a, &b, true);
};

/// [h; z0] → [Inner(h); z0]: any module applied to the features, z0 carried unchanged (the
/// cotangent of z0 passes through). Inner is a Module (Dense, Conv2d, ConvTranspose2d, …) on
/// any executor; Carry runs on Inner's. An inner module that reads and writes views
/// (InPlaceRows: nn::Dense, nn::Conv2d and nn::ConvTranspose2d on the CPU) gets the feature rows of the
/// stacked columns in place for the forward pass and both VJPs, and only z0's rows are
/// copied; for any other, the features are copied out of and into the stacked columns (one
/// pass each way), through staging buffers (nn::Staging).
template <class Inner>
class Carry {
  static_assert(
      requires(const Inner& m) {
        { m.input_size() } -> std::convertible_to<Eigen::Index>;
      },
      "nn::Carry<Inner>: Inner must state its input size (input_size()), as Dense, Conv2d and ConvTranspose2d do");

 public:
  using scalar = typename Inner::scalar;
  using T = scalar;
  using executor_type = executor_of_t<Inner>;
  using matrix_type = matrix_t<executor_type, T>;
  using staging_type = Staging<matrix_type>;
  Carry() = default;
  Carry(Inner inner, Eigen::Index style_dim) : inner_(std::move(inner)), d_(style_dim) {
    if (style_dim <= 0) detail::fail("Carry: the carried z0 must have positive size, got ", style_dim);
    in_ = inner_.input_size();
    if (in_ <= 0)  // an activation's input_size() is −1: any size
      detail::fail("Carry: the inner module must have a fixed input size, got ", in_,
                   " (a module that takes any size cannot say which rows are the features)");
    out_ = inner_.output_size(in_);
  }
  /// Becomes a copy of a Carry on another executor (its inner module uploaded: Inner::upload).
  template <class HostInner>
  void upload(const Carry<HostInner>& other) {
    inner_.upload(other.inner());
    d_ = other.style_dim();
    in_ = other.inner().input_size();
    out_ = other.inner().output_size(in_);
  }
  void set_executor(executor_type ex) { inner_.set_executor(std::move(ex)); }
  executor_type executor() const { return executor_of(inner_); }
  Inner& inner() { return inner_; }
  const Inner& inner() const { return inner_; }
  Eigen::Index style_dim() const { return d_; }
  Eigen::Index input_size() const { return in_ + d_; }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != in_ + d_)
      detail::fail("Carry: expects ", in_, " feature rows and ", d_, " rows of z0, got ", in, " rows");
    return out_ + d_;
  }
  std::vector<Eigen::Index> output_blocks() const { return {out_, d_}; }
  /// The inner module's products (its flops_per_sample(), else the dense count).
  double flops_per_sample() const {
    if constexpr (requires { inner_.flops_per_sample(); })
      return double(inner_.flops_per_sample());
    else
      return 2.0 * double(in_) * double(out_);
  }

  void forward(const matrix_type& x, matrix_type& y) const {
    staging_type st;
    matrix_type work;
    forward(x, y, work, st);
  }
  /// The forward pass with the inner module's scratch in `work` and the row blocks in `st`.
  /// The features' copies stay in st (st.fx, st.fy, keyed to this x and y) for the VJP.
  void forward(const matrix_type& x, matrix_type& y, matrix_type& work, staging_type& st) const {
    require_shape(x, in_ + d_, x.cols(), "Carry input [h; z0]");
    const executor_type ex = executor();
    if constexpr (in_place) {
      y.resize(out_ + d_, x.cols());
      auto features = y.topRows(out_);
      inner_.forward_into(x.topRows(in_), features);
      copy_rows(ex, y, out_, x, in_, d_);
      return;
    }
    forget_features(st);
    take_rows(ex, st.fx, x, 0, in_);
    if constexpr (requires { inner_.forward(st.fx, st.fy, work); })
      inner_.forward(st.fx, st.fy, work);
    else
      inner_.forward(st.fx, st.fy);
    y.resize(out_ + d_, x.cols());
    copy_rows(ex, y, 0, st.fy, 0, out_);
    copy_rows(ex, y, out_, x, in_, d_);
    key_features(st, x, y);
  }
  void backward_input(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type& gx,
                      matrix_type& work) const {
    staging_type st;
    backward_input(x, y, gy, gx, work, st);
  }
  /// With the staging of the staged forward pass that produced y from x, x and y unchanged
  /// since (a trace's: the contract of every VJP that reads a trace), the features' copies of
  /// that pass are read, not copied again (a style VAE's chained run spent a tenth of its time
  /// in these row copies). The key is the addresses and column count of x and y, not their
  /// contents: when that staging's last Carry forward was on other buffers (another pass, or
  /// another Carry sharing the staging, as gpu::Sequential's one staging for all modules) the
  /// rows are copied. Only a forward keys its copies, so a VJP copies for itself every time.
  void backward_input(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type& gx,
                      matrix_type& work, staging_type& st) const {
    const executor_type ex = executor();
    if constexpr (in_place) {
      check_vjp_operands(x, y, gy);
      gx.resize(in_ + d_, gy.cols());
      auto features = gx.topRows(in_);
      inner_.backward_input_into(x.topRows(in_), y.topRows(out_), gy.topRows(out_), features, work);
      copy_rows(ex, gx, in_, gy, out_, d_);
      return;
    }
    take_features(ex, st, x, y, gy);
    inner_.backward_input(st.fx, st.fy, st.c, st.d, work);
    put_rows(ex, gx, st.d, gy, out_);
  }
  /// Mutating (the inner module's backward, the staging in a member), one thread at a time.
  void backward(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx,
                bool accumulate_weights) {
    const executor_type ex = executor();
    if constexpr (in_place) {
      check_vjp_operands(x, y, gy);
      if (!gx)
        return inner_.backward_into(x.topRows(in_), y.topRows(out_), gy.topRows(out_), nullptr, accumulate_weights);
      gx->resize(in_ + d_, gy.cols());
      auto block = gx->topRows(in_);
      Eigen::Ref<Mat<T>> features(block);
      inner_.backward_into(x.topRows(in_), y.topRows(out_), gy.topRows(out_), &features, accumulate_weights);
      copy_rows(ex, *gx, in_, gy, out_, d_);
      return;
    }
    take_features(ex, st_, x, y, gy);
    inner_.backward(st_.fx, st_.fy, st_.c, gx ? &st_.d : nullptr, accumulate_weights);
    if (gx) put_rows(ex, *gx, st_.d, gy, out_);
  }
  ParamList<T> parameters() requires requires(Inner& i) { i.parameters(); }
  { return inner_.parameters(); }
  /// Packs the inner module's weights for its products (nn::Dense::pack_weights).
  void pack_weights() requires PacksWeights<Inner> { inner_.pack_weights(); }
  BufferList<T> buffers() requires std::is_same_v<matrix_type, Mat<T>> { return buffers_of(inner_); }
  void zero_grad() { inner_.zero_grad(); }

 private:
  /// The in-place VJPs' operands: x [h; z0], y [Inner(h); z0] and gy of y's shape (checked
  /// before any block of their rows is taken).
  void check_vjp_operands(const matrix_type& x, const matrix_type& y, const matrix_type& gy) const {
    require_shape(x, in_ + d_, x.cols(), "Carry input [h; z0]");
    require_shape(y, out_ + d_, x.cols(), "Carry output [Inner(h); z0]");
    require_shape(gy, out_ + d_, x.cols(), "Carry output cotangent");
  }
  /// Whether st holds the features of the pass from x to y (Staging's key, and the shapes).
  bool holds_features(const staging_type& st, const matrix_type& x, const matrix_type& y) const {
    return x.data() != nullptr && st.key_x == x.data() && st.key_y == y.data() &&
           st.key_cols == static_cast<long long>(x.cols()) && st.fx.rows() == in_ && st.fx.cols() == x.cols() &&
           st.fy.rows() == out_ && st.fy.cols() == x.cols();
  }
  static void forget_features(staging_type& st) {
    st.key_x = st.key_y = nullptr;
    st.key_cols = -1;
  }
  /// st.fx and st.fy now hold the features of the pass from x to y.
  static void key_features(staging_type& st, const matrix_type& x, const matrix_type& y) {
    st.key_x = x.data();
    st.key_y = y.data();
    st.key_cols = static_cast<long long>(x.cols());
  }
  /// dst ← src rows [row, row + n) (dst resized to n × src.cols()).
  static void take_rows(const executor_type& ex, matrix_type& dst, const matrix_type& src, Eigen::Index row,
                        Eigen::Index n) {
    dst.resize(n, src.cols());
    copy_rows(ex, dst, 0, src, row, n);
  }
  /// st.fx, st.fy, st.c ← the feature rows of x, y and gy: the inner module's operands (x's and
  /// y's kept when st holds those of the pass from x to y, see holds_features).
  void take_features(const executor_type& ex, staging_type& st, const matrix_type& x, const matrix_type& y,
                     const matrix_type& gy) const {
    require_shape(gy, out_ + d_, x.cols(), "Carry output cotangent");
    if (!holds_features(st, x, y)) {
      forget_features(st);
      take_rows(ex, st.fx, x, 0, in_);
      take_rows(ex, st.fy, y, 0, out_);
    }
    take_rows(ex, st.c, gy, 0, out_);
  }
  /// gx ← [gh; the carried cotangent, gy rows from `from`].
  void put_rows(const executor_type& ex, matrix_type& gx, const matrix_type& gh, const matrix_type& gy,
                Eigen::Index from) const {
    gx.resize(in_ + d_, gy.cols());
    copy_rows(ex, gx, 0, gh, 0, in_);
    copy_rows(ex, gx, in_, gy, from, d_);
  }

  static constexpr bool in_place = InPlaceRows<Inner>;

  Inner inner_;
  Eigen::Index d_ = 0, in_ = 0, out_ = 0;
  staging_type st_;  // backward()'s
};

/// [u; z0] → [act(u_c ⊙ (1 + γ_c(z0)) + β_c(z0)); z0] for the C channels of P pixels of u
/// (Shape3 layout: channel c is rows c·P … c·P + P − 1), with [γ; β] = W z0 + b, W ∈ ℝ^{2C×d}.
/// W starts as PyTorch's Linear (U(±1/√d)) and b at zero, so that every scale starts near 1.
/// With CarryStyle = false the output is the modulated features alone (the generator's last
/// layer: the image). Backprop with g = gy ⊙ act'(y): ∂/∂u = g ⊙ (1 + γ), ∂/∂γ_c = Σ_p g u,
/// ∂/∂β_c = Σ_p g, ∂/∂z0 = Wᵀ[∂γ; ∂β] (+ the carried cotangent), ∂/∂W = [∂γ; ∂β] z0ᵀ.
/// On executor Exec (the CPU by default; gpu::Modulate is the CUDA instantiation).
template <class T, class Act = LeakyRelu, bool CarryStyle = true, class Exec = CpuExecutor>
class Modulate : public WeightAndBias<T, Exec> {
  using Base = WeightAndBias<T, Exec>;
  using Base::b_;
  using Base::ex_;
  using Base::gb_;
  using Base::gw_;
  using Base::w_;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Modulate: float or double");
  static_assert(Executor<Exec>, "Modulate: Exec must model prilo::Executor");

 public:
  using scalar = T;
  using activation = Act;
  using executor_type = Exec;
  using matrix_type = matrix_t<Exec, T>;
  using staging_type = Staging<matrix_type>;
  static constexpr bool carries_style = CarryStyle;

  Modulate() = default;
  Modulate(Eigen::Index channels, Eigen::Index pixels, Eigen::Index style_dim, Rng& rng, Exec ex = {})
      : Base(std::move(ex)), sh_{channels, pixels, style_dim} {
    if (channels <= 0 || pixels <= 0 || style_dim <= 0)
      detail::fail("Modulate: sizes must be positive, got channels=", channels, " pixels=", pixels,
                   " style=", style_dim);
    Mat<T> w(2 * channels, style_dim);
    const double bound = 1.0 / std::sqrt(double(style_dim));
    for (Eigen::Index j = 0; j < w.cols(); ++j)
      for (Eigen::Index i = 0; i < w.rows(); ++i) w(i, j) = T((2 * rng.uniform() - 1) * bound);
    this->store(w, Mat<T>::Zero(2 * channels, 1));
    this->reset_gradients();
  }
  Modulate(Shape3 features, Eigen::Index style_dim, Rng& rng, Exec ex = {})
      : Modulate(features.channels, features.pixels(), style_dim, rng, std::move(ex)) {}
  /// The same module on executor ex (e.g. gpu::Modulate from nn::Modulate); gradients at zero.
  template <class From>
  requires(!std::is_same_v<From, Exec>) explicit Modulate(const Modulate<T, Act, CarryStyle, From>& other, Exec ex = {})
      : Base(std::move(ex)) {
    upload(other);
  }
  /// Becomes a copy of a modulation on another executor (sizes, weights, bias; through the
  /// host) with zero gradients.
  template <class From>
  void upload(const Modulate<T, Act, CarryStyle, From>& other) {
    sh_ = other.shape();
    this->store(other.host_weight(), other.host_bias());
    this->reset_gradients();
  }

  const ModulateShape& shape() const { return sh_; }
  Eigen::Index features() const { return sh_.features(); }
  Eigen::Index input_size() const { return sh_.features() + sh_.style; }
  Eigen::Index output_size(Eigen::Index in = -1) const {
    if (in >= 0 && in != input_size())
      detail::fail("Modulate: expects ", sh_.features(), " feature rows and ", sh_.style, " rows of z0, got ", in,
                   " rows");
    return sh_.features() + (CarryStyle ? sh_.style : 0);
  }
  std::vector<Eigen::Index> output_blocks() const {
    if constexpr (CarryStyle)
      return {sh_.features(), sh_.style};
    else
      return {sh_.features()};
  }
  /// The affine map of z0 (the element-wise modulation is not counted, as no activation is).
  double flops_per_sample() const { return 2.0 * double(2 * sh_.channels) * double(sh_.style); }

  void forward(const matrix_type& x, matrix_type& y) const {
    staging_type st;
    matrix_type work;
    forward(x, y, work, st);
  }
  /// The forward pass with the style values in `st` (`work` unused: the signature
  /// gpu::Sequential calls).
  void forward(const matrix_type& x, matrix_type& y, matrix_type&, staging_type& st) const {
    require_shape(x, input_size(), x.cols(), "Modulate input [u; z0]");
    modulate_forward(ex_, Act{}, std::bool_constant<CarryStyle>{}, sh_, w_, b_, x, y, st);
  }
  void backward_input(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type& gx,
                      matrix_type& work) const {
    staging_type st;
    backward_input(x, y, gy, gx, work, st);
  }
  /// The input VJP with the style cotangent in `work` and the style values in `st`.
  void backward_input(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type& gx,
                      matrix_type& work, staging_type& st) const {
    vjp(x, y, gy, &gx, work, st);
  }
  /// Mutating (member scratch), one thread at a time.
  void backward(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx,
                bool accumulate_weights) {
    vjp(x, y, gy, gx, gs_, st_);
    if (accumulate_weights) modulate_accumulate(ex_, sh_, gs_, x, gw_, gb_, st_);
  }

 private:
  template <class, class, bool, class>
  friend class Modulate;

  void vjp(const matrix_type& x, const matrix_type& y, const matrix_type& gy, matrix_type* gx, matrix_type& gs,
           staging_type& st) const {
    require_shape(x, input_size(), x.cols(), "Modulate input [u; z0]");
    require_shape(gy, output_size(), x.cols(), "Modulate output cotangent");
    require_shape(y, output_size(), x.cols(), "Modulate output");
    modulate_vjp(ex_, Act{}, std::bool_constant<CarryStyle>{}, sh_, w_, b_, x, y, gy, gx, gs, st);
  }

  ModulateShape sh_;
  matrix_type gs_;   // backward()'s style cotangent
  staging_type st_;  // backward()'s staging
};

}  // namespace prilo::nn

// A weight matrix packed once for its products with batches of columns, y = W x and gx = Wᵀ g,
// through oneDNN's matmul (when PRILO_HAVE_ONEDNN is defined and the program links DNNL::dnnl;
// otherwise the class does not exist and nn::Dense uses its GEMM). A BLAS call repacks both
// operands on every product; in a reconstruction the generator's weights never change, so the
// repacking of the weights (8 % of a PRILO-MII run with OpenBLAS, benchmarks/README.md) is work
// done again thousands of times. Here it is done once per layout that oneDNN's kernels ask for.
#pragma once

#if defined(PRILO_HAVE_ONEDNN)

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core.hpp"

namespace prilo::onednn {

/// A snapshot of a float weight matrix W (m×k) and its packed forms for y = W x and gx = Wᵀ g,
/// x and g batches of columns (whole matrices or views with any outer stride, as Eigen::Ref
/// passes them). The snapshot is taken at construction: later changes to the matrix it was
/// made from are not seen (nn::Dense drops its PackedWeights whenever its weights may change).
/// Const and thread-safe: the packed forms and the matmul primitives (one per transposition,
/// column count and pair of strides: a handful in a reconstruction, each compiled by oneDNN's
/// JIT) are made on first use under a lock and then only read;
/// each call runs single-threaded inside a parallel region (OpenMP), as OpenBLAS does, with
/// its scratch memory in the calling thread.
class PackedWeights {
 public:
  explicit PackedWeights(const Mat<float>& w) : w_(w) {
    if (w_.size() == 0) detail::fail("PackedWeights: an empty weight matrix");
  }

  Eigen::Index rows() const { return w_.rows(); }
  Eigen::Index cols() const { return w_.cols(); }

  /// y = W x (transposed = false: x has cols() rows, y rows()) or y = Wᵀ x (transposed = true:
  /// x has rows() rows, y cols()); y must already have its shape (n = x.cols() columns) and
  /// must not overlap x (as with Eigen's noalias()).
  void product(bool transposed, const Eigen::Ref<const Mat<float>>& x, Eigen::Ref<Mat<float>> y) const {
    const auto [k, m] = inner_outer(transposed);
    require_shape(x, k, x.cols(), "PackedWeights product input");
    require_shape(y, m, x.cols(), "PackedWeights product output");
    if (x.cols() == 0) return;
    const Key key{transposed, x.cols(), x.outerStride(), y.outerStride()};
    const Entry& e = entry(key);
    using namespace dnnl;
    static thread_local std::vector<char> scratch;
    static thread_local std::unique_ptr<stream> s;
    if (!s) s = std::make_unique<stream>(engine_());
    if (scratch.size() < e.scratch_bytes) scratch.resize(e.scratch_bytes);
    Bound* b = nullptr;
    try {
      b = &bound(key, e);
      b->args.at(DNNL_ARG_SRC).set_data_handle(const_cast<float*>(x.data()));
      b->args.at(DNNL_ARG_DST).set_data_handle(y.data());
      b->args.at(DNNL_ARG_SCRATCHPAD).set_data_handle(scratch.data());
      b->args.at(DNNL_ARG_WEIGHTS) = *e.weights;
      e.prim.execute(*s, b->args);
      s->wait();
      b->args.at(DNNL_ARG_WEIGHTS) = memory();  // the cache keeps no hold on the weights
    } catch (const dnnl::error& err) {
      if (b) b->args.at(DNNL_ARG_WEIGHTS) = memory();
      detail::fail("PackedWeights: oneDNN's matmul failed: ", err.what());
    }
  }

  /// The oneDNN implementation the products of n columns run (e.g. "brg:avx512_core").
  std::string implementation(bool transposed, Eigen::Index n) const {
    const auto [k, m] = inner_outer(transposed);
    return entry(Key{transposed, n, k, m}).impl;
  }

 private:
  // In oneDNN's row-major terms the product is yᵀ (n×m) = xᵀ (n×k) · op(W)ᵀ (k×m): a column-major
  // batch with outer stride ld is a row-major n×k matrix with row stride ld, and op(W)ᵀ is W's
  // own column-major storage read as k×m (entry()).
  struct Key {
    bool transposed;
    Eigen::Index n, ldx, ldy;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    dnnl::matmul prim;
    dnnl::memory::desc src_md, dst_md, scratch_md;
    std::size_t scratch_bytes = 0;
    const dnnl::memory* weights = nullptr;
    std::string impl;
  };

  /// A calling thread's argument map for one entry: its memory objects (source, destination,
  /// scratch pad) and a slot for the weights, made on the thread's first product of that entry,
  /// then only given each call's pointers and weights. Building them on every call took several
  /// allocations per product (the objects and the map's nodes).
  struct Bound {
    std::uint64_t owner = 0;
    Key key{};
    std::unordered_map<int, dnnl::memory> args;
  };
  /// This thread's Bound for (this object, key). Owners are serial numbers that are never
  /// reused, so an entry of a destroyed PackedWeights is never taken for a new one's. The
  /// cache keeps the kBound entries a thread used last (a reconstruction uses a handful),
  /// most recent first.
  Bound& bound(const Key& key, const Entry& e) const {
    static constexpr std::size_t kBound = 32;
    static thread_local std::vector<std::unique_ptr<Bound>> cache;
    for (std::size_t i = 0; i < cache.size(); ++i)
      if (cache[i]->owner == serial_ && cache[i]->key == key) {
        std::rotate(cache.begin(), cache.begin() + std::ptrdiff_t(i), cache.begin() + std::ptrdiff_t(i) + 1);
        return *cache.front();
      }
    using namespace dnnl;
    auto b = std::make_unique<Bound>();
    b->owner = serial_;
    b->key = key;
    b->args = {{DNNL_ARG_SRC, memory(e.src_md, engine_(), DNNL_MEMORY_NONE)},
               {DNNL_ARG_WEIGHTS, memory()},
               {DNNL_ARG_DST, memory(e.dst_md, engine_(), DNNL_MEMORY_NONE)},
               {DNNL_ARG_SCRATCHPAD, memory(e.scratch_md, engine_(), DNNL_MEMORY_NONE)}};
    if (cache.size() == kBound) cache.pop_back();
    cache.insert(cache.begin(), std::move(b));
    return *cache.front();
  }
  static std::uint64_t next_serial() {
    static std::atomic<std::uint64_t> n{0};
    return ++n;
  }
  /// op(W)'s inner and outer dimensions: {k, m}, op(W) being m×k.
  std::pair<Eigen::Index, Eigen::Index> inner_outer(bool transposed) const {
    return transposed ? std::pair{w_.rows(), w_.cols()} : std::pair{w_.cols(), w_.rows()};
  }

  static const dnnl::engine& engine_() {
    static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
  }

  const Entry& entry(const Key& key) const {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    using namespace dnnl;
    using dt = memory::data_type;
    const memory::dim n = key.n;
    const auto [k, m] = inner_outer(key.transposed);
    try {
      Entry e;
      e.src_md = memory::desc({n, k}, dt::f32, memory::dims{key.ldx, 1});
      e.dst_md = memory::desc({n, m}, dt::f32, memory::dims{key.ldy, 1});
      // op(W)ᵀ as k×m over W's column-major storage (W is rows()×cols(), leading dimension
      // rows()): untransposed, element (j, i) = W(i, j) at i + j·rows() → strides {rows(), 1};
      // transposed, op(W)ᵀ = W, element (i, j) at i + j·rows() → strides {1, rows()}.
      const memory::dim ld = w_.rows();
      const memory::desc user_md({k, m}, dt::f32, key.transposed ? memory::dims{1, ld} : memory::dims{ld, 1});
      const memory::desc any_md({k, m}, dt::f32, memory::format_tag::any);
      primitive_attr attr;
      attr.set_scratchpad_mode(scratchpad_mode::user);
      const matmul::primitive_desc pd(matmul::desc(e.src_md, any_md, e.dst_md), attr, engine_());
      e.prim = matmul(pd);
      e.scratch_md = pd.scratchpad_desc();
      e.scratch_bytes = e.scratch_md.get_size();
      e.impl = pd.impl_info_str();
      e.weights = &packed(key.transposed, pd.weights_desc(), user_md);
      return entries_.emplace(key, std::move(e)).first->second;
    } catch (const dnnl::error& err) {
      detail::fail("PackedWeights: oneDNN could not set up the ", m, "x", k, " by ", n,
                   "-column product: ", err.what());
    }
  }

  /// op(W)ᵀ in the layout `want`, reordered from W's storage (user_md) on first request. Keyed
  /// by the transposition too: a square W's two forms have the same dimensions and layout.
  const dnnl::memory& packed(bool transposed, const dnnl::memory::desc& want, const dnnl::memory::desc& user_md) const {
    for (const auto& p : packed_)
      if (p.transposed == transposed && p.md == want) return *p.mem;
    using namespace dnnl;
    auto mem = std::make_unique<memory>(want, engine_());
    memory user(user_md, engine_(), const_cast<float*>(w_.data()));
    stream s(engine_());
    reorder(user, *mem).execute(s, user, *mem);
    s.wait();
    packed_.push_back({transposed, want, std::move(mem)});
    return *packed_.back().mem;
  }

  Mat<float> w_;
  std::uint64_t serial_ = next_serial();
  mutable std::mutex mutex_;
  mutable std::map<Key, Entry> entries_;
  struct Packed {
    bool transposed;
    dnnl::memory::desc md;
    std::unique_ptr<dnnl::memory> mem;
  };
  mutable std::vector<Packed> packed_;
};

}  // namespace prilo::onednn

#endif  // PRILO_HAVE_ONEDNN

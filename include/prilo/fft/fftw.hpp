// Move-only RAII wrappers around FFTW plans for batched 2-D transforms, float and double.
#pragma once

#include <fftw3.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <complex>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "../cache.hpp"
#include "../core.hpp"
#include "../io/file.hpp"

namespace prilo::fftw {

/// How hard FFTW's planner looks for a fast algorithm (its FFTW_ESTIMATE / FFTW_MEASURE /
/// FFTW_PATIENT flags), for plans created from then on.
///  * measure (default): times candidate algorithms, a few ms per plan. Processes may pick
///    different algorithms, so results can differ between runs at rounding level (and HIO,
///    which amplifies rounding, visibly).
///  * estimate: no timing; the same algorithm in every process, so a seed reproduces a run
///    bit for bit on the same machine, build and thread count.
///  * patient: a wider search, about 0.1 s per plan for a batch of 28×28 images (seconds for
///    large images). Its plans for the solvers' batches of 28×28 images run an r2c + c2r pair
///    in 1.85 µs per image against measure's 2.7–2.85 µs (the 2-core VM, batches of 64 and 128,
///    idle); FFTW_EXHAUSTIVE found nothing faster. Keep its measurements across processes with
///    WisdomFile, so that only the first run pays for the search.
/// Set it with set_planner_effort() or the environment variable PRILO_FFTW_EFFORT
/// (estimate, measure, patient); a program can change the fallback used when neither chooses
/// (measure) with set_default_planner_effort().
enum class Effort { estimate, measure, patient };

/// Parses "estimate", "measure" or "patient"; anything else throws invalid_input.
inline Effort parse_effort(const std::string& s) {
  if (s == "estimate") return Effort::estimate;
  if (s == "measure") return Effort::measure;
  if (s == "patient") return Effort::patient;
  throw invalid_input("FFTW planner effort: unknown value \"" + s + "\" (known: estimate, measure, patient)");
}

/// The name parse_effort reads back.
inline const char* effort_name(Effort e) {
  return e == Effort::estimate ? "estimate" : e == Effort::patient ? "patient" : "measure";
}

namespace detail {
inline std::atomic<int>& effort_slot() {
  static std::atomic<int> e{-1};  // -1: not chosen yet
  return e;
}
inline std::atomic<int>& default_effort_slot() {
  static std::atomic<int> e{int(Effort::measure)};
  return e;
}
/// Plans of precision T made by this process (WisdomFile saves only when it grew).
template <class T>
std::atomic<long>& plans_made() {
  static std::atomic<long> n{0};
  return n;
}
}  // namespace detail

/// Chooses the planner effort of plans created from now on (existing plans are kept).
inline void set_planner_effort(Effort e) {
  detail::effort_slot().store(int(e));
}

/// The effort used when neither set_planner_effort nor $PRILO_FFTW_EFFORT chooses one (the
/// library's is measure; prilo-reconstruct makes it patient, with a WisdomFile).
inline void set_default_planner_effort(Effort e) {
  detail::default_effort_slot().store(int(e));
}

/// The effort new plans get: set_planner_effort's, else $PRILO_FFTW_EFFORT's (an unknown value
/// throws invalid_input), else the default (set_default_planner_effort, or measure).
inline Effort planner_effort() {
  if (const int e = detail::effort_slot().load(); e >= 0) return Effort(e);
  if (const char* v = std::getenv("PRILO_FFTW_EFFORT"); v && *v) return parse_effort(v);
  return Effort(detail::default_effort_slot().load());
}

inline unsigned planner_flags(Effort e) {
  return e == Effort::estimate ? FFTW_ESTIMATE : e == Effort::patient ? FFTW_PATIENT : FFTW_MEASURE;
}

/// FFTW's planner is not thread-safe; every plan creation and destruction holds this lock.
inline std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

template <class T>
struct api;

template <>
struct api<double> {
  using plan = fftw_plan;
  using cplx = fftw_complex;
  static void* malloc(std::size_t n) { return fftw_malloc(n); }
  static void free(void* p) { fftw_free(p); }
  static void destroy(plan p) { fftw_destroy_plan(p); }
  static plan many_r2c(int rank, const int* n, int howmany, double* in, int idist, cplx* out, int odist,
                       unsigned flags) {
    return fftw_plan_many_dft_r2c(rank, n, howmany, in, nullptr, 1, idist, out, nullptr, 1, odist, flags);
  }
  static plan many_c2r(int rank, const int* n, int howmany, cplx* in, int idist, double* out, int odist,
                       unsigned flags) {
    return fftw_plan_many_dft_c2r(rank, n, howmany, in, nullptr, 1, idist, out, nullptr, 1, odist, flags);
  }
  static plan many_c2c(int rank, const int* n, int howmany, cplx* in, int idist, cplx* out, int odist, int sign,
                       unsigned flags) {
    return fftw_plan_many_dft(rank, n, howmany, in, nullptr, 1, idist, out, nullptr, 1, odist, sign, flags);
  }
  static void r2c(plan p, double* in, cplx* out) { fftw_execute_dft_r2c(p, in, out); }
  static void c2r(plan p, cplx* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void c2c(plan p, cplx* in, cplx* out) { fftw_execute_dft(p, in, out); }
  static int alignment_of(void* p) { return fftw_alignment_of(static_cast<double*>(p)); }
  static int import_wisdom(const char* text) { return fftw_import_wisdom_from_string(text); }
  static void export_wisdom(void (*put)(char, void*), void* data) { fftw_export_wisdom(put, data); }
  static constexpr const char* name = "double";
};

template <>
struct api<float> {
  using plan = fftwf_plan;
  using cplx = fftwf_complex;
  static void* malloc(std::size_t n) { return fftwf_malloc(n); }
  static void free(void* p) { fftwf_free(p); }
  static void destroy(plan p) { fftwf_destroy_plan(p); }
  static plan many_r2c(int rank, const int* n, int howmany, float* in, int idist, cplx* out, int odist,
                       unsigned flags) {
    return fftwf_plan_many_dft_r2c(rank, n, howmany, in, nullptr, 1, idist, out, nullptr, 1, odist, flags);
  }
  static plan many_c2r(int rank, const int* n, int howmany, cplx* in, int idist, float* out, int odist,
                       unsigned flags) {
    return fftwf_plan_many_dft_c2r(rank, n, howmany, in, nullptr, 1, idist, out, nullptr, 1, odist, flags);
  }
  static plan many_c2c(int rank, const int* n, int howmany, cplx* in, int idist, cplx* out, int odist, int sign,
                       unsigned flags) {
    return fftwf_plan_many_dft(rank, n, howmany, in, nullptr, 1, idist, out, nullptr, 1, odist, sign, flags);
  }
  static void r2c(plan p, float* in, cplx* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void c2r(plan p, cplx* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void c2c(plan p, cplx* in, cplx* out) { fftwf_execute_dft(p, in, out); }
  static int alignment_of(void* p) { return fftwf_alignment_of(static_cast<float*>(p)); }
  static int import_wisdom(const char* text) { return fftwf_import_wisdom_from_string(text); }
  static void export_wisdom(void (*put)(char, void*), void* data) { fftwf_export_wisdom(put, data); }
  static constexpr const char* name = "float";
};

/// Kinds of batched 2-D transform a plan performs.
enum class Kind { r2c, c2r, c2c_forward, c2c_backward };

/// One FFTW plan for `howmany` contiguous h×w row-major images. Move-only: the plan is
/// destroyed exactly once. Executed with FFTW's new-array interface, so one plan serves every
/// buffer of the same layout and alignment (FFTW guarantees thread-safe execution). Plans are
/// made out of place: execute() refuses an output that is its input.
template <class T>
class Plan {
 public:
  using A = api<T>;
  using C = std::complex<T>;

  Plan() = default;
  Plan(Kind kind, int h, int w, int howmany, bool unaligned = false) : kind_(kind), unaligned_(unaligned) {
    const auto what = [&] {
      std::ostringstream os;
      os << "FFTW " << kind_name(kind) << " plan of " << howmany << " " << h << "x" << w << " image(s) in " << A::name;
      return os.str();
    };
    if (h < 1 || w < 1 || howmany < 0) prilo::detail::fail(what(), ": the sides must be >= 1 and the image count >= 0");
    if ((long long)h * w > INT_MAX)
      prilo::detail::fail(what(), ": more than ", INT_MAX, " pixels an image (FFTW's int sizes)");
    const int n[2] = {h, w};
    const int real_n = h * w;
    const int half_n = h * (w / 2 + 1);
    const int in_n = (kind == Kind::r2c) ? real_n : (kind == Kind::c2r ? half_n : real_n);
    const int out_n = (kind == Kind::r2c) ? half_n : real_n;
    // FFTW_UNALIGNED plans run on arrays of any alignment (at some SIMD cost). The flags first:
    // planner_effort() throws for an unknown $PRILO_FFTW_EFFORT.
    const unsigned flags = planner_flags(planner_effort()) | (unaligned ? FFTW_UNALIGNED : 0u);
    // Plan on scratch arrays of FFTW's alignment: FFTW_MEASURE and FFTW_PATIENT overwrite them.
    const std::size_t in_bytes = std::size_t(in_n) * howmany * (kind == Kind::r2c ? sizeof(T) : sizeof(C));
    const std::size_t out_bytes = std::size_t(out_n) * howmany * (kind == Kind::c2r ? sizeof(T) : sizeof(C));
    const auto release = [](void* p) { A::free(p); };
    const std::unique_ptr<void, decltype(release)> in_buf(A::malloc(in_bytes), release),
        out_buf(A::malloc(out_bytes), release);
    if (howmany > 0 && (!in_buf || !out_buf)) prilo::detail::fail(what(), ": out of memory for the planner's arrays");
    void* in = in_buf.get();
    void* out = out_buf.get();
    {
      std::lock_guard lock(planner_mutex());
      switch (kind) {
        case Kind::r2c:
          plan_ =
              A::many_r2c(2, n, howmany, static_cast<T*>(in), in_n, static_cast<typename A::cplx*>(out), out_n, flags);
          break;
        case Kind::c2r:
          plan_ =
              A::many_c2r(2, n, howmany, static_cast<typename A::cplx*>(in), in_n, static_cast<T*>(out), out_n, flags);
          break;
        case Kind::c2c_forward:
          plan_ = A::many_c2c(2, n, howmany, static_cast<typename A::cplx*>(in), in_n,
                              static_cast<typename A::cplx*>(out), out_n, FFTW_FORWARD, flags);
          break;
        case Kind::c2c_backward:
          plan_ = A::many_c2c(2, n, howmany, static_cast<typename A::cplx*>(in), in_n,
                              static_cast<typename A::cplx*>(out), out_n, FFTW_BACKWARD, flags);
          break;
      }
    }
    if (!plan_) throw std::runtime_error(what() + ": FFTW could not create it");
    ++detail::plans_made<T>();
  }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  Plan(Plan&& o) noexcept : plan_(std::exchange(o.plan_, nullptr)), kind_(o.kind_), unaligned_(o.unaligned_) {}
  Plan& operator=(Plan&& o) noexcept {
    if (this != &o) {
      reset();
      plan_ = std::exchange(o.plan_, nullptr);
      kind_ = o.kind_;
      unaligned_ = o.unaligned_;
    }
    return *this;
  }
  ~Plan() { reset(); }

  /// Executes on new arrays, another for the output than the input. Unless the plan was made
  /// `unaligned`, FFTW requires them to have FFTW's SIMD alignment (which Eigen's heap
  /// allocations satisfy; refused otherwise); callers with other pointers copy through an
  /// aligned buffer (see aligned()) or use an unaligned plan. The arrays' sizes are not known
  /// here: they must hold howmany images of the plan's layout.
  void execute(const T* in, C* out) const {
    check(Kind::r2c, in, out);
    A::r2c(plan_, const_cast<T*>(in), reinterpret_cast<typename A::cplx*>(out));
  }
  void execute(C* in, T* out) const {
    check(Kind::c2r, in, out);
    A::c2r(plan_, reinterpret_cast<typename A::cplx*>(in), out);
  }
  void execute(const C* in, C* out) const {
    check(kind_ == Kind::c2c_backward ? Kind::c2c_backward : Kind::c2c_forward, in, out);
    A::c2c(plan_, reinterpret_cast<typename A::cplx*>(const_cast<C*>(in)), reinterpret_cast<typename A::cplx*>(out));
  }
  static bool aligned(const void* p) { return A::alignment_of(const_cast<void*>(p)) == 0; }
  /// Whether every column of batches with these bases and column byte sizes starts with
  /// FFTW's alignment (so an aligned plan may run on blocks of columns): each base aligned and
  /// each column size a multiple of 16 bytes (FFTW's SIMD alignment). Otherwise plans made
  /// FFTW_UNALIGNED are needed.
  static bool aligned_columns(std::initializer_list<std::size_t> column_bytes,
                              std::initializer_list<const void*> bases) {
    return std::all_of(column_bytes.begin(), column_bytes.end(), [](std::size_t b) { return b % 16 == 0; }) &&
           std::all_of(bases.begin(), bases.end(), [](const void* p) { return aligned(p); });
  }

 private:
  static const char* kind_name(Kind k) {
    return k == Kind::r2c ? "r2c" : k == Kind::c2r ? "c2r" : k == Kind::c2c_forward ? "forward c2c" : "backward c2c";
  }
  void check(Kind k, const void* in, const void* out) const {
    if (!plan_) prilo::detail::fail("FFTW plan: executed without a plan (default-constructed or moved from)");
    if (k != kind_) prilo::detail::fail("FFTW plan: a ", kind_name(kind_), " plan executed as ", kind_name(k));
    if (in == out)
      prilo::detail::fail("FFTW ", kind_name(kind_), " plan: the output is the input (plans are out of place)");
    if (!unaligned_ && (!aligned(in) || !aligned(out)))
      prilo::detail::fail(
          "FFTW ", kind_name(kind_),
          " plan: an array without FFTW's SIMD alignment (use an unaligned plan, or copy to an aligned buffer)");
  }
  void reset() {
    if (plan_) {
      std::lock_guard lock(planner_mutex());
      A::destroy(plan_);
      plan_ = nullptr;
    }
  }
  typename A::plan plan_ = nullptr;
  Kind kind_ = Kind::r2c;
  bool unaligned_ = false;
};

/// A cache of plans for one image size, keyed by (kind, howmany); plans are created on first
/// use and reused. Safe to use from several threads at once.
template <class T>
class PlanCache {
 public:
  PlanCache(int h, int w) : h_(h), w_(w) {}
  PlanCache(PlanCache&&) noexcept = default;
  PlanCache& operator=(PlanCache&&) noexcept = default;

  const Plan<T>& get(Kind kind, int howmany, bool unaligned = false) const {
    std::lock_guard lock(*mutex_);
    auto key = std::make_tuple(int(kind), howmany, unaligned);
    auto it = plans_.find(key);
    if (it == plans_.end()) it = plans_.emplace(key, std::make_unique<Plan<T>>(kind, h_, w_, howmany, unaligned)).first;
    return *it->second;
  }

 private:
  int h_, w_;
  mutable std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
  mutable std::map<std::tuple<int, int, bool>, std::unique_ptr<Plan<T>>> plans_;
};

/// What WisdomFile found when it was opened.
enum class WisdomStatus {
  loaded,    ///< the file's wisdom is in use
  missing,   ///< no such file yet (the first run on this machine): it will be written
  rejected,  ///< the file is unreadable or not FFTW wisdom of this precision and version: ignored, rewritten
  foreign,   ///< the file is not FFTW wisdom at all (some other file): ignored and left as it is
  skipped,   ///< planner effort estimate: wisdom would change its plans, so none is read or written
  disabled,  ///< no file given (no cache folder)
};

/// FFTW's wisdom (the planner's timings) for precision T kept in a file across processes, so
/// that only the first run on a machine pays for measure's or patient's search. Construction
/// imports the file; destruction (or save()) writes the process's wisdom back when plans were
/// made in between: to a temporary file in the same folder, then renamed over the old one, so
/// that concurrent processes never see half a file (the last one's wisdom wins; each holds what
/// it read plus its own). A file that cannot be read, parsed or written is a cache miss, never
/// an error; status() says which. Wisdom is measured on one machine and one FFTW build: a file
/// from another machine gives correct results but maybe slow plans (delete it to measure again).
/// Under planner effort estimate nothing is read or written (FFTW would use the wisdom for
/// estimate plans too, and they would no longer be the same in every process).
template <class T>
class WisdomFile {
 public:
  /// The file a user's choice names: "" the default_path(), "none" no file (an empty path), else
  /// that path (prilo-reconstruct's --fftw-wisdom).
  static std::filesystem::path path_of(const std::string& choice) {
    return choice.empty() ? default_path() : choice == "none" ? std::filesystem::path() : std::filesystem::path(choice);
  }
  /// The default file: $PRILO_FFTW_WISDOM when set ("none": no file), else
  /// user_cache_dir()/fftw-wisdom-<float|double>.txt (empty without a cache folder).
  static std::filesystem::path default_path() {
    if (const char* v = std::getenv("PRILO_FFTW_WISDOM"); v && *v)
      return std::string_view(v) == "none" ? std::filesystem::path() : std::filesystem::path(v);
    const auto dir = user_cache_dir();
    return dir.empty() ? dir : dir / (std::string("fftw-wisdom-") + api<T>::name + ".txt");
  }

  explicit WisdomFile(std::filesystem::path file = default_path()) : file_(std::move(file)) {
    if (file_.empty()) {
      status_ = WisdomStatus::disabled;
    } else if (planner_effort() == Effort::estimate) {
      status_ = WisdomStatus::skipped;
    } else {
      std::ifstream in(file_, std::ios::binary);
      if (!in) {
        std::error_code ec;
        status_ = std::filesystem::exists(file_, ec) ? WisdomStatus::rejected : WisdomStatus::missing;
      } else {
        std::ostringstream text;
        text << in.rdbuf();
        std::lock_guard lock(planner_mutex());
        // FFTW's wisdom text starts "(fftw-"; any other non-empty file is someone else's: never
        // overwritten (a mistyped --fftw-wisdom must not cost the file it names)
        if (!in.bad() && !text.str().empty() && text.str().rfind("(fftw-", 0) != 0) {
          status_ = WisdomStatus::foreign;
        } else if (in.bad() || !api<T>::import_wisdom(text.str().c_str())) {
          status_ = WisdomStatus::rejected;
        } else {
          status_ = WisdomStatus::loaded;
          written_ = text.str();
        }
      }
    }
    plans_at_load_ = detail::plans_made<T>().load();
  }
  WisdomFile(const WisdomFile&) = delete;
  WisdomFile& operator=(const WisdomFile&) = delete;
  ~WisdomFile() {
    try {
      save();
    } catch (...) {  // a cache that cannot be written is only not updated
    }
  }

  WisdomStatus status() const { return status_; }
  const std::filesystem::path& path() const { return file_; }

  /// Writes the wisdom now if plans were made since the last load or save and it differs from
  /// the file's; false when it had to but could not (the cache is then only not updated: a
  /// program says so, the destructor cannot). Only the default cache folder (user_cache_dir())
  /// is created when missing; a file in another missing folder cannot be written.
  bool save() {
    if (status_ == WisdomStatus::skipped || status_ == WisdomStatus::disabled || status_ == WisdomStatus::foreign)
      return true;
    const long made = detail::plans_made<T>().load();
    if (made == plans_at_load_) return true;
    std::string text;
    {
      std::lock_guard lock(planner_mutex());
      api<T>::export_wisdom([](char c, void* s) { static_cast<std::string*>(s)->push_back(c); }, &text);
    }
    if (text == written_) {  // plans made from the wisdom: nothing new to keep
      plans_at_load_ = made;
      return true;
    }
    namespace fs = std::filesystem;
    std::error_code ec;
    // the default cache folder is made on first use; a folder the user named is not (a
    // mistyped path must not leave folders behind: the save fails, and save() says so)
    if (const fs::path cache = user_cache_dir();
        !cache.empty() && file_.has_parent_path() && file_.parent_path().lexically_normal() == cache.lexically_normal())
      fs::create_directories(file_.parent_path(), ec);
    try {
      io::detail::write_file_atomic(file_, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    } catch (const file_error&) {
      return false;
    }
    written_ = std::move(text);
    plans_at_load_ = made;
    return true;
  }

 private:
  std::filesystem::path file_;
  WisdomStatus status_ = WisdomStatus::disabled;
  long plans_at_load_ = 0;
  std::string written_;  // the file's text as last read or written
};

/// One line for a program's log: where the wisdom came from.
inline std::string wisdom_note(WisdomStatus s, const std::filesystem::path& file) {
  switch (s) {
    case WisdomStatus::loaded: return "FFTW wisdom from " + file.string();
    case WisdomStatus::missing: return "FFTW wisdom: none yet, plans measured now and saved to " + file.string();
    case WisdomStatus::rejected:
      return "FFTW wisdom: " + file.string() + " is unreadable or not FFTW wisdom of this build; measuring again";
    case WisdomStatus::foreign:
      return "FFTW wisdom: " + file.string() + " is not an FFTW wisdom file; neither read nor overwritten";
    case WisdomStatus::skipped: return "FFTW wisdom: not used (planner effort estimate)";
    case WisdomStatus::disabled: return "FFTW wisdom: no cache file";
  }
  return {};
}

}  // namespace prilo::fftw

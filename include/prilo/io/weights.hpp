// Binary network-weights files ("PRILOWTS", docs/weights-format.md): checked, atomic save and load.
#pragma once

#include "../core.hpp"
#include "file.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace prilo::io {

inline constexpr char weights_magic[8] = {'P', 'R', 'I', 'L', 'O', 'W', 'T', 'S'};
inline constexpr std::uint32_t weights_version = 1;

/// Scalar type codes stored in the header.
enum class WeightsScalar : std::uint32_t { float32 = 1, float64 = 2 };

/// One named matrix (stored column-major).
template <class T>
struct Tensor {
  std::string name;
  Mat<T> value;
};

/// Contents of a weights file: an architecture description (tag + layer sizes) and the
/// tensors in file order. T is the in-memory scalar type (float or double).
template <class T>
struct WeightsFile {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "WeightsFile: T must be float or double");

  std::string arch;                  ///< architecture tag, e.g. "vae-mlp"
  std::vector<std::uint32_t> sizes;  ///< layer sizes
  std::vector<Tensor<T>> tensors;

  /// Appends a tensor (names must be unique and non-empty; checked by save_weights).
  void add(std::string name, Mat<T> value) { tensors.push_back({std::move(name), std::move(value)}); }

  /// Pointer to the tensor called `name`, or nullptr. Not on a temporary file (the pointer
  /// would dangle): keep the file in a variable, or take the tensor by value with at().
  const Mat<T>* find(std::string_view name) const& {
    for (const auto& t : tensors)
      if (t.name == name) return &t.value;
    return nullptr;
  }
  const Mat<T>* find(std::string_view name) const&& = delete;
  /// The tensor called `name`; throws invalid_input when there is none.
  const Mat<T>& at(std::string_view name) const& {
    if (const auto* m = find(name)) return *m;
    prilo::detail::fail("weights: no tensor named \"", name, "\" (architecture \"", arch, "\", ", tensors.size(),
                        " tensors)");
  }
  /// Like at(), and also checks the shape: invalid_input "<name>: expected RxC, got rxc".
  const Mat<T>& at(std::string_view name, Eigen::Index rows, Eigen::Index cols) const& {
    const auto& m = at(name);
    const std::string what = "weights: tensor \"" + std::string(name) + "\"";
    require_shape(m, rows, cols, what.c_str());
    return m;
  }
  /// On a temporary file (load_weights(p).at("w")) the tensor is returned by value, so a
  /// reference bound to the result keeps it alive instead of dangling.
  Mat<T> at(std::string_view name) const&& { return at(name); }
  Mat<T> at(std::string_view name, Eigen::Index rows, Eigen::Index cols) const&& { return at(name, rows, cols); }
};

/// Header fields of a weights file (read_weights_info reads only these).
struct WeightsInfo {
  std::uint32_t version = 0;
  WeightsScalar scalar = WeightsScalar::float64;
  std::string arch;
  std::vector<std::uint32_t> sizes;
  std::uint32_t tensor_count = 0;
  std::uint64_t payload_bytes = 0;
  std::uint32_t payload_crc32 = 0;
  std::uint64_t header_bytes = 0;  ///< offset of the payload
};

namespace detail {

inline constexpr std::uint32_t weights_max_string = 4096;     // arch tag and tensor names
inline constexpr std::uint32_t weights_max_sizes = 1u << 16;  // layer-size entries
inline constexpr std::uint32_t weights_max_tensors = 1u << 20;

template <class... Args>
[[noreturn]] inline void weights_fail(const std::filesystem::path& path, Args&&... args) {
  std::ostringstream os;
  os << path.string() << ": ";
  (os << ... << args);
  throw file_error(os.str());
}

inline void weights_put(std::vector<unsigned char>& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline void weights_put_string(std::vector<unsigned char>& out, std::string_view s) {
  weights_put(out, s.size(), 4);
  out.insert(out.end(), s.begin(), s.end());
}

/// Little-endian cursor over a byte buffer; running past the end is reported as `problem`.
class WeightsCursor {
 public:
  WeightsCursor(const std::filesystem::path& path, const unsigned char* data, std::size_t size, const char* problem)
      : path_(path), data_(data), size_(size), problem_(problem) {}

  std::uint64_t get(int bytes, const char* what) {
    need(static_cast<std::size_t>(bytes), what);
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t(data_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(get(4, what)); }
  std::uint64_t u64(const char* what) { return get(8, what); }
  std::string string(const char* what) {
    const std::uint32_t n = u32(what);
    if (n > weights_max_string) weights_fail(path_, "corrupt: ", what, " has implausible length ", n);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  void need(std::size_t n, const char* what) {
    if (size_ - pos_ < n)
      weights_fail(path_, problem_, " while reading ", what, " at byte ", pos_, ": ", n, " bytes needed, ",
                   size_ - pos_, " left");
  }
  const unsigned char* here() const { return data_ + pos_; }
  void advance(std::size_t n) { pos_ += n; }
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return size_ - pos_; }

 private:
  const std::filesystem::path& path_;
  const unsigned char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  const char* problem_;
};

inline std::uint32_t weights_crc32(const unsigned char* data, std::size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    crc = crc32(crc, data, chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

/// The most bytes a header can take: magic, version, scalar type, the architecture tag, the
/// layer sizes, the tensor count, the payload size and its checksum.
inline constexpr std::size_t weights_max_header =
    8 + 4 + 4 + (4 + weights_max_string) + 4 + 4 * std::size_t(weights_max_sizes) + 4 + 8 + 4;

/// The file's bytes, or its first `limit` bytes when it is longer.
inline std::vector<unsigned char> weights_read_file(const std::filesystem::path& path,
                                                    std::size_t limit = std::size_t(-1)) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) weights_fail(path, "file not found");
  if (std::filesystem::is_directory(path, ec)) weights_fail(path, "is a directory, not a weights file");
  std::ifstream f(path, std::ios::binary);
  if (!f) weights_fail(path, "cannot open for reading: ", std::strerror(errno));
  std::vector<unsigned char> bytes;
  char buf[1 << 16];
  // the magic number first: a file that is not weights (/dev/zero, a device, a huge file of
  // something else) is refused before the rest is read, and a stream that is not a regular
  // file is read no further than any weights file could reach
  f.read(buf, 8);
  bytes.insert(bytes.end(), buf, buf + f.gcount());
  if (bytes.size() == 8 && std::memcmp(bytes.data(), weights_magic, 8) != 0)
    weights_fail(path, "bad magic: not a prilo weights file (expected the bytes \"PRILOWTS\")");
  const bool regular = std::filesystem::is_regular_file(path, ec);
  constexpr std::size_t stream_limit = std::size_t(1) << 32;
  while (f && bytes.size() < limit) {
    f.read(buf, static_cast<std::streamsize>(std::min<std::size_t>(sizeof buf, limit - bytes.size())));
    bytes.insert(bytes.end(), buf, buf + f.gcount());
    if (!regular && bytes.size() > stream_limit)
      weights_fail(path, "not a regular file, and more than 4 GiB long: not a weights file");
  }
  if (f.bad()) weights_fail(path, "read error");
  return bytes;
}

/// Parses and checks the header; `c` is left at the payload.
inline WeightsInfo weights_parse_header(const std::filesystem::path& path, WeightsCursor& c) {
  WeightsInfo info;
  c.need(8, "the magic number");
  if (std::memcmp(c.here(), weights_magic, 8) != 0)
    weights_fail(path, "bad magic: not a prilo weights file (expected the bytes \"PRILOWTS\")");
  c.advance(8);
  info.version = c.u32("the format version");
  if (info.version != weights_version)
    weights_fail(path, "unsupported format version ", info.version, " (this build reads version ", weights_version,
                 ")");
  const std::uint32_t code = c.u32("the scalar type");
  if (code != 1 && code != 2)
    weights_fail(path, "corrupt: unknown scalar type code ", code, " (1 = float32, 2 = float64)");
  info.scalar = static_cast<WeightsScalar>(code);
  info.arch = c.string("the architecture tag");
  const std::uint32_t n_sizes = c.u32("the layer-size count");
  if (n_sizes > weights_max_sizes) weights_fail(path, "corrupt: implausible layer-size count ", n_sizes);
  info.sizes.resize(n_sizes);
  for (auto& s : info.sizes) s = c.u32("the layer sizes");
  info.tensor_count = c.u32("the tensor count");
  if (info.tensor_count > weights_max_tensors)
    weights_fail(path, "corrupt: implausible tensor count ", info.tensor_count);
  info.payload_bytes = c.u64("the payload size");
  info.payload_crc32 = c.u32("the payload checksum");
  info.header_bytes = c.pos();
  return info;
}

inline std::string weights_describe(std::string_view arch, const std::vector<std::uint32_t>& sizes) {
  std::ostringstream os;
  os << '"' << arch << "\" [";
  for (std::size_t i = 0; i < sizes.size(); ++i) os << (i ? ", " : "") << sizes[i];
  os << ']';
  return os.str();
}

/// Writes bytes to a temporary file next to `path`, then renames it over `path`.
inline void weights_write_atomic(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

template <class S>
constexpr WeightsScalar weights_scalar_of() {
  return std::is_same_v<S, float> ? WeightsScalar::float32 : WeightsScalar::float64;
}

}  // namespace detail

/// Writes `w` to `path` (scalar type of T), atomically: a temporary file then a rename.
/// Throws invalid_input for empty / duplicate / over-long names or oversize tensors,
/// file_error when the file cannot be written.
template <class T>
void save_weights(const std::filesystem::path& path, const WeightsFile<T>& w) {
  using U = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
  if (w.arch.size() > detail::weights_max_string)
    prilo::detail::fail("save_weights: arch: longer than ", detail::weights_max_string, " bytes");
  if (w.sizes.size() > detail::weights_max_sizes)
    prilo::detail::fail("save_weights: sizes: more than ", detail::weights_max_sizes, " entries");
  if (w.tensors.size() > detail::weights_max_tensors)
    prilo::detail::fail("save_weights: tensors: more than ", detail::weights_max_tensors, " tensors");
  std::unordered_set<std::string_view> seen;
  std::vector<unsigned char> payload;
  for (const auto& t : w.tensors) {
    if (t.name.empty()) prilo::detail::fail("save_weights: tensors: a tensor has an empty name");
    if (t.name.size() > detail::weights_max_string)
      prilo::detail::fail("save_weights: tensor \"", t.name.substr(0, 40), "...\": name longer than ",
                          detail::weights_max_string, " bytes");
    if (!seen.insert(t.name).second) prilo::detail::fail("save_weights: tensors: duplicate name \"", t.name, "\"");
    if (static_cast<std::uint64_t>(t.value.rows()) > 0xffffffffu ||
        static_cast<std::uint64_t>(t.value.cols()) > 0xffffffffu)
      prilo::detail::fail("save_weights: tensor \"", t.name, "\": too large (", t.value.rows(), "x", t.value.cols(),
                          ")");
    detail::weights_put_string(payload, t.name);
    detail::weights_put(payload, static_cast<std::uint64_t>(t.value.rows()), 4);
    detail::weights_put(payload, static_cast<std::uint64_t>(t.value.cols()), 4);
    payload.reserve(payload.size() + static_cast<std::size_t>(t.value.size()) * sizeof(T));
    const T* p = t.value.data();  // Mat<T> is column-major and contiguous
    for (Eigen::Index i = 0; i < t.value.size(); ++i) detail::weights_put(payload, std::bit_cast<U>(p[i]), sizeof(T));
  }

  std::vector<unsigned char> out(weights_magic, weights_magic + 8);
  detail::weights_put(out, weights_version, 4);
  detail::weights_put(out, static_cast<std::uint32_t>(detail::weights_scalar_of<T>()), 4);
  detail::weights_put_string(out, w.arch);
  detail::weights_put(out, w.sizes.size(), 4);
  for (auto s : w.sizes) detail::weights_put(out, s, 4);
  detail::weights_put(out, w.tensors.size(), 4);
  detail::weights_put(out, payload.size(), 8);
  detail::weights_put(out, detail::weights_crc32(payload.data(), payload.size()), 4);
  out.insert(out.end(), payload.begin(), payload.end());
  detail::weights_write_atomic(path, out);
}

/// Reads only the header of a weights file (checked: magic, version, scalar type, sizes); the
/// payload is neither read nor checked (load_weights does that).
inline WeightsInfo read_weights_info(const std::filesystem::path& path) {
  const auto bytes = detail::weights_read_file(path, detail::weights_max_header);
  detail::WeightsCursor c(path, bytes.data(), bytes.size(), "truncated");
  return detail::weights_parse_header(path, c);
}

namespace detail {
/// Reads, checks and decodes a weights file; checks the architecture first when `expected_arch`
/// is non-null.
template <class T>
WeightsFile<T> weights_load(const std::filesystem::path& path, const std::string_view* expected_arch,
                            const std::vector<std::uint32_t>* expected_sizes) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "load_weights: T must be float or double");
  const auto bytes = weights_read_file(path);
  WeightsCursor head(path, bytes.data(), bytes.size(), "truncated");
  const WeightsInfo info = weights_parse_header(path, head);
  if (expected_arch && (info.arch != *expected_arch || info.sizes != *expected_sizes))
    weights_fail(path, "architecture mismatch: expected ", weights_describe(*expected_arch, *expected_sizes),
                 ", found ", weights_describe(info.arch, info.sizes));

  const std::uint64_t available = head.left();
  if (available < info.payload_bytes)
    weights_fail(path, "truncated: the header announces a ", info.payload_bytes, "-byte payload, the file has ",
                 available, " bytes after the ", info.header_bytes, "-byte header");
  if (available > info.payload_bytes)
    weights_fail(path, "trailing data: ", available - info.payload_bytes,
                 " bytes after the payload (the header announces ", info.payload_bytes, " bytes)");
  const unsigned char* payload = head.here();
  const std::size_t n_payload = static_cast<std::size_t>(info.payload_bytes);
  const std::uint32_t crc = weights_crc32(payload, n_payload);
  if (crc != info.payload_crc32) {
    std::ostringstream os;
    os << std::hex << "bad checksum: the payload CRC32 is 0x" << crc << ", the header says 0x" << info.payload_crc32
       << " (the file is corrupt)";
    weights_fail(path, os.str());
  }

  WeightsFile<T> w;
  w.arch = info.arch;
  w.sizes = info.sizes;
  w.tensors.reserve(std::min<std::size_t>(info.tensor_count, n_payload / 13 + 1));  // >= 13 bytes per tensor
  const std::size_t scalar_bytes = info.scalar == WeightsScalar::float32 ? 4 : 8;
  WeightsCursor c(path, payload, n_payload, "payload size mismatch");
  std::unordered_set<std::string> names;  // the format: names are 1 to 4096 bytes, unique in the file
  for (std::uint32_t k = 0; k < info.tensor_count; ++k) {
    Tensor<T> t;
    t.name = c.string("a tensor name");
    if (t.name.empty()) weights_fail(path, "corrupt: tensor ", k, " has an empty name");
    if (!names.insert(t.name).second) weights_fail(path, "corrupt: duplicate tensor name \"", t.name, "\"");
    const std::uint64_t rows = c.u32("a tensor shape");
    const std::uint64_t cols = c.u32("a tensor shape");
    const std::uint64_t n = rows * cols;  // < 2^64: both factors are below 2^32
    if (n > c.left() / scalar_bytes)      // (n * scalar_bytes may not fit in 64 bits: not computed)
      weights_fail(path, "payload size mismatch: tensor \"", t.name, "\" (", rows, "x", cols, ") needs ", n,
                   " values of ", scalar_bytes, " bytes, ", c.left(), " bytes left in the payload");
    t.value.resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    T* dst = t.value.data();
    for (std::uint64_t i = 0; i < n; ++i) {
      if (scalar_bytes == 4)
        dst[i] = static_cast<T>(std::bit_cast<float>(static_cast<std::uint32_t>(c.get(4, "tensor values"))));
      else
        dst[i] = static_cast<T>(std::bit_cast<double>(c.get(8, "tensor values")));
    }
    w.tensors.push_back(std::move(t));
  }
  if (c.left() != 0)
    weights_fail(path, "payload size mismatch: ", c.left(), " bytes left over after the ", info.tensor_count,
                 " tensors");
  return w;
}
}  // namespace detail

/// Loads a weights file, converting the stored scalar type to T when they differ.
/// Throws file_error naming the file and the problem: file not found, bad magic, unsupported
/// version, truncated file, trailing bytes, payload size mismatch, bad checksum. The values are
/// stored bit for bit, NaN and infinities included (a model refuses them: nn::read_state).
template <class T>
WeightsFile<T> load_weights(const std::filesystem::path& path) {
  return detail::weights_load<T>(path, nullptr, nullptr);
}

/// Like load_weights(path), and rejects a file whose architecture tag or layer sizes differ
/// from the expected ones: file_error "<file>: architecture mismatch: expected "vae-mlp"
/// [784, 400, 20], found "vae-mlp" [784, 256, 20]".
template <class T>
WeightsFile<T> load_weights(const std::filesystem::path& path, std::string_view expected_arch,
                            const std::vector<std::uint32_t>& expected_sizes) {
  return detail::weights_load<T>(path, &expected_arch, &expected_sizes);
}

}  // namespace prilo::io

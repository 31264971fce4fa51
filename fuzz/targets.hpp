// The fuzz targets: one function per harness that feeds untrusted bytes to a prilo reader.
// Shared by the libFuzzer harnesses (fuzz/fuzz_<name>.cpp) and the regression test
// (tests/test_fuzz_regressions.cpp), so both run exactly the same code.
//
// Contract checked: a reader either succeeds or throws prilo::invalid_input /
// prilo::file_error (a clean rejection, swallowed here). Anything else escapes: another
// exception type, a sanitizer report, a crash, a hang, or a huge allocation driven by a
// size field (libFuzzer's -malloc_limit_mb / -rss_limit_mb). When a reader succeeds, a few
// invariants are checked too (subset reads agree with the full read, a loaded weights file
// round-trips through save_weights); a broken invariant throws fuzz_invariant_error.
//
// The readers take paths, not memory (there is no in-memory entry point in io/idx.hpp,
// io/weights.hpp, nn/vae_io.hpp or io/config.hpp's file loader), so the bytes go to a
// memfd (an anonymous in-memory file) read through /proc/self/fd/<n>: no disk I/O.
#pragma once

#include <prilo/io/config.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/weights.hpp>
#include <prilo/nn/vae_io.hpp>

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace prilo_fuzz {

/// A broken invariant of a successful read (not a clean rejection: a finding).
struct fuzz_invariant_error : std::logic_error {
  using std::logic_error::logic_error;
};

inline void expect(bool ok, const char* what) {
  if (!ok) throw fuzz_invariant_error(std::string("fuzz invariant broken: ") + what);
}

/// An anonymous in-memory file with a path, rewritten for every input.
class MemFile {
 public:
  explicit MemFile(const char* name) {
    fd_ = memfd_create(name, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("memfd_create failed: ") + std::strerror(errno));
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  ~MemFile() { ::close(fd_); }

  const std::filesystem::path& write(const unsigned char* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) throw std::runtime_error("ftruncate failed");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) throw std::runtime_error("pwrite failed");
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

/// A file name for what the library writes atomically (a temporary file, then a rename), which
/// a memfd cannot take: <dir>/prilo-fuzz/<name>-<pid>, dir = /dev/shm when it exists, else the
/// system temporary folder. The caller removes the file after use, so processes that end
/// without running destructors (libFuzzer's fork mode) leave nothing behind but the folder.
inline std::filesystem::path scratch_file(const std::string& name) {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    std::filesystem::create_directories(base / "prilo-fuzz", ec);
    return base / "prilo-fuzz";
  }();
  return dir / (name + "-" + std::to_string(::getpid()));
}

/// Removes a file when it goes out of scope (also when an exception passes).
struct RemoveOnExit {
  std::filesystem::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

/// Runs `f`; prilo::invalid_input and prilo::file_error are clean rejections.
template <class F>
bool clean(F&& f) {
  try {
    f();
    return true;
  } catch (const prilo::invalid_input&) {
  } catch (const prilo::file_error&) {
  }
  return false;
}

/// gzip-compresses `data` (zlib's gzip wrapper, as gzread expects).
inline std::vector<unsigned char> gzip(const unsigned char* data, std::size_t size) {
  z_stream s{};
  if (deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::vector<unsigned char> out(deflateBound(&s, static_cast<uLong>(size)) + 64);
  s.next_in = const_cast<unsigned char*>(data);
  s.avail_in = static_cast<uInt>(size);
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

// ---- targets -------------------------------------------------------------------------------

/// IDX image and label readers on a file (raw or gzip: gzread detects it), whole and subsets.
inline void idx_file(const std::filesystem::path& p) {
  using namespace prilo::io;
  clean([&] {
    const auto all = read_idx_images<float>(p);
    expect(all.rows > 0 && all.cols > 0 && all.count() > 0, "a read image file has images");
    expect(static_cast<std::size_t>(all.images.rows()) == all.rows * all.cols, "pixels = rows * cols");
    expect(all.images.size() == 0 || (all.images.minCoeff() >= 0.f && all.images.maxCoeff() <= 1.f),
           "pixel values in [0, 1]");
    const std::size_t n = all.count();
    const auto last = read_idx_images<double>(p, n - 1, 1);
    expect(last.count() == 1 && (last.images.cast<float>() - all.images.rightCols(1)).norm() == 0.f,
           "read_idx_images(p, n-1, 1) is the last column of the full read");
    expect(read_idx_images<float>(p, n).count() == 0, "read_idx_images(p, n) is empty");
    expect(prilo::io::detail::idx_peek_count(p, idx_images_magic, 2) == n, "idx_peek_count matches");
  });
  clean([&] { (void)read_idx_images<float>(p, 1, 2); });  // may be a clean invalid_input
  clean([&] {
    const auto all = read_idx_labels(p);
    expect(!all.empty(), "a read label file has labels");
    const auto tail = read_idx_labels(p, all.size() - 1);
    expect(tail.size() == 1 && tail[0] == all.back(), "read_idx_labels(p, n-1) is the last label");
    expect(prilo::io::detail::idx_peek_count(p, idx_labels_magic, 0) == all.size(), "idx_peek_count matches");
  });
  clean([&] { (void)read_idx_labels(p, 3, 1); });
}

/// (a) raw bytes: the input is the file (gzip seeds in the corpus cover the gzip path with
/// corrupt streams).
inline void idx(const unsigned char* data, std::size_t size) {
  static MemFile f("prilo-fuzz-idx");
  idx_file(f.write(data, size));
}

/// (a) gzip: the input is the decompressed content, gzip-compressed here, so that mutations
/// reach the IDX parser through a valid gzip stream (lying headers, truncation, trailing data).
inline void idx_gz(const unsigned char* data, std::size_t size) {
  static MemFile f("prilo-fuzz-idx-gz");
  const auto z = gzip(data, size);
  idx_file(f.write(z.data(), z.size()));
}

/// (b) io::load_weights (float and double), read_weights_info, the architecture check; a
/// loaded file saved again (save_weights) and reloaded gives back the same tensors.
inline void weights(const unsigned char* data, std::size_t size) {
  using namespace prilo::io;
  static MemFile f("prilo-fuzz-weights");
  const auto& p = f.write(data, size);
  WeightsInfo info;
  const bool have_info = clean([&] { info = read_weights_info(p); });
  clean([&] {
    const auto w = load_weights<float>(p);
    expect(have_info, "load_weights accepts only files whose header read_weights_info accepts");
    expect(w.arch == info.arch && w.sizes == info.sizes && w.tensors.size() == info.tensor_count,
           "load_weights agrees with read_weights_info");
    const RemoveOnExit q{scratch_file("roundtrip.prw")};
    expect(clean([&] { save_weights(q.path, w); }), "save_weights writes back every file load_weights accepts");
    const auto r = load_weights<float>(q.path);
    expect(r.tensors.size() == w.tensors.size(), "round trip keeps the tensor count");
    for (std::size_t k = 0; k < w.tensors.size(); ++k) {
      const auto& a = w.tensors[k].value;
      const auto& b = r.tensors[k].value;
      expect(r.tensors[k].name == w.tensors[k].name && a.rows() == b.rows() && a.cols() == b.cols() &&
                 (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(float) * std::size_t(a.size())) == 0),
             "round trip keeps names, shapes and bits");
    }
  });
  clean([&] { (void)load_weights<double>(p); });
  clean([&] { (void)load_weights<double>(p, "vae-mlp", {6, 4, 2}); });
}

/// (b) nn::load_vae; a loaded VAE decodes a latent batch to values in [0, 1].
inline void vae(const unsigned char* data, std::size_t size) {
  static MemFile f("prilo-fuzz-vae");
  const auto& p = f.write(data, size);
  clean([&] {
    auto v = prilo::nn::load_vae<float>(p);
    const prilo::Mat<float> z = prilo::Mat<float>::Zero(v.latent_dim(), 2);
    const prilo::Mat<float> x = v.decoder()(z);
    expect(x.rows() == v.data_dim() && x.cols() == 2, "the decoder's output shape");
  });
}

/// (c) io::load_reconstruction_config (float and double): the config parser.
inline void config(const unsigned char* data, std::size_t size) {
  static MemFile f("prilo-fuzz-config");
  const auto& p = f.write(data, size);
  clean([&] { (void)prilo::io::load_reconstruction_config<float>(p); });
  clean([&] { (void)prilo::io::load_reconstruction_config<double>(p); });
}

/// The targets by harness name (the folder names under fuzz/corpus and fuzz/regressions).
using Target = void (*)(const unsigned char*, std::size_t);
struct Named {
  std::string_view name;
  Target run;
};
inline constexpr Named targets[] = {
    {"idx", idx}, {"idx_gz", idx_gz}, {"weights", weights}, {"vae", vae}, {"config", config}};

}  // namespace prilo_fuzz

// Atomic file writes shared by the writers of weights, PNG pictures and IDX files.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "../core.hpp"

namespace prilo::io::detail {

/// A temporary name next to `path` (same folder, so the final rename is atomic).
inline std::filesystem::path temporary_sibling(const std::filesystem::path& path) {
  std::filesystem::path tmp = path;
  tmp += ".tmp" + std::to_string(std::random_device{}());
  return tmp;
}

/// Moves a finished temporary file over `path`; on failure removes it and throws
/// file_error "<path>: cannot write: …".
inline void commit_temporary(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw file_error(path.string() + ": cannot write: rename failed: " + ec.message());
  }
}

/// Writes `size` bytes to a temporary file next to `path`, then renames it over `path`, so
/// a reader never sees a half-written file. Throws file_error naming the file on failure.
inline void write_file_atomic(const std::filesystem::path& path, const unsigned char* data, std::size_t size) {
  const auto tmp = temporary_sibling(path);
  bool ok = false;
  int err = 0;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (f) {
      f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
      f.close();
      ok = !f.fail();
    }
    err = errno;
  }
  if (!ok) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw file_error(path.string() + ": cannot write: " + std::strerror(err));
  }
  commit_temporary(tmp, path);
}

}  // namespace prilo::io::detail

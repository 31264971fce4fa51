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

/// The file an atomic write of `path` replaces: `path`, or the file a symbolic link there
/// names (followed link by link, so the link stays a link and its target gets the contents).
/// file_error when that file exists and is not a regular file: renaming over a device, a pipe
/// or a socket (/dev/null, as root) would replace it with a regular file.
inline std::filesystem::path write_target(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = path;
  for (int hops = 0; fs::is_symlink(fs::symlink_status(target, ec)); ++hops) {
    if (hops == 40) throw file_error(path.string() + ": cannot write: too many levels of symbolic links");
    const fs::path next = fs::read_symlink(target, ec);
    if (ec) throw file_error(path.string() + ": cannot write: cannot read the symbolic link: " + ec.message());
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  const fs::file_status st = fs::status(target, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    throw file_error(path.string() + ": cannot write: " +
                     (fs::is_directory(st) ? std::string("is a folder")
                                           : std::string("not a regular file (a device, pipe or socket)")) +
                     (target == path ? "" : ", named by a symbolic link: " + target.string()));
  return target;
}

/// Writes `size` bytes to a temporary file next to `path` (or next to the file a symbolic
/// link at `path` names: write_target), then renames it over that file, so a reader never
/// sees a half-written file. Throws file_error naming the file on failure.
inline void write_file_atomic(const std::filesystem::path& path_or_link, const unsigned char* data, std::size_t size) {
  const auto path = write_target(path_or_link);
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

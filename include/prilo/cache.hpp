// The per-user cache folder where prilo keeps what it measures once per machine.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace prilo {

/// $XDG_CACHE_HOME/prilo, else ~/.cache/prilo, else an empty path (no cache). A relative
/// $XDG_CACHE_HOME is ignored, as the XDG specification asks (it would put the cache under
/// whatever folder the program runs in). The folder is not created here: writers create it,
/// and a cache that cannot be read or written only means measuring again.
inline std::filesystem::path user_cache_dir() {
  namespace fs = std::filesystem;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg && fs::path(xdg).is_absolute()) return fs::path(xdg) / "prilo";
  return home && *home ? fs::path(home) / ".cache" / "prilo" : fs::path();
}

}  // namespace prilo

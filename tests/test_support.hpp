// Helpers every test file may use: where the data sets are, the message of the error a call
// throws, and guards that restore process-wide state (threads, environment variables, ...)
// however a test case ends, so that a failed REQUIRE cannot leak that state into later cases.
#pragma once

#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include <prilo/backend/cpu.hpp>

namespace prilo::test_support {

/// $PRILO_DATA if set, else the source tree's data/ (not the working directory's, as
/// io::default_data_dir has it: CTest runs the tests from the build tree). A missing file
/// there is io's file_error, which says how to fetch the data sets.
inline std::string data_dir() {
  if (const char* e = std::getenv("PRILO_DATA"); e && *e) return e;
  return std::string(PRILO_SOURCE_DIR) + "/data";
}

/// The message of the exception of type E that f() throws, or "(no error)" when it returns;
/// an exception of another type propagates, so that the test reports it.
template <class E = std::exception, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

/// Runs `restore` when the scope ends, however it ends (a failed REQUIRE throws):
///     const OnExit guard{[saved = fftw::planner_effort()] { fftw::set_planner_effort(saved); }};
template <class F>
struct OnExit {
  F restore;
  OnExit(F f) : restore(std::move(f)) {}
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;
  ~OnExit() { restore(); }
};

/// Restores cpu::threads() (OpenMP's and Eigen's thread counts) when the scope ends.
struct ThreadGuard {
  int saved = cpu::threads();
  ThreadGuard() = default;
  ThreadGuard(const ThreadGuard&) = delete;
  ThreadGuard& operator=(const ThreadGuard&) = delete;
  ~ThreadGuard() { cpu::set_threads(saved); }
};

/// Sets (or, with nullopt, unsets) the environment variable `name` and restores its earlier
/// value, or its absence, when the scope ends.
struct EnvGuard {
  std::string name;
  std::optional<std::string> saved;
  EnvGuard(std::string n, const std::optional<std::string>& value) : name(std::move(n)) {
    if (const char* old = std::getenv(name.c_str())) saved = old;
    if (value)
      ::setenv(name.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  ~EnvGuard() {
    if (saved)
      ::setenv(name.c_str(), saved->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
};

}  // namespace prilo::test_support

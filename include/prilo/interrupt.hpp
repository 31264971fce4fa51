// Stopping a long run cleanly: a stop request (from a SIGINT handler, or any thread) makes the
// solvers throw prilo::interrupted at their next step, so a program can keep what finished.
#pragma once

#include <atomic>
#include <csignal>
#include <stdexcept>
#include <string>

namespace prilo {

/// Thrown by a solver that saw a stop request; what() names the solver.
struct interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline std::atomic<int>& stop_flag() noexcept {
  static std::atomic<int> flag{0};  // lock-free: safe to set from a signal handler
  return flag;
}
extern "C" inline void prilo_on_interrupt(int sig) {
  stop_flag().store(1, std::memory_order_relaxed);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}
}  // namespace detail

/// Asks every running solver to stop at its next step.
inline void request_stop() noexcept {
  detail::stop_flag().store(1, std::memory_order_relaxed);
}
/// Whether a stop was requested (and not cleared since).
inline bool stop_requested() noexcept {
  return detail::stop_flag().load(std::memory_order_relaxed) != 0;
}
/// Forgets a stop request.
inline void clear_stop() noexcept {
  detail::stop_flag().store(0, std::memory_order_relaxed);
}
/// Throws prilo::interrupted("<where>: interrupted") when a stop was requested.
inline void throw_if_stopped(const char* where) {
  if (stop_requested()) throw interrupted(std::string(where) + ": interrupted");
}

/// SIGINT and SIGTERM request a stop instead of ending the process; a second one ends it.
inline void install_interrupt_handler() {
  std::signal(SIGINT, detail::prilo_on_interrupt);
  std::signal(SIGTERM, detail::prilo_on_interrupt);
}

}  // namespace prilo

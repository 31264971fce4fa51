// Stopping a long run cleanly: a stop request makes the solvers throw prilo::interrupted at
// their next step (the training calls return, marked interrupted), so a program can keep what
// finished. Two kinds of request, either of which stops a call:
//  * the process-wide one (request_stop(), or SIGINT/SIGTERM with install_interrupt_handler()):
//    every running call stops, and it stays set until clear_stop();
//  * one call's own, a std::stop_token in its options (`stop`, from a std::stop_source or a
//    std::jthread): only the calls holding that token stop, and nothing needs clearing after.
#pragma once

#include <atomic>
#include <csignal>
#include <stdexcept>
#include <stop_token>
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
/// Whether install_interrupt_handler() was called (clear_stop() then arms it again).
inline std::atomic<bool>& handler_installed() noexcept {
  static std::atomic<bool> installed{false};
  return installed;
}
extern "C" inline void prilo_on_interrupt(int) {
  stop_flag().store(1, std::memory_order_relaxed);
  // a second signal, of either kind, ends the process at once (signal() is async-signal-safe)
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}
inline void arm_interrupt_handler() noexcept {
  std::signal(SIGINT, prilo_on_interrupt);
  std::signal(SIGTERM, prilo_on_interrupt);
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
/// Forgets a stop request; with install_interrupt_handler()'s handler, the next SIGINT or
/// SIGTERM requests a stop again (instead of ending the process).
inline void clear_stop() noexcept {
  detail::stop_flag().store(0, std::memory_order_relaxed);
  if (detail::handler_installed().load()) detail::arm_interrupt_handler();
}
/// Whether this call must stop: the process-wide request, or the call's own token's.
inline bool stop_requested(const std::stop_token& token) noexcept {
  return stop_requested() || token.stop_requested();
}
/// Throws prilo::interrupted("<where>: interrupted") when a stop was requested (process-wide,
/// or through `token` when one is given).
inline void throw_if_stopped(const char* where, const std::stop_token& token = {}) {
  if (stop_requested(token)) throw interrupted(std::string(where) + ": interrupted");
}

/// SIGINT and SIGTERM request a stop instead of ending the process; a second one (of either
/// kind) before clear_stop() ends it.
inline void install_interrupt_handler() {
  detail::handler_installed().store(true);
  detail::arm_interrupt_handler();
}

}  // namespace prilo

// Run-time reporting: what runs a program's dense products, a warning when OpenBLAS runs
// slower kernels than the CPU allows, and a console progress printer for prilo::reconstruct. A build that sends Eigen's
// products to OpenBLAS (EIGEN_USE_BLAS, the project's PRILO_BLAS=openblas) defines PRILO_BLAS_OPENBLAS and links
// OpenBLAS.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <string_view>

#include "solvers/common.hpp"

#if defined(PRILO_BLAS_OPENBLAS)
extern "C" char* openblas_get_corename(void);
#endif
#if defined(PRILO_HAVE_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#endif

namespace prilo {

/// What a program prints for the exception it stops on: e.what(), except for std::bad_alloc,
/// whose what() names nothing: then a sentence that says memory ran out and which of the
/// program's sizes (`sizes`, e.g. "--count, --restarts") to lower.
inline std::string error_text(const std::exception& e, std::string_view sizes) {
  if (dynamic_cast<const std::bad_alloc*>(&e))
    return "out of memory: the sizes asked for need more memory than this machine can give (lower " +
           std::string(sizes) + ")";
  return e.what();
}

/// Which kernels run Eigen's dense products: "Eigen", or "OpenBLAS, <core> kernels"; with
/// oneDNN (PRILO_HAVE_ONEDNN) also "; the generators' weights packed for oneDNN <version>"
/// (nn::Dense::pack_weights: the latent methods' products with the decoder's dense layers).
inline std::string products_backend() {
#if defined(PRILO_BLAS_OPENBLAS)
  std::string s = std::string("OpenBLAS, ") + openblas_get_corename() + " kernels";
#else
  std::string s = "Eigen";
#endif
#if defined(PRILO_HAVE_ONEDNN)
  const dnnl_version_t* v = dnnl_version();
  s += "; dense layers' weights packed for oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
       std::to_string(v->patch);
#endif
  return s;
}

/// One line when OpenBLAS runs slower kernels than this CPU allows, with the remedy; empty
/// otherwise. Debian's OpenBLAS 0.3.21 does not know newer CPUs (AMD Zen 5) and falls back
/// to its AVX2 Haswell kernels: about half the products' speed on AVX-512 hardware.
inline std::string blas_kernel_warning() {
#if defined(PRILO_BLAS_OPENBLAS) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const std::string core = openblas_get_corename();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  auto is = [&](const std::string& name) {
    if (core.size() != name.size()) return false;
    for (std::size_t i = 0; i < core.size(); ++i)
      if (std::tolower((unsigned char)core[i]) != std::tolower((unsigned char)name[i])) return false;
    return true;
  };
  if (avx512 && !is("SkylakeX") && !is("Cooperlake") && !is("SapphireRapids"))
    return "note: OpenBLAS runs its " + core +
           " kernels on this AVX-512 CPU; start the program with OPENBLAS_CORETYPE=SkylakeX (what "
           "scripts/openblas_env.sh sets) for about 1.9x faster products";
#endif
  return {};
}

/// A MethodOptions::progress callback that prints "  [method] stage step i/n mean loss" to
/// `out`: at most one line per `interval_s` seconds of each method, and the last step of every
/// stage. Not thread-safe: the library calls it from the calling thread only.
inline std::function<void(const std::string&, const Progress&)> progress_printer(std::FILE* out = stderr,
                                                                                 double interval_s = 2.0) {
  return [out, interval_s, method = std::string(), last = std::chrono::steady_clock::now()](const std::string& m,
                                                                                            const Progress& p) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (m != method) {  // a new method: its first line after interval_s
      method = m;
      last = now;
    }
    if (std::chrono::duration<double>(now - last).count() < interval_s && p.step != p.steps) return;
    last = now;
    std::fprintf(out, "  [%s] %-18s step %4d/%-4d mean loss %.5g\n", m.c_str(), p.stage.c_str(), p.step, p.steps,
                 p.mean_loss);
  };
}

}  // namespace prilo

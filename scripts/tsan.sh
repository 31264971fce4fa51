#!/usr/bin/env bash
# The threaded tests under ThreadSanitizer: the `tsan` preset of CMakePresets.json (clang-19,
# LLVM's OpenMP runtime, Eigen's own GEMM instead of OpenBLAS), build dir build-tsan, then every
# test case that starts OpenMP threads, with OMP_NUM_THREADS=2. GCC's libgomp is not
# instrumented, so OpenMP races can only be checked this way: libomp's Archer tool
# (libarcher.so, loaded through OMP_TOOL_LIBRARIES) tells TSan about OpenMP's barriers,
# locks and task joins, and ignore_noninstrumented_modules=1 keeps TSan out of the
# uninstrumented libomp and FFTW themselves (their own accesses are not checked; every access
# the project makes, and every FFTW call it serialises with its mutex, is).
# Exits non-zero on any TSan report (halt_on_error=1) or failed test. Suppressions, each with
# its reason: tests/tsan.supp. Extra TSan flags: TSAN_OPTIONS=... bash scripts/tsan.sh (e.g.
# halt_on_error=0 to see every report). Packages: scripts/setup.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
jobs="${PRILO_JOBS:-$(nproc)}"
export PRILO_DATA="${PRILO_DATA:-$repo/data}"

command -v clang++-19 >/dev/null 2>&1 || {
  echo "tsan: clang++-19 not found (Debian: clang-19 libomp-19-dev libclang-rt-19-dev; scripts/setup.sh installs them)" >&2
  exit 1
}

cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
bin="$repo/build-tsan/tests/prilo_tests"

# Archer sits beside the libomp the test binary loads (clang-19: /usr/lib/llvm-19/lib).
libomp="$(ldd "$bin" | awk '$1 ~ /^libomp\.so/ {print $3; exit}')"
archer="$(dirname "$(readlink -f "$libomp")")/libarcher.so"
[ -f "$archer" ] || { echo "tsan: no libarcher.so beside $libomp (libomp-19-dev)" >&2; exit 1; }
export OMP_TOOL_LIBRARIES="$archer"
export OMP_NUM_THREADS=2
opts="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 suppressions=$repo/tests/tsan.supp"
symbolizer="$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer || true)"
[ -n "$symbolizer" ] && opts="$opts external_symbolizer_path=$symbolizer"
export TSAN_OPTIONS="$opts ${TSAN_OPTIONS:-}"

# Without Archer every OpenMP barrier would look like a race (or hide one): make sure it is on.
probe="$(ARCHER_OPTIONS=verbose=1 "$bin" -tc='column blocks: an exception*' -ni 2>&1 || true)"
if ! grep -q "Archer detected OpenMP application with TSan" <<<"$probe"; then
  echo "$probe" >&2
  echo "tsan: Archer ($archer) did not start; OpenMP synchronisation would be invisible to TSan" >&2
  exit 1
fi

# The test cases that start OpenMP threads at their sizes (2 threads): column blocks, the
# pipeline and executor bodies (solve_column_blocks, the Fourier and fused-loss column chunks,
# FFTW plan caches shared by threads), Fienup, MII and -resolve on real digits, the Gaussian
# baselines (Eigen's OpenMP GEMM), two solves on two threads with their own stop tokens, and
# the denormal guards on OpenMP's team (FlushDenormals*; under LLVM's libomp too, whose
# regions carry the primary thread's MXCSR). Left out: cases that start no thread at their
# batch sizes, and the three slowest (two reduced PRILO runs and the VAE training: minutes
# under TSan, on the same code paths). Keep in step with the tsan test preset's filter and with
# prilo_threaded_test_sources in tests/CMakeLists.txt (the only files this build compiles).
cases='column blocks: *,Executor bodies on the CPU: *,Gaussian baselines: *,reconstruct_*,solve_restarts *'
cases+=',end-to-end: HIO*,end-to-end: MII starts*,end-to-end: resolve*,stop tokens: *,FlushDenormals*'
log="$repo/build-tsan/tsan.log"
set +e
"$bin" -tc="$cases" -ni 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
ran="$(sed -n 's/^\[doctest\] test cases: *\([0-9]*\).*/\1/p' "$log" | tail -1)"
if grep -q "ThreadSanitizer" "$log"; then
  echo "tsan: ThreadSanitizer reported a problem (above; full log: $log)" >&2
  exit 1
fi
if [ "$rc" -ne 0 ] || [ -z "$ran" ] || [ "$ran" -eq 0 ]; then
  echo "tsan: the threaded tests failed or none ran (exit $rc, test cases: ${ran:-none})" >&2
  exit 1
fi
echo "tsan: $ran test cases, OMP_NUM_THREADS=2, no ThreadSanitizer report"

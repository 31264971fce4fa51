#!/usr/bin/env bash
# The test suite, from a fresh clone: set-up, the formatting check, a Release build of the
# examples and benchmarks, a consumer project built against the installed package, the whole
# doctest suite (unit and end-to-end cases, CTest) under AddressSanitizer + UBSan, the threaded
# cases under ThreadSanitizer, the fuzzers for a short bounded time, the MPI tests (2 processes
# against one), the programs' tests (CLI, training, SIGINT) on the -O3 build, and, where nvcc
# exists, a compile of every CUDA test and benchmark (no GPU is needed: they are not run).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
jobs="${PRILO_JOBS:-$(nproc)}"
bash scripts/setup.sh
export PRILO_DATA="${PRILO_DATA:-$repo/data}"
stage() { echo "== [$((SECONDS / 60)) min $((SECONDS % 60)) s] $* =="; }  # CI's budget: 30 min on 2 cores

stage "Formatting (clang-format-14, .clang-format; scripts/check_format.sh)"
bash scripts/check_format.sh

ninja_dir() {  # a folder made by an earlier test.sh (or run.sh) with another generator is started afresh
  if [ -f "$1/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$1/CMakeCache.txt"; then
    rm -rf "$1"
  fi
  mkdir -p "$1"
}

# Ninja: one schedule over every translation unit; the same build took 11:03 with Ninja and
# 12:39 through Makefiles on the 2-core VM (2026-12-03). run.sh reuses the cached generator.
# The doctest suite is not built here (PRILO_UNIT_TESTS=OFF): it runs once, whole, in the ASan/UBSan
# tree below. Built here too at -O1 it cost 336 core-seconds of compiling and 117 of running the
# cases the ASan run repeats; the end-to-end cases, the only ones the ASan run used to leave out,
# take 57 core-seconds there (2026-12-06, the 2-core VM). The programs' tests (CLI, SIGINT, MPI)
# run the -O3 programs built here, and the benchmarks' build covers the -O3 kernels.
stage "Release build (programs, benchmarks, the programs' tests)"
ninja_dir build
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRILO_WERROR=ON -DPRILO_BUILD_TESTS=ON -DPRILO_UNIT_TESTS=OFF \
      -DPRILO_BUILD_EXAMPLES=ON -DPRILO_BUILD_BENCHMARKS=ON -DCMAKE_INSTALL_PREFIX="$repo/build/install" >/dev/null
cmake --build build -j "$jobs"

stage "Consumer project against the installed package"
cmake --install build >/dev/null
cmake -S tests/consumer -B build/consumer -DCMAKE_PREFIX_PATH="$repo/build/install" >/dev/null
cmake --build build/consumer -j "$jobs" >/dev/null
./build/consumer/prilo_consumer

stage "The doctest suite under AddressSanitizer and UndefinedBehaviorSanitizer: build"
# -g1: line tables for the stack traces, a third less compile time than -g; -Og: a test file
# compiled in 33 s instead of 54 at -O1, and the suite ran in 29 s instead of 24.
# PRILO_SANITIZE_EXCLUDE: UBSan's null, alignment and vptr checks instrument nearly every
# reference and member access of the templates, and cost most of the build: one unity file of the
# suite took 185 s with them and 103 s without (ASan alone: 92 s, no sanitizer at -O1: 97 s; the
# 2-core VM, 2026-12-06). What they would find is caught here anyway: a null dereference is a
# SEGV that ASan reports with its stack, this Debug build keeps Eigen's assertions on misaligned
# vector data, and the library has almost no virtual functions for vptr to check.
ninja_dir build-asan
cmake -G Ninja -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPRILO_SANITIZE=ON -DPRILO_SANITIZE_EXCLUDE=null,alignment,vptr \
      -DPRILO_WERROR=ON -DPRILO_BUILD_TESTS=ON -DPRILO_BUILD_EXAMPLES=OFF -DPRILO_BUILD_BENCHMARKS=OFF \
      -DCMAKE_CXX_FLAGS="-Og" -DCMAKE_CXX_FLAGS_DEBUG="-g1" >/dev/null
cmake --build build-asan -j "$jobs" --target prilo_tests

# The MPI and CUDA builds, in the background at nice 10 from here on: the foreground stages
# below leave cores idle at times (the TSan build's and the test runs' tails, one long case or
# CLI script at the end of a parallel CTest), and the fuzzers run for a fixed wall time at nice 19. Ninja, so that each builds its
# targets in parallel (a Makefile build runs the targets of one `cmake --build --target a b`
# one after the other). Logs: build-mpi/build.log, build-cuda/compile.log. They start after
# the ASan build, not before it: the ASan build took 6:45 alone on the 2-core VM and 12:41
# beside them in the CI of 2026-12-03 (seven compilers on two cores; the CUDA compile is ~300
# core-seconds, the MPI build ~200), and the CUDA wait at the end was 0.
stage "MPI and CUDA builds: started in the background at nice 10 (waited for by their stages below)"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # a failed stage leaves no build running behind it
ninja_dir build-mpi
# -O1: the MPI tests check results across processes, not speed
(nice -n 10 cmake -G Ninja -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
   -DPRILO_MPI=ON -DPRILO_WERROR=ON -DPRILO_BUILD_TESTS=ON -DPRILO_BUILD_EXAMPLES=ON -DPRILO_BUILD_BENCHMARKS=OFF >/dev/null &&
 nice -n 10 cmake --build build-mpi -j "$jobs" --target prilo_mpi_test prilo-reconstruct) >build-mpi/build.log 2>&1 &
mpi_pid=$!
cuda_pid=""
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  # every CUDA test, benchmark and prilo-reconstruct-cuda compiled with nvcc (not run: no GPU needed)
  export PATH="$PATH:/usr/local/cuda/bin"
  ninja_dir build-cuda
  # A compile check, so the host code is compiled at -O0 (ptxas still optimises the device code):
  # 94 s instead of 150 s for a CUDA test file on the 2-core CI machine. One job more than the
  # cores: Ninja (1.11) starts the test files first, and prilo-reconstruct-cuda's translation unit,
  # the largest (2.3 min alone; nvcc --time: host compile 75 s, cicc 38 s, cudafe++ 18 s,
  # ptxas 2 s), otherwise started last and ran alone at the end of the CI for half a minute.
  (nice -n 10 cmake -G Ninja -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_CUDA_FLAGS_RELEASE="-O0 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O0 -DNDEBUG" -DPRILO_ENABLE_CUDA=ON \
     -DPRILO_BUILD_TESTS=ON -DPRILO_BUILD_EXAMPLES=ON -DPRILO_BUILD_BENCHMARKS=ON >/dev/null &&
   nice -n 10 cmake --build build-cuda -j "$((jobs + 1))" --target prilo_cuda_tests prilo_cuda_bench prilo-reconstruct-cuda) \
    >build-cuda/compile.log 2>&1 &
  cuda_pid=$!
fi
wait_for() {  # wait_for <pid> <log> <what>: the background build's status, its log on failure
  if ! wait "$1"; then
    cat "$2"
    echo "$3 failed (log above: $2)" >&2
    exit 1
  fi
}

stage "The doctest suite under AddressSanitizer and UndefinedBehaviorSanitizer: every case (CTest), end-to-end ones included"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$jobs")

stage "Threaded tests under ThreadSanitizer (clang-19, LLVM OpenMP with Archer; scripts/tsan.sh)"
bash scripts/tsan.sh

stage "Fuzzing: the libFuzzer harnesses built (scripts/fuzz.sh, docs/fuzzing.md)"
PRILO_FUZZ_JOBS=2 bash scripts/fuzz.sh --build-only idx idx_gz weights vae config

stage "Fuzzing: each libFuzzer harness for 20 s"
PRILO_FUZZ_JOBS=2 bash scripts/fuzz.sh 20 idx idx_gz weights vae config

stage "MPI: the pipeline and prilo-reconstruct over 2 processes against one (OpenMPI)"
wait_for "$mpi_pid" build-mpi/build.log "the MPI build"
(cd build-mpi && ctest -R '^mpi\.' --output-on-failure)

stage "The programs' tests (CTest: CLI errors, tiny runs, training and resume, SIGINT)"
(cd build && ctest --output-on-failure -j "$jobs")

if [ -n "$cuda_pid" ]; then
  stage "CUDA backend: waiting for the compile check"
  wait_for "$cuda_pid" build-cuda/compile.log "the CUDA compile check"
  tail -n 3 build-cuda/compile.log
fi
stage "all passed"

#!/usr/bin/env bash
# The headers on AArch64 (NEON): cross-compiles test translation units with Debian's
# aarch64-linux-gnu-g++ and runs them under qemu-aarch64 (user mode), one binary per test file
# (tests/main.cpp + tests/<name>.cpp, statically linked). Not part of CI (qemu runs the tests
# 10-50x slower than the host); a check for changes to the SIMD code (prilo/fft/lanes.hpp and
# its users), whose AArch64 branches no other build compiles.
#   bash scripts/check_aarch64.sh [--install] [test_name ...]
# Default tests: the ones that exercise the lanes' vectors (Adam, the l1 passes, the DFT lanes
# and loss), 10-15 minutes here, mostly compiling; test_solvers (ER/HIO, DPR and PRILO end to
# end on MNIST, from $PRILO_DATA or data/) took about 40 minutes under qemu on the 2-core VM.
# --install first adds the cross compiler, qemu and the arm64 FFTW and zlib
# (dpkg --add-architecture arm64; root). Output and binaries under build-aarch64/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [ "${1:-}" = "--install" ]; then
  shift
  dpkg --add-architecture arm64
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++-aarch64-linux-gnu qemu-user libfftw3-dev:arm64 zlib1g-dev:arm64
fi
cxx="$(command -v aarch64-linux-gnu-g++ || true)"
qemu="$(command -v qemu-aarch64 || true)"
libs=/usr/lib/aarch64-linux-gnu
if [ -z "$cxx" ] || [ -z "$qemu" ] || [ ! -e $libs/libfftw3f.a ] || [ ! -e $libs/libfftw3.a ] || [ ! -e $libs/libz.a ]; then
  echo "check_aarch64: needs aarch64-linux-gnu-g++, qemu-aarch64 and the arm64 FFTW and zlib;" \
    "run 'bash scripts/check_aarch64.sh --install' (root) first" >&2
  exit 1
fi
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_executor test_projection test_operators)
for t in "${tests[@]}"; do
  [ -f "tests/$t.cpp" ] || { echo "check_aarch64: no tests/$t.cpp" >&2; exit 1; }
done
out="$repo/build-aarch64"
mkdir -p "$out/tmp"
status=0
for t in "${tests[@]}"; do
  "$cxx" -std=gnu++20 -O2 -fno-math-errno -fopenmp -DPRILO_SOURCE_DIR="\"$repo\"" \
    -DPRILO_TEST_TMPDIR="\"$out/tmp\"" -I include -I examples -I tests -isystem /usr/include/eigen3 \
    -idirafter /usr/include tests/main.cpp "tests/$t.cpp" -o "$out/$t" -L$libs \
    -lfftw3f -lfftw3 -lz -static
  if (cd "$out" && "$qemu" "./$t" > "$t.log" 2>&1); then
    echo "check_aarch64: $t passed ($(grep -E '^\[doctest\] test cases' "$out/$t.log" | tr -s ' '))"
  else
    echo "check_aarch64: $t FAILED (build-aarch64/$t.log)" >&2
    status=1
  fi
done
exit $status

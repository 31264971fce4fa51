#!/usr/bin/env bash
# The main job, from a fresh clone: set-up, build, then prilo-reconstruct with its defaults
# (a small MNIST Fourier run with HIO, DPR, PRILO-MII, PRILO-chain-MII and
# PRILO-chain-MII-resolve on the shipped weights). Any
# arguments are passed on to prilo-reconstruct (see --help).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
export PRILO_DATA="${PRILO_DATA:-$repo/data}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRILO_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j "$(nproc)" --target prilo-reconstruct >/dev/null
mkdir -p out
if [ $# -eq 0 ]; then set -- --png out/reconstructions.png --json out/reconstructions.json; fi
exec ./build/examples/prilo-reconstruct "$@"

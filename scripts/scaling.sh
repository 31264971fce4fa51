#!/usr/bin/env bash
# 1 process × 1 thread, 1 process × 2 threads and 2 processes × 1 thread (mpirun) on the same
# reconstruction (PRILO-chain-MII, 64 MNIST test images, 4 restarts, 8 fixed blocks): wall
# times, and whether the JSON reports agree. Needs an MPI build: bash scripts/scaling.sh [count]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
count="${1:-64}"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh
export PRILO_DATA="${PRILO_DATA:-$repo/data}"
cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DPRILO_MPI=ON -DPRILO_BUILD_EXAMPLES=ON >/dev/null
cmake --build build-mpi -j "$(nproc)" --target prilo-reconstruct >/dev/null
out=build-mpi/scaling; mkdir -p "$out"
recon=build-mpi/examples/prilo-reconstruct
args=(--fftw-effort estimate --count "$count" --restarts 4 --blocks 8 --methods prilo-chain-mii --quiet --peak-gflops 1)
t() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
t1=$(OMP_NUM_THREADS=1 t "$recon" "${args[@]}" --threads 1 --json "$out/p1t1.json")
t2=$(OMP_NUM_THREADS=2 t "$recon" "${args[@]}" --threads 2 --json "$out/p1t2.json")
t3=$(OMP_NUM_THREADS=1 t mpirun -np 2 --oversubscribe --allow-run-as-root "$recon" "${args[@]}" --threads 1 --json "$out/p2t1.json")
same() { diff <(grep -Ev '"(seconds|[a-z_]*gflops?|percent_of_peak|peak_of|threads)"' "$1") \
              <(grep -Ev '"(seconds|[a-z_]*gflops?|percent_of_peak|peak_of|threads)"' "$2") >/dev/null && echo yes || echo NO; }
echo "| run | wall s | speed-up | JSON equal to 1 × 1 |"
echo "|---|---|---|---|"
printf "| 1 process × 1 thread | %.1f | 1.00 | – |\n" "$t1"
printf "| 1 process × 2 threads | %.1f | %.2f | %s |\n" "$t2" "$(echo "$t1 / $t2" | bc -l)" "$(same "$out/p1t1.json" "$out/p1t2.json")"
printf "| 2 processes × 1 thread (mpirun) | %.1f | %.2f | %s |\n" "$t3" "$(echo "$t1 / $t3" | bc -l)" "$(same "$out/p1t1.json" "$out/p2t1.json")"

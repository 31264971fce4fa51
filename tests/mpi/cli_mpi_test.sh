#!/usr/bin/env bash
# prilo-reconstruct under `mpirun -np 2` against one process (same seed, blocks, FFTW effort):
# the JSON reports must match except for timings. Also: a failing rank ends the job with its
# message instead of a hang.
set -euo pipefail
mpiexec="$1"; recon="$2"; repo="$3"; tmp="$4"
mkdir -p "$tmp"
cd "$repo"
cat > "$tmp/mpi-quick.json" <<'JSON'
{"hio": {"iterations": 100, "final_er": 10}, "dpr": {"steps": 30}, "mii": {"candidates": 200},
 "prilo_chain": {"initial": {"steps": 20}, "stages": [{"layer": 1, "forward": {"steps": 20}},
                 {"layer": 2, "repetitions": 2, "forward": {"steps": 20}}]}}
JSON
# 32 images × 2 restarts = 64 columns in 4 blocks of 16 (the default min_columns): 2 per process
args=(--fftw-effort estimate --threads 1 --blocks 4 --count 32 --restarts 2 --config "$tmp/mpi-quick.json"
      --methods hio,dpr-mii,prilo-chain-mii-resolve --quiet --peak-gflops 100)
OMP_NUM_THREADS=1 "$recon" "${args[@]}" --json "$tmp/mpi1.json" > "$tmp/mpi1.txt"
OMP_NUM_THREADS=1 "$mpiexec" -np 2 --oversubscribe --allow-run-as-root "$recon" "${args[@]}" --json "$tmp/mpi2.json" > "$tmp/mpi2.txt"
timing='"(seconds|[a-z_]*gflops?|percent_of_peak|peak_of|threads)"'
# (the FLOP figures are sums in another order: equal to rounding, so they are left out like the timings)
diff <(grep -Ev "$timing" "$tmp/mpi1.json") <(grep -Ev "$timing" "$tmp/mpi2.json")
grep -q "prilo-chain-mii-resolve" "$tmp/mpi2.txt"
# a bad argument on every rank: the job ends (no hang) with the rank's message
if OMP_NUM_THREADS=1 timeout 60 "$mpiexec" -np 2 --oversubscribe --allow-run-as-root "$recon" --count 1 --methods hio \
     --weights "$tmp/none.prw" > "$tmp/mpi3.txt" 2>&1; then
  echo "FAIL: a missing weights file should fail the MPI job"; exit 1
fi
rc=0; grep -q "rank [01] of 2: .*none.prw" "$tmp/mpi3.txt" || rc=1
[ $rc -eq 0 ] || { echo "FAIL: no rank message: $(cat "$tmp/mpi3.txt")"; exit 1; }
echo "mpirun -np 2 prilo-reconstruct: identical JSON to one process; a failing rank ends the job"

#!/usr/bin/env bash
# Every figure of benchmarks/README.md from one command: builds the benchmarks and
# prilo-reconstruct (CMake Release), runs the four Google Benchmark binaries, the 1- vs
# 2-thread scaling of a whole reconstruction, and the PyTorch comparison (when Debian's
# python3-torch is installed; `--install-torch` installs it), then writes the tables.
#
#   bash benchmarks/run_all.sh [--out DIR] [--min-time S] [--blas auto|openblas|eigen]
#                              [--install-torch] [--skip-torch]
#
# Output (DIR, default benchmarks/results): <bench>.json (Google Benchmark JSON), scaling-t1/t2
# .json (prilo-reconstruct reports), compare.json (compare_pytorch.py), machine.txt and
# tables.md (benchmarks/make_tables.py). Run it on an idle machine: other load distorts the
# 2-thread rows most (see README.md).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out=benchmarks/results
min_time=0.5
install_torch=0
skip_torch=0
blas=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --blas) blas="$2"; shift 2 ;;
    --install-torch) install_torch=1; shift ;;
    --skip-torch) skip_torch=1; shift ;;
    *) echo "run_all.sh: unknown option $1 (known: --out DIR, --min-time S, --blas B, --install-torch, --skip-torch)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
# the source state, read before anything under $out is rewritten
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- . ":(exclude)$out" 2>/dev/null || commit="$commit (with local changes)"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
export PRILO_DATA="${PRILO_DATA:-$repo/data}"
if [ "$install_torch" = 1 ] && ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  apt-get install -y python3-torch >/dev/null
fi

echo "== build (Release, benchmarks on) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRILO_BUILD_BENCHMARKS=ON -DPRILO_BUILD_EXAMPLES=ON \
      -DPRILO_BLAS="$blas" >/dev/null
cmake --build build -j "$(nproc)" --target bench_peak bench_projection bench_fft_loss bench_mlp bench_solver prilo-reconstruct

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $commit"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) logical CPUs"
  echo "compiler: $(c++ --version | head -1)"
  echo "products: PRILO_BLAS=$(sed -n 's/^PRILO_BLAS:STRING=//p' build/CMakeCache.txt), OpenBLAS (OpenMP build) found: $(sed -n 's/^PRILO_OPENBLAS_OPENMP:FILEPATH=//p' build/CMakeCache.txt), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.txt"
cat "$out/machine.txt"

for b in peak projection fft_loss mlp solver; do
  echo "== bench_$b =="
  OMP_NUM_THREADS=1 "./build/benchmarks/bench_$b" --benchmark_min_time="$min_time" \
    --benchmark_out="$out/$b.json" --benchmark_out_format=json >/dev/null
done

echo "== thread scaling and the work table: PRILO-MII and DPR, 64 MNIST test images x 4 restarts =="
# the work table's peak: bench_peak's single-core FP32 FMA rate times the threads (measured
# idle, in this run, rather than the per-machine cache)
core_peak="$(/usr/bin/python3 -c "import json,sys; print(max(x['GFLOPS'] for x in json.load(open(sys.argv[1]))['benchmarks']))" "$out/peak.json")"
for t in 1 2; do
  ./build/examples/prilo-reconstruct --quiet --methods dpr,prilo-mii --count 64 --restarts 4 --threads "$t" \
    --peak-gflops "$(echo "$core_peak * $t" | bc -l)" --json "$out/scaling-t$t.json" | grep -E '^(dpr|prilo-mii) '
done

if [ "$skip_torch" = 0 ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "== PyTorch comparison =="
  /usr/bin/python3 benchmarks/compare_pytorch.py --prilo-json "$out/mlp.json" --prilo-json "$out/solver.json" \
    --reconstruct build/examples/prilo-reconstruct --threads 1,2 --min-time "$min_time" --json "$out/compare.json"
else
  echo "== PyTorch comparison skipped (python3-torch not installed: rerun with --install-torch) =="
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"

python3 benchmarks/make_tables.py "$out" > "$out/tables.md"
echo "wrote $out/tables.md"

#!/usr/bin/env bash
# The CUDA checks on a machine with a GPU, from a bundle of scripts/cuda_bundle.sh (nothing is
# built there): the device tests, the device benchmarks, PRILO-MII against PyTorch on the same GPU
# (when python3 has torch with CUDA), and Table 1 on the GPU. Run from the repository root
# (models/, configs/, benchmarks/ and scripts/ are read from it); writes OUT_DIR/tests.log,
# bench.txt, bench.json, compare-cuda.json and table1/ (the reports of scripts/reproduce_table1.sh).
# Without a CUDA device it says so and fails.
#   usage: scripts/cuda_checks.sh BUNDLE_DIR [OUT_DIR (default out/cuda)] [Table 1 parts (default
#          paper,rx,chain; "none" skips it)]
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUNDLE_DIR [OUT_DIR] [parts]" >&2; exit 2; }
bundle="$(cd "$1" && pwd)"; out="${2:-out/cuda}"; parts="${3:-paper,rx,chain}"
[ -f "$bundle/bin.tar.xz" ] && [ -f "$bundle/images" ] || { echo "cuda_checks: $bundle is not a bundle of scripts/cuda_bundle.sh" >&2; exit 2; }
mkdir -p "$out"; out="$(cd "$out" && pwd)"
tar -C "$bundle" -xJf "$bundle/bin.tar.xz"
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
B="$bundle/bin"; count="$(cat "$bundle/images")"; status=0
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if ldd "$B"/* | grep "not found"; then echo "cuda_checks: libraries missing (above)" >&2; exit 1; fi
echo "== device tests"
"$B/prilo_cuda_tests" -d > "$out/tests.log" 2>&1 || status=1
if grep -q "no CUDA device found" "$out/tests.log"; then
  echo "cuda_checks: no CUDA device found on this machine: $(cat "$out/tests.log")" >&2; exit 1
fi
grep -E "MESSAGE|^\[doctest\] (test cases|assertions|Status)|ERROR" "$out/tests.log"
echo "== device benchmarks"
"$B/prilo_cuda_bench" --benchmark_min_time=0.2 --benchmark_out="$out/bench.json" --benchmark_out_format=json \
  > "$out/bench.txt" 2>&1 || status=1
grep -E "^BM_" "$out/bench.txt"
if python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "== PRILO-MII against PyTorch on the same GPU ($count images)"
  python3 benchmarks/compare_pytorch.py --device cuda --reconstruct "$B/prilo-reconstruct-cuda" \
    --data-dir "$bundle/data" --count "$count" --threads "$(nproc)" --json "$out/compare-cuda.json" 2>&1 | tail -4 || status=1
else
  echo "== no python3 with CUDA PyTorch here: the PyTorch comparison is skipped"
fi
if [ "$parts" != none ]; then
  echo "== Table 1 on the GPU ($count images, parts $parts)"
  PRILO_BACKEND=cuda PRILO_RECONSTRUCT="$B/prilo-reconstruct-cuda" PRILO_DATA="$bundle/data" \
    PRILO_RESULTS="$out/table1" bash scripts/reproduce_table1.sh "$count" "$parts" || status=1
fi
exit $status

#!/usr/bin/env bash
# The paper's Figure 3: MNIST test images from real and complex Gaussian measurements,
# m = 25 … 600, DPR, DPR-MII and PRILO-MII. Real and complex run side by side, one thread
# each. Writes docs/results/figure3-<kind>-m<M>.json, docs/results/figure3.md and figure3.svg.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
count="${1:-128}"; restarts="${2:-2}"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target prilo-reconstruct >/dev/null
mkdir -p docs/results
for kind in real complex; do
  (
    for m in 25 50 100 200 400 600; do
      ./build/examples/prilo-reconstruct --dataset mnist --operator "gaussian-$kind" --measurements "$m" \
        --count "$count" --restarts "$restarts" --threads 1 --quiet --methods dpr,dpr-mii,prilo-mii \
        --json "docs/results/figure3-$kind-m$m.json" > "docs/results/figure3-$kind-m$m.log" 2>&1
      echo "gaussian-$kind m=$m done"
    done
  ) &
done
wait
python3 scripts/plot_figure3.py docs/results docs/results/figure3.svg > docs/results/figure3.md
cat docs/results/figure3.md

#!/usr/bin/env bash
# The paper's Figure 3: MNIST test images from real and complex Gaussian measurements,
# m = 25 … 600: DPR, DPR-MII, PRILO-MII (A/B/C), PRILO-chain-MII, and the classical
# baselines spectral initialisation, Wirtinger flow and truncated amplitude flow. Real and
# complex run side by side, one thread each. Writes docs/results/figure3-<kind>-m<M>.json,
# docs/results/figure3.md and figure3.{svg,png}.
#   usage: reproduce_figure3.sh [N images, default 256] [restarts, default 4]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
count="${1:-256}"; restarts="${2:-4}"
rm -f docs/results/figure3-*-m*.json   # the plot reads every report of this pattern
pids=()
for kind in real complex; do
  (
    for m in 25 50 100 200 400 600; do
      $reconstruct --dataset mnist --operator "gaussian-$kind" --measurements "$m" \
        --count "$count" --restarts "$restarts" --threads 1 --quiet \
        --methods spectral,wf,taf,dpr,dpr-mii,prilo-mii,prilo-chain-mii \
        --json "docs/results/figure3-$kind-m$m.json" > "docs/results/figure3-$kind-m$m.log" 2>&1
      echo "gaussian-$kind m=$m done"
    done
  ) &
  pids+=($!)
done
wait_all "${pids[@]}"
$py scripts/plot_results.py figure3 docs/results docs/results/figure3 > docs/results/figure3.md
cat docs/results/figure3.md

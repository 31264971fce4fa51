#!/usr/bin/env bash
# The paper's Table 3 (ablation) for PRILO-MII on MNIST and Fashion-MNIST, Fourier, first N
# (default 1024) test images, 4 restarts, in both readings: A/B/C (prilo-mii) with the
# initialisation only, A only, A + B, A + B + C (full) and no l1 balls; chained
# (prilo-chain-mii) full and without balls (its "A only" is the full method; the
# initialisation alone is the same MII start). The data sets run side by side, one thread
# each. Writes docs/results/table3-<dataset>-<ablation>.json and docs/results/table3.md.
#   usage: reproduce_table3.sh [N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
count="${1:-1024}"
pids=()
for ds in mnist fashion-mnist; do
  (
    for ab in init-only a-only a-b full no-balls; do
      methods=prilo-mii
      if [[ $ab == full || $ab == no-balls ]]; then methods=prilo-mii,prilo-chain-mii; fi
      $reconstruct --dataset "$ds" --count "$count" --restarts 4 --threads 1 --quiet --ablation "$ab" \
        --methods "$methods" --json "docs/results/table3-$ds-$ab.json" > "docs/results/table3-$ds-$ab.log" 2>&1
      echo "$ds $ab done"
    done
  ) &
  pids+=($!)
done
wait_all "${pids[@]}"
$py scripts/plot_results.py table3 docs/results/table3-{mnist,fashion-mnist}-{init-only,a-only,a-b,full,no-balls}.json \
  > docs/results/table3.md
cat docs/results/table3.md

#!/usr/bin/env bash
# The paper's Table 3 (ablation) for PRILO-MII on MNIST and Fashion-MNIST, Fourier, first N
# (default 1024) test images, 4 restarts, in both readings: A/B/C (prilo-mii) with the
# initialisation only, A only, A + B, A + B + C (full) and no l1 balls; chained
# (prilo-chain-mii) full and without balls (its "A only" is the full method; the
# initialisation alone is the same MII start). Ten runs, one thread each, two at a time
# (longest first). Writes docs/results/table3-<dataset>-<ablation>.json and table3.md.
#   usage: reproduce_table3.sh [N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
count="${1:-1024}"
export reconstruct count
one() {  # one <dataset> <ablation>
  local methods=prilo-mii
  if [[ $2 == full || $2 == no-balls ]]; then methods=prilo-mii,prilo-chain-mii; fi
  $reconstruct --dataset "$1" --count "$count" --restarts 4 --threads 1 --quiet --ablation "$2" \
    --methods "$methods" --json "docs/results/table3-$1-$2.json" > "docs/results/table3-$1-$2.log" 2>&1
  echo "$1 $2 done"
}
export -f one
printf '%s\n' "mnist full" "mnist no-balls" "mnist a-b" "fashion-mnist full" "fashion-mnist no-balls" "mnist a-only" \
  "fashion-mnist a-b" "fashion-mnist a-only" "mnist init-only" "fashion-mnist init-only" |
  xargs -P 2 -L 1 bash -c 'one "$0" "$1"'
$py scripts/plot_results.py table3 docs/results/table3-{mnist,fashion-mnist}-{init-only,a-only,a-b,full,no-balls}.json \
  > docs/results/table3.md
cat docs/results/table3.md

#!/usr/bin/env bash
# The paper's Figure 4 (one random start against MII, best of the first r = 1…5 restarts by
# magnitude error) on the first N (default 256) MNIST test images, Fourier, and Figure 7
# (mean PSNR (analysis) and magnitude error against the optimisation step, per phase) on the
# first 64, for PRILO-MII (A/B/C) with its ablations and PRILO-chain-MII.
# Writes docs/results/figure4.{md,svg,png} (reports figure4-*.json) and
# docs/results/figure7.{json,md,svg,png}.
#   usage: reproduce_figures4_7.sh [N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
count="${1:-256}"
# Figure 4: 5 restarts, every restart's result kept (--per-restart); best-of-r computed from them
pids=()
$reconstruct --dataset mnist --count "$count" --restarts 5 --threads 1 --quiet --per-restart \
  --methods dpr,dpr-mii --json docs/results/figure4-dpr.json > docs/results/figure4-dpr.log 2>&1 &
pids+=($!)
$reconstruct --dataset mnist --count "$count" --restarts 5 --threads 1 --quiet --per-restart \
  --methods prilo-chain,prilo-chain-mii --json docs/results/figure4-chain.json > docs/results/figure4-chain.log 2>&1 &
pids+=($!)
wait_all "${pids[@]}"
$py scripts/plot_results.py figure4 docs/results/figure4-{dpr,chain}.json docs/results/figure4 > docs/results/figure4.md
cat docs/results/figure4.md
# Figure 7: one thread per run, so that the trace covers every column
pids=()
for ab in full a-only a-b; do
  $reconstruct --dataset mnist --count 64 --restarts 4 --threads 1 --quiet --ablation "$ab" --methods prilo-mii \
    --trace "docs/results/figure7-$ab.json" --json "docs/results/figure7-$ab-report.json" > /dev/null &
  pids+=($!)
done
$reconstruct --dataset mnist --count 64 --restarts 4 --threads 1 --quiet --methods prilo-chain-mii \
  --trace docs/results/figure7-chain.json --json docs/results/figure7-chain-report.json > /dev/null &
pids+=($!)
wait_all "${pids[@]}"
python3 - <<'PY'
import json
out = {"methods": {}}
for ab in ["full", "a-only", "a-b", "chain"]:
    t = json.load(open(f"docs/results/figure7-{ab}.json"))
    for name, pts in t["methods"].items():
        out["methods"][f"{name} ({ab})" if ab != "chain" else name] = pts
    out["note"] = t["note"]
json.dump(out, open("docs/results/figure7.json", "w"))
PY
rm -f docs/results/figure7-{full,a-only,a-b,chain}.json
$py scripts/plot_results.py figure7 docs/results/figure7.json docs/results/figure7 > docs/results/figure7.md
cat docs/results/figure7.md

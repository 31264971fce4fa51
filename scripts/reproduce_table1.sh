#!/usr/bin/env bash
# The paper's Table 1: every method on the first N (default 1024) test images of MNIST and
# Fashion-MNIST, non-oversampled Fourier measurements, 4 restarts. The two data sets run side
# by side, one thread each. Writes docs/results/table1-<dataset>.{json,log,png} and prints
# the Markdown table (scripts/make_table.py).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
count="${1:-1024}"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target prilo-reconstruct >/dev/null
mkdir -p docs/results
for ds in mnist fashion-mnist; do
  (
    # the paper's methods (and -resolve over PRILO-MII), then the range-extended variants
    /usr/bin/time -f "wall %e s" ./build/examples/prilo-reconstruct --dataset "$ds" --count "$count" --restarts 4 --threads 1 \
      --methods er,hio,dpr,dpr-mii,prilo,prilo-mii,prilo-mii-resolve --json "docs/results/table1-$ds.json" \
      --png "docs/results/table1-$ds.png" --png-count 12 > "docs/results/table1-$ds.log" 2>&1
    /usr/bin/time -f "wall %e s" ./build/examples/prilo-reconstruct --dataset "$ds" --count "$count" --restarts 4 --threads 1 \
      --methods hio,prilo-mii-rx,prilo-mii-rx-resolve --json "docs/results/table1-$ds-rx.json" \
      --png "docs/results/table1-$ds-rx.png" --png-count 12 > "docs/results/table1-$ds-rx.log" 2>&1
  ) &
done
wait
python3 scripts/make_table.py docs/results/table1-{mnist,fashion-mnist}{,-rx}.json

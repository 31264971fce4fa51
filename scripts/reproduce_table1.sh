#!/usr/bin/env bash
# The paper's Table 1: every method on the first N (default 1024) test images of MNIST and
# Fashion-MNIST, non-oversampled Fourier measurements, 4 restarts. The two data sets run side
# by side, one thread each. Writes docs/results/table1-<dataset>{,-rx,-chain}.{json,log,png}
# and prints the Markdown tables (scripts/make_table.py).
#   usage: reproduce_table1.sh [N] [parts]   parts: a comma list of paper,rx,chain (the MLP VAE,
#   the default), conv (the conv VAE: --generator conv, configs/<dataset>-conv.json), style (the
#   style VAE, z0 fed into every layer: --generator style, configs/<dataset>-style.json) and li
#   (the learned initialisation with the MLP VAE); table1-<dataset>-conv / -style / -li.{json,log,png}
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
count="${1:-1024}"; parts="${2:-paper,rx,chain}"
run() {  # run <dataset> <suffix> <methods> [more prilo-reconstruct options]
  /usr/bin/time -f "wall %e s" $reconstruct --dataset "$1" --count "$count" --restarts 4 --threads 1 \
    "${@:4}" --methods "$3" --json "docs/results/table1-$1$2.json" --png "docs/results/table1-$1$2.png" --png-count 12 \
    > "docs/results/table1-$1$2.log" 2>&1
}
pids=()
for ds in mnist fashion-mnist; do
  (
    # the paper's methods (and -resolve over PRILO-MII), the range-extended variants, and the
    # chained reading of Tables 7/8 (forward phases only)
    if [[ ",$parts," == *,paper,* ]]; then run "$ds" "" er,hio,dpr,dpr-mii,prilo,prilo-mii,prilo-mii-resolve; fi
    if [[ ",$parts," == *,rx,* ]]; then run "$ds" -rx hio,prilo-mii-rx,prilo-mii-rx-resolve; fi
    if [[ ",$parts," == *,chain,* ]]; then run "$ds" -chain hio,prilo-chain,prilo-chain-mii,prilo-chain-mii-resolve; fi
    if [[ ",$parts," == *,conv,* ]]; then
      run "$ds" -conv hio,dpr-mii,prilo-chain-mii,prilo-chain-mii-resolve --generator conv
    fi
    if [[ ",$parts," == *,style,* ]]; then
      run "$ds" -style dpr-mii,prilo-chain-mii,prilo-chain-mii-resolve --generator style
    fi
    if [[ ",$parts," == *,li,* ]]; then run "$ds" -li dpr-mii,dpr-li,prilo-chain-mii,prilo-chain-li; fi
  ) &
  pids+=($!)
done
wait_all "${pids[@]}"
reports=()
for ds in mnist fashion-mnist; do
  for part in paper rx chain conv style li; do
    suffix="-$part"; [ "$part" = paper ] && suffix=""
    if [[ ",$parts," == *,$part,* ]]; then reports+=("docs/results/table1-$ds$suffix.json"); fi
  done
done
python3 scripts/make_table.py "${reports[@]}"

#!/usr/bin/env bash
# The representation limit of each prior (an analysis: it fits the ground-truth images),
# docs/representation.md: prilo-represent for the MLP, conv and style VAEs on Fashion-MNIST
# and MNIST, first N (default 128) test images, one thread, one run at a time. Writes
# docs/results/representation-<dataset>-<generator>.{json,log} and representation.md (the
# tables). With PRILO_BUILD_DIR set, uses (and builds) prilo-represent there instead of the
# set-up and ./build of scripts/prepare.sh.
#   usage: representation.sh [N]
set -euo pipefail
count="${1:-128}"
if [[ -n "${PRILO_BUILD_DIR:-}" ]]; then
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  source scripts/openblas_env.sh
  build="$PRILO_BUILD_DIR"
else
  source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
  build=build
fi
cmake --build "$build" -j 2 --target prilo-represent >/dev/null
mkdir -p docs/results
out=docs/results/representation.md
: > "$out"
for ds in fashion-mnist mnist; do
  for g in mlp conv style; do
    base="docs/results/representation-$ds-$g"
    start=$(date +%s)
    "$build/examples/prilo-represent" --dataset "$ds" --generator "$g" --count "$count" --threads 1 --quiet \
      --json "$base.json" > "$base.log" 2>&1
    { echo "### $ds, $g VAE ($(($(date +%s) - start)) s)"; echo; grep '^|' "$base.log"; echo; } | tee -a "$out"
  done
done

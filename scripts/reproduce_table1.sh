#!/usr/bin/env bash
# The paper's Table 1: every method on the first N (default 1024) test images of MNIST and
# Fashion-MNIST, non-oversampled Fourier measurements, 4 restarts. One job per data set and
# part, one thread each, as many at once as cores. Writes
# docs/results/table1-<dataset>{,-rx,-chain}.{json,log,png}, prints the Markdown tables
# (scripts/make_table.py) and the wall time.
#   usage: reproduce_table1.sh [N] [parts]   parts: a comma list of paper,rx,chain (the MLP VAE,
#   the default), conv (the conv VAE: --generator conv, configs/<dataset>-conv.json), style (the
#   style VAE, z0 fed into every layer: --generator style, configs/<dataset>-style.json), li
#   (the learned initialisation with the MLP VAE), conv-starts and style-starts (the conv and
#   style VAEs from random, MII and LI starts: models/li-<dataset>-fourier-<generator>.prw),
#   conv-li and style-li (chained PRILO from LI starts and its -resolve, conv and style VAEs),
#   conv-avg and style-avg (the same runs' restarts averaged, -avg, and -resolve over that; style-avg
#   also -polish over -avg-resolve, for Fashion-MNIST only),
#   grid-mlp, grid-conv and grid-style (the cells of DPR/PRILO × random/MII/LI that no other part
#   runs: with paper, chain, conv, style, conv-li and style-li they make the whole grid, which
#   scripts/grid_table.py prints); table1-<dataset>-<part>.{json,log,png} (paper: table1-<dataset>.*)
#   PRILO_BACKEND=cuda: DPR, PRILO and MII on the GPU (prilo-reconstruct-cuda --backend cuda, built
#   by scripts/prepare.sh), one job at a time with every core for the CPU's part (ER/HIO,
#   -resolve); reports in docs/results/cuda/ instead. PRILO_RECONSTRUCT=<program>: a build made
#   elsewhere (scripts/prepare.sh). PRILO_RESULTS=<folder>: where the reports go.
#   PRILO_DATASETS=<comma list> (default mnist,fashion-mnist): run the parts for these data sets only.
#   PRILO_FFT=fftw|lanes|auto: prilo-reconstruct --fft (default: the program's, auto, which takes the
#   lanes for 28x28 images: the DFT loss's transforms one image per SIMD lane, FourierEngine::lanes;
#   PRILO_FFT=fftw: FFTW's, as the results made before the twenty-third round of
#   benchmarks/README.md; the two differ in their last bits).
set -euo pipefail
datasets="${PRILO_DATASETS:-mnist,fashion-mnist}"
for d in ${datasets//,/ }; do
  case "$d" in mnist | fashion-mnist) ;; *) echo "PRILO_DATASETS: unknown data set '$d' (known: mnist, fashion-mnist)" >&2; exit 2 ;; esac
done
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
count="${1:-1024}"; parts="${2:-paper,rx,chain}"
if [ "$backend" = cuda ]; then
  results="${PRILO_RESULTS:-docs/results/cuda}"; placement=(--backend cuda --threads "$(nproc)"); default_workers=1
else
  results="${PRILO_RESULTS:-docs/results}"; placement=(--threads 1); default_workers="$(nproc)"
fi
mkdir -p "$results"
fft=(); [ -n "${PRILO_FFT:-}" ] && fft=(--fft "$PRILO_FFT")
timer=(); [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "wall %e s")  # the wall line in each log
run() {  # run <dataset> <suffix> <methods> [more prilo-reconstruct options]
  "${timer[@]}" $reconstruct --dataset "$1" --count "$count" --restarts 4 "${placement[@]}" ${fft[@]+"${fft[@]}"} \
    "${@:4}" --methods "$3" --json "$results/table1-$1$2.json" --png "$results/table1-$1$2.png" --png-count 12 \
    > "$results/table1-$1$2.log" 2>&1
}
# One job per (data set, part), each prilo-reconstruct on one thread, on as many workers as
# cores ($PRILO_JOBS overrides): a worker takes the next job as soon as its last one ends, and
# the jobs go longest first (their FLOP counts per image, MLP parts; the conv, style and li
# parts are about as long as paper), so that no core idles while the other works through
# one data set's parts (side by side, the two data sets ended 12 minutes apart).
part_job() {  # part_job <dataset> <part>
  case "$2" in
    # the paper's methods (and -resolve over PRILO-MII)
    paper) run "$1" "" er,hio,dpr,dpr-mii,prilo,prilo-mii,prilo-mii-resolve ;;
    # the range-extended variants
    rx) run "$1" -rx hio,prilo-mii-rx,prilo-mii-rx-resolve ;;
    # the chained reading of Tables 7/8 (forward phases only)
    chain) run "$1" -chain hio,prilo-chain,prilo-chain-mii,prilo-chain-mii-resolve ;;
    conv) run "$1" -conv hio,dpr-mii,prilo-chain-mii,prilo-chain-mii-resolve --generator conv ;;
    style) run "$1" -style dpr-mii,prilo-chain-mii,prilo-chain-mii-resolve --generator style ;;
    li) run "$1" -li dpr-mii,dpr-li,prilo-chain-mii,prilo-chain-li ;;
    # the conv and style VAEs from each start (random, MII, LI), DPR and chained PRILO
    conv-starts | style-starts)
      run "$1" "-$2" dpr,dpr-mii,dpr-li,prilo-chain,prilo-chain-mii,prilo-chain-li --generator "${2%-starts}" ;;
    # chained PRILO from LI starts, and -resolve over it (with HIO's solutions)
    conv-li | style-li) run "$1" "-$2" hio,prilo-chain-li,prilo-chain-li-resolve --generator "${2%-li}" ;;
    # the consensus of the restarts (-avg) of chained PRILO from LI starts, and -resolve over it
    conv-avg) run "$1" "-$2" hio,prilo-chain-li,prilo-chain-li-avg,prilo-chain-li-avg-resolve --generator conv ;;
    # the same with the style VAE, and (Fashion-MNIST only: chosen there; on MNIST most outputs
    # are exact after -resolve, and a mean with anything else undoes that) -polish over it
    style-avg)
      local methods=hio,prilo-chain-li,prilo-chain-li-avg,prilo-chain-li-avg-resolve
      [ "$1" = fashion-mnist ] && methods+=,prilo-chain-li-avg-resolve-polish
      run "$1" "-$2" "$methods" --generator style ;;
    # the rest of the grid: the MLP VAE's LI cells (PRILO is the paper's, and chained), the
    # conv and style VAEs' random and DPR-LI cells (their PRILO is chained)
    grid-mlp) run "$1" -grid-mlp dpr-li,prilo-li,prilo-chain-li ;;
    grid-conv | grid-style) run "$1" "-$2" dpr,dpr-li,prilo-chain --generator "${2#grid-}" ;;
  esac
}
queue=()
for job in mnist:paper fashion-mnist:paper mnist:style fashion-mnist:style mnist:conv fashion-mnist:conv \
  mnist:conv-starts fashion-mnist:conv-starts mnist:style-starts fashion-mnist:style-starts \
  mnist:conv-li mnist:style-li fashion-mnist:conv-li fashion-mnist:style-li \
  mnist:style-avg fashion-mnist:style-avg mnist:conv-avg fashion-mnist:conv-avg \
  mnist:grid-style fashion-mnist:grid-style mnist:grid-conv fashion-mnist:grid-conv mnist:grid-mlp fashion-mnist:grid-mlp \
  mnist:chain mnist:rx mnist:li fashion-mnist:li fashion-mnist:rx fashion-mnist:chain; do
  if [[ ",$parts," == *,${job#*:},* && ",$datasets," == *,${job%%:*},* ]]; then queue+=("$job"); fi
done
workers="${PRILO_JOBS:-$default_workers}"
failed=0
for job in "${queue[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$workers" ]; do wait -n || failed=1; done
  part_job "${job%%:*}" "${job#*:}" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
if [ $failed -ne 0 ]; then echo "a run failed: see its log in $results/" >&2; exit 1; fi
echo "reproduce_table1: $count images, parts $parts, backend $backend, ${#queue[@]} jobs on $workers worker(s): wall ${SECONDS} s" >&2
reports=()
for ds in ${datasets//,/ }; do
  for part in paper rx chain conv style li conv-starts style-starts conv-li style-li conv-avg style-avg grid-mlp grid-conv \
    grid-style; do
    suffix="-$part"; [ "$part" = paper ] && suffix=""
    if [[ ",$parts," == *,$part,* ]]; then reports+=("$results/table1-$ds$suffix.json"); fi
  done
done
python3 scripts/make_table.py "${reports[@]}"
# with a grid part, the whole grid of the reports of this image count (scripts/grid_table.py)
if [[ ",$parts," == *,grid-* ]]; then python3 scripts/grid_table.py --count "$count" --dir "$results"; fi

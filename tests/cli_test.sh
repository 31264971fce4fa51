#!/usr/bin/env bash
# CLI checks: every bad input gives a clear error and a non-zero exit; a tiny run works.
set -u
recon="$1"; train="$2"; repo="$3"; tmp="$4"; train_li="${5:-}"; train_placement="${6:-}"
mkdir -p "$tmp"
fails=0; passes=0
expect_fail() {  # expect_fail "<substring of the error>" args...
  local want="$1"; shift
  local out; out="$("$@" 2>&1)"; local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$want" <<<"$out"; then passes=$((passes+1)); else
    echo "FAIL: '$*' should fail with '$want' (rc=$rc): $out"; fails=$((fails+1)); fi
}
expect_ok() {
  local out; out="$("$@" 2>&1)"; local rc=$?
  if [ $rc -eq 0 ]; then passes=$((passes+1)); else echo "FAIL: '$*' (rc=$rc): $out"; fails=$((fails+1)); fi
}
expect_ok_with() {  # expect_ok_with "<substring of the output>" args...
  local want="$1"; shift
  local out; out="$("$@" 2>&1)"; local rc=$?
  if [ $rc -eq 0 ] && grep -qF -- "$want" <<<"$out"; then passes=$((passes+1)); else
    echo "FAIL: '$*' should succeed printing '$want' (rc=$rc): $out"; fails=$((fails+1)); fi
}
cd "$repo"
# the FMA peak the work table measures is cached per machine: measured here, under the other
# tests' load, it must not become the machine's cached figure
export XDG_CACHE_HOME="$tmp/cache"
expect_fail "--bogus" "$recon" --bogus
expect_ok_with "=32" "$recon" --help  # the defaults a bare run uses (--count 32)
expect_fail "unknown method \"foo\"" "$recon" --methods hio,foo
expect_fail "outside the test split" "$recon" --first 9990 --count 20
expect_fail "--dataset" "$recon" --dataset cifar
expect_fail "file not found" "$recon" --data-dir "$tmp/no-such-dir" --count 1
expect_fail "bash scripts/setup.sh" "$recon" --data-dir "$tmp/no-such-dir" --count 1
expect_fail "none.prw: file not found" "$recon" --weights "$tmp/none.prw" --count 1
printf 'PRILOWTS-garbage' > "$tmp/bad.prw"
expect_fail "bad.prw" "$recon" --weights "$tmp/bad.prw" --count 1
printf '{"dpr": {"steps": "many"' > "$tmp/bad.json"
expect_fail "bad.json" "$recon" --config "$tmp/bad.json" --count 1
expect_fail "needs the Fourier operator" "$recon" --operator gaussian-real --methods hio --count 1 --quiet
# ... before any reading or printing: the error is all the output
if [ "$("$recon" --operator gaussian-real --methods hio --count 1 --quiet 2>&1 | wc -l)" -eq 1 ]; then
  passes=$((passes+1)); else echo "FAIL: --methods hio with gaussian-real prints more than its error"; fails=$((fails+1)); fi
expect_fail "--fftw-effort" "$recon" --fftw-effort exhaustive --count 1
# one image has no confidence interval: the table says n/a, never nan
out="$("$recon" --methods er --count 1 --peak-gflops 100 2>&1)"; rc=$?
if [ $rc -eq 0 ] && grep -qE "± +n/a" <<<"$out" && ! grep -qiw "nan" <<<"$out"; then passes=$((passes+1)); else
  echo "FAIL: --count 1 should print n/a for the confidence intervals (rc=$rc): $out"; fails=$((fails+1)); fi
PRILO_FFTW_EFFORT=exhaustive expect_fail "unknown value \"exhaustive\"" "$recon" --count 1 --methods hio --quiet
expect_fail "--epochs" "$train" --epochs 0
# more training images than the split holds: the option named, before any reading
expect_fail "--train-limit 70000: the train split of mnist has 60000 images" "$train" --train-limit 70000 --epochs 1 \
  -o "$tmp/limit.prw"
# output paths are checked before any solving (no banner, no table)
expect_fail "--png $tmp/no-such-dir/x.png: the folder $tmp/no-such-dir does not exist" "$recon" --count 1 --png "$tmp/no-such-dir/x.png"
out="$("$recon" --count 1 --json "$tmp" 2>&1)"
if grep -q "is a folder" <<<"$out" && ! grep -q "backend" <<<"$out"; then passes=$((passes+1)); else
  echo "FAIL: --json <folder> should fail before the run: $out"; fails=$((fails+1)); fi
expect_fail "--trace" "$recon" --count 1 --trace "$tmp/no-such-dir/t.json"
expect_fail "--ablation" "$recon" --ablation half --count 1
printf '{"prilo": {"initial": {"optimiser": "sgd"}, "stages": []}}' > "$tmp/badopt.json"
expect_fail "optimiser must be" "$recon" --config "$tmp/badopt.json" --count 1
# a stage below the decoder's last layer is refused with the config named, before the header
printf '{"prilo": {"stages": [{"layer": 9}]}}' > "$tmp/deep.json"
expect_fail "the config $tmp/deep.json: method prilo-mii: the config's prilo.stages for this decoder" \
  "$recon" --config "$tmp/deep.json" --methods prilo-mii --count 1 --quiet
printf '{"prilo": {"stages": []}}' > "$tmp/nochain.json"
expect_fail "no \"prilo_chain\" section" "$recon" --config "$tmp/nochain.json" --methods prilo-chain --count 1 --quiet
# what the input audit of 2026-12-02 found accepted, crashing or silently wrong
expect_fail "--threads: Value 100000 not in range" "$recon" --threads 100000 --count 1 --methods hio --quiet
expect_fail "method hio is listed twice" "$recon" --methods hio,er,hio --count 1 --quiet
printf '[]' > "$tmp/toparr.json"
expect_fail "the config: expected an object" "$recon" --config "$tmp/toparr.json" --count 1 --methods hio --quiet
printf '{"prilo_chian": {}}' > "$tmp/topunk.json"
expect_fail "unknown key \"prilo_chian\"" "$recon" --config "$tmp/topunk.json" --count 1 --methods hio --quiet
printf '{"prilo": {"keep_bset": true, "stages": []}}' > "$tmp/priounk.json"
expect_fail "prilo: unknown key \"keep_bset\"" "$recon" --config "$tmp/priounk.json" --count 1 --methods hio --quiet
printf '{"prilo": {"stages": [{"layer": 1, "forwrd": {}}]}}' > "$tmp/stageunk.json"
expect_fail "prilo.stages[0]: unknown key \"forwrd\"" "$recon" --config "$tmp/stageunk.json" --count 1 --methods hio --quiet
printf '{"prilo": {"stages": {}}}' > "$tmp/stagesobj.json"
expect_fail "prilo.stages: expected an array" "$recon" --config "$tmp/stagesobj.json" --count 1 --methods hio --quiet
printf '{"hio": {"beta": -3}}' > "$tmp/beta.json"
expect_fail "hio.beta must be > 0" "$recon" --config "$tmp/beta.json" --count 1 --methods hio --quiet
expect_fail "--json and --png name the same file" "$recon" --count 1 --methods hio --quiet --json "$tmp/same.out" \
  --png "$tmp/same.out"
printf '{}' > "$tmp/input.json"  # (a config of its own: quick.json is written further down)
expect_fail "is the --config file the program reads" "$recon" --count 1 --methods hio --quiet \
  --config "$tmp/input.json" --json "$tmp/input.json"
expect_fail "hold the mlp VAE, not the conv one" "$recon" --generator conv --weights "$repo/models/vae-mnist.prw" \
  --count 1 --methods hio --quiet
expect_fail "--measurements sets the Gaussian operators' m" "$recon" --measurements 300 --count 1 --methods hio --quiet
expect_fail "--peak-gflops" "$recon" --peak-gflops nan --count 1 --methods hio --quiet
expect_fail "--seed: not a seed" "$recon" --seed -1 --count 1 --methods hio --quiet
expect_fail "is beyond 18446744073709551615" "$recon" --seed 18446744073709551616 --count 1 --methods hio --quiet
expect_fail "no -li method in --methods" "$recon" --count 1 --methods hio --quiet --li-weights "$tmp/none.prw"
# outputs never overwrite the data set's files (a copy of MNIST's test files here)
mkdir -p "$tmp/dd/mnist" && cp "${PRILO_DATA:-$repo/data}"/mnist/t10k-* "$tmp/dd/mnist/"
expect_fail "is the data set's file the program reads" "$recon" --data-dir "$tmp/dd" --count 1 --methods hio --quiet \
  --png "$tmp/dd/mnist/t10k-images-idx3-ubyte"
expect_fail "is the data set's file the program reads" "$train" --data-dir "$tmp/dd" --epochs 1 \
  -o "$tmp/dd/mnist/t10k-labels-idx1-ubyte"
expect_fail "gives the placement scorer no weight" "$recon" --count 1 --methods hio --quiet \
  --placement-weights "$tmp/no-such-placement.prw"
expect_fail "images 5..2147483651 are outside" "$recon" --first 5 --count 2147483647
expect_fail "--epochs excludes --evaluate" "$train" --evaluate "$repo/models/vae-mnist.prw" --epochs 3
# what the input audit of 2026-12-06 found: an empty path falling back to a default (shipped
# weights overwritten), NaN and float-overflowing numbers, images of another shape, a folder as
# --config, a device as --weights, options that do nothing. The empty-path checks run in $tmp:
# a program that took "" for its default would fail there (no models/) instead of training over
# the shipped weights
expect_fail "--output: empty path" env -C "$tmp" "$train" --epochs 1 -o ""
expect_fail "--evaluate: empty path" env -C "$tmp" "$train" --evaluate ""
expect_fail "--json: empty path" "$recon" --count 1 --methods hio --quiet --json ""
expect_fail "--fftw-wisdom: empty path" "$recon" --count 1 --methods hio --quiet --fftw-wisdom ""
expect_fail "--count: must be an integer >= 1, got 0" "$recon" --count 0
expect_fail "--first: must be an integer >= 0, got -1" "$recon" --first -1
expect_fail "--epochs: must be an integer >= 1, got 1.5" "$train" --epochs 1.5
expect_fail "--lr: must be a finite number > 0, got nan" env -C "$tmp" "$train" --lr nan --epochs 1
expect_fail "--lr: must be a finite number > 0, got 1e39 (beyond the range of float" env -C "$tmp" "$train" \
  --lr 1e39 --epochs 1
expect_fail "is a directory, not a config file" "$recon" --config "$tmp" --count 1 --methods hio --quiet
expect_fail "bad magic: not a prilo weights file" timeout 60 "$recon" --weights /dev/zero --count 1 --methods hio --quiet
expect_fail "--per-restart: adds every restart's values to --json, and no --json is given" "$recon" --per-restart \
  --count 1 --methods hio --quiet
expect_fail "--png-count: sets the images of the --png grid, and no --png is given" "$recon" --png-count 4 --count 1 \
  --methods hio --quiet
# a grid too wide for a PNG is refused before the run (it failed after it), as are a relative
# name and its ./ spelling for two outputs (the PNG replaced the JSON) and a pipe as an output
# (the rename replaced it, or /dev/null as root, with a regular file)
expect_fail "--png-count 400 with 1 method(s): write_png_grid: the picture would be 35994x264 pixels" "$recon" \
  --count 400 --png-count 400 --png "$tmp/big.png" --methods hio --quiet
cd "$tmp"
rm -f q.json
expect_fail "--json and --png name the same file" "$recon" --count 1 --methods hio --quiet --json q.json --png ./q.json
cd "$repo"
expect_fail "--ablation a-only: leaves out B or C phases" "$recon" --count 1 --methods prilo-chain-mii --quiet \
  --ablation a-only
rm -f "$tmp/pipe.json" && mkfifo "$tmp/pipe.json"
expect_fail "--json $tmp/pipe.json: exists and is not a regular file" "$recon" --count 1 --methods hio --quiet \
  --json "$tmp/pipe.json"
expect_fail "no -resolve method in --methods, so it would not be read" "$recon" --count 1 --methods dpr --quiet \
  --config <(printf '{"resolve": {"scorer_weight": 1}}') --placement-weights "$tmp/no-such-placement.prw"
# options that would do nothing for the methods listed, and what the audit of 2026-12-06 found
expect_fail "--ablation init-only: switches PRILO's phases, and no PRILO method is in --methods" "$recon" --count 1 \
  --methods hio --ablation init-only --quiet
expect_fail "--trace: records the latent solvers (DPR, PRILO), and none is in --methods" "$recon" --count 1 \
  --methods hio --trace "$tmp/hio-trace.json" --quiet
expect_fail "--per-restart: writes the restarts of the methods that keep them, and none in --methods does" "$recon" \
  --count 1 --methods prilo-chain-mii-avg --per-restart --json "$tmp/avg.json" --quiet
expect_fail "--peak-gflops: a peak below 0.001 GFLOP/s" "$recon" --peak-gflops 1e-320 --count 1 --methods hio --quiet
expect_fail "method prilo-mii: the config has no \"prilo\" section" "$recon" --count 1 --methods hio,prilo-mii --quiet \
  --config <(printf '{"hio": {"iterations": 5, "final_er": 1}}')
out="$("$recon" --count 1 --methods hio,prilo-mii --quiet --peak-gflops 100 \
  --config <(printf '{"prilo": {"stages": [{"layer": 1, "forward": {"radii": [10, 20]}}]}}') 2>&1)"; rc=$?
if [ $rc -ne 0 ] && grep -q "the forward (A) phase gives 2 radii, the generator's state at layer 1 has 1 tensor" \
  <<<"$out" && ! grep -q "PSNR" <<<"$out"; then passes=$((passes+1)); else
  echo "FAIL: per-tensor radii of another count should fail before any method runs (rc=$rc): $out"; fails=$((fails+1)); fi
# --fftw-wisdom in a missing folder fails up front and makes no folder; a file the program cannot
# write (here $PRILO_FFTW_WISDOM's, not checked up front) is named in a warning, not claimed kept
expect_fail "--fftw-wisdom $tmp/no-wisdom-dir/w.txt: the folder $tmp/no-wisdom-dir does not exist" "$recon" --count 1 \
  --methods hio --quiet --fftw-wisdom "$tmp/no-wisdom-dir/w.txt"
expect_ok test ! -e "$tmp/no-wisdom-dir"
expect_ok_with "warning: FFTW wisdom not saved: cannot write $tmp/no-wisdom-dir2/w.txt" env \
  PRILO_FFTW_WISDOM="$tmp/no-wisdom-dir2/w.txt" "$recon" --count 1 --restarts 1 --methods hio --quiet --peak-gflops 100 \
  --config <(printf '{"hio": {"iterations": 5, "final_er": 1}}')
expect_ok test ! -e "$tmp/no-wisdom-dir2"
# MNIST's first 300 images with a 56x14 header (the same pixel count): refused by name
mkdir -p "$tmp/dims/mnist"
python3 - "${PRILO_DATA:-$repo/data}/mnist" "$tmp/dims/mnist" <<'PY'
import gzip, os, struct, sys
src, dst = sys.argv[1:]
def read(name):
    p = os.path.join(src, name)
    return open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz").read()
for split in ("train", "t10k"):
    imgs, labs = read(split + "-images-idx3-ubyte"), read(split + "-labels-idx1-ubyte")
    open(os.path.join(dst, split + "-images-idx3-ubyte"), "wb").write(struct.pack(">IIII", 0x803, 300, 56, 14) + imgs[16:16 + 300 * 784])
    open(os.path.join(dst, split + "-labels-idx1-ubyte"), "wb").write(struct.pack(">II", 0x801, 300) + labs[8:8 + 300])
PY
expect_fail "t10k-images-idx3-ubyte: images of 56x14 pixels, but mnist's are 28x28" "$recon" --data-dir "$tmp/dims" \
  --count 1 --methods hio --quiet
expect_fail "t10k-images-idx3-ubyte: images of 56x14 pixels, but mnist's are 28x28" "$train" --data-dir "$tmp/dims" \
  --evaluate "$repo/models/vae-mnist.prw"
if [ -n "$train_li" ]; then
  expect_fail "train-images-idx3-ubyte: images of 56x14 pixels, but mnist's are 28x28" "$train_li" --data-dir "$tmp/dims" \
    --epochs 1 --validation 100 --output "$tmp/li-dims.prw"
  expect_fail "--output: empty path" env -C "$tmp" "$train_li" --epochs 1 -o ""
  expect_fail "--lr: must be a finite number > 0, got 1e39" "$train_li" --epochs 1 --lr 1e39 -o "$tmp/li-big.prw"
  expect_fail "--critic-lr: sets the critic, and --adversarial-weight 0 trains none" "$train_li" --epochs 1 \
    --adversarial-weight 0 --critic-lr 5 -o "$tmp/li-nocritic.prw"
  expect_fail "--measurements: the DFT (--operator fourier) has as many measurements as pixels" "$train_li" \
    --measurements 300 --epochs 1 -o "$tmp/li-m.prw"
  # a learning rate that makes the weights infinite while the loss stays finite (a saturated sigmoid)
  expect_fail "training diverged: parameter" "$train_li" --train-limit 300 --validation 100 --epochs 1 --batch-size 50 \
    --threads 1 --adversarial-weight 0 --lr 1e30 --output "$tmp/li-inf.prw"
  expect_ok test ! -e "$tmp/li-inf.prw"
  # the shipped encoders record their decoder's weights: Fashion-MNIST's is refused with MNIST's VAE
  expect_fail "trained through another vae-mlp decoder's weights" "$recon" --methods dpr-li --count 1 --quiet \
    --li-weights "$repo/models/li-fashion-mnist-fourier.prw"
  # --record-decoder: an encoder that records other weights is never rewritten; training options are refused
  cp "$repo/models/li-mnist-fourier.prw" "$tmp/li-record.prw"
  expect_fail "(--record-decoder): trained through another vae-mlp decoder's weights" "$train_li" \
    --dataset fashion-mnist --record-decoder "$tmp/li-record.prw"
  expect_ok cmp "$repo/models/li-mnist-fourier.prw" "$tmp/li-record.prw"
  expect_ok_with "vae-mnist.prw already (unchanged)" "$train_li" \
    --record-decoder "$tmp/li-record.prw"
  expect_ok cmp "$repo/models/li-mnist-fourier.prw" "$tmp/li-record.prw"
  expect_fail "--epochs excludes --record-decoder" "$train_li" --record-decoder "$tmp/li-record.prw" --epochs 3
fi
if [ -n "$train_placement" ]; then
  # its defaults differ from the other programs' (mnist, mlp), so --help shows them
  expect_ok_with "=fashion-mnist" "$train_placement" --help
  expect_ok_with "=style" "$train_placement" --help
  expect_fail "--output: empty path" env -C "$tmp" "$train_placement" --epochs 1 -o ""
  expect_fail "--pixel-noise: must be a finite number >= 0, got nan" "$train_placement" --pixel-noise nan -o "$tmp/p.prw"
  # --method names one method, checked with its config before the training images are decoded
  expect_fail "--method: unknown method \"hio,er\"" "$train_placement" --reconstructed 2 --method hio,er --epochs 1 \
    -o "$tmp/p2.prw"
fi
represent="$(dirname "$recon")/prilo-represent"
if [ -x "$represent" ]; then
  expect_fail "--lr: must be a finite number > 0, got nan" "$represent" --lr nan --count 1
  expect_fail "--radii: 1e39 is beyond the range of the generator's scalar type" "$represent" --count 1 --radii 1e39 \
    --split-points 1
  expect_fail "--polish: sets the polish rounds, and --polish-rounds is 0" "$represent" --count 1 --polish-rounds 0 \
    --polish 7
  expect_fail "--split-lr: must be a finite number > 0, got 1e39" "$represent" --split-lr 1e39 --count 1
  expect_fail "--polish-factor: must be a number from 1e-06 to 1, got nan" "$represent" --polish-factor nan --count 1
  expect_fail "--json: empty path" "$represent" --json "" --count 1
  # given empty, they are errors, not the config's split points and balls
  expect_fail "--split-points: no split points given" "$represent" --split-points "" --count 1
  expect_fail "--radii: \"\" lists no radius" "$represent" --radii "" --count 1
  expect_fail "the config $tmp/deep.json: prilo.stages[0].layer 9 is not a split point of a decoder of" \
    "$represent" --config "$tmp/deep.json" --count 1
fi
cat > "$tmp/quick.json" <<'JSON'
{"hio": {"iterations": 50, "final_er": 10}, "dpr": {"steps": 20}, "mii": {"candidates": 50},
 "prilo": {"initial": {"steps": 10}, "stages": [{"layer": 2, "repetitions": 1, "forward": {"steps": 10},
           "back": {"steps": 10}, "refine": {"steps": 10}}]},
 "prilo_chain": {"initial": {"steps": 10}, "stages": [{"layer": 1, "forward": {"steps": 10}},
                 {"layer": 2, "repetitions": 2, "forward": {"steps": 10, "optimiser": "gradient-descent"}}]}}
JSON
expect_ok "$recon" --count 2 --restarts 1 --config "$tmp/quick.json" --methods er,hio,dpr,prilo-mii,prilo-mii-rx-resolve --quiet \
  --json "$tmp/r.json" --png "$tmp/r.png"
expect_ok test -s "$tmp/r.json"
expect_ok test -s "$tmp/r.png"
# -resolve's judges, named by the config (a relative file from the config's folder): a run that
# prints them, a missing one named before any solving, a judge file as an output refused
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['resolve']={'judges': [{'model': sys.argv[2]}]}; \
json.dump(c, open(sys.argv[3], 'w'))" "$tmp/quick.json" "$repo/models/convvae-mnist.prw" "$tmp/judged.json"
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['resolve']={'judges': [{'model': 'no-such-judge.prw'}]}; \
json.dump(c, open(sys.argv[2], 'w'))" "$tmp/quick.json" "$tmp/judged-missing.json"
expect_ok_with "-resolve judge $repo/models/convvae-mnist.prw (weight 1" "$recon" --count 2 --restarts 1 \
  --config "$tmp/judged.json" --methods prilo-mii-resolve --quiet
expect_fail "-resolve judge $tmp/no-such-judge.prw: file not found" "$recon" --count 1 --config "$tmp/judged-missing.json" \
  --methods prilo-mii-resolve --quiet
expect_ok "$recon" --count 1 --restarts 1 --config "$tmp/judged-missing.json" --methods prilo-mii --quiet  # not read
expect_fail "is the -resolve judge file the program reads" "$recon" --count 1 --config "$tmp/judged.json" \
  --methods prilo-mii-resolve --quiet --json "$repo/models/convvae-mnist.prw"
# the conv and style VAEs as priors (their default weights; the style chain with {z_i, z0} radii)
cat > "$tmp/quick-style.json" <<'JSON'
{"mii": {"candidates": 50}, "dpr": {"steps": 10},
 "prilo_chain": {"initial": {"steps": 10}, "stages": [{"layer": 3, "forward": {"steps": 10, "radii": [50, 10]}},
                 {"layer": 5, "forward": {"steps": 10, "radii": [100, 10]}}]}}
JSON
expect_ok "$recon" --generator conv --count 1 --restarts 1 --config "$tmp/quick-style.json" --methods dpr --quiet
expect_ok "$recon" --generator style --count 1 --restarts 1 --config "$tmp/quick-style.json" --methods dpr,prilo-chain-mii --quiet
expect_fail "the forward (A) phase gives 1 radii, the generator's state at layer 3 has 2 tensor(s)" "$recon" --generator style --count 1 --restarts 1 --quiet --methods prilo-chain \
  --config <(printf '{"prilo_chain": {"stages": [{"layer": 3, "forward": {"steps": 2, "radii": [5]}}]}}')
# the chained reading, its -resolve, an ablation, every restart and the trace in the reports
expect_ok "$recon" --count 2 --restarts 2 --threads 1 --config "$tmp/quick.json" --methods prilo-chain-mii,prilo-chain-mii-resolve \
  --ablation no-balls --per-restart --quiet --json "$tmp/chain.json" --trace "$tmp/trace.json"
expect_ok python3 - "$tmp/chain.json" "$tmp/trace.json" <<'PY'
import json, sys
r, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
m = r["methods"]["prilo-chain-mii"]
assert r["ablation"] == "no-balls"
assert [p["kind"] for p in m["phases"]] == ["I", "A", "A", "A"], m["phases"]
assert len(m["per_restart"]["psnr"]) == 2 and len(m["per_restart"]["psnr"][0]) == 2
assert "per_restart" not in r["methods"]["prilo-chain-mii-resolve"]  # resolve picks transforms, not restarts
pts = t["methods"]["prilo-chain-mii"]
assert len(pts) == 4 and [p["step"] for p in pts] == [10, 20, 30, 40], pts
PY
expect_ok "$recon" --count 2 --restarts 1 --config "$tmp/quick.json" --operator gaussian-complex --measurements 300 --methods dpr-mii,prilo --quiet
# -avg with a Gaussian operator (no shift ambiguity: the restarts are averaged as they are)
expect_ok "$recon" --count 2 --restarts 3 --config "$tmp/quick.json" --operator gaussian-real --measurements 300 \
  --methods dpr-mii,dpr-mii-avg --quiet --json "$tmp/avg.json"
expect_ok python3 - "$tmp/avg.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["methods"]
assert set(r) == {"dpr-mii", "dpr-mii-avg"}, r.keys()
assert "per_restart" not in r["dpr-mii"]  # the restarts were kept for -avg only
assert r["dpr-mii-avg"]["psnr"]["mean"] > 0
PY
# --fftw-effort estimate: two processes, 2 threads, the same seed give bit-identical results
for k in 1 2; do
  "$recon" --fftw-effort estimate --threads 2 --count 4 --restarts 2 --config "$tmp/quick.json" --methods hio,dpr,prilo-mii \
    --quiet --json "$tmp/repro$k.json" >/dev/null 2>&1
done
expect_ok test -s "$tmp/repro2.json"
timing='"(seconds|gflops|percent_of_peak|peak_gflops)"'
expect_ok diff <(grep -Ev "$timing" "$tmp/repro1.json") <(grep -Ev "$timing" "$tmp/repro2.json")
# --fft lanes: the DFT loss on SIMD lanes (16 images × 4 restarts on one thread: blocks of 2·L
# columns with AVX-512, AVX or SSE2): the same methods as with FFTW's, close results; the JSON
# names the engine that ran
expect_fail "--fft" "$recon" --fft cufft --count 1
expect_fail "--fft: chooses the DFT's transforms" "$recon" --operator gaussian-real --fft lanes --count 1
for e in fftw lanes; do
  expect_ok "$recon" --fft "$e" --threads 1 --count 16 --restarts 4 --config "$tmp/quick.json" --methods dpr,prilo-mii \
    --quiet --peak-gflops 100 --json "$tmp/fft-$e.json"
done
expect_ok python3 - "$tmp/fft-fftw.json" "$tmp/fft-lanes.json" "$tmp/repro1.json" <<'PY'
import json, math, sys
reports = [json.load(open(f)) for f in sys.argv[1:]]
# the engine that ran; --fft auto (the default) takes the lanes for 28x28 images
assert [r["fft"] for r in reports] == ["fftw", "lanes", "lanes"], [r["fft"] for r in reports]
a, b = (r["methods"] for r in reports[:2])
assert set(a) == set(b) == {"dpr", "prilo-mii"}, (a.keys(), b.keys())
for m in a:
    ea, eb = a[m]["magnitude_error"]["mean"], b[m]["magnitude_error"]["mean"]
    assert math.isfinite(eb) and abs(ea - eb) <= 0.25 * ea, (m, ea, eb)  # rounding apart, the same solver
PY
# FFTW wisdom: the first run writes the file, the next reads it; a corrupt file is a miss that
# is rewritten; planner effort estimate neither reads nor writes it
w="$tmp/wisdom.txt"; rm -f "$w"
run_w() { "$recon" --count 2 --restarts 1 --config "$tmp/quick.json" --methods dpr --quiet --peak-gflops 100 "$@" 2>&1; }
out1="$(run_w --fftw-wisdom "$w")"; out2="$(run_w --fftw-wisdom "$w")"
if grep -q "FFTW wisdom: none yet" <<<"$out1" && [ -s "$w" ] && grep -q "FFTW wisdom from $w" <<<"$out2"; then
  passes=$((passes+1)); else echo "FAIL: FFTW wisdom not written and read back: $out1 $out2"; fails=$((fails+1)); fi
printf '(fftw-3.3 garbage' > "$w"
out="$(run_w --fftw-wisdom "$w")"
if grep -q "is unreadable or not FFTW wisdom" <<<"$out" && [ "$(head -c 14 "$w")" != "(fftw-3.3 garb" ]; then
  passes=$((passes+1)); else echo "FAIL: a corrupt FFTW wisdom file: $out"; fails=$((fails+1)); fi
# a file that is not wisdom at all (a mistyped --fftw-wisdom) is neither read nor overwritten
printf '{"dpr": {"steps": 10}}' > "$tmp/not-wisdom.json"
out="$(run_w --fftw-wisdom "$tmp/not-wisdom.json")"
if grep -q "is not an FFTW wisdom file; neither read nor overwritten" <<<"$out" &&
  [ "$(cat "$tmp/not-wisdom.json")" = '{"dpr": {"steps": 10}}' ]; then
  passes=$((passes+1)); else echo "FAIL: a file that is not wisdom was touched: $out"; fails=$((fails+1)); fi
out="$(PRILO_FFTW_WISDOM="$w" run_w --fftw-effort estimate)"
if grep -q "not used (planner effort estimate)" <<<"$out"; then passes=$((passes+1)); else
  echo "FAIL: estimate runs must not use FFTW wisdom: $out"; fails=$((fails+1)); fi
# the work table: GFLOP per method, and the JSON's "work" entries
out="$("$recon" --count 2 --restarts 1 --config "$tmp/quick.json" --methods hio,dpr --quiet --peak-gflops 100 --json "$tmp/work.json" 2>&1)"
if grep -q "GFLOP/s" <<<"$out" && grep -q '"products_gflop"' "$tmp/work.json"; then passes=$((passes+1)); else
  echo "FAIL: no work table or JSON work entry: $out"; fails=$((fails+1)); fi
# SIGINT: the methods that finished are written, the rest named, exit status 130
"$recon" --count 64 --restarts 4 --methods hio,prilo --quiet --peak-gflops 100 --json "$tmp/int.json" >"$tmp/int.txt" 2>&1 &
pid=$!
sleep 4; kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 130 ] && grep -q "interrupted: the output holds" "$tmp/int.txt" && grep -q '"not_finished"' "$tmp/int.json"; then
  passes=$((passes+1)); else echo "FAIL: SIGINT (rc=$rc): $(cat "$tmp/int.txt")"; fails=$((fails+1)); fi
# training: the output path is checked before any work; a resumed run equals an uninterrupted one
expect_fail "--output $tmp/no-such-dir/v.prw: the folder $tmp/no-such-dir does not exist" "$train" --epochs 1 \
  --output "$tmp/no-such-dir/v.prw"
targs=(--train-limit 200 --batch-size 100 --threads 1)
"$train" "${targs[@]}" --epochs 2 -o "$tmp/full.prw" >/dev/null 2>&1
"$train" "${targs[@]}" --epochs 1 -o "$tmp/part.prw" >/dev/null 2>&1
"$train" "${targs[@]}" --epochs 2 -o "$tmp/part.prw" --resume >/dev/null 2>&1
expect_ok cmp "$tmp/full.prw" "$tmp/part.prw"
expect_fail "no checkpoint to resume from" "$train" "${targs[@]}" --epochs 1 -o "$tmp/never.prw" --resume
# resuming with other images (of the same count) or another seed is refused, naming the difference
expect_fail "the checkpoint was written for other training images" "$train" "${targs[@]}" --dataset fashion-mnist \
  --epochs 3 -o "$tmp/part.prw" --resume
expect_fail "the checkpoint was written with seed 1, not 5" "$train" "${targs[@]}" --seed 5 --epochs 3 \
  -o "$tmp/part.prw" --resume
# the convolutional VAE: the same checkpoints and resume; --evaluate reads the architecture from the file
"$train" --arch conv "${targs[@]}" --epochs 2 -o "$tmp/cfull.prw" >/dev/null 2>&1
"$train" --arch conv "${targs[@]}" --epochs 1 -o "$tmp/cpart.prw" >/dev/null 2>&1
"$train" --arch conv "${targs[@]}" --epochs 2 -o "$tmp/cpart.prw" --resume >/dev/null 2>&1
expect_ok cmp "$tmp/cfull.prw" "$tmp/cpart.prw"
expect_ok "$train" --evaluate "$tmp/cfull.prw"
expect_fail "is not a VAE training checkpoint" "$train" "${targs[@]}" --epochs 2 -o "$tmp/cpart.prw" --resume
# the style VAE (z0 fed into every decoder layer): resume equals an uninterrupted run, --evaluate
# recognises "vae-style" and repeats the training's final test loss, another checkpoint is refused
"$train" --arch style "${targs[@]}" --epochs 2 -o "$tmp/sfull.prw" >"$tmp/sfull.txt" 2>&1
"$train" --arch style "${targs[@]}" --epochs 1 -o "$tmp/spart.prw" >/dev/null 2>&1
"$train" --arch style "${targs[@]}" --epochs 2 -o "$tmp/spart.prw" --resume >/dev/null 2>&1
expect_ok cmp "$tmp/sfull.prw" "$tmp/spart.prw"
sloss="$(sed -n 's/.*final test loss \([0-9.]*\).*/\1/p' "$tmp/sfull.txt")"
if [ -n "$sloss" ] && "$train" --evaluate "$tmp/sfull.prw" 2>&1 | grep -qF "negative ELBO (one sample, noise seed 3) $sloss"; then
  passes=$((passes+1)); else echo "FAIL: --evaluate of a style VAE does not repeat '$sloss'"; fails=$((fails+1)); fi
expect_fail "is not a style VAE training checkpoint" "$train" --arch style "${targs[@]}" --epochs 2 -o "$tmp/cpart.prw" \
  --resume
expect_fail "--arch" "$train" --arch resnet --epochs 1
# SIGINT during training: exit 130, the last finished epoch's checkpoint named
"$train" --train-limit 2000 --epochs 200 --threads 1 -o "$tmp/int.prw" >"$tmp/tint.txt" 2>&1 &
pid=$!
sleep 4; kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 130 ] && grep -q "continue with --resume" "$tmp/tint.txt"; then passes=$((passes+1)); else
  echo "FAIL: SIGINT in training (rc=$rc): $(tail -3 "$tmp/tint.txt")"; fails=$((fails+1)); fi
# the learned initialisation: prilo-train-li checks its output first, a tiny run, the -li methods
if [ -n "$train_li" ]; then
  expect_fail "--output $tmp/no-such-dir/li.prw: the folder $tmp/no-such-dir does not exist" "$train_li" --epochs 1 \
    --output "$tmp/no-such-dir/li.prw"
  expect_fail "--validation 500: needs fewer than the 300 training images" "$train_li" --train-limit 300 \
    --validation 500 --epochs 1 --output "$tmp/li.prw"
  expect_ok "$train_li" --train-limit 300 --validation 100 --epochs 1 --batch-size 50 --threads 1 --output "$tmp/li.prw"
  expect_ok test -s "$tmp/li.prw"
  # the same command makes the same file (FFT plans that do not depend on timing; with the critic)
  expect_ok "$train_li" --train-limit 300 --validation 100 --epochs 1 --batch-size 50 --threads 1 --output "$tmp/li2.prw"
  expect_ok cmp "$tmp/li.prw" "$tmp/li2.prw"
  expect_ok "$recon" --count 2 --restarts 2 --config "$tmp/quick.json" --methods dpr-li,prilo-li,prilo-chain-li \
    --li-weights "$tmp/li.prw" --quiet --json "$tmp/li.json"
  expect_fail "prilo-train-li --dataset mnist --operator gaussian-real --measurements 200 --seed 3" "$recon" \
    --operator gaussian-real --seed 3 --methods dpr-li --li-weights "$tmp/no-such-li.prw" --count 1 --quiet
  expect_fail "trained for the fourier operator, not gaussian-real" "$recon" --operator gaussian-real \
    --methods dpr-li --li-weights "$tmp/li.prw" --count 1 --quiet
  # LI through the conv VAE's decoder; an encoder of another generator is refused by name
  expect_fail "the LI encoder: trained through the vae-mlp decoder, the generator is a vae-conv" "$recon" \
    --generator conv --methods dpr-li --li-weights "$tmp/li.prw" --count 1 --quiet
  expect_fail "--generator style: the weights" "$train_li" --generator style --weights "$repo/models/vae-mnist.prw" \
    --epochs 1 --output "$tmp/li-style.prw"
  expect_ok "$train_li" --generator conv --train-limit 300 --validation 100 --epochs 1 --batch-size 50 --threads 1 \
    --output "$tmp/li-conv.prw"
  expect_ok "$recon" --generator conv --count 2 --restarts 2 --config "$tmp/quick.json" --methods dpr-li \
    --li-weights "$tmp/li-conv.prw" --quiet
  "$train_li" --train-limit 3000 --validation 100 --epochs 500 --threads 1 -o "$tmp/li-int.prw" >"$tmp/lint.txt" 2>&1 &
  pid=$!
  sleep 4; kill -INT $pid; wait $pid; rc=$?
  if [ $rc -eq 130 ] && grep -q "holds epoch" "$tmp/lint.txt"; then passes=$((passes+1)); else
    echo "FAIL: SIGINT in prilo-train-li (rc=$rc): $(tail -3 "$tmp/lint.txt")"; fails=$((fails+1)); fi
fi
# the learned placement scorer of -resolve: its trainer checks its output first, a tiny run, the
# config's scorer_weight reads it, a missing file names the command that trains it
if [ -n "$train_placement" ]; then
  expect_fail "--output $tmp/no-such-dir/p.prw: the folder $tmp/no-such-dir does not exist" "$train_placement" \
    --dataset mnist --generator mlp --epochs 1 --output "$tmp/no-such-dir/p.prw"
  expect_fail "--hidden: Value 100000 not in range" "$train_placement" --dataset mnist --hidden 100000 \
    --output "$tmp/placement-x.prw"
  expect_fail "--method requires --reconstructed" "$train_placement" --dataset mnist --method prilo-mii \
    --output "$tmp/placement-x.prw"
  expect_fail "--restarts: applies to --reconstructed's runs, and --reconstructed is 0" "$train_placement" \
    --dataset mnist --reconstructed 0 --restarts 2 --output "$tmp/placement-x.prw"
  expect_fail "radius 14 is too wide for 28x28 images" "$train_placement" --dataset mnist --generator mlp --radius 14 \
    --train-limit 300 --validation 100 --epochs 1 --output "$tmp/placement.prw"
  expect_ok "$train_placement" --dataset mnist --generator mlp --train-limit 300 --validation 100 --validation-top1 20 \
    --epochs 1 --threads 1 --output "$tmp/placement.prw"
  expect_fail "training diverged in epoch 1" "$train_placement" --dataset mnist --generator mlp --train-limit 300 \
    --validation 100 --validation-top1 20 --epochs 1 --threads 1 --lr 1e30 --output "$tmp/placement-nan.prw"
  # positives from the library's own reconstructions (a quick config: 2 images, 1 restart)
  expect_ok "$train_placement" --dataset mnist --generator mlp --train-limit 300 --validation 100 --validation-top1 20 \
    --epochs 1 --threads 1 --reconstructed 2 --method prilo-mii --restarts 1 --config "$tmp/quick.json" \
    --output "$tmp/placement-rec.prw"
  # the same command makes the same file (FFT plans that do not depend on timing)
  expect_ok "$train_placement" --dataset mnist --generator mlp --train-limit 300 --validation 100 --validation-top1 20 \
    --epochs 1 --threads 1 --reconstructed 2 --method prilo-mii --restarts 1 --config "$tmp/quick.json" \
    --output "$tmp/placement-rec2.prw"
  expect_ok cmp "$tmp/placement-rec.prw" "$tmp/placement-rec2.prw"
  expect_fail "--reconstructed 250: more than the 200 training images" "$train_placement" --dataset mnist \
    --generator mlp --train-limit 300 --validation 100 --reconstructed 250 --output "$tmp/placement-rec.prw"
  expect_fail "unknown method \"prilo-foo\"" "$train_placement" --dataset mnist --generator mlp --train-limit 300 \
    --validation 100 --reconstructed 2 --method prilo-foo --output "$tmp/placement-rec.prw"
  python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['resolve']={'scorer_weight': 1}; \
json.dump(c, open(sys.argv[2], 'w'))" "$tmp/quick.json" "$tmp/scorer.json"
  expect_ok "$recon" --count 2 --restarts 1 --config "$tmp/scorer.json" --methods prilo-mii-resolve \
    --placement-weights "$tmp/placement.prw" --quiet
  expect_fail "train it with: prilo-train-placement --dataset mnist --generator mlp" "$recon" --count 1 \
    --config "$tmp/scorer.json" --methods prilo-mii-resolve --placement-weights "$tmp/no-such-placement.prw" --quiet
  expect_fail "is not a placement scorer" "$recon" --count 1 --config "$tmp/scorer.json" --methods prilo-mii-resolve \
    --placement-weights "$repo/models/vae-mnist.prw" --quiet
fi
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]

#!/usr/bin/env python3
"""Hyperparameter search for the settings the paper does not give (learning rates, the steps
and radii of B and C), on TRAINING images only (--split train). Prints one line per setting
with the mean plain PSNR and magnitude error; docs/tuning.md records what was chosen.

usage: scripts/tune.py [--dataset mnist] [--count 64] [--first 50000] [--binary build/examples/prilo-reconstruct]
"""
import argparse, copy, itertools, json, os, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--dataset", default="mnist")
ap.add_argument("--count", type=int, default=64)
ap.add_argument("--first", type=int, default=50000)
ap.add_argument("--binary", default="build/examples/prilo-reconstruct")
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
base = json.load(open(f"configs/{args.dataset}.json"))

def run(cfg, methods):
    with tempfile.TemporaryDirectory() as d:
        c, j = os.path.join(d, "c.json"), os.path.join(d, "r.json")
        json.dump(cfg, open(c, "w"))
        subprocess.run([args.binary, "--dataset", args.dataset, "--split", "train", "--first", str(args.first),
                        "--count", str(args.count), "--restarts", "1", "--threads", str(args.threads), "--quiet",
                        "--methods", methods, "--config", c, "--json", j], check=True, stdout=subprocess.DEVNULL)
        return json.load(open(j))["methods"]

def report(method, cfg, label):
    m = run(cfg, method)[method]
    print(f"{method:<8} {label} PSNR {m['psnr']['mean']:6.2f}  mag.err {m['magnitude_error']['mean']:.5f}", flush=True)

print(f"# {args.dataset}: train images {args.first}..{args.first + args.count - 1}, 1 restart")
if os.environ.get("PRILO_TUNE_STAGE") == "2":
    # second round: the back-projection (B) and refinement (C) phases
    for b_lr, b_steps, c_steps in itertools.product([0.01, 0.03, 0.1], [100, 300], [100, 300]):
        cfg = copy.deepcopy(base)
        for st in cfg["prilo"]["stages"]:
            st["back"]["learning_rate"] = b_lr; st["back"]["steps"] = b_steps; st["refine"]["steps"] = c_steps
        report("prilo-mii", cfg, f"B.lr={b_lr:<5} B.steps={b_steps:<4} C.steps={c_steps:<4}")
    sys.exit(0)
for lr in [0.03, 0.1, 0.3]:
    cfg = copy.deepcopy(base); cfg["dpr"]["learning_rate"] = lr
    report("dpr-mii", cfg, f"lr={lr:<5}")
for a_lr, c_r, c_lr in itertools.product([0.02, 0.05, 0.1], [10, 30], [0.02, 0.05]):
    cfg = copy.deepcopy(base)
    for st in cfg["prilo"]["stages"]:
        st["forward"]["learning_rate"] = a_lr; st["refine"]["radius"] = c_r; st["refine"]["learning_rate"] = c_lr
    report("prilo-mii", cfg, f"A.lr={a_lr:<5} C.radius={c_r:<3} C.lr={c_lr:<5}")

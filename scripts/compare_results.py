#!/usr/bin/env python3
"""Compares two folders of prilo-reconstruct reports (JSON written by --json), method by method.

    python3 scripts/compare_results.py BEFORE_DIR AFTER_DIR [--pattern 'table1-*.json'] [--metric psnr]

For every report present in both folders (matched by file name) and every method present in
both, prints the mean of the metric before and after, their difference, and that difference as
a fraction of the before run's 95 % interval half-width; then the largest such fraction. Two
runs of the same experiment that differ only in rounding (another FFT engine, FFTW's planner
choices) should move every mean by a small fraction of its interval. Exit status 1 when no
report or method is common to both folders (a wrong folder, not a result)."""
import argparse
import glob
import json
import math
import os
import sys


def methods(path):
    with open(path) as f:
        report = json.load(f)
    if "methods" not in report:
        sys.exit(f"compare_results: {path} has no 'methods' (not a prilo-reconstruct --json report)")
    return report["methods"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--pattern", default="*.json", help="file names to compare (glob, default *.json)")
    ap.add_argument("--metric", default="psnr", help="psnr (default), ssim or magnitude_error")
    a = ap.parse_args()
    for d in (a.before, a.after):
        if not os.path.isdir(d):
            sys.exit(f"compare_results: {d} is not a folder")
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(a.after, a.pattern)))
    names = [n for n in names if os.path.isfile(os.path.join(a.before, n))]
    worst, rows = None, []
    for n in names:
        b, c = methods(os.path.join(a.before, n)), methods(os.path.join(a.after, n))
        for m in b:
            if m not in c or a.metric not in b[m] or a.metric not in c[m]:
                continue
            mb, ci = b[m][a.metric]["mean"], b[m][a.metric]["ci95"]
            mc = c[m][a.metric]["mean"]
            frac = abs(mc - mb) / ci if ci > 0 else (0.0 if mc == mb else math.inf)
            if worst is None or frac > worst[0]:
                worst = (frac, n, m)
            rows.append(f"| {n} | {m} | {mb:.4g} ± {ci:.3g} | {mc:.4g} | {mc - mb:+.3g} | {frac:.3f} |")
    if not rows:
        sys.exit(f"compare_results: no report matching {a.pattern} with a common method in {a.before} and {a.after}")
    print(f"| report | method | {a.metric} before (± 95 %) | after | after − before | / interval |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nlargest move: {worst[0]:.3f} of its interval ({worst[1]}, {worst[2]}); {len(rows)} methods compared")


if __name__ == "__main__":
    main()

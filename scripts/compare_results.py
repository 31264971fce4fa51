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
    """The report's methods, or None (with a note) when the file is not a prilo-reconstruct report."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare_results: {path}: {e}")
    if not isinstance(report, dict) or not isinstance(report.get("methods"), dict):
        print(f"compare_results: skipping {path}: no 'methods' (not a prilo-reconstruct --json report)", file=sys.stderr)
        return None
    return report["methods"]


def summary(method, metric):
    """(mean, ci95) of a method's metric, or None where the report has none or a non-finite one."""
    m = method.get(metric)
    if not isinstance(m, dict):
        return None
    mean, ci = m.get("mean"), m.get("ci95")
    if not isinstance(mean, (int, float)) or not isinstance(ci, (int, float)):
        return None  # null: nlohmann writes a NaN or an infinity as null
    return float(mean), float(ci)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--pattern", default="*.json", help="file names to compare (glob, default *.json)")
    ap.add_argument("--metric", default="psnr", choices=["psnr", "ssim", "magnitude_error"])
    a = ap.parse_args()
    for d in (a.before, a.after):
        if not os.path.isdir(d):
            sys.exit(f"compare_results: {d} is not a folder")
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(a.after, a.pattern)))
    names = [n for n in names if os.path.isfile(os.path.join(a.before, n))]
    worst, rows, unmatched = None, [], []
    for n in names:
        b, c = methods(os.path.join(a.before, n)), methods(os.path.join(a.after, n))
        if b is None or c is None:
            continue
        unmatched += [f"{n}: {m}" for m in sorted(set(b) ^ set(c))]
        for m in b:
            if m not in c:
                continue
            sb, sc = summary(b[m], a.metric), summary(c[m], a.metric)
            if sb is None or sc is None:
                unmatched.append(f"{n}: {m} (no finite {a.metric} on one side)")
                continue
            (mb, ci), (mc, _) = sb, sc
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
    if unmatched:
        print("in one folder only, or not comparable: " + "; ".join(unmatched))


if __name__ == "__main__":
    main()

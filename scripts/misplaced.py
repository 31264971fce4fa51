#!/usr/bin/env python3
"""Analysis (reads the ground truth through the report's aligned PSNR): how much of a Fourier
report's plain PSNR its outputs' placement costs. An output counts as misplaced when its
aligned PSNR (the best over the 2·h·w circular shifts and point reflections, against the
truth) exceeds its plain PSNR by more than --threshold dB. Prints, per method: the misplaced
count, their mean plain and aligned PSNR, the mean of the placed ones, and the mean PSNR the
method would have with its misplaced outputs placed as the truth.

usage: scripts/misplaced.py REPORT.json [--threshold 0.5] [--methods a,b]
(REPORT: a prilo-reconstruct --json file, e.g. docs/results/table1-fashion-mnist-style-avg.json)
"""
import argparse, json, statistics, sys

ap = argparse.ArgumentParser()
ap.add_argument("report")
ap.add_argument("--threshold", type=float, default=0.5)
ap.add_argument("--methods", help="comma-separated methods (default: all with aligned values)")
args = ap.parse_args()

rep = json.load(open(args.report))
if rep.get("operator") != "fourier":
    sys.exit(f"{args.report}: operator {rep.get('operator')!r}: placement is a Fourier ambiguity only")
names = args.methods.split(",") if args.methods else list(rep["methods"])
print(f"# {args.report}: {rep['dataset']} {rep['split']} images {rep['first']}..{rep['first'] + rep['count'] - 1}, "
      f"misplaced: aligned PSNR > plain + {args.threshold} dB (analysis)")
for name in names:
    if name not in rep["methods"]:
        sys.exit(f"{args.report}: no method {name!r} (it has: {', '.join(rep['methods'])})")
    m = rep["methods"][name]
    plain = m["psnr_per_image"]
    aligned = m.get("analysis_aligned", {}).get("psnr_per_image")
    if aligned is None or len(aligned) != len(plain):
        print(f"{name:<32} (no aligned per-image values)")
        continue
    mis = [i for i, (p, a) in enumerate(zip(plain, aligned)) if a - p > args.threshold]
    placed = [plain[i] for i in range(len(plain)) if i not in set(mis)]
    fixed = (sum(plain) - sum(plain[i] for i in mis) + sum(aligned[i] for i in mis)) / len(plain)
    mean = lambda v: statistics.mean(v) if v else float("nan")
    print(f"{name:<32} PSNR {mean(plain):6.2f}  misplaced {len(mis):5d} of {len(plain)}: plain "
          f"{mean([plain[i] for i in mis]):6.2f} aligned {mean([aligned[i] for i in mis]):6.2f}; placed ones "
          f"{mean(placed):6.2f}; with the misplaced placed {fixed:6.2f}")

#!/usr/bin/env python3
"""The whole grid of Table 1 -- DPR and PRILO (the paper's reading and the chained one, and their
-resolve) from random, MII and LI starts, with the MLP, conv and style VAEs -- gathered from
scripts/reproduce_table1.sh's reports (docs/results/table1-<dataset>*.json) of one image count.

  python3 scripts/grid_table.py [--count 1024] [--dir docs/results]

Plain mean PSNR / SSIM first (no ground truth used), then the aligned PSNR (analysis). A cell
is "–" where no report of that count holds the method for that generator (the conv and style
VAEs run PRILO in its chained reading only). The generator of a report is read from its
"generator" entry, or for older reports from its file name (-conv…, -style…, grid-conv, …).
"""
import argparse
import glob
import json
import os
import re
import sys

ROWS = ["dpr", "dpr-mii", "dpr-li", "prilo", "prilo-mii", "prilo-li", "prilo-chain", "prilo-chain-mii",
        "prilo-chain-li", "prilo-mii-resolve", "prilo-chain-mii-resolve", "prilo-chain-li-resolve"]
GENERATORS = ["mlp", "conv", "style"]


def generator_of(path, report):
    if "generator" in report:
        return report["generator"]
    m = re.search(r"table1-(?:fashion-mnist|mnist)-(?:grid-)?(conv|style)", os.path.basename(path))
    return m.group(1) if m else "mlp"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1024)
    ap.add_argument("--dir", default="docs/results")
    args = ap.parse_args()
    for ds in ["mnist", "fashion-mnist"]:
        cells, sources = {}, set()
        for path in sorted(glob.glob(os.path.join(args.dir, f"table1-{ds}*.json"))):
            with open(path) as f:
                r = json.load(f)
            if r.get("dataset") != ds or r.get("count") != args.count or r.get("operator") != "fourier":
                continue
            gen = generator_of(path, r)
            for name, m in r["methods"].items():
                if name in ROWS and (gen, name) not in cells:
                    cells[(gen, name)] = m
                    sources.add(os.path.basename(path))
        if not cells:
            print(f"grid_table: no {ds} reports of {args.count} images in {args.dir}", file=sys.stderr)
            continue
        print(f"\n**{ds}**, Fourier, {args.count} test images, 4 restarts (from {', '.join(sorted(sources))})\n")
        print("| method | " + " | ".join(f"{g}: PSNR / SSIM" for g in GENERATORS) + " | " +
              " | ".join(f"{g}: aligned PSNR (analysis)" for g in GENERATORS) + " |")
        print("|---" * (1 + 2 * len(GENERATORS)) + "|")
        for row in ROWS:
            if not any((g, row) in cells for g in GENERATORS):
                continue
            plain, aligned = [], []
            for g in GENERATORS:
                m = cells.get((g, row))
                plain.append(f"{m['psnr']['mean']:.2f} / {m['ssim']['mean']:.4f}" if m else "–")
                al = m.get("analysis_aligned") if m else None
                aligned.append(f"{al['psnr']['mean']:.2f}" if al else "–")
            print(f"| {row} | " + " | ".join(plain) + " | " + " | ".join(aligned) + " |")


if __name__ == "__main__":
    main()

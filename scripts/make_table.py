#!/usr/bin/env python3
"""Markdown table from prilo-reconstruct --json reports: plain metrics first, then the
ground-truth-aligned figures (analysis only)."""
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    extra = f", m = {r['measurements']}" if "measurements" in r else ""
    print(f"\n**{r['dataset']}**, {r['operator']}{extra}, {r['split']} images {r['first']}..{r['first'] + r['count'] - 1}, "
          f"{r['restarts']} restarts, seed {r['seed']} ({path})\n")
    print("| method | PSNR (dB) | SSIM | median PSNR | PSNR ≥ 30 dB | magnitude error | seconds | aligned PSNR (analysis) | aligned SSIM (analysis) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in r["methods"].items():
        al = m.get("analysis_aligned")
        a1 = f"{al['psnr']['mean']:.2f} ± {al['psnr']['ci95']:.2f}" if al else "–"
        a2 = f"{al['ssim']['mean']:.4f} ± {al['ssim']['ci95']:.4f}" if al else "–"
        print(f"| {name} | {m['psnr']['mean']:.2f} ± {m['psnr']['ci95']:.2f} | {m['ssim']['mean']:.4f} ± {m['ssim']['ci95']:.4f} "
              f"| {m['psnr']['median']:.2f} | {100 * m['fraction_psnr_ge_30']:.1f} % | {m['magnitude_error']['mean']:.3g} "
              f"| {m['seconds']:.0f} | {a1} | {a2} |")

#!/usr/bin/env python3
"""Tables (Markdown, stdout) and plots (SVG and PNG, matplotlib) of the paper's figures from
prilo-reconstruct's JSON reports:

  plot_results.py figure3 FOLDER OUT_STEM   # mean PSNR against m (figure3-<kind>-m<M>.json)
  plot_results.py figure4 JSON... OUT_STEM  # best of the first r restarts, r = 1..R (--per-restart)
  plot_results.py figure7 TRACE OUT_STEM    # PSNR and magnitude error against the step (--trace)
  plot_results.py table3 JSON...            # ablation table (one report per --ablation)

Plain PSNR is the result; the trace's PSNR (Figure 7) uses the ground truth at every step
and is labelled analysis.
"""
import glob, json, math, os, re, sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The paper's Table 3 (StyleGAN on CelebA, Fourier; PSNR dB): its only ablation table.
PAPER_TABLE3 = ("paper, Table 3 (StyleGAN, CelebA, Fourier; no MNIST ablation is given): PRILO-MII full 21.42, "
                "init only 15.06, A only 20.17, A+B 19.94, no balls 19.85; PRILO-LI full 23.34, init only 16.91, "
                "A only 23.01, A+B 22.91, no balls 22.82")


def save(fig, stem):
    fig.tight_layout()
    for ext in ("svg", "png"):
        fig.savefig(f"{stem}.{ext}", dpi=120)
    print(f"\nwrote {stem}.svg and {stem}.png")


def ci95(v):
    n = len(v)
    if n < 2:
        return 0.0
    mu = sum(v) / n
    return 1.96 * math.sqrt(sum((x - mu) ** 2 for x in v) / (n - 1)) / math.sqrt(n)


def cap(p):
    return min(p, 100.0)


def figure3(folder, stem):
    rows = {}
    meta = None
    for p in sorted(glob.glob(os.path.join(folder, "figure3-*-m*.json"))):
        kind, m = re.search(r"figure3-(\w+)-m(\d+)\.json", p).groups()
        r = json.load(open(p))
        meta = (r["count"], r["restarts"])
        for name, v in r["methods"].items():
            rows.setdefault((kind, name), {})[int(m)] = (v["psnr"]["mean"], v["psnr"]["ci95"], v["ssim"]["mean"],
                                                        v["psnr"]["median"], v["fraction_psnr_ge_30"])
    if not rows:
        sys.exit(f"plot_results.py: no figure3-*-m*.json in {folder}")
    ms = sorted({m for d in rows.values() for m in d})
    print(f"MNIST test images 0..{meta[0] - 1}, {meta[1]} restarts; mean plain PSNR (dB) ± 95 % CI, SSIM in brackets\n")
    print("| measurements | method | " + " | ".join(f"m = {m}" for m in ms) + " |")
    print("|---|---|" + "---|" * len(ms))
    for (kind, name), d in sorted(rows.items()):
        cells = [f"{d[m][0]:.2f} ± {d[m][1]:.2f} ({d[m][2]:.3f})" if m in d else "–" for m in ms]
        print(f"| gaussian-{kind} | {name} | " + " | ".join(cells) + " |")
    kinds = sorted({k for k, _ in rows})
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.2), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for (k, name), d in sorted(rows.items()):
            if k != kind:
                continue
            xs = [m for m in ms if m in d]
            mu = [d[m][0] for m in xs]
            ci = [d[m][1] for m in xs]
            ax.errorbar(xs, mu, yerr=ci, marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xticks(ms)
        ax.set_xticklabels([str(m) for m in ms])
        ax.set_xlabel("measurements m")
        ax.set_title(f"MNIST, {kind} Gaussian A")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean plain PSNR (dB)")
    axes[0][-1].legend(fontsize=8)
    save(fig, stem)


def figure4(paths, stem):
    fig, ax = plt.subplots(figsize=(6, 4.2))
    print("| method | " + " | ".join(f"best of {r}" for r in range(1, 6)) + " |")
    print("|---|" + "---|" * 5)
    for p in paths:
        rep = json.load(open(p))
        for name, m in rep["methods"].items():
            pr = m.get("per_restart")
            if not pr:
                continue
            errs, psnrs = pr["magnitude_error"], pr["psnr"]
            R = len(errs[0])
            mu, ci = [], []
            for r in range(1, R + 1):
                # the restart of lowest magnitude error among the first r (no ground truth used)
                v = [cap(ps[min(range(r), key=lambda q: e[q])]) for e, ps in zip(errs, psnrs)]
                mu.append(sum(v) / len(v))
                ci.append(ci95(v))
            ax.errorbar(range(1, R + 1), mu, yerr=ci, marker="o", capsize=3, label=name)
            print(f"| {name} ({rep['dataset']}, {rep['count']} images) | " +
                  " | ".join(f"{a:.2f} ± {b:.2f}" for a, b in zip(mu, ci)) + " |")
    ax.set_xticks(range(1, 6))
    ax.set_xlabel("restarts (lowest magnitude error kept)")
    ax.set_ylabel("mean plain PSNR (dB)")
    ax.set_title("Figure 4: random start vs MII")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, stem)


def figure7(path, stem):
    t = json.load(open(path))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.2))
    print("| method | phases | final mean magnitude error | final mean PSNR (analysis) |")
    print("|---|---|---|---|")
    for name, pts in t["methods"].items():
        if not pts:
            continue
        # x counts observations (one every 10 steps of each phase, B phases included, which do
        # not advance the solver's own step count)
        xs = [10 * (i + 1) for i in range(len(pts))]
        pts = [p if p["psnr"] is not None else dict(p, psnr=float("nan")) for p in pts]
        a1.plot(xs, [p["psnr"] for p in pts], label=name, lw=1)
        a2.plot(xs, [p["magnitude_error"] for p in pts], label=name, lw=1)
        kinds = "".join(sorted({p["kind"] for p in pts}))
        print(f"| {name} | {kinds} | {pts[-1]['magnitude_error']:.3g} | {pts[-1]['psnr']:.2f} |")
    a1.set_ylabel("mean PSNR (dB, analysis: uses the truth)")
    a2.set_ylabel("mean magnitude error")
    a2.set_yscale("log")
    for a in (a1, a2):
        a.set_xlabel("optimisation step (all phases, B included)")
        a.grid(alpha=0.3)
    a1.legend(fontsize=8)
    a1.set_title("Figure 7: PSNR through the optimisation")
    a2.set_title("magnitude error through the optimisation")
    save(fig, stem)


def table3(paths):
    print("| data set | reading | ablation | PSNR (dB) | SSIM | median PSNR | ≥ 30 dB | magnitude error | seconds "
          "| aligned PSNR (analysis) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        r = json.load(open(p))
        for name, m in r["methods"].items():
            reading = "chained" if "chain" in name else "A/B/C"
            print(f"| {r['dataset']} | {reading} ({name}) | {r.get('ablation', 'full')} | {m['psnr']['mean']:.2f} ± "
                  f"{m['psnr']['ci95']:.2f} | {m['ssim']['mean']:.4f} | {m['psnr']['median']:.2f} | "
                  f"{100 * m['fraction_psnr_ge_30']:.1f} % | {m['magnitude_error']['mean']:.3g} | {m['seconds']:.0f} | "
                  f"{m['analysis_aligned']['psnr']['mean']:.2f} |")
    print(f"\n({PAPER_TABLE3})")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "figure3":
        figure3(rest[0], rest[1])
    elif cmd == "figure4":
        figure4(rest[:-1], rest[-1])
    elif cmd == "figure7":
        figure7(rest[0], rest[1])
    elif cmd == "table3":
        table3(rest)
    else:
        sys.exit(__doc__)

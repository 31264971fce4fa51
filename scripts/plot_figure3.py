#!/usr/bin/env python3
"""Table (Markdown, stdout) and plot (SVG) of mean PSNR against m for Figure 3's runs."""
import glob, json, os, re, sys

folder, svg_path = sys.argv[1], sys.argv[2]
rows = {}
for p in sorted(glob.glob(os.path.join(folder, "figure3-*-m*.json"))):
    kind, m = re.search(r"figure3-(\w+)-m(\d+)\.json", p).groups()
    r = json.load(open(p))
    for name, v in r["methods"].items():
        rows.setdefault((kind, name), {})[int(m)] = (v["psnr"]["mean"], v["psnr"]["ci95"], v["ssim"]["mean"])
    count, restarts = r["count"], r["restarts"]
ms = sorted({m for d in rows.values() for m in d})
print(f"MNIST test images 0..{count - 1}, {restarts} restarts; mean PSNR (dB) ± 95 % CI, SSIM in brackets\n")
print("| measurements | method | " + " | ".join(f"m = {m}" for m in ms) + " |")
print("|---|---|" + "---|" * len(ms))
for (kind, name), d in sorted(rows.items()):
    cells = [f"{d[m][0]:.2f} ± {d[m][1]:.2f} ({d[m][2]:.3f})" if m in d else "–" for m in ms]
    print(f"| gaussian-{kind} | {name} | " + " | ".join(cells) + " |")

W, H, L, R, T, B = 720, 420, 60, 170, 20, 50
ymax = max(v[0] for d in rows.values() for v in d.values()) * 1.05
ymin = 0
def px(m): return L + (ms.index(m)) / max(1, len(ms) - 1) * (W - L - R)
def py(v): return T + (1 - (v - ymin) / (ymax - ymin)) * (H - T - B)
colors = {"dpr": "#1f77b4", "dpr-mii": "#2ca02c", "prilo-mii": "#d62728"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>']
for m in ms:
    out.append(f'<text x="{px(m)}" y="{H-B+18}" text-anchor="middle">{m}</text>')
for v in range(0, int(ymax) + 1, 5):
    out.append(f'<text x="{L-8}" y="{py(v)+4}" text-anchor="end">{v}</text>'
               f'<line x1="{L}" y1="{py(v)}" x2="{W-R}" y2="{py(v)}" stroke="#ddd"/>')
out.append(f'<text x="{(L+W-R)/2}" y="{H-10}" text-anchor="middle">measurements m</text>')
out.append(f'<text x="15" y="{(T+H-B)/2}" transform="rotate(-90 15 {(T+H-B)/2})" text-anchor="middle">PSNR (dB)</text>')
k = 0
for (kind, name), d in sorted(rows.items()):
    pts = " ".join(f"{px(m)},{py(d[m][0])}" for m in ms if m in d)
    dash = "" if kind == "complex" else ' stroke-dasharray="5,4"'
    out.append(f'<polyline points="{pts}" fill="none" stroke="{colors.get(name, "gray")}" stroke-width="2"{dash}/>')
    out.append(f'<line x1="{W-R+10}" y1="{T+10+k*18}" x2="{W-R+35}" y2="{T+10+k*18}" stroke="{colors.get(name, "gray")}" stroke-width="2"{dash}/>'
               f'<text x="{W-R+40}" y="{T+14+k*18}">{name} ({kind})</text>')
    k += 1
out.append("</svg>")
open(svg_path, "w").write("\n".join(out))

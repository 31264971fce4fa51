#!/usr/bin/python3
"""prilo (C++/Eigen/FFTW) against PyTorch on the CPU: the same work, the same thread count.
With --device cuda, the end-to-end PRILO-MII on the GPU instead (prilo-reconstruct-cuda --backend cuda
against the same PyTorch code on the same GPU).

Run with Debian's python3-torch (apt-get install -y python3-torch), i.e. /usr/bin/python3:

    /usr/bin/python3 benchmarks/compare_pytorch.py --build-dir build --threads 1,2

Items (batch, shapes and steps as the prilo benchmarks and the MNIST config):
  decoder forward / forward+VJP(input) / forward+VJP(input, weights), 100->500->500->784, batch 1024
  the same for the conv VAE's decoder (dense 100->64x7x7, two ConvTranspose2d k4 s2 p1), batch 256
  DPR step at batch 1, 16, 1024: decoder forward, |F x| loss (torch.fft.fft2, norm="ortho"),
      autograd backward to z0, Welling-Teh noise on the gradient, torch.optim.Adam step,
      l1-ball projection (sort-based Duchi) of radius 100 around 0
  PRILO step A on z2 at batch 1024 (ball r=100 around the start, lr 0.05)
  back-projection step onto z2 at batch 1024 (||G_0^2(z0) - target||^2, ball r=100 around 0)
  MII scoring: decoder forward of 5000 latents (chunks of 1024) + score matrix against 64 images
  PRILO-MII end to end on 64 MNIST test images, 1 restart, configs/mnist.json: prilo side is
      prilo-reconstruct --methods prilo-mii --count 64 --restarts 1 --quiet --threads T --json ...
      (methods.prilo-mii.seconds); the PyTorch side runs the same phases with the same steps,
      batch and candidates (p = 5000).

prilo's per-item times come from the benchmark binaries bench_mlp, bench_solver and bench_conv (run here with
--benchmark_format=json, or read from files given with --prilo-json). Prints, per item and thread
count, prilo's time, PyTorch's time and the speed-up torch/prilo. For the per-step items the
PyTorch decoder is randomly initialised like nn.Linear (prilo's benchmarks use a random Vae too;
speed does not depend on the weights); the end-to-end item loads the trained decoder from
--weights (models/vae-mnist.prw) on both sides and prints both mean magnitude errors as a check
that the two sides solve the same problem. Times are wall-clock: mean over a loop of at least --min-time seconds after warm-up.

GPU (--device cuda --reconstruct build-cuda/examples/prilo-reconstruct-cuda): only the end-to-end item;
PyTorch runs once on 16 images first (CUDA context, cuBLAS and cuFFT plans), then is timed to a
torch.cuda.synchronize(); prilo's time is its report's methods.prilo-mii.seconds, which likewise
excludes starting the process and the device.
"""
import gzip
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
LATENT, HIDDEN, DATA, SIDE = 100, 500, 784, 28


# ----------------------------------------------------------------------------- helpers
def find_binary(name, given, build_dirs):
    if given:
        p = Path(given)
        if not p.is_file():
            sys.exit(f"compare_pytorch: {given} does not exist")
        return p
    for d in build_dirs:
        for sub in ("benchmarks", "examples", "."):
            p = Path(d) / sub / name
            if p.is_file() and os.access(p, os.X_OK):
                return p
    w = shutil.which(name)
    return Path(w) if w else None


def timeit(fn, min_time, min_iters=3, warmup=2):
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_time and n >= min_iters:
            return el / n


UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def read_gbench(text):
    """name (without the /real_time suffix) -> seconds per iteration (wall)."""
    out = {}
    for b in json.loads(text)["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        name = b["name"].replace("/real_time", "")
        out[name] = b["real_time"] * UNIT[b["time_unit"]]
    return out


def run_gbench(binary, threads, min_time, prefix=""):
    regex = prefix + ".*/t(" + "|".join(str(t) for t in threads) + ")(/|$)"
    cmd = [str(binary), f"--benchmark_filter={regex}", "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(max(threads)))
    print("  running", " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return read_gbench(res.stdout)


def read_idx_images(path, first, count):
    path = Path(path)
    opener = open
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        path, opener = path.with_name(path.name + ".gz"), gzip.open
    with opener(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            sys.exit(f"compare_pytorch: {path} is not an IDX image file")
        f.seek(16 + first * rows * cols)
        buf = f.read(count * rows * cols)
    x = torch.frombuffer(bytearray(buf), dtype=torch.uint8).to(torch.float32) / 255.0
    return x.view(count, rows * cols)


def load_prw_decoder(path, dec):
    """Copies the decoder tensors of a prilo weights file (.prw, format of prilo/io/weights.hpp:
    little-endian header, then per tensor: name, rows, cols, column-major values) into dec.
    Returns False (dec untouched) when the file is missing or not a float32 VAE file."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return False
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, raw, pos)
        pos += struct.calcsize("<" + fmt)
        return v if len(v) > 1 else v[0]

    def string():
        nonlocal pos
        n = take("I")
        s = raw[pos:pos + n].decode()
        pos += n
        return s

    if raw[:8] != b"PRILOWTS":
        return False
    pos = 8
    _version, scalar = take("I"), take("I")
    string()  # architecture tag
    nsizes = take("I")
    pos += 4 * nsizes
    ntensors = take("I")
    pos += 8 + 4  # payload size, CRC32
    if scalar != 1:
        return False
    tensors = {}
    for _ in range(ntensors):
        name = string()
        rows, cols = take("I"), take("I")
        vals = torch.frombuffer(bytearray(raw[pos:pos + 4 * rows * cols]), dtype=torch.float32)
        pos += 4 * rows * cols
        tensors[name] = vals.view(cols, rows).T  # column-major rows x cols
    with torch.no_grad():
        for k in range(3):
            lin = dec[2 * k]
            w, b = tensors.get(f"decoder.{k}.weight"), tensors.get(f"decoder.{k}.bias")
            if w is None or b is None or tuple(w.shape) != tuple(lin.weight.shape):
                return False
            lin.weight.copy_(w)
            lin.bias.copy_(b.reshape(-1))
    return True


# ----------------------------------------------------------------------------- the model
def make_decoder():
    return torch.nn.Sequential(
        torch.nn.Linear(LATENT, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, DATA), torch.nn.Sigmoid())


def make_conv_decoder():
    """The conv VAE's decoder (nn::ConvVae): dense 100 -> 64x7x7, ConvTranspose2d(64, 32, 4, 2, 1),
    ConvTranspose2d(32, 1, 4, 2, 1), ReLU, ReLU, sigmoid."""
    return torch.nn.Sequential(torch.nn.Linear(LATENT, 64 * 7 * 7), torch.nn.ReLU(), torch.nn.Unflatten(1, (64, 7, 7)),
                               torch.nn.ConvTranspose2d(64, 32, 4, 2, 1), torch.nn.ReLU(),
                               torch.nn.ConvTranspose2d(32, 1, 4, 2, 1), torch.nn.Sigmoid(), torch.nn.Flatten())


def part(dec, i, j):
    """G_i^j: modules i..j-1 of prilo's decoder (each = Linear + activation)."""
    return dec[2 * i:2 * j]


def magnitudes(x):
    return torch.fft.fft2(x.view(-1, SIDE, SIDE), norm="ortho").abs()


def project_l1(z, centre, r):
    """z <- centre + P_{B1(r)}(z - centre), per row (sample), Duchi's sort-based threshold."""
    with torch.no_grad():
        v = z - centre
        outside = v.abs().sum(1) > r
        if not bool(outside.any()):
            return
        idx = outside.nonzero().squeeze(1)
        vo = v[idx]
        u = vo.abs().sort(dim=1, descending=True).values
        css = u.cumsum(1) - r
        k = torch.arange(1, vo.shape[1] + 1, dtype=vo.dtype, device=vo.device)
        rho = (u - css / k > 0).sum(1, keepdim=True)
        theta = css.gather(1, rho - 1) / rho
        w = vo.sign() * (vo.abs() - theta).clamp_min(0)
        c = centre.expand_as(z)[idx]
        z[idx] = c + w


class Noise:
    """Welling-Teh sigma_k = sqrt(eta / (1 + k)^gamma), k counted per phase from 0."""

    def __init__(self, eta=0.02, gamma=0.55):
        self.eta, self.gamma, self.k = eta, gamma, 0

    def add(self, g):
        s = (self.eta / (1.0 + self.k) ** self.gamma) ** 0.5
        self.k += 1
        if s > 0:
            g.add_(torch.randn_like(g), alpha=s)


class MagnitudePhase:
    """State of one projected-Adam phase on the magnitude loss at split point `layer`."""

    def __init__(self, dec, layer, z, centre, y, radius, lr, noise=True):
        self.tail = part(dec, layer, 3)
        self.z = z.detach().clone().requires_grad_(True)
        self.centre, self.y, self.radius = centre, y, radius
        self.opt = torch.optim.Adam([self.z], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        self.noise = Noise(eta=0.02 if noise else 0.0)

    def step(self):
        self.z.grad = None
        x = self.tail(self.z)
        loss_per_image = ((magnitudes(x) - self.y) ** 2).sum((1, 2))
        loss_per_image.sum().backward()
        self.noise.add(self.z.grad)
        self.opt.step()
        project_l1(self.z, self.centre, self.radius)
        return loss_per_image.detach()

    def final_loss(self):
        with torch.no_grad():
            return ((magnitudes(self.tail(self.z)) - self.y) ** 2).sum((1, 2))


class BackPhase:
    """Projected Adam on z0 for ||G_0^layer(z0) - target||^2 (ball around 0)."""

    def __init__(self, dec, layer, z0, target, radius, lr):
        self.head = part(dec, 0, layer)
        self.z = z0.detach().clone().requires_grad_(True)
        self.target, self.radius = target, radius
        self.zero = torch.zeros(1, z0.shape[1], device=z0.device)
        self.opt = torch.optim.Adam([self.z], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        self.noise = Noise()

    def step(self):
        self.z.grad = None
        diff = self.head(self.z) - self.target
        (diff * diff).sum().backward()
        self.noise.add(self.z.grad)
        self.opt.step()
        project_l1(self.z, self.zero, self.radius)


def mii_scores(dec, y, cand, chunk=1024):
    """S[c, j] = || |F G(cand_c)| - y_j ||^2 for all candidates and measurements."""
    yf = y.reshape(y.shape[0], -1)
    yy = (yf * yf).sum(1)
    out = []
    with torch.no_grad():
        for c in range(0, cand.shape[0], chunk):
            a = magnitudes(dec(cand[c:c + chunk])).reshape(-1, DATA)
            s = (a * a).sum(1, keepdim=True) + yy[None, :] - 2.0 * a @ yf.T
            out.append(s.clamp_min(0))
    return torch.cat(out)


def prilo_mii(dec, y, cfg, candidates):
    """The complete PRILO-MII of examples/reconstruct.cpp with R = 1 (same phases and steps)."""
    B = y.shape[0]
    cand = torch.randn(candidates, LATENT, device=y.device)
    z0 = cand[mii_scores(dec, y, cand).argmin(0)].clone()
    noise = cfg.get("noise", {}).get("enabled", True)
    zero = torch.zeros(1, LATENT, device=y.device)
    p = cfg["prilo"]

    def magnitude_phase(layer, z, centre, ph):
        st = MagnitudePhase(dec, layer, z, centre, y, ph["radius"], ph["learning_rate"], noise)
        for _ in range(ph["steps"]):
            st.step()
        st.final_loss()
        return st.z.detach()

    z0 = magnitude_phase(0, z0, zero, p["initial"])
    for stage in p["stages"]:
        layer = stage["layer"]
        for _ in range(stage.get("repetitions", 1)):
            with torch.no_grad():
                zi = part(dec, 0, layer)(z0)
            zi = magnitude_phase(layer, zi, zi.clone(), stage["forward"])
            bp = BackPhase(dec, layer, z0, zi, stage["back"]["radius"], stage["back"]["learning_rate"])
            for _ in range(stage["back"]["steps"]):
                bp.step()
            z0 = bp.z.detach()
            z0 = magnitude_phase(0, z0, z0.clone(), stage["refine"])
    with torch.no_grad():
        x = dec(z0)
        err = ((magnitudes(x) - y) ** 2).sum((1, 2)) / DATA
    return x, err


# ----------------------------------------------------------------------------- items
def torch_items(threads, min_time):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    dec = make_decoder()
    for q in dec.parameters():
        q.requires_grad_(False)
    res = {}
    B = 1024
    z = torch.randn(B, LATENT)
    gy = torch.randn(B, DATA)

    with torch.no_grad():
        res["decoder/forward/float/b1024"] = timeit(lambda: dec(z), min_time)

    def vjp_input():
        zz = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(dec(zz), zz, grad_outputs=gy)
        return g

    res["decoder/vjp_input/float/b1024"] = timeit(vjp_input, min_time)
    for q in dec.parameters():
        q.requires_grad_(True)

    def vjp_weights():  # gradients accumulate into .grad, as prilo's buffers
        zz = z.clone().requires_grad_(True)
        dec(zz).backward(gy)
        return zz.grad

    res["decoder/vjp_weights/float/b1024"] = timeit(vjp_weights, min_time)
    for q in dec.parameters():
        q.requires_grad_(False)
        q.grad = None

    def measurements(b):
        with torch.no_grad():
            return magnitudes(dec(torch.randn(b, LATENT)))

    zero = torch.zeros(1, LATENT)
    for b in (1, 16, 1024):
        ph = MagnitudePhase(dec, 0, torch.randn(b, LATENT), zero, measurements(b), 100.0, 0.1)
        res[f"dpr_step/float/b{b}"] = timeit(ph.step, min_time)
    y = measurements(B)
    with torch.no_grad():
        z2 = part(dec, 0, 2)(torch.randn(B, LATENT))
    ph = MagnitudePhase(dec, 2, z2, z2.clone(), y, 100.0, 0.05)
    res["prilo_step_a_z2/float/b1024"] = timeit(ph.step, min_time)
    with torch.no_grad():
        target = part(dec, 0, 2)(torch.randn(B, LATENT))
    bp = BackPhase(dec, 2, torch.randn(B, LATENT), target, 100.0, 0.1)
    res["back_projection_z2/float/b1024"] = timeit(bp.step, min_time)
    # the conv VAE's decoder at batch 256 (prilo: bench_conv's conv_decoder items)
    cdec = make_conv_decoder()
    zc = torch.randn(256, LATENT)
    gc = torch.randn(256, DATA)
    for q in cdec.parameters():
        q.requires_grad_(False)
    with torch.no_grad():
        res["conv_decoder/forward/float/b256"] = timeit(lambda: cdec(zc), min_time)

    def conv_vjp_input():
        zz = zc.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(cdec(zz), zz, grad_outputs=gc)
        return g

    res["conv_decoder/vjp_input/float/b256"] = timeit(conv_vjp_input, min_time)
    for q in cdec.parameters():
        q.requires_grad_(True)

    def conv_vjp_weights():
        zz = zc.clone().requires_grad_(True)
        cdec(zz).backward(gc)
        return zz.grad

    res["conv_decoder/vjp_weights/float/b256"] = timeit(conv_vjp_weights, min_time)
    y64 = measurements(64)
    cand = torch.randn(5000, LATENT)
    res["mii_scores/float/p5000_b64"] = timeit(lambda: mii_scores(dec, y64, cand), min_time, min_iters=2, warmup=1)
    return res


def end_to_end(args, threads, reconstruct, cfg):
    out = {}
    dev = torch.device(args.device)
    x = read_idx_images(Path(args.data_dir) / "mnist" / "t10k-images-idx3-ubyte", 0, args.count).to(dev)
    torch.set_num_threads(threads)
    torch.manual_seed(2)
    dec = make_decoder()
    trained = load_prw_decoder(args.weights, dec)
    dec = dec.to(dev)
    for q in dec.parameters():
        q.requires_grad_(False)
    y = magnitudes(x)
    candidates = cfg.get("mii", {}).get("candidates", 5000)
    if dev.type == "cuda":  # context, cuBLAS and cuFFT set up outside the timed run
        prilo_mii(dec, y[:16], cfg, candidates)
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    _, err = prilo_mii(dec, y, cfg, candidates)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    out["torch"] = time.perf_counter() - t0
    out["torch_magnitude_error"] = float(err.mean())
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{threads} thread(s)"
    print(f"  torch PRILO-MII, {where}: {out['torch']:.2f} s (mean magnitude error {err.mean():.4g}, "
          f"{'weights ' + str(args.weights) if trained else 'random weights'})", file=sys.stderr, flush=True)
    if reconstruct:
        with tempfile.TemporaryDirectory() as d:
            js = Path(d) / "out.json"
            cmd = [str(reconstruct), "--methods", "prilo-mii", "--count", str(args.count), "--restarts", "1", "--quiet",
                   "--threads", str(threads), "--json", str(js), "--config", str(args.config),
                   "--data-dir", str(args.data_dir), "--weights", str(args.weights)]
            if dev.type == "cuda":
                cmd += ["--backend", "cuda"]
            print("  running", " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, cwd=REPO, capture_output=True, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
            rep = json.loads(js.read_text())["methods"]["prilo-mii"]
            out["prilo"] = rep["seconds"]
            out["prilo_magnitude_error"] = rep["magnitude_error"]["mean"]
            print(f"  prilo PRILO-MII, {where}: {out['prilo']:.2f} s (mean magnitude error "
                  f"{out['prilo_magnitude_error']:.4g})", file=sys.stderr, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", action="append", default=[],
                    help="build folder(s) holding benchmarks/bench_* and examples/prilo-reconstruct")
    ap.add_argument("--bench-mlp", help="path of bench_mlp")
    ap.add_argument("--bench-solver", help="path of bench_solver")
    ap.add_argument("--bench-conv", help="path of bench_conv")
    ap.add_argument("--reconstruct", help="path of prilo-reconstruct")
    ap.add_argument("--prilo-json", action="append", default=[],
                    help="read prilo's times from this --benchmark_format=json output instead of running a binary")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per timed item (both sides)")
    ap.add_argument("--count", type=int, default=64, help="images of the end-to-end PRILO-MII")
    ap.add_argument("--config", default=str(REPO / "configs" / "mnist.json"))
    ap.add_argument("--data-dir", default=str(REPO / "data"))
    ap.add_argument("--weights", default=str(REPO / "models" / "vae-mnist.prw"),
                    help="VAE weights for the end-to-end item (both sides; PyTorch falls back to random weights)")
    ap.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end PRILO-MII")
    ap.add_argument("--json", help="write all figures to this JSON file")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: only the end-to-end PRILO-MII, on the GPU (--reconstruct prilo-reconstruct-cuda)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t]
    build_dirs = args.build_dir or [str(p) for p in sorted(REPO.glob("build*"))]
    torch.set_num_interop_threads(1)

    prilo = {}
    if args.device == "cuda":
        if args.skip_e2e:
            sys.exit("compare_pytorch: --device cuda compares only the end-to-end item; drop --skip-e2e")
        if not torch.cuda.is_available():
            sys.exit("compare_pytorch: --device cuda, but this PyTorch sees no CUDA device")
        args.prilo_json, args.bench_mlp, args.bench_solver, args.bench_conv = [], None, None, None
    for f in args.prilo_json:
        prilo.update(read_gbench(Path(f).read_text()))
    if not args.prilo_json and args.device == "cpu":
        for name, given in (("bench_mlp", args.bench_mlp), ("bench_solver", args.bench_solver),
                            ("bench_conv", args.bench_conv)):
            b = find_binary(name, given, build_dirs)
            if b is None:
                print(f"compare_pytorch: {name} not found (use --build-dir or --{name.replace('_', '-')}); "
                      "its prilo column stays empty", file=sys.stderr)
                continue
            prilo.update(run_gbench(b, threads, args.min_time, "^conv_decoder/" if name == "bench_conv" else ""))
    reconstruct = None if args.skip_e2e else find_binary(
        "prilo-reconstruct" if args.device == "cpu" else "prilo-reconstruct-cuda", args.reconstruct, build_dirs)
    cfg = json.loads(Path(args.config).read_text())

    rows = []
    for t in threads:
        tr = {}
        if args.device == "cpu":
            print(f"PyTorch items, {t} thread(s) ...", file=sys.stderr, flush=True)
            tr = torch_items(t, args.min_time)
        for item, sec in tr.items():
            rows.append({"item": item, "threads": t, "prilo_s": prilo.get(f"{item}/t{t}"), "torch_s": sec})
        if not args.skip_e2e:
            e = end_to_end(args, t, reconstruct, cfg)
            rows.append({"item": f"prilo-mii end-to-end/{args.count} images", "threads": t, "prilo_s": e.get("prilo"),
                         "torch_s": e["torch"], "prilo_magnitude_error": e.get("prilo_magnitude_error"),
                         "torch_magnitude_error": e["torch_magnitude_error"]})

    where = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(0)
    print(f"\nprilo vs PyTorch {torch.__version__} ({where}), wall-clock; speed-up = torch time / prilo time")
    print(f"{'item':<42} {'thr':>3} {'prilo':>12} {'torch':>12} {'speed-up':>9}")

    def fmt(s):
        if s is None:
            return "-"
        return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.2f} s"

    for r in rows:
        sp = r["torch_s"] / r["prilo_s"] if r["prilo_s"] else None
        r["speedup"] = sp
        print(f"{r['item']:<42} {r['threads']:>3} {fmt(r['prilo_s']):>12} {fmt(r['torch_s']):>12} "
              f"{(f'{sp:.2f}x' if sp else '-'):>9}")
    if args.json:
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "device": where, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

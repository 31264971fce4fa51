#!/usr/bin/env python3
"""Whole reconstructions timed against the machine's FMA peak, for one or more builds of
prilo-reconstruct, runs interleaved (build A, build B, build A, ...) so that the VM's drift
between runs hits every build alike.

  python3 benchmarks/whole_run.py --bin after=build/examples/prilo-reconstruct \
      [--bin before=/tmp/before/build/examples/prilo-reconstruct] [--runs 3] [--threads 1,2] \
      [--peak-gflops G | --bench-peak build/benchmarks/bench_peak] [--case GEN:METHODS ...] \
      [--bin-args "NAME=--fftw-effort measure ..."]

Each case is a generator and a comma list of methods run in one prilo-reconstruct call on
the first --count MNIST test images with --restarts restarts. The FLOP account (GFLOP per
method) comes from the program's JSON ('work'); % of peak is GFLOP/s over the single-core
peak times the threads. Prints the CPU (/proc/cpuinfo's model name, family, model and
stepping) under the header line, then one Markdown table: the median wall time per build (and the
range over the runs), GFLOP/s and % of peak at the median, and the median ratio of each
later build's time to the first build's, taken run by run. --bin-args gives one build extra
prilo-reconstruct options (the same binary can then be two "builds": e.g. its FFTW planner
choices).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile


def cpu_identity():
    """The CPU the runs ran on, from /proc/cpuinfo's first processor (as prilo's peak cache key
    names it), so that every table says its machine: VMs of one name differ from day to day."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        return "cpu unknown"
    if not fields:
        return "cpu unknown"
    return (f"{fields.get('model name', '?')} (vendor {fields.get('vendor_id', '?')}, family "
            f"{fields.get('cpu family', '?')}, model {fields.get('model', '?')}, stepping {fields.get('stepping', '?')}), "
            f"{os.cpu_count()} logical CPUs")


def measure_peak(bench_peak):
    out = subprocess.run([bench_peak, "--benchmark_format=json", "--benchmark_min_time=0.5"], check=True,
                         capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    return max(b["GFLOPS"] for b in json.loads(out)["benchmarks"])


def run_once(binary, extra, gen, methods, threads, args, peak):
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "r.json")
        cmd = [binary, "--quiet", "--dataset", args.dataset, "--generator", gen, "--methods", methods, "--count",
               str(args.count), "--restarts", str(args.restarts), "--threads", str(threads), "--peak-gflops",
               str(peak * threads), "--json", js] + extra
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"whole_run: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        with open(js) as f:
            d = json.load(f)
    return {name: (m["seconds"], m["work"]["gflop"]) for name, m in d["methods"].items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH of a prilo-reconstruct build")
    ap.add_argument("--case", action="append", help="GENERATOR:METHODS (default mlp:dpr,prilo-mii)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--peak-gflops", type=float, help="single-core FP32 FMA peak (GFLOP/s)")
    ap.add_argument("--bench-peak", help="bench_peak binary to measure the peak with, once, first")
    ap.add_argument("--bin-args", action="append", default=[], help="NAME=OPTIONS: extra options for that build")
    args = ap.parse_args()
    bins = []
    for b in args.bin:
        name, sep, path = b.partition("=")
        if not sep or not os.access(path, os.X_OK):
            sys.exit(f"whole_run: --bin {b}: expected NAME=PATH of an executable")
        bins.append((name, path))
    extra = {}
    for b in args.bin_args:
        name, sep, opts = b.partition("=")
        if not sep or name not in [n for n, _ in bins]:
            sys.exit(f"whole_run: --bin-args {b}: expected NAME=OPTIONS for a NAME given by --bin")
        extra[name] = shlex.split(opts)
    if args.peak_gflops is None and not args.bench_peak:
        sys.exit("whole_run: give --peak-gflops or --bench-peak")
    peak = args.peak_gflops if args.peak_gflops is not None else measure_peak(args.bench_peak)
    cases = [c.split(":", 1) for c in (args.case or ["mlp:dpr,prilo-mii"])]
    for c in cases:
        if len(c) != 2:
            sys.exit(f"whole_run: --case {':'.join(c)}: expected GENERATOR:METHODS")
    threads = [int(t) for t in args.threads.split(",")]
    times = {}  # (gen, method, threads, build) -> [seconds per run]
    gflop = {}
    for r in range(args.runs):
        for gen, methods in cases:
            for t in threads:
                for name, path in bins:
                    for m, (s, g) in run_once(path, extra.get(name, []), gen, methods, t, args, peak).items():
                        times.setdefault((gen, m, t, name), []).append(s)
                        gflop[(gen, m)] = g
                    print(f"run {r + 1}/{args.runs}: {gen} {methods} t{t} {name} done", file=sys.stderr)
    print(f"{args.count} {args.dataset} test images x {args.restarts} restarts, {args.runs} interleaved runs, "
          f"single-core FP32 FMA peak {peak:.1f} GFLOP/s (x threads)\non {cpu_identity()}\n")
    head = "| generator | method | GFLOP | threads | " + " | ".join(
        f"{n}: s (range), GFLOP/s, % of peak" for n, _ in bins) + "".join(
        f" | {n} / {bins[0][0]}" for n, _ in bins[1:]) + " |"
    print(head)
    print("|" + "---|" * (4 + len(bins) + len(bins) - 1))
    for gen, methods in cases:
        for m in methods.split(","):
            for t in threads:
                cells = []
                for name, _ in bins:
                    ts = times[(gen, m, t, name)]
                    med = statistics.median(ts)
                    rate = gflop[(gen, m)] / med
                    cells.append(f"{med:.2f} ({min(ts):.2f}–{max(ts):.2f}), {rate:.0f}, {100 * rate / (peak * t):.1f} %")
                ref = times[(gen, m, t, bins[0][0])]
                for name, _ in bins[1:]:
                    ratios = [a / b for a, b in zip(times[(gen, m, t, name)], ref)]
                    cells.append(f"{statistics.median(ratios):.3f}")
                print(f"| {gen} | {m} | {gflop[(gen, m)]:.1f} | {t} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

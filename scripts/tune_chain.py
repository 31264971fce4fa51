#!/usr/bin/env python3
"""Learning rates of the chained reading of PRILO (forward phases only; the "prilo_chain"
section of configs/<dataset>.json) and the resolve rule over its outputs, on TRAINING images
only. Prints one line per setting: mean / median plain PSNR, share of images >= 30 dB (plain),
and, as analysis, the aligned PSNR. docs/tuning.md records what was chosen.

usage: scripts/tune_chain.py [--dataset mnist] [--generator mlp|conv|style] [--count 256] [--first 50000]
                             [--restarts 4] [--threads 2] [--start mii|li] [--values V,V,...]
                             [--placement-weights FILE] [--polish-align] [--polish-restarts N]
                             [--grid lr|lr-low|resolve|placement|optimiser|radii|consensus|temperature|schedule|anchor
                                     |scorer|polish|polish-sigma|li-sigma|judges]
--grid radii: the l1 radii of the forward phases (with their learning rate), for the conv and style
priors: for style, one radius per tensor of the split state {z_i, z0} (the paper's Tables 9/10).
--grid consensus: the power of -avg's weights (e_min / e_r)^power (config "consensus"), for the consensus
and -resolve over it.
--grid temperature: -resolve's temperature (config "resolve": 0 keeps the lowest-scoring
candidate, > 0 their weighted mean), for -resolve over the chained runs and over their consensus.
--grid schedule: the last stage's repetitions and the chain's own gradient noise (its "noise"
section's eta; "off": none), for the chained runs, their consensus and -resolve over that.
--grid anchor: -resolve's anchor weight (config "resolve": "anchor_weight", the weight of the LI
start G(E(y)) in each candidate's score; --start li), for -resolve over the chained runs and over
their consensus.
--grid scorer: -resolve's learned placement scorer (config "resolve": "scorer_weight", the weight of
models/placement-<dataset>[-<generator>].prw's logit in each candidate's score; prilo-train-placement
trains it on images 0..57999, so tune it on --first 58000), for the same two methods.
--grid polish: -polish's weight of the images it starts from (config "polish": "weight"; the rest of
the result is the consensus of its restarts), for -polish over -avg-resolve.
--grid polish-sigma: the spread of -polish's restarts around the encodings they start from (config
"polish": "sigma"), for -polish over -avg-resolve.
--grid li-sigma: the spread of the LI restarts 1..R-1 around E(y) (config "li": "sigma"; --start li),
for the chained runs, their consensus, -resolve over that and -polish over -resolve.
--grid judges: the weight of every other VAE the config names as a judge of -resolve's placements
(config "resolve": "judges"; 0: the prior's own VAE alone), for -resolve over the consensus and
-polish over that.
--start: the chained runs' starts (li needs the generator's models/li-<dataset>-fourier*.prw).
With --start li, images 58000..59999 are the ones the LI encoders were not trained on (their
validation images; prilo-train-li --validation 2000): on images 0..57999 the encoder has seen the
truth, and settings that lean on its start look better there than they are (docs/tuning.md).
"""
import argparse, copy, itertools, json, os, subprocess, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--dataset", default="mnist")
ap.add_argument("--count", type=int, default=256)
ap.add_argument("--first", type=int, default=50000)
ap.add_argument("--restarts", type=int, default=4)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--binary", default="build/examples/prilo-reconstruct")
ap.add_argument("--generator", default="mlp", choices=["mlp", "conv", "style"])
ap.add_argument("--grid", default="lr",
                choices=["lr", "lr-low", "resolve", "placement", "optimiser", "radii", "consensus", "temperature",
                         "schedule", "anchor", "scorer", "polish", "polish-sigma", "li-sigma", "judges"])
ap.add_argument("--start", default="mii", choices=["mii", "li"])
ap.add_argument("--polish-align", action="store_true",
                help="--grid polish, polish-sigma: align the polish restarts to the image they started from (config \"polish\": "
                "\"align_to_given\")")
ap.add_argument("--polish-restarts", type=int,
                help="--grid polish, polish-sigma: -polish's restarts (config \"polish\": \"restarts\"; default: the config's)")
ap.add_argument("--placement-weights", help="the scorer for --grid scorer (default: prilo-reconstruct's)")
ap.add_argument("--values", help="comma-separated values for --grid consensus, temperature, anchor, scorer, polish, "
                "polish-sigma, li-sigma or judges "
                "(default: "
                "the grid's own)")
args = ap.parse_args()
suffix = "" if args.generator == "mlp" else f"-{args.generator}"
base = json.load(open(f"configs/{args.dataset}{suffix}.json"))


def run(cfg, methods):
    with tempfile.TemporaryDirectory() as d:
        c, j = os.path.join(d, "c.json"), os.path.join(d, "r.json")
        cfg = copy.deepcopy(cfg)
        for judge in cfg.get("resolve", {}).get("judges", []):  # relative to configs/, where the config came from
            judge["model"] = os.path.abspath(os.path.join("configs", judge["model"]))
        json.dump(cfg, open(c, "w"))
        subprocess.run([args.binary, "--dataset", args.dataset, "--split", "train", "--first", str(args.first),
                        "--count", str(args.count), "--restarts", str(args.restarts), "--threads", str(args.threads),
                        "--quiet", "--methods", methods, "--config", c, "--json", j,
                        "--generator", args.generator]
                       # (prilo-reconstruct refuses a scorer that the config gives no weight)
                       + (["--placement-weights", args.placement_weights]
                          if args.placement_weights and cfg.get("resolve", {}).get("scorer_weight", 0) > 0 else []),
                       check=True, stdout=subprocess.DEVNULL)
        return json.load(open(j))["methods"]


def grid_values(defaults):
    """--values as floats, else the grid's own defaults."""
    return [float(v) for v in args.values.split(",")] if args.values else defaults


def line(label, m):
    al = m.get("analysis_aligned", {}).get("psnr", {}).get("mean", float("nan"))
    return (f"{label:<44} PSNR {m['psnr']['mean']:6.2f} median {m['psnr']['median']:6.2f} "
            f">=30dB {100 * m['fraction_psnr_ge_30']:5.1f} %  mag.err {m['magnitude_error']['mean']:.3g}  "
            f"(analysis: aligned {al:6.2f})")


print(f"# {args.dataset}, {args.generator} prior: train images {args.first}..{args.first + args.count - 1}, {args.restarts} restarts")
if args.start == "li" and args.first < 58000:
    print("# note: the LI encoder was trained on training images 0..57999; for --start li, --first 58000 "
          "(its held-out validation images) measures what it does on images it has not seen", flush=True)
chain = f"prilo-chain-{args.start}"
methods = f"{chain},{chain}-resolve"
if args.grid == "lr":
    for lr0, lr1, lr2 in itertools.product([0.1, 0.3], [0.1, 0.3, 1.0], [0.3, 1.0, 3.0]):
        cfg = copy.deepcopy(base)
        pc = cfg["prilo_chain"]
        pc["initial"]["learning_rate"] = lr0
        pc["stages"][0]["forward"]["learning_rate"] = lr1
        pc["stages"][1]["forward"]["learning_rate"] = lr2
        r = run(cfg, methods)
        for k, m in r.items():
            print(line(f"{k} lr z0/z1/z2 {lr0}/{lr1}/{lr2}", m), flush=True)
elif args.grid == "lr-low":
    # smaller forward-phase rates (z0 stays at 0.3)
    for lr1, lr2 in [(0.3, 0.3), (0.3, 0.1), (0.1, 0.1), (0.05, 0.05), (0.03, 0.03), (0.02, 0.02), (0.01, 0.01)]:
        cfg = copy.deepcopy(base)
        pc = cfg["prilo_chain"]
        pc["initial"]["learning_rate"] = 0.3
        pc["stages"][0]["forward"]["learning_rate"] = lr1
        pc["stages"][1]["forward"]["learning_rate"] = lr2
        r = run(cfg, methods)
        for k, m in r.items():
            print(line(f"{k} lr z0/z1/z2 0.3/{lr1}/{lr2}", m), flush=True)
elif args.grid == "resolve":
    for keep, thr in itertools.product([True, False], [0, 1e-6, 1e-4]):
        cfg = copy.deepcopy(base)
        cfg["prilo_chain"]["keep_best"] = keep
        cfg["resolve"]["consistency_threshold"] = thr
        r = run(cfg, methods)
        for k, m in r.items():
            print(line(f"{k} keep_best {keep} threshold {thr}", m), flush=True)
elif args.grid == "placement":
    for w in [0, 0.1, 1, 10, 100]:
        cfg = copy.deepcopy(base)
        cfg["resolve"]["placement_weight"] = w
        r = run(cfg, methods)
        print(line(f"{chain}-resolve placement_weight {w}", r[f"{chain}-resolve"]), flush=True)
elif args.grid == "consensus":
    powers = grid_values([0, 1, 2, 4, 8])
    for i, power in enumerate(powers):
        cfg = copy.deepcopy(base)
        cfg["consensus"] = {"power": power}
        r = run(cfg, f"{chain},{chain}-avg,{chain}-avg-resolve")
        if i == 0:
            print(line(chain, r[chain]), flush=True)
        print(line(f"{chain}-avg power {power:g}", r[f"{chain}-avg"]), flush=True)
        print(line(f"{chain}-avg-resolve power {power:g}", r[f"{chain}-avg-resolve"]), flush=True)
elif args.grid in ("temperature", "anchor", "scorer"):
    # one option of the "resolve" section, for -resolve over the chained runs and over their consensus
    if args.grid == "anchor" and args.start != "li":
        ap.error("--grid anchor: the anchor is the LI start; use --start li")
    key, values = {"temperature": ("temperature", [0, 1]), "anchor": ("anchor_weight", [0, 0.3, 1, 3]),
                   "scorer": ("scorer_weight", [0, 1, 3])}[args.grid]
    values = grid_values(values)
    for v in values:
        cfg = copy.deepcopy(base)
        cfg["resolve"][key] = v
        r = run(cfg, f"{chain},{chain}-resolve,{chain}-avg-resolve")
        if v == values[0]:
            print(line(chain, r[chain]), flush=True)
        for k in [f"{chain}-resolve", f"{chain}-avg-resolve"]:
            print(line(f"{k} {key} {v}", r[k]), flush=True)
elif args.grid in ("polish", "polish-sigma"):
    # one key of the config's "polish" section: its weight, or the spread sigma of its restarts
    key, defaults = ("weight", [0.3, 0.5, 0.7]) if args.grid == "polish" else \
        ("sigma", [0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1])
    values = grid_values(defaults)
    for i, v in enumerate(values):
        cfg = copy.deepcopy(base)
        cfg.setdefault("polish", {})[key] = v
        cfg["polish"]["align_to_given"] = args.polish_align
        if args.polish_restarts:
            cfg["polish"]["restarts"] = args.polish_restarts
        r = run(cfg, f"hio,{chain},{chain}-avg,{chain}-avg-resolve,{chain}-avg-resolve-polish")
        if i == 0:
            for k in [chain, f"{chain}-avg", f"{chain}-avg-resolve"]:
                print(line(k, r[k]), flush=True)
        label = (f"{chain}-avg-resolve-polish {key} {v:g}" + (" aligned to given" if args.polish_align else "")
                 + (f" restarts {args.polish_restarts}" if args.polish_restarts else ""))
        print(line(label, r[f"{chain}-avg-resolve-polish"]), flush=True)
elif args.grid == "li-sigma":
    if args.start != "li":
        ap.error("--grid li-sigma: the spread of the LI starts; use --start li")
    values = grid_values([0.05, 0.3, 0.5, 1])
    for v in values:
        cfg = copy.deepcopy(base)
        cfg.setdefault("li", {})["sigma"] = v
        r = run(cfg, f"hio,{chain},{chain}-avg,{chain}-avg-resolve,{chain}-avg-resolve-polish")
        for k in [chain, f"{chain}-avg", f"{chain}-avg-resolve", f"{chain}-avg-resolve-polish"]:
            print(line(f"{k} li sigma {v:g}", r[k]), flush=True)
elif args.grid == "judges":
    # the weight of every judge the config names (config "resolve": "judges"; 0: the prior's VAE alone)
    if not base.get("resolve", {}).get("judges"):
        ap.error("--grid judges: the config names no judges (\"resolve\": {\"judges\": [...]})")
    for i, v in enumerate(grid_values([0, 0.5, 1])):
        cfg = copy.deepcopy(base)
        for judge in cfg["resolve"]["judges"]:
            judge["weight"] = v
        r = run(cfg, f"hio,{chain},{chain}-avg,{chain}-avg-resolve,{chain}-avg-resolve-polish")
        if i == 0:
            for k in [chain, f"{chain}-avg"]:
                print(line(k, r[k]), flush=True)
        for k in [f"{chain}-avg-resolve", f"{chain}-avg-resolve-polish"]:
            print(line(f"{k} judges' weight {v:g}", r[k]), flush=True)
elif args.grid == "schedule":
    top = base.get("noise", {}).get("eta", 0.02)
    for reps, eta in [(4, top), (8, top), (16, top), (8, "off"), (8, 0.005), (8, 0.001), (16, 0.005)]:
        cfg = copy.deepcopy(base)
        pc = cfg["prilo_chain"]
        pc["stages"][-1]["repetitions"] = reps
        pc["noise"] = {"enabled": False} if eta == "off" else {"enabled": True, "eta": eta}
        r = run(cfg, f"{chain},{chain}-avg,{chain}-avg-resolve")
        for k, m in r.items():
            print(line(f"{k} last stage x{reps} noise eta {eta}", m), flush=True)
elif args.grid == "radii":
    # forward-phase radii of stages 1 and 2 (z_i), with the learning rate scaled to them; the
    # style prior adds z0's own radius (0: z0 fixed at its value after the initial phase)
    z0_radii = [None] if args.generator != "style" else [0, 3, 10, 30]
    for (r1, r2, lr), r0 in itertools.product([(50, 100, 0.03), (200, 400, 0.03), (1000, 2000, 0.01)], z0_radii):
        cfg = copy.deepcopy(base)
        for st, r in zip(cfg["prilo_chain"]["stages"], [r1, r2]):
            f = st["forward"]
            f["radius"], f["learning_rate"] = r, lr
            f.pop("radii", None)
            if r0 is not None:
                f["radii"] = [r, r0]
        r = run(cfg, methods)
        for k, m in r.items():
            z0 = "" if r0 is None else f" z0 {r0}"
            print(line(f"{k} radii {r1}/{r2}{z0} lr {lr}", m), flush=True)
else:
    for opt, scale in [("adam", 1), ("gradient-descent", 0.01), ("gradient-descent", 0.1), ("gradient-descent", 1),
                       ("gradient-descent", 10)]:
        cfg = copy.deepcopy(base)
        pc = cfg["prilo_chain"]
        for ph in [pc["initial"]] + [s["forward"] for s in pc["stages"]]:
            ph["optimiser"] = opt
            ph["learning_rate"] *= scale
        r = run(cfg, chain)
        for k, m in r.items():
            print(line(f"{k} {opt} lr x{scale}", m), flush=True)

"""Task defaults chosen by measurement: every applicable sampler on every imaging task at a few NFE budgets,
on held-out validation crops, next to the classical baselines.

    python -m bench.task_defaults run -o bench/results/task_defaults.json [--images gray:2,rgb:1] [--side 96]
    python -m bench.task_defaults choose A.json [B.json] -o bench/results/task_defaults.json   # table + choice

Images are centre crops of the first files (sorted) of the held-out validation folders (never the sample
images nor standard test sets): ``$RESTORE_DATA/bsd400/val`` (gray) and ``$RESTORE_DATA/cbsd432/val``
(colour), or the folders in ``$RESTORE_VAL_GRAY`` / ``$RESTORE_VAL_RGB``. Each task runs as the CLI would: the
task's default noise, the task's per-sampler options, the shipped default prior for the channel count.

Seconds are CPU time of the process (``time.process_time``) — on a machine shared by many processes wall
time measures the load, not the method; wall time is recorded too. ``choose`` scales each run's CPU time
to a 256×256 image by the measured ratio of one network evaluation (and one backpropagation) at 256² to
the crop size, and picks per task the best mean PSNR whose estimate fits the budget (default 60 s).
The JSON is rewritten after every run, and a rerun skips the runs already in it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

import restore
from restore.errors import RestoreError
from restore.metrics import psnr, ssim
from restore.plan import make_plan
from restore.tasks import get_task
from restore_models.data import data_root

from .run import Case, case_options, classical, load_prior, machine, sampler_generator, use_prior_folders, write_json

DATA_ROOT = data_root()  # restore_models.prepare writes the collections there
VAL_GRAY = os.environ.get("RESTORE_VAL_GRAY", os.path.join(DATA_ROOT, "bsd400", "val"))
VAL_RGB = os.environ.get("RESTORE_VAL_RGB", os.path.join(DATA_ROOT, "cbsd432", "val"))

#: The imaging tasks as a user meets them: each task's default noise level.
CASES = (
    Case("deblur-gaussian", "deblur", {"kernel": "gaussian:2.0"}, 0.01),
    Case("deblur-motion", "deblur", {"kernel": "motion:15:30"}, 0.01),
    Case("sr-4x", "super-resolve", {"scale": 4}, 0.01),
    Case("inpaint-random-50", "inpaint", {"mask": "random:0.5"}, 0.0),
    Case("inpaint-box", "inpaint", {"mask": "box"}, 0.0),
    Case("denoise-25", "denoise", {}, 25 / 255),
)

#: ``name`` or ``name:field=value,...`` (a variant on top of the task's options, e.g. DiffPIR with ζ = 1).
SAMPLERS = ("dds", "diffpir", "pnp-hqs", "ddrm", "ddnm", "pigdm")
BUDGETS = (20, 50, 100)
#: Extra (sampler, steps) runs: DPIR's own 8 iterations, the Gaussian deblurring default's 16, and the one-step
#: Tweedie estimate for denoising.
EXTRA = {"pnp-hqs": (8, 16), "tweedie": (1,)}


def load_crops(spec: str, side: int) -> list[tuple[str, restore.Image]]:
    """``gray:N,rgb:M``: the first N gray and M colour validation images, centre-cropped to ``side``;
    ``gray:A-B`` takes the A-th to B-th (from 1), e.g. images the defaults were not chosen on."""
    out = []
    for part in spec.split(","):
        kind, _, count = part.partition(":")
        folder = VAL_GRAY if kind == "gray" else VAL_RGB
        if not os.path.isdir(folder):
            raise SystemExit(f"validation folder {folder} is missing; set RESTORE_VAL_GRAY / RESTORE_VAL_RGB")
        names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg", ".tif")))
        first, _, last = (count or "1").rpartition("-")
        for name in names[int(first or 1) - 1: int(last)]:
            img = restore.read(os.path.join(folder, name))
            data = img.data
            if kind == "gray" and data.shape[1] == 3:
                data = data.mean(dim=1, keepdim=True)
            H, W = data.shape[-2:]
            top, left = (H - side) // 2, (W - side) // 2
            crop = data[..., top:top + side, left:left + side].contiguous()
            out.append((f"{kind}/{name}", restore.Image(crop, img.meta)))
    return out


def _pad(prior, problem):
    pad_for = getattr(restore.api, "pad_for", None)  # older engines pad here, newer ones inside the run
    return pad_for(prior, problem) if pad_for is not None else (problem, None)


def parse_spec(spec: str) -> tuple[str, dict]:
    """``diffpir:zeta=1.0;lam=2`` -> ``("diffpir", {"zeta": 1.0, "lam": 2})``."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(";")):
        key, _, value = item.partition("=")
        options[key] = json.loads(value)
    return name, options


def run_one(case: Case, image: restore.Image, spec: str, steps: int, seed: int) -> dict:
    sampler_name, variant = parse_spec(spec)
    task = get_task(case.task)
    setup = task.build(image=image, noise=case.noise, simulate=True, generator=torch.Generator().manual_seed(seed),
                       **case_options(case, image))
    ref = setup.reference
    channels = setup.problem.x_shape[1]
    prior_name = restore.default_prior_name(channels, task.domain)
    try:
        prior = load_prior(prior_name, channels, task.domain)
        # the CLI's own plan: task defaults, task-derived options, the variant; steps only where the sampler has them
        plan = make_plan(sampler_name, steps=steps, option_layers=(
            task.sampler_defaults.get(sampler_name, {}), setup.sampler_options.get(sampler_name, {}), variant))
        sampler = restore.sampler(sampler_name, **plan.sampler_config)
        problem, crop = _pad(prior, setup.problem)
        cpu, wall = time.process_time(), time.perf_counter()
        result = sampler.run(prior, problem, generator=sampler_generator(seed))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    except RestoreError as exc:  # an inapplicable pair (no SVD, wrong operator) is recorded, not an error
        return {"skipped": str(exc)}
    x = result.x if crop is None else result.x[..., : crop[0], : crop[1]]
    if setup.view is not None:  # a ``valid`` boundary's unknown extends past the observed field of view
        x = setup.view(x)
    return {"prior": prior_name, "psnr": psnr(x.cpu(), ref.cpu()), "ssim": ssim(x.cpu(), ref.cpu()),
            "nfe": result.nfe, "vjp": result.vjp, "cpu_seconds": cpu, "wall_seconds": wall}


def network_costs(side: int, repeats: int = 2) -> dict:
    """CPU seconds of one network evaluation and one evaluation + backpropagation, at ``side`` and 256²."""
    out = {}
    for channels in (1, 3):
        prior = load_prior(restore.default_prior_name(channels, "natural"), channels, "natural")
        for s in (side, 256):
            x = torch.randn(1, channels, s, s)
            with torch.no_grad():
                prior.eps(x, 500)
            best_f, best_b = float("inf"), float("inf")
            for _ in range(repeats):
                t = time.process_time()
                with torch.no_grad():
                    prior.eps(x, 500)
                best_f = min(best_f, time.process_time() - t)
                xg = x.clone().requires_grad_(True)
                t = time.process_time()
                prior.eps(xg, 500).sum().backward()
                best_b = min(best_b, time.process_time() - t)
            out[f"c{channels}-{s}"] = {"forward": best_f, "forward_backward": best_b}
    return out


def run(args) -> int:
    folders = use_prior_folders(args.priors) if args.priors else {}
    data = {"machine": machine(), "side": args.side, "images": args.images, "seconds": "cpu (process_time)",
            "runs": [], "baselines": [], **({"prior_folders": folders} if folders else {})}
    if os.path.exists(args.output):
        with open(args.output) as f:
            data = json.load(f)
    done = {(r["case"], r["image"], r["sampler"], r["steps"]) for r in data["runs"]}
    based = {(r["case"], r["image"]) for r in data["baselines"]}
    if "network" not in data:
        data["network"] = network_costs(args.side)
        write_json(args.output, data)
    crops = load_crops(args.images, args.side)
    samplers = args.samplers.split(",")  # variants separate fields with ';'

    budgets = [int(b) for b in args.budgets.split(",")]
    cases = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    for case in cases:
        for img_name, image in crops:
            if (case.name, img_name) not in based:
                task = get_task(case.task)
                setup = task.build(image=image, noise=case.noise, simulate=True,
                                   generator=torch.Generator().manual_seed(args.seed), **case_options(case, image))
                t = time.process_time()
                outs = classical(case, setup)
                cpu = time.process_time() - t
                for name, x in outs.items():
                    data["baselines"].append({"case": case.name, "image": img_name, "method": name,
                                              "psnr": psnr(x, setup.reference.float()),
                                              "ssim": ssim(x, setup.reference.float()), "cpu_seconds": cpu})
                write_json(args.output, data)
            plan = [(s, b) for s in samplers for b in budgets]
            plan += [(s, b) for s, bs in EXTRA.items() if s in samplers or (s == "tweedie" and case.task == "denoise")
                     for b in bs]
            for sampler_name, steps in plan:
                key = (case.name, img_name, sampler_name, steps)
                if key in done:
                    continue
                if sampler_name == "tweedie" and case.task != "denoise":
                    continue
                rec = run_one(case, image, sampler_name, steps, args.seed)
                rec.update(case=case.name, image=img_name, sampler=sampler_name, steps=steps)
                data["runs"].append(rec)
                done.add(key)
                write_json(args.output, data)
                print(f"{case.name:18s} {img_name:22s} {sampler_name:8s} {steps:4d} "
                      + (f"{rec['psnr']:6.2f} dB {rec['cpu_seconds']:6.1f} s cpu" if "psnr" in rec else "skipped"),
                      flush=True)
    return 0


def _mean(values):
    return sum(values) / len(values) if values else float("nan")


def summarise(data: dict, budget: float = 60.0) -> tuple[list[dict], dict[str, dict]]:
    """Rows ``case, sampler, steps, psnr, ssim, cpu, est_256`` (means over images) and the choice per case."""
    net = data["network"]
    side = data["side"]
    rows = []
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in data["runs"]:
        if "psnr" in r:
            groups.setdefault((r["case"], r["sampler"], r["steps"]), []).append(r)
    for (case, sampler, steps), rs in sorted(groups.items()):
        scale = []
        for r in rs:
            c = "c3" if r["image"].startswith("rgb") else "c1"
            kind = "forward_backward" if r["vjp"] else "forward"
            scale.append(net[f"{c}-256"][kind] / net[f"{c}-{side}"][kind])
        rows.append({"case": case, "sampler": sampler, "steps": steps, "n": len(rs),
                     "psnr": _mean([r["psnr"] for r in rs]), "ssim": _mean([r["ssim"] for r in rs]),
                     "cpu": _mean([r["cpu_seconds"] for r in rs]), "nfe": _mean([r["nfe"] for r in rs]),
                     "est_256": _mean([r["cpu_seconds"] * f for r, f in zip(rs, scale)])})
    for b in data["baselines"]:
        groups.setdefault((b["case"], "baseline:" + b["method"], 0), []).append(b)
    base_rows = {}
    for (case, method, _), rs in groups.items():
        if method.startswith("baseline:"):
            base_rows.setdefault(case, []).append({"method": method[9:], "psnr": _mean([r["psnr"] for r in rs]),
                                                   "ssim": _mean([r["ssim"] for r in rs])})
    choice = {}
    for case in sorted({r["case"] for r in rows}):
        fits = [r for r in rows if r["case"] == case and r["est_256"] <= budget]
        if fits:
            best = max(fits, key=lambda r: r["psnr"])
            choice[case] = {"sampler": best["sampler"], "steps": best["steps"], "psnr": best["psnr"],
                            "est_256_cpu_seconds": best["est_256"], "baselines": base_rows.get(case, [])}
    return rows, choice


def choose_per_task(rows: list[dict], budget: float) -> dict[str, dict]:
    """Per task (deblur covers both kernels, inpaint both masks): the (sampler, steps) with the best PSNR
    averaged over the task's cases, among those run on all of them within the budget."""
    task_of = {c.name: c.task for c in CASES}
    out = {}
    for task in sorted(set(task_of.values())):
        cases = [c for c, t in task_of.items() if t == task]
        table: dict[tuple[str, int], list[dict]] = {}
        for r in rows:
            if r["case"] in cases:
                table.setdefault((r["sampler"], r["steps"]), []).append(r)
        full = {k: v for k, v in table.items() if len(v) == len(cases) and max(r["est_256"] for r in v) <= budget}
        if full:
            (sampler, steps), rs = max(full.items(), key=lambda kv: _mean([r["psnr"] for r in kv[1]]))
            out[task] = {"sampler": sampler, "steps": steps, "psnr": _mean([r["psnr"] for r in rs]),
                         "cases": cases, "est_256_cpu_seconds": max(r["est_256"] for r in rs)}
    return out


def choose(args) -> int:
    data = None
    for path in args.json:
        with open(path) as f:
            part = json.load(f)
        if data is None:
            data = part
        else:
            if part["side"] != data["side"]:
                raise SystemExit("all result files must use the same crop side")
            data["runs"] += part["runs"]
            data["baselines"] += part["baselines"]
    rows, choice = summarise(data, args.budget)
    print(f"| case | sampler | steps | PSNR | SSIM | CPU s ({data['side']}²) | est. CPU s (256²) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['sampler']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['cpu']:.1f} | "
              f"{r['est_256']:.0f} |")
    print()
    for case, c in choice.items():
        base = ", ".join(f"{b['method']} {b['psnr']:.2f}" for b in c["baselines"])
        print(f"{case}: {c['sampler']} {c['steps']} steps, {c['psnr']:.2f} dB, ~{c['est_256_cpu_seconds']:.0f} s CPU "
              f"at 256² (baselines: {base})")
    per_task = choose_per_task(rows, args.budget)
    best = choose_per_task(rows, float("inf"))  # the --quality best preset: no time budget
    for label, table in (("default", per_task), ("best", best)):
        for task, c in table.items():
            print(f"{label} {task}: {c['sampler']} {c['steps']} steps, mean {c['psnr']:.2f} dB over "
                  f"{', '.join(c['cases'])}, ~{c['est_256_cpu_seconds']:.0f} s CPU at 256²")
    data["choice"] = {"budget_cpu_seconds_256": args.budget, "per_case": choice, "per_task": per_task,
                      "best_per_task": best, "table": rows, "sources": args.json}
    write_json(args.output, data)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("-o", "--output", default="bench/results/task_defaults.json")
    r.add_argument("--images", default="gray:2,rgb:1", help="gray:N,rgb:M validation crops (or gray:A-B, ...)")
    r.add_argument("--side", type=int, default=96)
    r.add_argument("--samplers", default=",".join(SAMPLERS))
    r.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    r.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--priors", default=None,
                   help="folder of prior folders read instead of the shipped priors of the same names "
                        "(e.g. copies calibrated by restore_models.calibrate)")
    c = sub.add_parser("choose")
    c.add_argument("json", nargs="+", help="result files of `run` (same crop side), e.g. one per image kind")
    c.add_argument("-o", "--output", default="bench/results/task_defaults.json")
    c.add_argument("--budget", type=float, default=60.0, help="CPU seconds allowed for a 256² image")
    args = p.parse_args(argv)
    return run(args) if args.cmd == "run" else choose(args)


if __name__ == "__main__":
    sys.exit(main())

"""Flows on a shipped VP prior reparameterised as a rectified flow (issue 18).

1. FlowChef (and flow-SMC with 5 particles) deblurring (Gaussian σ = 2) and 4x super-resolution (bicubic, the
   operator default) at <= 50 NFE against DPS at equal NFE and against the task's default sampler
   (``plugins/restore_imaging/tasks.py``: TASK_DEFAULTS, GAUSSIAN_DEBLUR_DEFAULT for the Gaussian kernel, with
   the task's sampler options, as the CLI runs it);
2. RF-Solver inversion -> reconstruction at 10 and 50 steps against naive DDIM inversion (and exact BDIA).

Data: centre crops of held-out colour validation images (``$RESTORE_DATA/cbsd432/val``, never used in training);
the measurement noise is drawn from ``--seed``. Cheap by design (2 CPU cores): 1-2 crops of 64².

Run: ``python -m bench.flows --prior natural-rgb --crops 2 --side 64``
Writes ``bench/results/flows.json`` and prints one line per row.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import restore
from restore.metrics import psnr
from restore.operators import GaussianNoise
from restore.problem import Problem
from restore_models.data import data_root

from .run import machine, sampler_generator

VAL = os.path.join(data_root(), "cbsd432", "val")  # restore_models.prepare writes it there
TASKS = {"deblur-gaussian-2": ("gaussian-blur", {"sigma": 2.0}, "deblur"),
         "sr-4x": ("super-resolution", {"factor": 4}, "super-resolve")}


def crops(root: str, n: int, side: int) -> list[tuple[str, torch.Tensor]]:
    from PIL import Image

    if not os.path.isdir(root):
        raise SystemExit(f"validation folder {root} is missing; pass --val DIR with held-out colour images")
    files = sorted(f for f in os.listdir(root) if f.lower().endswith((".jpg", ".png")))[:n]
    out = []
    for f in files:
        im = np.asarray(Image.open(os.path.join(root, f)).convert("RGB"), dtype=np.float32) / 255
        H, W = im.shape[:2]
        t, l = (H - side) // 2, (W - side) // 2
        out.append((f, torch.from_numpy(np.ascontiguousarray(im[t:t + side, l:l + side])).permute(2, 0, 1)[None]))
    return out


def run(prior, sampler: str, problem: Problem, seed: int, **config):
    s = restore.sampler(sampler, **config)
    start = time.perf_counter()
    r = s.run(prior, problem, generator=sampler_generator(seed))
    return r, time.perf_counter() - start


def main() -> None:
    from restore.tasks import get_task
    from restore_imaging.tasks import GAUSSIAN_DEBLUR_DEFAULT, GAUSSIAN_DEBLUR_OPTIONS, TASK_DEFAULTS

    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", default="natural-rgb")
    ap.add_argument("--val", default=VAL)
    ap.add_argument("--crops", type=int, default=2)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--nfe", type=int, default=50)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--scales", type=float, nargs="+", default=[500.0, 1000.0, 2000.0],
                    help="FlowChef gradient scales with the automatic clip (500: the official code's at 100 steps; "
                         "1000: the same total guidance over 50 steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/flows.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    images = crops(args.val, args.crops, args.side)
    prior = restore.prior(args.prior, channels=3)
    rows = []

    def record(row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    for name, x in images:
        for task, (op_name, op_args, task_name) in TASKS.items():
            op = restore.operator(op_name, **op_args)
            g = torch.Generator().manual_seed(args.seed)
            ax = op(x)
            y = ax + args.noise * torch.randn(ax.shape, generator=g)
            problem = Problem(y, op, GaussianNoise(args.noise))
            # what `restore deblur|super-resolve` runs: the default for this kernel and the task's sampler options
            default, default_steps = GAUSSIAN_DEBLUR_DEFAULT if task_name == "deblur" else TASK_DEFAULTS[task_name]
            default_options = dict(get_task(task_name).sampler_defaults.get(default, {}))
            if task_name == "deblur":  # every kernel here is Gaussian
                default_options.update(GAUSSIAN_DEBLUR_OPTIONS)
            runs = [("flowchef", {"steps": args.nfe, "scale": 500.0, "clip": False})]  # the official code as is
            runs += [("flowchef", {"steps": args.nfe, "scale": sc}) for sc in args.scales]
            runs += [("flow-smc", {"particles": 5, "budget": args.nfe}),  # --samples 5 within the same NFE
                     ("dps", {"steps": args.nfe}),
                     (default, {**default_options, **({"steps": default_steps} if default_steps else {})})]
            for sampler, config in runs:
                r, sec = run(prior, sampler, problem, args.seed, **config)
                record({"part": "restoration", "image": name, "task": task, "sampler": sampler, **config,
                        "nfe": r.nfe, "vjp": r.vjp, "psnr_db": round(psnr(r.x.clamp(0, 1), x), 2),
                        "seconds": round(sec, 1), "task_default": sampler == default})
        for steps in (10, 50):
            for sampler, extra in (("rf-solver", {}), ("ddim-inversion", {}), ("bdia", {"gamma": 1.0})):
                start = time.perf_counter()
                inv = restore.invert(prior, x, sampler=sampler, steps=steps, **extra)
                rec = inv.reconstruct().cpu()
                err = rec - x
                record({"part": "round-trip", "image": name, "sampler": sampler, "steps": steps, **extra,
                        "nfe_invert": inv.nfe, "max_abs_error": float(err.abs().max()),
                        "rel_l2_error": float(err.norm() / x.norm()), "psnr_db": round(psnr(rec, x), 2),
                        "seconds": round(time.perf_counter() - start, 1)})
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"prior": args.prior, "reparameterisation": "VP as rectified flow (restore.priors.flow.VPAsFlow)",
                   "data": f"{args.val}: first {args.crops} files, centre {args.side}² crops (held out of training)",
                   "noise": args.noise, "seed": args.seed, "nfe_budget": args.nfe, "threads": 1,
                   "command": f"python -m bench.flows --prior {args.prior} --crops {args.crops} --side {args.side}",
                   "machine": machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

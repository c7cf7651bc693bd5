"""Issue 5 measurements: PSNR, wall time and NFE of red-diff / stsl / dps on a 256×256 image.

Usage: .venv/bin/python bench/variational_samplers.py [--prior default|PATH] [--image sample_images/astronaut.png]
       [--runs red-diff:50,red-diff:200,stsl:100,dps:200] [--tasks deblur,super-resolve] [--threads 1]

Deblurring: Gaussian kernel σ = 2, noise 0.01; super-resolution: ×4 (the task's default downsampling),
noise 0.01; both simulated from the clean image (``--simulate``), seed 0. Prints one Markdown table row
per run and appends JSON lines to ``--json``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from restore.tasks import RunSettings, run_task

TASK_OPTIONS = {"deblur": {"kernel": "gaussian:2.0"}, "super-resolve": {"scale": 4}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", default="default")
    ap.add_argument("--label", default=None)
    ap.add_argument("--image", default="sample_images/astronaut.png")
    ap.add_argument("--runs", default="red-diff:50,red-diff:200,stsl:100,dps:200")
    ap.add_argument("--tasks", default="deblur,super-resolve")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--set", action="append", default=[], help="SAMPLER.KEY=VALUE override")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        name, _, field = key.partition(".")
        overrides.setdefault(name, {})[field] = json.loads(value)
    out_dir = tempfile.mkdtemp(prefix="bench_issue5_")
    for task in args.tasks.split(","):
        for run in args.runs.split(","):
            sampler, _, steps = run.partition(":")
            settings = RunSettings(prior=args.prior, sampler=sampler, steps=int(steps), noise=0.01, seed=0,
                                   device="cpu", simulate=True, overwrite=True,
                                   sampler_options=dict(overrides.get(sampler, {})))
            start = time.perf_counter()
            report = run_task(task, args.image, os.path.join(out_dir, f"{task}_{sampler}_{steps}.png"), settings,
                              dict(TASK_OPTIONS[task]))
            wall = time.perf_counter() - start
            row = {"prior": args.label or args.prior, "task": task, "sampler": sampler, "steps": int(steps),
                   "nfe": report.nfe, "psnr": round(report.metrics.get("psnr", float("nan")), 2),
                   "psnr_input": round(report.metrics.get("psnr_input", float("nan")), 2),
                   "sampler_seconds": round(report.seconds, 1), "wall_seconds": round(wall, 1),
                   "options": overrides.get(sampler, {})}
            print(f"| {row['prior']} | {task} | {sampler} | {steps} | {row['nfe']} | {row['psnr']:.2f} | "
                  f"{row['sampler_seconds']:.1f} |", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

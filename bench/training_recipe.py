"""The prior recipe on this CPU: step cost of each option, and validation PSNR after equal compute.

    python -m bench.training_recipe steps [-o bench/results/training_recipe.json] [--steps 8] [--threads 1,2]
        [--only "bf16 autocast"]      # run two of these at once to measure two processes against one
    RESTORE_DATA=DATA python -m bench.training_recipe quality [-o bench/results/training_recipe_quality.json]
        [--cpu-minutes 12] [--parallel 2] [--arms baseline,fp32,...]
    python -m bench.training_recipe collect --work RUNS [-o ...]   # rewrite the JSON from finished arms

``steps`` runs a few optimiser steps of the real training step (UNet forward, MSE, backward, AdamW) on random
data per configuration and reports the median step time in wall-clock and in CPU seconds of this process.

``quality`` trains each arm of :data:`ARMS` from scratch with ``restore_models.training.train`` on the
bsd400 training split (the natural-gray recipe) for the same CPU time of one thread, then measures one-step
Tweedie PSNR of the EMA weights on all bsd400 validation images at sigma 15/25/50, and the share of pixels of
unconditional samples that leave the data range (the noisiest levels). Equal CPU time rather
than equal wall-clock makes arms comparable on a shared machine: one thread on a free core spends the two at
the same rate.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from restore_models.training import build_unet

from .run import machine, write_json

CONFIGS = [
    # name, widths, layers, batch, crop, precision, channels_last, threads
    ("fp32", (32, 64, 128, 128), 1, 8, 64, "fp32", False, 1),
    ("bf16 autocast", (32, 64, 128, 128), 1, 8, 64, "bf16", False, 1),
    ("fp32 channels_last", (32, 64, 128, 128), 1, 8, 64, "fp32", True, 1),
    ("bf16 channels_last", (32, 64, 128, 128), 1, 8, 64, "bf16", True, 1),
    ("bf16, 2 threads", (32, 64, 128, 128), 1, 8, 64, "bf16", False, 2),
    ("bf16, crop 128 batch 2", (32, 64, 128, 128), 1, 2, 128, "bf16", False, 1),
    ("bf16, crop 96 batch 4", (32, 64, 128, 128), 1, 4, 96, "bf16", False, 1),
    ("bf16, wider 64-128-256-256", (64, 128, 256, 256), 1, 8, 64, "bf16", False, 1),
    ("bf16, deeper 2 layers/block", (32, 64, 128, 128), 2, 8, 64, "bf16", False, 1),
]


def step_times(widths, layers, batch, crop, precision, channels_last, threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_unet(3, widths, layers)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, crop, crop)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    k = torch.randint(0, 1000, (batch,))
    wall, cpu = [], []
    for _ in range(steps + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x, k).sample
        loss = torch.nn.functional.mse_loss(out.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    params = sum(p.numel() for p in model.parameters())
    return float(np.median(wall[1:])), float(np.median(cpu[1:])), params


# name -> TrainConfig changes from the natural-gray recipe (bf16, widths 32-64-128-128, one layer per block,
# batch 8 of 64² crops, lr 3e-4 constant, uniform levels, eps objective).
ARMS = {
    "baseline": {},
    "fp32": {"precision": "fp32"},
    "crop 96 batch 4": {"crop": 96, "batch_size": 4},
    "wider 64-128-256-256": {"block_out_channels": (64, 128, 256, 256)},
    "deeper 2 layers/block": {"layers_per_block": 2},
    "restoration levels": {"timesteps": "restoration"},
    "cosine lr": {"lr_schedule": "cosine"},
    "flow objective": {"objective": "flow"},
    "v objective": {"objective": "v"},
}
SIGMAS = (15, 25, 50)


def run_arm(name: str, out: str, cpu_minutes: float, data_root: str) -> dict:
    """Train one arm from scratch for ``cpu_minutes`` of one thread, then score its EMA weights."""
    from dataclasses import replace

    import restore
    from restore_models.evaluate import evaluate, validation_set
    from restore_models.training import TrainConfig, train

    config = replace(TrainConfig(preset="natural-gray", steps=10**9, max_cpu_minutes=cpu_minutes, threads=1,
                                 data=(os.path.join(data_root, "bsd400", "train"),), checkpoint_minutes=10**6),
                     **ARMS[name])
    summary = train(config, out, warn=lambda m: None)
    prior = restore.prior(out, device="cpu")
    images = [(f"bsd400-val|{key}", im) for key, im in validation_set("bsd400-val", 1, data_root)]
    rows = evaluate(prior, images, [s / 255 for s in SIGMAS], use_bm3d=False)
    psnrs = {f"sigma{s}": float(np.mean([r.prior_psnr for r in rows if round(r.sigma * 255) == s])) for s in SIGMAS}
    return {"arm": name, "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in ARMS[name].items()},
            "steps": summary["steps"], "cpu_minutes": cpu_minutes, "wall_minutes": summary["minutes"],
            "steps_per_cpu_hour": summary["steps"] / cpu_minutes * 60, "tweedie_psnr": psnrs,
            "parameters": sum(p.numel() for p in prior.unet.parameters())}


def out_of_range_fraction(prior, samples: int = 4, side: int = 64, steps: int = 50) -> float:
    """Share of pixels of unconditional samples (DDIM, or Euler for a flow, from seeded noise) that leave the
    data range by more than 5 %: how well the network knows the noisiest levels, where ``x0̂`` of an eps
    network amplifies its error by ``1 / a_t``."""
    import restore
    from restore.priors.flow import FlowPrior

    x = torch.randn(samples, prior.channels, side, side, generator=torch.Generator().manual_seed(0))
    sampler = "flow-euler" if isinstance(prior, FlowPrior) else "ddim"
    with torch.no_grad():
        out = restore.sampler(sampler, steps=steps).run(prior, shape=x.shape, x_init=x.clone()).x_model
    return float((out.abs() > 1.05).double().mean())


def collect(work: str, output: str, cpu_minutes: float) -> None:
    """Write the arms finished in ``work`` (in :data:`ARMS` order) with their unconditional samples scored."""
    import json

    import restore

    rows = []
    for name in ARMS:
        run = os.path.join(work, name.replace(" ", "_").replace("/", "-"))
        if not os.path.exists(os.path.join(run, "arm.json")):
            continue
        with open(os.path.join(run, "arm.json")) as f:
            row = json.load(f)
        row["unconditional_out_of_range"] = out_of_range_fraction(restore.prior(run, device="cpu"))
        print(f"{name:24s} {row['steps']:6d} steps  " + "  ".join(f"{k} {v:.2f}" for k, v in row["tweedie_psnr"].items())
              + f"  out of range {row['unconditional_out_of_range']:.3f}", flush=True)
        rows.append(row)
    write_json(output, {"machine": machine(), "command": f"python -m bench.training_recipe quality --cpu-minutes "
                        f"{cpu_minutes}", "data": "bsd400 train (+ natural-gray built-in sources), scored on bsd400 "
                        "val (20 images), one-step Tweedie; unconditional_out_of_range: share of pixels of four 64² "
                        "DDIM/Euler 50-step samples beyond the data range by 5 %",
                        "cpu_minutes_per_arm": cpu_minutes, "rows": rows})


def quality(args) -> None:
    import subprocess
    import sys
    import tempfile

    from restore_models.data import data_root

    names = args.arms.split(",") if args.arms else list(ARMS)
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
    root = data_root()
    work = tempfile.mkdtemp(prefix="recipe-")
    pending, running = list(names), []
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            out = os.path.join(work, name.replace(" ", "_").replace("/", "-"))
            cmd = [sys.executable, "-m", "bench.training_recipe", "arm", name, "--out", out,
                   "--cpu-minutes", str(args.cpu_minutes)]
            running.append((name, out, subprocess.Popen(cmd, env={**os.environ, "RESTORE_DATA": root,
                                                                  "OMP_NUM_THREADS": "1"})))
        time.sleep(5)
        for item in [r for r in running if r[2].poll() is not None]:
            running.remove(item)
            name, out, proc = item
            if proc.returncode:
                raise SystemExit(f"arm '{name}' failed (exit {proc.returncode})")
            print(f"{name} done", flush=True)
    collect(work, args.output, args.cpu_minutes)


def steps(args) -> None:
    rows = []
    threads_list = [int(t) for t in args.threads.split(",")] if args.threads else None
    for name, widths, layers, batch, crop, precision, cl, threads in CONFIGS:
        if (threads_list and threads not in threads_list) or (args.only and name not in args.only.split(",")):
            continue
        wall, cpu, params = step_times(widths, layers, batch, crop, precision, cl, threads, args.steps)
        pixels = batch * crop * crop
        rows.append({"config": name, "widths": widths, "layers_per_block": layers, "batch": batch, "crop": crop,
                     "precision": precision, "channels_last": cl, "threads": threads, "parameters": params,
                     "step_wall_s": wall, "step_cpu_s": cpu,
                     "steps_per_cpu_hour": 3600 / cpu if cpu else None,
                     "pixels_per_cpu_s": pixels / cpu if cpu else None})
        print(f"{name:30s} wall {wall:.3f} s  cpu {cpu:.3f} s  params {params / 1e6:.2f} M", flush=True)
    write_json(args.output, {"machine": machine(), "steps": args.steps, "rows": rows})


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("steps")
    p.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "results",
                                                          "training_recipe.json"))
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", help="only the configurations with these thread counts, e.g. 1,2")
    p.add_argument("--only", help="only these configurations (comma-separated names)")
    p = sub.add_parser("quality")
    p.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "results",
                                                          "training_recipe_quality.json"))
    p.add_argument("--cpu-minutes", type=float, default=12.0)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--arms", help=f"comma-separated subset of: {', '.join(ARMS)}")
    p = sub.add_parser("collect")  # write the JSON from the run folders of (possibly several) quality runs
    p.add_argument("--work", required=True, help="folder holding the arms' run folders")
    p.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "results",
                                                          "training_recipe_quality.json"))
    p.add_argument("--cpu-minutes", type=float, default=12.0)
    p = sub.add_parser("arm")  # one arm in its own process (quality runs these)
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p.add_argument("--cpu-minutes", type=float, required=True)
    args = parser.parse_args()
    if args.part == "steps":
        steps(args)
    elif args.part == "quality":
        quality(args)
    elif args.part == "collect":
        collect(args.work, args.output, args.cpu_minutes)
    else:
        from restore_models.data import data_root

        row = run_arm(args.name, args.out, args.cpu_minutes, data_root())
        with open(os.path.join(args.out, "arm.json"), "w") as f:
            json.dump(row, f)


if __name__ == "__main__":
    main()

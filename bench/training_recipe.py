"""Training-step cost of the prior recipe's options on this CPU (precision, layout, threads, crop, width).

    python -m bench.training_recipe [-o bench/results/training_recipe.json] [--steps 8]

Each configuration runs a few optimiser steps of the real training step (UNet forward, MSE, backward, AdamW)
on random data and reports the median step time in wall-clock and in CPU seconds of this process. On a shared
machine the CPU seconds are the steadier figure; steps per CPU-hour of one core is what a niced background
training gets out of each core it is given.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "results",
                                                               "training_recipe.json"))
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    rows = []
    for name, widths, layers, batch, crop, precision, cl, threads in CONFIGS:
        wall, cpu, params = step_times(widths, layers, batch, crop, precision, cl, threads, args.steps)
        pixels = batch * crop * crop
        rows.append({"config": name, "widths": widths, "layers_per_block": layers, "batch": batch, "crop": crop,
                     "precision": precision, "channels_last": cl, "threads": threads, "parameters": params,
                     "step_wall_s": wall, "step_cpu_s": cpu,
                     "steps_per_cpu_hour": 3600 / cpu if cpu else None,
                     "pixels_per_cpu_s": pixels / cpu if cpu else None})
        print(f"{name:30s} wall {wall:.3f} s  cpu {cpu:.3f} s  params {params / 1e6:.2f} M", flush=True)
    write_json(args.output, {"machine": machine(), "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()

"""bf16 against fp32 on this CPU: one network call of ``natural-rgb`` and one training step of ``natural-gray``.

    python -m bench.precision_cpu [--sizes 64 256 512] [--reps 3] [-o bench/results/precision_cpu.json]

bf16 autocast pays off only where the CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX); elsewhere
oneDNN emulates it. ``--precision auto`` (inference and ``restore train prior``) picks by the flags this file
records. One torch thread; medians of ``--reps`` after a warm-up; compare ratios, not absolute times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import restore
from restore.priors.diffusers_prior import cpu_has_native_bf16

from .run import ROOT, machine, write_json

SETTINGS = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))


def median_seconds(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def network_calls(sizes: list[int], reps: int) -> list[dict]:
    prior = restore.prior("natural-rgb")
    rows = []
    for side in sizes:
        x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
        for precision, channels_last in SETTINGS:
            prior.set_speed(precision=precision, channels_last=channels_last)
            with torch.no_grad():
                seconds = median_seconds(lambda: prior.x0(x, 100), reps)
            rows.append({"side": side, "precision": precision, "channels_last": channels_last, "seconds": seconds})
            print(rows[-1], flush=True)
    return rows


def training_steps(reps: int) -> list[dict]:
    from diffusers import UNet2DModel

    folder = os.path.join(ROOT, "plugins", "restore_models", "weights", "natural-gray")
    net = UNet2DModel.from_pretrained(folder, subfolder="unet").float().train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-6)
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(8, 1, 64, 64, generator=g), torch.randint(0, 1000, (8,), generator=g)
    rows = []
    for precision in ("fp32", "bf16"):
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = net(x, t).sample
            loss = (out.float() - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        rows.append({"precision": precision, "batch": 8, "crop": 64, "seconds_per_step": median_seconds(step, reps)})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "precision_cpu.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    flags = {name: bool(getattr(torch.cpu, f"_is_{name}_supported", lambda: False)())
             for name in ("avx512", "avx512_bf16", "amx_tile", "vnni")}
    result = {"machine": machine(), "cpu_flags": flags, "native_bf16": cpu_has_native_bf16(),
              "network_call": network_calls(args.sizes, args.reps), "training_step": training_steps(args.reps),
              "command": "python -m bench.precision_cpu " + " ".join(
                  ["--sizes", *map(str, args.sizes), "--reps", str(args.reps)])}
    write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

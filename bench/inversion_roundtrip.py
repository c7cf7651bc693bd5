"""Round-trip error of BDIA vs naive DDIM inversion (float32), SAMPLERS.md §8.

Run: ``python -m bench.inversion_roundtrip --prior natural-rgb --image sample_images/astronaut.png --crop 64``
Prints one line per (sampler, steps) and writes ``bench/results/inversion_roundtrip.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import restore
from restore.metrics import psnr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", default="default")
    ap.add_argument("--image", default="sample_images/astronaut.png")
    ap.add_argument("--crop", type=int, default=64, help="centre crop size (0 = whole image)")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--gamma", type=float, default=1.0)
    ap.add_argument("--out", default="bench/results/inversion_roundtrip.json")
    args = ap.parse_args()
    x = restore.read(args.image).data.float()
    if args.crop:
        H, W = x.shape[-2:]
        t, l = (H - args.crop) // 2, (W - args.crop) // 2
        x = x[..., t: t + args.crop, l: l + args.crop]
    prior = restore.prior(args.prior, channels=x.shape[1])
    rows = []
    for steps in args.steps:
        for sampler, extra in (("bdia", {"gamma": args.gamma}), ("ddim-inversion", {})):
            start = time.perf_counter()
            inv = restore.invert(prior, x, sampler=sampler, steps=steps, **extra)
            rec = inv.reconstruct().cpu()
            err = rec - x
            row = {"sampler": sampler, "steps": steps, **extra, "max_abs_error": float(err.abs().max()),
                   "rel_l2_error": float(err.norm() / x.norm()), "psnr_db": psnr(rec, x),
                   "seconds": round(time.perf_counter() - start, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"prior": args.prior, "image": args.image, "crop": args.crop, "dtype": "float32",
                   "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

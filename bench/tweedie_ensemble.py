"""One-step Tweedie denoising with and without the x8 self-ensemble (``tweedie``'s ``transforms``), next to BM3D.

Runs ``restore denoise``'s sampler through the API on each prior's validation images (the model cards' set:
``restore_models.ship.validation_images``), with the cards' keyed noise, so the BM3D column is the one cached in
``bench/results/priors.json`` (CBM3D for colour; computed here, not written back, when missing).

    python -m bench.tweedie_ensemble                       # every shipped image prior
    python -m bench.tweedie_ensemble --prior medical-gray --transforms 1 4 8
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import restore
from restore.metrics import psnr

from .priors import bm3d_psnr
from .run import ROOT, machine, write_json

PRIORS = ("natural-gray", "natural-rgb", "medical-gray")
SIGMAS = (15, 25, 50)
CACHE = os.path.join(ROOT, "bench", "results", "priors.json")


def main(argv: list[str] | None = None) -> int:
    from restore_models.evaluate import keyed_noisy
    from restore_models.ship import validation_images

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", nargs="+", default=list(PRIORS))
    parser.add_argument("--transforms", nargs="+", type=int, default=[1, 8])
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "tweedie_ensemble.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cache = json.load(open(CACHE))["bm3d"] if os.path.exists(CACHE) else {}
    rows, summary = [], []
    for name in args.prior:
        prior = restore.prior(name, device="cpu")
        images = validation_images(name)
        for sigma in SIGMAS:
            per = {n: [] for n in args.transforms}
            ref = []
            for key, clean in images:
                noisy, cache_key = keyed_noisy(key, clean, sigma / 255)
                if cache_key not in cache:
                    cache[cache_key] = bm3d_psnr(noisy, clean, sigma / 255)
                ref.append(cache[cache_key])
                problem = restore.Problem(noisy, restore.operators.Identity(),
                                          restore.operators.GaussianNoise(sigma / 255))
                for n in args.transforms:
                    start = time.perf_counter()
                    x = restore.sampler("tweedie", transforms=n).run(prior, problem).x
                    rows.append({"prior": name, "image": key, "sigma": sigma, "transforms": n,
                                 "psnr": psnr(x.clamp(0, 1), clean), "seconds": time.perf_counter() - start})
                    per[n].append(rows[-1]["psnr"])
            entry = {"prior": name, "sigma": sigma, "images": len(images), "bm3d": float(np.mean(ref)),
                     **{f"x{n}": float(np.mean(v)) for n, v in per.items()}}
            summary.append(entry)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()),
                  file=sys.stderr, flush=True)
    write_json(args.output, {"machine": machine(), "sigmas": SIGMAS, "summary": summary, "runs": rows})
    print("| prior | σ·255 | images | BM3D | " + " | ".join(f"x{n}" for n in args.transforms) + " |")
    for e in summary:
        print(f"| {e['prior']} | {e['sigma']} | {e['images']} | {e['bm3d']:.2f} | "
              + " | ".join(f"{e[f'x{n}']:.2f}" for n in args.transforms) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One-step Tweedie denoising of priors against BM3D on held-out validation photographs.

    python -m bench.priors --prior natural-gray --prior runs/natural-gray --set bsd400-val \
        [--data-root DATA] [-o bench/results/priors.json]

Validation sets (never trained on; see ``restore_models.prepare``): ``bsd400-val`` (20 gray 180² BSD crops),
``cbsd432-val`` (21 colour BSD photos, 256² centre crops), ``wheels-val`` (skimage rocket and
stereo_motorcycle, matplotlib grace_hopper: 256² centre crops), ``dipy-val`` (the 10 slices of dipy's
``S0_10slices.nii.gz``, b=0 diffusion MRI, 128²: a medical check on a scanner no prior was trained on). Noise is drawn once per image and σ with a
fixed seed, so every prior and BM3D see the same noisy images; BM3D results are cached in the JSON
(``bm3d.bm3d`` for gray, ``bm3d.bm3d_rgb`` (CBM3D) for colour). Results merge into the existing JSON, keyed
by the prior's name and weight fingerprint.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import restore
from restore.metrics import psnr

from .run import machine, write_json

SIGMAS = (15, 25, 50)
DEFAULT_ROOT = os.environ.get("RESTORE_DATA", "data")


def bm3d_psnr(noisy: torch.Tensor, clean: torch.Tensor, sigma: float) -> float:
    import bm3d

    arr = noisy[0].permute(1, 2, 0).double().numpy()
    out = bm3d.bm3d_rgb(arr, sigma) if arr.shape[2] == 3 else bm3d.bm3d(arr[..., 0], sigma)[..., None]
    return psnr(torch.from_numpy(np.clip(out, 0, 1)).permute(2, 0, 1)[None].float(), clean)


def main() -> None:
    from restore_models.evaluate import keyed_noisy, tweedie_denoise, validation_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", action="append", required=True, help="prior name or folder (repeatable)")
    parser.add_argument("--set", dest="sets", action="append", required=True,
                        help="bsd400-val | cbsd432-val | wheels-val | dipy-val (repeatable)")
    parser.add_argument("--data-root", default=DEFAULT_ROOT)
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--sigma", type=int, action="append", help="noise levels in 1/255 (default 15, 25, 50)")
    parser.add_argument("--limit", type=int, help="first N images of each set only")
    parser.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "results", "priors.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    sigmas = tuple(args.sigma or SIGMAS)
    results = {}
    if os.path.exists(args.output):
        import json

        results = json.load(open(args.output))
    results.setdefault("bm3d", {})
    results.setdefault("priors", {})
    for name in args.prior:
        prior = restore.prior(name, device="cpu")
        label = os.path.basename(os.path.normpath(name))
        fingerprint = prior.fingerprint()
        # a set measured before with the same weights is kept: the entry gains the sets of this run
        entry = results["priors"].get(f"{label}@{fingerprint}", {"sets": {}})
        entry.update({"prior": name, "fingerprint": fingerprint, "meta": {
            k: getattr(prior, "metadata", {}).get(k) for k in ("training_steps", "training_minutes")}})
        for set_name in args.sets:
            rows = []
            for key, clean in validation_set(set_name, prior.channels, args.data_root)[:args.limit]:
                for sigma in sigmas:
                    noisy, bkey = keyed_noisy(f"{set_name}|{key}", clean, sigma / 255)
                    start = time.perf_counter()
                    den = tweedie_denoise(prior, noisy, sigma / 255)
                    seconds = time.perf_counter() - start
                    if bkey not in results["bm3d"] and not args.no_bm3d:
                        results["bm3d"][bkey] = bm3d_psnr(noisy, clean, sigma / 255)
                    rows.append({"image": key, "sigma": sigma, "noisy": psnr(noisy.clamp(0, 1), clean),
                                 "prior": psnr(den, clean), "bm3d": results["bm3d"].get(bkey), "seconds": seconds})
            entry["sets"][set_name] = rows
            for sigma in sigmas:
                sel = [r for r in rows if r["sigma"] == sigma]
                bm = [r["bm3d"] for r in sel if r["bm3d"] is not None]
                print(f"{label:24s} {set_name:12s} sigma {sigma:2d}: prior {np.mean([r['prior'] for r in sel]):.2f}"
                      f"  BM3D {np.mean(bm) if len(bm) == len(sel) else float('nan'):.2f}"
                      f"  noisy {np.mean([r['noisy'] for r in sel]):.2f}", flush=True)
            results["priors"][f"{label}@{entry['fingerprint']}"] = entry
            results["machine"] = machine()  # the shipped weights of this run: what `bench.stale` compares
            write_json(args.output, results)


if __name__ == "__main__":
    main()

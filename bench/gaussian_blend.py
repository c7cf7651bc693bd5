"""The high-noise blend of the shipped priors with the stationary Gaussian: denoising error per level and
unconditional draws, network alone against blended (``restore.priors.gaussian_blend``).

    python -m bench.gaussian_blend --priors DIR [-o bench/results/gaussian_blend.json]

``DIR/<name>`` are copies of the shipped priors calibrated by ``python -m restore_models.calibrate`` (weights
fitted on training crops). Per prior, on its held-out validation images (64² centre crops, never trained or
fitted on): the RMS error of ``x0̂`` in [-1, 1] units at each fitted level, for the network alone, the stationary
Gaussian alone and the blend, next to the RMS of the images about their mean (what predicting the mean
scores); then 8 unconditional 50-step DDIM draws of 64² (seed 0): the standard deviation of the final state
in model units and the share of its pixels outside [-1, 1] (the images' own std is ~0.5 and none lies outside).
The restoration tasks with and without the blend are ``bench.task_defaults run --priors DIR``.
"""
from __future__ import annotations

import argparse
import os

import torch

import restore
from restore.priors.gaussian_blend import DEFAULT_LEVELS, stationary_for
from restore_models.ship import validation_images

from .run import machine, write_json

PRIORS = ("natural-gray", "natural-rgb", "medical-gray")


def level_errors(prior, images: torch.Tensor) -> list[dict]:
    gauss = stationary_for(prior)
    blend = prior.gaussian_blend
    rows = []
    with torch.no_grad():
        for k in DEFAULT_LEVELS:
            a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
            x = a * images + s * torch.randn(images.shape, generator=torch.Generator().manual_seed(k))
            prior.set_gaussian_blend(None)
            net = prior.x0(x, k)
            prior.set_gaussian_blend(blend)
            rms = {name: float((est - images).pow(2).mean().sqrt())
                   for name, est in (("network", net), ("gaussian", gauss.x0(x, k)), ("blend", prior.x0(x, k)))}
            rows.append({"level": k, "sigma_over_a": round(s / a, 3),
                         "weight": blend.weight(torch.tensor(s / a)).item(),
                         **{n: round(v, 4) for n, v in rms.items()}})
    return rows


def draws(prior, blended: bool) -> dict:
    saved = prior.gaussian_blend
    prior.set_gaussian_blend(saved if blended else None)
    with torch.no_grad():
        r = restore.sampler("ddim", steps=50).run(prior, shape=(8, prior.channels, 64, 64),
                                                  generator=torch.Generator().manual_seed(0))
    prior.set_gaussian_blend(saved)
    x = r.x_model
    return {"std": round(float(x.std()), 3), "outside_range": round(float((x.abs() > 1).double().mean()), 4),
            "max_abs": round(float(x.abs().max()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", required=True, help="folder of calibrated prior copies (DIR/<name>)")
    ap.add_argument("-o", "--output", default="bench/results/gaussian_blend.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"benchmark": "gaussian_blend", "command": "python -m bench.gaussian_blend --priors DIR", "priors": {}}
    for name in PRIORS:
        folder = os.path.join(args.priors, name)
        prior = restore.prior(folder, device="cpu")
        if prior.gaussian_blend is None:
            raise SystemExit(f"error: '{folder}' has no gaussian_blend; run python -m restore_models.calibrate on it")
        images = torch.stack([im[0] for _, im in validation_images(name, side=64)]) * 2 - 1
        rows = level_errors(prior, images)
        entry = {"validation_crops": int(images.shape[0]), "about_mean_rms": round(float(
            (images - images.mean((0, 2, 3), keepdim=True)).pow(2).mean().sqrt()), 4),
            "levels": rows, "draws": {"network": draws(prior, False), "blend": draws(prior, True)}}
        out["priors"][name] = entry
        print(name, entry["about_mean_rms"], entry["draws"], flush=True)
        for r in rows:
            print(f"  {r['level']:4d}  w {r['weight']:.2f}  network {r['network']:.3f}  Gaussian {r['gaussian']:.3f}  "
                  f"blend {r['blend']:.3f}", flush=True)
    out["machine"] = machine()
    write_json(args.output, out)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

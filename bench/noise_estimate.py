"""``--noise auto``: how close the estimated noise level is, and what it costs in PSNR against the true level
and against assuming 25/255 (the fixed default ``restore denoise`` had before the estimate).

Each shipped natural prior's validation images (``restore_models.ship.validation_images``: the bsd400 /
cbsd432 validation splits and the wheel images, 256² crops) get the cards' keyed Gaussian noise, then are
clipped and stored as 8 bit, as a real noisy photo is. Tweedie with one call (the ``x8`` average moves every
column alike) restores each with the true level, the estimate (:meth:`restore.GaussianNoise.estimate`) and
25/255.

The estimate is then checked where only deblur offers it (``--noise auto``): the same gray images blurred
(Gaussian, σ = 2 px) or reduced 4x (where fine texture remains and passes for noise, so super-resolve does
not offer it), with noise 0.005-0.05, stored as 8 bit; and on the colour images with noise saved as JPEG
(quality 95/85/75), whose quantisation removes part of the finest-band noise.

    python -m bench.noise_estimate [-o bench/results/noise_estimate.json]
"""
from __future__ import annotations

import argparse
import os
import statistics

import torch

import restore
from restore.metrics import psnr
from restore.operators import Identity

from .run import ROOT, machine, write_json

SIGMAS = (2, 5, 10, 15, 25, 50)
OPERATOR_LEVELS = (0.005, 0.01, 0.02, 0.05)
OPERATORS = {"deblur (gaussian:2)": ("gaussian-blur", {"sigma": 2.0}),
             "super-resolve (x4)": ("super-resolution", {"factor": 4})}
JPEG_QUALITIES = (95, 85, 75)
JPEG_SIGMAS = (5, 15, 25)
PRIORS = ("natural-gray", "natural-rgb")
ASSUMED = 25 / 255


def stored(noisy: torch.Tensor) -> torch.Tensor:
    """What an 8-bit file keeps of ``noisy``."""
    return (noisy.clamp(0, 1) * 255).round() / 255


def tweedie(prior, y: torch.Tensor, sigma: float) -> torch.Tensor:
    problem = restore.Problem(y, Identity(), restore.GaussianNoise(max(sigma, 1e-4)))
    with torch.no_grad():
        return restore.sampler("tweedie").run(prior, problem, generator=torch.Generator().manual_seed(0)).x


def main(argv: list[str] | None = None) -> int:
    from restore_models.evaluate import keyed_noisy
    from restore_models.ship import validation_images

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "noise_estimate.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for prior_name in PRIORS:
        prior, images = restore.prior(prior_name), validation_images(prior_name)
        for s255 in SIGMAS:
            sigma, ratios, scores = s255 / 255, [], {"noisy": [], "true": [], "auto": [], "assumed 25/255": []}
            for name, clean in images:
                y = stored(keyed_noisy(name, clean, sigma)[0])
                estimate = restore.GaussianNoise.estimate(y)
                ratios.append(estimate / sigma)
                scores["noisy"].append(psnr(y, clean))
                for key, level in (("true", sigma), ("auto", estimate), ("assumed 25/255", ASSUMED)):
                    scores[key].append(psnr(tweedie(prior, y, level), clean))
            mean_psnr = {k: sum(v) / len(v) for k, v in scores.items()}
            label = f"{prior_name:13s} {s255:3d}/255"
            rows.append({"prior": prior_name, "sigma": s255, **ratio_summary(ratios, label), "psnr": mean_psnr})
            print(f"{label}  PSNR " + "  ".join(f"{k} {v:.2f}" for k, v in mean_psnr.items()), flush=True)
    write_json(args.output, {"command": "python -m bench.noise_estimate", "machine": machine(), "rows": rows,
                             "operators": operator_rows(validation_images("natural-gray")),
                             "jpeg": jpeg_rows(validation_images("natural-rgb"))})
    return 0


def operator_rows(images) -> list[dict]:
    """The estimate's ratio to the true level on degraded 8-bit images (no restoration)."""
    from restore_models.evaluate import keyed_noisy

    rows = []
    for task, (name, params) in OPERATORS.items():
        op = restore.operator(name, **params)
        for level in OPERATOR_LEVELS:
            ratios = []
            for image_name, clean in images:
                y = stored(keyed_noisy(image_name, op(clean), level)[0])
                ratios.append(restore.GaussianNoise.estimate(y) / level)
            rows.append({"task": task, "noise": level, **ratio_summary(ratios, f"{task:20s} noise {level:.3f}")})
    return rows


def jpeg_rows(images) -> list[dict]:
    """The estimate's ratio to the true level on noisy colour images saved as JPEG."""
    from restore.enhance_task import jpeg
    from restore_models.evaluate import keyed_noisy

    rows = []
    for quality in JPEG_QUALITIES:
        for s255 in JPEG_SIGMAS:
            ratios = []
            for name, clean in images:
                ratios.append(restore.GaussianNoise.estimate(jpeg(keyed_noisy(name, clean, s255 / 255)[0], quality))
                              * 255 / s255)
            rows.append({"jpeg_quality": quality, "sigma": s255,
                         **ratio_summary(ratios, f"jpeg q{quality} {s255:3d}/255")})
    return rows


def ratio_summary(ratios: list[float], label: str) -> dict:
    """The row fields for the estimate / true level ratios of the images, printed after ``label``."""
    median = statistics.median(ratios)
    print(f"{label}  estimate x{median:.3f} [{min(ratios):.2f}, {max(ratios):.2f}]", flush=True)
    return {"images": len(ratios), "estimate_ratio": {"median": median, "min": min(ratios), "max": max(ratios)}}


if __name__ == "__main__":
    raise SystemExit(main())

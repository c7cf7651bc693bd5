"""Real blur: which boundary model restores a photo of a larger scene best?

    python -m bench.real_blur -o bench/results/real_blur.json      # a quarter of an hour on one core

A camera's blur (or downsampling) mixes in light from outside the frame. Each case takes a crop of a
held-out photo larger than the output by the filter's reach, degrades it with the ``valid`` physics (so
the observation is the centre, blurred with the scene around it), adds noise σ = 0.01, and restores it
with every boundary model, with the shipped prior and DDS. PSNR is over the whole observed field of view
— no border excluded — and, to show frames, separately over the 16-pixel border band and the interior.
"Input" is the blurred observation (for super-resolution, its bicubic upsampling).

Images: two held-out BSD colour images (``$RESTORE_DATA/cbsd432/val``) and skimage ``rocket`` and
matplotlib ``grace_hopper`` (restore_models.data NATURAL_VALIDATION): never sample_images/ or test sets.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

import restore
from restore.errors import RestoreError
from restore.operators import GaussianNoise
from restore.problem import Problem
from restore.tasks import get_task
from restore_models.data import data_root

from .run import load_prior, machine, sampler_generator, write_json

DATA_ROOT = data_root()  # restore_models.prepare writes the collections there
CBSD_VAL = os.path.join(DATA_ROOT, "cbsd432", "val")
IMAGES = (f"{CBSD_VAL}/105053.jpg", f"{CBSD_VAL}/145079.jpg", "skimage:rocket", "matplotlib:grace_hopper")
BOUNDARIES = ("valid", "reflect", "replicate", "zero", "circular")
CASES = {"deblur-gaussian-2": ("deblur", {"kernel": "gaussian:2.0"}),
         "sr-4x-bicubic": ("super-resolve", {"scale": 4, "method": "bicubic"})}
BAND = 16


def load(key: str, side: int) -> tuple[str, torch.Tensor]:
    """``(name, (1, 3, H, W))`` of an image path or a ``source:name`` key, centre-cropped to at most 2·side."""
    if os.sep in key:
        if not os.path.exists(key):
            sys.exit(f"validation image {key} is missing; it lives outside the repository (see DATA.md)")
        x, name = restore.read(key).data, os.path.splitext(os.path.basename(key))[0]
    else:
        from restore_models.data import load_natural

        x, name = torch.from_numpy(load_natural(key)).permute(2, 0, 1)[None].float(), key.split(":")[1]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    # a downscale first so that a 128² crop shows a scene, not a few pixels of texture
    scale = min(x.shape[-2], x.shape[-1]) / (2 * side)
    if scale > 1:
        x = torch.nn.functional.interpolate(x, scale_factor=1 / scale, mode="area")
    return name, x.clamp(0, 1)


def centre(x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    top, left = (x.shape[-2] - H) // 2, (x.shape[-1] - W) // 2
    return x[..., top:top + H, left:left + W]


def band_psnr(x: torch.Tensor, ref: torch.Tensor, band: int = BAND) -> dict[str, float]:
    """PSNR over the whole image, its ``band``-pixel border and the interior."""
    err = ((x.double() - ref.double()) ** 2).mean(dim=(0, 1))
    inner = torch.zeros_like(err, dtype=torch.bool)
    inner[band:-band, band:-band] = True

    def p(mse: torch.Tensor) -> float:
        return float(10 * torch.log10(1 / mse))

    return {"psnr": p(err.mean()), "psnr_border": p(err[~inner].mean()), "psnr_interior": p(err[inner].mean())}


def operator(task: str, options: dict, boundary: str):
    """The task's own operator for ``boundary`` (built through the task so the bench tests what users run)."""
    probe = restore.Image(torch.zeros(1, 3, 64, 64))
    setup = get_task(task).build(image=probe, noise=0.0, simulate=False, generator=torch.Generator(),
                                 boundary=boundary, **options)
    return setup.problem.operator


def run(side: int, steps: int, seed: int, images: tuple[str, ...], cases: tuple[str, ...] = tuple(CASES),
        boundaries: tuple[str, ...] = BOUNDARIES, log=print) -> dict:
    prior = load_prior("natural-rgb", 3, "natural")
    runs = []
    for key in images:
        name, photo = load(key, side)
        for case in cases:
            task, options = CASES[case]
            physics = operator(task, options, "valid")
            f = getattr(physics, "factor", 1)
            y_shape = (1, 3, side // f, side // f)
            scene = centre(photo, *physics.input_shape(y_shape)[-2:])
            noise = GaussianNoise(0.01)
            y = noise.sample(physics(scene.double()).float(), torch.Generator().manual_seed(seed))
            ref = physics.view(scene)
            start = y if f == 1 else torch.nn.functional.interpolate(y, scale_factor=f, mode="bicubic")
            entry = {"image": name, "case": case, "input": band_psnr(start.clamp(0, 1), ref)}
            for boundary in boundaries:
                op = operator(task, options, boundary)
                t0 = time.time()
                try:
                    sampler = restore.sampler("dds", steps=steps, **get_task(task).sampler_defaults.get("dds", {}))
                    # the run pads to the network's size multiple and crops back itself
                    x = sampler.run(prior, Problem(y, op, noise), generator=sampler_generator(seed)).x
                except RestoreError as exc:
                    entry[boundary] = {"skipped": str(exc)}
                    continue
                entry[boundary] = {**band_psnr(op.view(x).clamp(0, 1), ref), "seconds": round(time.time() - t0, 1)}
                log(f"{name:>14} {case:>18} {boundary:>9}: {entry[boundary]['psnr']:.2f} dB "
                    f"(input {entry['input']['psnr']:.2f}, border {entry[boundary]['psnr_border']:.2f})")
            runs.append(entry)
    return {"machine": machine(), "side": side, "steps": steps, "seed": seed, "noise": 0.01, "band": BAND,
            "prior": "natural-rgb", "sampler": "dds (task defaults)", "images": sorted({r["image"] for r in runs}),
            "runs": runs, "summary": summary(runs)}


def summary(runs: list[dict]) -> dict:
    """Mean PSNR gain over the input per case and boundary model (whole image, border band, interior)."""
    out = {}
    for case in sorted({r["case"] for r in runs}):
        rows = [r for r in runs if r["case"] == case]
        out[case] = {}
        for b in BOUNDARIES:
            ok = [r for r in rows if "psnr" in r.get(b, {})]
            if ok:
                out[case][b] = {f"gain_{k}": round(float(np.mean([r[b][k] - r["input"][k] for r in ok])), 2)
                                for k in ("psnr", "psnr_border", "psnr_interior")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default="bench/results/real_blur.json")
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=len(IMAGES), help="use the first N images")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--boundaries", default=",".join(BOUNDARIES), help="comma-separated boundary models")
    args = ap.parse_args(argv)
    cases, boundaries = tuple(args.cases.split(",")), tuple(args.boundaries.split(","))
    unknown = sorted(set(cases) - set(CASES)) + sorted(set(boundaries) - set(BOUNDARIES))
    if unknown:
        ap.error(f"unknown case or boundary: {', '.join(unknown)}")
    data = run(args.side, args.steps, args.seed, IMAGES[: args.images], cases, boundaries)
    write_json(args.output, data)
    for case, rows in data["summary"].items():
        for b, gains in rows.items():
            print(f"{case:>18} {b:>9}: " + ", ".join(f"{k} {v:+.2f} dB" for k, v in gains.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Single-coil MRI: the pnp-hqs schedule grid behind ``restore_mri.tasks.PNP_SINGLE_COIL`` and the DDS data weight
behind ``DDS_DEFAULTS`` (issue 20), on held-out BSD400 validation crops that are not bench.medical's images.

Images: ``$RESTORE_DATA/bsd400/val`` (180² gray crops held out of every prior's training; bench.medical's photos
are other BSD images, from cbsd432/val), resized to 128² as bench.medical does. Each row runs the MRI task's
``build`` with ``--simulate --coils 1`` (noiseless, random fastMRI column mask) and the sampler with the task's
defaults for that sampler, the single-coil overrides and then the row's options; TV is the best of
bench.medical's grid per image. Writes the per-image PSNR and the mean.

    python -m bench.mri_single_tune                                  # the default grid, 4x
    python -m bench.mri_single_tune --cases mri-1c-8x --rows default single natural-gray
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from .medical import CASES, TV_GRID, run_one
from .run import ROOT, machine, write_json

VAL = os.path.join(os.environ.get("RESTORE_DATA", os.path.join(ROOT, "data")), "bsd400", "val")
IMAGES = ("test_040", "test_120", "test_200", "test_280", "test_320", "test_360")
OLD = {"steps": 8, "sigma_start": 49 / 255}  # DPIR's schedule, the default before the single-coil override

# label -> (sampler, prior, options over the task defaults + single-coil overrides)
ROWS = {
    "default": ("pnp-hqs", None, OLD),
    "start-0.2": ("pnp-hqs", None, {**OLD, "sigma_start": 0.2}),
    "start-0.5": ("pnp-hqs", None, {**OLD, "sigma_start": 0.5}),
    "steps-12": ("pnp-hqs", None, {"steps": 12}),
    "steps-16": ("pnp-hqs", None, {"steps": 16}),
    "single": ("pnp-hqs", None, {}),
    "steps-40": ("pnp-hqs", None, {"steps": 40}),
    "start-1.0": ("pnp-hqs", None, {"sigma_start": 1.0}),
    "lam-0.05": ("pnp-hqs", None, {"lam": 0.05}),
    "lam-1": ("pnp-hqs", None, {"lam": 1.0}),
    "floor-2": ("pnp-hqs", None, {"sigma_floor": 2 / 255}),
    "floor-5": ("pnp-hqs", None, {"sigma_floor": 5 / 255}),
    "natural-gray-default": ("pnp-hqs", "natural-gray", OLD),
    "natural-gray-12": ("pnp-hqs", "natural-gray", {"steps": 12}),
    "natural-gray": ("pnp-hqs", "natural-gray", {}),
    **{f"dds-gamma-{g:g}": ("dds", None, {"gamma": g}) for g in (1.0, 3.0, 10.0, 30.0, 100.0)},
}


def load(name: str, size: int) -> torch.Tensor:
    from PIL import Image

    path = os.path.join(VAL, name + ".png")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: set RESTORE_DATA to the folder holding bsd400/val")
    x = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255)[None, None]
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)


def write(args, runs: list[dict]) -> list[dict]:
    """Write the runs and their mean PSNR per case and row to ``args.output``; returns the summary."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        groups.setdefault((r["case"], r["row"]), []).append(r["psnr"])
    summary = [{"case": c, "row": w, "images": len(v), "psnr": float(np.mean(v))} for (c, w), v in groups.items()]
    write_json(args.output, {"machine": machine(), "size": args.size, "images": args.images, "tv_grid": TV_GRID,
                             "summary": summary, "runs": runs})
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "mri_single_tune.json"))
    parser.add_argument("--images", nargs="+", default=list(IMAGES))
    parser.add_argument("--cases", nargs="+", choices=["mri-1c-4x", "mri-1c-8x"], default=["mri-1c-4x"])
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    from restore_mri.tasks import PNP_SINGLE_COIL

    runs: list[dict] = []
    summary: list[dict] = []
    for case in args.cases:
        kind, options = CASES[case]
        for name in args.images:
            image = load(name, args.size)
            tv = max(run_one(kind, options, image, "tv", overrides={"lam": lam})["psnr"] for lam in TV_GRID[kind])
            runs.append({"case": case, "image": name, "row": "tv-tuned", "psnr": tv})
            for row in args.rows:
                sampler, prior, extra = ROWS[row]
                overrides = {**(PNP_SINGLE_COIL if sampler == "pnp-hqs" else {}), **extra}
                r = run_one(kind, options, image, "diffusion", sampler=sampler, overrides=overrides, prior_name=prior)
                runs.append({"case": case, "image": name, "row": row, "prior": r["prior"], "config": r["config"],
                             "psnr": r["psnr"], "seconds": r["seconds"]})
                print(f"{case} {name} {row:22s} {r['psnr']:6.2f} dB {r['seconds']:5.1f} s", file=sys.stderr, flush=True)
            summary = write(args, runs)  # after every image, so that an interrupted grid keeps what it measured
    for s in summary:
        print(f"{s['case']:10s} {s['row']:22s} {s['psnr']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

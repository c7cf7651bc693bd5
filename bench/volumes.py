"""3D benchmark (issues 8, 20): ``dds-3d`` (slices coupled by z-TV) against slice-wise DDS on a Shepp–Logan
volume, random ellipses or a real-slice volume, sparse view and limited angle, with the default medical prior.

    python -m bench.volumes [--phantom shepp-logan|ellipses|dipy-s0] [--size 64] [--depth D] [--steps 50]
                            [--views 8] [--limited-angle 90] [-o bench/results/volumes.json]

``dipy-s0``: the 10 consecutive real brain slices (128², b=0 diffusion MRI) of dipy's ``S0_10slices.nii.gz``
(BSD-3; in the dipy wheel; not in any prior's training data), robust min-max to [0, 1], resized to ``--size``
and placed inside the scanner disk. Read from the installed ``dipy`` package, else from the folder
``$RESTORE_DIPY_DATA`` (e.g. the wheel's ``dipy/data/files`` unzipped: ``pip download --no-deps dipy``).

The z-TV weights were chosen on random-ellipse volumes (``--phantom ellipses``, seeds 5 and 7; see
``DDS3DConfig``), not on the Shepp–Logan phantom.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

import restore
from restore.metrics import psnr, ssim
from restore.phantoms import random_ellipses_3d, shepp_logan_3d
from restore.problem import Problem
from restore.volumes import SliceOperator

from .memory import peak_rss
from .run import ROOT, machine, write_json


def dipy_s0(size: int) -> torch.Tensor:
    """dipy's real 10-slice brain volume ``(1, 1, 10, size, size)`` in [0, 1], inside the scanner disk."""
    import nibabel as nib
    import numpy as np

    try:
        from dipy.data import get_fnames

        path = get_fnames("S0_10slices")
    except ImportError:
        path = os.path.join(os.environ.get("RESTORE_DIPY_DATA", ""), "S0_10slices.nii.gz")
    if not os.path.exists(path):
        raise SystemExit(f"dipy's S0_10slices.nii.gz not found ({path}): install dipy or set RESTORE_DIPY_DATA")
    vol = np.asarray(nib.load(path).get_fdata(), dtype=np.float64)[..., 0].transpose(2, 1, 0)  # (D, H, W)
    lo, hi = np.percentile(vol, 0.5), np.percentile(vol, 99.5)
    v = torch.from_numpy(np.clip((vol - lo) / (hi - lo), 0, 1)).float()[:, None]
    v = torch.nn.functional.interpolate(v, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    c = (torch.arange(size) - (size - 1) / 2) / (size / 2)
    disk = ((c[:, None] ** 2 + c[None, :] ** 2) <= 1).float()
    return (v.clamp(0, 1) * disk)[:, 0][None, None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantom", choices=("shepp-logan", "ellipses", "dipy-s0"), default="shepp-logan")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--depth", type=int, default=None, help="slices (default: --size)")
    parser.add_argument("--seed", type=int, default=7, help="random-ellipse seed")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--limited-angle", type=float, default=90.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "volumes.json"))
    args = parser.parse_args(argv)
    shape = (args.depth or args.size, args.size, args.size)
    if args.phantom == "dipy-s0":
        x = dipy_s0(args.size)
        shape = tuple(x.shape[2:])
    elif args.phantom == "shepp-logan":
        x = shepp_logan_3d(shape)
    else:
        x = random_ellipses_3d(shape, generator=torch.Generator().manual_seed(args.seed)).reshape((1, 1) + shape)
    geometries = {f"{args.views} views": {"views": args.views},
                  f"limited angle {args.limited_angle:g}°": {"limited_angle": args.limited_angle}}
    prior_name = restore.default_prior_name(1, "medical")
    prior = restore.prior(prior_name, channels=1, domain="medical")
    runs = []
    for geometry, kw in geometries.items():
        op = SliceOperator(restore.operator("ct-parallel", size=args.size, **kw), chunk=args.chunk)
        problem = Problem(op(x), op)
        for method, cfg in (("slice-wise DDS", {"slicewise": True}), ("dds-3d (z-TV)", {})):
            sampler = restore.sampler("dds-3d", steps=args.steps, chunk=args.chunk, **cfg)
            with peak_rss() as mem:
                result = sampler.run(prior, problem, generator=torch.Generator().manual_seed(0))
            runs.append({"geometry": geometry, "method": method, "psnr": psnr(result.x, x), "ssim": ssim(result.x, x),
                         "nfe": result.nfe, "seconds": result.seconds, "peak_mb": mem["peak_mb"]})
            print(runs[-1], file=sys.stderr, flush=True)
    data = {"machine": machine(), "phantom": args.phantom, "shape": list(shape), "views": args.views,
            "limited_angle": args.limited_angle, "size": args.size, "steps": args.steps, "chunk": args.chunk, "prior": prior_name,
            "runs": runs}
    write_json(args.output, data)
    for r in runs:
        print(f"| {r['geometry']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

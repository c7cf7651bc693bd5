"""3D benchmark (issues 8, 20): ``dds-3d`` (slices coupled by z-TV) against slice-wise DDS, and slice-wise
plug-and-play HQS (``restore ct``'s volume default), on a Shepp–Logan volume, random ellipses or a real-slice
volume, sparse view and limited angle, with the default medical prior.

    python -m bench.volumes [--phantom shepp-logan|ellipses|dipy-s0|dipy-piesno] [--size 64] [--depth D]
                            [--steps 50] [--views 8 [--views 30]] [--limited-angle 90] [-o bench/results/volumes.json]

Real-slice volumes from the dipy wheel (BSD-3; in no prior's training data), robust min-max to [0, 1], slices
resized to ``--size`` and placed inside the scanner disk:
``dipy-s0``: ``S0_10slices.nii.gz``, 10 consecutive brain slices (128², b=0 diffusion MRI);
``dipy-piesno``: ``test_piesno.nii.gz``, 14 consecutive slices (96², 1 mm isotropic), the first volume.
Read from the installed ``dipy`` package, else from the folder ``$RESTORE_DIPY_DATA`` (e.g. the wheel's
``dipy/data/files`` unzipped: ``pip download --no-deps dipy``).

The z-TV weights were chosen on random-ellipse volumes (``--phantom ellipses``, seeds 5 and 7; see
``DDS3DConfig``), not on the Shepp–Logan phantom or the real volumes.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

import restore
from restore.metrics import psnr, ssim
from restore.phantoms import random_ellipses_3d, shepp_logan_3d
from restore.operators import GaussianNoise
from restore.problem import Problem
from restore.tasks import get_task
from restore.volumes import SliceOperator

from .memory import peak_rss
from .run import ROOT, machine, write_json


DIPY_VOLUMES = {"dipy-s0": "S0_10slices.nii.gz", "dipy-piesno": "test_piesno.nii.gz"}


def dipy_volume(name: str, size: int) -> torch.Tensor:
    """A real volume of the dipy wheel ``(1, 1, D, size, size)`` in [0, 1], inside the scanner disk."""
    import nibabel as nib
    import numpy as np

    from restore_models.data import dipy_file

    try:
        path = dipy_file(DIPY_VOLUMES[name])
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from None
    vol = np.asarray(nib.load(path).get_fdata(), dtype=np.float64)
    vol = vol.reshape(vol.shape[:3] + (-1,))[..., 0].transpose(2, 1, 0)  # (D, H, W) of the first volume
    lo, hi = np.percentile(vol, 0.5), np.percentile(vol, 99.5)
    v = torch.from_numpy(np.clip((vol - lo) / (hi - lo), 0, 1)).float()[:, None]
    v = torch.nn.functional.interpolate(v, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    c = (torch.arange(size) - (size - 1) / 2) / (size / 2)
    disk = ((c[:, None] ** 2 + c[None, :] ** 2) <= 1).float()
    return (v.clamp(0, 1) * disk)[:, 0][None, None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantom", choices=("shepp-logan", "ellipses", *DIPY_VOLUMES), default="shepp-logan")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--depth", type=int, default=None, help="slices (default: --size)")
    parser.add_argument("--seed", type=int, default=7, help="random-ellipse seed")
    parser.add_argument("--views", type=int, action="append", help="sparse-view counts (repeatable; default 8)")
    parser.add_argument("--limited-angle", type=float, default=90.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.0,
                        help="Gaussian sinogram noise, std as a fraction of the sinogram's maximum (restore ct --noise)")
    parser.add_argument("--methods", default="slice-wise DDS,dds-3d (z-TV),slice-wise pnp-hqs (default)",
                        help="comma-separated subset of the three methods")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "volumes.json"))
    args = parser.parse_args(argv)
    shape = (args.depth or args.size, args.size, args.size)
    args.views = args.views or [8]
    if args.phantom in DIPY_VOLUMES:
        x = dipy_volume(args.phantom, args.size)
        shape = tuple(x.shape[2:])
    elif args.phantom == "shepp-logan":
        x = shepp_logan_3d(shape)
    else:
        x = random_ellipses_3d(shape, generator=torch.Generator().manual_seed(args.seed)).reshape((1, 1) + shape)
    geometries = {f"{v} views": {"views": v} for v in args.views}
    if args.limited_angle > 0:  # 0: sparse view only
        geometries[f"limited angle {args.limited_angle:g}°"] = {"limited_angle": args.limited_angle}
    prior_name = restore.default_prior_name(1, "medical")
    prior = restore.prior(prior_name, channels=1, domain="medical")
    dds3d = get_task("ct").sampler_defaults.get("dds-3d", {})  # what `restore ct --sampler dds-3d` runs
    runs = []
    for geometry, kw in geometries.items():
        op = SliceOperator(restore.operator("ct-parallel", size=args.size, **kw), chunk=args.chunk)
        y = op(x)
        sigma = args.noise * float(y.abs().max())
        if sigma > 0:
            y = y + sigma * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        problem = Problem(y, op, GaussianNoise(sigma))
        methods = (("slice-wise DDS", restore.sampler("dds-3d", **dds3d, steps=args.steps, chunk=args.chunk,
                                                      slicewise=True)),
                   ("dds-3d (z-TV)", restore.sampler("dds-3d", **dds3d, steps=args.steps, chunk=args.chunk)),
                   ("slice-wise pnp-hqs (default)", restore.sampler("pnp-hqs", chunk=args.chunk)))
        for method, sampler in (m for m in methods if m[0] in args.methods.split(",")):
            with peak_rss() as mem:
                result = sampler.run(prior, problem, generator=torch.Generator().manual_seed(0))
            runs.append({"geometry": geometry, "method": method, "psnr": psnr(result.x, x), "ssim": ssim(result.x, x),
                         "nfe": result.nfe, "seconds": result.seconds, "peak_mb": mem["peak_mb"]})
            print(runs[-1], file=sys.stderr, flush=True)
    data = {"machine": machine(), "phantom": args.phantom, "shape": list(shape), "views": args.views,
            "limited_angle": args.limited_angle, "noise": args.noise, "size": args.size, "steps": args.steps, "chunk": args.chunk, "prior": prior_name,
            "runs": runs}
    write_json(args.output, data)
    for r in runs:
        print(f"| {r['geometry']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""3D benchmark (issue 8): ``dds-3d`` (slices coupled by z-TV) against slice-wise DDS on a Shepp–Logan volume,
sparse view and limited angle, with the default medical prior.

    python -m bench.volumes [--phantom shepp-logan|ellipses] [--size 64] [--depth D] [--steps 50]
                            [--views 8] [--limited-angle 90] [-o bench/results/volumes.json]

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantom", choices=("shepp-logan", "ellipses"), default="shepp-logan")
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
    if args.phantom == "shepp-logan":
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
    data = {"machine": machine(), "phantom": args.phantom, "shape": list(shape), "size": args.size, "steps": args.steps, "chunk": args.chunk, "prior": prior_name,
            "runs": runs}
    write_json(args.output, data)
    for r in runs:
        print(f"| {r['geometry']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CT benchmark (issue 8): FBP / TV / DDS at 8, 30, 60 parallel-beam views on a 256² Shepp–Logan phantom and on
pydicom's CT_small.dcm (128², HU window [-1024, 1500] mapped to [0, 1]); prints one JSON line per run.

Usage: .venv/bin/python bench/ct_medical.py [phantom|ct_small] [--dds-steps N]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import restore
from restore.metrics import psnr, ssim
from restore.phantoms import shepp_logan_2d
from restore.problem import Problem


def ct_small() -> torch.Tensor:
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return torch.from_numpy(np.clip((hu + 1024) / 2524, 0, 1))[None, None].float()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image", choices=["phantom", "ct_small"])
    parser.add_argument("--dds-steps", type=int, default=50)
    parser.add_argument("--views", type=int, nargs="+", default=[8, 30, 60])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    x = shepp_logan_2d(256) if args.image == "phantom" else ct_small()
    prior_name = restore.api.default_prior_name(1, "medical")
    prior = restore.prior(prior_name, channels=1, domain="medical")
    for views in args.views:
        op = restore.operator("ct-parallel", size=x.shape[-1], views=views)
        problem = Problem(op(x), op)
        for method, sampler in (("fbp", restore.sampler("ct-fbp")), ("tv", restore.sampler("ct-tv")),
                                ("dds", restore.sampler("dds", steps=args.dds_steps, noisy="no"))):
            start = time.perf_counter()
            result = sampler.run(prior, problem, generator=torch.Generator().manual_seed(0))
            seconds = time.perf_counter() - start
            print(json.dumps({"image": args.image, "views": views, "method": method, "prior": prior_name,
                              "psnr": round(psnr(result.x, x), 2), "ssim": round(ssim(result.x, x), 3),
                              "seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()

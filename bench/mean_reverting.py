"""MRS vs IR-SDE on held-out crops with a shipped mean-reverting prior (issue 7 measurement).

    python -m bench.mean_reverting [--prior mr-denoise-25] [--crops 6] [--size 96] [-o bench/results/mean_reverting.json]

Crops come from the validation images of ``restore_models.data.NATURAL_VALIDATION`` (never trained on),
Gaussian noise σ = 25/255 is added with a fixed seed, and every sampler runs on the same batch with the
same seed. Times are wall clock on a shared CPU: compare ratios, not absolute values.
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
from restore.operators import GaussianNoise, Identity

from .baselines import denoise_baselines
from .run import machine

RUNS = (("mrs", {"steps": 5}), ("mrs", {"steps": 10}), ("mrs", {"steps": 20}),
        ("mrs", {"steps": 10, "solver": "sde"}), ("ir-sde", {"steps": 100}))
#: The posterior mean that the draws above scatter around, estimated from 8 of them, and the one-step
#: posterior mean of the general natural-rgb prior (one call and the x8 average): what a PSNR comparison with
#: CBM3D should be read against, since a posterior draw is not an MMSE estimate.
MEAN_OF_DRAWS = ("mrs", {"steps": 5}, 8)
MMSE_REFERENCES = (("natural-rgb", {"transforms": 1}), ("natural-rgb", {"transforms": 8}))


def x0_at_the_noisiest_level(prior, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """What ``mrs --steps 1`` returned before the samplers refused one step: the network's x̂0 at the first
    time of MRS's grid, from the start state ``μ + λ z``."""
    from restore.samplers.mrs import MRSConfig, time_grid

    t = time_grid(prior.schedule, 1, MRSConfig.lambda_min, "linspace")[0]
    mu = prior.to_model(y)
    x = mu + prior.schedule.lam * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    with torch.no_grad():
        return prior.from_model(prior.x0(x, torch.full((y.shape[0],), float(t)), mu)).clamp(0, 1)


def held_out_crops(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``(n, 3, size, size)`` crops in [0, 1], spread over the validation images."""
    from restore_models.data import NATURAL_VALIDATION, load_natural

    rng = np.random.default_rng(seed)
    images = [load_natural(k) for k in NATURAL_VALIDATION]
    crops = []
    for i in range(n):
        im = images[i % len(images)]
        y, x = rng.integers(0, im.shape[0] - size + 1), rng.integers(0, im.shape[1] - size + 1)
        crops.append(torch.from_numpy(np.ascontiguousarray(im[y:y + size, x:x + size].transpose(2, 0, 1))))
    return torch.stack(crops).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="mr-denoise-25")
    parser.add_argument("--crops", type=int, default=6)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--noise", type=float, default=25 / 255)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clean = held_out_crops(args.crops, args.size)
    y = clean + args.noise * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    prior = restore.prior(args.prior)
    problem = restore.Problem(y, Identity())
    rows = [{"method": "noisy input", "nfe": 0, "psnr": psnr(y.clamp(0, 1), clean), "ssim": ssim(y.clamp(0, 1), clean),
             "seconds": 0.0}]
    start = time.perf_counter()
    one = x0_at_the_noisiest_level(prior, y, torch.Generator().manual_seed(0))
    rows.append({"method": "x0 at the noisiest level (what 1 step returned; now refused)", "nfe": 1,
                 "psnr": psnr(one, clean), "ssim": ssim(one, clean), "seconds": time.perf_counter() - start})
    for name, cfg in RUNS:
        sampler = restore.sampler(name, **cfg)
        start = time.perf_counter()
        with torch.no_grad():
            res = sampler.run(prior, problem, generator=torch.Generator().manual_seed(0))
        rows.append({"method": f"{name} " + " ".join(f"{k}={v}" for k, v in cfg.items()), "nfe": res.nfe,
                     "psnr": psnr(res.x, clean), "ssim": ssim(res.x, clean),
                     "seconds": time.perf_counter() - start})
    name, cfg, n = MEAN_OF_DRAWS
    start = time.perf_counter()
    with torch.no_grad():
        draws = restore.sampler(name, **cfg).run(prior, restore.Problem(y.repeat(n, 1, 1, 1), Identity()),
                                                 generator=torch.Generator().manual_seed(0)).x
    mean = draws.reshape((n,) + tuple(y.shape)).mean(0)
    rows.append({"method": f"mean of {n} draws of {name} " + " ".join(f"{k}={v}" for k, v in cfg.items()),
                 "nfe": n * cfg["steps"], "psnr": psnr(mean, clean), "ssim": ssim(mean, clean),
                 "seconds": time.perf_counter() - start})
    references = {name: restore.prior(name) for name in dict(MMSE_REFERENCES)}
    for prior_name, cfg in MMSE_REFERENCES:
        start = time.perf_counter()
        with torch.no_grad():
            res = restore.sampler("tweedie", **cfg).run(
                references[prior_name], restore.Problem(y, Identity(), GaussianNoise(args.noise)),
                generator=torch.Generator().manual_seed(0))
        rows.append({"method": f"tweedie transforms={cfg['transforms']} ({prior_name})", "nfe": res.nfe,
                     "psnr": psnr(res.x, clean), "ssim": ssim(res.x, clean), "seconds": time.perf_counter() - start})
    # the classical reference the issue compares with (optional: bm3d has a non-commercial licence)
    start = time.perf_counter()
    per_crop = [denoise_baselines(im[None], args.noise) for im in y]
    if "bm3d" in per_crop[0]:
        out = torch.cat([b["bm3d"] for b in per_crop])
        rows.append({"method": "CBM3D (bm3d.bm3d_rgb)", "nfe": 0, "psnr": psnr(out, clean), "ssim": ssim(out, clean),
                     "seconds": time.perf_counter() - start})
    print(f"{args.crops} crops {args.size}x{args.size} of the validation images, sigma {args.noise * 255:.0f}/255, "
          f"prior {args.prior}")
    print(f"{'method':32s} {'NFE':>4s} {'PSNR':>7s} {'SSIM':>6s} {'seconds':>8s}")
    for r in rows:
        print(f"{r['method']:32s} {r['nfe']:4d} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['seconds']:8.1f}")
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as f:
            json.dump({"prior": args.prior, "crops": args.crops, "size": args.size, "noise": args.noise,
                       "threads": args.threads, "machine": machine(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

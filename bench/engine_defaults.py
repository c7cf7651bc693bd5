"""Evidence for two engine defaults: DDS's ``gamma_rule=snr`` on image tasks and DPS's ζ rescaling.

    python -m bench.engine_defaults [--prior stationary-gaussian] -o bench/results/engine_defaults.json

64×64 crop of sample_images/coffee.png, simulated degradations (noise seed 0; the samplers draw from
``bench.run.sampler_generator(0)``), 20 DDS steps / 50 DPS steps.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

import restore
from restore.metrics import psnr
from restore.tasks import get_task

from .run import sampler_generator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = (("deblur", {"kernel": "gaussian:2.0"}, 0.01), ("super-resolve", {"scale": 4}, 0.01),
         ("denoise", {}, 25 / 255))
DDS_VARIANTS = {"constant gamma=1 (code)": {"gamma_rule": "constant"}, "gamma_rule=snr": {"gamma_rule": "snr"},
                "noiseless branch": {"noisy": "no"}}
DPS_VARIANTS = {"per-step zeta=0.3 (code)": {"zeta_reference_steps": None}, "zeta x 1000/steps": {}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prior", default="stationary-gaussian")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "engine_defaults.json"))
    args = parser.parse_args(argv)
    img = restore.read(os.path.join(ROOT, "sample_images", "coffee.png"))
    img = restore.Image(img.data[..., 64:128, 96:160].contiguous(), img.meta)
    prior = restore.prior(args.prior, channels=3, device="cpu")
    rows = []
    for case, opts, noise in CASES:
        setup = get_task(case).build(image=img, noise=noise, simulate=True, generator=torch.Generator().manual_seed(0),
                                     **opts)
        runs = [("dds", 20, name, cfg) for name, cfg in DDS_VARIANTS.items()]
        if case != "denoise":
            runs += [("dps", 50, name, cfg) for name, cfg in DPS_VARIANTS.items()]
        for sampler, steps, name, cfg in runs:
            result = restore.sampler(sampler, steps=steps, **cfg).run(prior, setup.problem,
                                                                       generator=sampler_generator(0))
            x = result.x if setup.view is None else setup.view(result.x)  # `valid` boundary: the observed view
            rows.append({"task": case, "sampler": sampler, "steps": steps, "variant": name,
                         "psnr": round(psnr(x, setup.reference), 2)})
            print(rows[-1], flush=True)
    with open(args.output, "w") as f:
        json.dump({"prior": args.prior, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

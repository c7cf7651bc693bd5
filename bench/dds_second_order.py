"""Why DDS keeps its first-order step (issue 17): other ways of making it second order, at equal NFE.

    python -m bench.dds_second_order [--crops 4] [--nfe 10,25] [-o bench/results/dds_second_order.json]

``DDS(step="dpm-solver++")`` (in ``bench.fast_solvers``' ``dds_deblur``) extrapolates the data-consistent
estimates x̃ as DPM-Solver++(2M) does, ``D = x̃_k + (x̃_k - x̃_p) / (2 r)``. Here the extrapolation takes other
inputs, all on DDS's own re-noising (the deblur task's options: γ rule ``snr``, 10 CG iterations, η′ 0.95,
quadratic spacing), so that only the place of the second-order term changes:

* ``project-extrapolated``: extrapolate the network's x0̂ (which follow the prior's trajectory, without the
  CG corrections) and project that: ``x̃ = CG(x0̂_k + c (x0̂_k - x0̂_p))``, ``c = 1 / (2 r)``;
* ``project-extrapolated-half``: the same with ``c = 1 / (4 r)``;
* ``correct-projected``: the prior's curvature added after the projection, ``x̃ = CG(x0̂_k) + c (x0̂_k - x0̂_p)``.

Same crops, noise and seeds as ``dds_deblur`` (Gaussian blur σ 2, noise 0.01, 64² crops of cbsd432/val,
``natural-rgb``).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

import restore
from restore.metrics import psnr
from restore.samplers.dds import DDS, DDSConfig
from restore.samplers.dpm_solver_pp import lam
from restore.samplers.steps import dds_renoise
from restore.tasks import get_task

from .fast_solvers import load_crops
from .run import ROOT, machine, write_json


@dataclass(frozen=True)
class SecondOrderDDSConfig(DDSConfig):
    extrapolate: Literal["project-extrapolated", "correct-projected"] = "project-extrapolated"
    factor: float = 1.0  # 1: DPM-Solver++(2M)'s c = 1 / (2 r)


class SecondOrderDDS(DDS):
    Config = SecondOrderDDSConfig

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        previous = None
        for i, (k, j) in enumerate(pairs):
            with torch.no_grad():
                eps, x0 = view.predict(x, k)
                c = 0.0
                if previous is not None and j > 0:
                    h = lam(view.schedule, j) - lam(view.schedule, k)
                    c = cfg.factor * 0.5 * h / (lam(view.schedule, k) - lam(view.schedule, previous[0]))
                curvature = c * (x0 - previous[1]) if c else 0.0
                if cfg.extrapolate == "project-extrapolated":
                    x_tilde = self.data_step(view, x0 + curvature, k)
                else:
                    x_tilde = self.data_step(view, x0, k) + curvature
                previous = (k, x0)
                x = dds_renoise(view.schedule, x_tilde, eps, k, j, cfg.eta, cfg.renoise,
                                lambda: view.noise_like(x, generator))
            callback(i + 1, len(pairs), view.nfe)
        return x, {}


VARIANTS = (("ddim step (DDS)", {}), ("dpm-solver++ step (DDS, x̃ extrapolated)", {"step": "dpm-solver++"}),
            ("project-extrapolated", {"extrapolate": "project-extrapolated"}),
            ("project-extrapolated-half", {"extrapolate": "project-extrapolated", "factor": 0.5}),
            ("correct-projected", {"extrapolate": "correct-projected"}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=4)
    parser.add_argument("--nfe", default="10,25", help="steps (NFE) per run, comma-separated")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "dds_second_order.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from restore_imaging.blur import GaussianBlur

    x = load_crops(args.crops, 64)
    blur, sigma_y = GaussianBlur(2.0), 0.01
    y = blur(x) + sigma_y * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    problem = restore.Problem(y, blur, restore.operators.GaussianNoise(sigma_y))
    prior = restore.prior("natural-rgb", device="cpu")
    task_options = {k: v for k, v in get_task("deblur").sampler_defaults["dds"].items() if k != "steps"}
    rows = []
    for steps in (int(s) for s in args.nfe.split(",")):
        for label, opts in VARIANTS:
            cls = DDS if "extrapolate" not in opts else SecondOrderDDS
            result = cls(steps=steps, **task_options, **opts).run(prior, problem,
                                                                 generator=torch.Generator().manual_seed(0))
            p = [float(psnr(result.x[i:i + 1], x[i:i + 1])) for i in range(x.shape[0])]
            rows.append({"variant": label, "nfe": result.nfe, "options": {**task_options, **opts},
                         "psnr_mean": float(np.mean(p)), "psnr": p})
            print(f"{label:45s} {result.nfe:3d} NFE  {np.mean(p):.2f} dB", flush=True)
    write_json(args.output, {"task": "gaussian blur sigma 2, noise 0.01, 64x64 centre crops of cbsd432/val",
                             "prior": "natural-rgb", "crops": args.crops, "rows": rows, "torch_threads": 1,
                             "machine": machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

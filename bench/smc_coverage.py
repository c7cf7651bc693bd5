"""Issue 19: calibration of the per-pixel posterior std — twisted SMC against DPS and DDS draws.

A 64×64 grayscale crop of held-out validation images (``$RESTORE_DATA/bsd400/val``, never a standard test
set) is blurred (Gaussian, σ = 2 px; circular boundary unless `--boundary`) with white noise, and restored with the shipped ``natural-gray``
prior by ``smc`` (one run, ``--particles`` weighted particles), ``dps --samples N`` and ``dds --samples N``
(N independent runs). ``smc`` rows: ``smc`` (the exact Gaussian transition, exact weights), ``smc-gradient``
(the TDS paper's gradient proposal, exact weights) and ``smc-unweighted`` (the Gaussian transition with
``weight_exponent=0``: the approximate mode, N independent guided draws). For each method: PSNR of the
(weighted) posterior mean, coverage of the ±2 std per-pixel band (fraction of true pixels inside; calibrated
≈ 0.95), mean std, NFE, VJPs and CPU seconds (``time.process_time``: the machine is shared, wall time is
meaningless); for SMC also the ESS trace (minimum, median, final) and the number of resampling steps.

Usage: .venv/bin/python -m bench.smc_coverage [--images test_020.png,test_100.png] [--particles 16]
       [--steps 40] [--noise 0.02] [--methods smc,smc-gradient,smc-unweighted,dps,dds]
       [--json bench/results/smc_coverage.json]
An smc method may carry options after a colon, ``;``-separated: ``--methods "smc:tau2=1;steps=100"``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

import restore
from restore.metrics import psnr
from restore.samplers.particles import weighted_moments
from restore_models.data import data_root

from .run import machine, write_json

DATA_ROOT = data_root()  # restore_models.prepare writes the collections there
VAL_DIR = os.path.join(DATA_ROOT, "bsd400", "val")
#: smc variants: the sampler's options
SMC_VARIANTS = {"smc": {"proposal": "gaussian"}, "smc-gradient": {"proposal": "gradient"},
                "smc-unweighted": {"proposal": "gaussian", "weight_exponent": 0.0}}


def crop(path: str, size: int) -> torch.Tensor:
    img = restore.read(path).data
    img = img if img.ndim == 4 else img.unsqueeze(0)
    img = img[:, :1].double() if img.shape[1] >= 1 else img
    h, w = img.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return img[..., top:top + size, left:left + size].float()


def smc_options(method: str) -> dict | None:
    """The smc options of a method name (``smc-gradient``, ``smc:tau2=1;steps=100``), ``None`` for other samplers."""
    name, _, extra = method.partition(":")
    if name not in SMC_VARIANTS:
        return None
    options = dict(SMC_VARIANTS[name])
    for item in filter(None, extra.split(";")):
        key, _, value = item.partition("=")
        for parse in (int, float, str):
            try:
                options[key] = parse(value)
                break
            except ValueError:
                continue
    return options


def coverage(mean: torch.Tensor, std: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((truth - mean).abs() <= 2 * std).double().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="test_020.png,test_100.png")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--particles", type=int, default=16)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--methods", default="smc,smc-gradient,smc-unweighted,dps,dds")
    ap.add_argument("--boundary", default="circular", help="blur boundary model (valid: the deblur task's default)")
    ap.add_argument("--json", default="bench/results/smc_coverage.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not os.path.isdir(VAL_DIR):
        raise SystemExit(f"validation images not found at {VAL_DIR}; this benchmark needs the held-out BSD crops")
    prior = restore.prior("natural-gray", channels=1)
    op = restore.operator("gaussian-blur", sigma=2.0, boundary=args.boundary)
    rows = []
    for name in args.images.split(","):
        truth = crop(os.path.join(VAL_DIR, name), args.size)
        g = torch.Generator().manual_seed(0)
        y = restore.GaussianNoise(args.noise).sample(op(truth), g)
        problem = restore.Problem(y=y, operator=op, noise=restore.GaussianNoise(args.noise))
        for method in args.methods.split(","):
            gen = torch.Generator().manual_seed(1)
            start = time.process_time()
            nfe = vjp = 0
            options = smc_options(method)
            if options is not None:
                sampler = restore.sampler("smc", **{"steps": args.steps, "particles": args.particles, **options})
                r = sampler.run(prior, problem, generator=gen)
                mean, std = weighted_moments(r.extras["particles"], r.extras["weights"])
                nfe, vjp, diag = r.nfe, r.vjp, r.extras["diagnostics"]
                trace = [e[0] for e in diag["ess"]]
                tau2 = sampler.config.tau2
                extra = {"options": {**options, "tau2": tau2 if tau2 != float("inf") else "inf",
                                     "ess_threshold": sampler.config.ess_threshold},
                         "ess_min": round(min(trace), 2), "ess_median": round(statistics.median(trace), 2),
                         "ess_final": round(trace[-1], 2), "resampling_steps": len(diag["resampled_steps"]),
                         "log_z": None if diag["log_z"] is None else round(diag["log_z"][0], 2)}
            else:
                sampler = restore.sampler(method, steps=args.steps)
                draws = []
                for _ in range(args.particles):
                    r = sampler.run(prior, problem, generator=gen)
                    draws.append(r.x)
                    nfe += r.nfe
                    vjp += r.vjp
                stack = torch.stack(draws)
                mean, std = stack.mean(0), stack.std(0)
                extra = {}
            cpu = time.process_time() - start
            row = {"image": name, "method": method, "draws": args.particles, "steps": sampler.config.steps, "nfe": nfe, "vjp": vjp,
                   "psnr_mean": round(psnr(mean.clamp(0, 1), truth), 2), "coverage_2std": round(coverage(mean, std, truth), 4),
                   "mean_std": round(float(std.mean()), 4), "cpu_seconds": round(cpu, 1), **extra}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for method in args.methods.split(","):
        sel = [r for r in rows if r["method"] == method]
        summary[method] = {k: round(sum(r[k] for r in sel) / len(sel), 4)
                           for k in ("psnr_mean", "coverage_2std", "mean_std", "cpu_seconds")}
    out = {"benchmark": "smc_coverage", "data": f"{VAL_DIR} ({args.images}), centre {args.size}x{args.size} crops",
           "task": f"gaussian blur sigma 2 px ({args.boundary} boundary), noise {args.noise}", "prior": "natural-gray",
           "command": "python -m bench.smc_coverage " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
           "machine": machine(), "rows": rows, "mean": summary}
    write_json(args.json, out)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

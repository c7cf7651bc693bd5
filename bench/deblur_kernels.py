"""Deblurring default per kernel kind (issue 14): DiffPIR-50 (the deblur task's default) against pnp-hqs with
DPIR's 8 iterations and with the Gaussian default's 16, on Gaussian and motion blur, next to the best
classical method per image. pnp-hqs runs with the task's options (``PNP_HQS_IMAGING``, and
``GAUSSIAN_DEBLUR_OPTIONS`` on Gaussian kernels), as ``restore deblur --sampler pnp-hqs --steps N`` would.

    python -m bench.deblur_kernels [--images gray:8,rgb:6] [--side 96] [--cases deblur-gaussian]
        [--runs pnp-hqs:16] [-o bench/results/deblur_kernels.json]

Crops, noise (0.01), kernels and per-sampler options are those of ``bench.task_defaults`` (held-out
validation images, never the sample images or standard test sets). The margin of a run is its PSNR minus
the best of Wiener, unsupervised Wiener and Richardson–Lucy on the same image; the table is the mean margin.
``restore deblur`` uses the winner per kernel kind (``GAUSSIAN_DEBLUR_DEFAULT`` in restore_imaging.tasks).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from restore.metrics import psnr
from restore.tasks import get_task

from .run import ROOT, case_options, classical, machine, write_json
from .task_defaults import CASES, load_crops, run_one

CLASSICAL = ("wiener", "unsupervised-wiener", "richardson-lucy")
RUNS = (("diffpir", 50), ("pnp-hqs", 8), ("pnp-hqs", 16))


def best_classical(case, image) -> float:
    setup = get_task(case.task).build(image=image, noise=case.noise, simulate=True,
                                      generator=torch.Generator().manual_seed(0), **case_options(case, image))
    outputs = classical(case, setup)
    return max(psnr(outputs[m].clamp(0, 1), setup.reference) for m in CLASSICAL if m in outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="gray:8,rgb:6")
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--cases", default=",".join(c.name for c in CASES if c.task == "deblur"),
                        help="comma-separated deblurring cases of bench.task_defaults")
    parser.add_argument("--runs", default=",".join(f"{s}:{n}" for s, n in RUNS),
                        help="comma-separated sampler:steps, e.g. pnp-hqs:16")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "deblur_kernels.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    crops = load_crops(args.images, args.side)
    runs = [(spec.rpartition(":")[0], int(spec.rpartition(":")[2])) for spec in args.runs.split(",")]
    cases = [c for c in CASES if c.name in args.cases.split(",")]
    rows = []
    for case in cases:
        for name, image in crops:
            reference = best_classical(case, image)
            for sampler, steps in runs:
                run = run_one(case, image, sampler, steps, 0)
                rows.append({"case": case.name, "image": name, "prior": run["prior"], "sampler": sampler, "steps": steps,
                             "psnr": run["psnr"], "best_classical": reference, "margin": run["psnr"] - reference,
                             "nfe": run["nfe"], "cpu_seconds": run["cpu_seconds"]})
                print(rows[-1], file=sys.stderr, flush=True)
    summary = []
    for case in sorted({r["case"] for r in rows}):
        for sampler, steps in runs:
            margins = [r["margin"] for r in rows
                       if r["case"] == case and r["sampler"] == sampler and r["steps"] == steps]
            summary.append({"case": case, "sampler": sampler, "steps": steps, "images": len(margins),
                            "mean_margin": sum(margins) / len(margins)})
    write_json(args.output, {"machine": machine(), "images": args.images, "side": args.side, "rows": rows,
                             "summary": summary})
    print("| case | sampler | mean margin over the best classical (dB) |\n|---|---|---|")
    for s in summary:
        print(f"| {s['case']} | `{s['sampler']}` {s['steps']} | {s['mean_margin']:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DDS options on MRI and CT: the grid behind ``restore_mri.tasks.DDS_DEFAULTS`` and ``restore_ct.tasks.DDS_DEFAULTS``.

The imaging tasks' DDS options (``restore_imaging.tasks.DDS_IMAGING``: η′ = 0.95, quadratic spacing, 10 CG
steps, the SNR-faded data weight) were measured on photographs only; this grid tries them on the MRI and CT
tasks. Each row runs the task's ``build`` (``--simulate``; MRI with the simulated birdcage maps) and DDS with
the row's options over the task's *old* defaults (``OLD``), so that the grid does not move when the defaults
change. Tuning images: skimage ``rocket`` and matplotlib ``grace_hopper`` (restore_models.data.NATURAL_VALIDATION),
which are not among ``bench.medical``'s default images, so the medical tables that report the chosen options
are measured on other images. Writes per-image PSNR and the mean per case, noise level and row.

    python -m bench.dds_medical                        # the default grid: bench/results/dds_medical.json
    python -m bench.dds_medical --cases mri-8c-4x --rows old snr-2 -o /tmp/d.json
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from .medical import CASES, load_image, run_one
from .run import ROOT, machine, write_json

IMAGES = ("rocket", "grace_hopper")
#: the tasks' DDS options before this grid (session 9), every option spelled out so that the rows override the
#: current task defaults completely
OLD = {"mri": {"noisy": "yes", "gamma_rule": "constant", "gamma": 10.0, "eta": 0.85, "spacing": "uniform",
               "cg_iters": 5},
       "ct": {"noisy": "auto", "gamma_rule": "snr", "gamma": 1.0, "eta": 0.85, "spacing": "uniform", "cg_iters": 10}}
IMAGING = {"eta": 0.95, "spacing": "quad", "cg_iters": 10}
ROWS = {
    "old": {},
    "eta-0.95": {"eta": 0.95},
    "quad": {"spacing": "quad"},
    "imaging": IMAGING,
    **{f"snr-{g:g}": {**IMAGING, "gamma_rule": "snr", "gamma": g} for g in (0.5, 1.0, 2.0, 4.0)},
}
#: the tasks' --noise of bench.medical's noisy tables, and noiseless
NOISE = {"mri": (0.0, 0.01), "ct": (0.0, 0.005)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "dds_medical.json"))
    parser.add_argument("--images", nargs="+", default=list(IMAGES))
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES),
                        default=["mri-1c-4x", "mri-8c-4x", "mri-8c-8x", "ct-30-views"])
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = []
    for case in args.cases:
        kind, options = CASES[case]
        for noise in NOISE[kind]:
            for name in args.images:
                image = load_image(name, args.size, kind == "ct")
                for row in args.rows:
                    overrides = {**OLD[kind], **ROWS[row]}
                    r = run_one(kind, options, image, "diffusion", sampler="dds", overrides=overrides, noise=noise)
                    runs.append({"case": case, "noise": noise, "image": name, "row": row, "options": overrides,
                                 "prior": r["prior"], "psnr": r["psnr"], "seconds": r["seconds"]})
                    print(f"{case:12s} noise {noise:<6g} {name:13s} {row:9s} {r['psnr']:6.2f} dB", file=sys.stderr,
                          flush=True)
    groups: dict[tuple, list[float]] = {}
    for r in runs:
        groups.setdefault((r["case"], r["noise"], r["row"]), []).append(r["psnr"])
    summary = [{"case": c, "noise": n, "row": w, "images": len(v), "psnr": float(np.mean(v))}
               for (c, n, w), v in groups.items()]
    write_json(args.output, {"machine": machine(), "prior": runs[0]["prior"] if runs else None, "size": args.size,
                             "images": args.images, "old": OLD, "rows": ROWS, "summary": summary, "runs": runs})
    for s in summary:
        print(f"| {s['case']} | {s['noise']:g} | {s['row']} | {s['psnr']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

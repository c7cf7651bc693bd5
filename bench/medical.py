"""MRI and CT benchmark (issue 8): every method of ``restore mri`` / ``restore ct`` on a 256² Shepp–Logan
phantom and on real slices shipped in installed packages, through the tasks' own ``build`` (as the CLI).

- MRI 4× (centre 0.08) and 8× (centre 0.04), random fastMRI mask, 8 simulated birdcage coils with
  ESPIRiT-style estimated maps: zero-filled, SENSE-CG, TV, DDS. Real slice: matplotlib's ``s1045.ima.gz``
  (256² MRI).
- CT 8, 30 and 60 parallel-beam views: FBP (ramp), TV, DDS. Real slice: pydicom's ``CT_small.dcm`` (128²,
  HU window [-1024, 1500] → [0, 1]).

Both real slices are held out of the medical prior's training data (restore_models.data.MEDICAL_VALIDATION).

    python -m bench.medical [-o bench/results/medical.json] [--images phantom s1045 ct_small] [--dds-steps 50]
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys

import numpy as np
import torch

import restore
from restore.metrics import psnr, ssim
from restore.phantoms import shepp_logan_2d
from restore.tasks import get_task

from .memory import peak_rss
from .run import ROOT, load_prior, machine, write_json

MRI = (("mri-4x", {"acceleration": 4.0, "center_fraction": 0.08}),
       ("mri-8x", {"acceleration": 8.0, "center_fraction": 0.04}))
CT = (("ct-8-views", {"views": 8}), ("ct-30-views", {"views": 30}), ("ct-60-views", {"views": 60}))
METHODS = {"mri": ("zero-filled", "sense", "tv", "diffusion"), "ct": ("fbp", "tv", "diffusion")}


def s1045() -> torch.Tensor:
    import matplotlib

    raw = np.frombuffer(gzip.open(os.path.join(matplotlib.get_data_path(), "sample_data", "s1045.ima.gz")).read(),
                        dtype="<u2").astype(np.float64)
    side = int(np.sqrt(raw.size))
    im = raw[: side * side].reshape(side, side)
    lo, hi = np.percentile(im, 0.5), np.percentile(im, 99.5)
    return torch.from_numpy(np.clip((im - lo) / (hi - lo), 0, 1))[None, None].float()


def ct_small() -> torch.Tensor:
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return torch.from_numpy(np.clip((hu + 1024) / 2524, 0, 1))[None, None].float()


IMAGES = {"phantom": (lambda: shepp_logan_2d(256), ("mri", "ct")), "s1045": (s1045, ("mri",)),
          "ct_small": (ct_small, ("ct",))}


def run_one(task_name: str, options: dict, image: torch.Tensor, method: str, dds_steps: int, seed: int) -> dict:
    task = get_task(task_name)
    setup = task.build(image=restore.Image(image.clone()), noise=0.0, simulate=True,
                       generator=torch.Generator().manual_seed(seed), method=method, **options)
    prior_name = restore.default_prior_name(1, task.domain)
    prior = load_prior(prior_name, 1, task.domain)
    name = setup.sampler or task.default_sampler
    cfg = dict(task.sampler_defaults.get(name, {}))
    cfg.update(setup.sampler_options.get(name, {}))
    if name == "dds":
        cfg["steps"] = dds_steps
    sampler = restore.sampler(name, **cfg)
    with peak_rss() as mem:
        result = sampler.run(prior, setup.problem, generator=torch.Generator().manual_seed(seed))
    x, ref = result.x.reshape(setup.reference.shape).float(), setup.reference.float()
    return {"method": method if method != "diffusion" else name, "prior": prior_name if name == "dds" else None,
            "psnr": psnr(x, ref), "ssim": ssim(x, ref), "nfe": result.nfe, "seconds": result.seconds,
            "peak_mb": mem["peak_mb"]}


def markdown(data: dict, json_path: str) -> str:
    mach = data["machine"]
    lines = [f"From `{os.path.relpath(json_path, ROOT)}` (commit {mach['commit']}, {mach['cores']} cores, torch "
             f"{mach['torch']}, {mach['date']}); DDS {data['dds_steps']} steps with the `medical-gray` prior; "
             "time in seconds.", "", "| image | case | method | PSNR | SSIM | time (s) |", "|---|---|---|---|---|---|"]
    for r in data["runs"]:
        lines.append(f"| {r['image']} | {r['case']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "medical.json"))
    parser.add_argument("--images", nargs="+", choices=sorted(IMAGES), default=sorted(IMAGES))
    parser.add_argument("--dds-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    runs = []
    for image_name in args.images:
        load, kinds = IMAGES[image_name]
        image = load()
        for kind, cases in (("mri", MRI), ("ct", CT)):
            if kind not in kinds:
                continue
            for case, options in cases:
                for method in METHODS[kind]:
                    row = {"image": image_name, "case": case,
                           **run_one(kind, options, image, method, args.dds_steps, args.seed)}
                    runs.append(row)
                    print(f"{image_name:9s} {case:12s} {row['method']:12s} PSNR {row['psnr']:6.2f} "
                          f"SSIM {row['ssim']:.3f} {row['seconds']:6.1f}s", file=sys.stderr, flush=True)
    data = {"machine": machine(), "dds_steps": args.dds_steps, "seed": args.seed, "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_json(args.output, data)
    table = markdown(data, args.output)
    with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
        f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MRI and CT benchmark on real images (issue 20): every method of ``restore mri`` / ``restore ct`` through the
tasks' own ``build`` and defaults (as the CLI runs them), on held-out photographs and real slices.

Images (none is in any prior's training data; all are resized to ``--size``², default 128):

- photographs: centre 256² gray crops of three held-out BSD images (``$RESTORE_DATA/cbsd432/val``, or
  ``$RESTORE_CBSD_VAL``; skipped with a message when absent), skimage ``rocket`` and matplotlib
  ``grace_hopper`` (restore_models.data.NATURAL_VALIDATION);
- real slices: matplotlib ``s1045.ima.gz`` (MRI, 256²) and pydicom ``CT_small.dcm`` (CT, 128², HU window
  [-1024, 1500]) (restore_models.data.MEDICAL_VALIDATION).

For CT every image is placed inside the scanner disk (multiplied by the inscribed disk).

Cases: single-coil and 8-coil MRI at 4× (centre 0.08) and 8× (centre 0.04), random fastMRI column mask,
``--simulate`` (so the simulated coil maps); CT with 30 and 60 parallel-beam views and limited angle 0–120°.
Methods: zero-filled / SENSE / FBP, TV with its weight tuned per case (the best PSNR of ``TV_GRID``, widened
by factors of 3 while the best weight is at an edge, as a careful user would), and the diffusion samplers with the task defaults (``pnp-hqs``, the MRI and 2D CT
default, and ``dds``; ``red-diff`` with ``--samplers``). Time is seconds per slice. Noiseless by default;
``--noise`` is the tasks' own (MRI: complex k-space std in image units; CT: a fraction of the sinogram's
maximum), and TV is then tuned over ``TV_GRID_NOISY``.

    python -m bench.medical                    # the default set, writes bench/results/medical.json/.md
    python -m bench.medical --images bsd-1 s1045 --cases mri-1c-4x --size 256 -o /tmp/m.json
    python -m bench.medical --noise 0.01 --images bsd-1 s1045 --cases mri-1c-4x mri-8c-4x \
        -o bench/results/medical_mri_noise_0.01.json
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch

import restore
from restore.errors import RestoreError
from restore.metrics import psnr, ssim
from restore.tasks import get_task
from restore_models.data import data_root

from .run import ROOT, load_prior, machine, sampler_generator, write_json

DATA_ROOT = data_root()  # restore_models.prepare writes the collections there
CBSD_VAL = os.environ.get("RESTORE_CBSD_VAL", os.path.join(DATA_ROOT, "cbsd432", "val"))
BSD_IDS = ("105053", "134008", "187003")

CASES = {
    "mri-1c-4x": ("mri", {"coils": 1, "acceleration": 4.0, "center_fraction": 0.08}),
    "mri-1c-8x": ("mri", {"coils": 1, "acceleration": 8.0, "center_fraction": 0.04}),
    "mri-8c-4x": ("mri", {"coils": 8, "acceleration": 4.0, "center_fraction": 0.08}),
    "mri-8c-8x": ("mri", {"coils": 8, "acceleration": 8.0, "center_fraction": 0.04}),
    "ct-30-views": ("ct", {"views": 30}),
    "ct-60-views": ("ct", {"views": 60}),
    "ct-limited-120": ("ct", {"limited_angle": 120.0}),
}
BASELINES = {"mri": ("zero-filled", "sense"), "ct": ("fbp",)}
TV_GRID = {"mri": (0.001, 0.003, 0.01), "ct": (0.0003, 0.001, 0.003)}
#: with --noise > 0 the best TV weight can be larger: the grid gains a weight 3x above
TV_GRID_NOISY = {"mri": (0.001, 0.003, 0.01, 0.03), "ct": (0.0003, 0.001, 0.003, 0.01)}
#: the grid grows by a factor 3 past an edge that holds the best PSNR, at most this many times
MAX_TV_EXTENSIONS = 4


def _gray_crop(im: np.ndarray, side: int = 256) -> np.ndarray:
    if im.ndim == 3:
        im = im[..., :3] @ np.array([0.299, 0.587, 0.114])
    H, W = im.shape
    y0, x0 = (H - side) // 2, (W - side) // 2
    return im[y0:y0 + side, x0:x0 + side]


def _bsd(i: int):
    def load() -> np.ndarray:
        from PIL import Image

        path = os.path.join(CBSD_VAL, BSD_IDS[i] + ".jpg")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} (held-out BSD validation photo; set RESTORE_CBSD_VAL)")
        return _gray_crop(np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255)
    return load


def _natural(key: str):
    def load() -> np.ndarray:
        from restore_models.data import load_natural

        return _gray_crop(load_natural(key).astype(np.float64))
    return load


def s1045() -> np.ndarray:
    import matplotlib

    raw = np.frombuffer(gzip.open(os.path.join(matplotlib.get_data_path(), "sample_data", "s1045.ima.gz")).read(),
                        dtype="<u2").astype(np.float64)
    side = int(np.sqrt(raw.size))
    im = raw[: side * side].reshape(side, side)
    lo, hi = np.percentile(im, 0.5), np.percentile(im, 99.5)
    return np.clip((im - lo) / (hi - lo), 0, 1)


def ct_small() -> np.ndarray:
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return np.clip((hu + 1024) / 2524, 0, 1)


IMAGES = {"bsd-1": (_bsd(0), ("mri", "ct")), "bsd-2": (_bsd(1), ("mri", "ct")), "bsd-3": (_bsd(2), ("mri", "ct")),
          "rocket": (_natural("skimage:rocket"), ("mri", "ct")),
          "grace_hopper": (_natural("matplotlib:grace_hopper"), ("mri", "ct")),
          "s1045": (s1045, ("mri",)), "ct_small": (ct_small, ("ct",))}
DEFAULT_IMAGES = ("bsd-1", "bsd-2", "bsd-3", "s1045", "ct_small")


def load_image(name: str, size: int, disk: bool) -> torch.Tensor:
    """``(1, 1, size, size)`` float in [0, 1]; ``disk`` zeroes everything outside the inscribed circle."""
    x = torch.from_numpy(np.clip(IMAGES[name][0](), 0, 1))[None, None].float()
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False).clamp(0, 1)
    if disk:
        c = (torch.arange(size) - (size - 1) / 2) / (size / 2)
        x = x * ((c[:, None] ** 2 + c[None, :] ** 2) <= 1).float()
    return x


def run_one(kind: str, options: dict, image: torch.Tensor, method: str, sampler: str | None = None,
            overrides: dict | None = None, prior_name: str | None = None, seed: int = 0,
            samples: int = 1, noise: float = 0.0) -> dict:
    """One reconstruction through the task's build and defaults; ``overrides`` = ``--set``/``--steps``; ``noise``
    is the task's ``--noise`` (MRI: k-space std in image units; CT: a fraction of the sinogram's maximum)."""
    task = get_task(kind)
    setup = task.build(image=restore.Image(image.clone()), noise=noise, simulate=True,
                       generator=torch.Generator().manual_seed(seed), method=method, **options)
    name = sampler or setup.sampler or task.default_sampler
    cfg = dict(task.sampler_defaults.get(name, {}))
    cfg.update(setup.sampler_options.get(name, {}))
    cfg.update(overrides or {})
    diffusion = method == "diffusion"
    prior_name = prior_name or restore.default_prior_name(1, task.domain)
    prior = load_prior(prior_name if diffusion else "stationary-gaussian", 1, task.domain)
    s = restore.sampler(name, **cfg)
    t0 = time.perf_counter()
    xs = [s.run(prior, setup.problem, generator=sampler_generator(seed, i)).x
          for i in range(samples if diffusion else 1)]
    seconds = time.perf_counter() - t0
    x = torch.stack(xs).mean(0).reshape(setup.reference.shape).float()
    ref = setup.reference.float()
    return {"method": name if diffusion else method, "prior": prior_name if diffusion else None,
            "config": {k: v for k, v in cfg.items() if k != "chunk"}, "samples": samples if diffusion else 1,
            "psnr": psnr(x, ref), "ssim": ssim(x, ref), "seconds": seconds}


def _safe(method: str, *args, **kwargs) -> dict:
    """A method that cannot run on a case (e.g. too few calibration lines) is a row with its error."""
    try:
        return run_one(*args, **kwargs)
    except RestoreError as exc:
        return {"method": method, "psnr": float("nan"), "ssim": float("nan"), "seconds": 0.0, "error": str(exc)}


def run_case(kind: str, options: dict, image: torch.Tensor, samplers: tuple[str, ...], seed: int,
             prior_name: str | None, log, noise: float = 0.0) -> list[dict]:
    rows = [_safe(m, kind, options, image, m, seed=seed, noise=noise) for m in BASELINES[kind]]
    for r in rows:
        log(r)
    tv = {}
    grid = sorted((TV_GRID_NOISY if noise > 0 else TV_GRID)[kind])
    for widened in range(MAX_TV_EXTENSIONS + 1):
        for lam in grid:
            if lam not in tv:
                tv[lam] = _safe("tv", kind, options, image, "tv", overrides={"lam": lam}, seed=seed, noise=noise)
                tv[lam].setdefault("config", {"lam": lam})  # an error row has none
        best = max(grid, key=lambda lam: -1e9 if tv[lam]["psnr"] != tv[lam]["psnr"] else tv[lam]["psnr"])
        if best not in (grid[0], grid[-1]) or widened == MAX_TV_EXTENSIONS:
            break
        # a careful user widens a grid whose best weight is at an edge
        if best == grid[0]:
            grid.insert(0, best / 3)
        else:
            grid.append(best * 3)
    rows.append({**tv[best], "method": "tv-tuned", "grid": {f"{lam:.3g}": round(tv[lam]["psnr"], 2) for lam in grid},
                 "seconds": tv[best]["seconds"]})
    log(rows[-1])
    for name in samplers:
        rows.append(_safe(name, kind, options, image, "diffusion", sampler=name, seed=seed, prior_name=prior_name,
                          noise=noise))
        log(rows[-1])
    return rows


def summary(runs: list[dict]) -> list[dict]:
    """Mean PSNR/SSIM/seconds per case and method over the images."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["case"], r["method"]), []).append(r)
    return [{"case": c, "method": m, "images": len(g), "psnr": float(np.mean([r["psnr"] for r in g])),
             "ssim": float(np.mean([r["ssim"] for r in g])), "seconds": float(np.mean([r["seconds"] for r in g]))}
            for (c, m), g in groups.items()]


def markdown(data: dict, json_path: str) -> str:
    mach = data["machine"]
    lines = [f"From `{os.path.relpath(json_path, ROOT)}` (commit {mach['commit']}, {mach['cores']} cores, torch "
             f"{mach['torch']}, {mach['date']}); {data['size']}² images {', '.join(data['images'])}; "
             f"{'noise ' + format(data['noise'], 'g') if data.get('noise') else 'noiseless'}; diffusion "
             f"with the task defaults and prior `{data['prior'] or 'default'}`; TV tuned per case and image from "
             f"λ ∈ {data['tv_grid']}, widened by factors of 3 while the best λ is at an edge (each run's grid is in "
             f"the JSON); seconds per slice.", "",
             "Mean over images:", "", "| case | method | images | PSNR | SSIM | s/slice |", "|---|---|---|---|---|---|"]
    for r in data["summary"]:
        lines.append(f"| {r['case']} | {r['method']} | {r['images']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{r['seconds']:.1f} |")
    lines += ["", "Per image:", "", "| image | case | method | PSNR | SSIM | s |", "|---|---|---|---|---|---|"]
    for r in data["runs"]:
        lines.append(f"| {r['image']} | {r['case']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "medical.json"))
    parser.add_argument("--images", nargs="+", choices=sorted(IMAGES), default=list(DEFAULT_IMAGES))
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--samplers", nargs="*", default=["pnp-hqs", "dds"], help="diffusion samplers (task defaults)")
    parser.add_argument("--prior", default=None, help="prior for the diffusion samplers (default: the task's)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.0,
                        help="the tasks' --noise (MRI: k-space std, image units; CT: fraction of the sinogram max)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="combine the runs of earlier outputs (e.g. one process per image) into --output")
    args = parser.parse_args(argv)
    runs = []
    if args.merge:
        import json

        parts = [json.load(open(p)) for p in args.merge]
        runs = [r for d in parts for r in d["runs"]]
        args.images = list(dict.fromkeys(r["image"] for r in runs))
        args.size, args.prior, args.seed = parts[0]["size"], parts[0]["prior"], parts[0]["seed"]
        args.noise = parts[0].get("noise", 0.0)
        args.cases = []
    for image_name in args.images if not args.merge else ():
        kinds = IMAGES[image_name][1]
        cache: dict[bool, torch.Tensor] = {}
        for case in args.cases:
            kind, options = CASES[case]
            if kind not in kinds:
                continue
            try:
                image = cache.setdefault(kind == "ct", load_image(image_name, args.size, kind == "ct"))
            except (FileNotFoundError, ImportError) as exc:
                print(f"skipping {image_name}: {exc}", file=sys.stderr)
                break

            def log(r, image_name=image_name, case=case):
                print(f"{image_name:12s} {case:15s} {r['method']:12s} PSNR {r['psnr']:6.2f} SSIM {r['ssim']:.3f} "
                      f"{r['seconds']:6.1f}s", file=sys.stderr, flush=True)

            for row in run_case(kind, options, image, tuple(args.samplers), args.seed, args.prior, log, args.noise):
                runs.append({"image": image_name, "case": case, **row})
    data = {"machine": machine(), "size": args.size, "images": args.images, "prior": args.prior, "noise": args.noise,
            "tv_grid": TV_GRID_NOISY if args.noise > 0 else TV_GRID, "seed": args.seed, "summary": summary(runs), "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_json(args.output, data)
    table = markdown(data, args.output)
    with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
        f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which inpainting sampler for which holes: ``pnp-hqs`` 20 (the task default) against DiffPIR 50 (the default
for deep holes) and biharmonic, as the holes get deeper, on held-out validation crops.

    python -m bench.inpaint_holes [--images gray:3,rgb:3] [--side 96] [-o bench/results/inpaint_holes.json]

Masks: random masks of 50/70/90 %, centred square boxes of growing side, and mask files of the kinds users
draw (strokes 2-8 px wide, blobs). A mask's depth is the largest distance from a missing pixel to an observed
one. ``restore inpaint`` uses DiffPIR for box specs and mask files and pnp-hqs for random masks
(``restore_imaging.tasks.HOLES_INPAINT_DEFAULT``); this table is where that choice comes from. Each run is the
CLI's (the task's options, the shipped default prior, the bench's seeding); seconds are CPU time.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

import restore
from restore.metrics import psnr
from restore.tasks import get_task
from restore_imaging.specs import parse_mask

from .run import Case, classical, machine, write_json
from .task_defaults import load_crops, run_one

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLERS = (("pnp-hqs", 20), ("diffpir", 50))
RANDOM = (0.5, 0.7, 0.9)
BOX_SIDES = (6, 10, 16, 24, 32, 48)


#: mask files of the kinds users draw: scratches (random strokes ``width`` px wide) and blobs (object removal)
DRAWN = (("strokes-2px", 2), ("strokes-4px", 4), ("strokes-8px", 8), ("blobs", 0))


def drawn_mask(kind: str, width: int, side: int, folder: str) -> str:
    """A mask image (white = observed) written to ``folder``: strokes of ``width`` px, or blobs."""
    from skimage.draw import ellipse, line

    rng = np.random.default_rng(7)
    missing = np.zeros((side, side), bool)
    if width:
        for _ in range(4):
            r0, c0, r1, c1 = rng.integers(0, side, 4)
            rr, cc = line(int(r0), int(c0), int(r1), int(c1))
            for dr in range(-(width // 2), width - width // 2):
                for dc in range(-(width // 2), width - width // 2):
                    missing[np.clip(rr + dr, 0, side - 1), np.clip(cc + dc, 0, side - 1)] = True
    else:
        for _ in range(3):
            r, c = rng.integers(side // 5, 4 * side // 5, 2)
            rr, cc = ellipse(int(r), int(c), side / rng.uniform(8, 12), side / rng.uniform(8, 12),
                             shape=(side, side), rotation=rng.uniform(0, np.pi))
            missing[rr, cc] = True
    path = os.path.join(folder, f"{kind}.png")
    restore.write(path, torch.from_numpy(~missing).float()[None, None])
    return path


def hole_depth(op, side: int) -> float:
    """The largest distance, in pixels, from a missing pixel to the nearest observed one."""
    from scipy.ndimage import distance_transform_edt

    missing = (op.mask_for(torch.ones(1, 1, side, side)) <= 0)[0, 0].numpy()
    return float(distance_transform_edt(missing).max()) if missing.any() else 0.0


def masks(side: int, folder: str) -> list[tuple[str, str]]:
    """``(label, --mask value)`` pairs: random masks, centred boxes and drawn mask files."""
    boxes = [f"box:{(side - s) // 2},{(side - s) // 2},{s},{s}" for s in BOX_SIDES if s < side]
    specs = [(m, m) for m in [f"random:{f}" for f in RANDOM] + boxes]
    return specs + [(kind, drawn_mask(kind, width, side, folder)) for kind, width in DRAWN]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="gray:3,rgb:3")
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "inpaint_holes.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    crops = load_crops(args.images, args.side)
    rows = []
    mask_list = masks(args.side, tempfile.mkdtemp())
    for label, spec in mask_list:
        depth = hole_depth(parse_mask(spec), args.side)
        case = Case(f"inpaint {label}", "inpaint", {"mask": spec}, 0.0)
        for img_name, image in crops:
            setup = get_task("inpaint").build(image=image, noise=0.0, simulate=True,
                                              generator=torch.Generator().manual_seed(args.seed), mask=spec)
            start = time.process_time()
            base = classical(case, setup)["biharmonic"]
            rows.append({"mask": label, "depth": depth, "image": img_name, "method": "biharmonic",
                         "psnr": psnr(base, setup.reference.float()), "cpu_seconds": time.process_time() - start})
            for sampler, steps in SAMPLERS:
                rec = run_one(case, image, sampler, steps, args.seed)
                rows.append({"mask": label, "depth": depth, "image": img_name, "method": f"{sampler} {steps}",
                             "psnr": rec["psnr"], "cpu_seconds": rec["cpu_seconds"]})
            print(label, img_name, " ".join(f"{r['method']} {r['psnr']:.2f}" for r in rows[-3:]), flush=True)
    summary = []
    for label, _ in mask_list:
        entry = {"mask": label, "depth": next(r["depth"] for r in rows if r["mask"] == label)}
        for method in ["biharmonic"] + [f"{s} {n}" for s, n in SAMPLERS]:
            entry[method] = float(np.mean([r["psnr"] for r in rows if r["mask"] == label and r["method"] == method]))
        summary.append(entry)
    write_json(args.output, {"machine": machine(), "images": args.images, "side": args.side, "seed": args.seed,
                             "runs": rows, "summary": summary,
                             "command": "python -m bench.inpaint_holes " + f"--images {args.images} --side {args.side}"})
    print("| mask | depth px | biharmonic | pnp-hqs 20 | diffpir 50 |")
    print("|---|---|---|---|---|")
    for e in summary:
        print(f"| `{e['mask']}` | {e['depth']:.1f} | {e['biharmonic']:.2f} | {e['pnp-hqs 20']:.2f} | "
              f"{e['diffpir 50']:.2f} |")


if __name__ == "__main__":
    main()

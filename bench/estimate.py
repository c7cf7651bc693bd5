"""Fit the up-front time and memory estimate of ``restore TASK`` (restore/cli/estimate.py) on this machine.

    python -m bench.estimate [--sizes 64 128 256] [--out bench/results/estimate.json]

Each size runs ``deblur`` with the default prior and sampler (3 steps, CPU, 1 thread) in a fresh process
and records the peak resident memory and the CPU seconds per sampler step (one thread: the wall time of an
idle machine, whatever else runs); a least-squares line in the pixel count gives the CLI's coefficients.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from PIL import Image
from skimage import data
sys.path.insert(0, {root!r})
from bench.memory import peak_rss
from restore.tasks import RunSettings, run_task
size, tmp, sampler = {size}, {tmp!r}, {sampler!r}
Image.fromarray(data.astronaut()[:size, :size]).save(tmp + "/in.png")
marks = []  # CPU time at each step: the machine may be shared, one thread's CPU time is its idle wall time
with peak_rss() as mem:
    r = run_task("deblur", tmp + "/in.png", tmp + "/out.png", RunSettings(steps=3, device="cpu", overwrite=True,
                 sampler=sampler), progress=lambda *a: marks.append(time.process_time()))
print(json.dumps({{"size": size, "peak_mb": mem["peak_mb"], "cpu_seconds_per_nfe": (marks[-1] - marks[0]) / 2,
                  "nfe": r.nfe}}))
"""


def main() -> None:
    import tempfile

    from bench.run import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "estimate.json"))
    args = ap.parse_args()
    runs = {}
    for sampler in ("dds", "dps"):  # without / with a vector-Jacobian product through the network
        rows = []
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                code = CHILD.format(root=str(ROOT), size=size, tmp=tmp, sampler=sampler)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                     env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin",
                                          "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"})
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(sampler, rows[-1], flush=True)
        px = np.array([r["size"] ** 2 for r in rows], float)
        mem = np.polyfit(px, [r["peak_mb"] for r in rows], 1)
        sec = np.polyfit(px, [r["cpu_seconds_per_nfe"] for r in rows], 1)
        runs[sampler] = {"rows": rows, "mb_per_megapixel": mem[0] * 1e6, "mb_base": mem[1],
                         "seconds_per_nfe_per_megapixel": sec[0] * 1e6, "seconds_per_nfe_base": sec[1]}
    write_json(args.out, {"command": "python -m bench.estimate " + " ".join(sys.argv[1:]),
                          "prior": "default (natural-rgb)", "threads": 1, "device": "cpu", "fits": runs})
    print(json.dumps({k: {m: round(v, 3) for m, v in r.items() if m != "rows"} for k, r in runs.items()}))


if __name__ == "__main__":
    main()

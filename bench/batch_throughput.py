"""Throughput of ``restore batch`` (items/minute) with the local and Dask engines, and Dask's per-item overhead.

12 crops of 128x128 from skimage's astronaut, task ``deblur`` (default gaussian:2.0 kernel), prior
``stationary-gaussian``, sampler ``dds`` with ``--steps 20``, 1 torch thread per worker. Writes
bench/results/batch_throughput.json.

    .venv/bin/python bench/batch_throughput.py [--steps 20] [--items 12] [--size 128]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def make_inputs(folder: Path, n: int, size: int) -> list[str]:
    from PIL import Image
    from skimage import data

    a = data.astronaut()
    per_row = a.shape[1] // size
    paths = []
    for i in range(n):
        r, c = divmod(i, per_row)
        path = folder / f"crop{i:02d}.png"
        Image.fromarray(a[size * r: size * (r + 1), size * c: size * (c + 1)]).save(path)
        paths.append(str(path))
    return paths


def timed_batch(inputs: list[str], out: Path, settings, **kw) -> dict:
    from restore.batch import run_batch

    t0 = time.perf_counter()
    result = run_batch(inputs, "deblur", str(out), settings=settings, **kw)
    seconds = time.perf_counter() - t0
    assert result.ok, result.failed
    work = sum(r["seconds"] for r in result.records)
    return {"seconds": round(seconds, 2), "items_per_minute": round(60 * len(inputs) / seconds, 1),
            "worker_compute_seconds": round(work, 2), "workers": result.workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "batch_throughput.json"))
    args = parser.parse_args()

    import distributed

    from restore.batch import item_seed, process_one
    from restore.tasks import RunSettings

    settings = RunSettings(prior="stationary-gaussian", steps=args.steps, device="cpu", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        inputs = make_inputs(tmp / "in", args.items, args.size)
        results: dict = {}
        results["local_sequential"] = timed_batch(inputs, tmp / "local", settings, engine="local")
        results["local_pool_2"] = timed_batch(inputs, tmp / "pool", settings, engine="local", workers=2)
        results["dask_localcluster_2_cold"] = timed_batch(inputs, tmp / "dask_cold", settings, engine="dask",
                                                          workers=2)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
        try:
            client = distributed.Client(cluster.scheduler_address, set_as_default=False)
            # Warm the workers (import torch, load plugins) so that only steady-state costs are timed.
            warm = tmp / "warm.png"
            client.gather([client.submit(process_one, inputs[0], str(warm) + f"{k}.png", "deblur", {},
                                         vars(settings), 0, 1, pure=False) for k in range(4)])
            results["dask_scheduler_2_warm"] = timed_batch(inputs, tmp / "dask_warm", settings, engine="dask",
                                                           scheduler=cluster.scheduler_address)
            # Per-item overhead: one item at a time, round trip through the scheduler minus worker compute.
            overhead, local_overhead = [], []
            for k, path in enumerate(inputs):
                seed = item_seed(0, path)
                t0 = time.perf_counter()
                rec = client.submit(process_one, path, str(tmp / f"o{k}.png"), "deblur", {}, vars(settings),
                                    seed, 1, pure=False).result()
                overhead.append(time.perf_counter() - t0 - rec["seconds"])
                t0 = time.perf_counter()
                rec = process_one(path, str(tmp / f"l{k}.png"), "deblur", {}, vars(settings), seed, 1)
                local_overhead.append(time.perf_counter() - t0 - rec["seconds"])
            client.close()
        finally:
            cluster.close()
        results["dask_overhead_per_item_seconds"] = {
            "median": round(statistics.median(overhead), 4), "mean": round(statistics.mean(overhead), 4),
            "local_call_median": round(statistics.median(local_overhead), 4)}
    record = {
        "benchmark": "batch_throughput", "task": "deblur", "prior": "stationary-gaussian", "sampler": "dds",
        "steps": args.steps, "items": args.items, "size": f"{args.size}x{args.size}", "threads_per_worker": 1,
        "command": f".venv/bin/python bench/batch_throughput.py --steps {args.steps} --items {args.items} "
                   f"--size {args.size}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "distributed": distributed.__version__, "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()

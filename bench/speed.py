"""CPU speed of the network call and of default runs: precision, layout, frozen graphs, batched samples.

Three parts, each written into bench/results/speed.json as it finishes (``--parts`` picks some):

* ``network``: seconds of CPU per network call of the shipped ``natural-gray`` and ``natural-rgb`` priors at
  64², 256², 512² in five modes (fp32, bf16 autocast, channels_last, jit-frozen fp32, bf16 + channels_last),
  the modes interleaved call by call so that the shared machine's drift hits them alike; max |eps| error
  of each mode against fp32.
* ``deblur``: ``restore deblur --simulate`` (task defaults: DDS, 50 steps) on a 256² gray and a 256² colour
  crop of held-out BSD validation photos ($RESTORE_DATA/cbsd432/val; the gray one is converted with
  BT.601 weights), ``--precision auto`` against ``fp32``, runs interleaved: CPU-time ratio and PSNR change.
* ``group``: ``restore batch deblur`` on four 64² crops of held-out BSD gray validation photos
  (/work/data/bsd400/val), ungrouped against ``--group-size 4``: wall/CPU ratio and the outputs' largest
  pixel difference.
* ``samples``: ``--samples 8`` (one batch) against one sample on a 128² gray crop, ``--steps STEPS``.
* ``startup``: wall and CPU seconds of ``restore --help``, ``restore deblur --help`` and ``restore list
  samplers`` processes (median of at least 5 runs), whether each imported torch, and with ``--baseline DIR``
  the same from an earlier source tree, interleaved, with the ratio.

The machine running it is shared, so the JSON holds CPU seconds (``time.process_time``, one thread) and
ratios; wall times are kept for reference only.

    python bench/speed.py [--parts network deblur samples startup] [--reps 3] [--sizes 64 256 512]
    git archive cd48652 | tar -x -C /tmp/before && python bench/speed.py --parts startup --baseline /tmp/before
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

OUT = Path(__file__).parent / "results" / "speed.json"
VAL = Path("/work/data/cbsd432/val")
MODES = {"fp32": {}, "bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True},
         "compiled": {"compile": True}, "bf16+channels_last": {"precision": "bf16", "channels_last": True}}


def save(key: str, value) -> None:
    """Merge ``key`` into the JSON (under a lock: the parts may run as separate processes)."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / "restore_bench_speed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(OUT.read_text()) if OUT.exists() else {}
        data[key] = value
        data.setdefault("machine", {})[key] = {
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "load_average": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%d %H:%M")}
        OUT.write_text(json.dumps(data, indent=2))


def network_table(sizes: list[int], reps: int) -> dict:
    import restore

    table = {}
    for name in ("natural-gray", "natural-rgb"):
        prior = restore.prior(name, device="cpu")
        for size in sizes:
            x = torch.randn(1, prior.channels, size, size, generator=torch.Generator().manual_seed(0))
            k = torch.tensor([500])
            cpu = {m: [] for m in MODES}
            ref, errors = None, {}
            with torch.no_grad():
                for rep in range(reps + 1):  # the first round warms up (and traces the frozen graph)
                    for mode, opts in MODES.items():
                        prior.set_speed(precision=opts.get("precision", "fp32"),
                                        channels_last=opts.get("channels_last", False),
                                        compile=opts.get("compile", False))
                        start = time.process_time()
                        eps = prior.eps(x, k)
                        if rep:
                            cpu[mode].append(time.process_time() - start)
                        if mode == "fp32" and ref is None:
                            ref = eps
                        errors[mode] = float((eps - ref).abs().max())
            base = statistics.median(cpu["fp32"])
            table[f"{name}/{size}"] = {m: {"cpu_s": round(statistics.median(v), 4),
                                           "speedup_vs_fp32": round(base / statistics.median(v), 3),
                                           "max_abs_eps_error": errors[m]} for m, v in cpu.items()}
            print(name, size, json.dumps(table[f"{name}/{size}"]), flush=True)
            save("network_call", table)
    return table


def crops(folder: Path) -> dict[str, str]:
    from PIL import Image

    if not VAL.is_dir():
        raise SystemExit(f"{VAL} not found: the held-out BSD validation photos are needed for this part")
    photo = Image.open(sorted(VAL.glob("*.jpg"))[0]).convert("RGB")
    left, top = (photo.width - 256) // 2, (photo.height - 256) // 2
    colour = photo.crop((left, top, left + 256, top + 256))
    paths = {"gray256": folder / "gray256.png", "rgb256": folder / "rgb256.png", "gray128": folder / "gray128.png"}
    colour.convert("L").save(paths["gray256"])
    colour.save(paths["rgb256"])
    colour.convert("L").crop((64, 64, 192, 192)).save(paths["gray128"])
    return {k: str(v) for k, v in paths.items()}


def run(path: str, out: str, **settings) -> tuple[float, float, float]:
    from restore.tasks import RunSettings, run_task

    start, wall = time.process_time(), time.perf_counter()
    report = run_task("deblur", path, out, RunSettings(device="cpu", simulate=True, overwrite=True, **settings))
    return time.process_time() - start, time.perf_counter() - wall, report.metrics["psnr"]


def deblur(paths: dict[str, str], folder: Path, reps: int) -> dict:
    result = {}
    for image in ("gray256", "rgb256"):
        rows = {"fp32": [], "auto": []}
        for _ in range(reps):
            for precision in ("fp32", "auto"):
                rows[precision].append(run(paths[image], str(folder / f"out_{precision}.png"), precision=precision))
        cpu = {p: statistics.median(r[0] for r in v) for p, v in rows.items()}
        result[image] = {"cpu_s": {p: round(v, 2) for p, v in cpu.items()},
                         "wall_s": {p: round(statistics.median(r[1] for r in v), 1) for p, v in rows.items()},
                         "psnr": {p: round(v[0][2], 3) for p, v in rows.items()},
                         "speedup_auto_vs_fp32": round(cpu["fp32"] / cpu["auto"], 3),
                         "psnr_auto_minus_fp32": round(rows["auto"][0][2] - rows["fp32"][0][2], 4)}
        print(image, json.dumps(result[image]), flush=True)
        save("deblur_default", result)
    return result


def samples(paths: dict[str, str], folder: Path, steps: int, reps: int) -> dict:
    rows = {1: [], 8: []}
    for _ in range(reps):
        for n in (1, 8):
            rows[n].append(run(paths["gray128"], str(folder / f"out_s{n}.png"), precision="auto", samples=n,
                               steps=steps))
    cpu = {n: statistics.median(r[0] for r in v) for n, v in rows.items()}
    result = {"image": "gray128", "steps": steps, "cpu_s": {str(n): round(v, 2) for n, v in cpu.items()},
              "ratio_8_vs_1": round(cpu[8] / cpu[1], 3)}
    print(json.dumps(result), flush=True)
    save("samples_8_vs_1", result)
    return result


GRAY_VAL = Path("/work/data/bsd400/val")


def group(folder: Path, size: int, reps: int) -> dict:
    """``restore batch deblur`` (task defaults, shipped ``natural-gray`` prior, ``--precision fp32``) on four
    ``size``² centre crops of held-out BSD gray validation photos, without and with ``--group-size 4``, runs
    interleaved: wall and CPU seconds and the ratio, and the largest pixel difference of the outputs; and the
    network call alone on the four crops, one batched call against four."""
    import numpy as np
    from PIL import Image

    from restore.batch import run_batch
    from restore.tasks import RunSettings

    if not GRAY_VAL.is_dir():
        raise SystemExit(f"{GRAY_VAL} not found: the held-out BSD gray validation photos are needed for this part")
    inputs = []
    for path in sorted(GRAY_VAL.glob("*.png"))[:4]:
        photo = Image.open(path).convert("L")
        left, top = (photo.width - size) // 2, (photo.height - size) // 2
        crop = folder / f"group_{path.stem}.png"
        photo.crop((left, top, left + size, top + size)).save(crop)
        inputs.append(str(crop))
    settings = RunSettings(device="cpu", overwrite=True, precision="fp32")
    rows: dict[int, list[tuple[float, float]]] = {1: [], 4: []}
    outs: dict[int, list[str]] = {}
    for _ in range(reps + 1):  # the first round loads the prior and warms up; not timed
        for n in (1, 4):
            cpu, wall = time.process_time(), time.perf_counter()
            result = run_batch(inputs, "deblur", str(folder / f"group{n}"), settings=settings, group_size=n)
            rows[n].append((time.perf_counter() - wall, time.process_time() - cpu))
            assert result.ok, result.failed
            outs[n] = [r["output"] for r in result.records]
    # the network alone: one call on the four crops against four calls on one each (CPU seconds)
    import restore

    prior = restore.prior("natural-gray", device="cpu", precision="fp32")
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32) / 255)[None] for p in inputs])
    k = torch.tensor([500])
    calls: dict[int, list[float]] = {1: [], 4: []}
    with torch.no_grad():
        prior.eps(x, k)
        for _ in range(5 * reps):
            for n in (1, 4):
                start = time.process_time()
                for a in range(0, 4, n):
                    prior.eps(x[a:a + n], k)
                calls[n].append(time.process_time() - start)
    network = {n: statistics.median(v) for n, v in calls.items()}
    diff = max(int(np.abs(np.asarray(Image.open(a), dtype=np.int16) - np.asarray(Image.open(b), dtype=np.int16)).max())
               for a, b in zip(outs[1], outs[4]))
    wall = {n: statistics.median(r[0] for r in v[1:]) for n, v in rows.items()}
    cpu = {n: statistics.median(r[1] for r in v[1:]) for n, v in rows.items()}
    result = {"images": [Path(p).name for p in inputs], "size": size, "runs": reps,
              "settings": "restore batch deblur, task defaults, --precision fp32, natural-gray",
              "wall_s": {"ungrouped": round(wall[1], 2), "group_size_4": round(wall[4], 2)},
              "cpu_s": {"ungrouped": round(cpu[1], 2), "group_size_4": round(cpu[4], 2)},
              "speedup_wall": round(wall[1] / wall[4], 2), "speedup_cpu": round(cpu[1] / cpu[4], 2),
              "network_cpu_s_four_images": {"four_calls": round(network[1], 4), "one_call": round(network[4], 4)},
              "network_speedup_cpu": round(network[1] / network[4], 2),
              "max_abs_pixel_difference_8bit": diff}
    print(json.dumps(result), flush=True)
    save("batch_group", result)
    return result


STARTUP_COMMANDS = (("--help",), ("deblur", "--help"), ("list", "samplers"))


def startup(reps: int, baseline: str | None) -> dict:
    """Wall and CPU seconds of ``restore --help``, ``restore deblur --help`` and ``restore list samplers``
    processes (median of ``reps``), and whether each imported torch; with ``baseline`` (a source tree of an
    earlier commit, e.g. ``git archive COMMIT | tar -x -C DIR``) the same commands from that tree, interleaved
    run by run, and the ratio earlier/now."""
    import resource
    import subprocess
    import sys

    probe = ("import io, sys, contextlib; from restore.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()): main(sys.argv[1:])\n"
             "print('torch' in sys.modules)")
    root = Path(__file__).resolve().parent.parent
    trees = {"now": root, **({"before": Path(baseline).resolve()} if baseline else {})}
    rows = {(tree, cmd): [] for tree in trees for cmd in STARTUP_COMMANDS}
    for _ in range(reps):
        for cmd in STARTUP_COMMANDS:
            for tree, path in trees.items():
                env = dict(os.environ, PYTHONPATH=f"{path}{os.pathsep}{path / 'plugins'}")
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall = time.perf_counter()
                # run in the tree: `python -c` puts the working directory first on sys.path
                out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env,
                                     cwd=path, check=True)
                wall = time.perf_counter() - wall
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                rows[tree, cmd].append((wall, cpu, out.stdout.strip().splitlines()[-1] == "True"))
    result: dict = {"runs": reps, "commands": {}}
    for cmd in STARTUP_COMMANDS:
        entry = {}
        for tree in trees:
            runs = rows[tree, cmd]
            entry[tree] = {"wall_s": round(statistics.median(r[0] for r in runs), 3),
                           "cpu_s": round(statistics.median(r[1] for r in runs), 3),
                           "imports_torch": any(r[2] for r in runs)}
        if "before" in entry:
            entry["speedup_wall"] = round(entry["before"]["wall_s"] / entry["now"]["wall_s"], 2)
        result["commands"]["restore " + " ".join(cmd)] = entry
    print(json.dumps(result), flush=True)
    save("startup", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["network", "deblur", "samples", "startup", "group"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512])
    parser.add_argument("--steps", type=int, default=10, help="sampler steps of the samples part")
    parser.add_argument("--baseline", help="startup part: a source tree of an earlier commit to compare with")
    parser.add_argument("--group-image-size", type=int, default=64, help="group part: crop size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "startup" in args.parts:
            startup(max(args.reps, 5), args.baseline)
        if "group" in args.parts:
            group(folder, args.group_image_size, args.reps)
        if "network" in args.parts:
            network_table(args.sizes, args.reps)
        if "deblur" in args.parts or "samples" in args.parts:
            paths = crops(folder)
            if "deblur" in args.parts:
                deblur(paths, folder, args.reps)
            if "samples" in args.parts:
                samples(paths, folder, args.steps, args.reps)


if __name__ == "__main__":
    main()

"""Fast diffusion solvers (issue 17): NFE against error on the analytic priors and on a shipped prior, and
DDS deblurring with a DPM-Solver++ step.

    python -m bench.fast_solvers [--parts analytic,natural,dds,momentum] [--size 32] [--images 4] [--crops 4]
                                 [--ems FILE | --ems-states N] [--reference FILE] [-o bench/results/fast_solvers.json]

* ``analytic``: relative error at t = 0 against the exact probability-flow map (Gaussian, d = 4, linear
  schedule) and against a converged 600-call third-order solve (2-D mixture), per solver and NFE.
* ``natural``: the shipped ``natural-rgb`` prior on ``--images`` noises of ``--size``² (one seed): RMS
  difference in [0, 1] units to the 1000-step DDIM endpoint from the same noise, and the smallest NFE of the
  list that reaches 0.01 (each solver stops at twice that). DPM-Solver-v3 uses statistics computed here
  first (``--ems-states`` trajectories of 32², default 128, 100 levels, as ``restore ems``; CPU time recorded) or
  ``--ems FILE``.
  ``--reference FILE`` caches the 1000-step reference (reused when its prior fingerprint and noise match).
* ``dds``: Gaussian deblurring (σ_blur = 2, σ_y = 0.01) of ``--crops`` 64² crops of the held-out colour
  validation photos (``/work/data/cbsd432/val``) with ``natural-rgb``: PSNR of DDS's default 50 steps against
  DDS with DDIM / DPM-Solver++ / SDE-DPM-Solver++ steps at 10–25 NFE, with DDS's noise fraction and without.
* ``momentum``: the same deblurring on ``--crops`` 64² crops of the held-out grey photos
  (``/work/data/bsd400/val``) with ``natural-gray``: DDS at 10 and 20 NFE without momentum, with HB and with
  GHVB (β = 0.8), at DDS's noise fraction and at η′ = 0.

CPU seconds are ``time.process_time`` of this process (the machine is shared: wall time is not comparable).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

import restore
from restore.priors import GaussianPrior, GMMPrior
from restore.tasks import get_task

from .run import machine, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAL_DIR = "/work/data/cbsd432/val"
GRAY_VAL_DIR = "/work/data/bsd400/val"
NFES = (5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50)
#: natural-rgb: each solver stops one point after reaching 0.01 (network calls are the cost being measured)
NATURAL_NFES = (5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 100, 200)

#: (label, sampler, options); ``steps`` is added per NFE (VE-ODE Heun: steps = (NFE + 1) // 2, recorded NFE)
SOLVERS = (
    ("ddim", "ddim", {"spacing": "guided"}),
    ("ddim+hb0.8", "ddim", {"spacing": "guided", "momentum": "hb", "beta": 0.8}),
    ("ddim+ghvb1.8", "ddim", {"spacing": "guided", "momentum": "ghvb", "beta": 0.8}),
    ("dpm-solver-3S (logSNR)", "dpm-solver", {}),
    ("dpm-solver-2M (logSNR)", "dpm-solver", {"order": 2, "method": "multistep"}),
    ("dpm-solver++2M (time-uniform)", "dpm-solver++", {}),
    ("dpm-solver++2M (logSNR)", "dpm-solver++", {"spacing": "logSNR"}),
    ("dpm-solver++2M (time-uniform, end=lowest)", "dpm-solver++", {"end": "lowest"}),
    ("dpm-solver++2M (time-quadratic)", "dpm-solver++", {"spacing": "time-quadratic"}),
    ("dpm-solver++3M (time-uniform)", "dpm-solver++", {"order": 3}),
    ("dpm-solver++3M (time-uniform, end=lowest)", "dpm-solver++", {"order": 3, "end": "lowest"}),
    ("dpm-solver++2M (karras)", "dpm-solver++", {"spacing": "karras"}),
    ("dpm-solver++3M (karras)", "dpm-solver++", {"order": 3, "spacing": "karras"}),
    ("dpm-solver++2M+UniC (time-uniform)", "dpm-solver++", {"corrector": "unic"}),
    ("dpm-solver++2M+UniC (karras)", "dpm-solver++", {"spacing": "karras", "corrector": "unic"}),
    ("dpm-solver++3M+UniC (karras)", "dpm-solver++", {"order": 3, "spacing": "karras", "corrector": "unic"}),
    ("dpm-solver++2M+hb0.8", "dpm-solver++", {"momentum": "hb", "beta": 0.8}),
    ("dpm-solver-v3", "dpm-solver-v3", {}),
    ("dpm-solver-v3 (logSNR)", "dpm-solver-v3", {"spacing": "logSNR"}),
    ("dpm-solver-v3 (karras)", "dpm-solver-v3", {"spacing": "karras"}),
    ("ve-ode (Heun)", "ve-ode", {}),
)


def steps_for(sampler: str, nfe: int) -> int | None:
    if sampler == "ve-ode":  # Heun: 2 calls per level but one on the last
        return (nfe + 1) // 2
    return nfe


def run_solver(prior, sampler: str, options: dict, nfe: int, x: torch.Tensor, ems_path: str | None):
    steps = steps_for(sampler, nfe)
    if steps is None:
        return None
    opts = dict(options, steps=steps)
    if sampler == "dpm-solver-v3" and ems_path:
        opts["statistics"] = ems_path
    x_init = x
    if sampler.startswith("ve-"):  # the VE state is x / a_T for a VP prior
        x_init = x / float(prior.schedule.a(prior.schedule.T - 1))
    with torch.no_grad():
        return restore.sampler(sampler, **opts).run(prior, shape=x.shape, x_init=x_init.clone())


# -- analytic ---------------------------------------------------------------------------------------------

def analytic(results: dict) -> None:
    from restore.priors.ems import compute_ems

    g = torch.Generator().manual_seed(1)
    d = 4
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    cov = (q * (0.3 * (0.2 + torch.rand(d, generator=g, dtype=torch.float64)))) @ q.T
    gauss = GaussianPrior(0.3 * torch.randn(d, generator=g, dtype=torch.float64), cov)
    means = torch.tensor([[0.6, 0.2], [-0.5, -0.4], [0.3, -0.6]], dtype=torch.float64)
    covs = torch.stack([0.05 * torch.eye(2, dtype=torch.float64),
                        torch.tensor([[0.08, 0.03], [0.03, 0.04]], dtype=torch.float64),
                        0.02 * torch.eye(2, dtype=torch.float64)])
    gmm = GMMPrior([0.3, 0.5, 0.2], means, covs)
    out = {}
    for name, prior, x in (("gaussian", gauss, torch.randn(64, d, generator=torch.Generator().manual_seed(0),
                                                           dtype=torch.float64)),
                           ("gmm", gmm, torch.randn(32, 2, generator=torch.Generator().manual_seed(5),
                                                    dtype=torch.float64))):
        T = prior.schedule.T
        if name == "gaussian":
            ref = prior.pf_ode_map(x, T - 1, -1)
        else:
            ref = run_solver(prior, "dpm-solver", {"method": "singlestep-fixed", "order": 3}, 600, x, None).x
        tmp = tempfile.mkdtemp()
        start = time.process_time()
        ems = compute_ems(prior, (512,) + tuple(x.shape[1:]), levels=200, generator=torch.Generator().manual_seed(3))
        ems_path = str(ems.save(os.path.join(tmp, "ems.safetensors")))
        table = {"ems_cpu_seconds": round(time.process_time() - start, 2), "solvers": {}}
        for label, sampler, options in SOLVERS:
            row = {}
            for nfe in NFES:
                res = run_solver(prior, sampler, options, nfe, x, ems_path)
                if res is not None:
                    row[str(res.nfe)] = float((res.x - ref).norm() / ref.norm())
            table["solvers"][label] = row
            print(name, label, {k: f"{v:.1e}" for k, v in row.items()}, flush=True)
        out[name] = table
    results["analytic"] = {"metric": "relative L2 error at t = 0 against the exact PF map (gaussian) or a "
                                     "600-call third-order solve (gmm)", **out}


# -- natural-rgb ------------------------------------------------------------------------------------------

def natural(results: dict, size: int, images: int, ems_path: str | None, ref_path: str | None,
            ems_states: int = 128, prior_name: str = "natural-rgb") -> None:
    from restore.priors.ems import compute_ems, load_ems

    prior = restore.prior(prior_name, device="cpu")
    x = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(0))
    cached = torch.load(ref_path) if ref_path and os.path.exists(ref_path) else None
    if cached is not None and cached["fingerprint"] == prior.fingerprint() and torch.equal(cached["x"], x):
        ref_x, ref_cpu = cached["ref"], cached["cpu_seconds"]
    else:
        start = time.process_time()
        ref_x = run_solver(prior, "ddim", {"spacing": "guided"}, 1000, x, None).x_model
        ref_cpu = time.process_time() - start
        if ref_path:
            torch.save({"fingerprint": prior.fingerprint(), "x": x, "ref": ref_x, "cpu_seconds": ref_cpu}, ref_path)
    entry = {"prior": prior_name, "gaussian_blend": getattr(prior, "gaussian_blend", None) is not None,
             "fingerprint": prior.fingerprint(), "shape": list(x.shape),
             "reference": "ddim, 1000 steps (every training level), same initial noise",
             "metric": "RMS difference of the final state to the reference, [0, 1] units",
             "reference_cpu_seconds": round(ref_cpu, 1)}
    if ems_path is None:
        ems_path = os.path.join(tempfile.mkdtemp(), "ems.safetensors")
        start = time.process_time()
        with torch.no_grad():
            ems = compute_ems(prior, (ems_states, 3, 32, 32), levels=100, generator=torch.Generator().manual_seed(0),
                              batch=16)
        ems.save(ems_path)
        entry["ems"] = {"states": ems_states, "size": 32, "levels": 100,
                        "cpu_seconds": round(time.process_time() - start, 1)}
    else:
        ems = load_ems(ems_path, prior.fingerprint())
        entry["ems"] = {"file": os.path.basename(ems_path), "states": ems.states, "levels": int(ems.levels.numel())}
    solvers = {}
    for label, sampler, options in SOLVERS:
        if label.startswith("ddim+"):
            continue  # momentum is for guided sampling; its unconditional accuracy is in the analytic tables
        row, cpu, needed = {}, {}, None
        for nfe in NATURAL_NFES:
            if needed is not None and nfe > 2 * needed:
                break
            if nfe > 50 and sampler != "ddim":
                break
            start = time.process_time()
            res = run_solver(prior, sampler, options, nfe, x, ems_path)
            if res is None:
                continue
            rms = float(((res.x_model - ref_x) / prior.model_scale).pow(2).mean().sqrt())
            row[str(res.nfe)] = rms
            cpu[str(res.nfe)] = round(time.process_time() - start, 2)
            if needed is None and rms <= 0.01:
                needed = res.nfe
        solvers[label] = {"rms": row, "cpu_seconds": cpu, "nfe_to_0.01": needed}
        print("natural-rgb", label, needed, {k: f"{v:.4f}" for k, v in row.items()}, flush=True)
    entry["solvers"] = solvers
    results["natural"] = entry


# -- DDS deblurring -----------------------------------------------------------------------------------------

def load_crops(n: int, size: int, folder: str = VAL_DIR, mode: str = "RGB") -> torch.Tensor:
    from PIL import Image

    if not os.path.isdir(folder):
        raise SystemExit(f"the held-out photos are not at {folder}; run with --parts analytic,natural")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".png")))
    crops = []
    for i in range(n):
        im = np.asarray(Image.open(os.path.join(folder, files[(3 * i) % len(files)])).convert(mode), dtype=np.float32)
        im = (im / 255).reshape(im.shape[0], im.shape[1], -1)
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        crops.append(torch.from_numpy(np.ascontiguousarray(im[y:y + size, x:x + size].transpose(2, 0, 1))))
    return torch.stack(crops)


DDS_RUNS = [("dds (default)", 50, {}), ("dds (100 steps)", 100, {})] + [
    (f"dds {label}", nfe, opts) for nfe in (10, 15, 20, 25) for label, opts in (
        ("ddim step", {}), ("dpm-solver++ step", {"step": "dpm-solver++"}))] + [
    (f"dds {label}", nfe, opts) for nfe in (10, 20) for label, opts in (
        ("sde-dpm-solver++ step", {"step": "sde-dpm-solver++"}),
        ("ddim step, eta=0", {"eta": 0.0}), ("dpm-solver++ step, eta=0", {"step": "dpm-solver++", "eta": 0.0}))] + [
    (f"dds {label}", 20, opts) for label, opts in (
        ("ddim step, eta=0.95", {"eta": 0.95}), ("dpm-solver++ step, eta=0.95", {"step": "dpm-solver++", "eta": 0.95}))] + [
    # less re-noising lets a multistep step follow a smoother path, but DDS itself loses more (session 9)
    (f"dds {label}, eta={eta}", 25, dict(opts, eta=eta)) for eta in (0.5, 0.8) for label, opts in (
        ("ddim step", {}), ("dpm-solver++ step", {"step": "dpm-solver++"}))]

MOMENTUM_RUNS = [("dds (default)", 50, {})] + [
    (f"dds {label}{', eta=0' if eta == 0 else ''}", nfe, dict(opts, **({"eta": 0.0} if eta == 0 else {})))
    for eta in (0.85, 0) for nfe in (10, 20) for label, opts in (
        ("plain", {}), ("hb 0.8", {"momentum": "hb", "beta": 0.8}), ("ghvb 1.8", {"momentum": "ghvb", "beta": 0.8}))]


def deblur_runs(prior_name: str, x: torch.Tensor, runs) -> dict:
    from restore.metrics import psnr
    from restore_imaging.blur import GaussianBlur

    blur = GaussianBlur(2.0)
    sigma_y = 0.01
    y = blur(x) + sigma_y * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    problem = restore.Problem(y, blur, restore.operators.GaussianNoise(sigma_y))
    prior = restore.prior(prior_name, device="cpu")
    # what `restore deblur --sampler dds` runs: the task's DDS options (gamma_rule="snr"), the run's on top
    task_options = {k: v for k, v in get_task("deblur").sampler_defaults.get("dds", {}).items() if k != "steps"}
    rows = {}
    for label, steps, opts in runs:
        start = time.process_time()
        with torch.no_grad():
            res = restore.sampler("dds", steps=steps, **{**task_options, **opts}).run(
                prior, problem, generator=torch.Generator().manual_seed(0))
        p = [float(psnr(res.x[i:i + 1], x[i:i + 1])) for i in range(x.shape[0])]
        rows[f"{label} @{res.nfe} NFE"] = {"nfe": res.nfe, "options": {**task_options, **opts},
                                           "psnr_mean": float(np.mean(p)), "psnr": p,
                                           "cpu_seconds": round(time.process_time() - start, 1)}
        print(prior_name, label, res.nfe, f"{np.mean(p):.2f}", flush=True)
    return rows


def dds(results: dict, crops: int) -> None:
    rows = deblur_runs("natural-rgb", load_crops(crops, 64), DDS_RUNS)
    results["dds_deblur"] = {"task": "gaussian blur sigma 2, noise 0.01, 64x64 centre crops of cbsd432/val, "
                                     "natural-rgb", "crops": crops, "runs": rows}


def momentum(results: dict, crops: int) -> None:
    rows = deblur_runs("natural-gray", load_crops(crops, 64, GRAY_VAL_DIR, "L"), MOMENTUM_RUNS)
    results["momentum_deblur"] = {"task": "gaussian blur sigma 2, noise 0.01, 64x64 centre crops of bsd400/val, "
                                          "natural-gray", "crops": crops, "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="analytic,natural,dds,momentum")
    parser.add_argument("--prior", default="natural-rgb",
                        help="natural part: prior name or folder (e.g. a copy calibrated by restore_models.calibrate)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--crops", type=int, default=4)
    parser.add_argument("--ems", default=None, help="natural-rgb statistics file (default: computed here)")
    parser.add_argument("--reference", default=None, help="cache file of the natural-rgb 1000-step reference")
    parser.add_argument("--ems-states", type=int, default=128,
                        help="trajectories of the natural-rgb statistics (32 gave half the accuracy at 20 NFE)")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "fast_solvers.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = json.load(open(args.output)) if os.path.exists(args.output) else {}
    parts = args.parts.split(",")
    if "analytic" in parts:
        analytic(results)
        write_json(args.output, results)
    if "natural" in parts:
        natural(results, args.size, args.images, args.ems, args.reference, args.ems_states, args.prior)
        write_json(args.output, results)
    if "dds" in parts:
        dds(results, args.crops)
        write_json(args.output, results)
    if "momentum" in parts:
        momentum(results, args.crops)
        write_json(args.output, results)
    results["torch_threads"] = 1
    results["machine"] = machine()  # the shipped weights' fingerprints: python -m bench.stale
    results.pop("commit", None)  # older files recorded the commit alone; machine() has it
    write_json(args.output, results)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Benchmark runner: every task × method × NFE budget on fixed images, with classical baselines.

    python -m bench.run --suite quick -o bench/results/quick.json [--readme]
    python -m bench.run --suite full  -o bench/results/full.json  --readme     # hours; run in background

Writes the raw JSON (with a machine description), PSNR-vs-NFE plots next to it, and with ``--readme``
the Markdown table between the bench markers of README.md. Times are wall-clock on a shared machine:
read medians and ratios, not absolute values.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import restore
from restore.errors import RestoreError
from restore.metrics import psnr, ssim
from restore.plan import chain_seed, make_plan
from restore.tasks import get_task

from . import baselines
from .memory import peak_rss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Case:
    """One benchmark task: a registered task with fixed options on fixed images."""

    name: str
    task: str
    options: dict
    noise: float
    images: str = "natural"   # "natural" (sample_images) or "phantom"


@dataclass(frozen=True)
class Suite:
    cases: tuple[Case, ...]
    methods: dict[str, tuple[int, ...]]  # sampler -> step budgets
    image_names: tuple[str, ...]
    side: int
    overhead_steps: int
    overhead_side: int = 256


# The blur/SR cases keep the periodic boundary they were measured with (their classical baselines are
# FFT-based); bench/real_blur.py measures the boundary models on the physics of real photos.
CASES = (
    Case("deblur-gaussian", "deblur", {"kernel": "gaussian:2.0", "boundary": "circular"}, 0.01),
    Case("deblur-motion", "deblur", {"kernel": "motion:15:30", "boundary": "circular"}, 0.01),
    Case("sr-4x", "super-resolve", {"scale": 4, "boundary": "circular"}, 0.01),
    Case("inpaint-random-50", "inpaint", {"mask": "random:0.5"}, 0.01),
    Case("inpaint-box", "inpaint", {"mask": "box"}, 0.01),
    Case("denoise-25", "denoise", {}, 25 / 255),
    Case("mri-4x", "mri", {"acceleration": 4}, 0.0, "phantom"),
    Case("mri-8x", "mri", {"acceleration": 8}, 0.0, "phantom"),
    Case("ct-30-views", "ct", {"views": 30}, 0.0, "phantom"),
    Case("ct-60-views", "ct", {"views": 60}, 0.0, "phantom"),
)

SUITES = {
    "quick": Suite(CASES, {"tweedie": (1,), "dds": (20, 50), "dps": (50,), "red-diff": (50,)},
                   ("astronaut", "coffee"), 128, 10),
    # ~1.5 h on one core: more images (one grayscale), step budgets and samplers than the quick suite
    "full": Suite(CASES, {"tweedie": (1,), "dds": (20, 50, 100), "dps": (100,), "red-diff": (50, 200),
                          "stsl": (50,), "mrs": (10, 20), "ir-sde": (100,)},
                  ("astronaut", "coffee", "camera"), 128, 20),
    "smoke": Suite(CASES[:1], {"dds": (3,)}, ("astronaut",), 32, 2, overhead_side=32),
}

#: Samplers that need a prior of another kind than the task's default (mean-reverting models are trained
#: per task): the benchmark uses the shipped one when it fits the case, and skips the method otherwise.
METHOD_PRIORS = {"mrs": {"denoise-25": "mr-denoise-25"}, "ir-sde": {"denoise-25": "mr-denoise-25"}}


#: ``{prior name: folder}`` that :func:`load_prior` reads instead of the shipped prior (``--priors DIR``)
PRIOR_FOLDERS: dict[str, str] = {}


def use_prior_folders(root: str) -> dict[str, str]:
    """Read every shipped prior that has a folder ``root/<name>`` from there (e.g. calibrated copies)."""
    PRIOR_FOLDERS.update({name: os.path.join(root, name) for name in os.listdir(root)
                          if os.path.exists(os.path.join(root, name, "restore_prior.json"))})
    return dict(PRIOR_FOLDERS)


@functools.lru_cache(maxsize=None)
def load_prior(name: str, channels: int = 3, domain: str = "natural") -> restore.DiffusionPrior:
    """Each prior is read from disk once per benchmark process, not once per run."""
    return restore.prior(PRIOR_FOLDERS.get(name, name), channels=channels, domain=domain, device="cpu")


def write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (a partial file, then a rename)."""
    with open(path + ".partial", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".partial", path)


def weights_files() -> dict[str, str]:
    """``{prior: path}`` of every shipped prior's weights file."""
    from restore_models.plugin import WEIGHTS

    out = {}
    for name in sorted(os.listdir(WEIGHTS)):
        for rel in ("unet/diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors"):
            path = os.path.join(WEIGHTS, name, rel)
            if os.path.exists(path):
                out[name] = path
                break
    return out


def shipped_weights() -> dict[str, str]:
    """``{prior: sha256[:12]}`` of every shipped prior's weights file (``+`` a hash of its Gaussian blend when it
    has one): what a result was measured with, so ``python -m bench.stale`` can list results that predate a
    re-ship."""
    from restore_models.plugin import WEIGHTS
    from restore_models.training import weights_fingerprint

    out = {}
    for name, path in weights_files().items():
        meta = Path(WEIGHTS) / name / "restore_prior.json"
        out[name] = weights_fingerprint(path) + blend_suffix(json.loads(meta.read_text()) if meta.exists() else {})
    return out


def blend_suffix(meta: dict) -> str:
    """``"+<digest>"`` for a prior whose ``restore_prior.json`` carries a Gaussian blend, else ``""``: the blend
    changes every sampler result as much as the weights do."""
    from restore.priors.gaussian_blend import GaussianBlend

    blend = meta.get("gaussian_blend")
    return "" if not blend else "+" + GaussianBlend.from_dict(blend).digest()


def machine() -> dict:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "weights": shipped_weights()}


def load_images(case: Case, suite: Suite) -> list[tuple[str, restore.Image]]:
    side = suite.side
    if case.images == "phantom":
        from restore.phantoms import shepp_logan_2d

        return [("shepp-logan", restore.Image(shepp_logan_2d(side)))]
    out = []
    for name in suite.image_names:
        img = restore.read(os.path.join(ROOT, "sample_images", f"{name}.png"))
        H, W = img.data.shape[-2:]
        top, left = (H - side) // 2, (W - side) // 2
        out.append((name, restore.Image(img.data[..., top:top + side, left:left + side].contiguous(), img.meta)))
    return out


def case_options(case: Case, image: restore.Image) -> dict:
    opts = dict(case.options)
    if opts.get("mask") == "box":
        H, W = image.data.shape[-2:]
        opts["mask"] = f"box:{H // 4},{W // 4},{H // 2},{W // 2}"
    return opts


def sampler_generator(seed: int, chain: int = 0) -> torch.Generator:
    """The sampler's generator in a run whose simulated measurement noise was drawn from ``seed``: the CLI's
    ``chain_seed(seed, chain)``, so the sampler's draws never replay that noise. Reusing ``seed`` itself makes
    the sampler's first draw the measurement noise when that was the first draw and has the image's shape:
    DPS and FlowChef deblurring gained 1-2.5 dB from it in bench.flows, an IR-SDE chain lost 2.7 dB."""
    return torch.Generator().manual_seed(chain_seed(seed, chain))


def build_setup(case: Case, image: restore.Image, seed: int):
    task = get_task(case.task)
    extra = {"method": "diffusion"} if case.images == "phantom" else {}
    return task, task.build(image=image, noise=case.noise, simulate=True,
                            generator=torch.Generator().manual_seed(seed), **case_options(case, image), **extra)


def classical(case: Case, setup) -> dict[str, torch.Tensor]:
    problem = setup.problem
    y, op = problem.y, problem.operator
    if case.task == "deblur":
        return baselines.deblur_baselines(y, op, case.noise)
    if case.task == "denoise":
        return baselines.denoise_baselines(y, case.noise)
    if case.task == "super-resolve":
        return baselines.sr_baselines(y, int(case.options["scale"]))
    if case.task == "inpaint":
        return baselines.inpaint_baselines(y, op.mask_for(y) if hasattr(op, "mask_for") else op.mask)
    return {}


MEDICAL_BASELINES = {"mri": ("zero-filled", "sense", "tv"), "ct": ("fbp", "tv")}


def medical_baselines(case: Case, image: restore.Image, seed: int) -> dict[str, torch.Tensor]:
    """MRI/CT baselines are the task's own ``--method`` choices (samplers that ignore the prior)."""
    out = {}
    for method in MEDICAL_BASELINES.get(case.task, ()):
        task = get_task(case.task)
        setup = task.build(image=image, noise=case.noise, simulate=True, generator=torch.Generator().manual_seed(seed),
                           **case_options(case, image), method=method)
        prior = load_prior(restore.default_prior_name(1, task.domain), 1, task.domain)
        sampler = restore.sampler(setup.sampler, **setup.sampler_options.get(setup.sampler, {}))
        out[method] = sampler.run(prior, setup.problem, generator=sampler_generator(seed)).x
    return out


def run_method(case: Case, image: restore.Image, sampler_name: str, steps: int, seed: int) -> dict | None:
    task, setup = build_setup(case, image, seed)
    ref = setup.reference
    channels = setup.problem.x_shape[1]
    prior_name = restore.default_prior_name(channels, task.domain)
    if sampler_name in METHOD_PRIORS:
        prior_name = METHOD_PRIORS[sampler_name].get(case.name)
        if prior_name is None:
            return {"skipped": f"no {sampler_name} prior for {case.name}"}
    try:
        prior = load_prior(prior_name, channels, task.domain)
        layers = (task.sampler_defaults.get(sampler_name, {}), setup.sampler_options.get(sampler_name, {}))
        sampler = make_plan(sampler_name, steps=steps, option_layers=layers).build_sampler()
        with peak_rss() as mem:  # the engine pads to the network's size multiple and crops back
            result = sampler.run(prior, setup.problem, generator=sampler_generator(seed))
    except RestoreError as exc:  # incompatible sampler/prior pairs are skipped, not failures
        return {"skipped": str(exc)}
    x = result.x
    x = x.reshape(ref.shape) if x.numel() == ref.numel() else x
    return {"prior": prior_name, "psnr": psnr(x.cpu(), ref.cpu()), "ssim": ssim(x.cpu(), ref.cpu()),
            "nfe": result.nfe, "vjp": result.vjp, "seconds": result.seconds, "peak_mb": mem["peak_mb"]}


@contextmanager
def network_clock(prior):
    """Accumulate the wall time spent inside the prior's network forward calls during the block."""
    clock = {"seconds": 0.0, "calls": 0}
    forward = prior.model_output

    def timed(x, k):
        t0 = time.perf_counter()
        out = forward(x, k)
        clock["seconds"] += time.perf_counter() - t0
        clock["calls"] += 1
        return out

    prior.model_output = timed
    try:
        yield clock
    finally:
        del prior.model_output  # drop the instance attribute; the class method is back


def median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up: allocator and oneDNN caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def overhead(suite: Suite, repeats: int = 3) -> list[dict]:
    """Engine overhead at 256×256 on Gaussian deblurring, per sampler.

    ``ratio`` is the issue's measure: wall / (NFE × forward time), forward+backward for samplers that
    backpropagate, with the reference times measured just before each run. Because the same network call
    can take a few per cent longer inside a run than in a tight loop (cache state after the operator's
    FFTs), ``engine_share`` also reports the fraction of wall time spent outside the network, from
    the forward calls timed inside the run (and the reference backward time for gradient samplers).
    Medians over ``repeats`` runs.
    """
    side = suite.overhead_side
    image = restore.read(os.path.join(ROOT, "sample_images", "astronaut.png"))
    image = restore.Image(image.data[..., :side, :side].contiguous(), image.meta)
    task, setup = build_setup(CASES[0], image, 0)
    prior = load_prior(restore.default_prior_name(3, "natural"))
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.no_grad():
            prior.eps(x, 500)

    def forward_backward():
        xr = x.clone().requires_grad_(True)
        prior.eps(xr, 500).sum().backward()

    rows = []
    for name, budgets in suite.methods.items():
        if max(budgets) == 1:  # one network call: nothing of the engine's to measure
            continue
        try:
            # the suite's step count over the task's tuned one: the overhead is per step
            cfg = {**task.sampler_defaults.get(name, {}), "steps": suite.overhead_steps}
            sampler = restore.sampler(name, **cfg)
            sampler.check(prior, setup.problem)
        except RestoreError as exc:
            rows.append({"sampler": name, "skipped": str(exc)})
            continue
        fwd, fb = median_time(forward), median_time(forward_backward)
        runs = []
        for _ in range(repeats):
            with network_clock(prior) as clock:
                result = sampler.run(prior, setup.problem, generator=torch.Generator().manual_seed(0))
            backward = result.vjp * (fb - fwd)
            runs.append((result.seconds, clock["seconds"], backward))
        wall, net, backward = (float(np.median([r[i] for r in runs])) for i in range(3))
        unit = fb if result.vjp else fwd
        rows.append({"sampler": name, "nfe": result.nfe, "vjp": result.vjp, "seconds": wall,
                     "forward_s": fwd, "forward_backward_s": fb, "network_in_run_s": net,
                     "ratio": wall / (result.nfe * unit) if result.nfe else None,
                     "engine_share": max(0.0, (wall - net - backward) / wall)})
    return rows


def load_progress(path: str) -> dict[tuple[str, str], list[dict]]:
    """Finished (case, image) blocks of an interrupted run: one JSON line per block."""
    done: dict[tuple[str, str], list[dict]] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    block = json.loads(line)
                    done[(block["case"], block["image"])] = block["runs"]
    return done


def run_suite(suite_name: str, seed: int = 0, log=print, progress_path: str | None = None) -> dict:
    """Run a suite. With ``progress_path`` every finished (case, image) block is appended there, and blocks
    already in it are not run again, so an interrupted hours-long run resumes where it stopped."""
    suite = SUITES[suite_name]
    registered_tasks = {c.name for c in restore.components("task")}
    registered_samplers = {c.name for c in restore.components("sampler")}
    done = load_progress(progress_path) if progress_path else {}
    runs = []
    for case in suite.cases:
        if case.task not in registered_tasks:
            log(f"skip {case.name}: task '{case.task}' not installed")
            continue
        for image_name, image in load_images(case, suite):
            if (case.name, image_name) in done:
                runs += done[(case.name, image_name)]
                log(f"{case.name:18s} {image_name:12s} (from {progress_path})")
                continue
            first = len(runs)
            _, setup = build_setup(case, image, seed)
            ref = setup.reference
            base = medical_baselines(case, image, seed) if case.images == "phantom" else classical(case, setup)
            for method, x in base.items():
                x = x.reshape(ref.shape) if x.numel() == ref.numel() else x
                runs.append({"case": case.name, "image": image_name, "method": method, "kind": "classical",
                             "psnr": psnr(x.cpu().float(), ref.cpu().float()),
                             "ssim": ssim(x.cpu().float(), ref.cpu().float()), "nfe": 0})
            y = setup.problem.y
            if y.shape == ref.shape and not y.is_complex():
                runs.append({"case": case.name, "image": image_name, "method": "input", "kind": "classical",
                             "psnr": psnr(y.clamp(0, 1).cpu(), ref.cpu()), "ssim": ssim(y.clamp(0, 1).cpu(), ref.cpu()),
                             "nfe": 0})
            for sampler_name, budgets in suite.methods.items():
                if sampler_name not in registered_samplers:
                    continue
                for steps in budgets:
                    row = run_method(case, image, sampler_name, steps, seed)
                    if row is None or "skipped" in row:
                        continue
                    row.update({"case": case.name, "image": image_name, "method": sampler_name, "kind": "diffusion",
                                "steps": steps})
                    runs.append(row)
                    log(f"{case.name:18s} {image_name:12s} {sampler_name:9s} steps {steps:5d} "
                        f"PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} NFE {row['nfe']} {row['seconds']:.1f}s")
            if progress_path:
                with open(progress_path, "a") as f:
                    f.write(json.dumps({"case": case.name, "image": image_name, "runs": runs[first:]}) + "\n")
    return {"suite": suite_name, "machine": machine(), "seed": seed, "priors": priors_used(runs), "runs": runs,
            "overhead": overhead(suite)}


def priors_used(runs: list[dict]) -> dict[str, dict]:
    """Training steps and fingerprint of every prior the runs used (the numbers move as priors are retrained)."""
    out = {}
    for name in sorted({r["prior"] for r in runs if r.get("prior")}):
        prior = load_prior(name)
        meta = getattr(prior, "metadata", {}) or {}
        out[name] = {"training_steps": meta.get("training_steps"), "fingerprint": prior.fingerprint()}
    return out


def best_per_case(rows: list[dict]):
    """``(case, best diffusion row, best classical row)`` for every case that has both (input excluded)."""
    for case in dict.fromkeys(r["case"] for r in rows):
        diff = [r for r in rows if r["case"] == case and r["kind"] == "diffusion"]
        cls = [r for r in rows if r["case"] == case and r["kind"] == "classical" and r["method"] != "input"]
        if diff and cls:
            yield case, max(diff, key=lambda r: r["psnr"]), max(cls, key=lambda r: r["psnr"])


def summarise(data: dict) -> list[dict]:
    """Mean over images per (case, method, steps); then the best budget per (case, method)."""
    groups: dict[tuple, list[dict]] = {}
    for r in data["runs"]:
        groups.setdefault((r["case"], r["method"], r.get("steps", 0)), []).append(r)
    means = []
    for (case, method, steps), rows in groups.items():
        means.append({"case": case, "method": method, "steps": steps, "kind": rows[0]["kind"],
                      "psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
                      "nfe": int(np.median([r["nfe"] for r in rows])),
                      "seconds": float(np.median([r.get("seconds", 0.0) for r in rows])), "n": len(rows)})
    best: dict[tuple, dict] = {}
    for m in means:
        key = (m["case"], m["method"])
        if key not in best or m["psnr"] > best[key]["psnr"]:
            best[key] = m
    order = [c.name for c in CASES]
    return sorted(best.values(), key=lambda m: (order.index(m["case"]) if m["case"] in order else 99, -m["psnr"]))


def markdown(data: dict, json_path: str) -> str:
    rows = summarise(data)
    mach = data["machine"]
    lines = [f"Suite `{data['suite']}` from `{os.path.relpath(json_path, ROOT)}` (commit {mach['commit']}, "
             f"{mach['cpu']}, {mach['cores']} cores, torch {mach['torch']}, {mach['date']}). Mean over images; "
             "best step budget per method; time is the median per image." + priors_line(data), "",
             "| task | method | PSNR | SSIM | NFE | time (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        t = f"{r['seconds']:.1f}" if r["kind"] == "diffusion" else "-"
        nfe = str(r["nfe"]) if r["kind"] == "diffusion" else "-"
        lines.append(f"| {r['case']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {nfe} | {t} |")
    lines += ["", "Margin of the best diffusion sampler over the best classical baseline (dB):", ""]
    for case, d, c in best_per_case(rows):
        lines.append(f"- {case}: {d['method']} {d['psnr']:.2f} vs {c['method']} {c['psnr']:.2f} → "
                     f"{d['psnr'] - c['psnr']:+.2f} dB")
    over = [o for o in data.get("overhead", []) if o.get("ratio")]
    if over:
        side = SUITES[data["suite"]].overhead_side if data["suite"] in SUITES else 256
        lines += ["", f"Engine overhead at {side}×{side}, Gaussian deblur: ratio = wall / (NFE × network time, "
                  "forward+backward for gradient samplers); engine share = fraction of wall time outside the "
                  "network calls timed inside the run (medians of 3 runs)" + (
                      f"; re-measured {data['overhead_machine']['date']} at commit {data['overhead_machine']['commit']}"
                      if "overhead_machine" in data else "") + ":", "",
                  "| sampler | NFE | VJP | ratio | engine share |", "|---|---|---|---|---|"]
        lines += [f"| {o['sampler']} | {o['nfe']} | {o['vjp']} | {o['ratio']:.3f} | "
                  f"{100 * o.get('engine_share', float('nan')):.1f} % |" for o in over]
    return "\n".join(lines)


def priors_line(data: dict) -> str:
    priors = data.get("priors") or {}
    if not priors:
        return ""
    return " Priors: " + ", ".join(f"`{name}` ({p['training_steps']} training steps)" if p.get("training_steps")
                                   else f"`{name}`" for name, p in priors.items()) + "."


def plots(data: dict, out_prefix: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in data["runs"]:
        if r["kind"] != "diffusion":
            continue
        groups.setdefault(r["case"], {}).setdefault(r["method"], []).append((r["nfe"], r["psnr"]))
    paths = []
    for case, methods in groups.items():
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for method, pts in methods.items():
            by_nfe: dict[int, list[float]] = {}
            for nfe, p in pts:
                by_nfe.setdefault(nfe, []).append(p)
            xs = sorted(by_nfe)
            ax.plot(xs, [np.mean(by_nfe[x]) for x in xs], marker="o", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("NFE")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(case)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = f"{out_prefix}_{case}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def update_readme(table: str, suite: str = "quick", readme: str = os.path.join(ROOT, "README.md")) -> None:
    """Write ``table`` between the suite's markers (the quick suite's are ``bench:table``)."""
    tag = "table" if suite == "quick" else suite
    start, end = f"<!-- bench:{tag}:start -->", f"<!-- bench:{tag}:end -->"
    text = open(readme).read()
    if start not in text:
        anchor = "<!-- bench:table:end -->" if "<!-- bench:table:end -->" in text else "<!-- section: bench -->"
        text = text.replace(anchor, f"{anchor}\n\n{start}\n{end}", 1)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    tmp = readme + ".partial"
    with open(tmp, "w") as f:
        f.write(f"{head}{start}\n{table}\n{end}{tail}")
    os.replace(tmp, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument("-o", "--output", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--resume", action="store_true",
                        help="keep the finished blocks of an interrupted run (OUTPUT.progress.jsonl) instead of redoing them")
    parser.add_argument("--overhead-only", action="store_true",
                        help="re-measure only the engine overhead into the JSON at -o (e.g. on a quiet machine)")
    parser.add_argument("--render", action="store_true",
                        help="do not run: re-render the table, plots (and README with --readme) from the JSON at -o")
    args = parser.parse_args(argv)
    out = args.output or os.path.join(ROOT, "bench", "results", f"{args.suite}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if args.render or args.overhead_only:
        with open(out) as f:
            data = json.load(f)
        if args.overhead_only:
            data["overhead"] = overhead(SUITES[data["suite"]])
            data["overhead_machine"] = machine()
            write_json(out, data)
    else:
        progress = out + ".progress.jsonl"
        if not args.resume and os.path.exists(progress):
            os.remove(progress)
        data = run_suite(args.suite, args.seed, log=lambda m: print(m, file=sys.stderr, flush=True),
                         progress_path=progress)
        write_json(out, data)
        os.remove(progress)
    table = markdown(data, out)
    plots(data, os.path.splitext(out)[0])
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(table + "\n")
    if args.readme:
        update_readme(table, data["suite"])
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

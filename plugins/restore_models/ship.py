"""Copy a trained run into ``weights/<name>`` and write its model card with measured numbers.

Run: ``python -m restore_models.ship RUN_DIR [--no-eval]``. The table is measured here, on the
validation images of ``data.py`` (never used for training), next to BM3D on the same noisy inputs.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from restore.errors import InvalidInputError

from .calibrate import calibrate
from .data import PRESETS, SOURCES_AND_LICENCES, data_root, load_medical, load_natural
from .evaluate import validation_crop, validation_set
from .plugin import WEIGHTS
from .training import init_weights, weights_fingerprint

SIGMAS = (15 / 255, 25 / 255, 50 / 255)


def validation_images(preset_name: str, side: int = 256) -> list[tuple[str, torch.Tensor]]:
    """The preset's held-out images: its collections' val splits (when prepared) and its wheel images."""
    preset = PRESETS[preset_name]
    out = []
    for name in preset.collections:
        try:
            out += [(f"{name}-val|{key}", im) for key, im in validation_set(f"{name}-val", preset.channels,
                                                                             data_root(), side)]
        except InvalidInputError as exc:
            print(f"warning: {exc}; validating on the wheel images only", file=sys.stderr)
    for key in preset.validation:
        ims = load_medical(key) if preset.domain == "medical" else [load_natural(key)]
        for i, im in enumerate(ims[:2]):
            out.append((f"wheels-val|{key}#{i}" if len(ims) > 1 else f"wheels-val|{key}",
                        validation_crop(im, preset.channels, side)))
    return out


def independent_images(preset_name: str) -> list[tuple[str, torch.Tensor]]:
    """The preset's ``independent`` images (the ``dipy-val`` slices, when dipy is installed): reported on the card,
    not used to decide a ship."""
    if not PRESETS[preset_name].independent:
        return []
    try:
        return [(f"dipy-val|{key}", im) for key, im in validation_set("dipy-val", 1, data_root())]
    except InvalidInputError as exc:
        print(f"warning: {exc}; the card leaves out the dipy-val slices", file=sys.stderr)
        return []


def mean_psnr(rows, sigma: float) -> float:
    return float(np.mean([r.prior_psnr for r in rows if abs(r.sigma - sigma) < 1e-9]))


def forward_ms(prior, side: int = 256, repeats: int = 3) -> float:
    x = torch.randn(1, prior.channels, side, side)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            prior.eps(x, 500)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:]))


def training_history(meta: dict) -> list[dict]:
    """Every stage behind a prior, oldest first. A shipped prior's ``history`` already ends with its own
    stage; a run without one is its own single stage."""
    if meta.get("history"):
        return list(meta["history"])
    return [{"steps": meta["training_steps"], "minutes": meta["training_minutes"],
             "init": (meta.get("train_config") or {}).get("init"),
             "data": [str(d) for d in (meta.get("train_config") or {}).get("data", ())]}]


def run_history(meta: dict, weights: Path = WEIGHTS) -> list[dict]:
    """The stages behind a run's weights: those of the prior it started from (``--init``: a shipped prior,
    this one or another, or a folder; an unshipped run folder is followed back through its own ``--init``),
    then the run's own stage."""
    init = (meta.get("train_config") or {}).get("init")
    origin = (weights / init if (weights / init).is_dir() else Path(init)) if init else None
    previous = json.loads((origin / "restore_prior.json").read_text()) \
        if origin is not None and (origin / "restore_prior.json").exists() else {}
    if not previous:
        earlier = []
    elif previous.get("history"):
        earlier = [{**h, "prior": h.get("prior", previous.get("name"))} for h in previous["history"]]
    else:  # an unshipped run: its own stage on top of whatever it started from, followed back to a shipped prior
        earlier = run_history(previous, weights)
    stage = {**training_history({**meta, "history": []})[-1], "prior": meta.get("name")}
    started_from = meta.get("init_weights")
    if started_from:
        stage["init_weights"] = started_from
    if not earlier:
        return [stage]
    if started_from:
        # a run that started from the origin's current weights is a new stage on top of them; one that started
        # from the weights the last stage started from is that stage, continued and shipped again
        continued = started_from != weights_fingerprint(init_weights(str(origin))) and \
            started_from == earlier[-1].get("init_weights", started_from)
    else:  # runs from before the record: same start, data and at least as many steps
        continued = earlier[-1]["init"] == stage["init"] and earlier[-1]["data"] == stage["data"] \
            and earlier[-1]["steps"] <= stage["steps"]
    return (earlier[:-1] if continued else earlier) + [stage]


COLLECTIONS = Path(__file__).parent / "collections"


def split_folder(folder: str) -> tuple[str, str]:
    """``(collection, split)`` of a prepared data folder such as ``/data/bsd400/train``."""
    path = Path(folder.rstrip("/"))
    return path.parent.name, path.name


def collections_used(preset, history: list[dict]) -> list[str]:
    """The prepared collections behind a prior: its preset's, and any whose train split a stage trained on."""
    names = list(preset.collections)
    for stage in history:
        for folder in stage.get("data", []):
            name = split_folder(folder)[0]
            if name not in names and (COLLECTIONS / f"{name}.json").exists():
                names.append(name)
    return names


def recipe_command(name: str, cfg: dict, preset) -> str:
    """The ``restore train prior`` command of a run's configuration (data folders under ``DATA/``)."""
    parts = [f"restore train prior --preset {name}"]
    for folder in cfg.get("data", []):
        parts.append("--data DATA/" + "/".join(split_folder(folder)))
    if cfg.get("init"):
        parts.append(f"--init {cfg['init']}")
    fraction = cfg.get("procedural_fraction")
    if fraction is not None and fraction != preset.procedural_fraction:
        parts.append(f"--procedural-fraction {fraction:g}")
    defaults = {"lr": 3e-4, "lr_schedule": "constant", "timesteps": "restoration", "objective": "eps"}
    for key, default in defaults.items():
        if cfg.get(key, default) != default:
            parts.append(f"--{key.replace('_', '-')} {cfg[key]:g}" if isinstance(cfg[key], float)
                         else f"--{key.replace('_', '-')} {cfg[key]}")
    return " ".join(parts + [f"-o runs/{name}"])


def model_card(meta: dict, rows, fwd_ms: float, size_mb: float, dtype: str) -> str:
    preset = PRESETS[meta["name"]]
    cfg = meta.get("train_config", {})
    history = meta.get("history", [])
    total_steps = sum(h["steps"] for h in history)
    total_hours = sum(h["minutes"] for h in history) / 60
    fraction = cfg.get("procedural_fraction")
    fraction = preset.procedural_fraction if fraction is None else fraction
    lines = [
        f"# {meta['name']}", "", meta.get("summary", ""), "",
        "## Model", "",
        f"- Architecture: diffusers `UNet2DModel`, self-attention only in the middle block (lowest resolution), block channels "
        f"{tuple(cfg.get('block_out_channels', ()))}, {cfg.get('layers_per_block', 1)} layer(s) per block, "
        f"{meta['channels']} channel(s) in/out; sizes must be multiples of 8 (the engine pads).",
        f"- Parameters: {meta['parameters']:,}; weights {size_mb:.1f} MB (safetensors, EMA, stored as {dtype}; "
        "loaded as float32).",
        f"- Objective: {'v' if cfg.get('objective') == 'v' else 'eps'}-prediction, DDPM linear betas 1e-4..0.02, "
        f"T = 1000, {cfg.get('timesteps', 'uniform')} noise levels; AdamW "
        f"(lr {cfg.get('lr')}, weight decay {cfg.get('weight_decay')}), EMA {cfg.get('ema_decay')}, batch "
        f"{cfg.get('batch_size')} random {cfg.get('crop')}² crops with flips and 90° rotations, "
        f"{'bf16 autocast' if cfg.get('precision') == 'bf16' else 'float32'}.",
        f"- Training: {total_steps} steps, {total_hours:.1f} h in all on a shared 2-core CPU (1 torch thread):",
    ]
    blend = meta.get("gaussian_blend")
    if blend:
        lines.insert(-1, "- High-noise blend (`gaussian_blend` in restore_prior.json, "
                         "`restore.priors.gaussian_blend`): x0̂ = w x0̂_network + (1 − w) x0̂_Gaussian with the "
                         "stationary Gaussian fit of natural images, w = 1 / (1 + (s/a / "
                         f"{blend['ratio_center']:.3f})^(1 / {blend['width']:.3f})), fitted on training crops by "
                         "`python -m restore_models.calibrate`.")
    for i, h in enumerate(history, 1):
        prior = h.get("prior") or meta["name"]
        data = ", ".join("/".join(split_folder(d)) for d in h.get("data", []))
        data = f"{data} and the {prior} preset's sources" if data else f"the {prior} preset's sources"
        start = f"fine-tuned from {h['init']} (the previous stage)" if h.get("init") else "from scratch"
        lines.append(f"  {i}. {prior}: {h['steps']} steps, {h['minutes']:.0f} min, {start}, on {data}.")
    lines += [
        f"- Recipe of the last stage: `{recipe_command(meta['name'], cfg, preset)}` (continue with "
        f"`--resume runs/{meta['name']}`). The recipe's options were compared at equal CPU time in "
        "`bench/results/training_recipe_quality.json` (the train-a-prior tutorial's table).",
        f"- Forward pass at 256×256 on this machine: {fwd_ms:.0f} ms (median of 3, CPU, float32).", "",
        "## Data", "",
    ]
    for name in collections_used(preset, history):
        info = json.loads((COLLECTIONS / f"{name}.json").read_text())
        n_train = sum(f["split"] == "train" for f in info["files"].values())
        lines.append(f"- `{name}`: {n_train} training images from {info['repository']} (commit "
                     f"{info['commit'][:7]}, `{info['path']}`), {len(info['files']) - n_train} held out for "
                     f"validation; file list with SHA-256 in `collections/{name}.json`; obtain with "
                     f"`python -m restore_models.prepare {name}`. These are Berkeley Segmentation Dataset images "
                     "(Corel-derived, distributed for research use; no licence stated by either repository); "
                     "they are not redistributed here.")
    lines += [
        f"- Offline sources from installed wheels: {', '.join(preset.sources)}; procedural fraction {fraction:.0%} "
        f"({'dead-leaves images with textures and blur' if preset.domain == 'natural' else 'random-ellipse and Shepp–Logan phantoms'}).",
        "- Validation (never trained on): " + "".join(f"the held-out split of `{name}`, " for name in preset.collections)
        + f"{', '.join(preset.validation)}"
        + (f"; as an independent check, {', '.join(preset.independent)} (a scanner and contrast no stage "
           "trained on; not used to decide a ship)" if preset.independent else "") + ".",
        "- Never used: the images behind `sample_images/` (" + ", ".join(
            ["skimage:astronaut", "skimage:coffee", "skimage:camera", "skimage:chelsea"]) + ") and the standard "
        "test sets (Set5/12/14, BSD68/CBSD68, Kodak24, McMaster, LIVE1, Urban100).",
        "- Licences: " + "; ".join(f"{k}: {v}" for k, v in SOURCES_AND_LICENCES.items()
                                   if k in {s.split(':')[0] for s in preset.sources + preset.validation
                                            + preset.independent}
                                   or k in ("dead-leaves", "phantoms")) + ".", "",
        "## One-step Tweedie denoising on the validation images", "",
        "Mean PSNR in dB over 256² centre crops (seed 0). BM3D: the `bm3d` package (CBM3D for colour) on the "
        "same noisy images.", "",
        "| validation images | n | σ | noisy | this prior | BM3D |", "|---|---|---|---|---|---|",
    ]
    groups: dict[str, list] = {}
    for r in rows:
        group = r.image.split("|")[0].removesuffix("-val")
        label = group if group in preset.collections else "dipy b=0 MRI (unseen)" if group == "dipy" else "wheel images"
        groups.setdefault(label, []).append(r)
    for group, sel_all in groups.items():
        for sigma in SIGMAS:
            sel = [r for r in sel_all if abs(r.sigma - sigma) < 1e-9]
            bms = [r.bm3d_psnr for r in sel if r.bm3d_psnr is not None]
            mean_bm = f"{np.mean(bms):.2f}" if len(bms) == len(sel) and sel else "n/a"
            lines.append(f"| {group} | {len(sel)} | {sigma * 255:.0f}/255 | {np.mean([r.noisy_psnr for r in sel]):.2f}"
                         f" | {np.mean([r.prior_psnr for r in sel]):.2f} | {mean_bm} |")
    lines += ["", "Reproduce: `python -m restore_models.ship runs/<name>` (re-measures and rewrites this card)."]
    return "\n".join(lines) + "\n"


def ship(run_dir: str, evaluate_now: bool = True, force: bool = False, bm3d_cache: str | None = None) -> Path:
    """Copy a run's EMA weights into ``weights/`` when they beat the shipped ones at σ = 25/255.

    The weights are stored as float16 when that moves the mean Tweedie PSNR by at most 0.01 dB at every σ.
    """
    from restore.priors.loading import load_prior_folder
    from safetensors.torch import load_file, save_file

    from .evaluate import evaluate

    run = Path(run_dir)
    meta = json.loads((run / "restore_prior.json").read_text())
    dest = WEIGHTS / meta["name"]
    images = validation_images(meta["name"]) if evaluate_now else []
    extra = independent_images(meta["name"]) if evaluate_now else []
    # BM3D on the same keyed noisy images is what bench.priors caches: reuse it rather than recompute.
    cache = json.loads(Path(bm3d_cache).read_text()).get("bm3d", {}) if bm3d_cache else {}
    shipped_rows = []
    if dest.exists() and evaluate_now:
        shipped_rows = evaluate(load_prior_folder(str(dest)), images, [25 / 255], use_bm3d=False)
    meta["history"] = run_history(meta)
    tmp = WEIGHTS / f".{meta['name']}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "unet", tmp / "unet")
    shutil.copytree(run / "scheduler", tmp / "scheduler")
    (tmp / "restore_prior.json").write_text(json.dumps(meta, indent=2))
    shutil.copy(run / "loss.csv", tmp / "loss.csv")
    if (run / "val.csv").exists():
        shutil.copy(run / "val.csv", tmp / "val.csv")
    dtype = "float32"
    # the blend is part of what users load, so the card measures the prior with it
    calibrate(str(tmp))
    meta = json.loads((tmp / "restore_prior.json").read_text())
    if evaluate_now:
        rows = evaluate(load_prior_folder(str(tmp)), images, list(SIGMAS), use_bm3d="--no-bm3d" not in sys.argv,
                        bm3d_cache=cache)
        if shipped_rows and not force and mean_psnr(rows, 25 / 255) <= mean_psnr(shipped_rows, 25 / 255):
            shutil.rmtree(tmp)
            raise SystemExit(f"not shipped: {mean_psnr(rows, 25 / 255):.2f} dB at sigma 25/255 does not beat the "
                             f"shipped {mean_psnr(shipped_rows, 25 / 255):.2f} dB (use --force to ship anyway)")
        weights = tmp / "unet" / "diffusion_pytorch_model.safetensors"
        full = load_file(str(weights))
        save_file({k: v.half() for k, v in full.items()}, str(weights))
        half_rows = evaluate(load_prior_folder(str(tmp)), images, list(SIGMAS), use_bm3d=False)
        if all(abs(mean_psnr(half_rows, s) - mean_psnr(rows, s)) <= 0.01 for s in SIGMAS):
            dtype = "float16"
        else:
            save_file(full, str(weights))
        rows += evaluate(load_prior_folder(str(tmp)), extra, list(SIGMAS), use_bm3d="--no-bm3d" not in sys.argv,
                         bm3d_cache=cache)
        size_mb = sum(f.stat().st_size for f in (tmp / "unet").iterdir()) / 1e6
        (tmp / "MODEL_CARD.md").write_text(model_card(meta, rows, forward_ms(load_prior_folder(str(tmp))),
                                                      size_mb, dtype))
        from restore.io.prior_folder import stamp

        stamp(tmp)  # the card's checksums are verified when the prior loads
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


if __name__ == "__main__":
    # python -m restore_models.ship RUN_DIR [--no-eval] [--force] [--no-bm3d] [--bm3d-cache bench/results/priors.json]
    cache_arg = sys.argv[sys.argv.index("--bm3d-cache") + 1] if "--bm3d-cache" in sys.argv else None
    print(ship(sys.argv[1], evaluate_now="--no-eval" not in sys.argv, force="--force" in sys.argv,
               bm3d_cache=cache_arg))

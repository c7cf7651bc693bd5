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

from .data import PRESETS, SOURCES_AND_LICENCES, load_medical, load_natural
from .plugin import WEIGHTS

SIGMAS = (15 / 255, 25 / 255, 50 / 255)


def validation_images(preset_name: str, side: int = 256) -> list[tuple[str, torch.Tensor]]:
    preset = PRESETS[preset_name]
    out = []
    for key in preset.validation:
        ims = load_medical(key) if preset.domain == "medical" else [load_natural(key)]
        for i, im in enumerate(ims[:2]):
            if preset.channels == 1 and im.shape[2] == 3:
                im = im @ np.array([[0.299], [0.587], [0.114]], np.float32)
            H, W = im.shape[:2]
            s = min(side, H, W) // 8 * 8
            top, left = (H - s) // 2, (W - s) // 2
            crop = torch.from_numpy(np.ascontiguousarray(im[top:top + s, left:left + s])).permute(2, 0, 1)[None]
            out.append((f"{key}#{i}" if len(ims) > 1 else key, crop.float()))
    return out


def forward_ms(prior, side: int = 256, repeats: int = 3) -> float:
    x = torch.randn(1, prior.channels, side, side)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            prior.eps(x, 500)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:]))


def model_card(meta: dict, rows, fwd_ms: float, size_mb: float) -> str:
    preset = PRESETS[meta["name"]]
    cfg = meta.get("train_config", {})
    lines = [
        f"# {meta['name']}", "", meta.get("summary", ""), "",
        "## Model", "",
        f"- Architecture: diffusers `UNet2DModel`, no attention (fully convolutional), block channels "
        f"{tuple(cfg.get('block_out_channels', ()))}, {cfg.get('layers_per_block', 1)} layer(s) per block, "
        f"{meta['channels']} channel(s) in/out; sizes must be multiples of 8 (the engine pads).",
        f"- Parameters: {meta['parameters']:,}; weights {size_mb:.1f} MB (safetensors, EMA).",
        "- Objective: eps-prediction, DDPM linear betas 1e-4..0.02, T = 1000; AdamW "
        f"(lr {cfg.get('lr')}, weight decay {cfg.get('weight_decay')}), EMA {cfg.get('ema_decay')}, batch "
        f"{cfg.get('batch_size')} random {cfg.get('crop')}² crops with flips and 90° rotations.",
        f"- Training: {meta['training_steps']} steps in {meta['training_minutes']} min on 2 CPU cores "
        f"(1 torch thread, shared machine). Recipe: `restore train prior --preset {meta['name']}`.",
        f"- Forward pass at 256×256 on this machine: {fwd_ms:.0f} ms (median of 3, CPU).", "",
        "## Data", "",
        f"- Training sources: {', '.join(preset.sources)}; procedural fraction {preset.procedural_fraction:.0%} "
        f"({'dead-leaves images with textures and blur' if preset.domain == 'natural' else 'random-ellipse and Shepp–Logan phantoms'}).",
        f"- Validation (never trained on): {', '.join(preset.validation)}.",
        "- Never used: the images behind `sample_images/` (" + ", ".join(
            ["skimage:astronaut", "skimage:coffee", "skimage:camera", "skimage:chelsea"]) + ").",
        "- Licences: " + "; ".join(f"{k}: {v}" for k, v in SOURCES_AND_LICENCES.items()
                                   if k in {s.split(':')[0] for s in preset.sources + preset.validation}
                                   or k in ("dead-leaves", "phantoms")) + ".", "",
        "## One-step Tweedie denoising on the validation images", "",
        "PSNR in dB (256² centre crops, seed 0). BM3D: the `bm3d` package on the same noisy images.", "",
        "| image | σ | noisy | this prior | BM3D |", "|---|---|---|---|---|",
    ]
    for r in rows:
        bm = "n/a" if r.bm3d_psnr is None else f"{r.bm3d_psnr:.2f}"
        lines.append(f"| {r.image} | {r.sigma * 255:.0f}/255 | {r.noisy_psnr:.2f} | {r.prior_psnr:.2f} | {bm} |")
    for sigma in SIGMAS:
        sel = [r for r in rows if abs(r.sigma - sigma) < 1e-9]
        bms = [r.bm3d_psnr for r in sel if r.bm3d_psnr is not None]
        mean_bm = f"{np.mean(bms):.2f}" if len(bms) == len(sel) and sel else "n/a"
        lines.append(f"| **mean** | {sigma * 255:.0f}/255 | {np.mean([r.noisy_psnr for r in sel]):.2f} | "
                     f"{np.mean([r.prior_psnr for r in sel]):.2f} | {mean_bm} |")
    lines += ["", "Reproduce: `python -m restore_models.ship runs/<name>` (re-measures and rewrites this card)."]
    return "\n".join(lines) + "\n"


def ship(run_dir: str, evaluate_now: bool = True) -> Path:
    from restore.priors.loading import load_prior_folder

    from .evaluate import evaluate

    run = Path(run_dir)
    meta = json.loads((run / "restore_prior.json").read_text())
    dest = WEIGHTS / meta["name"]
    tmp = WEIGHTS / f".{meta['name']}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "unet", tmp / "unet")
    shutil.copytree(run / "scheduler", tmp / "scheduler")
    shutil.copy(run / "restore_prior.json", tmp / "restore_prior.json")
    shutil.copy(run / "loss.csv", tmp / "loss.csv")
    size_mb = sum(f.stat().st_size for f in (tmp / "unet").iterdir()) / 1e6
    if evaluate_now:
        prior = load_prior_folder(str(tmp))
        rows = evaluate(prior, validation_images(meta["name"]), list(SIGMAS))
        (tmp / "MODEL_CARD.md").write_text(model_card(meta, rows, forward_ms(prior), size_mb))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


if __name__ == "__main__":
    print(ship(sys.argv[1], evaluate_now="--no-eval" not in sys.argv))

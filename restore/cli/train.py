"""``restore train prior`` (and other ``restore train …`` commands) and ``restore evaluate-prior``."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from ..errors import InvalidInputError

train_app = typer.Typer(help="Train priors on this machine (CPU is fine; runs resume from checkpoints).",
                        no_args_is_help=True)


def _parse_channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"--channels expects comma-separated integers like 32,64,128, got '{text}'") from None
    if not values or min(values) < 4:
        raise InvalidInputError(f"--channels values must be >= 4, got '{text}'")
    return values


@train_app.command("prior")
def train_prior(
    preset: str = typer.Option(..., "--preset", help="natural-rgb | natural-gray | medical-gray"),
    output: str = typer.Option(..., "-o", "--output", help="output folder (diffusers layout + checkpoint)"),
    steps: int = typer.Option(20000, "--steps", help="training steps"),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="stop after this many minutes of training"),
    resume: Optional[str] = typer.Option(None, "--resume", help="checkpoint.pt to resume from"),
    batch_size: int = typer.Option(8, "--batch-size"),
    crop: int = typer.Option(64, "--crop", help="training crop size (multiple of 8)"),
    channels: str = typer.Option("32,64,128,128", "--channels", help="UNet block channels"),
    checkpoint_minutes: float = typer.Option(5.0, "--checkpoint-minutes"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train an eps-prediction DDPM prior (linear betas, T=1000, EMA, AdamW) on offline data."""
    import os

    from restore_models.data import PRESETS
    from restore_models.training import TrainConfig, train

    from .progress import progress_bar

    if preset not in PRESETS:
        raise InvalidInputError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    if crop % 8 or crop < 16:
        raise InvalidInputError(f"--crop must be a multiple of 8 and >= 16, got {crop}")
    if resume and not os.path.exists(resume):
        raise InvalidInputError(f"checkpoint '{resume}' does not exist")
    config = TrainConfig(preset=preset, steps=steps, max_minutes=minutes, batch_size=batch_size, crop=crop,
                         block_out_channels=_parse_channels(channels), checkpoint_minutes=checkpoint_minutes,
                         seed=seed)
    with progress_bar(f"train {preset}") as update:
        summary = train(config, output, resume=resume, progress=lambda s, n, loss: update(s, n, 0))
    print(f"trained {summary['steps']} steps in {summary['minutes']} min, loss {summary['loss']:.4f}; "
          f"prior saved to {output}", file=sys.stderr)


def evaluate_prior(
    name: str = typer.Argument(..., help="prior name or folder"),
    images: str = typer.Option(..., "--images", help="folder of clean images"),
    sigma: list[float] = typer.Option([0.1], "--sigma", help="noise std in [0, 1] units (repeatable)"),
    seed: int = typer.Option(0, "--seed"),
    bm3d: bool = typer.Option(True, "--bm3d/--no-bm3d", help="compare with BM3D (pip install bm3d)"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """One-step Tweedie denoising PSNR of a prior next to BM3D on the same noisy images."""
    import os

    from rich.console import Console
    from rich.table import Table

    import restore
    from restore_models.evaluate import evaluate, load_folder

    if not os.path.isdir(images):
        raise InvalidInputError(f"--images '{images}' is not a folder")
    if any(not 0 < s < 1 for s in sigma):
        raise InvalidInputError(f"--sigma values must be in (0, 1) image units, got {sigma}")
    prior = restore.prior(name, device=device)
    rows = evaluate(prior, load_folder(images, prior.channels or 3), list(sigma), seed, bm3d)
    table = Table("image", "sigma", "noisy dB", f"{name} dB", "BM3D dB", "prior s", box=None)
    for r in rows:
        table.add_row(r.image, f"{r.sigma * 255:.0f}/255", f"{r.noisy_psnr:.2f}", f"{r.prior_psnr:.2f}",
                      "-" if r.bm3d_psnr is None else f"{r.bm3d_psnr:.2f}", f"{r.prior_seconds:.2f}")
    Console().print(table)
    try:
        import bm3d as _  # noqa: F401
    except ImportError:
        if bm3d:
            print("note: bm3d is not installed (pip install bm3d, non-commercial licence); BM3D column skipped",
                  file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    app.command("evaluate-prior")(evaluate_prior)

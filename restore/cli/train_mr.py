"""``restore train mean-reverting``: train an IR-SDE conditional prior for one restoration task."""
from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from ..errors import InvalidInputError


def train_mean_reverting(
    task: str = typer.Option(..., "--task", help="denoise | deblur | super-resolve"),
    output: str = typer.Option("runs/mr", "-o", "--output", help="run folder: checkpoint.pt, loss.csv, model/"),
    steps: int = typer.Option(20000, "--steps", help="training steps"),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="stop after this many minutes of training"),
    resume: Optional[str] = typer.Option(None, "--resume", help="checkpoint.pt to resume from"),
    noise: Optional[float] = typer.Option(None, "--noise", help="degradation noise std in [0, 1] units "
                                          "(default 25/255 for denoise, 0.01 otherwise)"),
    max_sigma: Optional[float] = typer.Option(None, "--max-sigma", help="stationary std λ·255 of the MR process "
                                              "(default: 70 denoise, 10 deblur, 30 super-resolve)"),
    preset: str = typer.Option("natural-rgb", "--preset", help="training data: natural-rgb | natural-gray | medical-gray"),
    batch_size: int = typer.Option(8, "--batch-size"),
    crop: int = typer.Option(64, "--crop", help="training crop size (multiple of 4)"),
    channels: str = typer.Option("32,64,64", "--channels", help="UNet block channels"),
    prediction: str = typer.Option("residual", "--prediction", help="residual (network predicts x0 - mu) | epsilon"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a small conditional UNet (IR-SDE L1 objective, EMA, resumable); writes OUTPUT/model/."""
    from restore_models.mean_reverting import MRTrainConfig, train

    from .progress import progress_bar
    from .train import _parse_channels

    if resume and not os.path.exists(resume):
        raise InvalidInputError(f"checkpoint '{resume}' does not exist; pass the checkpoint.pt of an earlier run")
    if steps < 1:
        raise InvalidInputError(f"--steps must be >= 1, got {steps}")
    config = MRTrainConfig(task=task, preset=preset, steps=steps, max_minutes=minutes, noise=noise,
                           max_sigma=max_sigma, batch_size=batch_size, crop=crop,
                           block_out_channels=_parse_channels(channels), prediction=prediction, threads=threads,
                           seed=seed).resolved()
    with progress_bar(f"train mean-reverting {task}") as update:
        summary = train(config, output, resume=resume, name=f"mr-{task}",
                        progress=lambda s, n, loss: update(s, n, 0))
    print(f"trained {summary['steps']} steps in {summary['minutes']} min, loss {summary['loss']:.5f}; "
          f"prior saved to {summary['model']} (use --prior {summary['model']} --sampler mrs)", file=sys.stderr)


def register(app: typer.Typer) -> None:
    from .train import train_app

    train_app.command("mean-reverting")(train_mean_reverting)

"""``restore train prior``, ``restore train mean-reverting`` and ``restore evaluate-prior``.

Registered by this plugin through ``restore_register_commands``, so the core never imports ``restore_models``.
Nothing heavy is imported at module level: building ``restore --help`` must stay cheap.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from restore.errors import InvalidInputError

train_app = typer.Typer(help="Train priors on this machine (CPU is fine; runs resume from checkpoints).",
                        no_args_is_help=True)


def parse_widths(text: str, option: str = "--widths") -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"{option} expects comma-separated integers like 32,64,128, got '{text}'") from None
    if not values or min(values) < 4:
        raise InvalidInputError(f"{option} values must be >= 4, got '{text}'")
    return values


@train_app.command("prior")
def train_prior(
    output: Optional[str] = typer.Option(None, "-o", "--output", help="run folder (diffusers layout + "
                                         "checkpoint.pt); not needed with --resume"),
    data: list[str] = typer.Option([], "--data", help="folder of training images, searched recursively "
                                   "(PNG/JPEG/TIFF/BMP/WEBP; repeatable)"),
    val: Optional[str] = typer.Option(None, "--val", help="folder of validation images (never trained on): "
                                      "Tweedie PSNR at sigma 25/255 is logged to val.csv at each checkpoint"),
    preset: Optional[str] = typer.Option(None, "--preset", help="data + recipe bundle: natural-rgb | natural-gray "
                                         "| medical-gray (adds its offline sources to --data)"),
    init: Optional[str] = typer.Option(None, "--init", help="start from a shipped prior (name) or a prior folder"),
    channels: Optional[int] = typer.Option(None, "--channels", help="image channels 1 | 3 (default: the preset's, "
                                           "else 1 when every --data image is gray, else 3)"),
    resume: Optional[str] = typer.Option(None, "--resume", help="run folder (or its checkpoint.pt) to continue "
                                         "exactly where it stopped"),
    steps: int = typer.Option(20000, "--steps", help="total training steps"),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="stop after this many minutes of training"),
    batch_size: int = typer.Option(8, "--batch-size"),
    lr: float = typer.Option(3e-4, "--lr", help="AdamW learning rate (after a linear warm-up)"),
    lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant | cosine (to 0 at the --steps or "
                                    "--minutes budget, whichever runs out first)"),
    timesteps: Optional[str] = typer.Option(None, "--timesteps", help="eps or v objective: restoration (default: "
                                            "half the batch log-uniform in sigma 2.5/255-128/255, half uniform; "
                                            "see bench.training_recipe) | uniform"),
    crop: int = typer.Option(64, "--crop", help="training crop size (multiple of 8)"),
    widths: str = typer.Option("32,64,128,128", "--widths", help="UNet block channels"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 where the CPU has native bfloat16, "
                                  "else fp32) | bf16 (autocast, about 2x faster on AVX-512-BF16 CPUs, 3x slower "
                                  "without) | fp32"),
    procedural_fraction: Optional[float] = typer.Option(None, "--procedural-fraction",
                                                        help="share of procedural (dead-leaves / phantom) crops"),
    checkpoint_minutes: float = typer.Option(5.0, "--checkpoint-minutes"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads"),
    seed: int = typer.Option(0, "--seed"),
    objective: str = typer.Option("eps", "--objective", help="eps (DDPM noise prediction) | v (v-prediction on "
                                  "the same schedule) | flow (rectified-flow velocity, flow matching)"),
    reflow: bool = typer.Option(False, "--reflow", help="flow only: train on (noise, ODE sample) pairs of the "
                                "--init flow prior (the reflow stage)"),
    reflow_steps: int = typer.Option(8, "--reflow-steps", help="Euler steps of the --reflow teacher's samples"),
) -> None:
    """Train or fine-tune an eps-prediction DDPM prior (linear betas, T=1000, EMA, AdamW) on image folders,
    or a rectified flow with --objective flow."""
    from restore.cli.progress import progress_bar

    from .data import load_training_folders
    from .training import TrainConfig, resolve_config, train

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    images = None  # the folders' images, read once for the checks and the training
    if resume:
        config, checkpoint = resume_config(resume, steps, minutes)
        output = os.path.dirname(checkpoint)
    else:
        if not output:
            raise InvalidInputError("missing option --output: restore train prior needs -o RUN_FOLDER (or --resume "
                                    "RUN_FOLDER); see restore train prior --help")
        if objective not in ("eps", "v", "flow"):
            raise InvalidInputError(f"--objective must be eps, v or flow, got '{objective}'")
        if reflow and (objective != "flow" or not init or reflow_steps < 1):
            raise InvalidInputError("--reflow needs --objective flow, --init FLOW_PRIOR_FOLDER (the teacher) and "
                                    "--reflow-steps >= 1")
        if not 0 < lr < 1:
            raise InvalidInputError(f"--lr must be in (0, 1), got {lr}")
        if lr_schedule not in ("constant", "cosine"):
            raise InvalidInputError(f"--lr-schedule must be constant or cosine, got '{lr_schedule}'")
        if timesteps is None:
            timesteps = "uniform" if objective == "flow" else "restoration"
        if timesteps not in ("uniform", "restoration") or (timesteps != "uniform" and objective == "flow"):
            raise InvalidInputError(f"--timesteps must be uniform or restoration (eps or v objective), got "
                                    f"'{timesteps}' with --objective {objective}")
        if os.path.exists(os.path.join(output, "checkpoint.pt")):
            raise InvalidInputError(f"'{output}' already holds a training run; continue it with --resume {output} "
                                    "or choose another --output")
        images = load_training_folders(tuple(data), 0, warn)
        config = resolve_config(TrainConfig(
            preset=preset or os.path.basename(os.path.normpath(output)), steps=steps, max_minutes=minutes,
            batch_size=batch_size, lr=lr, crop=crop, block_out_channels=parse_widths(widths), data=tuple(data),
            val=val, builtin_sources=preset is not None, channels=channels, init=init, precision=precision,
            procedural_fraction=procedural_fraction, checkpoint_minutes=checkpoint_minutes, threads=threads,
            seed=seed, objective=objective, reflow=reflow, reflow_steps=reflow_steps, timesteps=timesteps,
            lr_schedule=lr_schedule), warn=warn, images=images)
        checkpoint = None
    with progress_bar(f"train {config.preset}") as update:
        summary = train(config, output, resume=checkpoint, progress=lambda s, n, loss: update(s, n, 0),
                        warn=warn, images=images)
    loss = "-" if summary["loss"] is None else f"{summary['loss']:.4f}"
    print(f"trained {summary['steps']} steps in {summary['minutes']} min, loss {loss}; "
          f"prior saved to {output} (use --prior {output})", file=sys.stderr)


def resume_config(resume: str, steps: int, minutes: Optional[float]):
    """The stored config of a run folder, with only its stopping rule (steps, minutes) replaced."""
    from dataclasses import replace

    from .training import read_checkpoint_config

    checkpoint = os.path.join(resume, "checkpoint.pt") if os.path.isdir(resume) else resume
    if not os.path.exists(checkpoint):
        raise InvalidInputError(f"--resume '{resume}' holds no checkpoint.pt; pass the run folder of an earlier "
                                "`restore train prior -o FOLDER`")
    return replace(read_checkpoint_config(checkpoint), steps=steps, max_minutes=minutes), checkpoint


@train_app.command("mean-reverting")
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
    data: list[str] = typer.Option([], "--data", help="folder of clean training images added to the preset's "
                                   "sources (searched recursively; repeatable)"),
    init: Optional[str] = typer.Option(None, "--init", help="fine-tune a shipped mean-reverting prior (name) or a "
                                       "run folder"),
    batch_size: int = typer.Option(8, "--batch-size"),
    crop: int = typer.Option(64, "--crop", help="training crop size (multiple of 4)"),
    widths: str = typer.Option("32,64,64", "--widths", help="UNet block channels"),
    prediction: str = typer.Option("residual", "--prediction", help="residual (network predicts x0 - mu) | epsilon"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads"),
    seed: int = typer.Option(0, "--seed"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 where the CPU has native bfloat16, "
                                  "else fp32) | bf16 (autocast) | fp32"),
    lr: float = typer.Option(2e-4, "--lr", help="Adam(W) learning rate"),
) -> None:
    """Train a small conditional UNet (IR-SDE L1 objective, EMA, resumable); writes OUTPUT/model/."""
    from restore.cli.progress import progress_bar

    from .mean_reverting import MRTrainConfig, train

    if resume and not os.path.exists(resume):
        raise InvalidInputError(f"checkpoint '{resume}' does not exist; pass the checkpoint.pt of an earlier run")
    if steps < 1:
        raise InvalidInputError(f"--steps must be >= 1, got {steps}")
    config = MRTrainConfig(task=task, preset=preset, steps=steps, max_minutes=minutes, noise=noise,
                           max_sigma=max_sigma, batch_size=batch_size, crop=crop,
                           block_out_channels=parse_widths(widths), prediction=prediction, threads=threads,
                           seed=seed, data=tuple(data), init=init, precision=precision, lr=lr).resolved()
    with progress_bar(f"train mean-reverting {task}") as update:
        summary = train(config, output, resume=resume, name=f"mr-{task}",
                        progress=lambda s, n, loss: update(s, n, 0))
    loss = "-" if summary["loss"] is None else f"{summary['loss']:.5f}"
    print(f"trained {summary['steps']} steps in {summary['minutes']} min, loss {loss}; "
          f"prior saved to {summary['model']} (use --prior {summary['model']} --sampler mrs)", file=sys.stderr)


def evaluate_prior(
    name: str = typer.Argument(..., help="prior name or folder"),
    images: str = typer.Option(..., "--images", help="folder of clean images"),
    sigma: list[float] = typer.Option([0.1], "--sigma", help="noise std in [0, 1] units (repeatable)"),
    seed: int = typer.Option(0, "--seed"),
    bm3d: bool = typer.Option(True, "--bm3d/--no-bm3d", help="compare with BM3D (pip install bm3d)"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """One-step Tweedie denoising PSNR of a prior next to BM3D on the same noisy images."""
    from rich.console import Console
    from rich.table import Table

    import restore

    from .evaluate import evaluate, load_folder

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
    if len(rows) > 1:
        for s in sorted(set(sigma)):
            sel = [r for r in rows if r.sigma == s]
            ref = [r.bm3d_psnr for r in sel if r.bm3d_psnr is not None]
            table.add_row("mean", f"{s * 255:.0f}/255", f"{sum(r.noisy_psnr for r in sel) / len(sel):.2f}",
                          f"{sum(r.prior_psnr for r in sel) / len(sel):.2f}",
                          f"{sum(ref) / len(ref):.2f}" if len(ref) == len(sel) else "-", "")
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

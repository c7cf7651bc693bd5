"""Train a mean-reverting (IR-SDE) conditional prior for one restoration task on CPU (SAMPLERS.md §6.1).

Clean crops come from :class:`restore_models.data.PatchSampler` (the ``natural-rgb`` preset by default);
each batch is degraded on the fly to give ``μ``. The network is a small diffusers ``UNet2DModel`` without
attention on ``concat(x_t, μ)``; the objective is the IR-SDE "maximum-likelihood" L1 loss between the
Euler reverse-SDE mean and the optimal posterior mean. Training is resumable from ``checkpoint.pt``; the
EMA weights are exported as a diffusers-style folder that ``restore.prior(path)`` loads.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from restore.errors import InvalidInputError
from restore.priors.mean_reverting import MRSchedule, bcast, mr_to_eps, save_mean_reverting_folder

from .data import PRESETS, PatchSampler, load_training_folders
from .training import TrainingLog, optimizer_step, training_precision

TASKS = ("denoise", "deblur", "super-resolve")
PREDICTIONS = ("residual", "epsilon")
# Stationary std λ (0..255 units) per task, from the IR-SDE configs (SAMPLERS.md §6.1(c)).
TASK_MAX_SIGMA = {"denoise": 70.0, "deblur": 10.0, "super-resolve": 30.0}


@dataclass(frozen=True)
class MRTrainConfig:
    """Attributes:
        task: ``denoise`` (Gaussian noise ``noise``), ``deblur`` (Gaussian blur ``blur_sigma`` px + noise)
            or ``super-resolve`` (``scale``× area downsampling, bicubic upsampling back, + noise).
        noise: degradation noise std in [0, 1] units (25/255 for denoising, 0.01 otherwise).
        max_sigma: stationary std of the MR process in 0..255 units (task default when ``None``).
        T, eps: MR schedule (100 steps, ``e^{-θ̄_T}`` = 0.005).
        prediction: ``residual`` (default: the network predicts ``x̂_0 - μ``, stable for small, briefly
            trained networks) or ``epsilon`` (the IR-SDE code's noise prediction). The loss is the same.
        lr, betas: Adam(W) settings of the IR-SDE code (1e-4, (0.9, 0.99)); a short CPU run uses 2e-4.
        data: folders of clean training images (searched recursively) added to the preset's sources.
        init: start from a shipped mean-reverting prior (name) or a trained ``model/`` folder of the same
            architecture (fine-tuning).
        precision: ``bf16`` autocast (about 2x faster on AVX-512-BF16 CPUs; weights and optimiser stay float32),
            ``fp32``, or ``auto`` (bf16 where the CPU has native bfloat16, else fp32: emulated bf16 is slower;
            :func:`restore_models.training.training_precision`), resolved when the config is.
    """

    task: str = "denoise"
    preset: str = "natural-rgb"
    steps: int = 20000
    max_minutes: float | None = None
    noise: float | None = None
    blur_sigma: float = 2.0
    scale: int = 4
    max_sigma: float | None = None
    T: int = 100
    eps: float = 0.005
    prediction: str = "residual"
    batch_size: int = 8
    crop: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup: int = 100
    ema_decay: float = 0.999
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    checkpoint_minutes: float = 5.0
    seed: int = 0
    threads: int | None = None
    data: tuple[str, ...] = ()
    init: str | None = None
    precision: str = "auto"

    def resolved(self) -> "MRTrainConfig":
        if self.task not in TASKS:
            raise InvalidInputError(f"unknown task '{self.task}' for mean-reverting training; choose one of {', '.join(TASKS)}")
        if self.prediction not in PREDICTIONS:
            raise InvalidInputError(f"prediction must be one of {', '.join(PREDICTIONS)}, got '{self.prediction}'")
        precision = training_precision(self.precision)
        if self.preset not in PRESETS:
            raise InvalidInputError(f"unknown preset '{self.preset}'; choose one of {', '.join(PRESETS)}")
        noise = self.noise if self.noise is not None else (25 / 255 if self.task == "denoise" else 0.01)
        max_sigma = self.max_sigma if self.max_sigma is not None else TASK_MAX_SIGMA[self.task]
        multiple = 2 ** (len(self.block_out_channels) - 1)
        if self.crop % multiple or (self.task == "super-resolve" and self.crop % self.scale):
            raise InvalidInputError(f"crop {self.crop} must be a multiple of {multiple} (and of the scale)")
        for folder in self.data:
            if not os.path.isdir(folder):
                raise InvalidInputError(f"--data '{folder}' is not a folder")
        block_out_channels, layers = tuple(self.block_out_channels), self.layers_per_block
        if self.init:
            # Fine-tuning keeps the starting network's architecture, whatever --widths says.
            with open(os.path.join(init_folder(self.init), "config.json")) as f:
                arch = json.load(f)
            block_out_channels, layers = tuple(arch["block_out_channels"]), arch["layers_per_block"]
        return type(self)(**{**asdict(self), "noise": noise, "max_sigma": max_sigma, "betas": tuple(self.betas),
                             "block_out_channels": block_out_channels, "layers_per_block": layers,
                             "data": tuple(self.data), "precision": precision})


def init_folder(init: str) -> str:
    """The weights folder of ``init``: a shipped prior's name, a run folder (its ``model/``) or a model folder."""
    from .plugin import WEIGHTS

    for folder in (os.path.join(WEIGHTS, init), os.path.join(init, "model"), init):
        if os.path.exists(os.path.join(folder, "diffusion_pytorch_model.safetensors")):
            return folder
    raise InvalidInputError(f"--init '{init}' is neither a shipped mean-reverting prior nor a folder with "
                            "diffusion_pytorch_model.safetensors; see `restore list priors`")


def build_conditional_unet(channels: int, block_out_channels=(32, 64, 64), layers_per_block: int = 1,
                           sample_size: int = 64):
    """A small attention-free ``UNet2DModel`` with ``2C`` inputs (``x_t``, ``μ``) and ``C`` outputs."""
    from diffusers import UNet2DModel

    n = len(block_out_channels)
    return UNet2DModel(
        sample_size=sample_size, in_channels=2 * channels, out_channels=channels,
        layers_per_block=layers_per_block, block_out_channels=tuple(block_out_channels),
        down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
        norm_num_groups=min(32, block_out_channels[0]),
    )


def gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(round(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-x**2 / (2 * sigma**2))
    k = k / k.sum()
    return k[:, None] * k[None, :]


def degrade(x: torch.Tensor, cfg: MRTrainConfig, generator: torch.Generator) -> torch.Tensor:
    """``μ`` for clean ``x`` ``(B, C, H, W)`` in [0, 1], same shape as ``x`` (not clamped)."""
    if cfg.task == "deblur":
        k = gaussian_kernel(cfg.blur_sigma).to(x)
        C, r = x.shape[1], k.shape[-1] // 2
        x = F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), k.expand(C, 1, -1, -1), groups=C)
    elif cfg.task == "super-resolve":
        small = F.avg_pool2d(x, cfg.scale)
        x = F.interpolate(small, scale_factor=cfg.scale, mode="bicubic", align_corners=False)
    y = x + cfg.noise * torch.randn(x.shape, generator=generator)
    # Real inputs are stored images, hence clipped; half the batches are, so both kinds are in-distribution.
    if torch.rand((), generator=generator) < 0.5:
        y = y.clamp(0, 1)
    return y


def mr_loss(model, x0: torch.Tensor, mu: torch.Tensor, sched: MRSchedule, generator: torch.Generator,
            prediction: str = "residual") -> torch.Tensor:
    """IR-SDE maximum-likelihood loss: ``L1(x_t - [θ_t(μ - x_t) + σ_t² ε_φ/σ̄_t] dt, E[x_{t-1}|x_t, x_0])``,
    with ``ε_φ`` converted from ``x̂_0 = μ + network`` for the ``residual`` prediction."""
    B = x0.shape[0]
    t = torch.randint(1, sched.T + 1, (B,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    x_t = sched.marginal(x0, mu, t, noise)
    out = model(torch.cat([x_t, mu], 1), t.float()).sample.float()
    if prediction == "residual":
        a, sb = bcast(sched.alpha(t), x_t), bcast(sched.sigma_bar(t), x_t)
        eps = mr_to_eps(mu + out, x_t, mu, a, sb, sched.lam, "sample")
    else:
        eps = out
    pred = sched.reverse_sde_mean(x_t, eps, mu, t)
    target, _ = sched.posterior(x_t, x0, mu, t, t - 1)
    return F.l1_loss(pred, target)


def model_card(info: dict) -> str:
    cfg = info.get("train_config", {})
    # the last two path parts name a prepared collection's split (cbsd432/train) without the user's paths
    folders = ", ".join("`" + "/".join(os.path.normpath(d).split(os.sep)[-2:]) + "`" for d in cfg.get("data", ()))
    stages = info.get("history", [])
    lines = [
        f"# {info.get('name', 'mean-reverting prior')}",
        "",
        f"Mean-reverting (IR-SDE) conditional prior for **{cfg.get('task')}**"
        + (f" at σ = {cfg.get('noise', 0) * 255:.0f}/255" if cfg.get("task") == "denoise" else "") + ".",
        "Load with `restore.prior(path)` or by its registered name; sample with `--sampler mrs` or `ir-sde`.",
        "",
        "- Network: diffusers `UNet2DModel`, attention only in the middle block, input concat(x_t, μ) "
        f"({info.get('parameters', '?')} parameters, block_out_channels {cfg.get('block_out_channels')}).",
        f"- Process: T = {cfg.get('T')}, λ = {cfg.get('max_sigma')}/255, ε = {cfg.get('eps')}, cosine θ schedule; "
        + ("the network predicts x̂_0 - μ (residual data prediction)." if cfg.get("prediction") == "residual"
           else "noise prediction."),
        f"- Objective: IR-SDE L1 'maximum-likelihood' loss; Adam(W) lr {cfg.get('lr')}, betas {cfg.get('betas')}, "
        f"EMA {cfg.get('ema_decay')}.",
        f"- Data: random {cfg.get('crop')}² crops (flips, rotations) of preset `{cfg.get('preset')}` "
        "(restore_models.data: scikit-image / PyWavelets / scikit-learn sample images + procedural dead leaves)"
        + (f" and the folders {folders}" if folders else "")
        + "; validation images (rocket, stereo_motorcycle, grace_hopper) and sample_images/ never used for training."
        + (f" Fine-tuned from `{cfg['init']}`." if cfg.get("init") else ""),
        f"- Training: {info.get('training_steps')} steps, {info.get('training_minutes')} min on CPU"
        + (" in all; the last stage:" if len(stages) > 1 else ";")
        + f" batch {cfg.get('batch_size')}, {cfg.get('threads') or 'default'} thread(s), "
        f"{cfg.get('precision', 'fp32')}.",
    ]
    if len(stages) > 1:  # the line above gives the last stage's recipe; the stages add up to it
        lines += ["- Stages:"] + [f"  {k}. {h['stage']}: {h['steps']} steps, {h['minutes']} min."
                                  for k, h in enumerate(stages, 1)]
    if info.get("weights_dtype"):
        lines.append(f"- Weights: stored as {info['weights_dtype']}, loaded as float32.")
    if info.get("evaluation"):
        lines += ["", "## Measured", "", info["evaluation"]]
    return "\n".join(lines) + "\n"


def export(ema, sched: MRSchedule, out_dir: str, info: dict, prediction: str = "residual") -> None:
    residual = prediction == "residual"
    save_mean_reverting_folder(ema, sched, out_dir, info, "sample" if residual else "epsilon", residual)
    tmp = os.path.join(out_dir, "MODEL_CARD.md.tmp")
    with open(tmp, "w") as f:
        f.write(model_card(info))
    os.replace(tmp, os.path.join(out_dir, "MODEL_CARD.md"))


def train(config: MRTrainConfig, out_dir: str, resume: str | None = None,
          progress: Callable[[int, int, float], None] | None = None, name: str | None = None) -> dict:
    """Train and export the EMA network to ``out_dir/model``; ``out_dir/checkpoint.pt`` resumes.

    Returns a summary (steps, minutes, final running loss, first running loss).
    """
    config = config.resolved()
    if config.threads:
        torch.set_num_threads(config.threads)
    preset = PRESETS[config.preset]
    torch.manual_seed(config.seed)
    sched = MRSchedule(config.T, config.max_sigma, config.eps)
    model = build_conditional_unet(preset.channels, config.block_out_channels, config.layers_per_block, config.crop)
    if config.init:
        from safetensors.torch import load_file

        state = load_file(os.path.join(init_folder(config.init), "diffusion_pytorch_model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    step, elapsed, first = 0, 0.0, None
    gen = torch.Generator().manual_seed(config.seed)
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, "checkpoint.pt")
    if resume:
        if not os.path.exists(resume):
            raise InvalidInputError(f"checkpoint '{resume}' does not exist; pass the checkpoint.pt of an earlier run")
        state = torch.load(resume, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed, first = state["step"], state["elapsed"], state.get("first_loss")
        gen.set_state(state["gen"])
    folder_images = load_training_folders(config.data, config.crop, warn=lambda m: print(f"warning: {m}")) \
        if config.data else []
    if config.data and not folder_images:
        raise InvalidInputError(f"no readable images of at least {config.crop}px in {', '.join(config.data)}")
    sampler = PatchSampler(preset, config.crop, seed=config.seed + step, folder_images=folder_images)
    log = TrainingLog(out_dir, step, config.steps, config.checkpoint_minutes, progress, digits=6)
    start = time.time()
    model_dir = os.path.join(out_dir, "model")

    def save() -> None:
        minutes = (elapsed + time.time() - start) / 60
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                 "elapsed": elapsed + time.time() - start, "gen": gen.get_state(), "config": asdict(config),
                 "first_loss": first}
        torch.save(state, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        export(ema, sched, model_dir, {
            "name": name or f"mr-{config.task}", "task": config.task, "training_steps": step,
            "summary": f"IR-SDE conditional prior for {config.task} (use --sampler mrs or ir-sde)",
            "training_minutes": round(minutes, 1), "parameters": sum(p.numel() for p in ema.parameters()),
            "train_config": asdict(config)}, config.prediction)

    model.train()
    bf16 = training_precision(config.precision) == "bf16"
    while step < config.steps:
        minutes = (elapsed + time.time() - start) / 60
        if config.max_minutes is not None and minutes >= config.max_minutes:
            break
        x0 = torch.from_numpy(sampler.batch(config.batch_size))
        mu = degrade(x0, config, gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = mr_loss(model, x0, mu, sched, gen, config.prediction)
        optimizer_step(model, ema, opt, loss, step, config.lr, config.warmup, config.ema_decay)
        step += 1
        if first is None:
            first = loss.item()
        if log.record(step, minutes, loss.item()):
            save()
    save()
    log.close()
    return {"steps": step, "minutes": round((elapsed + time.time() - start) / 60, 2), "loss": log.running,
            "first_loss": first, "model": model_dir, "checkpoint": ckpt_path}


if __name__ == "__main__":  # background runs: python -m restore_models.mean_reverting TASK OUT MINUTES [THREADS [CROP]]
    import sys

    task, out, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    ckpt = os.path.join(out, "checkpoint.pt")
    crop = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    cfg = MRTrainConfig(task=task, steps=10**9, max_minutes=minutes, threads=threads, crop=crop)
    print(json.dumps(train(cfg, out, resume=ckpt if os.path.exists(ckpt) else None, name=f"mr-{task}",
                           progress=lambda s, n, l: print(f"step {s} loss {l:.6f}", flush=True)
                           if s % 200 == 0 else None)), flush=True)

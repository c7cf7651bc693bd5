"""Train a shipped prior: eps-prediction DDPM (linear betas, T = 1000), EMA, AdamW, resumable.

``objective="v"`` trains the same network to predict ``v = a_k ε - s_k x0`` (Salimans & Ho, ICLR 2022) and
exports a ``v_prediction`` scheduler: an error in its output reaches ``x0̂`` scaled by ``s_k`` instead of
``s_k / a_k``, which an eps network amplifies about 150 times at the noisiest level.

``objective="flow"`` trains a rectified flow instead (flow matching, Liu et al. ICLR 2023: ``x_t = (1 - t) x0 + t ε``
with ``t ~ U[0, 1)``, target velocity ``ε - x0``) on the same data and recipe; ``reflow=True`` replaces each
batch's data by the ODE samples of the ``init`` flow prior from the batch's noise (the reflow stage: training
on the pairs straightens the flow). A flow run exports a folder with ``"kind": "flow"``
(:class:`restore.priors.flow.FlowUNetPrior`).

The network is a diffusers ``UNet2DModel`` whose only attention is the middle block's, at the lowest
resolution, so it runs at any image size that is a multiple of 8. The output folder is a standard diffusers layout
(``unet/``, ``scheduler/``) plus ``restore_prior.json`` and ``loss.csv``; ``restore.prior(path)`` loads it.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

import numpy as np
import torch

from .data import IMAGE_EXTENSIONS, PRESETS, PatchSampler, Preset, load_training_folders, scan_folder


@dataclass(frozen=True)
class TrainConfig:
    preset: str
    steps: int = 20000
    max_minutes: float | None = None
    max_cpu_minutes: float | None = None
    batch_size: int = 8
    crop: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup: int = 200
    ema_decay: float = 0.999
    block_out_channels: tuple[int, ...] = (32, 64, 128, 128)
    layers_per_block: int = 1
    checkpoint_minutes: float = 5.0
    seed: int = 0
    threads: int | None = None
    data: tuple[str, ...] = ()
    builtin_sources: bool = True
    procedural_fraction: float | None = None
    init: str | None = None
    precision: str = "auto"
    channels: int | None = None
    val: str | None = None
    objective: str = "eps"
    reflow: bool = False
    reflow_steps: int = 8
    timesteps: str = "restoration"
    lr_schedule: str = "constant"


def effective_preset(config: TrainConfig) -> Preset:
    """The named preset, or a data-only recipe for a run on the user's own folders."""
    if config.preset in PRESETS:
        preset = PRESETS[config.preset]
        if config.channels in (None, preset.channels):
            return preset
        return replace(preset, channels=config.channels)
    return Preset(config.preset, config.channels or 3, f"trained on {', '.join(config.data)}", "custom", (), (),
                  0.0, lambda s, r: None)


def training_precision(precision: str) -> str:
    """``auto``: bf16 autocast where the CPU computes bfloat16 in hardware
    (:func:`restore.priors.diffusers_prior.resolve_precision` on the CPU), else fp32. Emulated bf16 is slower: on an
    AVX-512 CPU without BF16 a ``natural-gray`` step (batch 8 of 64², one thread) took 2.60 s in bf16 against
    0.71 s in fp32 (``bench/results/precision_cpu.json``)."""
    from restore.errors import InvalidInputError
    from restore.priors.diffusers_prior import resolve_precision, warn_if_emulated

    if precision not in ("auto", "bf16", "fp32"):
        raise InvalidInputError(f"--precision must be auto, bf16 or fp32, got '{precision}'")
    warn_if_emulated(precision)
    return resolve_precision(precision, torch.device("cpu"))  # the inference rule: training runs on the CPU


def resolve_config(config: TrainConfig, warn: Callable[[str], None],
                   images: list[np.ndarray] | None = None) -> TrainConfig:
    """Check the data of a new run before anything is written; fill in the channel count.

    Raises ``InvalidInputError`` (one line) for a missing or empty folder, images all smaller than the crop,
    an image whose channels cannot be converted, a bad crop or an unknown ``--init``.
    """
    from restore.errors import InvalidInputError

    if config.crop % 8 or config.crop < 16:
        raise InvalidInputError(f"--crop must be a multiple of 8 and >= 16, got {config.crop}")
    if config.channels not in (None, 1, 3):
        raise InvalidInputError(f"--channels must be 1 or 3, got {config.channels}")
    if not config.data and config.preset not in PRESETS:
        raise InvalidInputError(f"nothing to train on: give --data FOLDER or a --preset ({', '.join(PRESETS)})")
    if config.preset in PRESETS and not config.builtin_sources and not config.data:
        raise InvalidInputError("nothing to train on: give --data FOLDER")
    if config.init and init_weights(config.init) is None:
        raise InvalidInputError(f"--init '{config.init}' is neither a shipped prior nor a prior folder with "
                                "unet/ weights; see `restore list priors`")
    for folder in config.data + ((config.val,) if config.val else ()):
        if not os.path.isdir(folder):
            raise InvalidInputError(f"--data/--val '{folder}' is not a folder")
        if not scan_folder(folder):
            raise InvalidInputError(f"'{folder}' holds no images (searched recursively for "
                                    f"{', '.join(IMAGE_EXTENSIONS)})")
    if images is None:  # the caller may pass the folders' images it has read already (train() reuses them)
        images = load_training_folders(config.data, 0, warn)
    if config.data and not images:
        raise InvalidInputError(f"no readable images in {', '.join(config.data)}")
    big = [im for im in images if min(im.shape[:2]) >= config.crop]
    if images and not big:
        raise InvalidInputError(f"every image in {', '.join(config.data)} is smaller than the {config.crop}px "
                                "crop; lower --crop or add larger images")
    odd = sorted({im.shape[2] for im in images} - {1, 3, 4})
    if odd:
        raise InvalidInputError(f"images with {odd[0]} channels cannot be converted to gray or RGB; keep 1 "
                                "(gray), 3 (RGB) or 4 (RGBA) channel images in --data")
    channels = config.channels
    if channels is None:
        if config.preset in PRESETS:
            channels = PRESETS[config.preset].channels
        else:
            channels = 1 if all(im.shape[2] == 1 for im in images) else 3
    if config.init:
        from safetensors import safe_open

        weights = init_weights(config.init)
        with safe_open(weights, "pt") as f:
            init_channels = f.get_slice("conv_in.weight").get_shape()[1]
        if init_channels != channels:
            raise InvalidInputError(f"--init '{config.init}' has {init_channels} channel(s) but the run trains "
                                    f"{channels}; pass --channels {init_channels} or another --init")
        # Fine-tuning keeps the starting network's architecture, whatever --widths says.
        with open(os.path.join(os.path.dirname(weights), "config.json")) as f:
            arch = json.load(f)
        config = replace(config, block_out_channels=tuple(arch["block_out_channels"]),
                         layers_per_block=arch["layers_per_block"])
    return replace(config, channels=channels, precision=training_precision(config.precision))


def read_checkpoint_config(path: str) -> TrainConfig:
    """The ``TrainConfig`` stored in a checkpoint (fields added since it was written take their defaults)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    stored = dict(state["config"])
    stored["block_out_channels"] = tuple(stored["block_out_channels"])
    stored["data"] = tuple(stored.get("data", ()))
    # runs written before these options existed drew uniform levels at a constant rate: resume them so
    stored.setdefault("timesteps", "uniform")
    stored.setdefault("lr_schedule", "constant")
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in stored.items() if k in known})


def build_unet(channels: int, block_out_channels=(32, 64, 128, 128), layers_per_block: int = 1):
    from diffusers import UNet2DModel

    n = len(block_out_channels)
    return UNet2DModel(
        sample_size=64, in_channels=channels, out_channels=channels, layers_per_block=layers_per_block,
        block_out_channels=tuple(block_out_channels), down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n, norm_num_groups=min(32, block_out_channels[0]),
    )


def build_scheduler(objective: str = "eps"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                         prediction_type="v_prediction" if objective == "v" else "epsilon", clip_sample=False)


def export(model, out_dir: str, preset: Preset, info: dict, objective: str = "eps") -> None:
    """Write the diffusers folder (EMA weights) atomically enough: files are replaced one by one."""
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(os.path.join(out_dir, "unet"), safe_serialization=True)
    kind = {"kind": "flow", "interpolant": "rectified"} if objective == "flow" else {}
    if objective != "flow":
        build_scheduler(objective).save_pretrained(os.path.join(out_dir, "scheduler"))
    meta = {"name": preset.name, "channels": model.config.in_channels, "data_range": [-1.0, 1.0],
            "summary": preset.summary, "domain": preset.domain, **kind, **info}
    tmp = os.path.join(out_dir, "restore_prior.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "restore_prior.json"))


def init_weights(init: str) -> str | None:
    """The UNet weights file of ``--init``: a shipped prior's name or a prior folder (``None`` if neither)."""
    from .plugin import WEIGHTS

    folder = init if os.path.isdir(init) else os.path.join(WEIGHTS, init)
    path = os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors")
    return path if os.path.exists(path) else None


def weights_fingerprint(path: str | None) -> str | None:
    """SHA-256 (first 12 hex digits) of a weights file: what a run started from, and what benchmark results
    record (``bench.run.shipped_weights``)."""
    from restore.checksums import file_sha256

    return None if path is None else file_sha256(path)[:12]


def load_init_weights(model, init: str) -> None:
    """Start from a shipped prior (by name) or a trained folder: the fine-tuning entry point."""
    from safetensors.torch import load_file

    path = init_weights(init)
    if path is None:
        raise FileNotFoundError(f"--init '{init}' is neither a shipped prior nor a prior folder with unet/ weights")
    state = {k: v.float() for k, v in load_file(path).items()}
    model.load_state_dict(state, strict=True)


def validation_crops(folder: str, channels: int, side: int = 128, limit: int = 8) -> list[torch.Tensor]:
    """Centre crops ``(1, C, side, side)`` in [0, 1] of the first ``limit`` validation images."""
    from .data import read_image_file
    from .evaluate import validation_crop

    return [validation_crop(read_image_file(path), channels, side) for path in scan_folder(folder)[:limit]]


def log_validation(out_dir: str, ema, crops: list[torch.Tensor], step: int, minutes: float,
                   sigma: float = 25 / 255, objective: str = "eps") -> float:
    """Mean one-step Tweedie PSNR of the EMA network at ``sigma`` on fixed noisy crops; appended to val.csv."""
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    k = int(((1 / abar - 1).sqrt() - 2 * sigma).abs().argmin())  # model units are [-1, 1]: noise doubles
    a, s = float(abar[k].sqrt()), float((1 - abar[k]).sqrt())
    g = torch.Generator().manual_seed(0)
    scores = []
    with torch.no_grad():
        for clean in crops:
            x = clean * 2 - 1
            noisy = x + 2 * sigma * torch.randn(x.shape, generator=g)
            if objective == "flow":  # x_t = (1 - t) noisy with t / (1 - t) = 2 sigma
                t = 2 * sigma / (1 + 2 * sigma)
                x0 = ((1 - t) * noisy - t * ema((1 - t) * noisy, 1000 * t).sample).clamp(-1, 1)
            elif objective == "v":  # x0 = a x_k - s v
                x0 = (a * a * noisy - s * ema(a * noisy, k).sample).clamp(-1, 1)
            else:
                eps = ema(a * noisy, k).sample
                x0 = ((a * noisy - s * eps) / a).clamp(-1, 1)
            mse = float((((x0 + 1) / 2 - clean) ** 2).mean())
            scores.append(10 * np.log10(1 / max(mse, 1e-12)))
    value = float(np.mean(scores))
    path = os.path.join(out_dir, "val.csv")
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("step,minutes,tweedie_psnr_sigma25\n")
        f.write(f"{step},{minutes:.2f},{value:.3f}\n")
    return value


# Restoration samplers (DPIR-style splitting, Tweedie denoising, DiffPIR's late steps) call the network at
# public noise levels of about 2.5/255 to 128/255; twice that in the model's [-1, 1] units.
RESTORATION_SIGMAS = (0.02, 1.0)


def sample_levels(abar: torch.Tensor, batch: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Training levels ``k`` (``(B,)`` int64): uniform over all levels, or ``"restoration"``: the first half of
    the batch uniform (the full range generation needs), the second log-uniform in :data:`RESTORATION_SIGMAS`."""
    k = torch.randint(0, len(abar), (batch,), generator=gen)
    if mode == "restoration":
        lo, hi = np.log(RESTORATION_SIGMAS[0]), np.log(RESTORATION_SIGMAS[1])
        log_sigma = lo + (hi - lo) * torch.rand(batch - batch // 2, generator=gen, dtype=torch.float64)
        ratio = (1 / abar.double() - 1).sqrt()
        k[batch // 2:] = torch.searchsorted(ratio, log_sigma.exp()).clamp(max=len(abar) - 1)
    return k


def lr_factor(config: TrainConfig, step: int, minutes: float, cpu_minutes: float) -> float:
    """The learning-rate multiplier after warm-up: 1, or a cosine to 0 over whichever budget (steps, minutes,
    CPU minutes) is nearest to running out."""
    if config.lr_schedule != "cosine":
        return 1.0
    done = step / config.steps
    if config.max_minutes:
        done = max(done, minutes / config.max_minutes)
    if config.max_cpu_minutes:
        done = max(done, cpu_minutes / config.max_cpu_minutes)
    return 0.5 * (1 + np.cos(np.pi * min(done, 1.0)))


def optimizer_step(model, ema, opt, loss, step: int, lr: float, warmup: int, ema_decay: float) -> None:
    """Linear warm-up, clipped AdamW step, then the EMA update (with the usual early-step decay ramp)."""
    for group in opt.param_groups:
        group["lr"] = lr * min(1.0, (step + 1) / warmup)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    decay = min(ema_decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1 - decay)


class TrainingLog:
    """What every training loop keeps: ``loss.csv`` (every 50 steps), the running loss, the progress
    callback and the clock that says when the next checkpoint is due."""

    def __init__(self, out_dir: str, step: int, total: int, checkpoint_minutes: float,
                 progress: Callable[[int, int, float], None] | None, digits: int = 5) -> None:
        self.file = open(os.path.join(out_dir, "loss.csv"), "a")
        if step == 0:
            self.file.write("step,minutes,loss\n")
        self.total, self.every, self.progress, self.digits = total, checkpoint_minutes * 60, progress, digits
        self.running: float | None = None
        self.last_checkpoint = time.time()

    def record(self, step: int, minutes: float, loss: float) -> bool:
        """Log one finished step; True when a checkpoint is due."""
        self.running = loss if self.running is None else 0.98 * self.running + 0.02 * loss
        if step % 50 == 0:
            self.file.write(f"{step},{minutes:.2f},{self.running:.{self.digits}f}\n")
            self.file.flush()
        if self.progress:
            self.progress(step, self.total, self.running)
        if time.time() - self.last_checkpoint > self.every:
            self.last_checkpoint = time.time()
            return True
        return False

    def close(self) -> None:
        self.file.close()


@torch.no_grad()
def reflow_targets(teacher, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """The teacher flow's Euler ODE samples from ``noise`` (t = 1 -> 0): the data half of reflow pairs."""
    x = noise
    for i in range(steps):
        t, t_next = 1 - i / steps, 1 - (i + 1) / steps
        x = x + (t_next - t) * teacher(x, torch.full((x.shape[0],), 1000.0 * t)).sample
    return x


def train(config: TrainConfig, out_dir: str, resume: str | None = None,
          progress: Callable[[int, int, float], None] | None = None,
          warn: Callable[[str], None] = lambda m: print(m, flush=True),
          images: list[np.ndarray] | None = None) -> dict:
    """Train and export to ``out_dir``; returns a summary (steps, minutes, final loss).

    A run resumed from its checkpoint continues exactly: weights, EMA, optimiser, step, noise generator and
    the data position (patch generator and procedural pool) are all restored.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    preset = effective_preset(config)
    torch.manual_seed(config.seed)
    model = build_unet(preset.channels, config.block_out_channels, config.layers_per_block)
    # which weights the run started from, so that shipping can tell a new stage from a continued one
    started_from = weights_fingerprint(init_weights(config.init)) if config.init else None
    if config.init:
        load_init_weights(model, config.init)
    ema = copy.deepcopy(model).requires_grad_(False)
    teacher = copy.deepcopy(model).requires_grad_(False) if config.reflow else None
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float()
    step, elapsed, cpu_elapsed = 0, 0.0, 0.0
    gen = torch.Generator().manual_seed(config.seed)
    ckpt_path = os.path.join(out_dir, "checkpoint.pt")
    if resume:
        state = torch.load(resume, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed, cpu_elapsed = state["step"], state["elapsed"], state.get("cpu_elapsed", 0.0)
        gen.set_state(state["gen"])
        started_from = state.get("init_weights", started_from)
    if images is None:
        images = load_training_folders(config.data, 0, warn=warn)
    folder_images = [im for im in images if min(im.shape[:2]) >= config.crop]
    validation = validation_crops(config.val, preset.channels) if config.val else []
    sampler = PatchSampler(preset, config.crop, seed=config.seed, folder_images=folder_images,
                           procedural_fraction=config.procedural_fraction, builtin_sources=config.builtin_sources)
    if resume and "data" in state:
        sampler.load_state_dict(state["data"])
    os.makedirs(out_dir, exist_ok=True)
    log = TrainingLog(out_dir, step, config.steps, config.checkpoint_minutes, progress)
    start, cpu_start = time.time(), time.process_time()

    def save() -> None:
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                 "elapsed": elapsed + time.time() - start, "cpu_elapsed": cpu_elapsed + time.process_time() - cpu_start,
                 "gen": gen.get_state(), "config": asdict(config),
                 "data": sampler.state_dict(), "init_weights": started_from}
        torch.save(state, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        if validation:
            log_validation(out_dir, ema, validation, step, (elapsed + time.time() - start) / 60,
                           objective=config.objective)
        export(ema, out_dir, preset, {
            "training_steps": step, "training_minutes": round((elapsed + time.time() - start) / 60, 1),
            "parameters": sum(p.numel() for p in ema.parameters()), "train_config": asdict(config),
            "init_weights": started_from},
            config.objective)

    model.train()
    bf16 = training_precision(config.precision) == "bf16"  # a config built without resolve_config may say auto
    while step < config.steps:
        minutes = (elapsed + time.time() - start) / 60
        cpu_minutes = (cpu_elapsed + time.process_time() - cpu_start) / 60
        if config.max_minutes is not None and minutes >= config.max_minutes:
            break
        if config.max_cpu_minutes is not None and cpu_minutes >= config.max_cpu_minutes:
            break
        x0 = torch.from_numpy(sampler.batch(config.batch_size)) * 2 - 1
        if config.objective == "flow":
            t = torch.rand(config.batch_size, generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            if teacher is not None:
                x0 = reflow_targets(teacher, noise, config.reflow_steps)
            tv = t.view(-1, 1, 1, 1)
            inputs, level, target = (1 - tv) * x0 + tv * noise, 1000 * t, noise - x0
        else:
            k = sample_levels(abar, config.batch_size, config.timesteps, gen)
            noise = torch.randn(x0.shape, generator=gen)
            a = abar[k].sqrt().view(-1, 1, 1, 1)
            s = (1 - abar[k]).sqrt().view(-1, 1, 1, 1)
            # v = a ε - s x0 (Salimans & Ho 2022): its x0 error is s times the network's, not s / a times
            inputs, level = a * x0 + s * noise, k
            target = a * noise - s * x0 if config.objective == "v" else noise
        # bf16 autocast halves the step time on AVX-512-BF16 CPUs; weights and optimiser stay float32.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(inputs, level).sample
        loss = torch.nn.functional.mse_loss(pred.float(), target)
        lr = config.lr * lr_factor(config, step, minutes, cpu_minutes)
        optimizer_step(model, ema, opt, loss, step, lr, config.warmup, config.ema_decay)
        step += 1
        if log.record(step, minutes, loss.item()):
            save()
    save()
    log.close()
    return {"steps": step, "minutes": round((elapsed + time.time() - start) / 60, 2), "loss": log.running}


if __name__ == "__main__":
    # Background runs: python -m restore_models.training PRESET OUT MINUTES [THREADS] [--data DIR]... [--init NAME]
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("preset")
    parser.add_argument("out")
    parser.add_argument("minutes", type=float)
    parser.add_argument("threads", type=int, nargs="?")
    parser.add_argument("--data", action="append", default=[])
    parser.add_argument("--init")
    parser.add_argument("--procedural-fraction", type=float)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--val")
    args = parser.parse_args()
    out = args.out
    resume = os.path.join(out, "checkpoint.pt") if os.path.exists(os.path.join(out, "checkpoint.pt")) else None
    cfg = TrainConfig(preset=args.preset, steps=10**9, max_minutes=args.minutes, threads=args.threads,
                      data=tuple(args.data), init=None if resume else args.init,
                      procedural_fraction=args.procedural_fraction, precision=args.precision, val=args.val)
    print(train(cfg, out, resume=resume, progress=lambda s, n, l: print(f"step {s} loss {l:.4f}", flush=True)
                if s % 200 == 0 else None))

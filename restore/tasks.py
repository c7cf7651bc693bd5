"""Tasks: what a ``restore <task>`` command (and ``restore batch --task``) does with one input file.

The declarations (:class:`Task`, :class:`TaskOption`, :class:`RunSettings`) import no torch, so that
``restore TASK --help`` and ``restore list tasks`` stay light; :func:`run_task` imports the engine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import InvalidInputError, OutputExistsError

if TYPE_CHECKING:
    import torch

    from .problem import Problem


@dataclass(frozen=True)
class TaskOption:
    """A task-specific CLI option (``--name``), passed to the task's ``build`` by ``name``."""

    name: str
    type: type
    default: Any
    help: str


@dataclass
class Setup:
    """What a task builds from its input: the problem, and (with ``--simulate``) the clean reference."""

    problem: Problem
    reference: torch.Tensor | None = None
    # Per-sampler config the task derives from its options (e.g. enhance --strength), keyed by sampler name.
    sampler_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A sampler the task's own options chose (e.g. ``restore mri --method sense``); wins over --sampler.
    sampler: str | None = None
    # The measured default for this input where it differs from the task's (e.g. the blur kernel's kind);
    # --sampler wins over it, and --quality presets made for another sampler are then not applied.
    default_sampler: str | None = None
    # Batch entries (e.g. the slices of a k-space file) per sampler run: bounds the network's memory by the
    # chunk, not the file. Needs an operator that implements ``batch_slice``; ``None`` = all at once.
    batch_chunk: int | None = None
    # Maps the sampler's unknown to the output written (e.g. a ``valid`` blur's unknown is larger than the
    # observed image: its extension is cropped away so the output has the input's size); ``None`` = as is.
    view: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class Task:
    """A restoration task.

    Attributes:
        build: ``build(image, noise, simulate, generator, **options) -> Setup``; with ``simulate`` the
            input is the clean image and ``build`` degrades it first.
        name: command name (``deblur``); empty: the name it is registered under.
        summary: one line for ``--help`` and ``restore list tasks``; empty: the registration's summary.
        options: task-specific options.
        default_sampler: sampler used without ``--sampler``.
        domain: picks the default prior (``natural`` or ``medical``).
        sampler_defaults: per-sampler config overrides for this task (e.g. DPS ζ for inpainting).
        default_noise: the assumed noise level in [0, 1] units when ``--noise`` is not given (with
            ``estimate_noise``: the level ``--simulate`` adds).
        estimate_noise: ``"never"``; ``"on request"``: ``--noise auto`` estimates the level from the input
            (:meth:`restore.GaussianNoise.estimate`), for tasks whose input keeps the noise on the pixel grid
            unmixed with fine texture (a blurred image, not a low-resolution one); ``"by default"``: a real input
            (not ``--simulate``) without ``--noise`` is estimated too.
        output_suffix: default output extension when none can be inferred.
        quality: ``--quality`` presets, ``{"draft" | "best": {"sampler": name, "steps": n, **options}}``
            (every key optional). A level the table lacks gets :data:`restore.plan.QUALITY_STEPS` times the
            sampler's default steps. ``--sampler`` naming another sampler, and ``--steps``, override it.
    """

    build: Callable[..., Setup]
    name: str = ""
    summary: str = ""
    options: tuple[TaskOption, ...] = ()
    default_sampler: str = "dds"
    domain: str = "natural"
    sampler_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_noise: float = 0.01
    estimate_noise: str = "never"
    output_suffix: str = ".png"
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.estimate_noise not in NOISE_ESTIMATION:
            raise ValueError(f"Task.estimate_noise must be one of {', '.join(NOISE_ESTIMATION)}, "
                             f"got '{self.estimate_noise}'")

    def estimates(self, noise: float | str | None, simulate: bool) -> bool:
        """Whether a run given ``--noise noise`` (``None``: not given) estimates the level from its input."""
        return noise == "auto" or (noise is None and self.estimate_noise == "by default" and not simulate)


NOISE_ESTIMATION = ("never", "on request", "by default")


@dataclass
class RunSettings:
    """Options shared by every task command."""

    prior: str = "default"
    sampler: str | None = None
    steps: int | None = None
    noise: float | str | None = None  # a level in [0, 1] units, "auto" (estimate it) or None (the task's default)
    seed: int = 0
    device: str = "auto"
    samples: int = 1
    simulate: bool = False
    overwrite: bool = False
    save_config: bool = False
    sampler_options: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"  # the network's: fp32 | bf16 | auto (the CLI's default is auto)
    batch_size: int | None = None  # posterior samples per network call (None: all at once)
    quality: str = "default"  # draft | default | best: the task's sampler/steps preset (Task.quality)


@dataclass
class RunReport:
    output: str
    prior: str
    sampler: str
    nfe: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    extra_outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one-line remarks, e.g. an option the sampler does not have
    noise: float | None = None  # the noise std the run assumed (given, the task's default or estimated)


def get_task(name: str) -> Task:
    from .plugins import registry

    return registry().get("task", name).build()


def default_output(input_path: str, task: Task) -> str:
    base = os.path.basename(input_path)
    for ext in (".nii.gz",):
        if base.lower().endswith(ext):
            stem, suffix = base[: -len(ext)], ext
            break
    else:
        stem, suffix = os.path.splitext(base)
    return os.path.join(os.path.dirname(input_path), f"{stem}_{task.name}{suffix or task.output_suffix}")


def _sibling(path: str, tag: str) -> str:
    stem, ext = os.path.splitext(path)
    if stem.lower().endswith(".nii"):
        stem, ext = stem[:-4], ".nii" + ext
    return f"{stem}_{tag}{ext}"


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class PreparedRun:
    """One input read and set up, its plan made and its output checked: what :func:`run_task` runs and
    :func:`run_tasks` may batch with others (see :func:`prepare_run`)."""

    task: Task
    input_path: str
    output_path: str
    settings: RunSettings
    image: Any  # restore.Image
    setup: Setup
    plan: Any  # restore.plan.RunPlan
    channels: int
    device: Any  # torch.device

    def load_prior(self):
        return self.plan.load_prior(self.channels, self.task.domain, str(self.device))


def resolve_noise(task: Task, settings: RunSettings, y) -> tuple[float, bool]:
    """The noise level of the run and whether it was estimated from the input ``y`` ``(B, C, H, W)``."""
    given = settings.noise
    if task.estimates(given, settings.simulate):
        if task.estimate_noise == "never":
            raise InvalidInputError(f"--noise auto is not available for {task.name}; give the noise std in [0, 1] "
                                    f"image units, e.g. --noise {task.default_noise:g}")
        if settings.simulate:
            raise InvalidInputError("--noise auto estimates the noise of a real input; with --simulate give the "
                                    f"level to add, e.g. --noise {task.default_noise:.3g}")
        from .operators.noise import GaussianNoise

        return GaussianNoise.estimate(y), True
    noise = task.default_noise if given is None else given
    if not isinstance(noise, (int, float)) or not noise >= 0:
        raise InvalidInputError(f"--noise must be >= 0 in [0, 1] image units or auto, got {noise}")
    return float(noise), False


def prepare_run(task: Task | str, input_path: str, output_path: str | None, settings: RunSettings,
                options: dict[str, Any] | None = None) -> PreparedRun:
    """Check the output, read ``input_path``, build the task's problem (``--simulate`` degrades it with a
    generator seeded by ``settings.seed``) and make the run plan."""
    import torch

    from .devices import resolve_device
    from .io import read
    from .plan import plan_task

    task = get_task(task) if isinstance(task, str) else task
    options = dict(options or {})
    output_path = output_path or default_output(input_path, task)
    if os.path.exists(output_path) and not settings.overwrite:
        raise OutputExistsError(f"output '{output_path}' exists; pass --overwrite or choose another -o path")
    if settings.samples < 1:
        raise InvalidInputError(f"--samples must be >= 1, got {settings.samples}")
    device = resolve_device(settings.device)
    image = read(input_path)
    noise, estimated = resolve_noise(task, settings, image.data)
    settings = dataclasses.replace(settings, noise=noise)
    generator = torch.Generator().manual_seed(settings.seed)
    setup = task.build(image=image, noise=noise, simulate=settings.simulate, generator=generator, **options)
    problem = setup.problem
    problem.y = problem.y.to(device)
    problem.operator = problem.operator.to(device)
    channels = problem.x_shape[1] if len(problem.x_shape) > 1 else 1
    plan = plan_task(task, settings, options, setup, channels)
    if estimated:
        jpeg = os.path.splitext(input_path)[1].lower() in (".jpg", ".jpeg")
        plan = dataclasses.replace(plan, notes=plan.notes + (
            f"noise {noise:.4f} ({noise * 255:.1f}/255) estimated from the input; --noise sets it"
            + ("; JPEG compression hides part of the noise (median estimates were 0.5-0.8x the level from 15/255 "
               "up), so raise it if the result stays noisy" if jpeg else ""),))
    return PreparedRun(task, input_path, output_path, settings, image, setup, plan, channels, device)


def run_task(task: Task | str, input_path: str, output_path: str | None, settings: RunSettings,
             options: dict[str, Any] | None = None,
             progress: Callable[[int, int, int], None] | None = None) -> RunReport:
    """Read ``input_path``, restore it with ``task`` and write the result atomically.

    The output is checked before any work (exists without ``overwrite`` -> error) and written only when
    complete, so a failure never leaves a partial file.
    """
    from .plan import execute_plan

    prepared = prepare_run(task, input_path, output_path, settings, options)
    run = execute_plan(prepared.plan, prepared.setup.problem, prepared.load_prior(), prepared.setup.batch_chunk,
                       progress)
    return finish_run(prepared, run)


def run_tasks(runs: list[PreparedRun], group_size: int,
              progress: Callable[[int, int, int], None] | None = None) -> list[RunReport | Exception]:
    """Restore several prepared inputs, running those that agree (:func:`restore.plan.groupable`: the same
    plan, shapes, operator and noise) together, at most ``group_size`` images per batch through the network.

    Each image keeps its own generators (:func:`restore.plan.execute_group`), so its output is the one
    :func:`run_task` writes for it, up to floating-point reassociation in the batched network call. Returns
    one report per input, in order, or the exception that input failed with (the others go on).
    """
    from .plan import execute_group, execute_plan, groupable

    out: list[RunReport | Exception | None] = [None] * len(runs)
    priors: dict[tuple, Any] = {}
    for members in groupable(runs, group_size):
        first = runs[members[0]]
        key = (first.plan.prior, first.channels, first.task.domain, str(first.device), first.plan.precision)
        try:
            if key not in priors:
                priors[key] = first.load_prior()
            if len(members) == 1:
                executions = [execute_plan(first.plan, first.setup.problem, priors[key], first.setup.batch_chunk,
                                           progress)]
            else:
                executions = execute_group([runs[i].plan for i in members],
                                           [runs[i].setup.problem for i in members], priors[key], progress)
        except Exception as exc:  # noqa: BLE001 - the group fails, the other groups go on
            for i in members:
                out[i] = exc
            continue
        for i, execution in zip(members, executions):
            try:
                out[i] = finish_run(runs[i], execution)
            except Exception as exc:  # noqa: BLE001
                out[i] = exc
    return out  # type: ignore[return-value]


def _downsampled(y, ref) -> bool:
    """Whether ``y`` is ``ref`` at an integer downsampling factor (both ``(B, C, H, W)``, real)."""
    if y.ndim != 4 or y.is_complex() or y.shape[:2] != ref.shape[:2]:
        return False
    (h, w), (H, W) = y.shape[-2:], ref.shape[-2:]
    return H % h == 0 and W % w == 0 and H // h == W // w > 1

def finish_run(prepared: PreparedRun, run) -> RunReport:
    """Write the posterior mean (and ``_std`` with several samples, and ``--save-config``) of ``run`` (a
    :class:`restore.plan.Execution`) for ``prepared``; metrics against the reference with ``--simulate``."""
    import platform

    import torch

    from .io import Image, write
    from .metrics import psnr, ssim
    from .samplers.particles import collapse_note

    setup, plan, settings, output_path = prepared.setup, prepared.plan, prepared.settings, prepared.output_path
    problem = setup.problem
    mean, std = run.moments()
    if setup.view is not None:  # a `valid` boundary restores a larger unknown: crop back to the input's frame
        mean, std = setup.view(mean), setup.view(std)
    meta = {k: v for k, v in prepared.image.meta.items()}
    report = RunReport(output_path, plan.prior or "none", plan.sampler, run.nfe, run.seconds, notes=list(plan.notes),
                       noise=settings.noise)
    collapsed = collapse_note(run.diagnostics, "weight_exponent" in plan.sampler_config)
    if collapsed:
        report.notes.append(collapsed)
    if setup.reference is not None:
        ref = setup.reference.cpu()
        if ref.shape == mean.shape:
            report.metrics = {"psnr": psnr(mean, ref), "ssim": ssim(mean, ref)}
            y = problem.y.cpu()
            if y.shape == ref.shape and not y.is_complex():  # k-space y is not an image
                report.metrics["psnr_input"] = psnr(y.clamp(0, 1), ref)
            elif _downsampled(y, ref):  # low-resolution input (not a sinogram or other measurement space)
                size = tuple(ref.shape[-2:])
                up = torch.nn.functional.interpolate
                report.metrics["psnr_input"] = psnr(up(y.clamp(0, 1), size=size, mode="nearest"), ref)
                report.metrics["psnr_bicubic"] = psnr(up(y, size=size, mode="bicubic").clamp(0, 1), ref)
    outputs = [(output_path, mean)]
    if run.draws.shape[0] > 1:
        std_path = _sibling(output_path, "std")
        outputs.append((std_path, std.clamp(0, 1)))
        report.extra_outputs.append(std_path)
    for path, data in outputs:
        if path != output_path and os.path.exists(path) and not settings.overwrite:
            raise OutputExistsError(f"output '{path}' exists; pass --overwrite or choose another -o path")
    for path, data in outputs:
        write(path, Image(data, meta), overwrite=True)
    if settings.save_config:
        cfg = plan.record()
        cfg.update({"input": os.path.abspath(prepared.input_path), "nfe": run.nfe, "seconds": round(run.seconds, 3),
                    "metrics": report.metrics, "torch": torch.__version__, "python": platform.python_version()})
        if run.diagnostics:  # particle samplers: ESS per step, resampling steps, log Ẑ (one entry per batch part)
            cfg["diagnostics"] = run.diagnostics
        cfg_path = output_path + ".config.json"
        tmp = cfg_path + ".partial"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=2)
        os.replace(tmp, cfg_path)
        report.extra_outputs.append(cfg_path)
    return report

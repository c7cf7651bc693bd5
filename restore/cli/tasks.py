"""One command per registered task: ``restore deblur IMG [-o OUT] [--kernel …] [--sampler dds] …``."""
from __future__ import annotations

import copy
import inspect
import json
import sys
from typing import Annotated, Any, Optional

import click
import typer
import typer.core

from ..errors import InvalidInputError

COMMON = [
    ("input", str, typer.Argument(..., help="input file (image, volume, k-space or sinogram)", show_default=False)),
    ("output", Optional[str], typer.Option(None, "-o", "--output", help="output file (default: INPUT_<task>.<ext>)")),
    ("noise", Optional[str], typer.Option(None, "--noise", help="noise std of the input in [0, 1] image units, "
                                          "or auto: estimated from the input (denoise does that by default)")),
    ("sampler", Optional[str], typer.Option(None, "--sampler", help="sampler name (restore list samplers)")),
    ("steps", Optional[int], typer.Option(None, "--steps", help="number of sampler steps")),
    ("prior", str, typer.Option("default", "--prior", help="prior name or folder (default: chosen by channels)")),
    ("seed", int, typer.Option(0, "--seed", help="random seed; the same seed gives the same output")),
    ("device", str, typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps")),
    ("samples", int, typer.Option(1, "--samples", help="posterior samples; >1 writes their mean and OUT_std. Sample i "
                                  "uses the seed of --seed SEED+i, and the samples run as one batch where they can")),
    ("batch_size", Optional[int], typer.Option(None, "--batch-size", help="at most this many samples per network call "
                                               "(bounds memory; default: all --samples at once)")),
    ("precision", str, typer.Option("auto", "--precision", help="network precision: fp32 | bf16 | auto (bf16 "
                                    "autocast on CPUs, CUDA autocast on GPUs; sampler arithmetic stays float32)")),
    ("quality", str, typer.Option("default", "--quality", help="draft | default | best: the task's sampler and "
                                  "steps preset (draft is about 5x faster); --sampler/--steps override it")),
    ("threads", Optional[int], typer.Option(None, "--threads", help="CPU threads for the network (default: all "
                                            "cores, or OMP_NUM_THREADS when set)")),
    ("simulate", bool, typer.Option(False, "--simulate", help="treat INPUT as clean: degrade it first, report PSNR/SSIM")),
    ("overwrite", bool, typer.Option(False, "--overwrite", help="replace an existing output file")),
    ("save_config", bool, typer.Option(False, "--save-config", help="write OUT.config.json with the full configuration")),
    ("set_", Optional[list[str]], typer.Option(None, "--set", help="sampler option KEY=VALUE (repeatable), e.g. --set zeta=0.5")),
    ("quiet", bool, typer.Option(False, "--quiet", "-q", help="no progress bar or summary")),
]


def parse_noise(text: str | None) -> float | str | None:
    """``--noise``: a number in [0, 1] image units, ``auto`` or nothing (the task's default)."""
    if text is None or text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(f"--noise must be a number in [0, 1] image units or auto, got '{text}'") from None


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``["zeta=0.5", "norm=paper"]`` -> ``{"zeta": 0.5, "norm": "paper"}`` (JSON values when they parse)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--set expects KEY=VALUE, got '{item}'")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def task_option_specs(task) -> list[tuple[str, Any, Any]]:
    """``(name, annotation, typer.Option)`` of the task's own options (``--kernel`` …), from its definition."""
    specs = []
    for opt in task.options:
        typ = Optional[opt.type] if opt.default is None else opt.type
        specs.append((opt.name, typ, typer.Option(opt.default, f"--{opt.name.replace('_', '-')}", help=opt.help)))
    return specs

def set_threads(threads: int | None) -> None:
    """``--threads N``: torch's intra-op threads (``None`` keeps torch's default: all cores, or OMP_NUM_THREADS)."""
    if threads is None:
        return
    if threads < 1:
        raise InvalidInputError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


#: A run estimated to take longer than this (after its first step) gets a ``--quality draft`` suggestion.
LONG_RUN_SECONDS = 120.0


def suggest_draft(update):
    """Wrap a progress callback: time the second step, extrapolate the run's time and, when it is long,
    print one note suggesting ``--quality draft``."""
    import time

    marks: list[float] = []

    def wrapped(step: int, total: int, nfe: int) -> None:
        if len(marks) < 2 and total > 2:
            marks.append(time.perf_counter())
            if len(marks) == 2:
                estimate = (marks[1] - marks[0]) * total
                if estimate > LONG_RUN_SECONDS:
                    print(f"\nnote: this run will take about {estimate / 60:.0f} min; --quality draft is about "
                          f"5x faster (or use a smaller image)", file=sys.stderr)
        if update:
            update(step, total, nfe)

    return wrapped



def set_signature(command, specs: list[tuple[str, Any, Any]]) -> None:
    """Give ``command(**kwargs)`` the parameters ``specs`` so that typer builds its options from them."""
    params, annotations = [], {}
    for name, typ, info in specs:
        default = inspect.Parameter.empty
        if isinstance(info, typer.models.OptionInfo) and info.default is not ...:
            # Inside Annotated, typer reads Option's first argument as an option name: move the default to `=`.
            info = copy.copy(info)
            default, info.default = info.default, ...
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[typ, info]))
        annotations[name] = Annotated[typ, info]
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = annotations


NETWORK_PRIORS = ("default", "natural-rgb", "natural-gray", "medical-gray")
SINGLE_ONLY = [
    ("max_pixels", Optional[int], typer.Option(None, "--max-pixels", help="refuse inputs over this many pixels "
                                               "(voxels) per channel, checked from the header (default 64e6)")),
    ("memory_check", bool, typer.Option(True, "--memory-check/--no-memory-check",
                                        help="refuse a large input whose estimated memory exceeds what is available")),
    ("preview", bool, typer.Option(False, "--preview", help="also write OUT_preview.png: clean | degraded | restored "
                                   "| std (with --simulate; degraded | restored | std otherwise)")),
]


def make_command(task_name: str, task):
    def command(**kwargs: Any) -> None:
        from ..io import check_output, max_pixels
        from ..tasks import RunSettings, default_output, run_task
        from .estimate import check_resources
        from .guard import expected_nfe, expected_steps, numerical_guard
        from .progress import progress_bar

        limit, memory_check = kwargs.pop("max_pixels"), kwargs.pop("memory_check")
        settings = RunSettings(
            prior=kwargs.pop("prior"), sampler=kwargs.pop("sampler"), steps=kwargs.pop("steps"),
            noise=parse_noise(kwargs.pop("noise")), seed=kwargs.pop("seed"), device=kwargs.pop("device"),
            samples=kwargs.pop("samples"), simulate=kwargs.pop("simulate"), overwrite=kwargs.pop("overwrite"),
            save_config=kwargs.pop("save_config"), sampler_options=parse_assignments(kwargs.pop("set_")),
            precision=kwargs.pop("precision"), batch_size=kwargs.pop("batch_size"), quality=kwargs.pop("quality"))
        set_threads(kwargs.pop("threads"))
        quiet = kwargs.pop("quiet")
        input_path, output, preview = kwargs.pop("input"), kwargs.pop("output"), kwargs.pop("preview")
        # Everything about the output is checked before the (possibly long) restoration starts.
        check_output(output or default_output(input_path, task), settings.overwrite)
        total = expected_steps(task, settings)
        if settings.prior in NETWORK_PRIORS:  # the estimate is fitted for these networks
            check_resources(input_path, settings.sampler or task.default_sampler, expected_nfe(task, settings), quiet,
                            memory_check)
        with max_pixels(limit), progress_bar(task_name, enabled=None if not quiet else False, total=total) as bar, \
                numerical_guard(bar if settings.quality != "default" or settings.steps is not None
                                else suggest_draft(bar)) as guarded:
            if preview:
                from ..preview import run_with_preview

                report, _ = run_with_preview(task_name, input_path, output, settings, kwargs, progress=guarded)
            else:
                report = run_task(task_name, input_path, output, settings, kwargs, progress=guarded)
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
        if not quiet:
            parts = [f"wrote {report.output}", f"prior {report.prior}", f"sampler {report.sampler}",
                     f"NFE {report.nfe}", f"{report.seconds:.1f} s"]
            parts += [f"{k} {v:.2f}" for k, v in report.metrics.items()]
            print(" | ".join(parts), file=sys.stderr)

    set_signature(command, COMMON + SINGLE_ONLY + task_option_specs(task))
    command.__doc__ = task.summary
    command.__name__ = task_name.replace("-", "_")
    return command


class TaskPlaceholder(click.Command):
    """A task command listed by name and summary only; :meth:`load` builds the real command (importing the
    task's module, and torch) when the task is actually invoked, so ``restore --help`` stays light."""

    def __init__(self, component) -> None:
        super().__init__(component.name, help=component.summary, short_help=component.summary)
        self.component = component

    def load(self) -> click.Command:
        comp = self.component
        try:
            task = comp.build()
        except Exception as exc:  # noqa: BLE001 - a broken task is reported when it is used, not at start-up
            raise InvalidInputError(f"task '{comp.name}' from {comp.plugin} failed to load: "
                                    f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
        single.command(comp.name, help=task.summary)(make_command(comp.name, task))
        command = typer.main.get_command(single)
        command.name = comp.name
        return command


def task_placeholders() -> list[TaskPlaceholder]:
    from ..plugins import registry

    return [TaskPlaceholder(comp) for comp in registry().all("task")]


class LazyTaskGroup(typer.core.TyperGroup):
    """The root group: task commands are placeholders until one is resolved for invocation."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        from .batch import BatchPlaceholder

        for placeholder in [*task_placeholders(), BatchPlaceholder()]:
            self.commands.setdefault(placeholder.name, placeholder)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        from .batch import BatchPlaceholder

        if isinstance(command, (TaskPlaceholder, BatchPlaceholder)):
            command = self.commands[name] = command.load()
        return name, command, rest


def register(app: typer.Typer) -> None:
    """Task commands are added by :class:`LazyTaskGroup` (the root app's group class)."""

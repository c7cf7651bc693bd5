"""One command per registered task: ``restore deblur IMG [-o OUT] [--kernel …] [--sampler dds] …``."""
from __future__ import annotations

import copy
import inspect
import json
import sys
from typing import Annotated, Any, Optional

import typer

from ..errors import InvalidInputError

COMMON = [
    ("input", str, typer.Argument(..., help="input file (image, volume, k-space or sinogram)", show_default=False)),
    ("output", Optional[str], typer.Option(None, "-o", "--output", help="output file (default: INPUT_<task>.<ext>)")),
    ("noise", Optional[float], typer.Option(None, "--noise", help="noise std of the input in [0, 1] image units")),
    ("sampler", Optional[str], typer.Option(None, "--sampler", help="sampler name (restore list samplers)")),
    ("steps", Optional[int], typer.Option(None, "--steps", help="number of sampler steps")),
    ("prior", str, typer.Option("default", "--prior", help="prior name or folder (default: chosen by channels)")),
    ("seed", int, typer.Option(0, "--seed", help="random seed; the same seed gives the same output")),
    ("device", str, typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps")),
    ("samples", int, typer.Option(1, "--samples", help="posterior samples; >1 writes their mean and OUT_std")),
    ("simulate", bool, typer.Option(False, "--simulate", help="treat INPUT as clean: degrade it first, report PSNR/SSIM")),
    ("overwrite", bool, typer.Option(False, "--overwrite", help="replace an existing output file")),
    ("save_config", bool, typer.Option(False, "--save-config", help="write OUT.config.json with the full configuration")),
    ("set_", Optional[list[str]], typer.Option(None, "--set", help="sampler option KEY=VALUE (repeatable), e.g. --set zeta=0.5")),
    ("quiet", bool, typer.Option(False, "--quiet", "-q", help="no progress bar or summary")),
    ("preview", bool, typer.Option(False, "--preview", help="also write OUT_preview.png: clean | degraded | "
                                   "restored | std strip (clean with --simulate, std with --samples N)")),
]


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


def make_command(task_name: str, task):
    def command(**kwargs: Any) -> None:
        from ..tasks import RunSettings, run_task
        from .progress import progress_bar

        settings = RunSettings(
            prior=kwargs.pop("prior"), sampler=kwargs.pop("sampler"), steps=kwargs.pop("steps"),
            noise=kwargs.pop("noise"), seed=kwargs.pop("seed"), device=kwargs.pop("device"),
            samples=kwargs.pop("samples"), simulate=kwargs.pop("simulate"), overwrite=kwargs.pop("overwrite"),
            save_config=kwargs.pop("save_config"), sampler_options=parse_assignments(kwargs.pop("set_")))
        quiet = kwargs.pop("quiet")
        input_path, output, preview = kwargs.pop("input"), kwargs.pop("output"), kwargs.pop("preview")
        with progress_bar(task_name, enabled=None if not quiet else False) as update:
            if preview:
                from ..preview import run_with_preview

                report, _ = run_with_preview(task_name, input_path, output, settings, kwargs, progress=update)
            else:
                report = run_task(task_name, input_path, output, settings, kwargs, progress=update)
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
        if not quiet:
            parts = [f"wrote {report.output}", f"prior {report.prior}", f"sampler {report.sampler}",
                     f"NFE {report.nfe}", f"{report.seconds:.1f} s"]
            parts += [f"{k} {v:.2f}" for k, v in report.metrics.items()]
            print(" | ".join(parts), file=sys.stderr)

    params, annotations = [], {}
    for name, typ, info in COMMON:
        default = inspect.Parameter.empty
        if isinstance(info, typer.models.OptionInfo) and info.default is not ...:
            # Inside Annotated, typer reads Option's first argument as an option name: move the default to `=`.
            info = copy.copy(info)
            default, info.default = info.default, ...
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[typ, info]))
        annotations[name] = Annotated[typ, info]
    for opt in task.options:
        typ = Optional[opt.type] if opt.default is None else opt.type
        info = typer.Option(f"--{opt.name.replace('_', '-')}", help=opt.help)
        params.append(inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=opt.default,
                                        annotation=Annotated[typ, info]))
        annotations[opt.name] = Annotated[typ, info]
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = annotations
    command.__doc__ = task.summary
    command.__name__ = task_name.replace("-", "_")
    return command


def register(app: typer.Typer) -> None:
    from ..plugins import registry

    for comp in registry().all("task"):
        try:
            task = comp.build()
        except Exception as exc:  # noqa: BLE001 - a broken task must not break the CLI
            print(f"warning: task '{comp.name}' from {comp.plugin} failed to load: {exc}", file=sys.stderr)
            continue
        app.command(comp.name, help=task.summary)(make_command(comp.name, task))

"""``restore batch TASK INPUTS… [task options]``: many inputs, locally or on a Dask cluster.

Every task is a sub-command of ``batch`` with the task's own options (``--kernel``, ``--scale`` …), built
from the task's definition exactly as for ``restore TASK``, so the two cannot drift apart. The older form
``restore batch INPUTS… --task NAME --opt KEY=VALUE`` keeps working for scripts.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Any, Iterator, Optional

import click
import typer
from typer.core import TyperGroup

from .tasks import COMMON, parse_assignments, parse_noise, set_signature, task_option_specs


@contextmanager
def batch_progress(enabled: bool) -> Iterator[Any]:
    """Rich bars on a terminal: the whole batch (items, ETA) and the current input's sampler steps."""
    from ..batch import Events

    if not enabled:
        yield Events()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=False) as bar:
        overall = bar.add_task("batch", total=None, info="")
        current = bar.add_task("", total=None, info="", visible=False)
        failed = [0]

        def planned(to_run: int, skipped: int) -> None:
            info = f"{skipped} skipped" if skipped else ""
            bar.update(overall, total=to_run, info=info)

        def record(rec: dict[str, Any]) -> None:
            if not rec.get("final", True):  # a retry follows; the input is not finished yet
                return
            failed[0] += rec["status"] == "failed"
            bar.update(overall, advance=1, info=f"{failed[0]} failed" if failed[0] else "")

        def step(job) -> Any:
            name = os.path.basename(job.input)
            bar.reset(current, total=None, description=f"  {name[:22]}", info="", visible=True)

            def update(done: int, total: int, nfe: int = 0) -> None:
                bar.update(current, completed=done, total=total, info=f"NFE {nfe}")

            return update

        yield Events(planned=planned, record=record, step=step)
        bar.update(current, visible=False)


def print_summary(result, quiet: bool) -> None:
    """A table of every input (status, attempts, seconds, error) and one line of totals, on stderr."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
    if not quiet:
        table = Table(title="restore batch", title_justify="left")
        for col in ("input", "status", "attempts", "seconds", "output / error"):
            table.add_column(col, justify="right" if col in ("attempts", "seconds") else "left",
                             overflow="fold")
        styles = {"done": "green", "skipped": "dim", "failed": "bold red"}
        for r in result.records:
            secs = f"{r['seconds']:.1f}" if r.get("seconds") is not None and r["status"] != "skipped" else "-"
            detail = r["error"] if r["status"] == "failed" else os.path.basename(r["output"])
            table.add_row(os.path.basename(r["input"]), f"[{styles[r['status']]}]{r['status']}[/]",
                          str(r.get("attempt", 0)), secs, detail)
        console.print(table)
    notes: dict[str, int] = {}  # a remark a single run would print, once with the number of inputs it concerns
    for r in (r for r in result.records if r["status"] == "done"):
        for note in r.get("notes", ()):
            notes[note] = notes.get(note, 0) + 1
    for note, n in notes.items():
        console.print(f"note ({n} input{'s' if n > 1 else ''}): {note}", markup=False, soft_wrap=True)
    counts = result.counts()
    ran = counts.get("done", 0) + counts.get("failed", 0)
    rate = f", {60 * ran / result.seconds:.1f} items/min" if ran and result.seconds > 0 else ""
    line = (f"{counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, {counts.get('failed', 0)} failed "
            f"in {result.seconds:.1f} s ({result.engine}, {result.workers} worker(s){rate}); "
            f"manifest {result.manifest}")
    if quiet:  # no table: still name every failed input and why, one line each
        for r in result.failed:
            console.print(f"failed: {os.path.basename(r['input'])}: {r['error']}", markup=False, soft_wrap=True)
    if result.failed or not quiet:
        console.print(line, markup=False)


class Engine(str, Enum):
    """Where the inputs run (a choice, so that a typo is a usage error naming the choices)."""

    local = "local"
    dask = "dask"


BATCH_SPECS = [
    ("inputs", list[str], typer.Argument(..., help="input files, folders or quoted globs ('scans/*.png')",
                                         show_default=False)),
    ("output", Optional[str], typer.Option(None, "-o", "--output", help="output folder (default: ./TASK-batch)")),
    ("engine", Engine, typer.Option(Engine.local.value, "--engine", help="local: this machine; dask: a Dask cluster")),
    ("scheduler", Optional[str], typer.Option(None, "--scheduler", help="Dask scheduler tcp://HOST:PORT "
                                              "(default with --engine dask: a LocalCluster)")),
    ("workers", Optional[int], typer.Option(None, "--workers", help="local: process-pool size (default 1, "
                                            "in-process); dask LocalCluster: worker processes (default: CPUs)")),
    ("threads", int, typer.Option(1, "--threads", help="torch threads per worker; keep it equal across runs "
                                  "for byte-identical outputs (0: torch default)")),
    ("resume", bool, typer.Option(False, "--resume", help="skip inputs already finished with the same config")),
    ("num_parts", int, typer.Option(1, "--num-parts", help="split the inputs into N parts …")),
    ("part_id", int, typer.Option(0, "--part-id", help="… and process part K (0-based)")),
    ("retries", int, typer.Option(0, "--retries", help="extra attempts for a failed input")),
    ("group_size", int, typer.Option(1, "--group-size", help="run up to N consecutive inputs of the same size as "
                                     "one batch through the network (local engine, one worker); outputs as "
                                     "without it")),
] + [spec for spec in COMMON if spec[0] not in ("input", "output", "threads")]


def run_batch_command(task: str, options: dict[str, Any], kw: dict[str, Any]) -> None:
    """The body of every batch command: ``kw`` holds the BATCH_SPECS values, ``options`` the task's."""
    from ..batch import run_batch
    from ..tasks import RunSettings

    settings = RunSettings(prior=kw["prior"], sampler=kw["sampler"], steps=kw["steps"],
                           noise=parse_noise(kw["noise"]), seed=kw["seed"], device=kw["device"],
                           samples=kw["samples"], simulate=kw["simulate"],
                           overwrite=kw["overwrite"], save_config=kw["save_config"],
                           sampler_options=parse_assignments(kw["set_"]), precision=kw["precision"],
                           batch_size=kw["batch_size"], quality=kw["quality"])
    outdir = kw["output"] or f"{task}-batch"
    quiet = kw["quiet"]
    with batch_progress(enabled=not quiet and sys.stderr.isatty()) as events:
        result = run_batch(kw["inputs"], task, outdir, options=options, settings=settings, engine=Engine(kw["engine"]).value,
                           workers=kw["workers"], scheduler=kw["scheduler"], resume=kw["resume"],
                           num_parts=kw["num_parts"], part_id=kw["part_id"], retries=kw["retries"],
                           threads=kw["threads"] or None, events=events, group_size=kw["group_size"])
    print_summary(result, quiet)
    if not result.ok:
        raise typer.Exit(1)


def make_batch_command(task_name: str, task):
    """``restore batch TASK INPUTS… [options]``: the batch options, the common run options, the task's own."""
    names = {spec[0] for spec in BATCH_SPECS}
    own = []
    for spec in task_option_specs(task):
        if spec[0] in names:  # a plugin task option that shadows a batch option: --opt still reaches it
            print(f"warning: task '{task_name}' option '--{spec[0]}' clashes with a batch option; "
                  f"pass it as --opt {spec[0]}=VALUE", file=sys.stderr)
            continue
        own.append(spec)

    def command(**kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name, _, _ in own}
        options = {k: v for k, v in options.items() if v is not None}
        run_batch_command(task_name, options, kwargs)

    set_signature(command, BATCH_SPECS + own)
    command.__doc__ = (f"{task.summary}, on many inputs (files, folders, globs), locally or on Dask; "
                       "resumable. Writes OUTDIR/<stem>_<task><ext> per input and OUTDIR/manifest.jsonl. "
                       "Exit code 1 when any input failed (after --retries), 2 for a usage error.")
    command.__name__ = f"batch_{task_name.replace('-', '_')}"
    return command


class BatchGroup(TyperGroup):
    """``batch TASK INPUTS…`` runs the task's command; ``batch INPUTS… --task TASK [--opt KEY=VALUE]`` (the
    form scripts may use) is rewritten to it, ``--opt kernel=X`` becoming ``--kernel X``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = self._from_task_form(ctx, args)
        return super().parse_args(ctx, args)

    def _usage_error(self, ctx, message: str):
        from .usage import click_exceptions

        return click_exceptions(self).UsageError(message, ctx)

    def _from_task_form(self, ctx, args: list[str]) -> list[str]:
        from .usage import suggest

        task, rest, opts, i = None, [], [], 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                rest += args[i:]
                break
            name, eq, value = arg.partition("=")
            if name in ("--task", "-t", "--opt") and not eq:
                if i + 1 >= len(args):
                    raise self._usage_error(ctx, f"option '{name}' requires an argument")
                value, i = args[i + 1], i + 1
            if name in ("--task", "-t"):
                task = value
            elif name == "--opt":
                opts.append(value)
            else:
                rest.append(arg)
            i += 1
        tasks = list(self.commands)
        if task is None:
            guess = suggest(args[0], tasks) if not args[0].startswith("-") else None
            hint = f"did you mean '{guess}'?" if guess else f"tasks: {', '.join(tasks)}"
            raise self._usage_error(ctx, f"no task '{args[0]}' ({hint}); use restore batch TASK INPUTS... "
                                         "or INPUTS... --task TASK")
        if task not in self.commands:
            guess = suggest(task, tasks)
            hint = f"did you mean '{guess}'?" if guess else f"tasks: {', '.join(tasks)}"
            raise self._usage_error(ctx, f"no task '{task}' ({hint}); restore list tasks shows them all")
        flags = {o: p for p in self.commands[task].params for o in getattr(p, "opts", ())}
        for item in opts:
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise self._usage_error(ctx, f"--opt expects KEY=VALUE (a task option), got '{item}'")
            option = "--" + key.strip().replace("_", "-")
            param = flags.get(option)
            if param is not None and getattr(param, "is_flag", False):  # --opt flag=false -> --no-flag
                on = value.strip().lower() in ("1", "true", "yes", "on")
                rest.append(option if on else (param.secondary_opts or [option])[0])
            else:
                rest += [option, value]
        return [task, *rest]


def _epilog(tasks: list[tuple[str, Any]]) -> str:
    lines = ["\b", "Task options (restore batch TASK --help for details):"]
    for name, task in tasks:
        opts = ", ".join(f"--{o.name.replace('_', '-')}" for o in task.options) or "(none)"
        lines.append(f"  {name}: {opts}")
    lines += ["", "\b", "Example:", "  restore batch deblur 'in/*.png' --kernel gaussian:1.5 --noise 0.01 -o out",
              "The older form 'restore batch INPUTS... --task TASK --opt KEY=VALUE' still works."]
    return "\n".join(lines)


BATCH_HELP = ("Run one task on many inputs (files, folders, globs), locally or on Dask; resumable: "
              "restore batch TASK INPUTS... [the task's options].")


def build_batch_command() -> click.Command:
    """The ``batch`` group with one subcommand per task; building it imports every task (and torch)."""
    from ..plugins import registry

    tasks = []
    for comp in registry().all("task"):
        try:
            tasks.append((comp.name, comp.build()))
        except Exception:  # noqa: BLE001 - a broken task is reported when it is used
            continue
    batch_app = typer.Typer(cls=BatchGroup, no_args_is_help=True, epilog=_epilog(tasks), help=BATCH_HELP,
                            add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    for name, task in tasks:
        batch_app.command(name, help=make_batch_command(name, task).__doc__)(make_batch_command(name, task))
    command = typer.main.get_command(batch_app)
    command.name = "batch"
    return command


class BatchPlaceholder(click.Command):
    """``batch`` as listed by ``restore --help``; :meth:`load` builds the real group when it is invoked."""

    def __init__(self) -> None:
        super().__init__("batch", help=BATCH_HELP, short_help=BATCH_HELP.split(";")[0])

    def load(self) -> click.Command:
        return build_batch_command()


def register(app: typer.Typer) -> None:
    """``batch`` is added lazily by :class:`restore.cli.tasks.LazyTaskGroup` (it imports every task)."""

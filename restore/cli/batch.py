"""``restore batch INPUTS… --task NAME``: many inputs, locally or on a Dask cluster.

Task options go through ``--opt KEY=VALUE`` (repeatable), e.g. ``--opt kernel=gaussian:2``: the task is
only known after parsing, so its own ``--kernel`` style options cannot be declared here.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Optional

import typer

from ..errors import InvalidInputError
from .tasks import parse_assignments


def _parse_options(items: list[str] | None) -> dict[str, Any]:
    for item in items or []:
        if "=" not in item:
            raise InvalidInputError(f"--opt expects KEY=VALUE (a task option), got '{item}'")
    out: dict[str, Any] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        out[key.strip().replace("-", "_")] = value  # converted with the option's declared type later
    return out


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
    counts = result.counts()
    ran = counts.get("done", 0) + counts.get("failed", 0)
    rate = f", {60 * ran / result.seconds:.1f} items/min" if ran and result.seconds > 0 else ""
    line = (f"{counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, {counts.get('failed', 0)} failed "
            f"in {result.seconds:.1f} s ({result.engine}, {result.workers} worker(s){rate}); "
            f"manifest {result.manifest}")
    if result.failed or not quiet:
        console.print(line, markup=False)


def batch(
    inputs: Annotated[list[str], typer.Argument(help="input files, folders or quoted globs ('scans/*.png')",
                                                show_default=False)],
    task: Annotated[str, typer.Option("--task", "-t", help="task to run on every input (restore list tasks)",
                                      show_default=False)],
    opt: Annotated[Optional[list[str]], typer.Option("--opt", help="task option KEY=VALUE (repeatable), "
                                                     "e.g. --opt kernel=gaussian:2")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="output folder (default: ./TASK-batch)")] = None,
    engine: Annotated[str, typer.Option("--engine", help="local | dask")] = "local",
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler tcp://HOST:PORT "
                                                     "(default with --engine dask: a LocalCluster)")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="local: process-pool size (default 1, "
                                                   "in-process); dask LocalCluster: worker processes (default: CPUs)")] = None,
    threads: Annotated[int, typer.Option("--threads", help="torch threads per worker; keep it equal across "
                                         "runs for byte-identical outputs (0: torch default)")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="skip inputs already finished with the same config")] = False,
    num_parts: Annotated[int, typer.Option("--num-parts", help="split the inputs into N parts …")] = 1,
    part_id: Annotated[int, typer.Option("--part-id", help="… and process part K (0-based)")] = 0,
    retries: Annotated[int, typer.Option("--retries", help="extra attempts for a failed input")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="run seed; each input's seed derives from it and its file name")] = 0,
    noise: Annotated[Optional[float], typer.Option("--noise", help="noise std of the inputs in [0, 1] image units")] = None,
    sampler: Annotated[Optional[str], typer.Option("--sampler", help="sampler name (restore list samplers)")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="number of sampler steps")] = None,
    prior: Annotated[str, typer.Option("--prior", help="prior name or folder (default: chosen by channels)")] = "default",
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    samples: Annotated[int, typer.Option("--samples", help="posterior samples per input; >1 also writes OUT_std")] = 1,
    simulate: Annotated[bool, typer.Option("--simulate", help="treat inputs as clean: degrade first, report PSNR/SSIM")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="redo inputs whose output exists")] = False,
    save_config: Annotated[bool, typer.Option("--save-config", help="write OUT.config.json next to each output")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="sampler option KEY=VALUE (repeatable)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or table (failures still print)")] = False,
) -> None:
    """Run one task on many inputs (files, folders, globs), locally or on Dask; resumable.

    Writes OUTDIR/<stem>_<task><ext> per input and OUTDIR/manifest.jsonl (one record per attempt). Exit
    code 1 when any input failed (after --retries), 2 for a usage error.
    """
    from ..batch import run_batch
    from ..tasks import RunSettings

    settings = RunSettings(prior=prior, sampler=sampler, steps=steps, noise=noise, seed=seed, device=device,
                           samples=samples, simulate=simulate, overwrite=overwrite, save_config=save_config,
                           sampler_options=parse_assignments(set_))
    outdir = output or f"{task}-batch"
    with batch_progress(enabled=not quiet and sys.stderr.isatty()) as events:
        result = run_batch(inputs, task, outdir, options=_parse_options(opt), settings=settings, engine=engine,
                           workers=workers, scheduler=scheduler, resume=resume, num_parts=num_parts,
                           part_id=part_id, retries=retries, threads=threads or None, events=events)
    print_summary(result, quiet)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)

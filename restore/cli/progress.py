"""A rich progress bar on a terminal; silent when stderr is piped."""
from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def progress_bar(description: str, enabled: bool | None = None, total: int | None = None):
    """Yield ``update(done, total, nfe)``; shows steps, NFE and ETA only on an interactive terminal.

    ``total``, when known before the run (the sampler's step count), is shown from the start, while the
    prior loads; the sampler's own count replaces it at the first step.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda done, total, nfe=0: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.console import Console

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("NFE {task.fields[nfe]}"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task_id = bar.add_task(description, total=total, nfe=0)

        def update(done: int, total: int, nfe: int = 0) -> None:
            bar.update(task_id, completed=done, total=total, nfe=nfe)

        yield update

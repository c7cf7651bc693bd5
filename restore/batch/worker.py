"""The unit of work of a batch: restore one input file into one output file.

:func:`process_one` is a top-level function of plain arguments (paths, names, dicts, ints), so every
executor (in-process, process pool, Dask workers on other machines) runs exactly the same code.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from typing import Any, Callable

from ..checksums import file_sha256  # noqa: F401 - the manifest's input hash
from ..errors import RestoreError


def pin_threads(threads: int | None) -> None:
    """Fix torch's intra-op thread count so that reductions run in the same order on every worker."""
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def process_one(input_path: str, output_path: str, task: str, options: dict[str, Any],
                settings_dict: dict[str, Any], seed: int, threads: int | None = 1,
                progress: Callable[[int, int, int], None] | None = None) -> dict[str, Any]:
    """Restore ``input_path`` with ``task`` into ``output_path`` (written atomically by ``run_task``).

    Never raises for a failing input: the error is returned in the record so that the caller can log
    it, retry it and go on with the other inputs.

    Args:
        input_path, output_path: file paths as seen by the machine that runs this function.
        task: registered task name (``restore list tasks``).
        options: the task's options (``kernel``, ``scale`` …).
        settings_dict: fields of :class:`restore.tasks.RunSettings`; ``seed`` and ``overwrite`` are
            replaced by this function's arguments.
        seed: this input's seed (see :func:`restore.batch.seeds.item_seed`).
        threads: torch intra-op threads (``None`` leaves torch's setting alone).
        progress: ``progress(step, total, nfe)`` of the current input (in-process runs only).

    Returns:
        ``{"input", "output", "status": "done"|"failed", "seed", "started", "seconds", "nfe", "sampler",
        "prior", "output_sha256", "notes", "error", "worker"}``; ``notes`` are the run's one-line remarks
        (e.g. a particle run whose weights collapsed), which a single run prints.
    """
    from ..tasks import RunSettings, run_task

    pin_threads(threads)
    record = _start(input_path, output_path, seed)
    t0 = time.perf_counter()
    try:
        settings = RunSettings(**{**settings_dict, "seed": seed, "overwrite": True})
        _done(record, run_task(task, input_path, output_path, settings, options, progress=progress))
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the batch; keep where it failed
        _failed(record, exc)
    record["seconds"] = round(time.perf_counter() - t0, 4)
    return record


def process_group(items: list[tuple[str, str, int]], task: str, options: dict[str, Any],
                  settings_dict: dict[str, Any], group_size: int, threads: int | None = 1,
                  progress: Callable[[int, int, int], None] | None = None) -> list[dict[str, Any]]:
    """Restore several inputs ``(input_path, output_path, seed)`` of one batch, running those whose shapes,
    operator and noise agree as one batch through the network (at most ``group_size`` images per call; see
    :func:`restore.tasks.run_tasks`). Every output is the one :func:`process_one` writes for its input, up to
    floating-point reassociation. Returns one record per item, as :func:`process_one` does; ``seconds`` is
    each input's share of its group's time."""
    from ..tasks import RunSettings, prepare_run, run_tasks

    pin_threads(threads)
    records = [_start(i, o, s) for i, o, s in items]
    prepared, where = [], []
    for k, (input_path, output_path, seed) in enumerate(items):
        t0 = time.perf_counter()
        try:
            settings = RunSettings(**{**settings_dict, "seed": seed, "overwrite": True})
            prepared.append(prepare_run(task, input_path, output_path, settings, options))
            where.append(k)
        except Exception as exc:  # noqa: BLE001 - this input fails, the others go on
            _failed(records[k], exc)
        records[k]["seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = run_tasks(prepared, group_size, progress) if prepared else []
    share = (time.perf_counter() - t0) / max(1, len(prepared))
    for k, result in zip(where, results):
        if isinstance(result, Exception):
            _failed(records[k], result)
        else:
            _done(records[k], result)
        records[k]["seconds"] += share
    for record in records:
        record["seconds"] = round(record["seconds"], 4)
    return records


def _start(input_path: str, output_path: str, seed: int) -> dict[str, Any]:
    return {"input": input_path, "output": output_path, "seed": seed, "started": time.time(),
            "worker": f"{socket.gethostname()}:{os.getpid()}", "error": None}


def _done(record: dict[str, Any], report) -> None:
    record.update(status="done", nfe=report.nfe, sampler=report.sampler, prior=report.prior, noise=report.noise,
                  metrics=report.metrics, extra_outputs=report.extra_outputs, notes=list(report.notes),
                  output_sha256=file_sha256(record["output"]))


def _failed(record: dict[str, Any], exc: BaseException) -> None:
    if isinstance(exc, RestoreError):
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        return
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" at {os.path.basename(last[0].filename)}:{last[0].lineno}" if last else ""
    record.update(status="failed", error=f"{type(exc).__name__}: {exc}{where}")

"""Executors: run :func:`restore.batch.worker.process_one` on jobs (file paths), locally or on Dask.

Every executor has the same small interface: :meth:`Executor.submit` a :class:`Job`, iterate
:meth:`Executor.results` to receive ``(job, record)`` pairs as they finish (jobs submitted while
iterating are included), :meth:`Executor.close`. Jobs carry paths, never arrays, so work can move to
other machines; outputs are written by the worker itself.
"""
from __future__ import annotations

import collections
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import InvalidInputError, require
from .worker import process_group, process_one

ENGINES = ("local", "dask")


@dataclass
class Job:
    """One input of a batch and how to run it (everything picklable)."""

    input: str
    output: str
    task: str
    options: dict[str, Any]
    settings: dict[str, Any]
    seed: int
    threads: int | None = 1
    attempt: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def args(self) -> tuple:
        return (self.input, self.output, self.task, self.options, self.settings, self.seed, self.threads)


def failure(job: Job, exc: BaseException) -> dict[str, Any]:
    """The record of a job whose worker died or could not run it at all."""
    return {"input": job.input, "output": job.output, "seed": job.seed, "status": "failed",
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0], "seconds": None, "worker": None}


class Executor:
    """Base class; see the module docstring."""

    name = "executor"
    workers = 1

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def results(self) -> Iterator[tuple[Job, dict[str, Any]]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; pending jobs are abandoned (their outputs were never renamed into place)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequentialExecutor(Executor):
    """In-process, one job after another; reports the current job's sampler steps to ``step_progress``.

    With ``group_size > 1`` up to that many queued jobs are taken at once and those whose shapes agree run
    as one batch through the network (:func:`restore.batch.worker.process_group`)."""

    name = "local"

    def __init__(self, step_progress: Callable[[Job], Callable[[int, int, int], None] | None] | None = None,
                 group_size: int = 1):
        self._queue: collections.deque[Job] = collections.deque()
        self._step_progress = step_progress
        self._threads_before: int | None = None
        self._group_size = group_size

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def results(self) -> Iterator[tuple[Job, dict[str, Any]]]:
        import torch

        self._threads_before = torch.get_num_threads()
        while self._queue:
            job = self._queue.popleft()
            callback = self._step_progress(job) if self._step_progress else None
            if self._group_size == 1:
                yield job, process_one(*job.args(), progress=callback)
                continue
            jobs = [job]
            while self._queue and len(jobs) < self._group_size:
                jobs.append(self._queue.popleft())
            records = process_group([(j.input, j.output, j.seed) for j in jobs], job.task, job.options,
                                    job.settings, self._group_size, job.threads, progress=callback)
            yield from zip(jobs, records)

    def close(self) -> None:
        if self._threads_before is not None:  # the in-process worker pinned torch's threads
            import torch

            torch.set_num_threads(self._threads_before)


class PoolExecutor(Executor):
    """A small pool of spawned processes on this machine (``--engine local --workers N``)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        self._context = multiprocessing.get_context("spawn")  # fork after torch threads start can deadlock
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=self._context)
        self._pending: dict[Future, Job] = {}

    def submit(self, job: Job) -> None:
        try:
            future = self._pool.submit(process_one, *job.args())
        except RuntimeError:  # a killed worker broke the pool: start a fresh one for the remaining jobs
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context)
            future = self._pool.submit(process_one, *job.args())
        self._pending[future] = job

    def results(self) -> Iterator[tuple[Job, dict[str, Any]]]:
        while self._pending:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            for future in done:
                job = self._pending.pop(future)
                try:
                    yield job, future.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker process fails this job only
                    yield job, failure(job, exc)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def dask_message(module: str = "distributed") -> str:
    """What ``--engine dask`` prints when ``module`` is missing; empty when it imports."""
    try:
        require(module, "dask")
    except ImportError as exc:
        return str(exc)
    return ""


class DaskExecutor(Executor):
    """Jobs as Dask futures on a ``distributed`` cluster.

    Args:
        scheduler: ``tcp://HOST:PORT`` of a running scheduler; ``None`` starts a ``LocalCluster`` of
            ``workers`` single-threaded worker processes on this machine.
        workers: size of the LocalCluster (ignored with ``scheduler``).
        gpu: tag each job with the worker resource ``GPU=1``; ``None`` decides: on a LocalCluster when
            CUDA is available here, on a remote cluster when some worker advertises a ``GPU`` resource
            (start those with ``dask worker … --resources GPU=1``).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int = 2, gpu: bool | None = None,
                 silence_logs: int | None = None) -> None:
        import logging

        distributed = require("distributed", "dask")
        self._cluster = None
        if scheduler is None:
            import torch

            local_gpu = torch.cuda.is_available() if gpu is None else gpu
            self._cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                resources={"GPU": 1} if local_gpu else None,
                silence_logs=logging.ERROR if silence_logs is None else silence_logs)
            address = self._cluster.scheduler_address
            self.gpu = local_gpu
        else:
            address = scheduler
        try:
            self.client = distributed.Client(address, timeout="20s", set_as_default=False)
        except OSError as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise InvalidInputError(f"cannot connect to the Dask scheduler '{address}' ({exc}); "
                                    "check --scheduler tcp://HOST:PORT and that the scheduler runs") from None
        info = self.client.scheduler_info()
        self.workers = len(info.get("workers", {}))
        if scheduler is not None:
            self.gpu = gpu if gpu is not None else any(
                "GPU" in (w.get("resources") or {}) for w in info.get("workers", {}).values())
        self._ac = distributed.as_completed(loop=self.client.loop)
        self._jobs: dict[str, Job] = {}

    def submit(self, job: Job) -> None:
        future = self.client.submit(process_one, *job.args(), pure=False,
                                    resources={"GPU": 1} if self.gpu else None,
                                    key=f"restore-{os.path.basename(job.input)}-{job.attempt}-{id(job)}")
        self._jobs[future.key] = job
        self._ac.add(future)

    def results(self) -> Iterator[tuple[Job, dict[str, Any]]]:
        for future in self._ac:
            job = self._jobs.pop(future.key)
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: this job failed, the others go on
                record = failure(job, exc)
            future.release()
            yield job, record

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def check_engine(engine: str, workers: int | None, scheduler: str | None, group_size: int = 1) -> None:
    """Raise a one-line error for an unusable engine choice (unknown, bad size, missing Dask, grouping on
    an executor that runs one input per process)."""
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown engine '{engine}'; use one of: {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {workers}")
    if group_size < 1:
        raise InvalidInputError(f"--group-size must be >= 1, got {group_size}")
    if group_size > 1 and (engine != "local" or (workers or 1) > 1):
        raise InvalidInputError(f"--group-size {group_size} batches images in one process; use it with --engine "
                                "local and one worker (the default), or drop it")
    if engine == "dask":
        require("distributed", "dask")
    elif scheduler is not None:
        raise InvalidInputError("--scheduler needs --engine dask")


def make_executor(engine: str, *, workers: int = 1, scheduler: str | None = None,
                  step_progress: Callable[[Job], Callable[[int, int, int], None] | None] | None = None,
                  gpu: bool | None = None, group_size: int = 1) -> Executor:
    """Build the executor for ``--engine`` (``local`` sequential or pooled; ``dask``); ``group_size`` images
    per network batch needs the in-process one (``local`` with one worker)."""
    check_engine(engine, workers, scheduler, group_size)
    if engine == "dask":
        return DaskExecutor(scheduler, workers, gpu=gpu)
    return SequentialExecutor(step_progress, group_size) if workers == 1 else PoolExecutor(workers)

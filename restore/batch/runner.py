"""``run_batch``: plan the inputs, skip finished ones, run the rest on an executor, log the manifest."""
from __future__ import annotations

import glob
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..errors import InvalidInputError, OutputExistsError
from ..plan import plan_task
from ..tasks import RunSettings, Task, config_hash, default_output, get_task
from .executors import Job, check_engine, make_executor
from .inputs import expand_inputs, select_part
from .manifest import Manifest, finished, manifest_name
from .seeds import item_seed
from .worker import file_sha256


@dataclass
class BatchResult:
    """Outcome of a batch: the final record per input (in input order) and where the manifest is."""

    records: list[dict[str, Any]]
    manifest: str
    seconds: float
    engine: str
    workers: int

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


@dataclass
class Events:
    """Callbacks for progress displays; all optional."""

    planned: Callable[[int, int], None] | None = None  # (to run, skipped)
    record: Callable[[dict[str, Any]], None] | None = None  # every attempt's record
    step: Callable[[Job], Callable[[int, int, int], None] | None] | None = None  # in-process steps


def _convert(task: Task, key: str, value: Any) -> Any:
    opt = next(o for o in task.options if o.name == key)
    if value is None or opt.type is str or isinstance(value, opt.type) and not isinstance(value, bool):
        return value if opt.type is not float or not isinstance(value, int) else float(value)
    if opt.type is bool:
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise InvalidInputError(f"task option '{key}' expects true/false, got '{value}'")
    try:
        return opt.type(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"task option '{key}' expects {opt.type.__name__}, got '{value}'") from None


def task_options(task: Task, given: dict[str, Any] | None) -> dict[str, Any]:
    """The task's options with defaults filled in and values converted to the declared types.

    Raises:
        InvalidInputError: an option the task does not have (the message lists the ones it has).
    """
    names = [o.name for o in task.options]
    out = {o.name: o.default for o in task.options}
    for key, value in (given or {}).items():
        key = key.replace("-", "_")
        if key not in names:
            have = ", ".join(names) or "none"
            raise InvalidInputError(f"task '{task.name}' has no option '{key}'; its options: {have}")
        out[key] = _convert(task, key, value)
    return out


def batch_config(task: Task, settings: RunSettings, options: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines an output except the input and its seed (the config-hash basis): the run
    plan's record (built up front, so bad sampler names and options fail before any input is read)."""
    return {**plan_task(task, settings, options).record(), "device": settings.device}


def item_config_hash(base: dict[str, Any], seed: int, input_sha256: str, threads: int | None) -> str:
    return config_hash({**base, "seed": seed, "input_sha256": input_sha256, "threads": threads})


def output_path(input_path: str, task: Task, outdir: str) -> str:
    """``OUTDIR/<stem>_<task><ext>``: the name ``restore <task> INPUT`` would write, in ``outdir``."""
    return os.path.join(os.path.abspath(outdir), os.path.basename(default_output(input_path, task)))


def remove_partials(output: str) -> None:
    """Delete temporary files a killed run left for ``output`` (see :func:`restore.io.write`)."""
    folder, name = os.path.split(output)
    for path in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.partial*")):
        os.unlink(path)


def run_batch(inputs: list[str], task: str, outdir: str, *, options: dict[str, Any] | None = None,
              settings: RunSettings | None = None, engine: str = "local", workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, num_parts: int = 1, part_id: int = 0,
              retries: int = 0, threads: int | None = 1, events: Events | None = None,
              group_size: int = 1) -> BatchResult:
    """Restore every input file with ``task`` into ``outdir``.

    Args:
        inputs: files, folders and globs (see :func:`restore.batch.inputs.expand_inputs`).
        task: registered task name.
        outdir: output folder (created); holds the outputs and the manifest.
        options: task options (``{"kernel": "gaussian:2"}``); defaults fill the rest.
        settings: common run settings (sampler, steps, prior, noise, device, seed …); ``seed`` is the run
            seed from which each input's seed is derived; ``overwrite`` redoes existing outputs.
        engine: ``local`` (in-process; a spawned process pool with ``workers > 1``) or ``dask``.
        workers: local pool size (default 1) or LocalCluster size (default: CPU count).
        scheduler: ``tcp://HOST:PORT`` of a Dask scheduler (``engine="dask"``).
        resume: skip inputs whose output exists, is unchanged and was made with the same config hash.
        num_parts, part_id: process only the round-robin share ``part_id`` of ``num_parts``.
        retries: extra attempts for a failed input.
        threads: torch intra-op threads in every worker; equal values give byte-identical outputs
            across engines (``None`` leaves torch's default).
        events: progress callbacks.
        group_size: with the in-process local engine, run up to this many consecutive inputs whose shapes,
            operator and noise agree as one batch through the network; each output equals its ungrouped
            one up to floating-point reassociation (per-input generators).

    Returns:
        The final record per input; the manifest in ``outdir`` has every attempt.
    """
    t0 = time.perf_counter()
    settings = settings or RunSettings()
    events = events or Events()
    if retries < 0:
        raise InvalidInputError(f"--retries must be >= 0, got {retries}")
    check_engine(engine, workers, scheduler, group_size)  # usage errors before any folder is created
    task_obj = get_task(task)
    options = task_options(task_obj, options)
    paths = select_part(expand_inputs(inputs), num_parts, part_id)
    base = batch_config(task_obj, settings, options)
    outdir = os.path.abspath(outdir)
    outputs = [output_path(p, task_obj, outdir) for p in paths]
    seen: dict[str, str] = {}
    for p, out in zip(paths, outputs):
        if out in seen:
            raise InvalidInputError(f"inputs '{seen[out]}' and '{p}' would both write '{out}'; rename one "
                                    "or run them in separate batches")
        if out == p:
            raise InvalidInputError(f"output '{out}' would replace its input; choose another -o folder")
        seen[out] = p
    if not os.path.isdir(outdir):
        if os.path.exists(outdir):
            raise InvalidInputError(f"output folder '{outdir}' is a file; pass a folder with -o")
        os.makedirs(outdir)

    done_before = finished(outdir) if resume else {}
    settings_dict = asdict(settings)
    jobs, skipped, existing = [], [], []
    for p, out in zip(paths, outputs):
        seed = item_seed(settings.seed, p)
        h = item_config_hash(base, seed, file_sha256(p), threads)
        prev = done_before.get(out)
        if (prev is not None and prev.get("config_hash") == h and os.path.exists(out)
                and prev.get("output_sha256") == file_sha256(out)):
            skipped.append({**prev, "status": "skipped", "input": p, "attempt": 0, "error": None})
            continue
        if os.path.exists(out) and not (resume or settings.overwrite):
            existing.append(out)
        jobs.append(Job(p, out, task_obj.name, options, settings_dict, seed, threads, extra={"config_hash": h}))
    if existing:
        raise OutputExistsError(f"{len(existing)} output(s) exist in '{outdir}' (e.g. '{existing[0]}'); pass "
                                "--resume to skip finished inputs or --overwrite to redo them")

    manifest = Manifest(outdir, manifest_name(num_parts, part_id))
    run_id = uuid.uuid4().hex[:12]
    common = {"run_id": run_id, "task": task_obj.name, "part": f"{part_id}/{num_parts}"}
    for rec in skipped:
        rec.update(common, time=time.time())
        manifest.append(rec)
    if events.planned:
        events.planned(len(jobs), len(skipped))
    final: dict[str, dict[str, Any]] = {r["output"]: r for r in skipped}
    n_workers = workers or (1 if engine == "local" else max(1, os.cpu_count() or 1))
    used_workers = n_workers
    if jobs:
        for job in jobs:
            remove_partials(job.output)
        with make_executor(engine, workers=n_workers, scheduler=scheduler, step_progress=events.step,
                           group_size=group_size) as ex:
            used_workers = ex.workers
            for job in jobs:
                ex.submit(job)
            for job, record in ex.results():
                retry = record["status"] == "failed" and job.attempt <= retries
                record.update(common, engine=engine, attempt=job.attempt, config_hash=job.extra["config_hash"],
                              final=not retry, time=time.time())
                manifest.append(record)
                if events.record:
                    events.record(record)
                final[job.output] = record
                if retry:
                    ex.submit(Job(**{**job.__dict__, "attempt": job.attempt + 1}))
    records = [final[o] for o in outputs]
    return BatchResult(records, manifest.path, time.perf_counter() - t0, engine, used_workers)

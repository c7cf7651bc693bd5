"""Batch reconstruction of many inputs, in-process or on a Dask cluster (ARCHITECTURE.md §6).

``run_batch`` plans the inputs (files, folders, globs; ``--num-parts`` shares), derives each input's seed
from the run seed and its file name, skips finished inputs on resume (manifest + config hash), and runs
:func:`restore.batch.worker.process_one` on an executor. Outputs are written atomically by the worker.
"""
from .executors import ENGINES, DaskExecutor, Executor, Job, PoolExecutor, SequentialExecutor, dask_message, make_executor
from .inputs import expand_inputs, select_part
from .manifest import Manifest, finished, read_records
from .runner import BatchResult, Events, batch_config, output_path, run_batch, task_options
from .seeds import item_seed
from .worker import process_one

__all__ = [
    "run_batch", "BatchResult", "Events", "process_one", "item_seed", "expand_inputs", "select_part",
    "Manifest", "read_records", "finished", "Executor", "SequentialExecutor", "PoolExecutor", "DaskExecutor",
    "Job", "make_executor", "dask_message", "ENGINES", "batch_config", "output_path", "task_options",
]

"""Numerical faults during sampling, reported with the step at which they appeared.

Samplers are not touched: a global module forward hook (active only inside :func:`numerical_guard`) notes
the first non-finite network output, and the per-step progress callback that the CLI passes to every
sampler turns that note into a one-line error naming the step. Priors without a network (analytic ones)
are covered by :func:`restore.io.write`, which refuses to write NaN/Inf.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch

from ..errors import RestoreError

Progress = Callable[..., None]


class NumericalError(RestoreError):
    """NaN or Inf appeared inside the sampler (the message names the step); nothing was written."""


def _tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    sample = getattr(output, "sample", None)  # diffusers' UNet2DOutput
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


@contextlib.contextmanager
def numerical_guard(progress: Progress) -> Iterator[Progress]:
    """Yield a progress callback that raises :class:`NumericalError` at the step whose network call
    produced NaN/Inf; ``progress(step, total, nfe)`` is called as before."""
    seen: dict[str, Any] = {}

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        x = _tensor(output)
        # Image-shaped outputs only (the network's prediction; feature maps have many channels): cheap.
        if seen or x is None or x.ndim not in (4, 5) or x.shape[1] > 6 or not x.is_floating_point():
            return
        if not bool(torch.isfinite(x).all()):
            seen["module"] = type(module).__name__

    def guarded(step: int, total: int, nfe: int = 0) -> None:
        if seen:
            raise NumericalError(
                f"NaN/Inf appeared during sampling at step {step} of {total} (output of {seen['module']}); "
                "nothing was written: try --device cpu, fewer --steps or another --sampler")
        progress(step, total, nfe)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield guarded
    finally:
        handle.remove()


def _planned_config(task: Any, settings: Any):
    """The sampler config the run will build (task defaults, the ``--quality`` preset, ``--set``, ``--steps``),
    or ``None`` (a bad name or option is reported by the run itself, with its own message)."""
    from .. import api
    from ..plan import quality_preset

    try:
        name, preset = quality_preset(task, settings.quality, settings.sampler)
        cfg = {**task.sampler_defaults.get(name, {}), **preset, **settings.sampler_options}
        if settings.steps is not None:
            cfg["steps"] = settings.steps
        return api.sampler(name, **cfg).config
    except RestoreError:
        return None


def expected_steps(task: Any, settings: Any) -> int | None:
    """The step count the progress bar will reach (sampler steps x samples), known before the prior loads;
    ``None`` when it cannot be told up front (the first step then sets it)."""
    steps = getattr(_planned_config(task, settings), "steps", None)
    return int(steps) * max(1, settings.samples) if isinstance(steps, int) else None


def expected_nfe(task: Any, settings: Any) -> int | None:
    """Network evaluations for the up-front time estimate: the steps, or for a sampler without steps its
    ``transforms`` (Tweedie's x8 average: 8 calls in one step), times the samples."""
    config = _planned_config(task, settings)
    calls = getattr(config, "steps", None)
    if not isinstance(calls, int):
        calls = getattr(config, "transforms", None)
    return int(calls) * max(1, settings.samples) if isinstance(calls, int) else None

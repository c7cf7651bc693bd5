"""The run plan: one function turns a sampler choice, layered options and defaults into what runs.

The CLI task commands, ``restore batch`` and :func:`restore.solve` all build a :class:`RunPlan` with
:func:`make_plan` (tasks through :func:`plan_task`), execute it with :func:`execute_plan`, and record
:meth:`RunPlan.record` (``--save-config`` writes exactly that, plus what the run measured). The plan
passes ``steps`` only to a sampler whose config has it, and names no prior for a method that uses none
(classical baselines), so none is loaded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from .errors import InvalidInputError
from .problem import Problem

if TYPE_CHECKING:  # pragma: no cover
    from .priors.base import Prior
    from .samplers.base import Sampler
    from .tasks import RunSettings, Setup, Task


def _jsonable(value: Any) -> Any:
    if isinstance(value, (int, float, bool, str, type(None))):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class RunPlan:
    """What a run executes.

    Attributes:
        sampler: registered sampler name; ``sampler_config``: every field of its config as run.
        prior: registered prior name or folder; ``None`` when the sampler uses no prior.
        noise: noise std of the input in [0, 1] image units; ``seed``: the run seed; ``samples``: draws.
        task, options, simulate: the task and its options (``None`` / empty for :func:`restore.solve`).
        notes: one-line remarks for the user (e.g. an option the chosen sampler does not have).
    """

    sampler: str
    sampler_config: dict[str, Any]
    prior: str | None
    noise: float
    seed: int = 0
    samples: int = 1
    task: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    simulate: bool = False
    notes: tuple[str, ...] = ()

    def build_sampler(self) -> Sampler:
        from .api import sampler

        return sampler(self.sampler, **self.sampler_config)

    def load_prior(self, channels: int, domain: str, device: str) -> Prior | None:
        """The plan's prior on ``device`` (``None`` for prior-free samplers: nothing is loaded)."""
        if self.prior is None:
            return None
        from .api import prior

        return prior(self.prior, channels=channels, domain=domain, device=device)

    def record(self) -> dict[str, Any]:
        """The JSON-able description of the run (the ``--save-config`` file and the batch hash basis)."""
        return {"task": self.task, "options": {k: _jsonable(v) for k, v in sorted(self.options.items())},
                "prior": self.prior, "sampler": self.sampler,
                "sampler_config": {k: _jsonable(v) for k, v in self.sampler_config.items()},
                "noise": self.noise, "seed": self.seed, "samples": self.samples, "simulate": self.simulate}


def make_plan(sampler: str, *, prior: str = "default", steps: int | None = None,
              option_layers: tuple[dict[str, Any], ...] = (), noise: float = 0.0, seed: int = 0, samples: int = 1,
              channels: int = 3, domain: str = "natural", task: str | None = None,
              options: dict[str, Any] | None = None, simulate: bool = False) -> RunPlan:
    """The plan of one run.

    Args:
        sampler: registered sampler name.
        prior: prior name, folder or ``"default"`` (resolved from ``channels`` and ``domain``).
        steps: the shared ``--steps``; given to the sampler only when its config has ``steps`` (otherwise the
            plan carries a note saying so).
        option_layers: sampler options, later layers winning (task defaults, task-derived, user ``--set``).
        noise, seed, samples, task, options, simulate: recorded as given.

    Raises:
        InvalidInputError: an unknown sampler or option, or a value the sampler does not accept.
    """
    from .api import default_prior_name
    from .plugins import registry

    factory = registry().get("sampler", sampler).load()
    merged: dict[str, Any] = {}
    for layer in option_layers:
        merged.update(layer)
    notes = []
    config_cls = getattr(factory, "Config", None)
    fields = {f.name for f in dataclasses.fields(config_cls)} if dataclasses.is_dataclass(config_cls) else {"steps"}
    if samples > 1 and getattr(factory, "weighted", False) and "particles" in fields:
        # a particle sampler draws all its samples in one run: --samples N is N weighted particles
        if merged.get("particles", samples) != samples:
            notes.append(f"--samples {samples} sets particles={samples} (was {merged['particles']})")
        merged["particles"] = samples
    if steps is not None:
        if "steps" in fields:
            merged["steps"] = steps
        else:
            notes.append(f"sampler {sampler} has no steps (its options: {', '.join(sorted(fields)) or 'none'}); "
                         f"--steps {steps} is not used")
    built = factory(**merged)  # validates every option up front
    cfg = built.config
    config = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    prior_name = None
    if getattr(built, "uses_prior", True):
        prior_name = default_prior_name(channels, domain) if prior == "default" else prior
    return RunPlan(sampler, config, prior_name, noise, seed, samples, task, dict(options or {}), simulate,
                   tuple(notes))


def plan_task(task: Task, settings: RunSettings, options: dict[str, Any], setup: Setup | None = None,
              channels: int = 3) -> RunPlan:
    """The plan of a task run: the setup's own sampler choice (e.g. ``--method sense``) wins over
    ``--sampler``, which wins over the task's default; options layer task defaults, then what the setup
    derived, then the user's ``--set``."""
    name = (setup.sampler if setup is not None else None) or settings.sampler or task.default_sampler
    layers = (task.sampler_defaults.get(name, {}),
              setup.sampler_options.get(name, {}) if setup is not None else {}, settings.sampler_options)
    noise = task.default_noise if settings.noise is None else settings.noise
    return make_plan(name, prior=settings.prior, steps=settings.steps, option_layers=layers, noise=noise,
                     seed=settings.seed, samples=settings.samples, channels=channels, domain=task.domain,
                     task=task.name, options=options, simulate=settings.simulate)


def batch_parts(problem: Problem, chunk: int | None) -> list[Problem]:
    """``problem`` split into problems of at most ``chunk`` batch entries (in order), when its operator
    can be restricted to a batch slice; otherwise ``[problem]``."""
    size = problem.y.shape[0]
    if not chunk or size <= chunk or problem.operator.batch_slice(0, chunk) is None:
        return [problem]
    return [Problem(problem.y[a:a + chunk], problem.operator.batch_slice(a, min(a + chunk, size)), problem.noise)
            for a in range(0, size, chunk)]


@dataclass
class Execution:
    """What :func:`execute_plan` produced: ``draws`` ``(samples, B, C, H, W)`` on the CPU, counts and time.

    A particle sampler (``weighted = True``) runs once and its particles are the draws, with normalised
    ``weights`` ``(samples, B)`` and its ``diagnostics`` (ESS per step, resampling steps, log Ẑ) per batch part.
    """

    draws: torch.Tensor
    nfe: int
    seconds: float
    weights: torch.Tensor | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and per-pixel std of the draws (weighted for particle samplers), ``(B, C, H, W)``."""
        if self.weights is None:
            std = self.draws.std(0) if self.draws.shape[0] > 1 else torch.zeros_like(self.draws[0])
            return self.draws.mean(0), std
        from .samplers.particles import weighted_moments

        return weighted_moments(self.draws, self.weights)


def execute_plan(plan: RunPlan, problem: Problem, prior: Prior | None, generator: torch.Generator,
                 batch_chunk: int | None = None, progress: Callable[[int, int, int], None] | None = None) -> Execution:
    """Run the plan's sampler ``plan.samples`` times on ``problem`` (split into ``batch_chunk`` parts)."""
    sampler = plan.build_sampler()
    parts = batch_parts(problem, batch_chunk)
    weighted = getattr(sampler, "weighted", False)
    repeats = 1 if weighted else plan.samples
    runs = repeats * len(parts)
    draws, nfe, seconds = [], 0, 0.0
    weights, diagnostics = [], []
    for i in range(repeats):
        pieces = []
        for j, part in enumerate(parts):
            def step_progress(step: int, total: int, n: int, run: int = i * len(parts) + j) -> None:
                if progress:
                    progress(run * total + step, runs * total, nfe + n)

            result = sampler.run(prior, part, generator=generator, callback=step_progress)
            if weighted:
                pieces.append(result.extras["particles"].detach().cpu())
                weights.append(result.extras["weights"].detach().cpu())
                diagnostics.append(result.extras["diagnostics"])
            else:
                pieces.append(result.x.detach().cpu())
            nfe += result.nfe
            seconds += result.seconds
        if weighted:  # particles (N, B_part, ...) of every part side by side
            return Execution(torch.cat(pieces, 1), nfe, seconds, torch.cat(weights, 1), diagnostics)
        draws.append(torch.cat(pieces) if len(pieces) > 1 else pieces[0])
    if not draws:
        raise InvalidInputError("samples must be >= 1")
    return Execution(torch.stack(draws), nfe, seconds)

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
        noise: noise std of the input in [0, 1] image units (``"auto"`` in a batch plan: estimated per input);
            ``seed``: the run seed; ``samples``: draws.
        task, options, simulate: the task and its options (``None`` / empty for :func:`restore.solve`).
        notes: one-line remarks for the user (e.g. an option the chosen sampler does not have).
        precision: the network's precision (``fp32`` | ``bf16`` | ``auto``; analytic priors ignore it).
        batch_size: chains per network call for ``samples > 1`` (``None``: all at once).
    """

    sampler: str
    sampler_config: dict[str, Any]
    prior: str | None
    noise: float | str
    seed: int = 0
    samples: int = 1
    task: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    simulate: bool = False
    notes: tuple[str, ...] = ()
    precision: str = "fp32"
    batch_size: int | None = None

    def build_sampler(self) -> Sampler:
        from .api import sampler

        return sampler(self.sampler, **self.sampler_config)

    def load_prior(self, channels: int, domain: str, device: str) -> Prior | None:
        """The plan's prior on ``device`` (``None`` for prior-free samplers: nothing is loaded)."""
        if self.prior is None:
            return None
        from .api import prior

        return prior(self.prior, channels=channels, domain=domain, device=device, precision=self.precision)

    def record(self) -> dict[str, Any]:
        """The JSON-able description of the run (the ``--save-config`` file and the batch hash basis)."""
        return {"task": self.task, "options": {k: _jsonable(v) for k, v in sorted(self.options.items())},
                "prior": self.prior, "sampler": self.sampler,
                "sampler_config": {k: _jsonable(v) for k, v in self.sampler_config.items()},
                "noise": self.noise, "seed": self.seed, "samples": self.samples, "simulate": self.simulate,
                "precision": self.precision}


def make_plan(sampler: str, *, prior: str = "default", steps: int | None = None,
              option_layers: tuple[dict[str, Any], ...] = (), noise: float = 0.0, seed: int = 0, samples: int = 1,
              channels: int = 3, domain: str = "natural", task: str | None = None,
              options: dict[str, Any] | None = None, simulate: bool = False, precision: str = "fp32",
              batch_size: int | None = None) -> RunPlan:
    """The plan of one run.

    Args:
        sampler: registered sampler name.
        prior: prior name, folder or ``"default"`` (resolved from ``channels`` and ``domain``).
        steps: the shared ``--steps``; given to the sampler only when its config has ``steps`` (otherwise the
            plan carries a note saying so).
        option_layers: sampler options, later layers winning (task defaults, task-derived, user ``--set``).
        noise, seed, samples, task, options, simulate: recorded as given.
        precision: the network's precision; batch_size: chains per network call (see :class:`RunPlan`).

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
    if samples > 1 and getattr(factory, "deterministic", False):
        notes.append(f"sampler {sampler} is deterministic: the {samples} samples are one result repeated and the "
                     f"std map is zero; for posterior samples pick a stochastic sampler (e.g. --sampler diffpir)")
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
    if batch_size is not None and batch_size < 1:
        raise InvalidInputError(f"batch size must be >= 1, got {batch_size}")
    return RunPlan(sampler, config, prior_name, noise, seed, samples, task, dict(options or {}), simulate,
                   tuple(notes), precision, batch_size)


#: ``--quality`` levels a task lacks in its own table: this fraction of the sampler's default steps.
QUALITY_STEPS = {"draft": 0.2, "default": 1.0, "best": 2.0}


def quality_preset(task: Task, quality: str, sampler: str) -> tuple[str, dict[str, Any]]:
    """``(sampler, options)`` of ``--quality`` for ``task``: the task's own table entry, else the default
    sampler with :data:`QUALITY_STEPS` times its default steps. ``sampler`` is the user's ``--sampler``
    (or ``None``); a preset made for another sampler is then not applied."""
    if quality not in QUALITY_STEPS:
        raise InvalidInputError(f"--quality must be one of {', '.join(QUALITY_STEPS)}, got '{quality}'")
    entry = dict(task.quality.get(quality, {}))
    name = entry.pop("sampler", task.default_sampler)
    if quality == "default" or (sampler is not None and sampler != name):
        return sampler or task.default_sampler, {}
    if "steps" not in entry:
        from .plugins import registry

        config_cls = getattr(registry().get("sampler", name).load(), "Config", None)
        fields = {f.name: f for f in dataclasses.fields(config_cls)} if dataclasses.is_dataclass(config_cls) else {}
        if "steps" in fields and isinstance(fields["steps"].default, int):
            entry["steps"] = max(1, round(fields["steps"].default * QUALITY_STEPS[quality]))
    return name, entry


#: The sampler a task runs without ``--sampler`` when ``--prior`` names a prior of a family that the task's
#: samplers do not take (by the kind that ``restore list priors`` shows).
FAMILY_SAMPLERS = {"mean-reverting": "mrs"}


def prior_kind(name: str) -> str | None:
    """The kind of the prior ``name`` (registered name or folder) read without loading it; ``None`` when it
    cannot be told (``"default"``, an unknown name: loading will report that)."""
    import json
    import os

    if name == "default":
        return None
    if os.sep in name or os.path.exists(name):
        meta = os.path.join(name, "restore_prior.json")
        try:
            with open(meta) as f:
                return json.load(f).get("kind", "vp")
        except (OSError, ValueError, AttributeError):
            return None
    from .errors import RestoreError
    from .plugins import registry

    try:
        return registry().get("prior", name).metadata.get("kind", "vp")
    except RestoreError:
        return None


def plan_task(task: Task, settings: RunSettings, options: dict[str, Any], setup: Setup | None = None,
              channels: int = 3) -> RunPlan:
    """The plan of a task run: the setup's own sampler choice (e.g. ``--method sense``) wins over
    ``--sampler``, which wins over the setup's default for its input, the sampler of the ``--prior``'s family
    (:data:`FAMILY_SAMPLERS`), the ``--quality`` preset and the task's default; options layer task defaults, the quality preset, then what the setup derived, then the user's
    ``--set``; ``--steps`` wins over the preset's steps."""
    chosen = settings.sampler or (setup.default_sampler if setup is not None else None) \
        or FAMILY_SAMPLERS.get(prior_kind(settings.prior) or "")
    name, preset = quality_preset(task, settings.quality, chosen)
    if setup is not None and setup.sampler:
        name, preset = setup.sampler, {}
    derived = setup.sampler_options.get(name, {}) if setup is not None else {}
    if "steps" in derived and "steps" in preset and "steps" not in task.quality.get(settings.quality, {}):
        # a setup that lengthens the sampler's schedule for this input (single-coil MRI) is the default that
        # --quality scales, not the sampler's own steps
        preset["steps"] = max(1, round(derived["steps"] * QUALITY_STEPS[settings.quality]))
    steps = settings.steps if settings.steps is not None else preset.pop("steps", None)
    preset.pop("steps", None)
    layers = (task.sampler_defaults.get(name, {}), preset,
              setup.sampler_options.get(name, {}) if setup is not None else {}, settings.sampler_options)
    noise = settings.noise if settings.noise is not None else task.default_noise
    if task.estimates(settings.noise, settings.simulate):  # a batch's plan precedes reading: estimated per input
        noise = "auto"
    return make_plan(name, prior=settings.prior, steps=steps, option_layers=layers, noise=noise,
                     seed=settings.seed, samples=settings.samples, channels=channels, domain=task.domain,
                     task=task.name, options=options, simulate=settings.simulate, precision=settings.precision,
                     batch_size=settings.batch_size)


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


def chain_seed(seed: int, i: int) -> int:
    """The seed of posterior sample ``i`` of a run with ``seed``: ``mix(seed + i)``, a fixed odd-multiplier
    (golden-ratio) hash. Sample ``i`` of ``--seed S --samples N`` therefore equals the one sample of
    ``--seed S+i``, and the sampler's noise never repeats the measurement noise that ``--simulate`` draws
    from ``S`` itself."""
    return ((seed + i) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 63)


class ChainGenerators:
    """One CPU ``torch.Generator`` per chain of a batched run: a draw of shape ``(n·B, ...)`` takes
    ``(B, ...)`` from each chain's generator in turn, so every chain sees exactly the numbers it would
    see alone (:func:`restore.priors.view.randn` understands this object)."""

    def __init__(self, seeds: list[int]) -> None:
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        n = len(self.generators)
        if shape[0] % n:
            raise InvalidInputError(f"a batched draw of shape {shape} does not split into {n} chains")
        part = (shape[0] // n,) + tuple(shape[1:])
        return torch.cat([torch.randn(part, generator=g, dtype=dtype) for g in self.generators])


def _acts_alike(problem: Problem, n: int) -> bool:
    """Whether ``problem``'s operator maps a batch of ``n`` copies to ``n`` copies of its single output
    (forward and adjoint), so ``n`` chains can share one batched problem with ``y`` repeated."""
    op, y = problem.operator, problem.y
    if y.shape[0] != 1 or y.is_complex():
        return False
    try:
        x = torch.rand(problem.x_shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype).to(y.device)
        one, many = op(x), op(x.repeat((n,) + (1,) * (x.ndim - 1)))
        ok = tuple(many.shape) == (n,) + tuple(one.shape[1:]) and torch.allclose(many, one.expand_as(many))
        if ok and op.linear:
            back, backs = op.adjoint(y), op.adjoint(y.repeat((n,) + (1,) * (y.ndim - 1)))
            ok = tuple(backs.shape) == (n,) + tuple(back.shape[1:]) and torch.allclose(backs, back.expand_as(backs))
        return bool(ok)
    except Exception:  # noqa: BLE001 - any failure means "run the chains one by one"
        return False


def _execute_particles(sampler, problem: Problem, prior: Prior | None, seed: int, batch_chunk: int | None,
                       progress: Callable[[int, int, int], None] | None) -> Execution:
    """A particle sampler runs once: its N weighted particles are the draws (``--samples`` sets N)."""
    parts = batch_parts(problem, batch_chunk)
    generator = torch.Generator().manual_seed(seed)
    pieces, weights, diagnostics, nfe, seconds = [], [], [], 0, 0.0
    for j, part in enumerate(parts):
        def step_progress(step: int, total: int, n: int, run: int = j) -> None:
            if progress:
                progress(run * total + step, len(parts) * total, nfe + n)

        result = sampler.run(prior, part, generator=generator, callback=step_progress)
        pieces.append(result.extras["particles"].detach().cpu())
        weights.append(result.extras["weights"].detach().cpu())
        diagnostics.append(result.extras["diagnostics"])
        nfe += result.nfe
        seconds += result.seconds
    # particles (N, B_part, ...) of every part side by side
    return Execution(torch.cat(pieces, 1), nfe, seconds, torch.cat(weights, 1), diagnostics)


def execute_plan(plan: RunPlan, problem: Problem, prior: Prior | None, batch_chunk: int | None = None,
                 progress: Callable[[int, int, int], None] | None = None) -> Execution:
    """Run the plan's sampler for ``plan.samples`` posterior samples on ``problem`` (split into
    ``batch_chunk`` parts).

    Sample ``i`` draws its noise from a generator seeded with :func:`chain_seed` ``(plan.seed, i)``. When the
    sampler supports it (``Sampler.chain_batching``) and the problem is one image whose operator acts alike on
    every batch entry, the chains run as one batch (``plan.batch_size`` chains per network call at most);
    otherwise one after another. Either way sample ``i`` is the same up to floating-point reassociation.
    """
    if plan.samples < 1:
        raise InvalidInputError("samples must be >= 1")
    sampler = plan.build_sampler()
    if getattr(sampler, "weighted", False):
        return _execute_particles(sampler, problem, prior, chain_seed(plan.seed, 0), batch_chunk, progress)
    seeds = [chain_seed(plan.seed, i) for i in range(plan.samples)]
    group = max(1, min(plan.batch_size or plan.samples, plan.samples))
    batched = (plan.samples > 1 and group > 1 and getattr(sampler, "chain_batching", False)
               and _acts_alike(problem, group))
    if batched:
        groups = [seeds[a:a + group] for a in range(0, len(seeds), group)]
        parts = [[problem]] * len(groups)
    else:
        groups = [[s] for s in seeds]
        parts = [batch_parts(problem, batch_chunk)] * len(groups)
    runs = sum(len(p) for p in parts)
    draws, nfe, seconds, done = [], 0, 0.0, 0
    for chains, pieces_in in zip(groups, parts):
        pieces = []
        for part in pieces_in:
            if len(chains) > 1:
                reps = (len(chains),) + (1,) * (part.y.ndim - 1)
                part = Problem(part.y.repeat(reps), part.operator, part.noise)
                gen: Any = ChainGenerators(chains)
            else:
                gen = torch.Generator().manual_seed(chains[0])

            def step_progress(step: int, total: int, n: int, run: int = done) -> None:
                if progress:
                    progress(run * total + step, runs * total, nfe + n)

            result = sampler.run(prior, part, generator=gen, callback=step_progress)
            pieces.append(result.x.detach().cpu())
            nfe += result.nfe
            seconds += result.seconds
            done += 1
        x = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
        draws.extend(x.chunk(len(chains)) if len(chains) > 1 else [x])
    return Execution(torch.stack(draws), nfe, seconds)


def _same_operator(a, b, x_shape: tuple[int, ...], y: torch.Tensor) -> bool:
    """Whether operators ``a`` and ``b`` map the same probe alike (forward, and adjoint when linear)."""
    if a is b:
        return True
    if type(a) is not type(b) or a.linear != b.linear:
        return False
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(x_shape, generator=g, dtype=y.dtype).to(y.device)
        fa, fb = a(x), b(x)
        if fa.shape != fb.shape or not torch.allclose(fa, fb):
            return False
        if a.linear:
            r = torch.rand(y.shape, generator=g, dtype=y.dtype).to(y.device)
            ba, bb = a.adjoint(r), b.adjoint(r)
            return ba.shape == bb.shape and bool(torch.allclose(ba, bb))
        return True
    except Exception:  # noqa: BLE001 - anything unusual: keep the inputs apart
        return False


def groupable(runs: list, group_size: int) -> list[list[int]]:
    """Indices of ``runs`` (:class:`restore.tasks.PreparedRun`) in groups of at most ``group_size`` that can
    share network calls, in input order: the same plan but for the seed, one image each of the same shape
    and dtype, an operator that acts alike on both (a probe through forward and adjoint) and the same noise
    model, and a sampler whose batch entries are independent (``Sampler.chain_batching``)."""
    from .plugins import registry

    groups: list[list[int]] = []
    open_groups: list[list[int]] = []
    for i, run in enumerate(runs):
        problem, plan = run.setup.problem, run.plan
        fits = (group_size > 1 and run.setup.batch_chunk is None and problem.y.shape[0] == 1
                and not problem.y.is_complex())
        if fits:
            try:
                cls = registry().get("sampler", plan.sampler).load()
                fits = getattr(cls, "chain_batching", False) and not getattr(cls, "weighted", False)
            except Exception:  # noqa: BLE001 - the run reports its own error
                fits = False
        target = None
        if fits:
            record = {**plan.record(), "seed": None}
            for members in open_groups:
                first = runs[members[0]]
                other = first.setup.problem
                if (len(members) < group_size and {**first.plan.record(), "seed": None} == record
                        and first.plan.batch_size == plan.batch_size and first.device == run.device
                        and other.y.shape == problem.y.shape and other.y.dtype == problem.y.dtype
                        and tuple(other.x_shape) == tuple(problem.x_shape)
                        and type(other.noise) is type(problem.noise) and vars(other.noise) == vars(problem.noise)
                        and _same_operator(other.operator, problem.operator, tuple(problem.x_shape), problem.y)):
                    target = members
                    break
        if target is None:
            target = [i]
            groups.append(target)
            if fits:
                open_groups.append(target)
        else:
            target.append(i)
    return groups


def execute_group(plans: list[RunPlan], problems: list[Problem], prior: Prior | None,
                  progress: Callable[[int, int, int], None] | None = None) -> list[Execution]:
    """Several inputs that :func:`groupable` put together, run as batches through the network: entry
    ``(i, j)`` is sample ``j`` of input ``i`` and draws from :func:`chain_seed` ``(plans[i].seed, j)``, exactly
    as :func:`execute_plan` does for input ``i`` alone, so each input's draws equal its own run up to
    floating-point reassociation. ``plans[0].batch_size`` bounds the entries per network call. Each input's
    ``nfe`` is the shared network calls, its ``seconds`` its share of the time."""
    plan = plans[0]
    entries = [(i, j) for i in range(len(plans)) for j in range(plan.samples)]
    size = max(1, min(plan.batch_size or len(entries), len(entries)))
    if not _acts_alike(problems[0], size):  # the operator mixes batch entries: one input after another
        return [execute_plan(p, q, prior, None, progress) for p, q in zip(plans, problems)]
    sampler = plan.build_sampler()
    seeds = [chain_seed(plans[i].seed, j) for i, j in entries]
    y = torch.cat([problems[i].y for i, _ in entries])
    operator, noise = problems[0].operator, problems[0].noise
    starts = range(0, len(entries), size)
    pieces, nfe, seconds = [], 0, 0.0
    for run, a in enumerate(starts):
        b = min(a + size, len(entries))
        gen: Any = ChainGenerators(seeds[a:b]) if b - a > 1 else torch.Generator().manual_seed(seeds[a])

        def step_progress(step: int, total: int, n: int, run: int = run) -> None:
            if progress:
                progress(run * total + step, len(starts) * total, nfe + n)

        result = sampler.run(prior, Problem(y[a:b], operator, noise), generator=gen, callback=step_progress)
        pieces.append(result.x.detach().cpu())
        nfe += result.nfe
        seconds += result.seconds
    x = torch.cat(pieces)
    per = plan.samples
    return [Execution(x[i * per:(i + 1) * per].unsqueeze(1), nfe, seconds / len(plans)) for i in range(len(plans))]

"""Sequential Monte Carlo machinery shared by the particle samplers (``smc``, ``fkc``).

Particles are stored particle-major: a state of ``N`` particles for a batch of ``B`` problems is
``(N * B, ...)`` with particle ``n`` of problem ``b`` at row ``n * B + b``; log-weights are ``(N, B)``.

* :func:`normalise` / :func:`ess` — normalised log-weights and the effective sample size ``1 / Σ w²``;
* :func:`systematic_resample` — ancestor indices from one uniform per problem (Kitagawa 1996), drawn
  from an explicit generator;
* :class:`ParticleWeights` — running log-weights, adaptive resampling when ``ESS < threshold · N``, the
  log normalising-constant estimate ``log Ẑ`` and the per-step diagnostics a run records;
* :func:`collapse_note` — the user's warning when those diagnostics show the weights on one particle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def check_particle_options(name: str, cfg) -> None:
    """The options every particle sampler shares: ``particles``, ``ess_threshold``, ``particle_batch``."""
    from ..errors import InvalidInputError

    if cfg.particles < 1 or not 0 <= cfg.ess_threshold <= 1:
        raise InvalidInputError(f"{name} needs particles >= 1 and 0 <= ess_threshold <= 1, got particles="
                                f"{cfg.particles}, ess_threshold={cfg.ess_threshold}")
    if cfg.particle_batch is not None and cfg.particle_batch < 1:
        raise InvalidInputError(f"particle_batch must be >= 1 (or None for all), got {cfg.particle_batch}")


def normalise(log_w: torch.Tensor) -> torch.Tensor:
    """Normalised log-weights over the particle axis (dim 0) of ``(N, B)`` log-weights."""
    return log_w - torch.logsumexp(log_w, dim=0, keepdim=True)


def ess(log_w: torch.Tensor) -> torch.Tensor:
    """Effective sample size ``1 / Σ_n w_n²`` of ``(N, B)`` log-weights, ``(B,)``."""
    return torch.exp(-torch.logsumexp(2 * normalise(log_w), dim=0))


def systematic_resample(log_w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Systematic resampling: ancestor indices ``(N, B)`` into the particle axis.

    One uniform ``u ~ U[0, 1)`` per problem; particle ``n`` takes the ancestor whose cumulative weight first
    exceeds ``(n + u) / N``. Each ancestor ``i`` is chosen ``N w_i`` times in expectation (unbiased).

    Args:
        log_w: ``(N, B)`` log-weights (unnormalised is fine).
        generator: CPU generator for the uniforms.
    """
    n, b = log_w.shape
    w = normalise(log_w.detach().double().cpu()).exp()
    cum = torch.cumsum(w, dim=0)
    cum[-1] = 1.0  # rounding must not leave the last point beyond the total mass
    u = torch.rand(b, generator=generator, dtype=torch.float64)
    points = (torch.arange(n, dtype=torch.float64).unsqueeze(1) + u) / n  # (N, B)
    idx = torch.searchsorted(cum.T.contiguous(), points.T.contiguous(), right=True).T
    return idx.clamp_max(n - 1).to(log_w.device)


def gather_particles(x: torch.Tensor, ancestors: torch.Tensor) -> torch.Tensor:
    """Rows of a particle-major state ``(N * B, ...)`` picked by ancestor indices ``(N, B)``."""
    n, b = ancestors.shape
    rows = (ancestors * b + torch.arange(b, device=ancestors.device)).reshape(-1)
    return x[rows.to(x.device)]


@dataclass
class ParticleWeights:
    """Log-weights of ``N`` particles for ``B`` problems with adaptive resampling and ``log Ẑ``.

    ``log Ẑ`` is the standard SMC estimate: the sum over resampling epochs of ``log mean_n w_n`` of the
    weights accumulated since the previous resampling (unbiased for ``Z`` itself).

    Attributes:
        n, batch: particles and problems.
        threshold: resample when ``ESS < threshold · N`` (``0`` never, ``1`` at every step).
        exponent: every increment is raised to this power (``1``: exact; below one an approximate, tempered
            reweighting that a sampler offers only as an explicit option).
        log_w: ``(N, B)`` current unnormalised log-weights.
        log_z_resampled: ``(B,)`` ``log Ẑ`` of the finished epochs.
        ess_history: ESS per step, a list of ``B`` floats per step (before any resampling of that step).
        resampled: the step numbers at which resampling happened (for any problem).
    """

    n: int
    batch: int
    threshold: float = 0.5
    exponent: float = 1.0
    log_w: torch.Tensor = None  # type: ignore[assignment]
    log_z_resampled: torch.Tensor = None  # type: ignore[assignment]
    ess_history: list[list[float]] = field(default_factory=list)
    resampled: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.log_w is None:
            self.log_w = torch.zeros(self.n, self.batch, dtype=torch.float64)
        if self.log_z_resampled is None:
            self.log_z_resampled = torch.zeros(self.batch, dtype=torch.float64)

    def add(self, log_increment: torch.Tensor) -> None:
        """Multiply the weights by ``exp(log_increment)``, ``(N * B,)`` or ``(N, B)``; NaN counts as weight 0."""
        inc = log_increment.detach().double().cpu().reshape(self.n, self.batch)
        inc = torch.nan_to_num(inc, nan=-math.inf, posinf=-math.inf)
        if self.exponent != 1:
            inc = torch.where(torch.isfinite(inc), self.exponent * inc, inc)  # a vanished particle stays vanished
        self.log_w = self.log_w + inc

    def ess(self) -> torch.Tensor:
        return ess(self.log_w)

    def log_z(self) -> torch.Tensor:
        """``(B,)`` current ``log Ẑ``."""
        return self.log_z_resampled + torch.logsumexp(self.log_w, dim=0) - math.log(self.n)

    def normalised(self) -> torch.Tensor:
        """``(N, B)`` normalised weights."""
        return normalise(self.log_w).exp()

    def maybe_resample(self, step: int, generator: torch.Generator | None) -> torch.Tensor | None:
        """Record the ESS of ``step``; when it is below ``threshold · N`` for some problem, resample every
        problem whose ESS is low and return the ancestors ``(N, B)`` (identity rows for the others), else ``None``."""
        e = self.ess()
        self.ess_history.append([round(float(v), 4) for v in e])
        low = e < self.threshold * self.n
        if not bool(low.any()):
            return None
        ancestors = systematic_resample(self.log_w, generator)
        keep = torch.arange(self.n).unsqueeze(1).expand(self.n, self.batch)
        ancestors = torch.where(low.unsqueeze(0), ancestors, keep)
        epoch = torch.logsumexp(self.log_w, dim=0) - math.log(self.n)
        self.log_z_resampled = torch.where(low, self.log_z_resampled + epoch, self.log_z_resampled)
        self.log_w = torch.where(low.unsqueeze(0), torch.zeros_like(self.log_w), self.log_w)
        self.resampled.append(step)
        return ancestors

    def diagnostics(self) -> dict:
        """ESS per step, resampling steps and ``log Ẑ`` per problem, as JSON-able lists."""
        return {"particles": self.n, "ess": self.ess_history, "resampled_steps": list(self.resampled),
                "log_z": [float(v) for v in self.log_z()]}


#: A run whose median ESS over its steps is below this is read as one lineage (see :func:`collapse_note`).
COLLAPSED_ESS = 2.0


def collapse_note(diagnostics: list[dict], tempering_option: bool, cli: bool = True) -> str | None:
    """A one-line note when the weights of a particle run collapsed, else ``None``.

    ``diagnostics`` are the runs' :meth:`ParticleWeights.diagnostics` (one per batch part). The median ESS
    over the steps, the worst problem's, is the measure: after a collapse the final resampling spreads equal
    weights over copies of one particle, so the final weights alone look healthy. With one lineage the
    weighted std is that lineage's last few steps of proposal noise, far below the posterior's (exact ``smc``
    with 16 particles on 64² deblurring: ESS 1 and ±2 std coverage 0.85, ``bench/results/smc_coverage.json``).
    ``cli`` names the remedies as command-line options, else as sampler options (:func:`restore.solve`).
    """
    import statistics

    worst, particles = None, 0
    for part in diagnostics:
        history = part.get("ess") or []
        if not history:
            continue
        particles = part.get("particles", 0)
        for b in range(len(history[0])):
            median = statistics.median(step[b] for step in history)
            worst = median if worst is None else min(worst, median)
    if worst is None or particles < 2 or worst >= COLLAPSED_ESS:
        return None
    remedy = "more particles (--samples)" if cli else "more particles (particles=N)"
    if tempering_option:
        option = "--set weight_exponent=0" if cli else "weight_exponent=0"
        remedy += f" or {option} (independent guided draws: approximate, better calibrated)"
    return (f"the particle weights collapsed (median effective sample size {worst:.1f} of {particles} over the "
            f"steps): the mean and the std map come from about one lineage, and the std understates the "
            f"uncertainty; use {remedy}")


def weighted_moments(draws: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and per-entry std of ``draws`` ``(N, B, ...)`` with normalised ``weights`` ``(N, B)``."""
    w = weights.to(draws.dtype).reshape(weights.shape + (1,) * (draws.ndim - 2))
    mean = (w * draws).sum(0)
    var = (w * (draws - mean) ** 2).sum(0)
    return mean, var.clamp_min(0).sqrt()

"""Feynman–Kac correctors (Skreta et al., 2025), SAMPLERS.md §10.7: SMC for targets built from diffusion
marginals — annealing ``p^β``, classifier-free-style guidance between two priors ``p_c^w p^{1-w}``, and
products of experts ``p_1 p_2``.

All three are the geometric target ``q_t ∝ Π_i p_{i,t}^{β_i}`` at every noise level. Particles follow the
reverse VP SDE with the combined score ``S = Σ_i β_i ∇ log p_{i,t}`` (the "target score" SDE) and carry the
Feynman–Kac weight that makes them exact as ``N → ∞``; for the VP forward SDE ``dx = -½ b x dt + √b dW`` the
weight ODE needs no divergence, only the scores [DERIVED here from the paper's Feynman–Kac PDE, checked on the
tempered mixture in the tests]:

    d log w = ½ b(t) ( ‖Σ_i β_i ∇ log p_i‖² - Σ_i β_i ‖∇ log p_i‖² + d (1 - Σ_i β_i) ) dτ.

Steps are the DDPM ancestral step with the combined score (β-variance, the SDE's own noise) and the weight
increment with ``b dτ = 1 - abar_k / abar_j`` at the step's start; the chain starts from
``q_T ∝ N(0, I)^{Σβ} = N(0, I / Σβ)``. Resampling, ESS and ``log Ẑ`` come from :mod:`.particles`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..errors import IncompatibleError, InvalidInputError
from ..priors.schedules import Spacing
from .base import Sampler
from .particles import ParticleWeights, check_particle_options, gather_particles
from .smc import choose
from .steps import ddpm_coefficients

Mode = Literal["anneal", "cfg", "product"]


@dataclass(frozen=True)
class FKCConfig:
    """Attributes:
        mode: ``anneal`` (``p^β``), ``cfg`` (``p_other^β p^{1-β}``: guidance weight β towards ``other``) or
            ``product`` (``p · p_other``).
        beta: the exponent of ``anneal`` or the guidance weight of ``cfg``; unused by ``product``.
        other: registered name of the second prior (``cfg``, ``product``); from Python an object can be
            passed as ``FKC(other_prior=prior)`` instead.
        steps: reverse-SDE steps (the weights are exact as steps and particles grow; coarse steps bias them).
        particles: particles per image (``--samples N`` sets it).
        ess_threshold: resample when ``ESS < ess_threshold · N`` (the paper's SMC: one half).
        particle_batch: particles sent through the network at once; ``None``: all.
        spacing: timestep respacing rule.
    """

    mode: Mode = "anneal"
    beta: float = 1.0
    other: str | None = None
    steps: int = 100
    particles: int = 16
    ess_threshold: float = 0.5
    particle_batch: int | None = None
    spacing: Spacing = "uniform"


class FKC(Sampler):
    Config = FKCConfig
    weighted = True  # one run returns weighted particles (the run plan uses them as the draws)

    def __init__(self, config: Any | None = None, other_prior=None, **overrides: Any) -> None:
        self.other_prior = other_prior
        super().__init__(config, **overrides)

    def validate(self) -> None:
        cfg = self.config
        check_particle_options("fkc", cfg)
        if cfg.mode == "anneal" and cfg.beta <= 0:
            raise InvalidInputError(f"fkc mode=anneal needs beta > 0, got {cfg.beta}")
        if cfg.mode != "anneal" and cfg.other is None and self.other_prior is None:
            raise InvalidInputError(f"fkc mode={cfg.mode} needs a second prior: --set other=PRIOR_NAME")

    def exponents(self) -> tuple[float, float]:
        """``(β for the run's prior, β for the other prior)``."""
        cfg = self.config
        return {"anneal": (cfg.beta, 0.0), "cfg": (1.0 - cfg.beta, cfg.beta), "product": (1.0, 1.0)}[cfg.mode]

    def check_view(self, view) -> None:
        if view.problem is not None:
            raise IncompatibleError("fkc samples a combination of priors without a measurement; call "
                                    "sampler.run(prior, shape=(B, C, H, W)), or use --sampler smc for a measurement")

    def second_view(self, view):
        if self.exponents()[1] == 0:
            return None
        other = self.other_prior
        if other is None:
            from ..api import prior

            other = prior(self.config.other, channels=view.prior.channels or 3, device=str(view.device))
        if other.data_range != view.prior.data_range or other.schedule.fingerprint() != view.schedule.fingerprint():
            raise IncompatibleError("fkc needs two priors with the same noise schedule and data range; "
                                    "pick --set other=NAME of a prior trained like the first")
        return other.bind(shape=view.image_shape)

    def scores(self, view, other, x: torch.Tensor, k: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Combined score ``S`` and the weight rate ``‖S‖² - Σ β_i ‖∇ log p_i‖²`` per particle, ``particle_batch``
        particles at a time (one NFE per prior and particle)."""
        beta1, beta2 = self.exponents()
        b = x.shape[0] // n
        chunk = n if self.config.particle_batch is None else self.config.particle_batch
        s_k = view.coefficients(k)[1]
        combined, rates = [], []
        with torch.no_grad():
            for start in range(0, n, chunk):
                g = min(chunk, n - start)
                xc = x[start * b:(start + g) * b]
                score1 = -view.eps(xc, k) / s_k
                view.nfe += g - 1
                total = beta1 * score1
                rate = -beta1 * (score1**2).flatten(1).sum(1)
                if other is not None:
                    score2 = -other.eps(xc, k) / s_k
                    other.nfe += g - 1
                    total = total + beta2 * score2
                    rate = rate - beta2 * (score2**2).flatten(1).sum(1)
                combined.append(total)
                rates.append(rate + (total**2).flatten(1).sum(1))
        return torch.cat(combined), torch.cat(rates)

    def sample(self, view, generator, callback):
        cfg = self.config
        other = self.second_view(view)
        total_beta = sum(self.exponents())
        if total_beta <= 0:
            raise InvalidInputError(f"fkc needs exponents with a positive sum, got {self.exponents()}")
        n, b = cfg.particles, view.shape[0]
        d = math.prod(view.shape[1:])
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        weights = ParticleWeights(n, b, cfg.ess_threshold)
        shape = (n * b,) + tuple(view.shape[1:])
        x = view.noise_like(torch.empty(shape, dtype=view.dtype, device=view.device), generator) / total_beta**0.5
        for i, (k, j) in enumerate(pairs):
            score, rate = self.scores(view, other, x, k, n)
            a, s = view.coefficients(k)
            x0 = (x + s * s * score) / a
            if j >= 0:
                rate_dt = 1 - float(view.schedule.abar(k)) / float(view.schedule.abar(j))
                weights.add(0.5 * rate_dt * (rate + d * (1 - total_beta)))
                c1, c2, std = ddpm_coefficients(view.schedule, k, j, "fixed-large")
                x = c1 * x0 + c2 * x + std * view.noise_like(x, generator)
                ancestors = weights.maybe_resample(i + 1, generator)
                if ancestors is not None:
                    x = gather_particles(x, ancestors)
            else:  # from the lowest level to clean data: Tweedie with the combined score
                x = x0
            callback(i + 1, len(pairs), view.nfe + (other.nfe if other is not None else 0))
        if other is not None:
            view.nfe += other.nfe
        w = weights.normalised()
        x_out = gather_particles(x, choose(w, generator).reshape(1, b))
        particles = view.result(x).reshape((n, b) + tuple(view.image_shape[1:]))
        return x_out, {"particles": particles, "weights": w, "diagnostics": weights.diagnostics()}

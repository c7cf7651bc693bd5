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

With a measurement ``y = A x0 + σ_y n`` the target becomes the posterior ``q_0(x0) p(y | x0)`` of the combined
prior. Each level's target is twisted as in :mod:`.smc`: ``q_t(x) p̃_t(y | x)`` with
``p̃_t = N(y; A x0̂_t(x), (σ_y² + r_t²) I)``, ``x0̂_t`` Tweedie's estimate under the combined score and ``r_t²`` the
x0 variance of a Gaussian prior of variance ``tau2``. The step is the TDS gradient proposal (the reverse step
shifted by ``∇ log p̃``, one VJP per prior and particle), and the weight gains, besides the Feynman–Kac
increment, the discrete-time SMC factor ``p(x_j | x_k) p̃_j(y | x_j) / (q(x_j | x_k, y) p̃_k(y | x_k))``; the
last step swaps the twist for the exact likelihood, so the twist changes only the variance, never the limit.
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
from .smc import check_gaussian_noise, choose, guided_step, log_likelihood
from .smc_gaussian import gaussian_denoiser
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
        tau2: with a measurement, the variance τ² (model units) of the Gaussian prior behind the twist, as for
            ``smc`` (TDS code: ``0.12``; ``flat`` the flat prior's ``s_k²/a_k²``); unused without one.
    """

    mode: Mode = "anneal"
    beta: float = 1.0
    other: str | None = None
    steps: int = 100
    particles: int = 16
    ess_threshold: float = 0.5
    particle_batch: int | None = None
    spacing: Spacing = "uniform"
    tau2: float | Literal["flat"] = 0.12


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
        if not self.tau2() > 0:
            raise InvalidInputError(f"fkc tau2 must be > 0 or flat, got {cfg.tau2}")

    def tau2(self) -> float:
        """τ² as a number (``flat``: infinity)."""
        return float("inf") if self.config.tau2 == "flat" else float(self.config.tau2)

    def exponents(self) -> tuple[float, float]:
        """``(β for the run's prior, β for the other prior)``."""
        cfg = self.config
        return {"anneal": (cfg.beta, 0.0), "cfg": (1.0 - cfg.beta, cfg.beta), "product": (1.0, 1.0)}[cfg.mode]

    def check_view(self, view) -> None:
        if view.problem is not None:
            check_gaussian_noise("fkc", view)

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

    def twist_variance(self, view, k: int) -> float:
        """``σ_y² + r_k²`` of the measurement's twist at level ``k``, public units²."""
        r2, _ = gaussian_denoiser(*view.coefficients(k), self.tau2())
        return view.problem.noise.sigma ** 2 + r2 / view.prior.model_scale**2

    def terms(self, view, other, x: torch.Tensor, k: int, n: int) -> dict:
        """At level ``k`` for a particle-major state ``(n·B, ...)``, ``particle_batch`` particles at a time:
        ``x0`` (Tweedie under the combined score ``S``), ``rate`` (``‖S‖² - Σ β_i ‖∇ log p_i‖²`` per particle)
        and, with a measurement, ``log_l`` (``log p̃_k(y | x)``) and ``grad`` (its gradient in ``x``). One NFE per
        prior and particle, and as many VJPs with a measurement."""
        beta1, beta2 = self.exponents()
        measured = view.problem is not None
        b = x.shape[0] // n
        chunk = n if self.config.particle_batch is None else self.config.particle_batch
        a_k, s_k = view.coefficients(k)
        out: dict[str, list] = {"x0": [], "rate": [], "log_l": [], "grad": []}
        for start in range(0, n, chunk):
            g = min(chunk, n - start)
            xc = x[start * b:(start + g) * b].detach().requires_grad_(measured)
            with torch.set_grad_enabled(measured):
                score1 = -view.eps(xc, k) / s_k
                view.nfe += g - 1  # eps counted one call; cost is one evaluation per particle
                total = beta1 * score1
                rate = -beta1 * (score1.detach() ** 2).flatten(1).sum(1)
                if other is not None:
                    score2 = -other.eps(xc, k) / s_k
                    other.nfe += g - 1
                    total = total + beta2 * score2
                    rate = rate - beta2 * (score2.detach() ** 2).flatten(1).sum(1)
                x0 = (xc + s_k * s_k * total) / a_k
                if measured:
                    log_l = log_likelihood(view, x0, g, self.twist_variance(view, k))
                    (grad,) = torch.autograd.grad(log_l.sum(), xc)
                    view.count_vjp(g * (1 if other is None else 2))
                    out["log_l"].append(log_l.detach())
                    out["grad"].append(grad)
            out["x0"].append(x0.detach())
            out["rate"].append(rate + (total.detach() ** 2).flatten(1).sum(1))
        return {key: torch.cat(v) for key, v in out.items() if v}

    def sample(self, view, generator, callback):
        cfg = self.config
        other = self.second_view(view)
        total_beta = sum(self.exponents())
        if total_beta <= 0:
            raise InvalidInputError(f"fkc needs exponents with a positive sum, got {self.exponents()}")
        measured = view.problem is not None
        n, b = cfg.particles, view.shape[0]
        d = math.prod(view.shape[1:])
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        weights = ParticleWeights(n, b, cfg.ess_threshold)
        shape = (n * b,) + tuple(view.shape[1:])
        x = view.noise_like(torch.empty(shape, dtype=view.dtype, device=view.device), generator) / total_beta**0.5
        t = self.terms(view, other, x, pairs[0][0], n)
        if measured:
            weights.add(t["log_l"])  # the first target is q_T(x_T) p̃_T(y | x_T)
        for i, (k, j) in enumerate(pairs):
            if j >= 0:
                rate_dt = 1 - float(view.schedule.abar(k)) / float(view.schedule.abar(j))
                increment = 0.5 * rate_dt * (t["rate"].double() + d * (1 - total_beta))
                c1, c2, std = ddpm_coefficients(view.schedule, k, j, "fixed-large")
                mean = c1 * t["x0"] + c2 * x
                if measured:
                    x, log_ratio = guided_step(view, mean, t["grad"], std, self.twist_variance(view, k), k, generator)
                    log_l = t["log_l"]
                    t = self.terms(view, other, x, j, n)
                    increment = increment + log_ratio + t["log_l"].double() - log_l.double()
                else:
                    x = mean + std * view.noise_like(x, generator)
                    t = self.terms(view, other, x, j, n)
                weights.add(increment)
                ancestors = weights.maybe_resample(i + 1, generator)
                if ancestors is not None:
                    x = gather_particles(x, ancestors)
                    t = {key: gather_particles(v, ancestors) for key, v in t.items()}
            else:  # from the lowest level to clean data: Tweedie with the combined score
                x = t["x0"]
                if measured:  # the twist gives way to the exact likelihood
                    with torch.no_grad():
                        weights.add(log_likelihood(view, x, n, view.problem.noise.sigma ** 2).double()
                                    - t["log_l"].double())
                    ancestors = weights.maybe_resample(i + 1, generator)  # as smc: the final ESS is recorded
                    if ancestors is not None:
                        x = gather_particles(x, ancestors)
            callback(i + 1, len(pairs), view.nfe + (other.nfe if other is not None else 0))
        if other is not None:
            view.nfe += other.nfe
        w = weights.normalised()
        x_out = gather_particles(x, choose(w, generator).reshape(1, b))
        particles = view.result(x).reshape((n, b) + tuple(view.image_shape[1:]))
        return x_out, {"particles": particles, "weights": w, "diagnostics": weights.diagnostics()}

"""IR-SDE (Luo et al., ICML 2023) reverse sampling for mean-reverting priors (SAMPLERS.md §6.1(b)).

Starting from ``x_T = μ + λ z``, each step from time ``t`` to ``s < t`` either
* ``posterior`` (default, as in the code): ``x̂_0 = μ + (x_t - μ - σ̄_t ε̂) e^{θ̄_t}``, then a draw from the
  optimal posterior ``x_s | x_t, x̂_0`` (``MRSchedule.posterior``), or
* ``euler``: Euler–Maruyama on the reverse SDE,
  ``x_s = x_t - [θ_t(μ - x_t) + σ_t² ε̂/σ̄_t] Δ + σ_t sqrt(Δ) z`` with ``Δ = (t - s) dt``.
With ``steps = T`` the grid is every training index; fewer steps use ``round(linspace(T, 0, steps + 1))``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..priors.mean_reverting import bcast, mr_to_x0
from .base import randn
from .mean_reverting_base import MeanRevertingSampler, condition_from_problem

METHODS = ("posterior", "euler")


@dataclass(frozen=True)
class IRSDEConfig:
    """Attributes:
        steps: number of reverse steps (= NFE); 100 in the IR-SDE configs; at most the prior's ``T``.
        method: ``posterior`` (the code's default sampler) or ``euler`` (Euler–Maruyama).
    """

    steps: int = 100
    method: str = "posterior"


def time_grid(T: int, steps: int) -> list[int]:
    """Descending integer times from ``T`` to ``0`` (``steps`` transitions)."""
    return [int(v) for v in np.round(np.linspace(T, 0, steps + 1))]


class IRSDE(MeanRevertingSampler):
    Config = IRSDEConfig
    name = "ir-sde"

    def validate(self) -> None:
        super().validate()
        self.check_choice("method", self.config.method, METHODS)

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg, sched = self.config, prior.schedule
        if cfg.steps > sched.T:
            raise InvalidInputError(f"steps must be at most the prior's T = {sched.T} for ir-sde, got {cfg.steps}")
        mu = condition_from_problem(problem).to(prior.device)
        dtype = self.dtype_for(prior, problem)
        mu = mu.to(dtype)
        x = x_init if x_init is not None else mu + sched.lam * randn(shape, generator, like=mu)
        grid = time_grid(sched.T, cfg.steps)
        for i, (t, s) in enumerate(zip(grid[:-1], grid[1:])):
            eps = self.eps(prior, x, t, mu)
            if cfg.method == "posterior":
                a, sb = bcast(sched.alpha(t), x), bcast(sched.sigma_bar(t), x)
                x0 = mr_to_x0(eps, x, mu, a, sb, sched.lam, "epsilon")
                mean, std = sched.posterior(x, x0, mu, t, s)
                x = mean + std * randn(shape, generator, like=x) if s > 0 else mean
            else:
                g = float(sched.sigma(t))
                x = sched.reverse_sde_mean(x, eps, mu, t, steps=t - s) \
                    + g * ((t - s) * sched.dt) ** 0.5 * randn(shape, generator, like=x)
            callback(i + 1, len(grid) - 1, self.nfe)
        return x, {"times": grid}

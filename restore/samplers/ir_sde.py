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
from typing import Literal

import numpy as np

from ..errors import InvalidInputError
from ..priors.base import MeanRevertingFamily
from .base import Sampler


@dataclass(frozen=True)
class IRSDEConfig:
    """Attributes:
        steps: number of reverse steps (= NFE); 100 in the IR-SDE configs; at most the prior's ``T``.
        method: ``posterior`` (the code's default sampler) or ``euler`` (Euler–Maruyama).
    """

    steps: int = 100
    method: Literal["posterior", "euler"] = "posterior"


def time_grid(T: int, steps: int) -> list[int]:
    """Descending integer times from ``T`` to ``0`` (``steps`` transitions)."""
    return [int(v) for v in np.round(np.linspace(T, 0, steps + 1))]


#: Why one step is refused (``mrs`` and ``ir-sde``): it returns the network's x̂0 at the noisiest level, where the
#: IR-SDE loss weights x̂0 by the mean's share α_t ≈ 0, so a trained network answers nearly at random there.
ONE_STEP = ("one step returns the network's x̂0 at the noisiest level, which the IR-SDE loss hardly trains "
            "(6.4 dB with mr-denoise-25 on held-out crops, bench/results/mean_reverting.json); use 5 or more")


class IRSDE(Sampler):
    Config = IRSDEConfig
    requires = ("operator",)
    families = (MeanRevertingFamily,)

    def validate(self) -> None:
        if self.config.steps < 2:
            raise InvalidInputError(f"ir-sde needs steps >= 2, got {self.config.steps}: {ONE_STEP}")

    def sample(self, view, generator, callback):
        cfg, sched = self.config, view.schedule
        if cfg.steps > sched.T:
            raise InvalidInputError(f"steps must be at most the prior's T = {sched.T} for ir-sde, got {cfg.steps}")
        x = view.initial_state(generator)
        grid = time_grid(sched.T, cfg.steps)
        for i, (t, s) in enumerate(zip(grid[:-1], grid[1:])):
            if cfg.method == "posterior":
                _, x0 = view.predict(x, t)
                mean, std = sched.posterior(x, x0, view.mu, t, s)
                x = mean + std * view.noise_like(x, generator) if s > 0 else mean
            else:
                g = float(sched.sigma(t))
                x = sched.reverse_sde_mean(x, view.eps(x, t), view.mu, t, steps=t - s) \
                    + g * ((t - s) * sched.dt) ** 0.5 * view.noise_like(x, generator)
            callback(i + 1, len(grid) - 1, view.nfe)
        return x, {"levels": grid}

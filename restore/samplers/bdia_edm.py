"""BDIA-EDM — bi-directional integration on the deterministic EDM/Heun sampler (SAMPLERS.md §8(b)).

A VP prior is viewed as an EDM denoiser: ``x = z / a_k`` and ``σ_k = s_k / a_k`` give
``D(x, σ_k) = x0̂(a_k x, k)`` and the ODE drift ``d(x, σ_k) = (x - D)/σ_k = eps(a_k x, k)``. Only the
prior's discrete levels are valid noise levels, so the σ grid (Karras ρ = 7 by default) is snapped to
the nearest training level.

Update (state index ``n = 0`` clean .. ``N`` noisiest; ``B`` = backward Euler, ``H`` = Heun):
``x_{n-1} = H(x_n) + γ (x_{n+1} - B(x_n))`` with ``B(x_n) = x_n + (σ_{n+1} - σ_n) d_n``; inverse
``x_{n+1} = B(x_n) + (x_{n-1} - H(x_n)) / γ``. The first sampling step is plain Heun; the last one
(to σ = 0) is Euler, as in EDM. Deterministic only (S_churn = 0). Latents are in EDM units ``x = z/a``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from ..priors.view import ModelView
from .bdia import BDIA, level_list


@dataclass(frozen=True)
class BDIAEDMConfig:
    """Attributes:
        steps: number of noise levels N (EDM's default is 18).
        gamma: BDIA γ in [0, 1]; 0 is the plain Heun sampler (not invertible). Tuned per model in the
            paper (not verified); 1.0 keeps the inversion well conditioned.
        spacing: ``karras`` (σ grid with ``rho``, snapped to training levels) or a VPSchedule spacing.
        rho: Karras exponent.
        sigma_min, sigma_max: Karras grid range, clipped to the prior's levels (EDM: 0.002, 80).
    """

    steps: int = 18
    gamma: float = 1.0
    spacing: Literal["karras", "uniform", "guided", "quad", "trailing"] = "karras"
    rho: float = 7.0
    sigma_min: float = 0.002
    sigma_max: float = 80.0


class BDIAEDM(BDIA):
    """BDIA on EDM's Heun sampler for VP priors: sampling, exact inversion and reconstruction from the pair.

    States are in EDM units ``x = z / a``; the maps sharing ``d_n`` are the backward Euler step ``B`` and the
    Heun step ``H`` (:meth:`maps`), plugged into BDIA's update and inverse.
    """

    Config = BDIAEDMConfig
    base = "plain Heun"

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        if not 0 < cfg.sigma_min < cfg.sigma_max or cfg.rho <= 0:
            raise InvalidInputError("need 0 < sigma_min < sigma_max and rho > 0")

    def levels(self, view: ModelView) -> list[int]:
        """Training indices of states ``n = 0 .. N`` (``-1`` = clean first)."""
        cfg = self.config
        if cfg.spacing != "karras":
            return level_list(view, cfg.steps, cfg.spacing)
        sched = view.schedule
        all_sigma = (sched.s(torch.arange(sched.T)) / sched.a(torch.arange(sched.T))).log()
        hi = min(cfg.sigma_max, float(all_sigma[-1].exp()))
        lo = max(cfg.sigma_min, float(all_sigma[0].exp()))
        if cfg.steps == 1:
            targets = [hi]
        else:
            r = 1 / cfg.rho
            targets = [(hi**r + i / (cfg.steps - 1) * (lo**r - hi**r)) ** cfg.rho for i in range(cfg.steps)]
        ks = {int((all_sigma - math.log(t)).abs().argmin()) for t in targets}
        return [-1] + sorted(ks)

    @staticmethod
    def sigma(view: ModelView, k: int) -> float:
        return 0.0 if k < 0 else float(view.schedule.s(k) / view.schedule.a(k))

    def drift(self, view: ModelView, x: torch.Tensor, k: int) -> torch.Tensor:
        """``d(x, σ_k) = eps(a_k x, k)``."""
        return view.eps(float(view.schedule.a(k)) * x, k)

    def heun(self, view, x, k, j, d=None) -> torch.Tensor:
        """Heun step from level ``k`` to ``j`` (Euler when ``j`` is clean); ``d`` reuses ``d(x, σ_k)``."""
        sk, sj = self.sigma(view, k), self.sigma(view, j)
        d = self.drift(view, x, k) if d is None else d
        x_euler = x + (sj - sk) * d
        if j < 0:
            return x_euler
        return x + (sj - sk) * 0.5 * (d + self.drift(view, x_euler, j))

    def maps(self, view, x, levels, n) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B(x_n), H(x_n))`` sharing ``d_n``."""
        k = levels[n]
        d = self.drift(view, x, k)
        back = x + (self.sigma(view, levels[n + 1]) - self.sigma(view, k)) * d
        return back, self.heun(view, x, k, levels[n - 1], d)

    def first_step(self, view, levels, generator):
        N = len(levels) - 1
        x_top = view.initial_state(generator) / float(view.schedule.a(levels[N]))  # VP state -> EDM units
        return x_top, self.heun(view, x_top, levels[N], levels[N - 1])

    def first_inversion(self, view, x0, levels):
        return x0 + self.sigma(view, levels[1]) * self.drift(view, x0, levels[1])

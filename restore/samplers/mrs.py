"""MRS / MaRS (Li et al., ICLR 2025): fast semi-analytic ODE/SDE solvers for mean-reverting priors
(SAMPLERS.md §6.2).

With ``u = x - μ`` the IR-SDE marginal is VP-like, ``u_t = α_t (x_0 - μ) + σ̄_t ε``, so DPM-Solver-type
exponential integrators apply in the half-log-SNR ``λ_t = log(α_t/σ̄_t)``. Step ``s → t`` with
``h = λ_t - λ_s`` (``q_0`` = prediction at ``s``, ``D1 = (q_0 - q_1)/r``, ``r = h_prev/h``):

* ODE data:  ``u_t = (σ_t/σ_s) u_s - α_t [(e^{-h}-1) q_0 - φ2 D1]``, ``φ2 = (e^{-h}-1)/h + 1``
* ODE noise: ``u_t = (α_t/α_s) u_s - σ_t [(e^{h}-1) q_0 + φ2 D1]``, ``φ2 = (e^{h}-1)/h - 1``
* SDE data:  ``u_t = (σ_t/σ_s) e^{-h} u_s + α_t (1-e^{-2h}) q_0 + σ_t sqrt(1-e^{-2h}) z
  [+ α_t (1 - (1-e^{-2h})/(2h)) D1]``
* SDE noise: ``u_t = (α_t/α_s) u_s - 2σ_t (e^{h}-1) q_0 + σ_t sqrt(e^{2h}-1) z [- 2σ_t ((e^{h}-1)/h - 1) D1]``

(data form ``q = x̂_0 - μ``, noise form ``q = ε̂``; the bracketed terms are the second-order "taylor"
corrections of the code). These are the code's update rules with the ``μ`` terms collected by working in
``u``. Order ramp-up: step ``i`` (1-based) uses order ``min(order, i)``, and with fewer than 10 steps also
``min(order, M - i)``. By default the grid ends at ``t = 0``; that last step is the ``σ̄ → 0`` limit of every
update, ``x̂_0`` at the previous grid time (the code's ``denoise_last``), since ``h = ∞`` there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import InvalidInputError
from ..priors.base import MeanRevertingFamily
from ..priors.mean_reverting import MRSchedule
from .base import Sampler
from .ir_sde import ONE_STEP


@dataclass(frozen=True)
class MRSConfig:
    """Defaults from the MRS code's ``mrsampler.yml``.

    Attributes:
        steps: number of steps = NFE (20; the paper also reports 5 and 10).
        solver: ``ode`` or ``sde``.
        parameterization: ``data`` (stable at few steps) or ``noise``.
        order: 1 or 2.
        lambda_min: the grid starts at the largest training time with ``λ_t ≥ lambda_min`` (-5).
        time_schedule: ``linspace`` in training time, or ``linear-lambda`` (uniform in ``λ`` down to
            ``max(t_min, 1)``, then ``t = 0`` when ``t_min = 0``).
        t_min: last grid time. ``0`` (the code's grid) ends with the ``x̂_0`` step; ``t_min > 0`` stops
            at that noise level (used to measure convergence to the exact flow map).
    """

    steps: int = 20
    solver: Literal["ode", "sde"] = "ode"
    parameterization: Literal["data", "noise"] = "data"
    order: Literal[1, 2] = 2
    lambda_min: float = -5.0
    time_schedule: Literal["linspace", "linear-lambda"] = "linspace"
    t_min: float = 0.0


def time_grid(sched: MRSchedule, steps: int, lambda_min: float, schedule: str, t_min: float = 0.0) -> list[float]:
    """``steps + 1`` descending training times from ``t_max`` to ``t_min``."""
    lam = sched.log_snr(torch.arange(1, sched.T + 1, dtype=torch.float64))  # decreasing in t
    ok = torch.nonzero(lam >= lambda_min).flatten()
    t_max = int(ok.max()) + 1 if ok.numel() else 1
    if not 0 <= t_min < t_max:
        raise InvalidInputError(f"t_min must lie in [0, {t_max}) for this prior and lambda_min, got {t_min}")
    if schedule == "linspace":
        return [float(v) for v in np.linspace(t_max, t_min, steps + 1)]
    # linear-lambda: invert λ(θ̄) in closed form, then θ̄(t) by interpolation of the (increasing) table.
    end = t_min if t_min > 0 else min(1.0, t_max / 2)
    n = steps + 1 if t_min > 0 else steps
    if n == 1:  # a single step goes straight from t_max to the x̂_0 step
        return [float(t_max), 0.0]
    lams = np.linspace(float(sched.log_snr(t_max)), float(sched.log_snr(end)), n)
    e2 = (sched.lam * np.exp(lams)) ** 2
    theta_bar = -0.5 * np.log(e2 / (1 + e2))
    ts = np.interp(theta_bar, sched.thetas_bar.numpy(), np.arange(sched.T + 1, dtype=np.float64))
    ts[0], ts[-1] = t_max, end  # exact endpoints despite rounding in the inversion
    return [float(v) for v in ts] + ([] if t_min > 0 else [0.0])


class MRS(Sampler):
    Config = MRSConfig
    requires = ("operator",)
    families = (MeanRevertingFamily,)

    def validate(self) -> None:
        if self.config.steps < 2 and self.config.t_min == 0:
            raise InvalidInputError(f"mrs needs steps >= 2 on its grid to t = 0, got {self.config.steps}: {ONE_STEP}")

    def sample(self, view, generator, callback):
        cfg, sched = self.config, view.schedule
        mu = view.mu
        x = view.initial_state(generator)
        grid = time_grid(sched, cfg.steps, cfg.lambda_min, cfg.time_schedule, cfg.t_min)
        M = len(grid) - 1
        q_prev, h_prev = None, None
        for i in range(1, M + 1):
            s, t = grid[i - 1], grid[i]
            eps, x0 = view.predict(x, s)
            a_s, sb_s = view.coefficients(s)
            if t == 0:
                x = x0
                callback(i, M, view.nfe)
                break
            u = x - mu
            q = x0 - mu if cfg.parameterization == "data" else eps
            a_t, sb_t = view.coefficients(t)
            h = float(sched.log_snr(t) - sched.log_snr(s))
            order = min(cfg.order, i)
            if M < 10:
                order = min(order, M - i)
            d1 = (q - q_prev) * (h / h_prev) if order == 2 else None
            z = view.noise_like(x, generator) if cfg.solver == "sde" else None
            u = self._update(u, q, d1, z, a_s, sb_s, a_t, sb_t, h)
            x = mu + u
            q_prev, h_prev = q, h
            callback(i, M, view.nfe)
        return x, {"levels": grid}

    def _update(self, u, q, d1, z, a_s, sb_s, a_t, sb_t, h):
        """One step in ``u = x - μ`` (see the module docstring); ``d1`` is ``None`` for first order."""
        cfg = self.config
        if cfg.parameterization == "data":
            em = math.expm1(-h)  # e^{-h} - 1
            if cfg.solver == "ode":
                out = (sb_t / sb_s) * u - a_t * em * q
                if d1 is not None:
                    out = out + a_t * (em / h + 1) * d1
                return out
            em2 = -math.expm1(-2 * h)  # 1 - e^{-2h}
            out = (sb_t / sb_s) * math.exp(-h) * u + a_t * em2 * q + sb_t * math.sqrt(em2) * z
            if d1 is not None:
                out = out + a_t * (1 - em2 / (2 * h)) * d1
            return out
        ep = math.expm1(h)  # e^{h} - 1
        if cfg.solver == "ode":
            out = (a_t / a_s) * u - sb_t * ep * q
            if d1 is not None:
                out = out - sb_t * (ep / h - 1) * d1
            return out
        out = (a_t / a_s) * u - 2 * sb_t * ep * q + sb_t * math.sqrt(math.expm1(2 * h)) * z
        if d1 is not None:
            out = out - 2 * sb_t * (ep / h - 1) * d1
        return out


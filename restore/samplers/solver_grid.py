"""Time grids and half-log-SNR of the exponential-integrator solvers (DPM-Solver family), on a prior's levels.

The official DPM-Solver code turns a discrete prior into a continuous one (``t_k = (k + 1) / T``, log α
interpolated piecewise linearly) and evaluates the network at fractional timesteps. Here every grid point is
rounded to one of the prior's training levels instead, so the solvers run on any prior of the engine (whose
networks take integer levels) and every coefficient is exact for the level actually used: the solvers'
formulas take the true ``λ`` of each point, so rounding moves the grid but not the order of accuracy.
Coinciding levels after rounding are merged.

``λ_k = log(a_k / s_k)``; the clean level ``k = -1`` has ``λ = +∞``.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np

from ..errors import InvalidInputError
from ..priors.schedules import SPACINGS, VPSchedule

#: DPM-Solver's spacings (uniform in logSNR, in time, or in sqrt(time)), the EDM noise levels of Karras et al.
#: (uniform in σ^(1/ρ), ρ = 7, with σ = e^{-λ}: diffusers' ``use_karras_sigmas``) and the engine's respacing rules
SolverSpacing = Literal["logSNR", "time-uniform", "time-quadratic", "karras", "uniform", "guided", "quad", "trailing"]
#: the solver spacings (the rest are the schedule's own respacing rules)
CONTINUOUS_SPACINGS = ("logSNR", "time-uniform", "time-quadratic", "karras")
#: EDM's ρ (Karras et al., 2022, eq. 5 and Table 1)
KARRAS_RHO = 7.0
#: where the solver ends: the clean level (last step first order, as diffusers' ``final_sigmas_type="zero"``)
#: or the lowest noisy level 0 (the official code's ``t_0 = 1/N`` without ``denoise_to_zero``)
End = Literal["clean", "lowest"]

CLEAN = -1


def lam(schedule: VPSchedule, k: int) -> float:
    """Half-log-SNR ``λ_k = log(a_k / s_k)`` of level ``k`` (``+inf`` for the clean level)."""
    if k < 0:
        return math.inf
    abar = float(schedule.abar(k))
    return 0.5 * (math.log(abar) - math.log1p(-abar))


def _lambda_table(schedule: VPSchedule) -> np.ndarray:
    abar = schedule.alphas_cumprod.numpy()
    return 0.5 * (np.log(abar) - np.log1p(-abar))


def continuous_levels(schedule: VPSchedule, hi: float, lo: float, n: int, spacing: str) -> np.ndarray:
    """``n`` fractional levels from ``hi`` down to ``lo`` (both included) by DPM-Solver's ``spacing``.

    Level ``k`` is the official code's continuous time ``t = (k + 1) / T``.
    """
    T = schedule.T
    if n == 1:
        return np.array([float(hi)])
    if spacing == "time-uniform":
        return np.linspace(hi, lo, n)
    if spacing == "time-quadratic":
        t = np.linspace(math.sqrt((hi + 1) / T), math.sqrt((lo + 1) / T), n) ** 2
        return t * T - 1
    if spacing in ("logSNR", "karras"):
        table = _lambda_table(schedule)  # decreasing in k
        ks = np.arange(T, dtype=np.float64)
        lam_hi, lam_lo = np.interp(hi, ks, table), np.interp(lo, ks, table)
        if spacing == "logSNR":
            target = np.linspace(lam_hi, lam_lo, n)
        else:
            r_hi, r_lo = np.exp(-lam_hi / KARRAS_RHO), np.exp(-lam_lo / KARRAS_RHO)
            target = -KARRAS_RHO * np.log(np.linspace(r_hi, r_lo, n))
        return np.interp(target, table[::-1], ks[::-1])
    raise InvalidInputError(f"unknown spacing '{spacing}'; choose one of {', '.join(get_args(SolverSpacing))}")


def _dedupe(levels) -> list[int]:
    out: list[int] = []
    for k in levels:
        k = int(k)
        if not out or k < out[-1]:
            out.append(k)
    return out


def level_grid(schedule: VPSchedule, n: int, spacing: str) -> list[int]:
    """``n`` (or fewer, after merging) distinct training levels, descending, from the noisiest.

    DPM-Solver spacings run from level ``T-1`` to level ``0``; the engine's rules (``uniform``, ``guided``,
    ``quad``, ``trailing``) are the schedule's own respacing.
    """
    if n < 1:
        raise InvalidInputError(f"a solver grid needs at least one level, got {n}")
    if spacing == "quad":
        # DDIM's quadratic rule ends its grid at level 0.8 T: started from pure noise, a solver would treat
        # that noise as a much less noisy state and land on another image
        raise InvalidInputError("spacing 'quad' is DDIM's rule and starts at level 0.8·T, not where the solver's "
                                "noise is; use spacing=time-quadratic (DPM-Solver's quadratic spacing)")
    if spacing in SPACINGS:
        return schedule.timesteps(min(n, schedule.T), spacing)
    return _dedupe(np.round(continuous_levels(schedule, schedule.T - 1, 0, n, spacing)))


def grid(schedule: VPSchedule, steps: int, spacing: str, end: str) -> list[int]:
    """The ``steps + 1`` points of a ``steps``-step solve: levels, then ``-1`` when ``end == "clean"``."""
    if end == "clean":
        return level_grid(schedule, steps, spacing) + [CLEAN]
    if spacing in SPACINGS:
        raise InvalidInputError(f"end='lowest' needs a solver spacing ({', '.join(CONTINUOUS_SPACINGS)}), "
                                f"got '{spacing}'")
    return level_grid(schedule, steps + 1, spacing)


def inner_levels(schedule: VPSchedule, s: int, t: int, order: int, spacing: str) -> list[int]:
    """The ``order - 1`` intermediate levels of a singlestep update from ``s`` to ``t`` (official: the same
    spacing rule between the two ends); fewer when rounding merges them with an end."""
    if order <= 1:
        return []
    rule = spacing if spacing not in SPACINGS else "time-uniform"
    pts = np.round(continuous_levels(schedule, s, max(t, 0), order + 1, rule))[1:-1]
    return [k for k in _dedupe(pts) if t < k < s]

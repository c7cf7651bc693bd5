"""DPM-Solver++ (Lu et al., 2022): DPM-Solver on the data prediction x0̂, SAMPLERS.md §10.1.

Integrating x0̂ instead of the noise keeps the high-order terms bounded when x0̂ is (e.g. under strong
guidance), which is why the official code recommends the multistep second-order form ("2M") for guided
sampling. ``variant="sde"`` is SDE-DPM-Solver++(2M) (midpoint form, as diffusers' ``sde-dpmsolver++``): its
first-order step is the DDPM posterior (ancestral) step. ``momentum="hb"`` adds heavy-ball momentum to the
2M direction ``D0 + ½ D1`` (Wizadwongsa et al., official ``MomentumDPMSolverMultistepScheduler``).
Defaults: the official recommendation for guided sampling (order 2, multistep, time-uniform spacing).

:func:`dpmpp_step` is the update on its own, for guided samplers that supply their own data estimate (DDS).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from .dpm_solver import DPMSolver, DPMSolverConfig, Method
from .momentum import Momentum, Velocity, check_momentum
from .solver_grid import CLEAN, SolverSpacing, lam

Variant = Literal["ode", "sde"]


@dataclass(frozen=True)
class DPMSolverPPConfig(DPMSolverConfig):
    """The options of :class:`~restore.samplers.dpm_solver.DPMSolverConfig` (``order`` 2 is "2M", 3 "3M"), with
    the official defaults for guided sampling, and:

    Attributes:
        variant: ``ode`` or ``sde`` (SDE-DPM-Solver++, multistep, order <= 2).
        momentum: ``none`` or ``hb`` (heavy ball on the 2M direction; ODE, order 2, multistep).
        beta: momentum β in (0, 1]; 1 is the plain solver (official default 0.8).
    """

    order: int = 2
    method: Method = "multistep"
    spacing: SolverSpacing = "time-uniform"
    variant: Variant = "ode"
    momentum: Momentum = "none"
    beta: float = 0.8


def dpmpp_step(schedule, x: torch.Tensor, x0s: list[torch.Tensor], ks: list[int], t: int,
               noise: torch.Tensor | None = None, velocity: Velocity | None = None,
               fraction: float | None = None) -> torch.Tensor:
    """DPM-Solver++ multistep update (order ``len(x0s)``, 1 or 2) from level ``ks[-1]`` to ``t``.

    With ``c`` the weight kept on the state, the update is
    ``x_t = c (σ_t/σ_s) x + α_t (1 - c e^{-h}) D + σ_t sqrt(1 - c²) z`` with ``D = x0̂_s + ½ D1``: the ODE step
    (``c = 1``), SDE-DPM-Solver++ (``c = e^{-h}``), or DDS's noise fraction ``η′`` (``c = sqrt(1 - η′²)``;
    its first-order step is DDS's code re-noising when ``x = α_s x̃ + σ_s eps``).

    Args:
        schedule: the VP schedule.
        x: ``(B, C, H, W)`` state at level ``ks[-1]``.
        x0s: data estimates at the levels ``ks`` (last = current); any estimate, e.g. a data-consistent one.
        t: target level (``-1`` = clean, taken at first order).
        noise: ``z`` of the stochastic forms (``None``: the ODE update).
        velocity: heavy-ball state for the second-order ODE direction.
        fraction: the noise fraction ``η′`` (with ``noise``); ``None`` is SDE-DPM-Solver++.
    """
    s = ks[-1]
    sg_s = float(schedule.s(s))
    a_t, sg_t = float(schedule.a(t)), float(schedule.s(t))
    h = lam(schedule, t) - lam(schedule, s)
    second = len(x0s) >= 2 and t != CLEAN
    d = x0s[-1]
    if second:
        r0 = (lam(schedule, s) - lam(schedule, ks[-2])) / h
        d = x0s[-1] + 0.5 * (x0s[-1] - x0s[-2]) / r0
    if second and velocity is not None:
        d = velocity(d)
    if noise is None:
        return (sg_t / sg_s) * x - (a_t * math.expm1(-h)) * d
    if fraction is None:
        c, w, std = math.exp(-h), -math.expm1(-2 * h), math.sqrt(-math.expm1(-2 * h))
    else:
        c = math.sqrt(1 - fraction**2)
        w, std = 1 - c * math.exp(-h), fraction
    out = c * (sg_t / sg_s) * x + (a_t * w) * d
    return out + (sg_t * std) * noise if t != CLEAN else out


class DPMSolverPP(DPMSolver):
    """DPM-Solver++ (data prediction): 2M / 3M multistep, singlestep, SDE variant, heavy-ball momentum."""

    Config = DPMSolverPPConfig
    prediction = "x0"

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        check_momentum(cfg.momentum, cfg.beta)
        if cfg.variant == "sde" and (cfg.method != "multistep" or cfg.order > 2):
            raise InvalidInputError("variant=sde is SDE-DPM-Solver++ 1M/2M: use method=multistep with order 1 or 2")
        if cfg.momentum == "ghvb":
            raise InvalidInputError("momentum=ghvb is defined on DDIM (its PLMS form); for dpm-solver++ use "
                                    "momentum=hb, or --sampler ddim --set momentum=ghvb")
        if cfg.corrector != "none" and (cfg.variant != "ode" or cfg.momentum != "none"):
            raise InvalidInputError(f"corrector={cfg.corrector} corrects the ODE solver: use variant=ode and "
                                    f"momentum=none, or corrector=none")
        if cfg.momentum == "hb" and (cfg.method != "multistep" or cfg.order != 2 or cfg.variant != "ode"
                                     or cfg.solver_type != "dpmsolver"):
            raise InvalidInputError("momentum=hb applies to DPM-Solver++(2M): use method=multistep, order=2, "
                                    "variant=ode, solver_type=dpmsolver")

    def sample(self, view, generator, callback):
        self._velocity = Velocity(self.config.momentum, self.config.beta)
        return super().sample(view, generator, callback)

    def multistep_update(self, view, x, ms, ks, t, order, generator):
        cfg = self.config
        if cfg.variant == "sde":
            noise = view.noise_like(x, generator) if t != CLEAN else None
            return dpmpp_step(view.schedule, x, ms[-order:], ks[-order:], t, noise=noise if noise is not None
                              else torch.zeros_like(x))
        if cfg.momentum == "hb" and order == 2:
            return dpmpp_step(view.schedule, x, ms[-2:], ks[-2:], t, velocity=self._velocity)
        return super().multistep_update(view, x, ms, ks, t, order, generator)

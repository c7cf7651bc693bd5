"""Heavy-ball (HB) and generalised heavy-ball (GHVB) momentum for diffusion ODE steps (Wizadwongsa et al.,
"Diffusion Sampling with Momentum for Mitigating Divergence Artifacts", ICLR 2024), SAMPLERS.md §10.4.

A step's direction ``g`` (DDIM: the noise prediction in ``x̄ = x/a``; DPM-Solver++(2M): ``D0 + ½ D1``) is
replaced by a velocity ``v ← (1 - β) v + β g`` started at the first ``g``. HB uses ``v`` itself (the official
``PLMSWithHBScheduler`` of order 1 and ``MomentumDPMSolverMultistepScheduler``); GHVB ("GHVB 1+β" of the
official ``GHVBScheduler``) feeds the velocities to the β-modified second-order Adams–Bashforth mixer
``((2 + β) v_n - (2 - β) v_{n-1}) / (2β)``. ``β = 1`` recovers the plain step (HB) or second-order
Adams–Bashforth, i.e. PLMS-2 (GHVB). Smaller β damps the oscillation that makes few-step high-order or
strongly guided sampling diverge; the official default is ``β = 0.8``.
"""
from __future__ import annotations

from typing import Literal

import torch

from ..errors import InvalidInputError
from ..priors.schedules import VPSchedule

Momentum = Literal["none", "hb", "ghvb"]


def check_momentum(kind: str, beta: float) -> None:
    """One-line error for a β outside (0, 1]."""
    if kind != "none" and not 0 < beta <= 1:
        raise InvalidInputError(f"momentum β must be in (0, 1] (1 = no momentum), got beta={beta}")


class Velocity:
    """The momentum state of one run: call it with each step's direction, it returns the direction to use."""

    def __init__(self, kind: str, beta: float) -> None:
        self.kind, self.beta = kind, float(beta)
        self.v: torch.Tensor | None = None
        self.previous: torch.Tensor | None = None

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return g
        self.v = g if self.v is None else (1 - self.beta) * self.v + self.beta * g
        if self.kind == "hb":
            return self.v
        prev, self.previous = self.previous, self.v
        if prev is None:
            return self.v
        b = self.beta
        return ((2 + b) * self.v - (2 - b) * prev) / (2 * b)


def ddim_momentum_step(schedule: VPSchedule, x: torch.Tensor, direction: torch.Tensor, k: int, j: int) -> torch.Tensor:
    """DDIM as Euler in ``x̄ = x/a``, ``σ̄ = s/a``: ``x_j = a_j (x_k/a_k + (σ̄_j - σ̄_k) d)`` with direction ``d``
    (the noise prediction gives DDIM exactly)."""
    a_k, s_k, a_j, s_j = (float(v) for v in (schedule.a(k), schedule.s(k), schedule.a(j), schedule.s(j)))
    return a_j * (x / a_k + (s_j / a_j - s_k / a_k) * direction)


def momentum_eps(schedule: VPSchedule, eps: torch.Tensor, direction: torch.Tensor, k: int, j: int) -> torch.Tensor:
    """The noise estimate that takes a sampler's re-noising from level ``k`` to ``j > 0`` where the momentum
    step would: ``(σ̄_k eps + (σ̄_j - σ̄_k) d) / σ̄_j`` (``σ̄ = s/a``), so that ``a_j x̃ + s_j ε_v`` is
    :func:`ddim_momentum_step` from the state ``a_k x̃ + s_k eps`` of a data estimate ``x̃`` (DDS). ``d = eps``
    returns ``eps``."""
    sb_k = float(schedule.s(k)) / float(schedule.a(k))
    sb_j = float(schedule.s(j)) / float(schedule.a(j))
    return (sb_k * eps + (sb_j - sb_k) * direction) / sb_j

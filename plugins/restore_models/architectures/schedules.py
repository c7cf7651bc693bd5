"""The noise schedules these networks were trained with, as discrete VP schedules for the engine.

Every sampler of the engine walks a :class:`restore.priors.schedules.VPSchedule` (``x_k = a_k x0 + s_k eps``,
``k = 0 .. T-1``). Each schedule here gives that ``VPSchedule`` and the network's own inputs at level ``k``:

* ``linear`` / ``cosine`` — ADM's discrete DDPM schedules; the network sees ``x_k`` and the index ``k``.
* ``vp-sde`` — score-SDE's VP SDE ``β(t) = β_min + t (β_max − β_min)``: levels at
  ``t_k = ε + k (1 − ε)/(T − 1)``
  with ``abar(t) = exp(−t² (β_max − β_min)/2 − t β_min)``; the network sees ``999 t_k`` (continuous
  training) or the DDPM index ``k`` with ``β_k = β_min/T + k (β_max − β_min)/(T (T − 1))`` (discrete).
* ``ve-sde`` — score-SDE's VE SDE ``x = x0 + σ z``, σ geometric from ``σ_min`` to ``σ_max``; and
* ``karras`` — consistency models / EDM (``x = x0 + σ z``, Karras ρ-spaced σ).

The two VE families reach the VP engine by the exact change of variables ``x_vp = x_ve / √(1 + σ²)``:
``abar = 1/(1 + σ²)``, ``s/a = σ``, so ``eps`` is the same in both and a VE score ``∇ log p = −eps/σ``.
This is deliberately the minimal VE support, self-contained in ``restore_models``; a VE prior family of
the engine (for VE-native solvers) may replace it without changing the checkpoints' configuration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from restore.errors import InvalidInputError
from restore.priors.schedules import VPSchedule

SCHEDULE_TYPES = ("linear", "cosine", "vp-sde", "ve-sde", "karras")


@dataclass(frozen=True)
class NoiseSchedule:
    """A trained schedule: its type, parameters, and how the network is called at level ``k``.

    Attributes:
        type: one of ``linear``, ``cosine`` (ADM), ``vp-sde``, ``ve-sde`` (score-SDE), ``karras`` (CM/EDM).
        steps: number of discrete levels ``T`` (ADM's ``diffusion_steps``, score-SDE's ``num_scales``).
        beta_min, beta_max: VP-SDE rates (score-SDE defaults 0.1 and 20).
        sigma_min, sigma_max: VE noise range (score-SDE VE or CM/EDM: 0.002 and 80).
        continuous: the score-SDE network was trained in continuous time (label ``999 t`` or σ).
        eps: smallest VP-SDE time (score-SDE's sampling ``eps``).
        sigma_data, rho, boundary_condition: EDM/CM preconditioning (CM defaults 0.5, 7, True; EDM
            teachers use ``boundary_condition=False``).
    """

    type: str = "linear"
    steps: int = 1000
    beta_min: float = 0.1
    beta_max: float = 20.0
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    continuous: bool = True
    eps: float = 1e-3
    sigma_data: float = 0.5
    rho: float = 7.0
    boundary_condition: bool = True

    def __post_init__(self) -> None:
        if self.type not in SCHEDULE_TYPES:
            raise InvalidInputError(f"unknown schedule type '{self.type}'; choose one of {', '.join(SCHEDULE_TYPES)}")
        if self.steps < 2:
            raise InvalidInputError(f"schedule steps must be at least 2, got {self.steps}")

    @property
    def is_ve(self) -> bool:
        return self.type in ("ve-sde", "karras")

    # -- levels ------------------------------------------------------------------------------------------
    def vp_times(self) -> torch.Tensor:
        """``t_k`` of the VP SDE, ascending (float64)."""
        return torch.linspace(self.eps, 1.0, self.steps, dtype=torch.float64)

    def sigmas(self) -> torch.Tensor:
        """σ_k ascending (float64) for VE types: geometric (score-SDE) or ρ-spaced (Karras et al.)."""
        if self.type == "ve-sde":
            return torch.tensor(np.exp(np.linspace(np.log(self.sigma_min), np.log(self.sigma_max), self.steps)))
        ramp = torch.linspace(0, 1, self.steps, dtype=torch.float64)
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return (lo + ramp * (hi - lo)) ** self.rho

    def vp_schedule(self) -> VPSchedule:
        T = self.steps
        if self.type == "linear":  # ADM get_named_beta_schedule("linear"): scaled to 1000 steps
            scale = 1000 / T
            return VPSchedule.linear(T, scale * 1e-4, scale * 0.02)
        if self.type == "cosine":
            return VPSchedule.cosine(T)
        if self.type == "vp-sde" and not self.continuous:  # score-SDE's DDPM discretisation
            return VPSchedule(torch.linspace(self.beta_min / T, self.beta_max / T, T, dtype=torch.float64),
                              name=f"vp-sde-discrete-{T}")
        if self.type == "vp-sde":
            t = self.vp_times()
            abar = torch.exp(-0.5 * t ** 2 * (self.beta_max - self.beta_min) - t * self.beta_min)
        else:
            abar = 1.0 / (1.0 + self.sigmas() ** 2)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        betas = 1 - abar / prev  # so that cumprod(1 - betas) reproduces abar exactly up to rounding
        return VPSchedule(betas, name=f"{self.type}-{T}")

    def label(self, k: torch.Tensor) -> torch.Tensor:
        """The network's time input for level indices ``k`` (float64 ``(B,)``)."""
        k = k.double()
        if self.type in ("linear", "cosine") or (self.type == "vp-sde" and not self.continuous):
            return k
        if self.type == "vp-sde":
            return (self.eps + k * (1 - self.eps) / (self.steps - 1)) * 999
        sigma = self.sigmas().to(k.device)[k.long()]
        if self.type == "karras":
            return 1000 * 0.25 * torch.log(sigma + 1e-44)  # consistency models' rescaled time
        if self.continuous:
            return sigma
        return (self.steps - 1 - k)  # discrete VE: index into the network's descending sigmas buffer

    def sigma(self, k: torch.Tensor) -> torch.Tensor:
        return self.sigmas().to(k.device)[k.long()]

    def karras_scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(c_skip, c_out, c_in)`` of EDM, with the consistency boundary condition when enabled."""
        sd = self.sigma_data
        if self.boundary_condition:
            c_skip = sd ** 2 / ((sigma - self.sigma_min) ** 2 + sd ** 2)
            c_out = (sigma - self.sigma_min) * sd / (sigma ** 2 + sd ** 2).sqrt()
        else:
            c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
            c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        return c_skip, c_out, 1 / (sigma ** 2 + sd ** 2).sqrt()

    def describe(self) -> str:
        if self.type in ("linear", "cosine"):
            return f"{self.type}-{self.steps}"
        if self.type == "vp-sde":
            return f"vp-sde β {self.beta_min}-{self.beta_max}, {self.steps} levels"
        return f"{self.type} σ {self.sigma_min}-{self.sigma_max}, {self.steps} levels"


def schedule_from_dict(meta: dict) -> NoiseSchedule:
    fields = set(NoiseSchedule.__dataclass_fields__)
    unknown = sorted(set(meta) - fields)
    if unknown:
        raise InvalidInputError(f"unknown schedule keys {unknown}; known: {', '.join(sorted(fields))}")
    try:
        return NoiseSchedule(**meta)
    except TypeError as exc:
        raise InvalidInputError(f"bad schedule: {exc}") from None


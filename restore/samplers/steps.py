"""Single VP update steps shared by several samplers (SAMPLERS.md §1.1)."""
from __future__ import annotations

import torch

from ..priors.schedules import VPSchedule


def ddim_step(schedule: VPSchedule, x0: torch.Tensor, eps: torch.Tensor, k: int, j: int, eta: float,
              noise: torch.Tensor | None) -> torch.Tensor:
    """DDIM from level k to level j < k: ``a_j x0 + sqrt(1 - abar_j - σ²) eps + σ z``."""
    abar_k, abar_j = float(schedule.abar(k)), float(schedule.abar(j))
    sigma = eta * ((1 - abar_j) / (1 - abar_k)) ** 0.5 * (1 - abar_k / abar_j) ** 0.5
    out = abar_j**0.5 * x0 + max(1 - abar_j - sigma**2, 0.0) ** 0.5 * eps
    if sigma > 0 and noise is not None:
        out = out + sigma * noise
    return out


def ddpm_coefficients(schedule: VPSchedule, k: int, j: int, variance: str = "fixed-small") -> tuple[float, float, float]:
    """``(c1, c2, std)`` of the respaced ancestral step ``x_j = c1 x0 + c2 x_k + std z``."""
    abar_k, abar_j = float(schedule.abar(k)), float(schedule.abar(j))
    beta = 1 - abar_k / abar_j
    c1 = abar_j**0.5 * beta / (1 - abar_k)
    c2 = (1 - beta) ** 0.5 * (1 - abar_j) / (1 - abar_k)
    if j < 0:
        return c1, c2, 0.0
    var = beta * (1 - abar_j) / (1 - abar_k) if variance == "fixed-small" else beta
    return c1, c2, var**0.5

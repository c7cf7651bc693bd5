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


def dds_renoise(schedule: VPSchedule, x_tilde: torch.Tensor, eps: torch.Tensor, k: int, j: int, eta: float,
                renoise: str, draw) -> torch.Tensor:
    """DDS's move from the data-consistent x̃ at level k to level j (SAMPLERS.md §5.1).

    ``renoise="code"``: ``a_j x̃ + s_j (η′ z + sqrt(1 - η′²) eps)`` with the network's eps; ``"paper"``: a DDIM
    step with η. Landing on index 0 (or clean) returns x̃ and draws no noise. ``draw()`` returns ``z``.
    """
    if j <= 0:
        return x_tilde
    if renoise == "code":
        z = draw()
        return float(schedule.a(j)) * x_tilde + float(schedule.s(j)) * (eta * z + (1 - eta**2) ** 0.5 * eps)
    return ddim_step(schedule, x_tilde, eps, k, j, eta, draw())

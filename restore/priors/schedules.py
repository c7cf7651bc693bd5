"""Discrete VP (DDPM) noise schedules and timestep respacing (SAMPLERS.md §1.1).

Index convention: ``k = 0 .. T-1`` are noisy levels, ``k = -1`` is clean (``abar_{-1} = 1``).
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch

from ..errors import InvalidInputError

Spacing = Literal["uniform", "guided", "quad", "trailing"]
SPACINGS = get_args(Spacing)


class VPSchedule:
    """``abar_k = prod_{j<=k} (1 - beta_j)``; ``a_k = sqrt(abar_k)``, ``s_k = sqrt(1 - abar_k)`` (float64)."""

    def __init__(self, betas: torch.Tensor, name: str = "custom") -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 2 or not bool(((betas > 0) & (betas < 1)).all()):
            raise InvalidInputError("betas must be a 1-D tensor of values in (0, 1)")
        self.name = name
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self._abar = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "VPSchedule":
        return cls(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), name=f"linear-{T}")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "VPSchedule":
        f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(T)]
        return cls(torch.tensor(betas, dtype=torch.float64), name=f"cosine-{T}")

    @property
    def T(self) -> int:
        return self.betas.numel()

    def abar(self, k) -> torch.Tensor:
        """``abar_k`` for an int or a LongTensor of indices (``-1`` means clean)."""
        idx = torch.as_tensor(k, dtype=torch.long) + 1
        return self._abar[idx]

    def a(self, k) -> torch.Tensor:
        return self.abar(k).sqrt()

    def s(self, k) -> torch.Tensor:
        return (1 - self.abar(k)).sqrt()

    def timesteps(self, steps: int, spacing: str = "uniform") -> list[int]:
        """``steps`` training indices in descending order (noisiest first)."""
        T = self.T
        if not 1 <= steps <= T:
            raise InvalidInputError(f"steps must be between 1 and {T} for this schedule, got {steps}")
        if spacing == "uniform":  # DDIM / DDS / RED-diff: range(0, T, T // N)
            idx = list(range(0, T, T // steps))[:steps]
        elif spacing == "guided":  # guided-diffusion space_timesteps: fractional stride incl. 0 and T-1
            stride = (T - 1) / (steps - 1) if steps > 1 else 0
            idx = [round(i * stride) for i in range(steps)] if steps > 1 else [T - 1]
        elif spacing == "quad":
            idx = sorted(set(int(v) for v in np.linspace(0, math.sqrt(T * 0.8), steps) ** 2))
        elif spacing == "trailing":
            idx = [int(round(v)) - 1 for v in np.arange(T, 0, -T / steps)][::-1]
        else:
            raise InvalidInputError(f"unknown spacing '{spacing}'; choose one of {', '.join(SPACINGS)}")
        return sorted(set(idx), reverse=True)

    def pairs(self, steps: int, spacing: str = "uniform") -> list[tuple[int, int]]:
        """``(k, j)`` transitions from level k to the next lower level j; the last pair ends at ``-1``."""
        ks = self.timesteps(steps, spacing)
        return list(zip(ks, ks[1:] + [-1]))

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(self.betas.numpy().tobytes()).hexdigest()[:16]

"""DiffPIR — denoising diffusion models for plug-and-play image restoration (Zhu et al., CVPRW 2023),
SAMPLERS.md §10.2.

Half-quadratic splitting with the diffusion prior's Tweedie denoiser. Per level ``t`` (noisiest first):

1. ``x0 = x0̂(x_t)`` (one network evaluation, clipped to the model range as the official code does);
2. data proximal step ``x̂0 = argmin ‖y - A x‖² + ρ_t ‖x - x0‖²`` with ``ρ_t = λ σ_n² / σ̄_t²``,
   ``σ̄_t = s_t / a_t`` — the operator's closed-form ``prox`` (FFT for circular blurs, per-pixel for masks,
   per-block for average pooling and colorization; conjugate gradients for other linear operators);
3. ``ε̂ = (x_t - a_t x̂0) / s_t`` and ``x_{t-1} = a_{t-1} x̂0 + s_{t-1} (√(1-ζ) ε̂ + √ζ z)``.

The last level returns the network's estimate without a data step, as the official code does. As in the
code, ``σ_n`` is the measurement noise in public ``[0, 1]`` units (at least ``sigma_floor``) while ``σ̄_t`` is
in the model's units, so ``λ`` carries over from the official scripts. Cost: one network evaluation per
step, no backpropagation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import InvalidInputError
from .base import Sampler


def diffpir_levels(T: int, steps: int, skip: str = "quad") -> list[int]:
    """The official code's levels, noisiest first: ``quad`` takes ``T-1-⌊√v⌋`` for ``v`` uniform in
    ``[0, T²]`` (dense at low noise), ``uniform`` every ``T // steps`` level; duplicates are dropped."""
    if skip == "quad":
        seq = [int(v) for v in np.sqrt(np.linspace(0, T**2, steps))]
        seq[-1] = seq[-1] - 1
    else:
        stride = max(T // steps, 1)
        seq = [i * stride for i in range(steps)]
        if stride > 1:
            seq.append(T - 1)
    levels = [T - 1 - min(max(v, 0), T - 1) for v in seq]  # one step: seq = [-1]
    out: list[int] = []
    for k in levels:
        if k not in out:
            out.append(k)
    return out


@dataclass(frozen=True)
class DiffPIRConfig:
    """Attributes:
        steps: number of levels (official configs: 100 for deblurring and super-resolution, 20 for inpainting).
        lam: λ in ``ρ_t = λ σ_n² / σ̄_t²`` (official configs: 1; the official deblurring script's sweep runs 7,
            as does deepinv).
        zeta: ζ, share of fresh noise in the re-noising (official configs: 0.1 for deblurring and
            super-resolution, 1.0 for inpainting; the deblurring script's sweep runs 0.3).
        skip: level spacing ``quad`` (official) or ``uniform``.
        sigma_floor: smallest σ_n used in ρ_t, public units (official: 0.001), so noiseless data still get a
            finite weight.
        clip: clip x0̂ to the model range before the data step (official: yes).
    """

    steps: int = 100
    lam: float = 1.0
    zeta: float = 0.1
    skip: Literal["quad", "uniform"] = "quad"
    sigma_floor: float = 0.001
    clip: bool = True


class DiffPIR(Sampler):
    Config = DiffPIRConfig
    requires = ("operator", "linear")
    chain_batching = True

    def validate(self) -> None:
        cfg = self.config
        if not (cfg.lam > 0 and 0 <= cfg.zeta <= 1 and cfg.sigma_floor > 0):
            raise InvalidInputError(f"need lam > 0, 0 <= zeta <= 1 and sigma_floor > 0, got lam={cfg.lam}, "
                                    f"zeta={cfg.zeta}, sigma_floor={cfg.sigma_floor}")

    def rho(self, view, k: int) -> float:
        """``ρ_k = λ σ_n² / σ̄_k²`` (σ_n public, σ̄_k model units, as in the official code)."""
        a, s = view.coefficients(k)
        sigma_n = max(float(view.problem.noise.sigma), self.config.sigma_floor)
        return self.config.lam * sigma_n**2 / (s / a) ** 2

    def data_step(self, view, x0_model: torch.Tensor, k: int) -> torch.Tensor:
        """The proximal step in public units: ``(I + AᵀA/ρ)⁻¹ (x0 + Aᵀy/ρ)``; returns model units."""
        op, y = view.problem.operator, view.problem.y
        x = op.prox(view.from_model(x0_model), y, 1.0 / self.rho(view, k))
        return view.to_model(x)

    def sample(self, view, generator, callback):
        cfg = self.config
        levels = diffpir_levels(view.schedule.T, cfg.steps, cfg.skip)
        x = view.initial_state(generator)
        for i, k in enumerate(levels):
            with torch.no_grad():
                _, x0 = view.predict(x, k)
                if cfg.clip:
                    x0 = view.clip(x0)
                if i == len(levels) - 1:
                    x = x0
                else:
                    x0 = self.data_step(view, x0, k)
                    a, s = view.coefficients(k)
                    eps = (x - a * x0) / s
                    a_j, s_j = view.coefficients(levels[i + 1])
                    x = a_j * x0 + s_j * (math.sqrt(1 - cfg.zeta) * eps
                                          + math.sqrt(cfg.zeta) * view.noise_like(x, generator))
            callback(i + 1, len(levels), view.nfe)
        return x, {"levels": levels}

"""The VE probability-flow ODE ``dx/dσ = -σ ∇ log p_σ(x)`` (Song et al., ICLR 2021), SAMPLERS.md §1.2.

Integrated with Heun's method on a geometric σ grid from ``σ_max`` to ``σ_min``, then one Euler step to
``σ = 0``, which is Tweedie's denoiser ``x + σ_min² s`` (the official ``noise_removal``). The official code
integrates the same ODE with scipy's adaptive RK45 (tolerance 1e-5); a fixed grid keeps the cost known and
reproducible. VP priors run through the exact VP↔VE change of variables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..priors.base import DiffusionPrior
from ..priors.ve import VEPrior, as_ve
from .base import Sampler


@dataclass(frozen=True)
class VEODEConfig:
    """Attributes:
        steps: σ levels N; NFE = 2 (N - 1) + 1 for Heun, N for Euler.
        method: ``heun`` (second order) or ``euler``.
    """

    steps: int = 50
    method: Literal["heun", "euler"] = "heun"


class VEODE(Sampler):
    """Deterministic VE probability-flow sampler (VP priors converted exactly)."""

    Config = VEODEConfig
    unconditional = True
    families = (VEPrior, DiffusionPrior)

    def run(self, prior, problem=None, **kwargs):
        return super().run(as_ve(prior), problem, **kwargs)

    def sample(self, view, generator, callback):
        sigmas = view.sigmas(self.config.steps)
        x = view.initial_state(generator)
        for i, sigma in enumerate(sigmas):
            nxt = sigmas[i + 1] if i + 1 < len(sigmas) else 0.0
            d = -sigma * view.score(x, sigma)
            x_new = x + (nxt - sigma) * d
            if self.config.method == "heun" and nxt > 0:
                d_new = -nxt * view.score(x_new, nxt)
                x_new = x + (nxt - sigma) * 0.5 * (d + d_new)
            x = x_new
            callback(i + 1, len(sigmas), view.nfe)
        return x, {"sigmas": sigmas}

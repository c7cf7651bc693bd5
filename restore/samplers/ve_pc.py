"""Predictor–corrector sampling of the VE SDE (Song et al., ICLR 2021, "PC sampler"), SAMPLERS.md §1.2.

At every noise level ``σ_i`` (geometric, from ``σ_max`` down): ``corrector_steps`` annealed-Langevin
corrector steps ``x ← x + e s + sqrt(2e) z`` with the step ``e = 2 (snr ‖z‖ / ‖s‖)²`` that keeps the
signal-to-noise ratio of the update at ``snr``, then the reverse-diffusion predictor to the next level
``x ← x + (σ_i² - σ_{i+1}²) s + sqrt(σ_i² - σ_{i+1}²) z`` (``σ_N = 0``). With ``denoise`` the result is the last
predictor's mean (the official ``noise_removal``: Tweedie at ``σ_min``). Defaults are the official CIFAR-10
VE configuration (``N = 1000``, ``snr = 0.16``, one corrector step). The norms in ``e`` are averaged over the
batch as in the official code: a per-sample step would depend on the state itself and inflate the stationary
law of the corrector in low dimension; the cost is that the samples of a batch share one step size.

VP priors run through the exact VP↔VE change of variables (:class:`~restore.priors.ve.VPAsVE`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from ..priors.base import DiffusionPrior
from ..priors.ve import VEPrior, as_ve
from .base import Sampler


@dataclass(frozen=True)
class VEPCConfig:
    """Attributes:
        steps: noise levels N (predictor steps); NFE = N (1 + corrector_steps).
        snr: target signal-to-noise ratio of the Langevin corrector (official CIFAR-10 VE: 0.16).
        corrector_steps: Langevin steps per level (official ``n_steps_each = 1``); 0 = predictor only.
        corrector: ``langevin`` or ``none``.
        denoise: return the noise-free mean of the last step (official ``noise_removal = True``).
    """

    steps: int = 1000
    snr: float = 0.16
    corrector_steps: int = 1
    corrector: Literal["langevin", "none"] = "langevin"
    denoise: bool = True


def _mean_norm(v: torch.Tensor) -> torch.Tensor:
    """Batch mean of the per-sample norms (official ``LangevinCorrector``)."""
    return torch.linalg.vector_norm(v.reshape(v.shape[0], -1), dim=1).mean()


class VEPC(Sampler):
    """Reverse-diffusion predictor + annealed-Langevin corrector on VE priors (VP priors converted exactly)."""

    Config = VEPCConfig
    unconditional = True
    families = (VEPrior, DiffusionPrior)

    def validate(self) -> None:
        cfg = self.config
        if cfg.snr <= 0 or cfg.corrector_steps < 0:
            raise InvalidInputError(f"need snr > 0 and corrector_steps >= 0, got snr={cfg.snr}, "
                                    f"corrector_steps={cfg.corrector_steps}")

    def run(self, prior, problem=None, **kwargs):
        return super().run(as_ve(prior), problem, **kwargs)

    def sample(self, view, generator, callback):
        cfg = self.config
        sigmas = view.sigmas(cfg.steps)
        x = view.initial_state(generator)
        mean = x
        for i, sigma in enumerate(sigmas):
            if cfg.corrector == "langevin":
                for _ in range(cfg.corrector_steps):
                    grad = view.score(x, sigma)
                    z = view.noise_like(x, generator)
                    e = 2 * (cfg.snr * _mean_norm(z) / _mean_norm(grad).clamp_min(1e-30)) ** 2
                    x = x + e * grad + (2 * e).sqrt() * z
            nxt = sigmas[i + 1] if i + 1 < len(sigmas) else 0.0
            g2 = sigma * sigma - nxt * nxt
            mean = x + g2 * view.score(x, sigma)
            x = mean + g2**0.5 * view.noise_like(x, generator)
            callback(i + 1, len(sigmas), view.nfe)
        return (mean if cfg.denoise else x), {"sigmas": sigmas}

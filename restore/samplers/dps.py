"""DPS — Diffusion Posterior Sampling (Chung et al., ICLR 2023), SAMPLERS.md §2.

Code-default behaviour: ancestral DDPM step, then ``x_{k-1} = x′ - ζ ∇_{x_k} ||y - A(x0̂)||`` with the
non-squared norm computed per sample, x0̂ clamped to the model range, residual in model units.
Paper variant (``norm="paper"``): ``ζ/||r|| · ∇||r||²``; ``norm="squared"``: constant ``ζ ∇||r||²``
(the affine variant that the moment-oracle test uses).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..priors.schedules import Spacing
from .base import Sampler
from .steps import Norm, Variance, ddpm_step, dps_gradient, per_step


@dataclass(frozen=True)
class DPSConfig:
    """Attributes:
        steps: DDPM steps (official: 1000).
        zeta: guidance scale ζ (official configs: 0.3 SR/deblur, 0.5 inpainting, 1.0 phase retrieval).
        norm: ``code`` (‖r‖), ``paper`` (ζ/‖r‖·∇‖r‖²) or ``squared`` (ζ∇‖r‖²).
        clip: clamp x0̂ to the model range (gradients vanish where it clips, as in the code).
        zeta_reference_steps: the published ζ values assume 1000 steps; with fewer steps each step's ζ is
            multiplied by ``zeta_reference_steps / steps`` so that the total guidance matches (at 1000 steps
            this is the code's update exactly). ``None`` uses ζ per step as given.
        spacing, variance: as for ``ddpm``.
    """

    steps: int = 1000
    zeta: float = 0.3
    norm: Norm = "code"
    clip: bool = True
    zeta_reference_steps: int | None = 1000
    spacing: Spacing = "guided"
    variance: Variance = "fixed-small"


class DPS(Sampler):
    Config = DPSConfig
    requires = ("operator",)
    nonnegative = ("zeta",)

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        zeta = per_step(cfg.zeta, cfg.zeta_reference_steps, cfg.steps)
        x = view.initial_state(generator)
        for i, (k, j) in enumerate(pairs):
            x = x.detach().requires_grad_(cfg.zeta > 0)
            with torch.set_grad_enabled(cfg.zeta > 0):
                _, x0 = view.predict(x, k)
                if cfg.clip:
                    x0 = view.clip(x0)
                x_next = ddpm_step(view, x0.detach(), x.detach(), k, j, cfg.variance, generator)
                if cfg.zeta > 0:
                    x_next = x_next - zeta * dps_gradient(view, x, x0, cfg.norm)
            x = x_next.detach()
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

"""DDPM ancestral sampling (Ho et al., 2020) with respacing; DPS with ζ = 0 reduces to it exactly."""
from __future__ import annotations

from dataclasses import dataclass

from ..priors.schedules import Spacing
from .base import Sampler
from .steps import Variance, ddpm_step


@dataclass(frozen=True)
class DDPMConfig:
    """Attributes:
        steps: number of steps (1000 = no respacing for a T = 1000 prior).
        spacing: ``guided`` (guided-diffusion ``space_timesteps``), as in the DPS code.
        variance: ``fixed-small`` (posterior variance) or ``fixed-large`` (beta).
        clip: clamp x0̂ to the model range (``clip_denoised=True`` in the official configs).
    """

    steps: int = 1000
    spacing: Spacing = "guided"
    variance: Variance = "fixed-small"
    clip: bool = True


class DDPM(Sampler):
    Config = DDPMConfig
    unconditional = True
    chain_batching = True

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        for i, (k, j) in enumerate(pairs):
            _, x0 = view.predict(x, k)
            x = ddpm_step(view, view.clip(x0) if cfg.clip else x0, x, k, j, cfg.variance, generator)
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

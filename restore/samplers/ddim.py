"""DDIM (Song et al., 2021): deterministic (eta = 0) or stochastic unconditional sampling."""
from __future__ import annotations

from dataclasses import dataclass

from ..priors.schedules import Spacing
from .base import Sampler
from .steps import ddim_step


@dataclass(frozen=True)
class DDIMConfig:
    """Attributes:
        steps: number of denoising steps (respaced from the prior's T).
        eta: 0 is the deterministic probability-flow discretisation, 1 matches DDPM's variance.
        spacing: timestep respacing rule (``uniform`` as in the DDIM code).
        clip: clamp x0̂ to the model range at every step.
    """

    steps: int = 50
    eta: float = 0.0
    spacing: Spacing = "uniform"
    clip: bool = False


class DDIM(Sampler):
    Config = DDIMConfig

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        for i, (k, j) in enumerate(pairs):
            eps, x0 = view.predict(x, k)
            if cfg.clip:
                a, s = view.coefficients(k)
                x0 = view.clip(x0)
                eps = (x - a * x0) / s
            noise = view.noise_like(x, generator) if cfg.eta > 0 and j >= 0 else None
            x = ddim_step(view.schedule, x0, eps, k, j, cfg.eta, noise)
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

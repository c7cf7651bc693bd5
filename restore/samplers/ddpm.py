"""DDPM ancestral sampling (Ho et al., 2020) with respacing; DPS with ζ = 0 reduces to it exactly."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Sampler, randn
from .steps import ddpm_coefficients


@dataclass(frozen=True)
class DDPMConfig:
    """Attributes:
        steps: number of steps (1000 = no respacing for a T = 1000 prior).
        spacing: ``guided`` (guided-diffusion ``space_timesteps``), as in the DPS code.
        variance: ``fixed-small`` (posterior variance) or ``fixed-large`` (beta).
        clip: clamp x0̂ to the model range (``clip_denoised=True`` in the official configs).
    """

    steps: int = 1000
    spacing: str = "guided"
    variance: str = "fixed-small"
    clip: bool = True


class DDPM(Sampler):
    Config = DDPMConfig

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg = self.config
        sched = prior.schedule
        pairs = sched.pairs(cfg.steps, cfg.spacing)
        x = x_init if x_init is not None else randn(shape, generator, dtype=self.dtype_for(prior, problem),
                                                     device=prior.device)
        lo, hi = prior.data_range
        for i, (k, j) in enumerate(pairs):
            eps = self.eps(prior, x, k)
            x0 = (x - float(sched.s(k)) * eps) / float(sched.a(k))
            if cfg.clip:
                x0 = x0.clamp(lo, hi)
            c1, c2, std = ddpm_coefficients(sched, k, j, cfg.variance)
            x = c1 * x0 + c2 * x
            if std > 0:
                x = x + std * randn(shape, generator, like=x)
            callback(i + 1, len(pairs), self.nfe)
        return x, {}

"""DDIM (Song et al., 2021): deterministic (eta = 0) or stochastic unconditional sampling."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Sampler, randn
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
    spacing: str = "uniform"
    clip: bool = False


class DDIM(Sampler):
    Config = DDIMConfig

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg = self.config
        dtype = self.dtype_for(prior, problem)
        sched = prior.schedule
        pairs = sched.pairs(cfg.steps, cfg.spacing)
        x = x_init if x_init is not None else randn(shape, generator, dtype=dtype, device=prior.device)
        lo, hi = prior.data_range
        for i, (k, j) in enumerate(pairs):
            eps = self.eps(prior, x, k)
            a, s = float(sched.a(k)), float(sched.s(k))
            x0 = (x - s * eps) / a
            if cfg.clip:
                x0 = x0.clamp(lo, hi)
                eps = (x - a * x0) / s
            noise = randn(shape, generator, like=x) if cfg.eta > 0 and j >= 0 else None
            x = ddim_step(sched, x0, eps, k, j, cfg.eta, noise)
            callback(i + 1, len(pairs), self.nfe)
        return x, {}

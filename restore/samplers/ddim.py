"""DDIM (Song et al., 2021): deterministic (eta = 0) or stochastic unconditional sampling."""
from __future__ import annotations

from dataclasses import dataclass

from ..priors.schedules import Spacing
from ..errors import InvalidInputError
from .base import Sampler
from .momentum import Momentum, Velocity, check_momentum, ddim_momentum_step
from .steps import ddim_step


@dataclass(frozen=True)
class DDIMConfig:
    """Attributes:
        steps: number of denoising steps (respaced from the prior's T).
        eta: 0 is the deterministic probability-flow discretisation, 1 matches DDPM's variance.
        spacing: timestep respacing rule (``uniform`` as in the DDIM code).
        clip: clamp x0̂ to the model range at every step.
        momentum: ``hb`` or ``ghvb`` (GHVB 1+β) momentum on the deterministic step (Wizadwongsa et al.,
            :mod:`restore.samplers.momentum`); needs ``eta = 0``.
        beta: momentum β in (0, 1]; 1 is plain DDIM (hb) or PLMS-2 (ghvb); official default 0.8.
    """

    steps: int = 50
    eta: float = 0.0
    spacing: Spacing = "uniform"
    clip: bool = False
    momentum: Momentum = "none"
    beta: float = 0.8


class DDIM(Sampler):
    Config = DDIMConfig
    unconditional = True
    chain_batching = True

    def validate(self) -> None:
        check_momentum(self.config.momentum, self.config.beta)
        if self.config.momentum != "none" and self.config.eta != 0:
            raise InvalidInputError("momentum acts on the deterministic DDIM step: use eta=0 with momentum")

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        velocity = Velocity(cfg.momentum, cfg.beta)
        for i, (k, j) in enumerate(pairs):
            eps, x0 = view.predict(x, k)
            if cfg.clip:
                a, s = view.coefficients(k)
                x0 = view.clip(x0)
                eps = (x - a * x0) / s
            if cfg.momentum != "none":
                x = ddim_momentum_step(view.schedule, x, velocity(eps), k, j)
            else:
                noise = view.noise_like(x, generator) if cfg.eta > 0 and j >= 0 else None
                x = ddim_step(view.schedule, x0, eps, k, j, cfg.eta, noise)
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

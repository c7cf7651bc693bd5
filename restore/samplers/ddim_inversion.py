"""Naive DDIM inversion (eta = 0): the baseline BDIA improves on (SAMPLERS.md §8(f)3).

Inversion runs the DDIM map upwards with ``eps`` evaluated at the *current* (lower) level,
``z_{n+1} = a_{n+1} x0̂(z_n) + s_{n+1} eps(z_n)``; decoding is plain DDIM. The two are not inverses of
each other (eps is taken at different states), so the round trip has an O(1/N) error.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import IncompatibleError
from ..priors.base import DiffusionPrior
from .base import Callback, Sampler
from .bdia import level_list


@dataclass(frozen=True)
class DDIMInversionConfig:
    """Attributes:
        steps: number of respaced levels N.
        spacing: timestep respacing rule.
    """

    steps: int = 50
    spacing: str = "uniform"


class DDIMInversion(Sampler):
    """``run`` inverts ``problem.y`` (an identity-operator problem) and decodes it back: the round trip.

    ``Result.extras["latent"]`` holds ``z_N`` (model space).
    """

    Config = DDIMInversionConfig
    requires = ("operator",)

    def _ddim(self, prior: DiffusionPrior, z: torch.Tensor, k: int, j: int, k_eps: int) -> torch.Tensor:
        sched = prior.schedule
        eps = self.eps(prior, z, k_eps)
        x0 = (z - float(sched.s(k)) * eps) / float(sched.a(k))
        return float(sched.a(j)) * x0 + float(sched.s(j)) * eps

    @torch.no_grad()
    def invert(self, prior: DiffusionPrior, z0: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
        """``z_N`` (model space) from a clean ``z0`` ``(B, C, H, W)``; the clean level uses the lowest level's eps."""
        callback = callback or (lambda *a: None)
        self.nfe = 0
        levels = level_list(prior, self.config.steps, self.config.spacing)
        z = z0
        for n in range(len(levels) - 1):
            z = self._ddim(prior, z, levels[n], levels[n + 1], max(levels[n], levels[1]))
            callback(n + 1, len(levels) - 1, self.nfe)
        return z

    @torch.no_grad()
    def reconstruct(self, prior: DiffusionPrior, z_top: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
        """Plain DDIM decoding of ``z_N`` to the clean level (model space)."""
        callback = callback or (lambda *a: None)
        self.nfe = 0
        levels = level_list(prior, self.config.steps, self.config.spacing)
        z = z_top
        for i, n in enumerate(range(len(levels) - 1, 0, -1)):
            z = self._ddim(prior, z, levels[n], levels[n - 1], levels[n])
            callback(i + 1, len(levels) - 1, self.nfe)
        return z

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        if tuple(problem.y.shape) != tuple(shape):
            raise IncompatibleError("ddim-inversion round-trips the input itself; use it with an identity "
                                    "operator (restore.invert for latents)")
        nfe = 0
        z_top = self.invert(prior, prior.to_model(problem.y), callback)
        nfe += self.nfe
        x = self.reconstruct(prior, z_top, callback)
        self.nfe += nfe
        return x, {"latent": z_top}

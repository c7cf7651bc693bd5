"""Naive DDIM inversion (eta = 0): the baseline BDIA improves on (SAMPLERS.md §8(f)3).

Inversion runs the DDIM map upwards with ``eps`` evaluated at the *current* (lower) level,
``z_{n+1} = a_{n+1} x0̂(z_n) + s_{n+1} eps(z_n)``; decoding is plain DDIM. The two are not inverses of
each other (eps is taken at different states), so the round trip has an O(1/N) error.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..priors.schedules import Spacing
from ..priors.view import ModelView
from .base import Callback, Sampler, _noop
from .bdia import level_list
from .steps import ddim_step


@dataclass(frozen=True)
class DDIMInversionConfig:
    """Attributes:
        steps: number of respaced levels N.
        spacing: timestep respacing rule.
    """

    steps: int = 50
    spacing: Spacing = "uniform"


class DDIMInversion(Sampler):
    """``run`` inverts ``problem.y`` (an identity-operator problem) and decodes it back: the round trip.

    ``Result.extras["latent"]`` holds ``z_N`` (model space).
    """

    Config = DDIMInversionConfig
    requires = ("operator",)

    def _ddim(self, view: ModelView, z: torch.Tensor, k: int, j: int, k_eps: int) -> torch.Tensor:
        eps = view.eps(z, k_eps)
        a, s = view.coefficients(k)
        return ddim_step(view.schedule, (z - s * eps) / a, eps, k, j)

    @torch.no_grad()
    def invert(self, view: ModelView, z0: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
        """``z_N`` (model space) from a clean ``z0`` ``(B, C, H, W)``; the clean level uses the lowest level's eps."""
        callback = callback or _noop
        levels = level_list(view, self.config.steps, self.config.spacing)
        z = z0
        for n in range(len(levels) - 1):
            z = self._ddim(view, z, levels[n], levels[n + 1], max(levels[n], levels[1]))
            callback(n + 1, len(levels) - 1, view.nfe)
        return z

    @torch.no_grad()
    def reconstruct(self, view: ModelView, z_top: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
        """Plain DDIM decoding of ``z_N`` to the clean level (model space)."""
        callback = callback or _noop
        levels = level_list(view, self.config.steps, self.config.spacing)
        z = z_top
        for i, n in enumerate(range(len(levels) - 1, 0, -1)):
            z = self._ddim(view, z, levels[n], levels[n - 1], levels[n])
            callback(i + 1, len(levels) - 1, view.nfe)
        return z

    def sample(self, view, generator, callback):
        z_top = self.invert(view, view.to_model(view.y_image()), callback)
        return self.reconstruct(view, z_top, callback), {"latent": z_top}

"""BDIA-DDIM — exact diffusion inversion by bi-directional integration (Zhang, Lewis, Kleijn; ECCV 2024).

SAMPLERS.md §8. With ``D_j(z; k) = a_j x0̂ + s_j epŝ`` the DDIM (eta = 0) map of a state at level k to
level j, the update is ``z_{n-1} = γ z_{n+1} - γ D_{n+1}(z_n) + D_{n-1}(z_n)`` (one NFE; both D terms share
``eps(z_n)``). It is algebraically invertible given two consecutive states, so
:meth:`BDIA.invert` returns the pair ``(z_N, z_{N-1})`` and :meth:`BDIA.reconstruct` recovers ``z_0``
exactly (to round-off). ``γ = 0`` is plain DDIM.

State index ``n = 0 .. N``: ``n = 0`` is clean (level ``-1``), ``n = N`` the noisiest respaced level.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidInputError
from ..priors.schedules import Spacing
from ..priors.view import ModelView
from .base import Callback, Sampler, _noop
from .steps import ddim_step


@dataclass(frozen=True)
class BDIAConfig:
    """Attributes:
        steps: number of respaced levels N (official round-trip editing: 50).
        gamma: BDIA γ in [0, 1]; 0 is DDIM (not invertible); official 0.92-1.0 for round trips,
            1.0 at ~40 steps and 0.5 at 10 steps for text-to-image sampling.
        spacing: timestep respacing rule (``uniform`` as in DDIM).
    """

    steps: int = 50
    gamma: float = 1.0
    spacing: Spacing = "uniform"


def level_list(view: ModelView, steps: int, spacing: str) -> list[int]:
    """Training indices of states ``n = 0 .. N`` (``-1`` = clean first, noisiest last)."""
    return [-1] + view.schedule.timesteps(steps, spacing)[::-1]


class BDIA(Sampler):
    """BDIA-DDIM: sampling (first step plain DDIM), exact inversion and reconstruction from the pair."""

    Config = BDIAConfig

    def validate(self) -> None:
        if not 0.0 <= self.config.gamma <= 1.0:
            raise InvalidInputError(f"gamma must be in [0, 1] (0 = DDIM), got {self.config.gamma}")

    # -- the two DDIM maps sharing one eps ---------------------------------------------------------------
    def _maps(self, view: ModelView, z: torch.Tensor, levels: list[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D_{n+1}(z_n), D_{n-1}(z_n))``: DDIM maps of the state at ``levels[n]`` up and down one level."""
        k = levels[n]
        eps, x0 = view.predict(z, k)
        return (ddim_step(view.schedule, x0, eps, k, levels[n + 1]),
                ddim_step(view.schedule, x0, eps, k, levels[n - 1]))

    def _step_down(self, view, levels, n, z_above, z) -> torch.Tensor:
        g = self.config.gamma
        if g == 0:
            eps, x0 = view.predict(z, levels[n])
            return ddim_step(view.schedule, x0, eps, levels[n], levels[n - 1])
        up, down = self._maps(view, z, levels, n)
        return g * z_above - g * up + down

    # -- sampling --------------------------------------------------------------------------------------
    def sample(self, view, generator, callback):
        levels = level_list(view, self.config.steps, self.config.spacing)
        N = len(levels) - 1
        z_above = view.initial_state(generator)
        # First step: plain DDIM from z_N to z_{N-1}, as in the official sampler.
        eps, x0 = view.predict(z_above, levels[N])
        z = ddim_step(view.schedule, x0, eps, levels[N], levels[N - 1])
        callback(1, N, view.nfe)
        for i, n in enumerate(range(N - 1, 0, -1)):
            z_above, z = z, self._step_down(view, levels, n, z_above, z)
            callback(i + 2, N, view.nfe)
        return z, {}

    # -- exact inversion -------------------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, view: ModelView, z0: torch.Tensor, callback: Callback | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert a clean state ``z0`` (model space, ``(B, C, H, W)``) to the pair ``(z_N, z_{N-1})``.

        The first step is plain DDIM inversion (eps evaluated at the lowest noisy level); every later step
        inverts the BDIA update exactly: ``z_{n+1} = (z_{n-1} - D_{n-1}(z_n)) / γ + D_{n+1}(z_n)``.
        """
        cfg = self.config
        if cfg.gamma <= 0:
            raise InvalidInputError("BDIA inversion needs gamma > 0 (gamma = 0 is DDIM, which is not invertible)")
        callback = callback or _noop
        levels = level_list(view, cfg.steps, cfg.spacing)
        N = len(levels) - 1
        eps = view.eps(z0, levels[1])
        z_below, z = z0, ddim_step(view.schedule, z0, eps, -1, levels[1])
        callback(1, N, view.nfe)
        for n in range(1, N):
            up, down = self._maps(view, z, levels, n)
            z_below, z = z, (z_below - down) / cfg.gamma + up
            callback(n + 1, N, view.nfe)
        return z, z_below

    @torch.no_grad()
    def reconstruct(self, view: ModelView, z_top: torch.Tensor, z_next: torch.Tensor,
                    callback: Callback | None = None) -> torch.Tensor:
        """Recover ``z_0`` (model space) from the pair ``(z_N, z_{N-1})``, applying BDIA at every step."""
        callback = callback or _noop
        levels = level_list(view, self.config.steps, self.config.spacing)
        N = len(levels) - 1
        z_above, z = z_top, z_next
        for i, n in enumerate(range(N - 1, 0, -1)):
            z_above, z = z, self._step_down(view, levels, n, z_above, z)
            callback(i + 1, N - 1, view.nfe)
        return z

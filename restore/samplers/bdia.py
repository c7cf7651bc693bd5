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
from ..priors.base import DiffusionPrior
from .base import Callback, Sampler, randn


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
    spacing: str = "uniform"


def level_list(prior: DiffusionPrior, steps: int, spacing: str) -> list[int]:
    """Training indices of states ``n = 0 .. N`` (``-1`` = clean first, noisiest last)."""
    return [-1] + prior.schedule.timesteps(steps, spacing)[::-1]


class BDIA(Sampler):
    """BDIA-DDIM: sampling (first step plain DDIM), exact inversion and reconstruction from the pair."""

    Config = BDIAConfig

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.config.gamma <= 1.0:
            raise InvalidInputError(f"gamma must be in [0, 1] (0 = DDIM), got {self.config.gamma}")

    # -- the two DDIM maps sharing one eps ---------------------------------------------------------------
    def _maps(self, prior: DiffusionPrior, z: torch.Tensor, levels: list[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D_{n+1}(z_n), D_{n-1}(z_n))``: DDIM maps of the state at ``levels[n]`` up and down one level."""
        sched = prior.schedule
        k = levels[n]
        eps = self.eps(prior, z, k)
        x0 = (z - float(sched.s(k)) * eps) / float(sched.a(k))
        up, down = levels[n + 1], levels[n - 1]
        return (float(sched.a(up)) * x0 + float(sched.s(up)) * eps,
                float(sched.a(down)) * x0 + float(sched.s(down)) * eps)

    def _step_down(self, prior, levels, n, z_above, z) -> torch.Tensor:
        up, down = self._maps(prior, z, levels, n)
        g = self.config.gamma
        return g * z_above - g * up + down if g > 0 else down

    # -- sampling --------------------------------------------------------------------------------------
    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg = self.config
        levels = level_list(prior, cfg.steps, cfg.spacing)
        N = len(levels) - 1
        sched = prior.schedule
        z_above = x_init if x_init is not None else randn(shape, generator, dtype=self.dtype_for(prior, problem),
                                                           device=prior.device)
        # First step: plain DDIM from z_N to z_{N-1}, as in the official sampler.
        k, j = levels[N], levels[N - 1]
        eps = self.eps(prior, z_above, k)
        x0 = (z_above - float(sched.s(k)) * eps) / float(sched.a(k))
        z = float(sched.a(j)) * x0 + float(sched.s(j)) * eps
        callback(1, N, self.nfe)
        for i, n in enumerate(range(N - 1, 0, -1)):
            z_above, z = z, self._step_down(prior, levels, n, z_above, z)
            callback(i + 2, N, self.nfe)
        return z, {}

    # -- exact inversion -------------------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, prior: DiffusionPrior, z0: torch.Tensor, callback: Callback | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert a clean state ``z0`` (model space, ``(B, C, H, W)``) to the pair ``(z_N, z_{N-1})``.

        The first step is plain DDIM inversion (eps evaluated at the lowest noisy level); every later step
        inverts the BDIA update exactly: ``z_{n+1} = (z_{n-1} - D_{n-1}(z_n)) / γ + D_{n+1}(z_n)``.
        """
        cfg = self.config
        if cfg.gamma <= 0:
            raise InvalidInputError("BDIA inversion needs gamma > 0 (gamma = 0 is DDIM, which is not invertible)")
        callback = callback or (lambda *a: None)
        self.nfe = 0
        sched = prior.schedule
        levels = level_list(prior, cfg.steps, cfg.spacing)
        N = len(levels) - 1
        k1 = levels[1]
        eps = self.eps(prior, z0, k1)
        z_below, z = z0, float(sched.a(k1)) * z0 + float(sched.s(k1)) * eps
        callback(1, N, self.nfe)
        for n in range(1, N):
            up, down = self._maps(prior, z, levels, n)
            z_below, z = z, (z_below - down) / cfg.gamma + up
            callback(n + 1, N, self.nfe)
        return z, z_below

    @torch.no_grad()
    def reconstruct(self, prior: DiffusionPrior, z_top: torch.Tensor, z_next: torch.Tensor,
                    callback: Callback | None = None) -> torch.Tensor:
        """Recover ``z_0`` (model space) from the pair ``(z_N, z_{N-1})``, applying BDIA at every step."""
        callback = callback or (lambda *a: None)
        self.nfe = 0
        levels = level_list(prior, self.config.steps, self.config.spacing)
        N = len(levels) - 1
        z_above, z = z_top, z_next
        for i, n in enumerate(range(N - 1, 0, -1)):
            z_above, z = z, self._step_down(prior, levels, n, z_above, z)
            callback(i + 1, N - 1, self.nfe)
        return z

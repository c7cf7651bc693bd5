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
    """BDIA-DDIM: sampling (first step plain DDIM), exact inversion and reconstruction from the pair.

    The BDIA scheme is written once here on two maps of a state ``z_n`` sharing one network evaluation,
    ``(up, down) = (D_{n+1}(z_n), D_{n-1}(z_n))`` (:meth:`maps`): the step ``z_{n-1} = down + γ (z_{n+1} - up)``
    and its exact inverse. BDIA-EDM replaces the maps (and the first step) with Heun's.
    """

    Config = BDIAConfig
    unconditional = True
    base = "DDIM"

    def validate(self) -> None:
        if not 0.0 <= self.config.gamma <= 1.0:
            raise InvalidInputError(f"gamma must be in [0, 1] (0 = {self.base}), got {self.config.gamma}")

    def levels(self, view: ModelView) -> list[int]:
        """Training indices of states ``n = 0 .. N`` (``-1`` = clean first)."""
        return level_list(view, self.config.steps, self.config.spacing)

    # -- the two maps sharing one eps ----------------------------------------------------------------------
    def maps(self, view: ModelView, z: torch.Tensor, levels: list[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D_{n+1}(z_n), D_{n-1}(z_n))``: DDIM maps of the state at ``levels[n]`` up and down one level."""
        k = levels[n]
        eps, x0 = view.predict(z, k)
        return (ddim_step(view.schedule, x0, eps, k, levels[n + 1]),
                ddim_step(view.schedule, x0, eps, k, levels[n - 1]))

    def first_step(self, view: ModelView, levels: list[int], generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_N, z_{N-1})`` from the initial state: plain DDIM, as in the official sampler."""
        z_top = view.initial_state(generator)
        N = len(levels) - 1
        eps, x0 = view.predict(z_top, levels[N])
        return z_top, ddim_step(view.schedule, x0, eps, levels[N], levels[N - 1])

    def first_inversion(self, view: ModelView, z0: torch.Tensor, levels: list[int]) -> torch.Tensor:
        """``z_1`` from the clean ``z_0``: plain DDIM inversion with eps at the lowest noisy level."""
        return ddim_step(view.schedule, z0, view.eps(z0, levels[1]), -1, levels[1])

    def _step_down(self, view, levels, n, z_above, z) -> torch.Tensor:
        up, down = self.maps(view, z, levels, n)
        return down + self.config.gamma * (z_above - up)

    # -- sampling --------------------------------------------------------------------------------------
    def sample(self, view, generator, callback):
        levels = self.levels(view)
        z_above, z = self.first_step(view, levels, generator)
        callback(1, len(levels) - 1, view.nfe)
        return self.reconstruct(view, z_above, z, lambda i, total, nfe: callback(i + 1, total + 1, nfe)), {}

    # -- exact inversion -------------------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, view: ModelView, z0: torch.Tensor, callback: Callback | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert a clean state ``z0`` (model space, ``(B, C, H, W)``) to the pair ``(z_N, z_{N-1})``.

        After the first (plain) inversion step every step inverts the BDIA update exactly:
        ``z_{n+1} = (z_{n-1} - D_{n-1}(z_n)) / γ + D_{n+1}(z_n)``.
        """
        cfg = self.config
        if cfg.gamma <= 0:
            raise InvalidInputError(f"{type(self).__name__} inversion needs gamma > 0 (gamma = 0 is {self.base}, "
                                    f"which is not invertible)")
        callback = callback or _noop
        levels = self.levels(view)
        N = len(levels) - 1
        z_below, z = z0, self.first_inversion(view, z0, levels)
        callback(1, N, view.nfe)
        for n in range(1, N):
            up, down = self.maps(view, z, levels, n)
            z_below, z = z, (z_below - down) / cfg.gamma + up
            callback(n + 1, N, view.nfe)
        return z, z_below

    @torch.no_grad()
    def reconstruct(self, view: ModelView, z_top: torch.Tensor, z_next: torch.Tensor,
                    callback: Callback | None = None) -> torch.Tensor:
        """Recover ``z_0`` (model space) from the pair ``(z_N, z_{N-1})``, applying BDIA at every step."""
        callback = callback or _noop
        levels = self.levels(view)
        N = len(levels) - 1
        z_above, z = z_top, z_next
        for i, n in enumerate(range(N - 1, 0, -1)):
            z_above, z = z, self._step_down(view, levels, n, z_above, z)
            callback(i + 1, N - 1, view.nfe)
        return z

"""RF-Solver (Wang et al., "Taming Rectified Flow for Inversion and Editing", 2024), SAMPLERS.md §10.6.

Each step from ``t`` to ``t′`` (``Δ = t′ - t``) expands the velocity to second order in time:
``v0 = v(x, t)``, ``x_mid = x + cΔ v0``, ``v1 = v(x_mid, t + cΔ)``, ``v′ = (v1 - v0) / (cΔ)`` and
``x′ = x + Δ v0 + ½ Δ² v′`` (2 NFE per step). The paper (and its code) take ``c = ½``, which makes the step the
explicit midpoint method; on a VP prior the intermediate time is snapped to the nearest VP level, so ``c`` is
that level's fraction of the step — still a second-order two-stage Runge–Kutta step — and a step without a
level strictly inside it is an Euler step.

Inversion is the same update with time running from ``0`` to the top; the round trip
(:meth:`RFSolver.invert` then :meth:`RFSolver.reconstruct`) is not exact but its error falls at second
order in the step. A VP prior has no network level at ``t = 0``, so its first inversion step evaluates the
velocity at the lowest level, as DDIM inversion does. Editing by feature sharing needs a text-conditioned transformer and is not provided.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..priors.flow import FlowView
from .base import Callback, _noop
from .flow_steps import FlowSampler, euler_step


@dataclass(frozen=True)
class RFSolverConfig:
    """Attributes:
        steps: steps N (official FLUX default: 25); NFE = 2 N (fewer on a VP prior's last step).
    """

    steps: int = 25


def taylor_step(view: FlowView, x: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One RF-Solver step from ``t`` to ``t_next`` (either direction of time)."""
    v0 = view.velocity(x, t)
    delta = t_next - t
    t_mid = view.snap(t + 0.5 * delta)
    c = (t_mid - t) / delta
    if not 0 < c <= 1:  # no network time strictly inside the step (a VP prior's last level)
        return euler_step(x, v0, t, t_next)
    v1 = view.velocity(euler_step(x, v0, t, t_mid), t_mid)
    derivative = (v1 - v0) / (t_mid - t)
    return x + delta * v0 + 0.5 * delta * delta * derivative


class RFSolver(FlowSampler):
    """Second-order flow sampler with inversion (``restore invert --sampler rf-solver``)."""

    Config = RFSolverConfig
    unconditional = True

    def sample(self, view, generator, callback):
        times = view.times(self.config.steps)
        return self.integrate(view, view.initial_state(generator, times[0]), times, callback), {"levels": times}

    @staticmethod
    def integrate(view: FlowView, x: torch.Tensor, times: list[float], callback: Callback) -> torch.Tensor:
        for i, (t, t_next) in enumerate(zip(times, times[1:])):
            x = taylor_step(view, x, t, t_next)
            callback(i + 1, len(times) - 1, view.nfe)
        return x

    @torch.no_grad()
    def invert(self, view, z0: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
        """The noise state at the top time from a clean state ``z0`` (model space, ``(B, C, H, W)``)."""
        flow = FlowView.of(view)
        z = self.integrate(flow, z0, flow.times(self.config.steps)[::-1], callback or _noop)
        view.nfe += flow.nfe if flow is not view else 0
        return z

    @torch.no_grad()
    def reconstruct(self, view, z_top: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
        """The clean state (model space) from the state :meth:`invert` returned."""
        flow = FlowView.of(view)
        z = self.integrate(flow, z_top, flow.times(self.config.steps), callback or _noop)
        view.nfe += flow.nfe if flow is not view else 0
        return z

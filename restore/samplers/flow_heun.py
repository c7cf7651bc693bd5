"""Flow Heun: the explicit trapezoidal (Heun) method on ``dx/dt = v(x, t)``, second order.

As in EDM's Heun sampler, the last step (to ``t = 0``) is a plain Euler step, so the network is never asked
for the velocity at the clean end (a VP prior has no level there); the method stays second order.
"""
from __future__ import annotations

from dataclasses import dataclass

from .flow_euler import FlowEuler
from .flow_steps import euler_step


@dataclass(frozen=True)
class FlowHeunConfig:
    """Attributes:
        steps: Heun steps; NFE = 2 steps - 1.
    """

    steps: int = 25


class FlowHeun(FlowEuler):
    """Deterministic second-order flow sampler."""

    Config = FlowHeunConfig

    def step(self, view, x, t: float, t_next: float, last: bool):
        v = view.velocity(x, t)
        x_euler = euler_step(x, v, t, t_next)
        if last:
            return x_euler
        return euler_step(x, 0.5 * (v + view.velocity(x_euler, t_next)), t, t_next)

"""Flow Heun: the explicit trapezoidal (Heun) method on ``dx/dt = v(x, t)``, second order.

As in EDM's Heun sampler, the last step (to ``t = 0``) is a plain Euler step, so the network is never asked
for the velocity at the clean end (a VP prior has no level there); the method stays second order.
"""
from __future__ import annotations

from dataclasses import dataclass

from .flow_steps import FlowSampler, euler_step


@dataclass(frozen=True)
class FlowHeunConfig:
    """Attributes:
        steps: Heun steps; NFE = 2 steps - 1.
    """

    steps: int = 25


class FlowHeun(FlowSampler):
    """Deterministic second-order flow sampler."""

    Config = FlowHeunConfig

    def sample(self, view, generator, callback):
        times = view.times(self.config.steps)
        x = view.initial_state(generator, times[0])
        for i, (t, t_next) in enumerate(zip(times, times[1:])):
            v = view.velocity(x, t)
            x_euler = euler_step(x, v, t, t_next)
            if i + 2 < len(times):
                x = euler_step(x, 0.5 * (v + view.velocity(x_euler, t_next)), t, t_next)
            else:
                x = x_euler
            callback(i + 1, len(times) - 1, view.nfe)
        return x, {"times": times}

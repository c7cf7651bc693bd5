"""Flow Euler: the explicit Euler method on ``dx/dt = v(x, t)`` from ``t = 1`` to ``0`` (Liu et al., ICLR 2023).

On a VP prior reparameterised as a rectified flow this is DDIM (η = 0) exactly: within a step the Euler
update keeps the predicted ``(x0, ε)`` fixed, which is DDIM's step in flow coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass

from .flow_steps import FlowSampler, euler_step


@dataclass(frozen=True)
class FlowEulerConfig:
    """Attributes:
        steps: Euler steps (NFE = steps); VP priors step on their DDIM levels (``uniform`` respacing).
    """

    steps: int = 50


class FlowEuler(FlowSampler):
    """Deterministic first-order flow sampler; subclasses change :meth:`step` only."""

    Config = FlowEulerConfig
    unconditional = True

    def step(self, view, x, t: float, t_next: float, last: bool):
        """One step from ``t`` to ``t_next`` (``last``: the step that reaches ``t = 0``)."""
        return euler_step(x, view.velocity(x, t), t, t_next)

    def sample(self, view, generator, callback):
        times = view.times(self.config.steps)
        x = view.initial_state(generator, times[0])
        for i, (t, t_next) in enumerate(zip(times, times[1:])):
            x = self.step(view, x, t, t_next, last=i + 2 == len(times))
            callback(i + 1, len(times) - 1, view.nfe)
        return x, {"levels": times}

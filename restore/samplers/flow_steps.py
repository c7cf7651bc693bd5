"""What the flow samplers share (:mod:`restore.priors.flow`): the family declaration, the VP
reparameterisation on entry, and the Euler step.

A flow sampler is one ``sample(view, generator, callback)`` on a :class:`~restore.priors.flow.FlowView`;
:meth:`FlowSampler.run` turns a pixel-space VP prior into a flow first (:func:`~restore.priors.flow.as_flow`),
so every flow sampler runs on the shipped VP priors.
"""
from __future__ import annotations

import torch

from ..priors.base import DiffusionPrior
from ..priors.flow import FlowPrior, as_flow
from .base import Sampler


class FlowSampler(Sampler):
    """Base of the flow samplers: accepts flow priors and pixel-space VP priors (reparameterised exactly)."""

    families = (FlowPrior, DiffusionPrior)
    chain_batching = True

    def run(self, prior, problem=None, **kwargs):
        return super().run(as_flow(prior) if prior is not None else prior, problem, **kwargs)


def euler_step(x: torch.Tensor, v: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """``x + (t_next - t) v``: one explicit Euler step of ``dx/dt = v`` (either direction of time)."""
    return x + (t_next - t) * v

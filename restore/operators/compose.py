"""Composition ``outer @ inner`` that keeps the structure of both parts."""
from __future__ import annotations

import torch

from .base import LinearOperator, Operator


class Composed(Operator):
    """``x -> outer(inner(x))`` for any (nonlinear) pair."""

    def __init__(self, outer: Operator, inner: Operator) -> None:
        super().__init__()
        self.outer, self.inner = outer, inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))

    def input_shape(self, output_shape):
        return self.inner.input_shape(self.outer.input_shape(output_shape))

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.initial_estimate(self.outer.initial_estimate(y))

    def batch_slice(self, start: int, stop: int) -> Operator | None:
        outer, inner = self.outer.batch_slice(start, stop), self.inner.batch_slice(start, stop)
        if outer is None or inner is None:
            return None
        return self if (outer is self.outer and inner is self.inner) else compose(outer, inner)


class ComposedLinear(Composed, LinearOperator):
    """``outer @ inner`` for two linear operators; adjoint is ``innerᴴ outerᴴ``."""

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))

    initial_estimate = LinearOperator.initial_estimate

    def svd(self, x_shape):
        from .base import Crop
        from .svd import PaddedSVD

        if isinstance(self.inner, Crop):  # the engine pads images for networks: padded pixels are null space
            inner = self.outer.svd(tuple(x_shape[:-2]) + (self.inner.height, self.inner.width))
            return None if inner is None else PaddedSVD(x_shape, inner, self.inner)
        return None


def compose(outer: Operator, inner: Operator) -> Operator:
    """Compose two operators, letting ``outer._compose_with(inner)`` fuse them when the algebra allows."""
    fused = getattr(outer, "_compose_with", lambda other: None)(inner)
    if fused is not None:
        return fused
    if outer.linear and inner.linear:
        return ComposedLinear(outer, inner)
    return Composed(outer, inner)

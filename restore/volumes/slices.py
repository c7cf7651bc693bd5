"""Lift a 2D operator to volumes: apply it to every slice of ``(B, C, D, H, W)``."""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import ShapeError
from ..operators import LinearOperator, Operator


class SliceOperator(LinearOperator):
    """``(B, C, D, H, W) -> (B, C, D, *out)`` by applying a 2D operator ``(N, C, H, W) -> (N, C, *out)`` to
    the slices, ``chunk`` slices per call (bounds the 2D operator's working memory).

    Args:
        op: a 2D operator (linear for ``adjoint``/``normal``).
        chunk: slices per call; ``None`` = all at once.
    """

    def __init__(self, op: Operator, chunk: int | None = None) -> None:
        super().__init__()
        self.op = op
        self.linear = bool(op.linear)
        self.chunk = chunk
        self.pinv_iters = getattr(op, "pinv_iters", self.pinv_iters)

    def map_slices(self, fn: Callable[[Operator, torch.Tensor], torch.Tensor], v: torch.Tensor) -> torch.Tensor:
        """Apply ``fn(op, slices)`` to chunks of slices of ``v`` ``(B, C, D, ...)`` and restack along D."""
        if v.ndim != 5:
            raise ShapeError(f"volume operator expects (B, C, D, H, W) data, got shape {tuple(v.shape)}")
        b, c, d = v.shape[:3]
        flat = v.transpose(1, 2).reshape(b * d, c, *v.shape[3:])
        step = self.chunk or flat.shape[0]
        out = torch.cat([fn(self.op, part) for part in flat.split(step)], dim=0)
        return out.reshape(b, d, c, *out.shape[2:]).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o(s), x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.adjoint(s), y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.normal(s), x)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.pinv(s), y)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.initial_estimate(s), y)

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        if len(s) != 5:
            raise ShapeError(f"volume measurement must be (B, C, D, ...), got shape {s}")
        inner = self.op.input_shape((1, s[1]) + s[3:])
        return s[:3] + tuple(inner[2:])

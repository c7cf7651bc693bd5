"""Lift a 2D operator to volumes: apply it to every slice of ``(B, C, D, H, W)``."""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import ShapeError
from ..operators import LinearOperator, Operator


def volume_slices(v: torch.Tensor, chunk: int | None) -> tuple[torch.Tensor, ...]:
    """The slices of a volume ``(B, C, D, ...)`` as ``(N, C, ...)`` batches of at most ``chunk`` (``None``: one)."""
    if v.ndim != 5:
        raise ShapeError(f"volume operator expects (B, C, D, H, W) data, got shape {tuple(v.shape)}")
    flat = v.transpose(1, 2).reshape(v.shape[0] * v.shape[2], v.shape[1], *v.shape[3:])
    return flat.split(chunk or flat.shape[0])


def stack_slices(parts: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`volume_slices` for the volume ``like`` (per-slice outputs may change trailing dims)."""
    out = torch.cat(parts, dim=0)
    return out.reshape(like.shape[0], like.shape[2], like.shape[1], *out.shape[2:]).transpose(1, 2)


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
        return stack_slices([fn(self.op, part) for part in volume_slices(v, self.chunk)], v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o(s), x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.adjoint(s), y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.normal(s), x)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.pinv(s), y)

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """The 2D operator's own ``prox`` slice by slice (closed form, or CG with per-slice step sizes)."""
        pairs = zip(volume_slices(z, self.chunk), volume_slices(y, self.chunk))
        return stack_slices([self.op.prox(zs, ys, gamma) for zs, ys in pairs], z)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.map_slices(lambda o, s: o.initial_estimate(s), y)

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        if len(s) != 5:
            raise ShapeError(f"volume measurement must be (B, C, D, ...), got shape {s}")
        inner = self.op.input_shape((1, s[1]) + s[3:])
        return s[:3] + tuple(inner[2:])

"""Shared plumbing of the mean-reverting samplers (ir-sde, mrs): prior-kind check and ``μ`` from the problem."""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from ..errors import IncompatibleError, InvalidInputError, ShapeError
from ..operators.base import Crop
from ..operators.compose import Composed
from ..problem import Problem
from .base import Sampler


def condition_from_problem(problem: Problem) -> torch.Tensor:
    """The mean-reversion target ``μ`` ``(B, C, H, W)``: the degraded input ``y`` brought to ``x``'s shape.

    ``y`` is used as is when it already has ``x``'s shape (denoising, deblurring); a smaller ``y`` is the
    operator's ``initial_estimate`` when that has ``x``'s shape (bicubic upsampling for super-resolution,
    the edge-extended ``y`` for a ``valid`` blur), else resized bicubically. When the engine padded ``x``
    to the network's size multiple (``operator @ Crop``), ``y`` is brought to the unpadded size and
    replicate-padded.
    """
    y, shape = problem.y, tuple(problem.x_shape)
    if y.is_complex() or y.ndim != 4 or len(shape) != 4:
        raise ShapeError(f"mean-reverting samplers need real images (B, C, H, W), got y of shape {tuple(y.shape)}")
    if y.shape[:2] != shape[:2]:
        raise ShapeError(f"y has shape {tuple(y.shape)} but x has {shape}: batch and channels must match "
                         f"for a mean-reverting prior")
    op, crop = problem.operator, None
    if isinstance(op, Composed) and isinstance(op.inner, Crop):
        crop = op.inner
    size = (crop.height, crop.width) if crop is not None else shape[-2:]
    base = op.outer if crop is not None else op
    start = None if tuple(y.shape[-2:]) == tuple(size) else base.initial_estimate(y)
    if start is not None and tuple(start.shape[-2:]) == tuple(size):  # e.g. a valid blur: y extended in place
        mu = start
    else:
        mu = y if start is None else F.interpolate(y, size=size, mode="bicubic", align_corners=False)
    if crop is not None:
        mu = F.pad(mu, (0, crop.pad_w, 0, crop.pad_h), mode="replicate")
    return mu


class MeanRevertingSampler(Sampler):
    """Base of samplers for ``mean-reverting`` priors; they take ``μ`` from ``problem.y``."""

    prior_kinds: ClassVar[tuple[str, ...]] = ("mean-reverting",)
    requires: ClassVar[tuple[str, ...]] = ("operator",)
    name: ClassVar[str] = ""

    def check(self, prior, problem) -> None:
        if prior.kind not in self.prior_kinds:
            raise IncompatibleError(
                f"sampler '{self.name}' needs a mean-reverting prior (e.g. --prior mr-denoise-25), but the prior "
                f"is of kind '{prior.kind}'; use a VP sampler such as dds or dps with it")
        if problem is None:
            raise IncompatibleError(f"sampler '{self.name}' needs the degraded image: pass a Problem with y")

    def eps(self, prior, x: torch.Tensor, t, mu: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        self.nfe += 1
        return prior.eps(x, t, mu)

    @staticmethod
    def check_choice(name: str, value, choices) -> None:
        if value not in choices:
            raise InvalidInputError(f"{name} must be one of {', '.join(map(str, choices))}, got '{value}'")

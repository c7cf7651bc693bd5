"""The inverse problem handed to a sampler: a measurement, its operator and its noise model."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .errors import InvalidInputError
from .operators import GaussianNoise, NoiseModel, Operator


@dataclass
class Problem:
    """``y = A(x) + n``.

    Attributes:
        y: measurement in public units (``(B, C, H, W)`` in [0, 1] for images; complex for k-space).
        operator: the degradation ``A``.
        noise: the noise model (its ``sigma`` is in [0, 1] image units).
        x_shape: shape of the unknown ``x``; derived from the operator when omitted.
    """

    y: torch.Tensor
    operator: Operator
    noise: NoiseModel = field(default_factory=GaussianNoise)
    x_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.y, torch.Tensor):
            raise InvalidInputError(f"Problem.y must be a torch.Tensor, got {type(self.y).__name__}")
        if not isinstance(self.noise, NoiseModel):
            raise InvalidInputError("Problem.noise must be a NoiseModel, e.g. restore.GaussianNoise(0.01)")
        if self.x_shape is None:
            self.x_shape = tuple(self.operator.input_shape(tuple(self.y.shape)))

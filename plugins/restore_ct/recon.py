"""Classical CT reconstructions (baselines) behind the sampler interface for ``restore ct --method``.

* FBP: filtered back-projection (:mod:`restore_ct.fbp`) with a selectable filter.
* TV: the engine's TV baseline (:class:`restore.samplers.classical.TV`, registered as ``ct-tv``); works on
  any linear operator, volumes included (TV in the last two axes).
"""
from __future__ import annotations

from dataclasses import dataclass

from restore.errors import IncompatibleError, InvalidInputError
from restore.samplers.classical import TV, ClassicalSampler

from .fbp import FILTERS, fbp
from .radon import Radon

__all__ = ["FBP", "TV"]  # TV: the engine's baseline, registered by this plugin as ct-tv


def _radon_of(problem) -> Radon:
    op = problem.operator
    base = getattr(op, "op", op)  # SliceOperator wraps a 2D geometry
    if not isinstance(base, Radon):
        raise IncompatibleError(f"FBP needs a CT operator (ct-parallel / ct-fan), got {type(op).__name__}; "
                                f"use ct-tv or leave out --sampler for the task's default on other problems")
    return op


@dataclass(frozen=True)
class FBPConfig:
    """Attributes:
        filter: ramp, shepp-logan, cosine, hamming or hann.
    """

    filter: str = "ramp"


class FBP(ClassicalSampler):
    Config = FBPConfig

    def validate(self) -> None:
        if self.config.filter not in FILTERS:
            raise InvalidInputError(f"unknown FBP filter '{self.config.filter}'; choose {', '.join(FILTERS)}")

    def operator_for(self, problem):
        return _radon_of(problem)

    def reconstruct(self, op, y):
        if isinstance(op, Radon):
            return fbp(op, y, self.config.filter)
        return op.map_slices(lambda o, s: fbp(o, s, self.config.filter), y)

"""Classical CT reconstructions (baselines) behind the sampler interface for ``restore ct --method``.

* FBP: filtered back-projection (:mod:`restore_ct.fbp`) with a selectable filter.
* TV: ``argmin_x ½||A x - y||²/||A||² + λ TV(x)`` by the ADMM solver the MRI baseline shares
  (:func:`restore.samplers.classical.tv_admm`); works on any linear operator, volumes included (TV in the
  last two axes).
"""
from __future__ import annotations

from dataclasses import dataclass

from restore.errors import IncompatibleError, InvalidInputError
from restore.samplers.classical import ClassicalSampler, tv_admm

from .fbp import FILTERS, fbp
from .radon import Radon


def _radon_of(problem) -> Radon:
    op = problem.operator
    base = getattr(op, "op", op)  # SliceOperator wraps a 2D geometry
    if not isinstance(base, Radon):
        raise IncompatibleError(f"FBP needs a CT operator (ct-parallel / ct-fan), got {type(op).__name__}; "
                                f"use --method tv or diffusion for other problems")
    return op


@dataclass(frozen=True)
class FBPConfig:
    """Attributes:
        filter: ramp, shepp-logan, cosine, hamming or hann.
        steps: unused (lets the shared ``--steps`` flag pass).
    """

    filter: str = "ramp"
    steps: int = 1


class FBP(ClassicalSampler):
    Config = FBPConfig

    def validate(self) -> None:
        super().validate()
        if self.config.filter not in FILTERS:
            raise InvalidInputError(f"unknown FBP filter '{self.config.filter}'; choose {', '.join(FILTERS)}")

    def operator_for(self, problem):
        return _radon_of(problem)

    def reconstruct(self, op, y):
        if isinstance(op, Radon):
            return fbp(op, y, self.config.filter)
        return op.map_slices(lambda o, s: fbp(o, s, self.config.filter), y)


@dataclass(frozen=True)
class TVConfig:
    """Attributes:
        steps: ADMM iterations; lam: TV weight; rho: ADMM penalty (image units, data term normalised by
        ``||A||²``); cg_iters: CG steps per x-update.
    """

    steps: int = 50
    lam: float = 0.001
    rho: float = 0.01
    cg_iters: int = 5


class TV(ClassicalSampler):
    Config = TVConfig

    def reconstruct(self, op, y):
        c = self.config
        return tv_admm(op, y, c.lam, c.rho, c.steps, c.cg_iters)

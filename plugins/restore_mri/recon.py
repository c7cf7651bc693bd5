"""Classical MRI reconstructions (baselines) and their sampler wrappers for ``restore mri --method``.

* zero-filled: root-sum-of-squares of the zero-filled coil images (single-coil: ``|F⁻¹ M y|``);
* SENSE: CG on ``AᴴA x = Aᴴy`` from zero with the Hermitian inner product (early stopping regularises);
* TV: ``argmin_x ½||A x - y||² + λ TV(x)``, isotropic TV of the complex image: the engine's TV baseline
  (:mod:`restore.operators.tv`; ``||A||² ≈ 1`` here) with MRI defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.errors import IncompatibleError
from restore.operators import LinearOperator, conjugate_gradient
from restore.samplers import classical

from .operators import MultiCoilMRI, PhaseMagnitude


def zero_filled(op: MultiCoilMRI, y: torch.Tensor) -> torch.Tensor:
    """RSS of the zero-filled coil images, ``(B, 1, H, W)`` real."""
    return op.zero_filled(y)


def sense(op: LinearOperator, y: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """SENSE-CG: complex image ``(B, 1, H, W)``."""
    x, _ = conjugate_gradient(op.normal, op.adjoint(y), max_iter=iters, tol=1e-6)
    return x


def _mri_of(problem) -> MultiCoilMRI:
    op = problem.operator
    if isinstance(op, PhaseMagnitude):
        op = op.op
    if not isinstance(op, MultiCoilMRI):
        raise IncompatibleError(f"this MRI baseline needs an MRI operator (mri-single / mri-multicoil), got "
                                f"{type(op).__name__}; leave out --sampler for the task's default on other problems")
    return op


class _Baseline(classical.ClassicalSampler):
    """MRI baselines take the multi-coil operator behind a real/magnitude view."""

    def operator_for(self, problem):
        return _mri_of(problem)


@dataclass(frozen=True)
class ZeroFilledConfig:
    """No options."""


class ZeroFilled(_Baseline):
    Config = ZeroFilledConfig

    def reconstruct(self, op, y):
        return zero_filled(op, y)


@dataclass(frozen=True)
class SenseConfig:
    """Attributes:
        steps: CG iterations (early stopping is the only regulariser).
    """

    steps: int = 30


class Sense(_Baseline):
    Config = SenseConfig

    def reconstruct(self, op, y):
        return sense(op, y, self.config.steps)


@dataclass(frozen=True)
class TVConfig(classical.TVConfig):
    """MRI defaults of the TV baseline (``lam`` in [0, 1] image units)."""

    steps: int = 40
    lam: float = 0.002
    rho: float = 0.05


class TV(_Baseline, classical.TV):
    Config = TVConfig

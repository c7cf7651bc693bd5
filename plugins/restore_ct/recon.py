"""Classical CT reconstructions (baselines) behind the sampler interface for ``restore ct --method``.

* FBP: filtered back-projection (:mod:`restore_ct.fbp`) with a selectable filter.
* TV: ``argmin_x ½||A x - y||²/L + λ TV(x)`` (isotropic TV, replicate boundary) by ADMM on ``z = ∇x``;
  the x-update is a few warm-started CG steps on ``(AᵀA/L + ρ∇ᵀ∇) x = Aᵀy/L + ρ∇ᵀ(z - u)``. ``L`` is
  ``||A||²`` (power iteration), so ``λ`` and ``ρ`` are in image units whatever the view count.
  Works on any linear operator, volumes included (TV in the last two axes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.errors import IncompatibleError, InvalidInputError
from restore.operators import LinearOperator, conjugate_gradient, operator_norm_sq
from restore.samplers.classical import ClassicalSampler

from .fbp import FILTERS, fbp
from .radon import Radon


def grad2d(x: torch.Tensor) -> torch.Tensor:
    """Forward differences along the last two axes (zero at the far edge): ``(..., H, W) -> (2, ..., H, W)``."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([gy, gx])


def grad2d_adjoint(g: torch.Tensor) -> torch.Tensor:
    """Exact adjoint of :func:`grad2d` (negative divergence)."""
    gy, gx = g[0], g[1]
    out = torch.zeros_like(gy)
    out[..., :-1, :] -= gy[..., :-1, :]
    out[..., 1:, :] += gy[..., :-1, :]
    out[..., :, :-1] -= gx[..., :, :-1]
    out[..., :, 1:] += gx[..., :, :-1]
    return out


def tv_objective(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float, scale: float) -> float:
    g = grad2d(x)
    return float(0.5 * ((op(x) - y) ** 2).sum() / scale + lam * torch.sqrt((g**2).sum(0)).sum())


def tv_admm(op: LinearOperator, y: torch.Tensor, lam: float = 0.001, rho: float = 0.01, iters: int = 50,
            cg_iters: int = 5, x0: torch.Tensor | None = None, callback=None) -> torch.Tensor:
    """TV-regularised least squares by ADMM (see the module docstring); returns ``x`` like ``Aᵀy``.

    Args:
        op: linear operator; y: measurement.
        lam: TV weight; rho: ADMM penalty (both relative to the ``||A||²``-normalised data term).
        iters: ADMM iterations; cg_iters: CG steps per x-update (warm-started).
        x0: starting image (default: CG on the normal equations).
        callback: called as ``callback(i, x)`` after every iteration.
    """
    if lam < 0 or rho <= 0 or iters < 0 or cg_iters < 1:
        raise InvalidInputError(f"TV needs lam >= 0, rho > 0, iters >= 0, cg_iters >= 1; got {lam}, {rho}, "
                                f"{iters}, {cg_iters}")
    aty = op.adjoint(y)
    scale = operator_norm_sq(op, aty)
    if x0 is None:
        x0, _ = conjugate_gradient(op.normal, aty, max_iter=cg_iters)
    x = x0
    z = grad2d(x)
    u = torch.zeros_like(z)
    for i in range(iters):
        b = aty / scale + rho * grad2d_adjoint(z - u)
        x, _ = conjugate_gradient(lambda v: op.normal(v) / scale + rho * grad2d_adjoint(grad2d(v)), b, x0=x,
                                  max_iter=cg_iters)
        g = grad2d(x) + u
        mag = torch.sqrt((g**2).sum(0, keepdim=True))
        z = g * (1 - (lam / rho) / mag.clamp_min(1e-12)).clamp_min(0)
        u = g - z
        if callback is not None:
            callback(i, x)
    return x


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

"""Total variation: the finite differences and the one ADMM solver used by the MRI, CT and volume code.

``argmin_x ½||A x - y||²/L + λ||D x||`` by ADMM on ``z = D x``: each iteration a few warm-started CG steps
on ``(AᴴA/L + ρDᴴD) x = Aᴴy/L + ρDᴴ(z - u)``, then the shrinkage of ``D x + u`` and the dual update.

* ``D = ∇`` (:func:`grad2d`, forward differences over the last two axes, zero at the far edge) with
  isotropic shrinkage: 2D images and volumes slice by slice (MRI/CT TV baselines, :func:`tv_admm`);
* ``D = D_z`` (:func:`dz`, circular along the slice axis of ``(B, C, D, H, W)``) with anisotropic soft
  thresholding: the slice coupling of DDS-3D (:func:`admm_tv_step`, state kept across diffusion steps).

``L = ||A||²`` (power iteration) makes ``λ`` and ``ρ`` image-unit weights whatever the operator's scale;
complex images use the magnitude of the difference vector.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import InvalidInputError, ShapeError
from .base import LinearOperator
from .cg import conjugate_gradient, operator_norm_sq

Diff = Callable[[torch.Tensor], torch.Tensor]


# -- finite differences -----------------------------------------------------------------------------------
def grad2d(x: torch.Tensor) -> torch.Tensor:
    """Forward differences along the last two axes (zero at the far edge): ``(..., H, W) -> (2, ..., H, W)``."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([gy, gx])


def grad2d_adjoint(g: torch.Tensor) -> torch.Tensor:
    """Exact adjoint of :func:`grad2d` (negative divergence): ``(2, ..., H, W) -> (..., H, W)``."""
    gy, gx = g[0], g[1]
    out = torch.zeros_like(gy)
    out[..., :-1, :] -= gy[..., :-1, :]
    out[..., 1:, :] += gy[..., :-1, :]
    out[..., :, :-1] -= gx[..., :, :-1]
    out[..., :, 1:] += gx[..., :, :-1]
    return out


def _check_volume(x: torch.Tensor) -> None:
    if x.ndim != 5:
        raise ShapeError(f"expected a volume (B, C, D, H, W), got shape {tuple(x.shape)}")


def dz(x: torch.Tensor) -> torch.Tensor:
    """Circular forward difference along D: ``(B, C, D, H, W) -> (B, C, D, H, W)``."""
    _check_volume(x)
    return torch.roll(x, -1, dims=2) - x


def dz_adjoint(u: torch.Tensor) -> torch.Tensor:
    """Exact adjoint of :func:`dz`: ``D_zᵀ u[i] = u[i-1] - u[i]``."""
    _check_volume(u)
    return torch.roll(u, 1, dims=2) - u


# -- shrinkage --------------------------------------------------------------------------------------------
def soft_threshold(v: torch.Tensor, tau: float) -> torch.Tensor:
    """``sign(v) · max(|v| - τ, 0)`` (anisotropic shrinkage)."""
    return torch.sign(v) * (v.abs() - tau).clamp_min(0)


def _magnitude(g: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((g.abs() ** 2).sum(0, keepdim=True))


def isotropic_shrink(g: torch.Tensor, tau: float) -> torch.Tensor:
    """Shrink the difference vectors ``g`` (stacked on axis 0) by ``τ`` in magnitude."""
    return g * (1 - tau / _magnitude(g).clamp_min(1e-12)).clamp_min(0)


# -- ADMM -------------------------------------------------------------------------------------------------
@dataclass
class ADMMState:
    """Auxiliary ``z = D x`` and scaled dual ``u``; for DDS-3D both persist across diffusion steps."""

    z: torch.Tensor
    u: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> "ADMMState":
        return cls(torch.zeros_like(x), torch.zeros_like(x))


def admm_iteration(op: LinearOperator, aty: torch.Tensor, x: torch.Tensor, state: ADMMState, rho: float, lam: float,
                   cg_iters: int, diff: Diff, diff_adjoint: Diff,
                   shrink: Callable[[torch.Tensor, float], torch.Tensor], scale: float = 1.0) -> torch.Tensor:
    """One ADMM iteration for ``½||Ax - y||²/scale + λ||D x||``; updates ``state`` in place, returns ``x``."""
    b = aty / scale + rho * diff_adjoint(state.z - state.u)
    x, _ = conjugate_gradient(lambda v: op.normal(v) / scale + rho * diff_adjoint(diff(v)), b, x0=x,
                              max_iter=cg_iters)
    g = diff(x) + state.u
    state.z = shrink(g, lam / rho)
    state.u = g - state.z
    return x


def tv_objective(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float, scale: float = 1.0,
                 diff: Diff = grad2d) -> float:
    """``½||A x - y||²/scale + λ TV(x)`` (summed over the batch); isotropic for :func:`grad2d`, else ℓ1."""
    g = diff(x)
    tv = _magnitude(g).sum() if diff is grad2d else g.abs().sum()
    return float(0.5 * ((op(x) - y).abs() ** 2).sum() / scale + lam * tv)


def tv_admm(op: LinearOperator, y: torch.Tensor, lam: float, rho: float, iters: int, cg_iters: int = 5,
            x0: torch.Tensor | None = None,
            callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Isotropic-TV-regularised least squares by ADMM (module docstring); returns ``x`` shaped like ``Aᴴy``.

    Args:
        op: linear operator (real or complex); y: measurement.
        lam: TV weight; rho: ADMM penalty (both relative to the ``||A||²``-normalised data term).
        iters: ADMM iterations; cg_iters: CG steps per x-update (warm-started).
        x0: starting image (default: ``cg_iters`` CG steps on the normal equations).
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
    state = ADMMState(grad2d(x), torch.zeros_like(grad2d(x)))
    for i in range(iters):
        x = admm_iteration(op, aty, x, state, rho, lam, cg_iters, grad2d, grad2d_adjoint, isotropic_shrink, scale)
        if callback is not None:
            callback(i, x)
    return x


def admm_tv_step(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, state: ADMMState, rho: float, lam: float,
                 cg_iters: int, aty: torch.Tensor | None = None) -> torch.Tensor:
    """One ADMM iteration of ``min_x ½||A x - y||² + λ||D_z x||₁`` on a volume; updates ``state`` in place.

    ``lam = 0`` (with any ``rho``) still couples slices through the quadratic term; ``rho = 0`` means no
    coupling at all (:func:`slicewise_cg`).
    """
    aty = op.adjoint(y) if aty is None else aty
    if rho > 0:
        return admm_iteration(op, aty, x, state, rho, lam, cg_iters, dz, dz_adjoint, soft_threshold)
    return slicewise_cg(op, aty, x, cg_iters)


def slicewise_cg(op: LinearOperator, aty: torch.Tensor, x: torch.Tensor, cg_iters: int) -> torch.Tensor:
    """CG on ``AᵀA x = Aᵀy`` with every slice its own step sizes (independent 2D DDS data steps)."""
    b, c, d, h, w = x.shape

    def to_slices(v: torch.Tensor) -> torch.Tensor:
        return v.transpose(1, 2).reshape(b * d, c, h, w)

    def to_volume(v: torch.Tensor) -> torch.Tensor:
        return v.reshape(b, d, c, h, w).transpose(1, 2)

    out, _ = conjugate_gradient(lambda v: to_slices(op.normal(to_volume(v))), to_slices(aty), x0=to_slices(x),
                                max_iter=cg_iters)
    return to_volume(out)

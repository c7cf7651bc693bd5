"""TV along the slice axis for volumes ``(B, C, D, H, W)`` (DiffusionMBIR / DDS 3D, SAMPLERS.md §5.2).

``D_z x[i] = x[i+1] - x[i]`` (circular along D), ``D_zᵀ u[i] = u[i-1] - u[i]``, and one ADMM iteration of
``min_x ½||A x - y||² + λ||D_z x||₁`` with the split ``z = D_z x``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ShapeError
from ..operators import LinearOperator, conjugate_gradient


def _check(x: torch.Tensor) -> None:
    if x.ndim != 5:
        raise ShapeError(f"expected a volume (B, C, D, H, W), got shape {tuple(x.shape)}")


def dz(x: torch.Tensor) -> torch.Tensor:
    """Circular forward difference along D: ``(B, C, D, H, W) -> (B, C, D, H, W)``."""
    _check(x)
    return torch.roll(x, -1, dims=2) - x


def dz_adjoint(u: torch.Tensor) -> torch.Tensor:
    """Exact adjoint of :func:`dz`: ``D_zᵀ u[i] = u[i-1] - u[i]``."""
    _check(u)
    return torch.roll(u, 1, dims=2) - u


def soft_threshold(v: torch.Tensor, tau: float) -> torch.Tensor:
    """``sign(v) · max(|v| - τ, 0)``."""
    return torch.sign(v) * (v.abs() - tau).clamp_min(0)


@dataclass
class ADMMState:
    """Auxiliary ``z = D_z x`` and scaled dual ``u``; both persist across diffusion steps."""

    z: torch.Tensor
    u: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> "ADMMState":
        return cls(torch.zeros_like(x), torch.zeros_like(x))


def admm_tv_step(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, state: ADMMState, rho: float, lam: float,
                 cg_iters: int, aty: torch.Tensor | None = None) -> torch.Tensor:
    """One ADMM iteration; updates ``state`` in place and returns the new ``x``.

    ``x = CG(AᵀA + ρD_zᵀD_z, Aᵀy + ρD_zᵀ(z - u), x_init = x)``; ``z = S_{λ/ρ}(D_z x + u)``;
    ``u = u + D_z x - z``. ``lam = 0`` (with any ``rho``) still couples slices through the quadratic term;
    ``rho = 0`` means no coupling at all (:func:`slicewise_cg`).
    """
    aty = op.adjoint(y) if aty is None else aty
    if rho > 0:
        b = aty + rho * dz_adjoint(state.z - state.u)
        x, _ = conjugate_gradient(lambda v: op.normal(v) + rho * dz_adjoint(dz(v)), b, x0=x, max_iter=cg_iters)
        dx = dz(x)
        state.z = soft_threshold(dx + state.u, lam / rho)
        state.u = state.u + dx - state.z
    else:
        x = slicewise_cg(op, aty, x, cg_iters)
    return x


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


def tv_objective(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float) -> float:
    """``½||A x - y||² + λ||D_z x||₁`` (summed over the batch)."""
    return float(0.5 * ((op(x) - y) ** 2).sum() + lam * dz(x).abs().sum())

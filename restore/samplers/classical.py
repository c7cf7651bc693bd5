"""Classical reconstructions (zero-filled, SENSE, FBP, TV, …) behind the sampler interface.

They ignore the prior, so that ``--method fbp`` and a diffusion sampler run through the same task, CLI and
benchmark code; the prior only maps the result into its model space for :meth:`Sampler.run`.

The TV solver shared by the MRI and CT baselines: ``argmin_x ½||A x - y||²/L + λ TV(x)`` with isotropic TV
over the last two axes (forward differences, zero at the far edge; complex images use the magnitude of the
gradient vector), by ADMM on ``z = ∇x`` with a few warm-started CG steps per x-update on
``(AᴴA/L + ρ∇ᴴ∇) x = Aᴴy/L + ρ∇ᴴ(z - u)``. ``L = ||A||²`` (power iteration), so ``λ`` and ``ρ`` are in
image units whatever the operator's scale (a Radon transform's grows with views and size; an MRI
operator with orthonormal FFTs has ``L ≈ 1``).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import InvalidInputError
from ..operators import LinearOperator, conjugate_gradient, operator_norm_sq
from .base import Sampler


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


def _gradient_magnitude(g: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((g.abs() ** 2).sum(0, keepdim=True))


def tv_objective(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float, scale: float) -> float:
    """``½||A x - y||²/scale + λ TV(x)`` (summed over the batch)."""
    return float(0.5 * ((op(x) - y).abs() ** 2).sum() / scale + lam * _gradient_magnitude(grad2d(x)).sum())


def tv_admm(op: LinearOperator, y: torch.Tensor, lam: float, rho: float, iters: int, cg_iters: int = 5,
            x0: torch.Tensor | None = None,
            callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """TV-regularised least squares by ADMM (module docstring); returns ``x`` shaped like ``Aᴴy``.

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
    z = grad2d(x)
    u = torch.zeros_like(z)
    for i in range(iters):
        b = aty / scale + rho * grad2d_adjoint(z - u)
        x, _ = conjugate_gradient(lambda v: op.normal(v) / scale + rho * grad2d_adjoint(grad2d(v)), b, x0=x,
                                  max_iter=cg_iters)
        g = grad2d(x) + u
        z = g * (1 - (lam / rho) / _gradient_magnitude(g).clamp_min(1e-12)).clamp_min(0)
        u = g - z
        if callback is not None:
            callback(i, x)
    return x


class ClassicalSampler(Sampler):
    """Subclasses implement :meth:`reconstruct` (public units) and may validate in :meth:`operator_for`."""

    requires = ("operator", "linear")
    prior_kinds = ("vp", "analytic", "latent", "mean-reverting")

    def operator_for(self, problem):
        """The operator ``reconstruct`` receives; override to unwrap views or refuse other operators."""
        return problem.operator

    def reconstruct(self, op, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        op = self.operator_for(problem)
        with torch.no_grad():
            x = self.reconstruct(op, problem.y)
        callback(1, 1, 0)
        # Complex reconstructions (MRI) are reported as magnitude images.
        return prior.to_model(x.abs() if x.is_complex() else x), {}

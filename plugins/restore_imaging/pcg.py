"""Batched preconditioned conjugate gradients for the boundary-aware blurs' ``prox``.

``(I + γAᵀA)`` of a blur with non-periodic boundaries is not diagonal in the Fourier domain, but it is
close to the circulant ``I + γ|K|²``, whose inverse is one FFT pair: used as the preconditioner, CG then
converges in a handful of iterations however ill-conditioned the blur.
"""
from __future__ import annotations

from typing import Callable

import torch

from restore.operators import inner


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def preconditioned_cg(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                      precondition: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor | None = None,
                      max_iter: int = 100, tol: float = 1e-7) -> torch.Tensor:
    """Solve ``apply(x) = b`` sample by sample for symmetric positive definite ``apply`` and ``precondition``.

    Args:
        apply: the linear map on tensors shaped like ``b`` ``(B, ...)``.
        b: right-hand side ``(B, ...)``, real.
        precondition: an approximation of ``apply``'s inverse (symmetric positive definite).
        x0: starting point (zeros by default).
        max_iter: iteration cap.
        tol: stop a sample once its residual norm is at most ``tol · ||b||`` (never below a few machine
            epsilons, where further steps only amplify round-off).

    Returns:
        ``x`` shaped like ``b``.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    z = precondition(r)
    p = z.clone()
    rz = inner(r, z)
    threshold = max(tol, 10 * torch.finfo(b.dtype).eps) * inner(b, b).sqrt()
    for _ in range(max_iter):
        active = inner(r, r).sqrt() > threshold
        if not bool(active.any()):
            break
        q = apply(p)
        pq = inner(p, q)
        # a converged sample (or a vanished direction) gets a zero step instead of 0/0
        safe = active & (pq > 0)
        alpha = torch.where(safe, rz / torch.where(safe, pq, torch.ones_like(pq)), torch.zeros_like(pq))
        x = x + _bcast(alpha, x) * p
        r = r - _bcast(alpha, r) * q
        z = precondition(r)
        rz_new = inner(r, z)
        beta = torch.where(safe, rz_new / torch.where(safe, rz, torch.ones_like(rz)), torch.zeros_like(rz))
        p = z + _bcast(beta, p) * p
        rz = torch.where(safe, rz_new, rz)
    return x

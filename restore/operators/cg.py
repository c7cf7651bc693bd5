"""Batched conjugate gradients with the Hermitian inner product (correct for complex k-space data)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def inner(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-sample Hermitian inner product ``sum(conj(u) * w)`` over all but the batch dim -> (B,)."""
    prod = (u.conj() * w) if u.is_complex() else u * w
    return prod.reshape(u.shape[0], -1).sum(dim=1)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


@dataclass
class CGInfo:
    iterations: int
    residual_norm: torch.Tensor  # (B,) final ||b - A x||


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    max_iter: int = 50,
    tol: float = 0.0,
) -> tuple[torch.Tensor, CGInfo]:
    """Solve ``apply(x) = b`` for a Hermitian positive semi-definite ``apply``, sample by sample.

    Args:
        apply: the linear map, acting on tensors shaped like ``b`` (batch first).
        b: right-hand side, ``(B, ...)``, real or complex.
        x0: starting point (defaults to zeros). Started at zero on the normal equations, CG stays in the
            row space and converges to the minimum-norm least-squares solution.
        max_iter: number of iterations (DDS uses a handful, a solve uses many).
        tol: stop a sample once its residual norm is at most ``tol * ||b||`` (never below a few machine
            epsilons, where further steps would only amplify round-off).

    Returns:
        ``(x, info)`` with ``x`` shaped like ``b``.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rho = inner(r, r).real
    b_norm = inner(b, b).real.sqrt()
    threshold = max(tol, 10 * torch.finfo(b.real.dtype).eps) * b_norm
    iterations = 0
    for iterations in range(1, max_iter + 1):
        active = rho.sqrt() > threshold
        if not bool(active.any()):
            iterations -= 1
            break
        q = apply(p)
        pq = inner(p, q).real
        # A sample that converged (or whose direction vanished) gets a zero step instead of 0/0.
        safe = active & (pq > 0)
        alpha = torch.where(safe, rho / torch.where(safe, pq, torch.ones_like(pq)), torch.zeros_like(pq))
        x = x + _bcast(alpha, x).to(x.dtype) * p
        r = r - _bcast(alpha, r).to(r.dtype) * q
        rho_new = inner(r, r).real
        beta = torch.where(safe, rho_new / torch.where(safe, rho, torch.ones_like(rho)), torch.zeros_like(rho))
        p = r + _bcast(beta, p).to(p.dtype) * p
        rho = torch.where(safe, rho_new, rho)
    return x, CGInfo(iterations, rho.clamp_min(0).sqrt())


def operator_norm_sq(op, like: torch.Tensor, iters: int = 20, generator: torch.Generator | None = None) -> float:
    """``||A||²``, the largest eigenvalue of ``AᴴA``, by power iteration from a random tensor shaped like ``like``.

    Solvers divide their data term by it so that regularisation weights keep their meaning whatever the
    operator's scale (a Radon transform's grows with the view count and the image size).
    """
    v = torch.randn(like.shape, generator=generator or torch.Generator().manual_seed(0), dtype=like.dtype)
    v = v.to(like.device)
    estimate = 1.0
    for _ in range(iters):
        v = v / torch.linalg.vector_norm(v)
        w = op.normal(v)
        estimate = float(inner(v, w).sum().real)
        v = w
    return estimate


def preconditioned_cg(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                      precondition: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor | None = None,
                      max_iter: int = 100, tol: float = 1e-7) -> torch.Tensor:
    """Solve ``apply(x) = b`` sample by sample for symmetric positive definite ``apply`` and ``precondition``.

    A preconditioner that is one FFT pair (the circulant approximation of a blur with other boundaries, the
    k-space inverse of a zero-phase MRI view) makes CG converge in a handful of iterations however
    ill-conditioned the system.

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

"""Second-order Tweedie and Hutchinson trace estimators (SAMPLERS.md §1.1, §4.2).

For a VP prior at level k, ``Cov[x0 | x_k] = (s_k² / a_k) ∂x0̂/∂x_k`` and
``tr ∇²_x log p_k(x) = tr ∂s/∂x`` with the score ``s = -eps / s_k``. The helpers here compute
Jacobian-vector products of the prior's predictions and unbiased Hutchinson estimates of the trace,
for any ``DiffusionPrior`` (pixel, latent or analytic) and any sample shape ``(B, *event_shape)``.

Second derivatives through a network need attention kernels that support them; the CPU flash kernel
does not, so :func:`second_order_context` selects PyTorch's composite (math) attention while derivatives
of derivatives are taken.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Literal, get_args

import torch

from ..errors import InvalidInputError
from .base import DiffusionPrior

JVP_METHODS = ("backward", "forward")
Probe = Literal["rademacher", "gaussian"]
PROBES = get_args(Probe)


def second_order_context():
    """Context in which forward-mode AD and double backward work through attention layers."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # older torch: the default kernels already are composite
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.MATH])


def jvp(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor,
        method: str = "backward", create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fn(x), J_fn(x) v)``.

    Args:
        fn: a differentiable map from ``x`` to a tensor.
        x, v: primal and tangent of the same shape.
        method: ``backward`` (double-backward trick: differentiate ``⟨J_fnᵀ u, v⟩`` in ``u``; works for
            functions that call ``torch.autograd.grad`` internally, such as the analytic GMM prior) or
            ``forward`` (``torch.func.jvp``, forward-mode AD; one pass, no graph is kept).
        create_graph: keep the graph so the result can be differentiated again in ``x`` (``backward`` only).
    """
    if v.shape != x.shape:
        raise InvalidInputError(f"tangent shape {tuple(v.shape)} must equal the point's shape {tuple(x.shape)}")
    if method == "forward":
        with second_order_context():
            return torch.func.jvp(fn, (x.detach(),), (v,))
    if method != "backward":
        raise InvalidInputError(f"jvp method must be one of {', '.join(JVP_METHODS)}, got '{method}'")
    with torch.enable_grad(), second_order_context():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        out = fn(xg)
        u = torch.zeros_like(out, requires_grad=True)
        (vjp,) = torch.autograd.grad(out, xg, grad_outputs=u, create_graph=True)
        (jv,) = torch.autograd.grad(vjp, u, grad_outputs=v, create_graph=create_graph)
    return (out if create_graph else out.detach()), jv


def posterior_cov_apply(prior: DiffusionPrior, x: torch.Tensor, k: int, v: torch.Tensor,
                        method: str = "backward") -> torch.Tensor:
    """``Cov[x0 | x_k] v = (s_k² / a_k) (∂x0̂/∂x_k) v`` in the prior's model space.

    Args:
        prior: any VP prior (pixel, latent or analytic).
        x: ``(B, *event_shape)`` state at level ``k`` (for images ``(B, C, H, W)``) in model units.
        k: level index (``0 .. T-1``).
        v: vectors of the same shape as ``x``.
        method: see :func:`jvp`.

    Returns:
        ``(B, *event_shape)``: one covariance-vector product per sample.
    """
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    _, jv = jvp(lambda z: prior.x0(z, k), x, v, method=method)
    return (s * s / a) * jv


def probes(shape, generator: torch.Generator | None, like: torch.Tensor, kind: str = "rademacher") -> torch.Tensor:
    """Hutchinson probe vectors with ``E[v vᵀ] = I``, drawn on the CPU from ``generator`` then moved."""
    if kind == "rademacher":
        v = torch.randint(0, 2, tuple(shape), generator=generator).to(like.real.dtype) * 2 - 1
    elif kind == "gaussian":
        v = torch.randn(tuple(shape), generator=generator, dtype=like.real.dtype)
    else:
        raise InvalidInputError(f"probe distribution must be one of {', '.join(PROBES)}, got '{kind}'")
    return v.to(like.device)


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).reshape(u.shape[0], -1).sum(dim=1)


def score_trace(prior: DiffusionPrior, x: torch.Tensor, k: int, v: torch.Tensor, mode: str = "fd",
                delta: float = 1e-3, score_x: torch.Tensor | None = None,
                create_graph: bool = False) -> torch.Tensor:
    """One-probe Hutchinson estimate of ``tr ∇²_x log p_k(x)`` per sample, ``(B,)``.

    ``fd``: ``vᵀ[s(x + δv) - s(x)] / δ`` (one extra network evaluation; exact for affine scores for any
    δ). ``jvp``: ``vᵀ J_s(x) v`` computed with one VJP kept in the graph (exact in expectation).

    Args:
        prior: the prior; ``s = -eps / s_k``.
        x: ``(B, *event_shape)`` state in model units; pass one that requires grad (with
            ``create_graph=True``) to differentiate the estimate in ``x``.
        k: level index.
        v: a probe of the same shape as ``x`` (see :func:`probes`).
        mode: ``fd`` or ``jvp``.
        delta: finite-difference step in model units (``fd``).
        score_x: the score at ``x`` when the caller has it already (saves one evaluation); for ``jvp`` it
            must have been computed from ``x`` inside :func:`second_order_context`.
        create_graph: keep the graph for a gradient of the estimate with respect to ``x``.
    """
    s_k = float(prior.schedule.s(k))

    def score(z: torch.Tensor) -> torch.Tensor:
        return -prior.eps(z, k) / s_k

    if mode == "fd":
        if not delta > 0:
            raise InvalidInputError(f"the finite-difference step delta must be > 0, got {delta}")
        with torch.set_grad_enabled(create_graph or torch.is_grad_enabled()):
            base = score_x if score_x is not None else score(x)
            return _dot(v, score(x + delta * v) - base) / delta
    if mode != "jvp":
        raise InvalidInputError(f"trace mode must be 'fd' or 'jvp', got '{mode}'")
    with torch.enable_grad(), second_order_context():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        sx = score_x if score_x is not None and x.requires_grad else score(xg)
        (jtv,) = torch.autograd.grad(sx, xg, grad_outputs=v, create_graph=True)
        est = _dot(jtv, v)
    return est if create_graph else est.detach()


def hutchinson_trace(prior: DiffusionPrior, x: torch.Tensor, k: int, n_probes: int,
                     generator: torch.Generator | None, mode: str = "fd", delta: float = 1e-3,
                     kind: str = "rademacher") -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error over ``n_probes`` probes of ``tr ∇²_x log p_k(x)``, each ``(B,)``."""
    if n_probes < 1:
        raise InvalidInputError(f"n_probes must be >= 1, got {n_probes}")
    with torch.no_grad() if mode == "fd" else contextlib.nullcontext():
        s_x = -prior.eps(x, k) / float(prior.schedule.s(k)) if mode == "fd" else None
        est = torch.stack([
            score_trace(prior, x, k, probes(x.shape, generator, x, kind), mode, delta, score_x=s_x)
            for _ in range(n_probes)])
    sem = est.std(dim=0) / n_probes**0.5 if n_probes > 1 else torch.full_like(est[0], float("inf"))
    return est.mean(dim=0), sem


def trace_gradient(prior: DiffusionPrior, x: torch.Tensor, k: int, n_probes: int,
                   generator: torch.Generator | None, mode: str = "fd", delta: float = 1e-3,
                   kind: str = "rademacher") -> torch.Tensor:
    """Probe-averaged estimate of ``∇_x tr ∇²_x log p_k(x)``, shape of ``x`` (the drift STSL adds)."""
    if n_probes < 1:
        raise InvalidInputError(f"n_probes must be >= 1, got {n_probes}")
    total = torch.zeros_like(x)
    for _ in range(n_probes):
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            est = score_trace(prior, xg, k, probes(x.shape, generator, x, kind), mode, delta, create_graph=True)
            (g,) = torch.autograd.grad(est.sum(), xg)
        total = total + g
    return total / n_probes

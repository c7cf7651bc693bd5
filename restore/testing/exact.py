"""Closed-form references for the particle samplers' tests (SAMPLERS.md §1.6 fixture 2), float64.

* :func:`gmm_posterior` — a Gaussian-mixture prior under ``y = A x + N(0, σ_y² I)`` has a Gaussian-mixture
  posterior: ``w_i′ ∝ w_i N(y; A m_i, A Σ_i Aᵀ + σ_y² I)`` and per-component Gaussian updates;
* :func:`mixture_moments` — mean and covariance of a mixture;
* :func:`gmm_product` — the product of two mixtures, normalised, is a mixture of all component pairs;
* :func:`tempered_moments` — mean and covariance of ``p^β / Z`` by quadrature on a grid (``d ≤ 2``), since a
  power of a mixture is not a mixture.
"""
from __future__ import annotations

import torch


def _gauss_logpdf(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)


def gmm_posterior(weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor, matrix: torch.Tensor,
                  y: torch.Tensor, sigma_y: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact posterior mixture ``(weights (K,), means (K, d), covs (K, d, d))`` of ``x | y``.

    Args:
        weights, means, covs: the prior mixture (``means`` flattened to ``(K, d)``).
        matrix: ``A``, ``(m, d)``; ``y``: the measurement (``m`` entries); ``sigma_y``: noise std.
    """
    y = y.reshape(-1)
    eye_m = torch.eye(matrix.shape[0], dtype=matrix.dtype)
    log_w, post_means, post_covs = [], [], []
    for w, m, c in zip(weights, means, covs):
        s = matrix @ c @ matrix.T + sigma_y**2 * eye_m
        gain = c @ matrix.T @ torch.linalg.inv(s)
        log_w.append(torch.log(w) + _gauss_logpdf(y, matrix @ m, s))
        post_means.append(m + gain @ (y - matrix @ m))
        post_covs.append(c - gain @ matrix @ c)
    log_w = torch.stack(log_w)
    return torch.softmax(log_w, 0), torch.stack(post_means), torch.stack(post_covs)


def mixture_moments(weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(d,)`` and covariance ``(d, d)`` of ``Σ_i w_i N(m_i, Σ_i)``."""
    mean = (weights[:, None] * means).sum(0)
    centred = means - mean
    cov = (weights[:, None, None] * (covs + centred[:, :, None] * centred[:, None, :])).sum(0)
    return mean, cov


def gmm_product(w1, m1, c1, w2, m2, c2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised product of two mixtures: components ``(i, j)`` with weight ``∝ w_i v_j N(m_i; m_j, Σ_i + Σ_j)``."""
    ws, ms, cs = [], [], []
    for a, ma, ca in zip(w1, m1, c1):
        for b, mb, cb in zip(w2, m2, c2):
            ia, ib = torch.linalg.inv(ca), torch.linalg.inv(cb)
            c = torch.linalg.inv(ia + ib)
            ws.append(torch.log(a) + torch.log(b) + _gauss_logpdf(ma, mb, ca + cb))
            ms.append(c @ (ia @ ma + ib @ mb))
            cs.append(c)
    return torch.softmax(torch.stack(ws), 0), torch.stack(ms), torch.stack(cs)


def tempered_moments(log_density, beta: float, lo: float, hi: float, points: int = 2001,
                     d: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of ``p(x)^β / Z`` by quadrature on a uniform grid of ``[lo, hi]^d`` (``d`` 1 or 2).

    Args:
        log_density: maps ``(n, d)`` float64 points to ``(n,)`` values of ``log p``.
        beta: the exponent; ``lo``, ``hi``, ``points``: the grid (wide enough that the mass outside is negligible).
    """
    axis = torch.linspace(lo, hi, points, dtype=torch.float64)
    grid = axis[:, None] if d == 1 else torch.cartesian_prod(axis, axis)
    log_q = beta * log_density(grid)
    q = torch.softmax(log_q, 0)
    mean = q @ grid
    centred = grid - mean
    return mean, (q[:, None] * centred).T @ centred


def ddpm_chain_moments(prior, steps: int, spacing: str = "uniform",
                       variance: str = "fixed-small") -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean ``(d,)`` and covariance ``(d, d)`` of the respaced DDPM chain's output for a Gaussian prior
    with exact noise predictions (SAMPLERS.md §1.6 fixture 5: every step is affine, ``x′ = M x + b + L z``).

    This is the prior the chain actually samples; a particle sampler built on the chain is exact for the
    posterior of this prior (its gap to the prior ``N(m, Σ)`` is the chain's discretisation error).
    """
    from ..samplers.steps import ddpm_coefficients
    from .oracles import affine_moments, tweedie_affine

    eye = torch.eye(prior.cov.shape[0], dtype=torch.float64)
    steps_ = []
    for k, j in prior.schedule.pairs(steps, spacing):
        J, h, _, _ = tweedie_affine(prior, k)  # x0̂ = J x + h
        c1, c2, std = ddpm_coefficients(prior.schedule, k, j, variance)
        steps_.append((c1 * J + c2 * eye, c1 * h, std * eye))
    return affine_moments(steps_)

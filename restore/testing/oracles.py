"""The affine-Gaussian moment oracle (SAMPLERS.md §1.6, §9) and the mean-reverting fixture's truths.

On a Gaussian prior every denoiser output is affine in the state, ``x0̂ = J x + h`` and ``epŝ = E x + e``
(:func:`tweedie_affine`), so a sampler whose steps are affine, ``x' = M x + b + L z`` with ``z ~ N(0, I)``,
produces Gaussian samples whose exact mean and covariance :func:`affine_moments` propagates. A sampler
passes when its Monte-Carlo moments match within a few standard errors (:func:`check_moments`). The
built-in samplers are tested this way; :class:`~restore.testing.SamplerContract` applies the same check to
any sampler whose contract subclass describes its steps (``affine_steps``).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..priors.analytic import GaussianPrior
from .checks import ContractError

AffineStep = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (M, b, L): x' = M x + b + L z


def tweedie_affine(prior: GaussianPrior, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(J, h, E, e)`` with ``x0̂ = J x + h`` and ``epŝ = E x + e`` at level ``k`` (float64, ``(d, d)``/``(d,)``)."""
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    d = prior.cov.shape[0]
    cinv = torch.linalg.inv(a * a * prior.cov + s * s * torch.eye(d, dtype=torch.float64))
    J = a * prior.cov @ cinv
    h = prior.mean - a * J @ prior.mean
    E = s * cinv
    e = -a * s * cinv @ prior.mean
    return J, h, E, e


def affine_moments(steps: Sequence[AffineStep], mean: torch.Tensor | None = None,
                   cov: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and covariance after ``steps`` from ``N(mean, cov)`` (default ``N(0, I)``, the usual ``x_T``)."""
    d = steps[0][0].shape[0]
    mu = torch.zeros(d, dtype=torch.float64) if mean is None else mean
    P = torch.eye(d, dtype=torch.float64) if cov is None else cov
    for M, b, L in steps:
        mu, P = M @ mu + b, M @ P @ M.T + L @ L.T
    return mu, P


def check_moments(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, n_se: float = 4.5) -> float:
    """Monte-Carlo mean and covariance of ``samples`` ``(n, d)`` match ``(mean, cov)`` within ``n_se`` standard
    errors per entry. Returns the worst deviation in standard errors."""
    n = samples.shape[0]
    se = (cov.diagonal() / n).sqrt()
    z_mean = float(((samples.mean(0) - mean).abs() / (se + 1e-300)).max())
    emp = torch.cov(samples.T)
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / n).sqrt()
    z_cov = float(((emp - cov).abs() / (se_cov + 1e-300)).max())
    if not max(z_mean, z_cov) < n_se:
        what = "mean" if z_mean >= z_cov else "covariance"
        raise ContractError(f"moment oracle: the samples' {what} is {max(z_mean, z_cov):.3g} standard errors from the "
                            f"exact value (limit {n_se:g})")
    return max(z_mean, z_cov)

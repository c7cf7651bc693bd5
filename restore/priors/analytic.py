"""Analytic priors with exact scores: the test oracle for every sampler (SAMPLERS.md §1.6).

They work for any sample shape ``(B, *event_shape)`` and in float64. Their model space equals the
public space by default (``data_range=(0, 1)``), so fixtures can be written directly.
"""
from __future__ import annotations

import math

import torch

from ..errors import InvalidInputError, ShapeError
from .base import DiffusionPrior
from .schedules import VPSchedule


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class GaussianPrior(DiffusionPrior):
    """``x0 ~ N(mean, cov)``; ``mean`` has the sample shape, ``cov`` is ``(d, d)`` with ``d = mean.numel()``.

    Exact quantities (``C_k = a_k² Σ + s_k² I``): ``eps* = s_k C_k⁻¹ (x - a_k m)``,
    ``Cov[x0|x_k] = Σ - a_k² Σ C_k⁻¹ Σ``, and the probability-flow map between levels.
    """

    kind = "analytic"
    clamp_output = False  # test oracles compare raw values

    def __init__(self, mean, cov, schedule: VPSchedule | None = None, data_range=(0.0, 1.0)) -> None:
        super().__init__(schedule or VPSchedule.linear(), channels=None, data_range=data_range)
        mean = torch.as_tensor(mean)
        if not mean.is_floating_point():
            mean = mean.double()
        cov = torch.as_tensor(cov, dtype=mean.dtype)
        d = mean.numel()
        if cov.shape != (d, d):
            raise ShapeError(f"cov must have shape ({d}, {d}) for a mean with {d} entries, got {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.T, atol=1e-8 * float(cov.abs().max())):
            raise InvalidInputError("cov must be symmetric")
        self.event_shape = tuple(mean.shape)
        self.register_buffer("mean", mean)
        self.register_buffer("cov", cov)
        evals, evecs = torch.linalg.eigh(cov.double())
        if float(evals.min()) < -1e-10 * float(evals.max()):
            raise InvalidInputError("cov must be positive semi-definite")
        self.register_buffer("evals", evals.clamp_min(0).to(mean.dtype))
        self.register_buffer("evecs", evecs.to(mean.dtype))

    def check_input(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ShapeError(f"expected samples of shape (B, {', '.join(map(str, self.event_shape))}), "
                             f"got {tuple(x.shape)}")

    def _ck_apply(self, v: torch.Tensor, a: float, s: float, power: float) -> torch.Tensor:
        """``(a²Σ + s²I)^power v`` for flattened ``v``."""
        d = (a * a * self.evals + s * s) ** power
        return ((v @ self.evecs) * d) @ self.evecs.T

    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        k = k.to("cpu")
        a = self.schedule.a(k).to(self.evecs.dtype).unsqueeze(1)  # (B, 1): every sample at its own level
        s = self.schedule.s(k).to(self.evecs.dtype).unsqueeze(1)
        u = _flat(x).to(self.evecs.dtype) - a * self.mean.flatten().to(self.evecs.dtype)
        out = s * (((u @ self.evecs) / (a * a * self.evals + s * s)) @ self.evecs.T)
        return out.to(x.dtype).reshape(x.shape)

    # -- exact references -----------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.mean.numel(), generator=generator, dtype=self.mean.dtype)
        x = self.mean.flatten() + (z * self.evals.sqrt()) @ self.evecs.T
        return x.reshape((n,) + self.event_shape)

    def posterior_cov_x0(self, k: int) -> torch.Tensor:
        a, s = float(self.schedule.a(k)), float(self.schedule.s(k))
        cinv = self._ck_apply(torch.eye(self.cov.shape[0], dtype=self.cov.dtype), a, s, -1.0)
        return self.cov - a * a * self.cov @ cinv @ self.cov

    def pf_ode_map(self, x: torch.Tensor, k: int, j: int) -> torch.Tensor:
        """Exact probability-flow ODE map from level ``k`` to level ``j``: ``a_j m + (C_j C_k⁻¹)^½ (x - a_k m)``."""
        ak, sk = float(self.schedule.a(k)), float(self.schedule.s(k))
        aj, sj = float(self.schedule.a(j)), float(self.schedule.s(j))
        m = self.mean.flatten().to(x.dtype)
        ratio = ((aj * aj * self.evals + sj * sj) / (ak * ak * self.evals + sk * sk)).sqrt()
        u = ((_flat(x) - ak * m) @ self.evecs) * ratio @ self.evecs.T
        return (aj * m + u).reshape(x.shape)

    def posterior(self, matrix: torch.Tensor, y: torch.Tensor, sigma_y: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``(mean, cov)`` of ``x0 | y`` for ``y = matrix @ x0 + N(0, sigma_y² I)`` (flattened)."""
        cov_inv = torch.linalg.inv(self.cov)
        post_cov = torch.linalg.inv(cov_inv + matrix.T @ matrix / sigma_y**2)
        post_mean = post_cov @ (cov_inv @ self.mean.flatten() + matrix.T @ y.flatten() / sigma_y**2)
        return post_mean, post_cov


def register_mixture(prior: torch.nn.Module, weights, means, covs) -> None:
    """Check a Gaussian mixture (weights ``(K,)``, means ``(K, ...)``, covariances ``(K, d, d)``) and store it
    on ``prior`` as buffers ``weights`` (normalised), ``means`` ``(K, d)``, ``covs`` and ``event_shape``."""
    means = torch.as_tensor(means)
    means = means if means.is_floating_point() else means.double()
    K, d = means.shape[0], means[0].numel()
    weights = torch.as_tensor(weights, dtype=means.dtype)
    covs = torch.as_tensor(covs, dtype=means.dtype)
    if weights.shape != (K,) or covs.shape != (K, d, d):
        raise ShapeError(f"expected weights (K,), means (K, ...), covs (K, d, d) with K={K}, d={d}")
    prior.event_shape = tuple(means.shape[1:])
    prior.register_buffer("weights", weights / weights.sum())
    prior.register_buffer("means", means.reshape(K, d))
    prior.register_buffer("covs", covs)


class GMMPrior(DiffusionPrior):
    """Gaussian mixture ``sum_i w_i N(m_i, Σ_i)`` on flattened samples of any shape.

    Args:
        weights: ``(K,)`` mixture weights (normalised here).
        means: ``(K, *event_shape)``.
        covs: ``(K, d, d)``.
    """

    kind = "analytic"
    clamp_output = False  # test oracles compare raw values

    def __init__(self, weights, means, covs, schedule: VPSchedule | None = None, data_range=(0.0, 1.0)) -> None:
        super().__init__(schedule or VPSchedule.linear(), channels=None, data_range=data_range)
        register_mixture(self, weights, means, covs)

    def log_prob(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """``log p_k(x)`` of the diffused mixture, differentiable, ``(B,)``."""
        a, s = self.schedule.a(k).item(), self.schedule.s(k).item()
        d = self.means.shape[1]
        eye = torch.eye(d, dtype=self.covs.dtype)
        comps = []
        for w, m, c in zip(self.weights, self.means, self.covs):
            ck = a * a * c + s * s * eye
            dist = torch.distributions.MultivariateNormal(a * m, covariance_matrix=ck)
            comps.append(dist.log_prob(_flat(x).to(ck.dtype)) + math.log(float(w)))
        return torch.logsumexp(torch.stack(comps), dim=0)

    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Exact ``eps* = s_k Σ_i r_i(x) C_ik⁻¹ (x - a_k m_i)``, ``C_ik = a_k² Σ_i + s_k² I``, with responsibilities
        ``r_i ∝ w_i N(x; a_k m_i, C_ik)``; differentiable in ``x`` (closed form, no autograd inside)."""
        flat = _flat(x)
        out = torch.empty_like(flat)
        d = self.means.shape[1]
        eye = torch.eye(d, dtype=self.covs.dtype, device=self.covs.device)
        for level in torch.unique(k):
            rows = k == level
            a, s = float(self.schedule.a(int(level))), float(self.schedule.s(int(level)))
            chol = torch.linalg.cholesky(a * a * self.covs + s * s * eye)  # (K, d, d)
            diff = flat[rows].to(chol.dtype).unsqueeze(0) - a * self.means.unsqueeze(1)  # (K, n, d)
            white = torch.linalg.solve_triangular(chol, diff.transpose(1, 2), upper=False)  # L⁻¹ (x - a m)
            log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)
            log_r = torch.log(self.weights)[:, None] - 0.5 * (white**2).sum(1) - 0.5 * log_det[:, None]
            resp = torch.softmax(log_r, dim=0)  # (K, n)
            cinv_diff = torch.linalg.solve_triangular(chol.transpose(1, 2), white, upper=True)  # (K, d, n)
            out[rows] = (s * (resp.unsqueeze(1) * cinv_diff).sum(0).T).to(x.dtype)
        return out.reshape(x.shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        chol = torch.linalg.cholesky(self.covs)
        x = self.means[idx] + (chol[idx] @ z.unsqueeze(-1)).squeeze(-1)
        return x.reshape((n,) + self.event_shape)

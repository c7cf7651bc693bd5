"""The variance-exploding (VE) prior family of the score-SDE framework (Song et al., ICLR 2021), SAMPLERS.md §1.2.

``x_σ = x0 + σ eps`` with the geometric noise level ``σ(t) = σ_min (σ_max/σ_min)^t``, ``t ∈ [0, 1]``, and a
score model ``s(x, σ) ≈ ∇ log p_σ(x)``. Members:

* :class:`VEGaussianPrior`, :class:`VEGMMPrior` — the analytic Gaussian and Gaussian-mixture priors in VE
  form, exact scores and marginals (test oracles);
* :class:`VPAsVE` — any VP prior through the exact change of variables ``x̃ = x/a_k``, ``σ_k = s_k/a_k``:
  ``p̃_σ(x̃) ∝ p_k(a_k x̃)`` so ``∇ log p̃(x̃) = -eps(a_k x̃, k) / σ_k``. The VE samplers run on the shipped VP
  priors through it (:func:`as_ve`); noise levels are snapped to the VP prior's training levels, where the
  conversion is exact.

The bound view (:class:`VEView`) gives samplers ``score(x, σ)`` (one network call), ``denoise`` (Tweedie,
``x + σ² s``), the noise grid and the initial state ``σ_max z``.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from ..errors import InvalidInputError, ShapeError
from .analytic import register_mixture
from .base import Prior, Reparameterised, VPPrior
from .view import ModelView, randn


class VESchedule:
    """Geometric noise levels ``σ(t) = σ_min (σ_max/σ_min)^t`` (score SDE ``VESDE``; CIFAR-10 defaults)."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        if not 0 < sigma_min < sigma_max:
            raise InvalidInputError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def sigma(self, t: float) -> float:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def sigmas(self, n: int) -> list[float]:
        """``n`` levels from ``σ_max`` down to ``σ_min``, geometric (the official ``discrete_sigmas`` reversed)."""
        if n < 1:
            raise InvalidInputError(f"steps must be a positive integer, got {n}")
        if n == 1:
            return [self.sigma_max]
        return [float(v) for v in np.exp(np.linspace(math.log(self.sigma_max), math.log(self.sigma_min), n))]

    def fingerprint(self) -> str:
        return hashlib.sha256(f"ve-{self.sigma_min!r}-{self.sigma_max!r}".encode()).hexdigest()[:16]


class LevelVESchedule(VESchedule):
    """The VE levels ``σ_k = s_k / a_k`` of a VP schedule; grids are geometric, snapped to those levels."""

    def __init__(self, vp_schedule) -> None:
        abar = vp_schedule.alphas_cumprod.double()
        self.table = ((1 - abar) / abar).sqrt().numpy()  # increasing in k
        self.vp = vp_schedule
        super().__init__(float(self.table[0]), float(self.table[-1]))

    def level(self, sigma: float) -> int:
        """The VP level whose σ_k is nearest to ``sigma`` (in log σ)."""
        return int(np.argmin(np.abs(np.log(self.table) - math.log(sigma))))

    def sigmas(self, n: int) -> list[float]:
        out: list[float] = []
        for s in super().sigmas(n):
            k = self.level(s)
            v = float(self.table[k])
            if not out or v < out[-1]:
                out.append(v)
        return out

    def fingerprint(self) -> str:
        return self.vp.fingerprint()


class VEView(ModelView):
    """A VE prior bound to one run: the state is ``x_σ = x0 + σ eps`` in the prior's model space."""

    def score(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """``∇ log p_σ(x)`` (one network call)."""
        self.nfe += 1
        return self.prior.score(x, float(sigma))

    def denoise(self, x: torch.Tensor, sigma: float, score: torch.Tensor | None = None) -> torch.Tensor:
        """Tweedie's ``E[x0 | x_σ] = x + σ² ∇ log p_σ(x)``."""
        return x + sigma * sigma * (self.score(x, sigma) if score is None else score)

    def sigmas(self, n: int) -> list[float]:
        return self.schedule.sigmas(n)

    def initial_state(self, generator: torch.Generator | None) -> torch.Tensor:
        """The given ``x_init``, else ``σ_max z``."""
        if self.x_init is not None:
            return self.x_init
        return self.schedule.sigma_max * randn(self.shape, generator, dtype=self.dtype, device=self.device)


class VEPrior(Prior):
    """The VE family: subclasses implement :meth:`score` ``(x, σ) -> ∇ log p_σ(x)`` in model space."""

    kind = "ve"
    family_label = "variance-exploding (score)"
    hint = "a VE score prior, or any pixel-space VP --prior (converted exactly)"
    view_class = VEView

    def __init__(self, schedule: VESchedule, channels: int | None, data_range=(-1.0, 1.0)) -> None:
        super().__init__(channels, data_range)
        self.schedule = schedule

    def score(self, x: torch.Tensor, sigma: float) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class VEGaussianPrior(VEPrior):
    """``x0 ~ N(mean, cov)`` in VE form: ``p_σ = N(mean, cov + σ² I)``, exact score ``-(Σ + σ²I)⁻¹ (x - m)``."""

    kind = "analytic-ve"
    clamp_output = False  # test oracles compare raw values

    def __init__(self, mean, cov, sigma_min: float = 0.01, sigma_max: float = 50.0, data_range=(0.0, 1.0)) -> None:
        super().__init__(VESchedule(sigma_min, sigma_max), channels=None, data_range=data_range)
        mean = torch.as_tensor(mean)
        mean = mean if mean.is_floating_point() else mean.double()
        cov = torch.as_tensor(cov, dtype=mean.dtype)
        d = mean.numel()
        if cov.shape != (d, d):
            raise ShapeError(f"cov must have shape ({d}, {d}) for a mean with {d} entries, got {tuple(cov.shape)}")
        self.event_shape = tuple(mean.shape)
        evals, evecs = torch.linalg.eigh(cov)
        if float(evals.min()) < -1e-10 * float(evals.max()):
            raise InvalidInputError("cov must be positive semi-definite")
        self.register_buffer("mean", mean)
        self.register_buffer("cov", cov)
        self.register_buffer("evals", evals.clamp_min(0))
        self.register_buffer("evecs", evecs)

    def check_input(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ShapeError(f"expected samples of shape (B, {', '.join(map(str, self.event_shape))}), "
                             f"got {tuple(x.shape)}")

    def score(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        self.check_input(x)
        u = _flat(x) - self.mean.flatten().to(x.dtype)
        inv = 1.0 / (self.evals + sigma * sigma)
        return (-((u @ self.evecs) * inv) @ self.evecs.T).reshape(x.shape)

    def marginal_cov(self, sigma: float) -> torch.Tensor:
        """Covariance of ``x_σ``: ``Σ + σ² I``."""
        return self.cov + sigma * sigma * torch.eye(self.cov.shape[0], dtype=self.cov.dtype)

    def pf_ode_map(self, x: torch.Tensor, sigma_from: float, sigma_to: float) -> torch.Tensor:
        """Exact VE probability-flow map: ``m + ((Σ + σ_to²)(Σ + σ_from²)⁻¹)^½ (x - m)``."""
        m = self.mean.flatten().to(x.dtype)
        ratio = ((self.evals + sigma_to**2) / (self.evals + sigma_from**2)).sqrt()
        return (m + ((_flat(x) - m) @ self.evecs) * ratio @ self.evecs.T).reshape(x.shape)


class VEGMMPrior(VEPrior):
    """Gaussian mixture ``Σ_i w_i N(m_i, Σ_i)`` in VE form; score by autograd of the exact log density."""

    kind = "analytic-ve"
    clamp_output = False

    def __init__(self, weights, means, covs, sigma_min: float = 0.01, sigma_max: float = 50.0,
                 data_range=(0.0, 1.0)) -> None:
        super().__init__(VESchedule(sigma_min, sigma_max), channels=None, data_range=data_range)
        register_mixture(self, weights, means, covs)

    def log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        eye = torch.eye(self.means.shape[1], dtype=self.covs.dtype)
        comps = [torch.distributions.MultivariateNormal(m, covariance_matrix=c + sigma * sigma * eye)
                 .log_prob(_flat(x)) + math.log(float(w)) for w, m, c in zip(self.weights, self.means, self.covs)]
        return torch.logsumexp(torch.stack(comps), dim=0)

    def score(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.log_prob(xr, sigma).sum(), xr)
        return g


class VPAsVE(Reparameterised, VEPrior):
    """A VP prior seen as a VE prior through ``x̃ = x / a_k``, ``σ_k = s_k / a_k`` (exact at its levels).

    Units, channels, padding multiple and fingerprint are the VP prior's; every score call is one VP network
    call at the level of ``σ``.
    """

    def __init__(self, vp: VPPrior) -> None:
        super().__init__(LevelVESchedule(vp.schedule), channels=vp.channels, data_range=vp.data_range)
        self.wrap(vp, "ve")

    def score(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        k = self.schedule.level(sigma)
        a = float(self.vp.schedule.a(k))
        return -self.vp.eps(a * x, k) / float(self.schedule.table[k])


def as_ve(prior: Prior) -> Prior:
    """``prior`` itself if it is a VE prior, a VP prior wrapped by :class:`VPAsVE`."""
    if isinstance(prior, VPPrior):
        return VPAsVE(prior)
    return prior

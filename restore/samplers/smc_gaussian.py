"""The exact Gaussian transition of twisted SMC for an affine measurement (``smc --set proposal=gaussian``).

For ``y = A x0 + σ_y n`` the twist at level ``j`` is ΠGDM's Gaussian likelihood (Song et al. 2023)

    p̃_j(y | x_j) = N(y; A x0̂_j(x_j), σ_y² I + r_j² A Aᵀ),   r_j² = v s_j² / (a_j² v + s_j²),

the exact ``p(y | x_j)`` when the prior is ``N(m, v I)`` in model units (``v`` is smc's ``tau2``: ΠGDM's choice
is ``1``, the TDS code's image default ``0.12``; ``r_j`` is converted to public units). With ``tau2=spectral``
``v`` is a per-frequency variance (:func:`spectral_variance`, the shipped stationary Gaussian fit of natural
images) and ``r_j²``, ``γ_j`` below are per slot: the twist is then ``N(y; A x0̂_j, σ_y² I + A R_j Aᵀ)`` with
``R_j`` diagonal in the Fourier basis, which the SVD of a circular operator shares. The proposal is the product of the reverse step ``N(x_j; μ, σ² I)`` and that twist
with the denoiser linearised around the reverse mean, ``x0̂_j(x_j) ≈ x0̂_k(x_k) + γ_j (x_j - μ)`` with the same
Gaussian's Jacobian ``γ_j = a_j r_j² / s_j²``: a Gaussian, sampled exactly in the coordinates of the operator's
SVD ``A = U diag(s) Vᵀ`` (circular blurs, masks, average pooling, colourisation, dense matrices), where its
precision is diagonal:

    p_i = 1/σ² + γ² s_i² / (σ_y² + r² s_i²),   mean_i = γ s_i [Uᵀ(y - A x0̂_k)]_i / ((σ_y² + r² s_i²) p_i).

For the prior ``N(m, I)``, ``v = 1`` and the chain's ``fixed-large`` variance every piece is exact (the tower property
makes ``x0̂_j(μ) = x0̂_k(x_k)``), so the proposal is the true ``p(x_j | x_k, y)`` and the incremental weights are
one. For a network the weights ``p(x_j | x_k) p̃_j(y | x_j) / (q(x_j | x_k, y) p̃_k(y | x_k))`` use this
proposal's exact density and the twist evaluated with the network at ``x_j``, so SMC stays asymptotically
exact whatever the linearisation's error. No VJP: one network call per particle and step.
"""
from __future__ import annotations

import math

import torch

from ..errors import IncompatibleError
from ..operators.svd import FourierSVD, require_svd


def gaussian_denoiser(a: float, s: float, v):
    """``(Var[x0 | x_k], d x0̂ / d x_k)`` per entry for a prior ``N(m, v I)`` at level ``(a, s)``, model units.

    ``v`` is a number or a tensor of per-slot variances (the result then has its shape). ``v = inf`` is the
    flat prior: ``(s²/a², 1/a)`` (the TDS code's default twist variance ``(1 - ᾱ)/ᾱ``)."""
    if not isinstance(v, torch.Tensor) and v == float("inf"):
        return s * s / (a * a), 1.0 / a
    denom = a * a * v + s * s
    return v * s * s / denom, a * v / denom


def spectral_variance(view, svd) -> torch.Tensor:
    """Per-slot prior variance ``(1, C·H·W)`` float64, model units, of the shipped stationary Gaussian fit of
    natural images (:func:`restore.priors.default_stationary_prior`) in the slots of a circular operator's
    :class:`~restore.operators.svd.FourierSVD` (the per-channel unitary 2D DFT).

    Colour channels get the marginal power of their channel (the fit's colour decorrelation is dropped, as the
    operator's basis acts per channel): the twist is an approximation anyway, the weights stay exact."""
    from ..priors.stationary import default_stationary_prior

    if not isinstance(svd, FourierSVD):
        raise IncompatibleError("smc tau2=spectral shapes the twist by frequency and needs a circular operator "
                                "(e.g. gaussian-blur with circular boundary); use --set tau2=0.12")
    c, h, w = (int(v) for v in view.x_shape[1:])
    fit = default_stationary_prior(c)
    half = fit.power(h, w)  # (C', H, W//2 + 1): the radial spectrum on the rfft grid
    cols = torch.arange(w)
    full = half[..., torch.minimum(cols, (w - cols) % w)]  # |f| is even, so the full grid mirrors it
    power = torch.einsum("cd,dhw->chw", fit.basis**2, full)  # each channel's marginal power
    # the fit's units are [-1, 1] images: two model units per public unit
    return (power * (float(view.prior.model_scale) / 2) ** 2).reshape(1, -1)


def _sq(c: torch.Tensor) -> torch.Tensor:
    """``|c|²`` of spectral coefficients (complex for Fourier bases)."""
    return c.real**2 + c.imag**2 if c.is_complex() else c * c


class LinearisedTwist:
    """What both Gaussian transitions share: the twist's variance and the denoiser's slope at a level, from
    the prior variance ``v`` (model units) and the prior's ``scale`` (model units per public unit)."""

    v: float | torch.Tensor
    scale: float

    def twist_parameters(self, view, k: int) -> tuple[float, float]:
        """``(r_k², γ_k)``: the twist's x0 variance in public units² and the linearised denoiser's slope
        ``d x0̂_public / d x_k`` (model -> public units); numbers, or ``(1, slots)`` float64 for a spectral ``v``."""
        r2, gamma = gaussian_denoiser(*view.coefficients(k), self.v)
        return r2 / self.scale**2, gamma / self.scale


class GaussianTransition(LinearisedTwist):
    """The twist and the exact Gaussian proposal of one run with ``n`` particles per problem.

    Args:
        view: the bound model view (its problem's operator needs a fast SVD, its noise is Gaussian, ``y`` real).
        n: particles per problem; states are particle-major ``(n·B, ...)``.
        v: the variance of the Gaussian prior the twist and the linearisation assume, model units (``inf``:
            flat; ``"spectral"``: :func:`spectral_variance`, per Fourier slot).
    """

    def __init__(self, view, n: int, v) -> None:
        problem = view.problem
        if problem.y.is_complex():
            raise IncompatibleError("smc proposal=gaussian needs a real measurement; use --set proposal=gradient")
        self.svd = require_svd(problem.operator, view.x_shape, "smc with proposal=gaussian",
                               ("smc --set proposal=gradient",))
        y = problem.y.to(view.dtype)
        self.uty = self.svd.Ut(y).repeat(n, 1)  # (n·B, slots), particle-major
        s = self.svd.singulars(y)
        self.s2 = (s.repeat(n, 1) if s.shape[0] > 1 else s).to(torch.float64) ** 2
        self.s = self.s2.sqrt().to(view.dtype)
        self.sigma_y2 = float(problem.noise.sigma) ** 2
        self.scale = float(view.prior.model_scale)
        self.v = spectral_variance(view, self.svd) if v == "spectral" else v

    def residual(self, view, x0: torch.Tensor) -> torch.Tensor:
        """``Uᵀ(y - A x0̂)`` in the SVD's slots for a model-space ``x0̂`` ``(n·B, ...)``."""
        return self.uty - self.s * self.svd.Vt(view.from_model(x0))

    def log_twist(self, view, x0: torch.Tensor, k: int) -> torch.Tensor:
        """``log p̃_k(y | x_k)`` per particle ``(n·B,)`` float64, relative to ``N(y; ·, σ_y² I)``'s normaliser and
        up to an ``x``- and level-independent constant (the part of ``y`` outside the slots)."""
        r2, _ = self.twist_parameters(view, k)
        var = self.sigma_y2 + r2 * self.s2  # (1 | n·B, slots), float64
        quad = (_sq(self.residual(view, x0)).double() / var).sum(1)
        return -0.5 * quad - 0.5 * torch.log(var / self.sigma_y2).sum(1)

    def propose(self, view, mean: torch.Tensor, x0: torch.Tensor, j: int, std: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x_j ~ q(· | x_k, y)`` around the reverse mean ``mean`` ``(n·B, ...)`` (``x0`` is ``x0̂_k``).

        Returns ``(x_j, log p(x_j | x_k) - log q(x_j | x_k, y))``, the latter ``(n·B,)`` float64.
        """
        r2, gamma = self.twist_parameters(view, j)
        var_y = self.sigma_y2 + r2 * self.s2
        precision = 1.0 / std**2 + gamma**2 * self.s2 / var_y  # float64 (1 | n·B, slots)
        gain = (gamma * self.s2.sqrt() / (var_y * precision)).to(view.dtype)
        z = view.noise_like(mean, generator)
        spectral = gain * self.residual(view, x0) + self.svd.Vt(z) * precision.rsqrt().to(view.dtype)
        u = self.svd.V(spectral).to(mean.dtype).reshape(mean.shape)
        # p(x_j | x_k) = N(mean, std² I); q = N(mean + V m, V diag(1/p) Vᵀ), whose whitened draw is z itself
        log_p = -0.5 * (u.double() ** 2).flatten(1).sum(1) / std**2
        log_q = -0.5 * (z.double() ** 2).flatten(1).sum(1) + 0.5 * torch.log(precision * std**2).sum(1)
        return mean + u, log_p - log_q


def nfe_x0(view, x: torch.Tensor, k: int, n: int, particle_batch: int | None) -> torch.Tensor:
    """``x0̂_k`` of a particle-major state ``(n·B, ...)``, ``particle_batch`` particles at a time (no VJP)."""
    b = x.shape[0] // n
    chunk = n if particle_batch is None else particle_batch
    out = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            g = min(chunk, n - start)
            out.append(view.predict(x[start * b:(start + g) * b], k)[1])
            view.nfe += g - 1  # predict counted one call; cost is one evaluation per particle
    return torch.cat(out)


#: Measurement entries per problem up to which the CG transition computes ``A Aᵀ``'s spectrum (a dense
#: eigendecomposition of that size) for the log-determinants of ``log Ẑ``.
EXACT_LOGDET_ENTRIES = 4096


def gram_eigenvalues(op, y_shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
    """The eigenvalues ``(m,)`` float64 of ``A Aᵀ`` for a measurement of ``y_shape`` ``(B, ...)`` (``m`` entries
    per problem; the operator acts alike on every entry), or ``None`` above :data:`EXACT_LOGDET_ENTRIES`."""
    m = math.prod(y_shape[1:])
    if m > EXACT_LOGDET_ENTRIES:
        return None
    basis = torch.eye(m, dtype=dtype).reshape((m,) + tuple(y_shape[1:]))
    with torch.no_grad():
        gram = torch.cat([op(op.adjoint(part)).reshape(part.shape[0], m) for part in basis.split(256)]).double()
    return torch.linalg.eigvalsh((gram + gram.T) / 2).clamp_min(0)


class MatrixFreeTransition(LinearisedTwist):
    """The same twist and exact Gaussian proposal for any linear operator, with CG solves instead of an SVD.

    The proposal is the Gaussian posterior of ``x_j`` in the linearised model ``x_j ~ N(μ, σ² I)``,
    ``x0 = x0̂_k + γ (x_j - μ) + r e``, ``y = A x0 + σ_y n``. It is drawn exactly by Matheron's rule: a joint
    prior draw ``(x', y')`` moved by ``γ σ² Aᵀ W_c⁻¹ (y - y')`` with ``W_c = σ_y² I + (r² + γ² σ²) A Aᵀ``. By Bayes'
    rule in that model, ``p(x_j | x_k) / q(x_j | x_k, y) = p̃_lin(y | x_k) / p̃_lin(y | x_j)``, two Gaussian
    quadratic forms, so no density of ``q`` is needed. Every solve is CG on a ``σ_y² I + c A Aᵀ`` in
    measurement space, to ``cg_tol`` (the weights are exact to that tolerance).

    The log-determinants of those covariances are the same for every particle and cancel in the weights,
    but ``log Ẑ`` needs them: they come from the exact spectrum of ``A Aᵀ`` when the measurement has at most
    :data:`EXACT_LOGDET_ENTRIES` entries per problem (then ``log Ẑ`` is the SVD path's), else ``log Ẑ`` is not
    reported (:attr:`gram_eigenvalues` is ``None``).

    Args:
        view: the bound model view (linear operator acting alike on every batch entry, Gaussian noise, real ``y``).
        n: particles per problem; states are particle-major ``(n·B, ...)``.
        v: the Gaussian prior variance behind the twist (a number; ``inf``: flat).
        cg_iters, cg_tol: CG iterations at most and relative residual per solve.
    """

    def __init__(self, view, n: int, v: float, cg_iters: int, cg_tol: float) -> None:
        problem = view.problem
        if problem.y.is_complex():
            raise IncompatibleError("smc proposal=gaussian needs a real measurement; use --set proposal=gradient")
        op, b = problem.operator, problem.y.shape[0]
        if b > 1 and op.batch_slice(0, b) is not op:
            raise IncompatibleError("smc proposal=gaussian without an SVD needs an operator that acts alike on every "
                                    "batch entry; run the problems one by one or use --set proposal=gradient")
        self.op = op
        self.y = problem.y.to(view.dtype).repeat((n,) + (1,) * (problem.y.ndim - 1))
        self.sigma_y2 = float(problem.noise.sigma) ** 2
        self.scale = float(view.prior.model_scale)
        self.v, self.cg_iters, self.cg_tol = v, cg_iters, cg_tol
        self.solves = 0  # CG iterations in all, for the diagnostics
        self.gram_eigenvalues = gram_eigenvalues(op, tuple(problem.y.shape), self.y.dtype)

    def solve(self, c: float, rhs: torch.Tensor) -> torch.Tensor:
        """``(σ_y² I + c A Aᵀ)⁻¹ rhs`` for a measurement-space ``rhs`` ``(n·B, ...)``."""
        from ..operators.cg import conjugate_gradient

        out, info = conjugate_gradient(lambda u: self.sigma_y2 * u + c * self.op(self.op.adjoint(u)), rhs,
                                       max_iter=self.cg_iters, tol=self.cg_tol)
        self.solves += info.iterations
        return out

    def log_gaussian(self, c: float, residual: torch.Tensor) -> torch.Tensor:
        """``log N(r; 0, σ_y² I + c A Aᵀ)`` per particle, float64, relative to ``N(·; 0, σ_y² I)``'s normaliser;
        without the (particle-independent) log-determinant when the spectrum is not known."""
        quad = -0.5 * (residual * self.solve(c, residual)).flatten(1).sum(1).double()
        if self.gram_eigenvalues is None:
            return quad
        return quad - 0.5 * torch.log1p(c * self.gram_eigenvalues / self.sigma_y2).sum()

    def log_twist(self, view, x0: torch.Tensor, k: int) -> torch.Tensor:
        """``log p̃_k(y | x_k)`` per particle ``(n·B,)`` float64 (up to a particle-independent constant when the
        spectrum of ``A Aᵀ`` is not known)."""
        r2, _ = self.twist_parameters(view, k)
        return self.log_gaussian(r2, self.y - self.op(view.from_model(x0)))

    def propose(self, view, mean: torch.Tensor, x0: torch.Tensor, j: int, std: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x_j ~ q(· | x_k, y)`` around the reverse mean ``mean`` (``x0`` is ``x0̂_k``); returns ``(x_j,
        log p(x_j | x_k) - log q(x_j | x_k, y))``, the latter up to a particle-independent constant."""
        r2, gamma = self.twist_parameters(view, j)
        c = r2 + gamma**2 * std**2  # x0's variance in the linearised model, public units²
        x0_public = view.from_model(x0)
        z, e = view.noise_like(mean, generator), view.noise_like(mean, generator)
        y_prior = self.op(x0_public + gamma * std * z + r2**0.5 * e)
        y_prior = y_prior + self.sigma_y2**0.5 * view.noise_like(y_prior, generator)
        shift = gamma * std**2 * self.op.adjoint(self.solve(c, self.y - y_prior))
        x = mean + std * z + shift.reshape(mean.shape).to(mean.dtype)
        log_ratio = (self.log_gaussian(c, self.y - self.op(x0_public))
                     - self.log_gaussian(r2, self.y - self.op(x0_public + gamma * (x - mean))))
        return x, log_ratio

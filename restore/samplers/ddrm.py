"""DDRM — Denoising Diffusion Restoration Models (Kawar, Elad, Ermon, Song; NeurIPS 2022), SAMPLERS.md §10.3.

Works in the spectral coordinates of the operator's SVD ``A = U diag(s) Vᵀ`` (the operator's ``svd``
capability): ``x̄ = Vᵀx`` and ``ȳ = Uᵀy / s``, with the state written as ``x_k / a_k = x0 + σ_k ε`` (VE
levels ``σ_k = s_k / a_k``) and mapped to public units, where ``y`` and the noise level ``σ_y`` live. Given
the Tweedie estimate ``x̄0`` each component moves to level ``σ′`` by one of three rules:

* null space (``sᵢ = 0``): ``x̄′ = x̄0 + √(1-η²) σ′ Vᵀε̂ + η σ′ z``;
* less noisy than ``y`` (``σ′ sᵢ < σ_y``): ``x̄′ = x̄0 + √(1-η²) σ′ (ȳ - x̄0) sᵢ/σ_y + η σ′ z``;
* noisier than ``y`` (``σ′ sᵢ ≥ σ_y``): ``x̄′ = (1-η_b) x̄0 + η_b ȳ + √(σ′² - η_b² σ_y²/sᵢ²) z``.

The start draws ``x̄_T ~ N(ȳ, σ_T² - σ_y²/sᵢ²)`` on the components observed more precisely than ``σ_T``.
The noise ``z`` is drawn in pixel space and mapped with ``Vᵀ`` (white in any orthonormal basis). Cost: one
network evaluation per step, no backpropagation; the transforms are FFTs or per-pixel/per-block maps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from ..priors.schedules import Spacing
from ..operators.svd import require_svd
from .base import Sampler

#: Samplers named in the error when the operator has no SVD.
WITHOUT_SVD = ("pigdm", "diffpir", "pnp-hqs", "dds", "dps", "red-diff")


@dataclass(frozen=True)
class DDRMConfig:
    """Attributes:
        steps: diffusion steps (paper and official code: 20).
        eta: η for the null space and the components less noisy than y (paper and code ``etaA = etaC``:
            0.85).
        eta_b: η_b for the components noisier than y (paper and code ``etaB``: 1.0).
        spacing: respacing rule (code: ``range(0, T, T // steps)``, i.e. ``uniform``).
        boundary: ``paper`` puts a component with ``σ′ sᵢ = σ_y`` in the "noisier than y" branch (``≥``), so
            the last step of a noiseless run returns ``ȳ`` on the observed components and ``A x = y``
            exactly; ``code`` uses the official code's strict ``>``, whose last noiseless step keeps the
            network's estimate there.
    """

    steps: int = 20
    eta: float = 0.85
    eta_b: float = 1.0
    spacing: Spacing = "uniform"
    boundary: Literal["paper", "code"] = "paper"


class DDRM(Sampler):
    Config = DDRMConfig
    requires = ("operator", "linear", "svd")  # "svd" is checked in check_view, once the padded shape is known

    def validate(self) -> None:
        cfg = self.config
        if not (0 <= cfg.eta <= 1 and 0 <= cfg.eta_b <= 1):
            raise InvalidInputError(f"need 0 <= eta <= 1 and 0 <= eta_b <= 1, got eta={cfg.eta}, eta_b={cfg.eta_b}")

    def check_view(self, view) -> None:
        self.svd = require_svd(view.problem.operator, view.x_shape, "ddrm", WITHOUT_SVD)

    def _levels(self, view, k: int) -> float:
        """VE noise level of level ``k`` in public units (``-1``: clean)."""
        if k < 0:
            return 0.0
        a, s = view.coefficients(k)
        return s / a / view.prior.model_scale

    def _to_state(self, view, spectral: torch.Tensor, k: int) -> torch.Tensor:
        """Spectral public VE coefficients at level ``k`` -> the VP state in model units."""
        u = self.svd.V(spectral).to(view.dtype)
        a = view.coefficients(k)[0] if k >= 0 else 1.0
        return a * view.to_model(u)

    def _noise(self, view, like: torch.Tensor, generator) -> torch.Tensor:
        return self.svd.Vt(view.noise_like(like, generator))

    def sample(self, view, generator, callback):
        cfg, svd, problem = self.config, self.svd, view.problem
        sigma_y = float(problem.noise.sigma)
        y = problem.y.to(view.device, view.dtype)
        s = svd.singulars(y)
        observed = s > 0
        s_safe = torch.where(observed, s, torch.ones_like(s))
        uty = svd.Ut(y)
        y_bar = uty / s_safe  # ȳ on the observed components (unused elsewhere)
        inv_s = torch.where(observed, sigma_y / s_safe, torch.full_like(s, float("inf")))  # σ_y / sᵢ

        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        k0 = pairs[0][0]
        sig_T = self._levels(view, k0)
        template = torch.zeros(view.x_shape, dtype=view.dtype, device=view.device)
        if view.x_init is not None:
            x = view.x_init
        else:
            z = self._noise(view, template, generator)
            start = observed & (sig_T > inv_s)
            spread = torch.where(start, (sig_T**2 - torch.where(start, inv_s, torch.zeros_like(s)) ** 2).clamp_min(0)
                                 .sqrt(), torch.full_like(s, sig_T))
            x = self._to_state(view, torch.where(start, y_bar, torch.zeros_like(y_bar)) + spread * z, k0)

        for i, (k, j) in enumerate(pairs):
            with torch.no_grad():
                eps, x0 = view.predict(x, k)
                sig_next = self._levels(view, j)
                x0_bar = svd.Vt(view.from_model(x0))
                z = self._noise(view, template, generator)
                rest = (1 - cfg.eta**2) ** 0.5 * sig_next
                # null space: DDIM-like move with the network's noise estimate
                out = x0_bar + rest * svd.Vt(eps) + cfg.eta * sig_next * z
                if cfg.boundary == "paper":
                    before = observed & (sig_next >= inv_s)
                else:
                    before = observed & (sig_next > inv_s)
                after = observed & (sig_next < inv_s)
                if bool(after.any()):  # less noisy than y: pull towards ȳ by the ratio of noise levels
                    toward_y = x0_bar + rest * (uty - s * x0_bar) / sigma_y + cfg.eta * sig_next * z
                    out = torch.where(after, toward_y, out)
                # noisier than y: the measurement itself, with the missing noise added
                b_std = (sig_next**2 - cfg.eta_b**2 * torch.where(before, inv_s, torch.zeros_like(s)) ** 2)
                noisy_y = (1 - cfg.eta_b) * x0_bar + cfg.eta_b * y_bar + b_std.clamp_min(0).sqrt() * z
                out = torch.where(before, noisy_y, out)
                x = self._to_state(view, out, j)
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

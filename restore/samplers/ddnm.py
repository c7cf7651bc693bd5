"""DDNM / DDNM⁺ — zero-shot restoration by range–null-space decomposition (Wang, Yu, Zhang; ICLR 2023),
SAMPLERS.md §10.3.

Per step: the Tweedie estimate ``x0̂`` is corrected in the range of ``Aᵀ`` and kept in the null space,
``x̂0 = x0̂ - Σ_t A⁺(A x0̂ - y)``, then re-noised with the official code's noise fraction η:
``x_j = a_j x̂0 + s_j (η z + √(1-η²) ε̂)``. Noiseless (``σ_y = 0``) this is DDNM, ``Σ_t = I``: the output
satisfies ``A x = y``. With noise it is the SVD form of DDNM⁺ (the official ``svd_based_ddnm_plus``): in
the operator's spectral coordinates component ``i`` is corrected by ``λᵢ = 1`` while the next level's noise
``s_j`` is at least ``a_j σ_y / sᵢ`` and by ``λᵢ = sᵢ s_j √(1-η²) / (a_j σ_y)`` below it, and the noise added
there is cut to what is missing, ``√(s_j² - (a_j σ_y / sᵢ)²)`` (σ_y in model units). Time travel (re-noising
and repeating steps) is not implemented. Cost: one network evaluation per step, no backpropagation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidInputError
from ..priors.schedules import Spacing
from ..operators.svd import require_svd
from .base import Sampler
from .ddrm import WITHOUT_SVD


@dataclass(frozen=True)
class DDNMConfig:
    """Attributes:
        steps: diffusion steps (official configs: ``T_sampling`` 100).
        eta: noise fraction η of the re-noising (official: 0.85).
        spacing: respacing rule (code: ``range(0, T, T // steps)``, i.e. ``uniform``).
    """

    steps: int = 100
    eta: float = 0.85
    spacing: Spacing = "uniform"


class DDNM(Sampler):
    Config = DDNMConfig
    requires = ("operator", "linear", "svd")  # "svd" is checked in check_view, once the padded shape is known

    def validate(self) -> None:
        if not 0 <= self.config.eta <= 1:
            raise InvalidInputError(f"eta must be in [0, 1], got {self.config.eta}")

    def check_view(self, view) -> None:
        self.svd = require_svd(view.problem.operator, view.x_shape, "ddnm", WITHOUT_SVD)

    def sample(self, view, generator, callback):
        cfg, svd, problem = self.config, self.svd, view.problem
        scale = view.prior.model_scale
        sigma_y = float(problem.noise.sigma) * scale  # model units, as the official λ rule uses
        y = problem.y.to(view.device, view.dtype)
        s = svd.singulars(y)
        observed = s > 0
        s_safe = torch.where(observed, s, torch.ones_like(s))
        uty = svd.Ut(y)
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        rest = (1 - cfg.eta**2) ** 0.5
        for i, (k, j) in enumerate(pairs):
            with torch.no_grad():
                eps, x0 = view.predict(x, k)
                a_j, s_j = view.coefficients(j) if j >= 0 else (1.0, 0.0)
                x0_bar = svd.Vt(view.from_model(x0))
                correction = torch.where(observed, (s * x0_bar - uty) / s_safe, torch.zeros_like(x0_bar))
                if sigma_y > 0:
                    # σ_y / sᵢ in the state's units at level j; components with s_j below it are fitted partially
                    limit = torch.where(observed, a_j * sigma_y / s_safe, torch.zeros_like(s))
                    partial = observed & (s_j < limit)
                    lam = torch.where(partial, s * s_j * rest / (a_j * sigma_y), torch.ones_like(s))
                    x_hat = svd.V(x0_bar - lam * correction)
                    z_coef = torch.where(observed & ~partial, (s_j**2 - limit**2).clamp_min(0).sqrt(),
                                         torch.full_like(s, s_j * cfg.eta))
                    e_coef = torch.where(observed, torch.zeros_like(s), torch.full_like(s, s_j * rest))
                    z = svd.Vt(view.noise_like(x, generator))
                    x = a_j * view.to_model(x_hat.to(view.dtype)) + svd.V(z_coef * z + e_coef * svd.Vt(eps)).to(view.dtype)
                else:
                    x_hat = view.to_model(svd.V(x0_bar - correction).to(view.dtype))
                    if j < 0:
                        x = x_hat
                    else:
                        x = a_j * x_hat + s_j * (cfg.eta * view.noise_like(x, generator) + rest * eps)
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

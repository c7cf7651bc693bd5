"""DPS — Diffusion Posterior Sampling (Chung et al., ICLR 2023), SAMPLERS.md §2.

Code-default behaviour: ancestral DDPM step, then ``x_{k-1} = x′ - ζ ∇_{x_k} ||y - A(x0̂)||`` with the
non-squared norm computed per sample, x0̂ clamped to the model range, residual in model units.
Paper variant (``norm="paper"``): ``ζ/||r|| · ∇||r||²``; ``norm="squared"``: constant ``ζ ∇||r||²``
(the affine variant that the moment-oracle test uses).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidInputError
from .base import Sampler, randn
from .steps import ddpm_coefficients

NORMS = ("code", "paper", "squared")


@dataclass(frozen=True)
class DPSConfig:
    """Attributes:
        steps: DDPM steps (official: 1000).
        zeta: guidance scale ζ (official configs: 0.3 SR/deblur, 0.5 inpainting, 1.0 phase retrieval).
        norm: ``code`` (‖r‖), ``paper`` (ζ/‖r‖·∇‖r‖²) or ``squared`` (ζ∇‖r‖²).
        clip: clamp x0̂ to the model range (gradients vanish where it clips, as in the code).
        zeta_reference_steps: the published ζ values assume 1000 steps; with fewer steps each step's ζ is
            multiplied by ``zeta_reference_steps / steps`` so that the total guidance matches (at 1000 steps
            this is the code's update exactly). ``None`` uses ζ per step as given.
        spacing, variance: as for ``ddpm``.
    """

    steps: int = 1000
    zeta: float = 0.3
    norm: str = "code"
    clip: bool = True
    zeta_reference_steps: int | None = 1000
    spacing: str = "guided"
    variance: str = "fixed-small"


class DPS(Sampler):
    Config = DPSConfig
    requires = ("operator",)

    def validate(self) -> None:
        super().validate()
        if self.config.norm not in NORMS:
            raise InvalidInputError(f"norm must be one of {', '.join(NORMS)}, got '{self.config.norm}'")
        if self.config.zeta < 0:
            raise InvalidInputError(f"zeta must be >= 0, got {self.config.zeta}")

    def guidance(self, prior, problem, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Gradient of the data term w.r.t. ``x`` (which ``x0`` depends on); one VJP."""
        misfit = problem.noise.data_misfit(problem.y, problem.operator(prior.from_model(x0)))
        misfit = misfit * prior.model_scale**2  # residual in model units, as the published ζ assume
        loss = misfit.sqrt() if self.config.norm == "code" else misfit
        if self.config.norm == "paper":
            loss = loss / misfit.detach().sqrt().clamp_min(1e-12)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        self.vjp += 1
        return grad

    @property
    def step_zeta(self) -> float:
        cfg = self.config
        return cfg.zeta if cfg.zeta_reference_steps is None else cfg.zeta * cfg.zeta_reference_steps / cfg.steps

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg = self.config
        sched = prior.schedule
        pairs = sched.pairs(cfg.steps, cfg.spacing)
        x = x_init if x_init is not None else randn(shape, generator, dtype=self.dtype_for(prior, problem),
                                                     device=prior.device)
        lo, hi = prior.data_range
        for i, (k, j) in enumerate(pairs):
            x = x.detach().requires_grad_(cfg.zeta > 0)
            with torch.set_grad_enabled(cfg.zeta > 0):
                eps = self.eps(prior, x, k)
                x0 = (x - float(sched.s(k)) * eps) / float(sched.a(k))
                if cfg.clip:
                    x0 = x0.clamp(lo, hi)
                c1, c2, std = ddpm_coefficients(sched, k, j, cfg.variance)
                x_next = c1 * x0.detach() + c2 * x.detach()
                if std > 0:
                    x_next = x_next + std * randn(shape, generator, like=x_next)
                if cfg.zeta > 0:
                    x_next = x_next - self.step_zeta * self.guidance(prior, problem, x, x0)
            x = x_next.detach()
            callback(i + 1, len(pairs), self.nfe)
        return x, {}

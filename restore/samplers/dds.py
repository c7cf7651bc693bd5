"""DDS — Decomposed Diffusion Sampler (Chung, Lee, Ye, ICLR 2024), SAMPLERS.md §5.1.

Per step: Tweedie denoise, a few conjugate-gradient steps on the data term started at x0̂ (Krylov
subspace), then re-noise. Code-default re-noising uses the noise fraction η′ with the network's eps;
``renoise="paper"`` uses DDIM's η instead. CG runs in public units with the Hermitian inner product.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidInputError
from ..operators.cg import conjugate_gradient
from .base import Sampler, randn
from .steps import dds_renoise


@dataclass(frozen=True)
class DDSConfig:
    """Attributes:
        steps: diffusion steps N (official 50; "49 NFE" naming counts the pairs before t = 0).
        cg_iters: CG iterations M per step (official 5).
        eta: re-noising: noise fraction η′ (code) or DDIM η (paper).
        gamma: weight of the data term in the noisy branch ``(I + γAᴴA) x = x0̂ + γAᴴy``.
        gamma_rule: ``constant`` (the code: γ at every step) or ``snr``: γ_k = gamma · r_k² / σ_y² with
            r_k = s_k / a_k in public units, the Tweedie error scale — the data weight a proximal step
            with x0 ~ N(x0̂, r_k² I) would use (as DiffPIR's ρ_t). It fades the data term in as x0̂ sharpens,
            which keeps noise out of the result when σ_y is large (denoising) and enforces the data when
            it is small (deblurring, super-resolution).
        noisy: ``auto`` uses the γ branch when the noise level is > 0; ``yes`` / ``no`` force it.
        renoise: ``code`` or ``paper``.
        spacing: timestep respacing rule.
    """

    steps: int = 50
    cg_iters: int = 5
    eta: float = 0.85
    gamma: float = 1.0
    gamma_rule: str = "constant"
    noisy: str = "auto"
    renoise: str = "code"
    spacing: str = "uniform"


class DDS(Sampler):
    Config = DDSConfig
    requires = ("operator", "linear")

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        if cfg.noisy not in ("auto", "yes", "no") or cfg.renoise not in ("code", "paper"):
            raise InvalidInputError("noisy must be auto|yes|no and renoise code|paper")
        if cfg.gamma_rule not in ("constant", "snr"):
            raise InvalidInputError(f"gamma_rule must be constant or snr, got '{cfg.gamma_rule}'")
        if not 0 <= cfg.eta <= 1 or cfg.gamma <= 0 or cfg.cg_iters < 0:
            raise InvalidInputError("need 0 <= eta <= 1, gamma > 0 and cg_iters >= 0")

    def data_weight(self, prior, problem, k: int) -> float:
        cfg = self.config
        if cfg.gamma_rule == "constant":
            return cfg.gamma
        r = float(prior.schedule.s(k) / prior.schedule.a(k)) / prior.model_scale
        return cfg.gamma * r * r / max(problem.noise.sigma, 1e-6) ** 2

    def data_step(self, prior, problem, x0_model: torch.Tensor, k: int = 0) -> torch.Tensor:
        """CG on the data term started at x0̂, in public units; returns model units."""
        cfg, op, y = self.config, problem.operator, problem.y
        x0 = prior.from_model(x0_model)
        noisy = cfg.noisy == "yes" or (cfg.noisy == "auto" and problem.noise.sigma > 0)
        if noisy:
            gamma = self.data_weight(prior, problem, k)
            x, _ = conjugate_gradient(lambda v: v + gamma * op.normal(v), x0 + gamma * op.adjoint(y),
                                      x0=x0, max_iter=cfg.cg_iters)
        else:
            x, _ = conjugate_gradient(op.normal, op.adjoint(y), x0=x0, max_iter=cfg.cg_iters)
        return prior.to_model(x.real if not x0.is_complex() and x.is_complex() else x)

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg = self.config
        sched = prior.schedule
        pairs = sched.pairs(cfg.steps, cfg.spacing)
        x = x_init if x_init is not None else randn(shape, generator, dtype=self.dtype_for(prior, problem),
                                                     device=prior.device)
        for i, (k, j) in enumerate(pairs):
            with torch.no_grad():
                eps = self.eps(prior, x, k)
                x0 = (x - float(sched.s(k)) * eps) / float(sched.a(k))
                x_tilde = self.data_step(prior, problem, x0, k)
                x = dds_renoise(sched, x_tilde, eps, k, j, cfg.eta, cfg.renoise,
                                 lambda: randn(shape, generator, like=x))
            callback(i + 1, len(pairs), self.nfe)
        return x, {}

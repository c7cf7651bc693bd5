"""DDS — Decomposed Diffusion Sampler (Chung, Lee, Ye, ICLR 2024), SAMPLERS.md §5.1.

Per step: Tweedie denoise, a few conjugate-gradient steps on the data term started at x0̂ (Krylov
subspace), then re-noise. Code-default re-noising uses the noise fraction η′ with the network's eps;
``renoise="paper"`` uses DDIM's η instead. CG runs in public units with the Hermitian inner product.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from ..operators.cg import conjugate_gradient
from ..priors.schedules import Spacing
from .base import Sampler
from .dpm_solver_pp import dpmpp_step
from .momentum import Momentum, Velocity, check_momentum, momentum_eps
from .steps import dds_renoise

Renoise = Literal["code", "paper"]


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
        step: the unconditional move to the next level: ``ddim`` (the re-noising above), ``dpm-solver++``
            (DPM-Solver++(2M) on the data-consistent estimates x̃ with the noise fraction ``eta``; ``eta=0`` is
            the ODE step) or ``sde-dpm-solver++`` (SDE-DPM-Solver++(2M) on x̃). Both start from the state
            ``a_k x̃ + s_k eps`` as the ``ddim`` step does; ``renoise`` applies to ``ddim`` only.
        momentum: ``hb`` or ``ghvb`` momentum (:mod:`restore.samplers.momentum`) on the ``ddim`` step: the
            noise direction of the re-noising is the one the momentum DDIM step from ``a_k x̃ + s_k eps``
            would take; ``hb`` also applies to ``step=dpm-solver++`` (on its 2M direction).
        beta: momentum β in (0, 1]; 1 is the plain step (hb) or PLMS-2 (ghvb); official default 0.8.
    """

    steps: int = 50
    cg_iters: int = 5
    eta: float = 0.85
    gamma: float = 1.0
    gamma_rule: Literal["constant", "snr"] = "constant"
    noisy: Literal["auto", "yes", "no"] = "auto"
    renoise: Renoise = "code"
    spacing: Spacing = "uniform"
    step: Literal["ddim", "dpm-solver++", "sde-dpm-solver++"] = "ddim"
    momentum: Momentum = "none"
    beta: float = 0.8


class DDS(Sampler):
    Config = DDSConfig
    chain_batching = True
    requires = ("operator", "linear")

    def validate(self) -> None:
        cfg = self.config
        if not 0 <= cfg.eta <= 1 or cfg.gamma <= 0 or cfg.cg_iters < 0:
            raise InvalidInputError("need 0 <= eta <= 1, gamma > 0 and cg_iters >= 0")
        check_momentum(cfg.momentum, cfg.beta)
        if cfg.momentum != "none" and not (cfg.step == "ddim" or (cfg.step, cfg.momentum) == ("dpm-solver++", "hb")):
            raise InvalidInputError(f"momentum={cfg.momentum} does not apply to step={cfg.step}; use step=ddim "
                                    f"(hb or ghvb) or step=dpm-solver++ (hb)")

    def data_weight(self, view, k: int) -> float:
        cfg = self.config
        if cfg.gamma_rule == "constant":
            return cfg.gamma
        a, s = view.coefficients(k)
        r = s / a / view.prior.model_scale
        return cfg.gamma * r * r / max(view.problem.noise.sigma, 1e-6) ** 2

    def data_step(self, view, x0_model: torch.Tensor, k: int = 0) -> torch.Tensor:
        """CG on the data term started at x0̂, in public units; returns model units."""
        cfg, op, y = self.config, view.problem.operator, view.problem.y
        x0 = view.from_model(x0_model)
        noisy = cfg.noisy == "yes" or (cfg.noisy == "auto" and view.problem.noise.sigma > 0)
        if noisy:
            gamma = self.data_weight(view, k)
            x, _ = conjugate_gradient(lambda v: v + gamma * op.normal(v), x0 + gamma * op.adjoint(y),
                                      x0=x0, max_iter=cfg.cg_iters)
        else:
            x, _ = conjugate_gradient(op.normal, op.adjoint(y), x0=x0, max_iter=cfg.cg_iters)
        return view.to_model(x.real if not x0.is_complex() and x.is_complex() else x)

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        history: list[tuple[int, torch.Tensor]] = []
        velocity = Velocity(cfg.momentum, cfg.beta)
        for i, (k, j) in enumerate(pairs):
            with torch.no_grad():
                eps, x0 = view.predict(x, k)
                x_tilde = self.data_step(view, x0, k)
                if cfg.step == "ddim" or j <= 0:
                    if cfg.momentum != "none" and j > 0:
                        eps = momentum_eps(view.schedule, eps, velocity(eps), k, j)
                    x = dds_renoise(view.schedule, x_tilde, eps, k, j, cfg.eta, cfg.renoise,
                                    lambda: view.noise_like(x, generator))
                else:
                    # start from the state whose Tweedie estimate is x̃ (as DDS's own step does): stepping from
                    # x itself would keep a share e^{-h} of the uncorrected x0̂
                    a_k, s_k = view.coefficients(k)
                    history = (history + [(k, x_tilde)])[-2:]
                    sde = cfg.step == "sde-dpm-solver++"
                    noise = view.noise_like(x, generator) if sde or cfg.eta > 0 else None
                    x = dpmpp_step(view.schedule, a_k * x_tilde + s_k * eps, [h[1] for h in history],
                                   [h[0] for h in history], j, noise, velocity if cfg.momentum == "hb" else None,
                                   None if sde else cfg.eta)
            callback(i + 1, len(pairs), view.nfe)
        return x, {}

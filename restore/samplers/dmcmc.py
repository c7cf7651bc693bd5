"""Denoising MCMC (Kim & Ye, 2022): MCMC on the product space of data and noise level, then a short reverse
diffusion from the sampled level (SAMPLERS.md §10.7).

The chain runs in VE coordinates ``x̃ = x_k / a_k`` with noise level ``σ = s_k / a_k`` on ``u = log σ``,
targeting ``p(x̃, u) ∝ p_σ(x̃)`` with ``u`` uniform on ``[log σ(level_min), log σ(level_max)]``:

* ``x̃`` moves by Langevin (``x̃ += h ∇ log p_σ + √(2h) ξ``, ``h = step_size · σ²``) or by HMC (``leapfrog``
  steps of size ``√h`` with fresh momenta), with the prior's score ``∇ log p_σ(x̃) = -eps(a x̃, k) / σ``;
* ``u`` moves by Langevin with the noise-level score of the heat equation,
  ``∂_u log p_σ(x̃) = σ² (Δ log p_σ + ‖∇ log p_σ‖²)``, the Laplacian by one Hutchinson probe (one VJP).
  The paper trains a noise-level network for this gradient; deriving it from the score network instead
  needs no extra model. The level is reflected at the range's ends and rounded to the nearest training level
  for the network.

With a measurement, ``x̃`` also follows ``∇ log N(y; A x0̂, (σ_y² + s_k²) I)`` (a ΠGDM-inflated likelihood of
the Tweedie estimate, one more VJP), and the reverse diffusion uses the same conditional score. The reverse
diffusion is DDIM (``eta``) over ``reverse_steps`` from the sampled level to clean data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from .base import Sampler
from .steps import ddim_step

Kernel = Literal["langevin", "hmc"]


@dataclass(frozen=True)
class DMCMCConfig:
    """Attributes:
        mcmc: ``langevin`` (the paper's LMC) or ``hmc`` on ``x̃``; the level always moves by Langevin.
        mcmc_steps: MCMC iterations.
        step_size: Langevin step ``h`` in units of ``σ²`` (HMC: leapfrog step ``√h``).
        leapfrog: HMC leapfrog steps per iteration (one NFE each).
        level_step: Langevin step of ``u = log σ`` times the data dimension (the noise-level posterior has a
            width of about ``1/√d``). Larger steps let the level outrun the data chain: the Hutchinson noise
            and the lag then widen the output (measured on the Gaussian prior in the tests).
        level_min, level_max: the range of training levels the chain may visit (it starts at ``level_max``),
            where the noise is comparable to unit-scale data so that Langevin mixes in a few hundred steps.
        reverse_steps: DDIM steps from the sampled level to clean data; ``eta``: DDIM's η (0: the ODE).
    """

    mcmc: Kernel = "langevin"
    mcmc_steps: int = 100
    step_size: float = 0.05
    leapfrog: int = 5
    level_step: float = 0.05
    level_min: int = 200
    level_max: int = 500
    reverse_steps: int = 20
    eta: float = 0.0


class DMCMC(Sampler):
    Config = DMCMCConfig

    def validate(self) -> None:
        cfg = self.config
        if cfg.mcmc_steps < 0 or cfg.step_size <= 0 or cfg.leapfrog < 1 or cfg.level_step < 0:
            raise InvalidInputError("dmcmc needs mcmc_steps >= 0, step_size > 0, leapfrog >= 1, level_step >= 0")
        if not 0 <= cfg.level_min <= cfg.level_max or cfg.reverse_steps < 1 or not 0 <= cfg.eta <= 1:
            raise InvalidInputError(f"dmcmc needs 0 <= level_min <= level_max, reverse_steps >= 1 and 0 <= eta <= 1, "
                                    f"got level_min={cfg.level_min}, level_max={cfg.level_max}")

    def check_view(self, view) -> None:
        top = len(view.schedule.betas) - 1
        if self.config.level_max > top:
            raise InvalidInputError(f"dmcmc level_max={self.config.level_max} is beyond the prior's last level {top}")

    # -- pieces ------------------------------------------------------------------------------------------
    def level_of(self, sigmas: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Nearest training level to ``σ = exp(u)`` per sample, ``(B,)``."""
        idx = torch.searchsorted(sigmas, u.exp()).clamp(1, len(sigmas) - 1)
        left = (u.exp() - sigmas[idx - 1]).abs() < (sigmas[idx] - u.exp()).abs()
        return idx - left.long()

    def log_twist(self, view, x0: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        problem = view.problem
        s = view.schedule.s(k).to(x0.dtype) / view.prior.model_scale
        var = problem.noise.sigma**2 + s**2
        misfit = problem.noise.data_misfit(problem.y, problem.operator(view.from_model(x0)))
        return -(1.0 if problem.y.is_complex() else 0.5) * misfit / var

    def gradients(self, view, xt: torch.Tensor, k: torch.Tensor, generator, level: bool):
        """``(∇_x̃ log p(x̃, y), ∂_u log p_σ(x̃) or None, eps)`` at VE state ``xt`` and levels ``k`` ``(B,)``."""
        shape = (-1,) + (1,) * (xt.ndim - 1)
        a = view.schedule.a(k).to(xt.dtype).reshape(shape)
        s = view.schedule.s(k).to(xt.dtype).reshape(shape)
        sigma = s / a
        xt = xt.detach().requires_grad_(True)
        with torch.enable_grad():
            eps = view.eps(a * xt, k)
            score = -eps / sigma
            grad = score.detach()
            du = None
            if level:  # Hutchinson: Δ log p ≈ vᵀ ∇(vᵀ score), v Rademacher
                v = torch.randint(0, 2, xt.shape, generator=generator, dtype=xt.dtype).to(xt.device) * 2 - 1
                (jv,) = torch.autograd.grad((score * v).sum(), xt, retain_graph=view.problem is not None)
                view.count_vjp()
                lap = (jv * v).flatten(1).sum(1)
                du = sigma.flatten() ** 2 * (lap + (score.detach() ** 2).flatten(1).sum(1))
            if view.problem is not None:
                x0 = (a * xt - s * eps) / a
                (gt,) = torch.autograd.grad(self.log_twist(view, x0, k).sum(), xt)
                view.count_vjp()
                grad = grad + gt
        return grad.detach(), (du.detach() if du is not None else None), eps.detach()

    # -- the algorithm -----------------------------------------------------------------------------------
    def sample(self, view, generator, callback):
        cfg = self.config
        sch = view.schedule
        levels = torch.arange(len(sch.betas))
        sigmas = (sch.s(levels) / sch.a(levels)).double()
        u_lo, u_hi = math.log(float(sigmas[cfg.level_min])), math.log(float(sigmas[cfg.level_max]))
        b = view.shape[0]
        d = math.prod(view.shape[1:])
        u = torch.full((b,), u_hi, dtype=torch.float64)
        k = torch.full((b,), cfg.level_max, dtype=torch.long)
        xt = view.initial_state(generator) / sch.a(cfg.level_max).to(view.dtype)
        shape = (-1,) + (1,) * (xt.ndim - 1)
        h_u = cfg.level_step / d
        total = cfg.mcmc_steps + cfg.reverse_steps
        for i in range(cfg.mcmc_steps):
            sigma2 = (sigmas[k] ** 2).to(view.dtype).reshape(shape)
            h = cfg.step_size * sigma2
            grad, du, _ = self.gradients(view, xt, k, generator, level=cfg.level_step > 0)
            if cfg.mcmc == "langevin":
                xt = xt + h * grad + (2 * h).sqrt() * view.noise_like(xt, generator)
            else:
                eps_lf = h.sqrt()
                p = view.noise_like(xt, generator)
                p = p + 0.5 * eps_lf * grad
                for step in range(cfg.leapfrog):
                    xt = xt + eps_lf * p
                    g, _, _ = self.gradients(view, xt, k, generator, level=False)
                    p = p + (eps_lf if step < cfg.leapfrog - 1 else 0.5 * eps_lf) * g
            if du is not None:  # Langevin on u = log σ with reflection at the range's ends
                u = u + h_u * du.cpu().double() + math.sqrt(2 * h_u) * torch.randn(b, generator=generator,
                                                                                   dtype=torch.float64)
                span = u_hi - u_lo
                folded = (u - u_lo).remainder(2 * span) if span > 0 else torch.zeros_like(u)
                u = u_lo + span - (folded - span).abs()
                k = self.level_of(sigmas, u)
            callback(i + 1, total, view.nfe)
        # short reverse diffusion from each sample's level, in VP coordinates
        x = sch.a(k).to(view.dtype).reshape(shape) * xt
        fractions = torch.linspace(1, 0, cfg.reverse_steps + 1, dtype=torch.float64)
        for i in range(cfg.reverse_steps):
            kk = (k.double() * fractions[i]).round().long()
            jj = (k.double() * fractions[i + 1]).round().long()
            if i == cfg.reverse_steps - 1:
                jj = torch.full_like(jj, -1)
            grad, _, eps = self.gradients(view, x / sch.a(kk).to(view.dtype).reshape(shape), kk, generator,
                                          level=False)
            a_k = sch.a(kk).to(view.dtype).reshape(shape)
            s_k = sch.s(kk).to(view.dtype).reshape(shape)
            x0 = (x + s_k**2 * grad / a_k) / a_k  # conditional Tweedie: VP score = VE score / a
            eps_c = (x - a_k * x0) / s_k
            noise = view.noise_like(x, generator) if cfg.eta > 0 else torch.zeros_like(x)
            out = torch.empty_like(x)
            for pair in torch.unique(torch.stack([kk, jj], 1), dim=0):  # samples on the same level move together
                rows = (kk == pair[0]) & (jj == pair[1])
                out[rows] = ddim_step(sch, x0[rows], eps_c[rows], int(pair[0]), int(pair[1]), cfg.eta, noise[rows])
            x = out
            callback(cfg.mcmc_steps + i + 1, total, view.nfe)
        return x, {"diagnostics": {"levels": [int(v) for v in k]}}

"""RED-diff — variational regularisation by denoising (Mardani, Song, Kautz, Vahdat; ICLR 2024), SAMPLERS.md §3.

An optimiser, not a sampler: it returns a point estimate μ. Starting from the pseudo-inverse
``μ = A⁺y`` (``operator.initial_estimate``), every step draws a level t (descending by default) and fresh
noise, evaluates the network once without gradient at ``x_t = a_t μ + s_t ε``, and takes an Adam step on

    ``λ w_t mean(sg[ε̂(x_t, t) - ε] · μ)  +  v mean((y - A(μ))²) / 2``

whose gradient in μ is ``λ w_t (ε̂ - ε) / d - v Jᴬᵀ (y - A(μ)) / m`` — backpropagation runs through the
operator only, never through the network. Both terms are element means, as in the official code, so the
published λ carry over; residuals are measured in model units (``[-1, 1]`` for image priors).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from ..errors import IncompatibleError, InvalidInputError
from ..priors.schedules import Spacing
from .base import Sampler

Weighting = Literal["linear", "sqrt", "square", "log", "trunc_linear", "power2over3", "const"]


def snr_weight(a: float, s: float, weighting: str) -> float:
    """``w_t`` from ``1/sqrt(SNR_t) = s_t / a_t`` (the official code's ``denoise_term_weight`` options)."""
    r = s / a
    if weighting == "linear":
        return r
    if weighting == "sqrt":
        return math.sqrt(r)
    if weighting == "square":
        return r * r
    if weighting == "log":
        return math.log(r + 1.0)
    if weighting == "trunc_linear":
        return min(r, 1.0)
    if weighting == "power2over3":
        return r ** (2 / 3)
    if weighting == "const":
        return 1.0
    raise InvalidInputError(f"weighting must be one of {', '.join(get_args(Weighting))}, got '{weighting}'")


@dataclass(frozen=True)
class REDDiffConfig:
    """Attributes:
        steps: optimisation steps, one level each (engine default 1000 as in the paper; the official
            config uses 50).
        lam: λ, weight of the denoising regulariser (``grad_term_weight``; paper and code 0.25).
        lr: Adam learning rate (paper scripts 0.5; the repo config's 0.1 is the documented alternative;
            inpainting scripts use 0.25).
        obs_weight: v, weight of the data term (1.0).
        weighting: SNR weighting w_t: ``linear`` (1/sqrt(SNR), default), ``sqrt``, ``square``, ``log``,
            ``trunc_linear``, ``power2over3``, ``const``.
        order: visiting order of the levels: ``descending`` (noisiest first, the default and the best in
            the paper's ablation), ``ascending`` or ``random`` (a permutation from the run's generator).
        betas: Adam betas (0.9, 0.99) as in the official code.
        optimizer: ``adam`` (default) or ``sgd`` (plain gradient steps; used to check the stationary point).
        spacing: level spacing (``uniform``: ``range(0, T, T // steps)`` as in the code).
        fixed_t: use this one level at every step instead of a schedule (ablation / stationary-point check).
    """

    steps: int = 1000
    lam: float = 0.25
    lr: float = 0.5
    obs_weight: float = 1.0
    weighting: Weighting = "linear"
    order: Literal["descending", "ascending", "random"] = "descending"
    betas: tuple[float, float] = (0.9, 0.99)
    optimizer: Literal["adam", "sgd"] = "adam"
    spacing: Spacing = "uniform"
    fixed_t: int | None = None


class REDDiff(Sampler):
    Config = REDDiffConfig
    requires = ("operator",)

    def validate(self) -> None:
        cfg = self.config
        if not (cfg.lr > 0 and cfg.lam >= 0 and cfg.obs_weight >= 0):
            raise InvalidInputError(f"need lr > 0, lam >= 0 and obs_weight >= 0, got lr={cfg.lr}, lam={cfg.lam}, "
                                    f"obs_weight={cfg.obs_weight}")
        if not all(0 <= b < 1 for b in cfg.betas):
            raise InvalidInputError(f"betas must be two numbers in [0, 1), got {cfg.betas!r}; "
                                    f"e.g. --set betas=[0.9,0.99]")

    def timesteps(self, prior, generator: torch.Generator | None = None) -> list[int]:
        """The levels visited, in order (``T = prior.schedule.T``)."""
        cfg = self.config
        T = prior.schedule.T
        if cfg.fixed_t is not None:
            if not (isinstance(cfg.fixed_t, int) and 0 <= cfg.fixed_t < T):
                raise InvalidInputError(f"fixed_t must be an integer level in 0..{T - 1}, got {cfg.fixed_t!r}")
            return [cfg.fixed_t] * cfg.steps
        ts = prior.schedule.timesteps(cfg.steps, cfg.spacing)  # descending
        if cfg.order == "ascending":
            return ts[::-1]
        if cfg.order == "random":
            return [ts[i] for i in torch.randperm(len(ts), generator=generator).tolist()]
        return ts

    def initial(self, view) -> torch.Tensor:
        """Pseudo-inverse start ``A⁺y`` (the operator's ``initial_estimate``) in model units."""
        problem = view.problem
        x0 = problem.operator.initial_estimate(problem.y)
        if tuple(x0.shape) != tuple(view.x_shape):
            raise IncompatibleError(
                f"operator {type(problem.operator).__name__}.initial_estimate returns shape {tuple(x0.shape)}, "
                f"but x has shape {tuple(view.x_shape)}; implement initial_estimate for it or pass x_init")
        return view.to_model(x0.detach())

    def sample(self, view, generator, callback):
        cfg = self.config
        ts = self.timesteps(view.prior, generator)
        mu0 = view.x_init if view.x_init is not None else self.initial(view)
        mu = mu0.detach().to(view.device, view.dtype).clone().requires_grad_(True)
        # Adam written out (same update as torch.optim.Adam): constructing a torch optimiser imports
        # torch._dynamo, which costs seconds per run.
        beta1, beta2 = (float(b) for b in cfg.betas)
        exp_avg, exp_avg_sq = torch.zeros_like(mu), torch.zeros_like(mu)
        y, op = view.problem.y, view.problem.operator
        m = y[0].numel()
        d = mu[0].numel()
        scale2 = view.prior.model_scale**2  # residuals in model units, as the published λ assume
        for i, k in enumerate(ts):
            a, s = view.coefficients(k)
            noise = view.noise_like(mu, generator)
            with torch.no_grad():
                eps_hat = view.eps(a * mu + s * noise, k)
            with torch.enable_grad():
                loss_noise = ((eps_hat - noise) * mu).reshape(mu.shape[0], -1).sum(dim=1) / d
                misfit = view.problem.noise.data_misfit(y, op(view.from_model(mu))) * scale2 / m
                loss = (cfg.lam * snr_weight(a, s, cfg.weighting) * loss_noise + cfg.obs_weight * misfit / 2).sum()
                (grad,) = torch.autograd.grad(loss, mu)
            with torch.no_grad():
                if cfg.optimizer == "sgd":
                    mu.sub_(cfg.lr * grad)
                else:
                    n = i + 1
                    exp_avg.lerp_(grad, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    denom = (exp_avg_sq.sqrt() / (1 - beta2**n) ** 0.5).add_(1e-8)
                    mu.addcdiv_(exp_avg, denom, value=-cfg.lr / (1 - beta1**n))
            callback(i + 1, len(ts), view.nfe)
        return mu.detach(), {"levels": ts}

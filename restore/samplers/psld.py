"""PSLD — posterior sampling with latent diffusion (Rout et al., NeurIPS 2023), SAMPLERS.md §4.1.

Latent DDIM (η = 0) with DPS-style guidance through the decoder plus the "gluing" term, which pulls ẑ0
towards a fixed point of the encoder after the measured part of the decoded image is replaced by the data:

    ``z_{t-1} = z′ - ∇_{z_t} ( ω ‖y - A(Dec(ẑ0))‖ + γ ‖Enc(Aᵀy + (I - AᵀA) Dec(ẑ0)) - ẑ0‖ )``

Defaults follow the official code; the two code quirks are flags: ``adjoint="identity"`` uses the DPS
blur operators' "transpose" (the identity) in the gluing term, ``noisy_pred=True`` adds fresh measurement
noise to ``A(Dec(ẑ0))`` before the residual. Residuals are in model units (``[-1, 1]`` images).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import IncompatibleError, InvalidInputError
from .base import Sampler, randn
from .steps import ddim_step

ADJOINTS = ("true", "identity")


def gluing_image(problem, x0: torch.Tensor, adjoint: str = "true") -> torch.Tensor:
    """``Aᵀy + (I - AᵀA) x0`` in public units (``adjoint="identity"``: ``y + x0 - A x0``, the code quirk)."""
    op, y = problem.operator, problem.y
    if adjoint == "identity":
        if tuple(y.shape) != tuple(x0.shape):
            raise IncompatibleError(f"adjoint='identity' needs a measurement of the image's shape {tuple(x0.shape)}, "
                                    f"got {tuple(y.shape)}; use adjoint='true'")
        return y + x0 - op(x0)
    return x0 + op.adjoint(y - op(x0))


def latent_guidance_loss(prior, problem, z0: torch.Tensor, omega: float, gamma: float, adjoint: str = "true",
                         noisy_pred: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample PSLD loss ``ω ‖y - A(Dec(ẑ0))‖ + γ ‖Enc(glue) - ẑ0‖``, ``(B,)``, differentiable in z0.

    Args:
        prior: a latent prior (``encode`` / ``decode``).
        problem: measurement and operator (public units).
        z0: ``(B, C_latent, h, w)`` Tweedie estimate of the clean latent.
        omega, gamma: weights of the measurement and gluing terms (unsquared norms, as in the code).
        adjoint, noisy_pred: the code-quirk flags (see the module docstring).
        generator: draws the measurement noise of ``noisy_pred``.
    """
    x0 = prior.decode(z0)
    pred = problem.operator(x0)
    if noisy_pred:
        pred = problem.noise.sample(pred, generator)
    misfit = problem.noise.data_misfit(problem.y, pred) * prior.model_scale**2
    loss = omega * misfit.clamp_min(1e-24).sqrt()
    if gamma > 0:
        glued = prior.encode(gluing_image(problem, x0, adjoint))
        loss = loss + gamma * torch.linalg.vector_norm((glued - z0).reshape(z0.shape[0], -1), dim=1)
    return loss


@dataclass(frozen=True)
class PSLDConfig:
    """Attributes:
        steps: DDIM steps (official ``ddim_steps = 1000``).
        omega: ω, weight of the measurement term (SD-v1.5 code default 1.0; LDM-FFHQ scripts 0.1, SR 0.9).
        gamma: γ, weight of the gluing term (0.1; inpainting scripts also use 0.01).
        eta: DDIM η (0 in the code).
        spacing: timestep respacing rule (``uniform`` as in the DDIM code).
        adjoint: ``true`` (default) or ``identity`` (the code's blur "transpose").
        noisy_pred: add measurement noise to the predicted measurement (code quirk; off by default).
    """

    steps: int = 1000
    omega: float = 1.0
    gamma: float = 0.1
    eta: float = 0.0
    spacing: str = "uniform"
    adjoint: str = "true"
    noisy_pred: bool = False


def check_latent_guidance(name: str, cfg, problem) -> None:
    """Validation shared by PSLD and STSL's latent path."""
    if problem is not None and cfg.gamma > 0 and not problem.operator.linear:
        raise IncompatibleError(f"{name}'s gluing term needs a linear operator (it uses Aᵀ); for "
                                f"{type(problem.operator).__name__} pass --set gamma=0")


class PSLD(Sampler):
    Config = PSLDConfig
    requires = ("operator",)
    prior_kinds = ("latent",)

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        if cfg.adjoint not in ADJOINTS:
            raise InvalidInputError(f"adjoint must be one of {', '.join(ADJOINTS)}, got '{cfg.adjoint}'")
        if not (cfg.omega >= 0 and cfg.gamma >= 0 and 0 <= cfg.eta <= 1):
            raise InvalidInputError(f"need omega >= 0, gamma >= 0 and 0 <= eta <= 1, got omega={cfg.omega}, "
                                    f"gamma={cfg.gamma}, eta={cfg.eta}")

    def check(self, prior, problem) -> None:
        super().check(prior, problem)
        check_latent_guidance("psld", self.config, problem)

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        cfg = self.config
        sched = prior.schedule
        pairs = sched.pairs(cfg.steps, cfg.spacing)
        dtype = self.dtype_for(prior, problem)
        z = x_init if x_init is not None else randn(prior.latent_shape(shape), generator, dtype=dtype,
                                                     device=prior.device)
        guided = cfg.omega > 0 or cfg.gamma > 0
        for i, (k, j) in enumerate(pairs):
            a, s = float(sched.a(k)), float(sched.s(k))
            z = z.detach().requires_grad_(guided)
            with torch.set_grad_enabled(guided):
                eps = self.eps(prior, z, k)
                z0 = (z - s * eps) / a
                if guided:
                    loss = latent_guidance_loss(prior, problem, z0, cfg.omega, cfg.gamma, cfg.adjoint,
                                                cfg.noisy_pred, generator)
                    (grad,) = torch.autograd.grad(loss.sum(), z)
                    self.vjp += 1
            noise = randn(z.shape, generator, like=z) if cfg.eta > 0 and j >= 0 else None
            z_next = ddim_step(sched, z0.detach(), eps.detach(), k, j, cfg.eta, noise)
            z = (z_next - grad if guided else z_next).detach()
            callback(i + 1, len(pairs), self.nfe)
        return z, {}

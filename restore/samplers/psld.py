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

from ..errors import InvalidInputError
from ..priors.base import LatentFamily
from ..priors.schedules import Spacing
from .base import Sampler
from .steps import GluingOptions, check_latent_guidance, ddim_step, latent_guidance_loss


@dataclass(frozen=True)
class PSLDConfig(GluingOptions):
    """The gluing term's options (:class:`~restore.samplers.steps.GluingOptions`) and:

    Attributes:
        steps: DDIM steps (official ``ddim_steps = 1000``).
        omega: ω, weight of the measurement term (SD-v1.5 code default 1.0; LDM-FFHQ scripts 0.1, SR 0.9).
        eta: DDIM η (0 in the code).
        spacing: timestep respacing rule (``uniform`` as in the DDIM code).
    """

    steps: int = 1000
    omega: float = 1.0
    eta: float = 0.0
    spacing: Spacing = "uniform"


class PSLD(Sampler):
    Config = PSLDConfig
    requires = ("operator",)
    families = (LatentFamily,)

    def validate(self) -> None:
        cfg = self.config
        if not (cfg.omega >= 0 and cfg.gamma >= 0 and 0 <= cfg.eta <= 1):
            raise InvalidInputError(f"need omega >= 0, gamma >= 0 and 0 <= eta <= 1, got omega={cfg.omega}, "
                                    f"gamma={cfg.gamma}, eta={cfg.eta}")

    def check(self, prior, problem) -> None:
        super().check(prior, problem)
        check_latent_guidance("psld", self.config.gamma, problem)

    def sample(self, view, generator, callback):
        cfg = self.config
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        z = view.initial_state(generator)
        guided = cfg.omega > 0 or cfg.gamma > 0
        for i, (k, j) in enumerate(pairs):
            z = z.detach().requires_grad_(guided)
            with torch.set_grad_enabled(guided):
                eps, z0 = view.predict(z, k)
                if guided:
                    loss = latent_guidance_loss(view, z0, cfg.omega, cfg, generator)
                    (grad,) = torch.autograd.grad(loss.sum(), z)
                    view.count_vjp()
            noise = view.noise_like(z, generator) if cfg.eta > 0 and j >= 0 else None
            z_next = ddim_step(view.schedule, z0.detach(), eps.detach(), k, j, cfg.eta, noise)
            z = (z_next - grad if guided else z_next).detach()
            callback(i + 1, len(pairs), view.nfe)
        return z, {}

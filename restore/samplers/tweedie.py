"""One-step Tweedie denoiser: the prior's own MMSE estimate ``E[x0 | y]`` for ``y = x0 + σ n``.

A noisy photo is already a diffusion state: ``y / sqrt(1 + σ²)`` (model units) is ``x_k`` of a VP process
whose noise-to-signal ratio ``s_k / a_k`` equals σ, so one network call at that level returns the
posterior mean. This is the PSNR-optimal answer a diffusion prior can give for Gaussian denoising;
iterative samplers draw posterior samples instead and lose PSNR doing so: at 25/255 DDS 1.3 dB and DPS 4.6 dB
below the x8 average (``python -m bench.run --suite quick``, with the priors of session 12). It has no ``steps``
option: it makes one network call, or one per transform with ``transforms`` > 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import IncompatibleError, InvalidInputError
from ..operators.base import Identity
from .base import Sampler
from .steps import dihedral


@dataclass(frozen=True)
class TweedieConfig:
    """Attributes:
        noise_scale: multiplies the measurement σ before the timestep is matched; > 1 smooths more.
        transforms: average the estimates of the first ``transforms`` of the 8 flips/rotations of ``y``, each
            turned back (8 is DPIR's and SwinIR's "x8" self-ensemble), one network call each. The priors are
            trained on flipped and rotated crops, so the exact posterior mean commutes with these transforms;
            averaging removes the part of the network's error that does not (on the priors' validation images
            at σ = 25/255: +0.06 dB with natural-gray, +0.14 with natural-rgb, +0.11 with medical-gray;
            ``python -m bench.tweedie_ensemble``).
    """

    noise_scale: float = 1.0
    transforms: int = 1


class Tweedie(Sampler):
    Config = TweedieConfig
    requires = ("operator", "linear")
    chain_batching = True
    deterministic = True

    def validate(self) -> None:
        if self.config.noise_scale <= 0:
            raise InvalidInputError(f"noise_scale must be > 0, got {self.config.noise_scale}")
        if not 1 <= self.config.transforms <= 8:
            raise InvalidInputError(f"transforms must be 1 to 8 (flips/rotations averaged), "
                                    f"got {self.config.transforms}")

    def check(self, prior, problem) -> None:
        super().check(prior, problem)
        if not isinstance(problem.operator, Identity):
            raise IncompatibleError(
                "sampler tweedie solves denoising only (operator = identity); use dds, dps or red-diff for "
                f"the operator {type(problem.operator).__name__}")
        if problem.noise.sigma <= 0:
            raise IncompatibleError("sampler tweedie needs the noise level of y (--noise > 0)")

    @staticmethod
    def timestep(schedule, sigma_model: float) -> int:
        """The training timestep whose noise-to-signal ratio ``s_k / a_k`` is nearest ``sigma_model``."""
        k = torch.arange(schedule.T)
        ratio = (schedule.s(k) / schedule.a(k)).double()
        return int(torch.argmin((ratio - sigma_model).abs()))

    def sample(self, view, generator, callback):
        sigma = view.problem.noise.sigma * self.config.noise_scale * view.prior.model_scale
        k = self.timestep(view.schedule, sigma)
        # the padded border starts from the replicated edge, which the denoiser then smooths
        a, _ = view.coefficients(k)
        y = view.to_model(view.y_image()) * a
        n = self.config.transforms
        x0 = sum(dihedral(view.predict(dihedral(y, i), k)[1], i, inverse=True) for i in range(n)) / n
        callback(1, 1, view.nfe)
        return x0, {"levels": [k]}

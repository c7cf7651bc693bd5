"""One-step Tweedie denoiser: the prior's own MMSE estimate ``E[x0 | y]`` for ``y = x0 + σ n``.

A noisy photo is already a diffusion state: ``y / sqrt(1 + σ²)`` (model units) is ``x_k`` of a VP process
whose noise-to-signal ratio ``s_k / a_k`` equals σ, so one network call at that level returns the
posterior mean. This is the PSNR-optimal answer a diffusion prior can give for Gaussian denoising;
iterative samplers (DDS, DPS) draw posterior samples instead and lose 4–5 dB of PSNR doing so at 25/255
(``python -m bench.run --suite quick``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import IncompatibleError, InvalidInputError
from ..operators.base import Crop, Identity
from ..operators.compose import ComposedLinear
from .base import Sampler


@dataclass(frozen=True)
class TweedieConfig:
    """Attributes:
        steps: always 1 (one network evaluation); accepted so that ``--steps 1`` works like elsewhere.
        noise_scale: multiplies the measurement σ before the timestep is matched; > 1 smooths more.
    """

    steps: int = 1
    noise_scale: float = 1.0


def _is_denoising(op) -> bool:
    """``A = I``, possibly composed with the engine's padding crop."""
    if isinstance(op, Identity):
        return True
    return isinstance(op, ComposedLinear) and isinstance(op.outer, Identity) and isinstance(op.inner, Crop)


class Tweedie(Sampler):
    Config = TweedieConfig
    requires = ("operator", "linear")

    def validate(self) -> None:
        super().validate()
        if self.config.steps != 1:
            raise InvalidInputError(f"the tweedie sampler makes exactly one network call; got steps={self.config.steps}")
        if self.config.noise_scale <= 0:
            raise InvalidInputError(f"noise_scale must be > 0, got {self.config.noise_scale}")

    def check(self, prior, problem) -> None:
        super().check(prior, problem)
        if not _is_denoising(problem.operator):
            raise IncompatibleError(
                "sampler tweedie solves denoising only (operator = identity); use dds, dps or red-diff for "
                f"the operator {type(problem.operator).__name__}")
        if problem.noise.sigma <= 0:
            raise IncompatibleError("sampler tweedie needs the noise level of y (--noise > 0)")

    def timestep(self, prior, sigma_model: float) -> int:
        """The training timestep whose noise-to-signal ratio ``s_k / a_k`` is nearest ``sigma_model``."""
        sched = prior.schedule
        k = torch.arange(sched.T)
        ratio = (sched.s(k) / sched.a(k)).double()
        return int(torch.argmin((ratio - sigma_model).abs()))

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        sigma = problem.noise.sigma * self.config.noise_scale * prior.model_scale
        k = self.timestep(prior, sigma)
        op = problem.operator
        # the padded border (engine crop) starts from the replicated edge, which the denoiser then smooths
        y01 = problem.y if isinstance(op, Identity) else op.inner.initial_estimate(problem.y)
        y = prior.to_model(y01)
        a = float(prior.schedule.a(k))
        self.nfe += 1
        x0 = prior.x0(y * a, k)
        callback(1, 1, self.nfe)
        return x0, {"timestep": k}

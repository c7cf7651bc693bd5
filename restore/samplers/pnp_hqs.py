"""Plug-and-play half-quadratic splitting, DPIR style (Zhang, Li, Zuo, Zhang, Van Gool, Timofte; TPAMI 2021).

The diffusion prior serves as a noise-level-conditioned denoiser: to denoise ``z`` at level ``σ`` (public
units) it is fed ``a_k · to_model(z)`` at the level ``k`` whose ``s_k / a_k`` is nearest to ``σ`` in model
units, and one Tweedie call returns ``x0̂``. Starting from the operator's cheap estimate of ``x`` (the
blurred image, bicubic upsampling, the masked image), every iteration does

1. data step ``x = argmin ‖A x - y‖² + ρ_k ‖x - z‖²`` (the operator's closed-form ``prox``), ``ρ_k = λ σ² / σ_k²``;
2. prior step ``z = D(x, σ_k)``;

with ``σ_k`` log-spaced from ``sigma_start`` down to the measurement noise in image units,
``max(σ_n / max(‖A‖, 1), sigma_floor)``, and ``σ = max(σ_n, sigma_floor)`` in ``ρ_k``. DPIR ends at ``σ_n``
itself, which is right for operators that do not amplify (blur, subsampling, masks: ``‖A‖ ≤ 1``); a Radon
transform sums along rays (``‖A‖`` of tens), so its ``σ_n`` is in sinogram units and would end the schedule at
a level far above the image's noise (CT_small, 128², 30 views, 0.5 % sinogram noise: ``σ_n = 0.32``, ``‖A‖ = 61``,
so 0.0053 in the image; the schedule rose from 49/255 to 0.32 and the result fell from 40 to 16 dB).
``σ_k`` is taken as the denoiser's actual level, so the pair of steps is exactly HQS on
``‖A x - y‖² / 2 + λ σ² R(x)``: with ``λ = 1`` and an exact Gaussian denoiser it converges to the MAP
estimate as ``σ_k → 0``. Returns the last ``z``. Cost: one network evaluation per iteration.

A volume ``(B, C, D, H, W)`` (e.g. ``SliceOperator`` CT) is denoised slice by slice, ``chunk`` slices per
network call, and its data step is the operator's (slice-wise) ``prox``: the same result as each slice alone,
with the network's memory bounded by the chunk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError
from ..operators.cg import operator_norm_sq
from ..volumes.slices import stack_slices, volume_slices
from .base import Sampler
from .steps import dihedral


def nearest_level(schedule, sigma_model: float) -> int:
    """The level ``k`` whose VE noise ``s_k / a_k`` is nearest to ``sigma_model`` (in log scale)."""
    abar = schedule.alphas_cumprod
    sig = ((1 - abar) / abar).sqrt()
    return int(torch.argmin((sig.log() - math.log(max(sigma_model, 1e-12))).abs()))


@dataclass(frozen=True)
class PnPHQSConfig:
    """Attributes:
        steps: iterations, one denoiser call each (DPIR deblur/SR: 8; demosaicking: 40).
        lam: λ in ``ρ_k = λ σ² / σ_k²`` (DPIR: 0.23).
        sigma_start: first denoiser level, public units (DPIR: 49/255).
        sigma_end: last denoiser level; ``None`` uses the measurement noise (DPIR), at least ``sigma_floor``.
        sigma_floor: smallest σ used in ρ and as the last level (DPIR: 0.255/255 in ρ; its demosaicking
            ends at 0.6/255 when noiseless).
        chunk: volumes: slices per network call.
        cycle_transforms: DPIR's ``x8``: iteration ``i`` denoises the ``i mod 8``-th flip/rotation of its input
            and turns the result back, so the denoiser's orientation-dependent errors average out over the
            iterations at no extra cost.
        max_gamma: largest data-step weight ``γ = 1/ρ_k`` (``None``: none). The data step amplifies measurement
            noise by up to ``√γ / 2`` along directions the normal matrix barely sees; an operator with many of
            them (single-coil MRI's fixed-phase magnitude view, where the estimated phase varies) then turns
            small noise into large errors that no later step removes.
    """

    steps: int = 8
    lam: float = 0.23
    sigma_start: float = 49 / 255
    sigma_end: float | None = None
    sigma_floor: float = 0.6 / 255
    chunk: int = 8
    cycle_transforms: bool = False
    max_gamma: float | None = None


class PnPHQS(Sampler):
    Config = PnPHQSConfig
    requires = ("operator", "linear")
    chain_batching = True
    volumes = True
    deterministic = True

    def validate(self) -> None:
        cfg = self.config
        if not (cfg.lam > 0 and cfg.sigma_start > 0 and cfg.sigma_floor > 0):
            raise InvalidInputError(f"need lam > 0, sigma_start > 0 and sigma_floor > 0, got lam={cfg.lam}, "
                                    f"sigma_start={cfg.sigma_start}, sigma_floor={cfg.sigma_floor}")
        if cfg.chunk < 1:
            raise InvalidInputError(f"chunk (slices per network call) must be >= 1, got {cfg.chunk}")
        if cfg.max_gamma is not None and not cfg.max_gamma > 0:
            raise InvalidInputError(f"max_gamma must be > 0 or None, got {cfg.max_gamma}")
        if cfg.sigma_end is not None and not cfg.sigma_end >= 0:
            raise InvalidInputError(f"sigma_end must be >= 0 (public units) or None, got {cfg.sigma_end}")

    def sigmas(self, noise_sigma: float) -> list[float]:
        """The log-spaced denoiser levels σ_k in public units, largest first; ``noise_sigma`` is the measurement
        noise in image units (never above the first level: a noisier input starts and stays at its own level)."""
        cfg = self.config
        end = cfg.sigma_end if cfg.sigma_end is not None else max(noise_sigma, cfg.sigma_floor)
        end = max(end, 1e-12)
        start = max(cfg.sigma_start, end)
        return [float(v) for v in np.logspace(math.log10(start), math.log10(end), cfg.steps)]

    @staticmethod
    def image_noise(op, noise_sigma: float, like: torch.Tensor) -> float:
        """``σ_n / max(‖A‖, 1)``: the measurement noise carried into image units by the best-determined
        component (``σ_n`` itself for operators that do not amplify)."""
        if noise_sigma <= 0:
            return 0.0
        return noise_sigma / max(1.0, math.sqrt(max(operator_norm_sq(op, like), 0.0)))

    def level(self, view, sigma: float) -> tuple[int, float]:
        """The denoiser level ``k`` for public noise ``sigma`` and its actual noise in public units."""
        scale = view.prior.model_scale
        k = nearest_level(view.schedule, sigma * scale)
        a, s = view.coefficients(k)
        return k, s / a / scale

    def denoise(self, view, z: torch.Tensor, k: int) -> torch.Tensor:
        """``D(z)`` at level ``k`` in public units: one Tweedie call on ``a_k · to_model(z)``; a volume
        ``(B, C, D, H, W)`` goes through the network ``chunk`` slices at a time."""
        a, _ = view.coefficients(k)
        if z.ndim == 5:
            parts = volume_slices(z, self.config.chunk)
            return stack_slices([view.from_model(view.predict(a * view.to_model(p), k)[1]) for p in parts], z)
        _, x0 = view.predict(a * view.to_model(z), k)
        return view.from_model(x0)

    def sample(self, view, generator, callback):
        cfg = self.config
        problem = view.problem
        op, y = problem.operator, problem.y
        sigma = max(float(problem.noise.sigma), cfg.sigma_floor)
        z = op.initial_estimate(y).to(view.device, view.dtype)
        if tuple(z.shape) != tuple(view.x_shape):  # e.g. a padded unknown: start from the pseudo-inverse
            z = op.pinv(y).to(view.device, view.dtype)
        noise_image = self.image_noise(op, float(problem.noise.sigma), z)
        levels = self.sigmas(noise_image)
        for i, sigma_k in enumerate(levels):
            with torch.no_grad():
                k, actual = self.level(view, sigma_k)
                gamma = actual**2 / (cfg.lam * sigma**2)  # 1/ρ_k
                x = op.prox(z, y, gamma if cfg.max_gamma is None else min(gamma, cfg.max_gamma))
                if cfg.cycle_transforms:
                    z = dihedral(self.denoise(view, dihedral(x, i), k), i, inverse=True)
                else:
                    z = self.denoise(view, x, k)
            callback(i + 1, len(levels), view.nfe)
        return view.to_model(z), {"sigmas": levels, "noise_image": noise_image}

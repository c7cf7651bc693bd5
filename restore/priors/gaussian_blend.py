"""A network prior's denoiser blended with a stationary Gaussian's where the network is worse.

A prior trained for restoration sees the high noise levels rarely and predicts noise there: its
``x0̂ = (x - s epŝ) / a`` multiplies the eps error by ``s / a`` (157 at the top of the linear schedule). On
held-out photographs the shipped priors' ``x0̂`` is worse than the image mean from level ~700 (RMS 4.6 in
[-1, 1] units at level 999, against 0.5 for the mean), so a sampler that starts from pure noise, and every
unconditional draw, wanders far outside the data range. The Gaussian fit of natural images
(:func:`restore.priors.stationary.default_stationary_prior`) gives a linear denoiser that is far better
there (RMS 0.47 at level 999).

:class:`GaussianBlend` gives the network's ``x0̂`` the weight ``w`` and the Gaussian's ``1 - w``, a logistic
function of the noise-to-signal ratio ``r = s / a``: ``w = 1 / (1 + (r / r_c)^(1 / width))`` (one where that
exceeds 0.999). :func:`fit_gaussian_blend` takes the least-squares optimal weight at each of a set of levels
on training crops, then fits ``r_c`` and ``width`` to them. The weight is smooth in the level rather than
linear between the measured weights, because the higher-order ODE solvers extrapolate the network's output
across levels. Blending the network's output in any prediction type is the same blend of ``x0̂`` (the
conversions are affine in the output). A prior folder carries the two numbers as ``gaussian_blend`` in
``restore_prior.json``; ``python -m restore_models.calibrate FOLDER`` fits and writes them.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import torch

from ..errors import InvalidInputError

#: levels the optimal weights are measured at (linear schedule, T = 1000)
DEFAULT_LEVELS = (50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850, 900, 950, 999)
#: above this the network is used alone (the blend's effect there is below 0.1 % of the two estimates' gap)
FULL_WEIGHT = 0.999


@dataclass(frozen=True)
class GaussianBlend:
    """The network's weight ``w = 1 / (1 + (r / ratio_center)^(1 / width))`` at noise-to-signal ratio ``r = s/a``.

    Attributes:
        ratio_center: the ratio ``s / a`` (model units) where network and Gaussian weigh the same.
        width: how gradually the weight falls, in natural-log units of the ratio.
    """

    ratio_center: float
    width: float

    def __post_init__(self) -> None:
        if not (self.ratio_center > 0 and self.width > 0):
            raise InvalidInputError(f"gaussian_blend needs a positive ratio_center and width, got "
                                    f"{self.ratio_center} and {self.width}")

    @classmethod
    def from_dict(cls, data: dict) -> "GaussianBlend":
        try:
            return cls(float(data["ratio_center"]), float(data["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"gaussian_blend in restore_prior.json is malformed ({exc}); refit it with "
                                    f"`python -m restore_models.calibrate FOLDER --data DIR`") from None

    def to_dict(self) -> dict:
        return {"ratio_center": round(self.ratio_center, 4), "width": round(self.width, 4)}

    def digest(self) -> str:
        """A short hash of the parameters: what fingerprints and benchmark records add for a blended prior."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:6]

    def weight(self, ratio: torch.Tensor) -> torch.Tensor:
        """``w`` at noise-to-signal ratios ``s / a`` (any shape), float64."""
        z = (torch.log(ratio.detach().cpu().to(torch.float64)) - math.log(self.ratio_center)) / self.width
        w = torch.sigmoid(-z)
        return torch.where(w > FULL_WEIGHT, torch.ones_like(w), w)


def stationary_for(prior):
    """The shipped stationary Gaussian fit with ``prior``'s channels, on ``prior``'s noise schedule."""
    from .stationary import StationaryGaussianPrior, default_stationary_prior

    fit = default_stationary_prior(prior.channels)
    return StationaryGaussianPrior(fit.basis, fit.mean, fit.spectra, schedule=prior.schedule)


def fit_gaussian_blend(prior, images: torch.Tensor, levels=DEFAULT_LEVELS,
                       generator: torch.Generator | None = None) -> tuple[GaussianBlend, list[dict]]:
    """The blend that best matches the per-level least-squares weights on ``images``.

    At each level the optimal weight is ``w_k = <x0 - g, n - g> / |n - g|²`` (``n``: the network's ``x0̂``,
    ``g``: the Gaussian's), clamped to [0, 1]; the logistic's two parameters minimise ``Σ_k c_k (w(r_k) - w_k)²``
    with ``c_k = |n - g|² / |x0 - (w_k n + (1 - w_k) g)|²``: ``c_k (w - w_k)²`` is the share of the level's
    best squared error that a weight ``w`` adds, so every level counts by the dB it would lose.

    Args:
        prior: a VP prior; a blend it already carries is left out of the fit (``n`` is the network alone).
        images: ``(B, C, H, W)`` training crops in the prior's model units (never validation images).
        levels: training levels to measure at.
        generator: draws the noise.

    Returns:
        the blend, and per level ``{"level", "ratio", "optimal", "fitted"}`` for the record.
    """
    if images.ndim != 4 or images.shape[1] != prior.channels:
        raise InvalidInputError(f"expected training crops (B, {prior.channels}, H, W), got {tuple(images.shape)}")
    gauss = stationary_for(prior).to(images.device)
    previous = getattr(prior, "gaussian_blend", None)
    if previous is not None:
        prior.set_gaussian_blend(None)
    try:
        measured = _optimal_weights(prior, gauss, images, levels, generator)
    finally:
        if previous is not None:
            prior.set_gaussian_blend(previous)
    ratios = torch.tensor([m[0] for m in measured], dtype=torch.float64)
    blend = fit_logistic(ratios, torch.tensor([m[1] for m in measured], dtype=torch.float64),
                         torch.tensor([m[2] for m in measured], dtype=torch.float64))
    fitted = blend.weight(ratios)
    record = [{"level": int(k), "ratio": round(m[0], 4), "optimal": round(m[1], 4), "fitted": round(float(f), 4)}
              for k, m, f in zip(levels, measured, fitted)]
    return blend, record


def fit_logistic(ratios: torch.Tensor, target: torch.Tensor, cost: torch.Tensor) -> GaussianBlend:
    """The blend minimising ``Σ cost (w(ratio) - target)²`` (grid search: 800 centres from a factor e² below
    the smallest ratio to e² above the largest, 120 widths from 0.05 to 3, log-spaced)."""
    log_r = torch.log(ratios.to(torch.float64))
    centres = torch.linspace(float(log_r.min()) - 2, float(log_r.max()) + 2, 800, dtype=torch.float64)
    widths = torch.logspace(math.log10(0.05), math.log10(3.0), 120, dtype=torch.float64)
    w = torch.sigmoid(-(log_r[None, None] - centres[:, None, None]) / widths[None, :, None])
    loss = (cost * (w - target) ** 2).sum(-1)
    i, j = divmod(int(loss.argmin()), len(widths))
    return GaussianBlend(math.exp(float(centres[i])), float(widths[j]))


def _optimal_weights(prior, gauss, images, levels, generator) -> list[tuple[float, float, float]]:
    """``(s/a, optimal weight, added share of the best error per squared unit of weight)`` at each level."""
    out = []
    with torch.no_grad():
        for k in levels:
            a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
            noise = torch.randn(images.shape, generator=generator, dtype=images.dtype).to(images.device)
            x = a * images + s * noise
            n, g = prior.x0(x, k), gauss.x0(x, k)
            d = (n - g).double()
            den = float(d.pow(2).sum())
            w = float(((images - g).double() * d).sum()) / den if den > 0 else 1.0
            w = min(max(w, 0.0), 1.0)
            best = float((images - g - w * d).double().pow(2).sum())
            out.append((s / a, w, den / max(best, 1e-30)))
    return out

"""Image quality metrics with an explicit data range."""
from __future__ import annotations

import numpy as np
import torch

from .errors import ShapeError


def _check(x: torch.Tensor, ref: torch.Tensor) -> None:
    if x.shape != ref.shape:
        raise ShapeError(f"metric inputs must have the same shape, got {tuple(x.shape)} and {tuple(ref.shape)}")


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over the whole tensor (``data_range`` = peak value)."""
    _check(x, ref)
    mse = float(((x.double() - ref.double()).abs() ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM (scikit-image, Gaussian window) over images and channels of ``(B, C, H, W)`` tensors.

    Images under 11 pixels on a side (the Gaussian window's extent) are compared with the largest odd window that fits;
    below 3 pixels SSIM is undefined and ``nan`` is returned.
    """
    from skimage.metrics import structural_similarity

    _check(x, ref)
    side = min(x.shape[-2:])
    if side < 3:
        return float("nan")
    xs, rs = x.detach().cpu().double().numpy(), ref.detach().cpu().double().numpy()
    xs = xs.reshape((-1,) + xs.shape[-2:])
    rs = rs.reshape((-1,) + rs.shape[-2:])
    # gaussian_weights ignores win_size: small images fall back to a uniform window that fits.
    small = {"gaussian_weights": False, "win_size": min(7, side if side % 2 else side - 1)} if side < 11 else {
        "gaussian_weights": True, "sigma": 1.5}
    vals = [structural_similarity(a, b, data_range=data_range, use_sample_covariance=False, **small)
            for a, b in zip(xs, rs)]
    return float(np.mean(vals))

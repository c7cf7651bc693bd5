"""Filtered back-projection (parallel and fan beam) with ramp and windowed filters.

The ramp is the band-limited Ram-Lak filter built from its spatial-domain samples (Kak & Slaney eq. 61, as
``skimage.transform.iradon`` does, which avoids the DC offset of a sampled ``|ω|``); windows multiply it.
Back-projection uses the matched adjoint of the operator. Fan beam (flat virtual detector at the
isocentre): cosine pre-weighting ``D/√(D² + s²)`` and the ``1/U²`` distance weight per ray sample.
"""
from __future__ import annotations

import math

import torch

from restore.errors import InvalidInputError

from .radon import Radon

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def fourier_filter(size: int, name: str = "ramp", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Frequency response ``(size,)`` (FFT order) of a reconstruction filter; ``size`` even."""
    if name not in FILTERS:
        raise InvalidInputError(f"unknown FBP filter '{name}'; choose one of {', '.join(FILTERS)}")
    n = torch.cat([torch.arange(1, size // 2 + 1, 2), torch.arange(size // 2 - 1, 0, -2)]).to(torch.float64)
    f = torch.zeros(size, dtype=torch.float64)
    f[0] = 0.25
    f[1::2] = -1 / (math.pi * n) ** 2
    filt = 2 * torch.fft.fft(f).real
    if name == "shepp-logan":
        omega = math.pi * torch.fft.fftfreq(size, dtype=torch.float64)[1:]
        filt[1:] *= torch.sin(omega) / omega
    elif name == "cosine":
        freq = torch.linspace(0, math.pi, size + 1, dtype=torch.float64)[:-1]
        filt *= torch.fft.fftshift(torch.sin(freq))
    elif name == "hamming":
        filt *= torch.fft.fftshift(torch.hamming_window(size, periodic=False, dtype=torch.float64))
    elif name == "hann":
        filt *= torch.fft.fftshift(torch.hann_window(size, periodic=False, dtype=torch.float64))
    return filt.to(dtype)


def filter_sinogram(y: torch.Tensor, name: str = "ramp", det_spacing: float = 1.0) -> torch.Tensor:
    """Filter ``(B, C, V, n_det)`` along the detector axis (zero-padded to a power of two ≥ 2·n_det)."""
    n_det = y.shape[-1]
    size = max(64, 1 << int(math.ceil(math.log2(2 * n_det))))
    filt = fourier_filter(size, name, y.dtype).to(y.device)
    spec = torch.fft.fft(torch.nn.functional.pad(y, (0, size - n_det)), dim=-1) * filt
    return torch.fft.ifft(spec, dim=-1).real[..., :n_det] / det_spacing


def _angular_step(op: Radon) -> float:
    """Angle (radians) each view stands for: the median spacing of the sorted angles."""
    a = torch.sort(torch.deg2rad(op.angles)).values
    if a.numel() < 2:
        return math.pi
    return float(torch.median(a[1:] - a[:-1]))


def fbp(op: Radon, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
    """Filtered back-projection ``(B, C, V, n_det) -> (B, C, H, W)`` for a :class:`Radon` geometry.

    A complete parallel scan covers 180°, a complete fan scan 360° (each ray measured twice, hence the
    extra ½). Limited-angle and sparse-view data give the usual streaks/wedge artefacts.
    """
    op._check_sinogram(y)
    dtheta = _angular_step(op)
    if op.geometry == "parallel":
        return op._backproject(filter_sinogram(y, filter, op.det_spacing)) * (dtheta / 2)
    dist = op.source_distance
    _, _, s = op._rays()
    pre = (dist / torch.sqrt(dist**2 + s**2)).to(y.dtype).to(y.device)
    q = filter_sinogram(y * pre, filter, op.det_spacing)
    weights = _fan_weights(op)
    return op._backproject(q, weights) * (dtheta / 4)


def _fan_weights(op: Radon) -> torch.Tensor:
    """``1/U²`` at every ray sample ``(V, n_t, n_det)``; ``U`` = depth along the central ray / D."""
    p0, d, _ = op._rays()
    pts = p0[:, None] + op._t[None, :, None, None] * d[:, None]
    theta = torch.deg2rad(op.angles)
    central = torch.stack([-torch.sin(theta), torch.cos(theta)], dim=-1)[:, None, None]
    u = (op.source_distance + (pts * central).sum(-1)) / op.source_distance
    return 1.0 / u.clamp_min(1e-6) ** 2

"""Synthetic phantoms (Shepp–Logan and random ellipses, 2D and 3D) for tests, demos and prior training.

All functions return torch tensors with values in [0, 1]: 2D phantoms have shape (1, 1, H, W), 3D phantoms
(1, 1, D, H, W). Coordinates are normalised to [-1, 1] along every axis (y pointing up in 2D, as in the
classic definition), so a phantom looks the same at any resolution.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .errors import InvalidInputError

# Modified Shepp–Logan (Toft 1996): intensity, semi-axes a, b, centre x0, y0, rotation (degrees).
# The additive intensities give a maximum of 1.0 and a minimum of 0.0 outside the skull.
_SHEPP_LOGAN_2D = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0),
    (0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0),
    (0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0),
    (0.1, 0.0230, 0.0230, 0.0, -0.606, 0.0),
    (0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0),
)

# 3D modified Shepp–Logan (Kak & Slaney, with Toft's contrasts): intensity, semi-axes a, b, c,
# centre x0, y0, z0, rotation about z (degrees).
_SHEPP_LOGAN_3D = (
    (1.0, 0.6900, 0.920, 0.810, 0.0, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.780, 0.0, -0.0184, 0.0, 0.0),
    (-0.2, 0.1100, 0.310, 0.220, 0.22, 0.0, 0.0, -18.0),
    (-0.2, 0.1600, 0.410, 0.280, -0.22, 0.0, 0.0, 18.0),
    (0.1, 0.2100, 0.250, 0.410, 0.0, 0.35, -0.15, 0.0),
    (0.1, 0.0460, 0.046, 0.050, 0.0, 0.1, 0.25, 0.0),
    (0.1, 0.0460, 0.046, 0.050, 0.0, -0.1, 0.25, 0.0),
    (0.1, 0.0460, 0.023, 0.050, -0.08, -0.605, 0.0, 0.0),
    (0.1, 0.0230, 0.023, 0.020, 0.0, -0.606, 0.0, 0.0),
    (0.1, 0.0230, 0.046, 0.020, 0.06, -0.605, 0.0, 0.0),
)


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if h < 1 or w < 1:
        raise InvalidInputError(f"phantom size must be positive, got {size!r}; pass e.g. 128 or (128, 96)")
    return h, w


def _size3(size: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(size, int):
        d = h = w = size
    else:
        if len(size) != 3:
            raise InvalidInputError(f"3D phantom shape must be an int or (D, H, W), got {size!r}")
        d, h, w = (int(s) for s in size)
    if min(d, h, w) < 1:
        raise InvalidInputError(f"phantom shape must be positive, got {size!r}; pass e.g. 64 or (32, 64, 64)")
    return d, h, w


def _grid2(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Pixel centres in [-1, 1]; y decreases with the row index so the phantom is upright.
    ys = (1 - (2 * torch.arange(h, dtype=torch.float64) + 1) / h)
    xs = ((2 * torch.arange(w, dtype=torch.float64) + 1) / w - 1)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return x, y


def _grid3(d: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    zs = ((2 * torch.arange(d, dtype=torch.float64) + 1) / d - 1)
    ys = (1 - (2 * torch.arange(h, dtype=torch.float64) + 1) / h)
    xs = ((2 * torch.arange(w, dtype=torch.float64) + 1) / w - 1)
    return torch.meshgrid(zs, ys, xs, indexing="ij")


def _paint2(ellipses, h: int, w: int) -> torch.Tensor:
    x, y = _grid2(h, w)
    img = torch.zeros(h, w, dtype=torch.float64)
    for val, a, b, x0, y0, phi in ellipses:
        c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
        xr = (x - x0) * c + (y - y0) * s
        yr = -(x - x0) * s + (y - y0) * c
        img += val * ((xr / a) ** 2 + (yr / b) ** 2 <= 1.0)
    return img


def _paint3(ellipsoids, d: int, h: int, w: int) -> torch.Tensor:
    z, y, x = _grid3(d, h, w)
    vol = torch.zeros(d, h, w, dtype=torch.float64)
    for val, a, b, cz, x0, y0, z0, phi in ellipsoids:
        c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
        xr = (x - x0) * c + (y - y0) * s
        yr = -(x - x0) * s + (y - y0) * c
        vol += val * ((xr / a) ** 2 + (yr / b) ** 2 + ((z - z0) / cz) ** 2 <= 1.0)
    return vol


def shepp_logan_2d(size: int | Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Modified Shepp–Logan head phantom.

    Args:
        size: H = W, or (H, W).
        dtype: Output dtype.

    Returns:
        Tensor (1, 1, H, W) in [0, 1].
    """
    h, w = _size2(size)
    return _paint2(_SHEPP_LOGAN_2D, h, w).clamp(0, 1).to(dtype)[None, None]


def shepp_logan_3d(size: int | Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """3D modified Shepp–Logan head phantom (axial slices along D).

    Args:
        size: D = H = W, or (D, H, W).
        dtype: Output dtype.

    Returns:
        Tensor (1, 1, D, H, W) in [0, 1].
    """
    d, h, w = _size3(size)
    return _paint3(_SHEPP_LOGAN_3D, d, h, w).clamp(0, 1).to(dtype)[None, None]


def _random_params(generator: torch.Generator | None, n: int, dims: int):
    g = generator
    u = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    vals = 0.1 + 0.5 * u(n)
    axes = 0.05 + 0.35 * u(n, dims)
    centres = (u(n, dims) * 2 - 1) * 0.6
    angles = u(n) * 180.0
    return vals, axes, centres, angles


def random_ellipses_2d(size: int | Sequence[int], generator: torch.Generator | None = None,
                       n_ellipses: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random overlapping ellipses inside a body ellipse, normalised to [0, 1].

    Args:
        size: H = W, or (H, W).
        generator: Seeded torch.Generator (CPU) for reproducibility.
        n_ellipses: Number of inner ellipses.
        dtype: Output dtype.

    Returns:
        Tensor (1, 1, H, W) in [0, 1], max exactly 1.
    """
    h, w = _size2(size)
    vals, axes, centres, angles = _random_params(generator, n_ellipses, 2)
    body = [(0.3, 0.8, 0.9, 0.0, 0.0, 0.0)]
    inner = [(float(vals[i]), float(axes[i, 0]), float(axes[i, 1]), float(centres[i, 0]), float(centres[i, 1]),
              float(angles[i])) for i in range(n_ellipses)]
    img = _paint2(body + inner, h, w)
    return (img / img.max().clamp_min(1e-12)).to(dtype)[None, None]


def random_ellipses_3d(shape: int | Sequence[int], generator: torch.Generator | None = None,
                       n_ellipsoids: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random overlapping ellipsoids inside a body ellipsoid, normalised to [0, 1].

    Args:
        shape: D = H = W, or (D, H, W).
        generator: Seeded torch.Generator (CPU) for reproducibility.
        n_ellipsoids: Number of inner ellipsoids.
        dtype: Output dtype.

    Returns:
        Tensor (1, 1, D, H, W) in [0, 1], max exactly 1.
    """
    d, h, w = _size3(shape)
    vals, axes, centres, angles = _random_params(generator, n_ellipsoids, 3)
    body = [(0.3, 0.8, 0.9, 0.85, 0.0, 0.0, 0.0, 0.0)]
    inner = [(float(vals[i]), float(axes[i, 0]), float(axes[i, 1]), float(axes[i, 2]), float(centres[i, 0]),
              float(centres[i, 1]), float(centres[i, 2]), float(angles[i])) for i in range(n_ellipsoids)]
    vol = _paint3(body + inner, d, h, w)
    return (vol / vol.max().clamp_min(1e-12)).to(dtype)[None, None]

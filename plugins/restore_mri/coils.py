"""Coil sensitivity maps: a simulated birdcage and an ESPIRiT-style estimate from the calibration region.

ESPIRiT (Uecker et al. 2014), as implemented here:

1. calibration matrix from the fully sampled centre (``k × k`` sliding windows over all coils, rows =
   windows, columns = ``C · k²``), SVD, keep the right singular vectors with ``σ > threshold · σ_max``;
2. the kept kernels, zero-padded to ``(H, W)`` and inverse-FFT'd, give per pixel the ``C × C`` matrix
   ``G(r) = Σ_n v̂_n(r) v̂_n(r)ᴴ / k²`` whose eigenvector of eigenvalue ≈ 1 is the coil sensitivity at r;
3. maps = top eigenvector (times a mask where the top eigenvalue exceeds ``crop``, off by default),
   phase referenced to coil 0.

Simplifications (documented): one set of maps (no second ESPIRiT eigenvalue set / soft-SENSE), the
eigenvalue mask (when used) is hard, ``G`` is built from the kernels' autocorrelation (``C²`` FFTs) and its
eigenvectors are computed in complex64.
"""
from __future__ import annotations

import math

import torch

from restore.errors import InvalidInputError, ShapeError

from .fft import fft2c, ifft2c, rss


def birdcage_maps(coils: int, shape: tuple[int, int], radius: float = 1.5,
                  dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """Simulated birdcage coils ``(C, H, W)``: ``(1 / d) e^{iφ}`` around a circle of ``radius`` (in units
    of the half field of view), normalised to unit root-sum-of-squares at every pixel."""
    if coils < 1:
        raise InvalidInputError(f"need at least one coil, got {coils}")
    H, W = shape
    real = torch.float64
    c = torch.arange(coils, dtype=real)[:, None, None]
    y = torch.arange(H, dtype=real)[None, :, None]
    x = torch.arange(W, dtype=real)[None, None, :]
    coil_x, coil_y = radius * torch.cos(c * 2 * math.pi / coils), radius * torch.sin(c * 2 * math.pi / coils)
    xc = (x - W / 2) / (W / 2) - coil_x
    yc = (y - H / 2) / (H / 2) - coil_y
    dist = torch.sqrt(xc**2 + yc**2)
    phi = torch.atan2(xc, -yc) - c * 2 * math.pi / coils
    maps = torch.polar(1 / dist, phi)
    return (maps / rss(maps, dim=0)).to(dtype)


def calibration_region(mask: torch.Tensor, shape: tuple[int, int], max_size: int = 32) -> tuple[slice, slice]:
    """The largest centred fully sampled rectangle of ``mask`` (capped at ``max_size`` per side)."""
    m = torch.broadcast_to(torch.as_tensor(mask) != 0, shape)
    H, W = shape
    cy, cx = H // 2, W // 2

    def grow(h: int, w: int, dh: int, dw: int) -> tuple[int, int]:
        while True:
            nh, nw = h + dh, w + dw
            if 2 * nh > min(max_size, H) or 2 * nw > min(max_size, W) or cy - nh < 0 or cx - nw < 0:
                return h, w
            if not bool(m[cy - nh: cy + nh, cx - nw: cx + nw].all()):
                return h, w
            h, w = nh, nw

    h, w = grow(0, 0, 1, 1)
    h, w = grow(h, w, 0, 1)
    h, w = grow(h, w, 1, 0)
    return slice(cy - h, cy + h), slice(cx - w, cx + w)


def espirit_maps(kspace: torch.Tensor, mask: torch.Tensor | None = None, kernel: int = 6,
                 threshold: float = 0.02, crop: float = 0.0, calib: int = 32) -> torch.Tensor:
    """ESPIRiT-style coil maps from the fully sampled centre of ``kspace``.

    Args:
        kspace: ``(C, H, W)`` complex k-space of one slice (undersampled is fine).
        mask: the sampling mask (``(H, W)`` or ``(1, W)``); ``None`` = fully sampled.
        kernel: calibration kernel size ``k``.
        threshold: keep singular vectors with ``σ > threshold · σ_max``.
        crop: zero the maps where the top eigenvalue is below ``crop`` (ESPIRiT uses about 0.8-0.95). The
            default 0 keeps unit-norm maps everywhere, so the data also pin the background to zero; a cropped
            map leaves those pixels unconstrained, and a diffusion prior then paints structures there.
        calib: maximum calibration region side.

    Returns:
        ``(C, H, W)`` complex maps.
    """
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ShapeError(f"ESPIRiT needs complex k-space (C, H, W) of one slice, got {tuple(kspace.shape)}")
    C, H, W = kspace.shape
    mask = torch.ones(H, W) if mask is None else mask
    rows, cols = calibration_region(mask, (H, W), calib)
    region = kspace[:, rows, cols].to(torch.complex128)
    if region.shape[1] < kernel + 2 or region.shape[2] < kernel + 2:
        raise InvalidInputError(
            f"the fully sampled centre is only {region.shape[1]}x{region.shape[2]} samples, too small for "
            f"ESPIRiT with kernel {kernel}; use a larger --center-fraction or --coil-maps birdcage|FILE.npy")
    patches = region.unfold(1, kernel, 1).unfold(2, kernel, 1)  # (C, h, w, k, k)
    A = patches.permute(1, 2, 0, 3, 4).reshape(-1, C * kernel * kernel)
    # Right singular vectors of A from the small Gram matrix AᴴA (eigenvalues σ²): far cheaper than an SVD.
    ev, vecs = torch.linalg.eigh(A.conj().T @ A)
    sigma = ev.clamp_min(0).sqrt()
    V = vecs[:, sigma > threshold * sigma.max()].conj().T  # rows: kept kernels over (C, k, k)
    # Σ_n v̂_n v̂_nᴴ is the Fourier transform of the kernels' autocorrelation: build that (2k-1)² kernel per
    # coil pair and do C² FFTs instead of one per kept kernel and coil.
    M = (V.T @ V.conj()).reshape(C, kernel, kernel, C, kernel, kernel)
    K = torch.zeros(C, C, 2 * kernel - 1, 2 * kernel - 1, dtype=torch.complex128)
    for i in range(kernel):
        for j in range(kernel):
            K[:, :, kernel - 1 - i: 2 * kernel - 1 - i, kernel - 1 - j: 2 * kernel - 1 - j] += \
                M[:, :, :, :, i, j].permute(0, 3, 1, 2)
    padded = torch.zeros(C, C, H, W, dtype=torch.complex128)
    y0, x0 = H // 2 - (kernel - 1), W // 2 - (kernel - 1)
    padded[..., y0: y0 + 2 * kernel - 1, x0: x0 + 2 * kernel - 1] = K
    G = (ifft2c(padded) * (math.sqrt(H * W) / kernel**2)).permute(2, 3, 0, 1).to(torch.complex64)
    evals, evecs = torch.linalg.eigh(G)
    top, vec = evals[..., -1], evecs[..., -1]  # (H, W), (H, W, C)
    ref = vec[..., :1]
    vec = vec * (ref.conj() / ref.abs().clamp_min(1e-12))
    maps = vec.permute(2, 0, 1) * (top > crop)
    return maps.to(kspace.dtype)


def lowres_maps(kspace: torch.Tensor, mask: torch.Tensor | None = None, calib: int = 32,
                eps: float = 0.02) -> torch.Tensor:
    """Coil maps ``(C, H, W)`` as RSS-normalised low-resolution coil images (the "sum of squares" estimate).

    The fully sampled centre of each coil (Hann-windowed, zero elsewhere) gives smooth coil images ``I_c``;
    the maps are ``I_c / sqrt(Σ|I_c|² + (eps·max)²)``. Unlike an ESPIRiT eigenvector it needs no calibration
    matrix, so it also works with the few centre lines of 8× masks and on objects that fill the field of
    view; where the image is dark the maps fade (the ``eps`` term) instead of taking an arbitrary value.

    Args:
        kspace: ``(C, H, W)`` complex k-space of one slice; mask: the sampling mask (``None`` = full);
        calib: maximum calibration region side; eps: floor of the RSS, relative to its maximum.
    """
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ShapeError(f"coil-map estimation needs complex k-space (C, H, W) of one slice, got {tuple(kspace.shape)}")
    C, H, W = kspace.shape
    mask = torch.ones(H, W) if mask is None else mask
    rows, cols = calibration_region(mask, (H, W), calib)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    if h < 2 or w < 2:
        raise InvalidInputError("the mask has no fully sampled centre to estimate coil maps from; use a mask with "
                                "a calibration region (--center-fraction > 0) or --coil-maps FILE.npy")
    window = torch.zeros(H, W, dtype=torch.float64)
    hy = torch.hann_window(h + 2, periodic=False, dtype=torch.float64)[1:-1]
    hx = torch.hann_window(w + 2, periodic=False, dtype=torch.float64)[1:-1]
    window[rows, cols] = hy[:, None] * hx[None, :]
    images = ifft2c(kspace.to(torch.complex128) * window)
    norm = rss(images, dim=0)
    maps = images / torch.sqrt(norm**2 + (eps * norm.max()) ** 2)
    return maps.to(kspace.dtype)


def simulate_kspace(image: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Fully sampled multi-coil k-space ``(B, C, H, W)`` of a complex image ``(B, 1, H, W)``."""
    return fft2c(maps.to(image.dtype) * image)


"""Centred orthonormal 2D FFTs over the last two dimensions (k-space centre at index ``N // 2``)."""
from __future__ import annotations

import torch


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Image -> k-space: ``fftshift(fft2(ifftshift(x)))`` with ``norm="ortho"`` over ``(H, W)``."""
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """k-space -> image, the exact inverse (and adjoint) of :func:`fft2c`."""
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(k, norm="ortho"), dim=(-2, -1))


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root sum of squares over the coil dimension (keeps it, size 1): ``(B, C, H, W) -> (B, 1, H, W)``."""
    return (x.abs() ** 2).sum(dim=dim, keepdim=True).sqrt()

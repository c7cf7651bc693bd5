"""Super-resolution operators: ``(B, C, f·H, f·W)`` high-res image -> ``(B, C, H, W)`` low-res image.

``avgpool``: mean over ``f × f`` blocks; ``A Aᵀ = I / f²`` gives closed-form ``pinv`` and ``prox``.
``bicubic``: antialiased bicubic filter (Keys a = -0.5, stretched by ``f`` as in MATLAB ``imresize``), then
decimation — an explicit linear map whose adjoint is exact; ``pinv`` is CG. The filter reaches past the
image edge; ``boundary`` says what is there (see :mod:`restore_imaging.boundary`; ``valid`` makes the
unknown ``f·(h, w)`` plus the filter's reach). Average pooling never reaches past its block, so every
boundary model gives the same ``avgpool`` operator.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from restore.errors import InvalidInputError, ShapeError
from restore.operators import LinearOperator

from .blur import _complex_dtype, kernel_transfer, wrapped_transfer
from .boundary import Boundary, BoundaryFilter, check_boundary
from .specs import RESIZE_METHODS as METHODS


def _factor(factor) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int) and not (
            isinstance(factor, float) and factor.is_integer()):
        raise InvalidInputError(f"super-resolution factor must be a positive integer, got {factor!r}; e.g. --scale 4")
    if int(factor) < 1:
        raise InvalidInputError(f"super-resolution factor must be >= 1, got {factor!r}; e.g. --scale 4")
    return int(factor)


def _check(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what} expects images of shape (B, C, H, W), got {tuple(x.shape)}")


class _SuperResolution(LinearOperator):
    """Shared shape logic: the input (high-res) side is ``factor`` times the output (low-res) side."""

    method = ""

    def __init__(self, factor: int = 4, boundary: Boundary = "circular") -> None:
        super().__init__()
        self.factor = _factor(factor)
        self.boundary = check_boundary(boundary)

    def _check_highres(self, x: torch.Tensor) -> None:
        _check(x, f"super-resolution ({self.method})")
        H, W = x.shape[-2:]
        f = self.factor
        if H % f or W % f:
            raise ShapeError(
                f"super-resolution x{f} needs a high-res size divisible by {f}, got {H}x{W}; crop the image to "
                f"{H - H % f}x{W - W % f}")

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        return s[:-2] + (s[-2] * self.factor, s[-1] * self.factor)

    def _extension(self) -> tuple[int, int]:
        """Extra rows and columns of the unknown over the field of view (none for block averaging)."""
        return 0, 0

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the unknown inside the observation's field of view: all of it."""
        return x

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        """Bicubic upsampling of the low-res image, ``(B, C, f·H, f·W)``."""
        _check(y, f"super-resolution ({self.method})")
        if self.factor == 1:
            return y.clone()
        return F.interpolate(y, scale_factor=self.factor, mode="bicubic", align_corners=False)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, method={self.method}, boundary={self.boundary}"


class AvgPoolSR(_SuperResolution):
    """Average pooling over ``factor × factor`` blocks (``super-resolution`` with ``method="avgpool"``)."""

    method = "avgpool"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_highres(x)
        return F.avg_pool2d(x, self.factor)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        _check(y, "super-resolution (avgpool) adjoint")
        f = self.factor
        return y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1) / f**2

    def svd(self, x_shape):
        """Block-DCT SVD: one singular value ``1/f`` per block (its mean), the rest is null space."""
        from restore.operators.svd import BlockMeanSVD

        if len(x_shape) != 4 or x_shape[-2] % self.factor or x_shape[-1] % self.factor:
            return None
        return BlockMeanSVD(x_shape, self.factor)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """``Aᵀ (A Aᵀ)⁻¹ y = f² Aᵀ y``: every low-res pixel replicated over its block."""
        return self.adjoint(y) * self.factor**2

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        # AᵀA = P / f² with P the projection onto block-constant images, so (I + γP/f²)⁻¹ = I - c P.
        f2 = self.factor**2
        w = z + gamma * self.adjoint(y)
        c = (gamma / f2) / (1 + gamma / f2)
        return w - c * f2 * self.adjoint(F.avg_pool2d(w, self.factor))


def cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (``a = -0.5`` as in MATLAB ``imresize``), support ``|t| < 2``."""
    t = t.abs()
    t2, t3 = t**2, t**3
    near = (a + 2) * t3 - (a + 3) * t2 + 1
    far = a * t3 - 5 * a * t2 + 8 * a * t - 4 * a
    return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def bicubic_taps(factor: int) -> tuple[torch.Tensor, int]:
    """1D antialiased bicubic weights ``g(d)`` for ``d = dmin … dmax``, returned with ``dmin``.

    Low-res sample ``i`` sits at high-res coordinate ``i f + (f - 1) / 2`` (pixel centres aligned) and is
    ``Σ_d g(d) x[i f + d]`` with ``g(d) = cubic((d - (f - 1) / 2) / f)`` normalised to sum 1.
    """
    centre = (factor - 1) / 2
    dmin, dmax = math.floor(centre - 2 * factor) + 1, math.ceil(centre + 2 * factor) - 1
    d = torch.arange(dmin, dmax + 1, dtype=torch.float64)
    g = cubic((d - centre) / factor)
    return g / g.sum(), dmin


class BicubicSR(BoundaryFilter, _SuperResolution):
    """Antialiased bicubic downsampling by ``factor`` (``super-resolution`` with ``method="bicubic"``).

    ``A = S C``: ``C`` is the separable bicubic filter (FFT), ``S`` keeps every ``factor``-th pixel.
    ``Aᵀ = Cᵀ Sᵀ`` (zero insertion, then correlation's adjoint), exact to rounding. ``boundary`` as in
    :mod:`restore_imaging.boundary`; ``circular`` filters periodically on the ``f·(h, w)`` grid.
    """

    method = "bicubic"

    def __init__(self, factor: int = 4, boundary: Boundary = "circular") -> None:
        super().__init__(factor, boundary)
        g, self.dmin = bicubic_taps(self.factor)
        self.register_buffer("taps", g)
        self._cache: dict[tuple, torch.Tensor] = {}

    def transfer(self, H: int, W: int, device, dtype: torch.dtype) -> torch.Tensor:
        """Real-FFT transfer function of the filter ``C`` on ``H × W`` high-res images."""
        key = (H, W, torch.device(device), dtype)
        if key not in self._cache:
            n = self.taps.numel()
            if n > H or n > W:
                raise InvalidInputError(
                    f"bicubic x{self.factor} downsampling needs a {n}x{n} filter, larger than the {H}x{W} image; "
                    "use a smaller --scale, a larger image or --method avgpool")
            g2 = torch.outer(self.taps, self.taps).to(torch.float64)
            # Correlation with g is convolution with g flipped: transfer = conj of g's own transfer.
            t = kernel_transfer(g2, H, W, (-self.dmin, -self.dmin)).conj()
            self._cache[key] = t.to(device=device, dtype=_complex_dtype(dtype))
        return self._cache[key]

    def _pads(self) -> tuple[int, int, int, int]:
        # low-res sample i reads x[i f + dmin … i f + dmax]
        before, after = -self.dmin, self.dmin + self.taps.numel() - 1 - (self.factor - 1)
        return before, after, before, after

    def _stride(self) -> int:
        return self.factor

    def _domain_transfer(self, H: int, W: int, device, dtype) -> torch.Tensor:
        key = ("domain", H, W, torch.device(device), dtype)
        if key not in self._cache:
            g2 = torch.outer(self.taps, self.taps).to("cpu", torch.float64)
            t = wrapped_transfer(g2, H, W, (-self.dmin, -self.dmin)).conj()  # correlation, as in transfer()
            self._cache[key] = t.to(device=device, dtype=_complex_dtype(dtype))
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.boundary != "circular":
            return super().forward(x)
        self._check_highres(x)
        H, W = x.shape[-2:]
        t = self.transfer(H, W, x.device, x.dtype)
        filtered = torch.fft.irfft2(torch.fft.rfft2(x) * t, s=(H, W))
        return filtered[..., :: self.factor, :: self.factor]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self.boundary != "circular":
            return super().adjoint(y)
        _check(y, "super-resolution (bicubic) adjoint")
        f = self.factor
        h, w = y.shape[-2:]
        H, W = h * f, w * f
        up = y.new_zeros(y.shape[:-2] + (H, W))
        up[..., ::f, ::f] = y
        t = self.transfer(H, W, y.device, y.dtype)
        return torch.fft.irfft2(torch.fft.rfft2(up) * t.conj(), s=(H, W))


def SuperResolution(factor: int = 4, method: str = "bicubic", boundary: Boundary = "circular") -> _SuperResolution:
    """Build the ``super-resolution`` operator: ``method="avgpool"`` or ``"bicubic"`` (default), with the
    boundary model of the bicubic filter (``valid``, ``reflect``, ``replicate``, ``zero``, ``circular``)."""
    if method not in METHODS:
        raise InvalidInputError(f"unknown super-resolution method {method!r}; use one of {', '.join(METHODS)}")
    return (AvgPoolSR if method == "avgpool" else BicubicSR)(factor, boundary)

"""Blur operators: ``gaussian-blur``, ``motion-blur`` and ``kernel``.

Every channel of a ``(B, C, H, W)`` image is convolved with one 2D kernel. The ``boundary`` model says what
lies past the image edge (see :mod:`restore_imaging.boundary`). With ``circular`` (periodic) boundaries the
operator is diagonal in the Fourier domain with transfer function ``K``, so ``adjoint`` (``conj K``),
``normal`` (``|K|²``), ``pinv`` and ``prox`` are exact closed forms, and the composition of two blurs is
again a blur (product of transfer functions). The other models (``valid``, ``reflect``, ``replicate``,
``zero``) filter by FFT on an extended domain and solve ``prox``/``pinv`` by (preconditioned) CG.
"""
from __future__ import annotations

import math

import torch

from restore.errors import InvalidInputError
from restore.operators import LinearOperator

from .boundary import Boundary, BoundaryFilter, check_boundary
from .common import check_image, positive, read_gray

#: Frequencies with ``|K|² <= PINV_RTOL · max |K|²`` count as the null space of the blur in ``pinv``.
PINV_RTOL = 1e-8


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype == torch.float64:
        return torch.complex128
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.complex64
    raise InvalidInputError(f"blur operators need a floating-point image, got dtype {dtype}")


def kernel_transfer(kernel: torch.Tensor, H: int, W: int, origin: tuple[int, int]) -> torch.Tensor:
    """Real-FFT transfer function ``(H, W // 2 + 1)`` of ``kernel`` placed with ``kernel[origin]`` at ``(0, 0)``.

    Computed in float64 on the CPU so that every device and dtype gets the same, accurate numbers.
    """
    kh, kw = kernel.shape
    padded = torch.zeros(H, W, dtype=torch.float64)
    padded[:kh, :kw] = kernel.detach().to("cpu", torch.float64)
    padded = torch.roll(padded, shifts=(-origin[0], -origin[1]), dims=(0, 1))
    return torch.fft.rfft2(padded)


def wrapped_transfer(kernel: torch.Tensor, H: int, W: int, origin: tuple[int, int]) -> torch.Tensor:
    """Like :func:`kernel_transfer` in ``kernel``'s dtype, for any kernel size: taps beyond the ``H × W``
    grid wrap around (the exact periodic operator on that grid); differentiable in ``kernel``."""
    kh, kw = kernel.shape
    rows = ((torch.arange(kh) - origin[0]) % H)[:, None].expand(kh, kw)
    cols = ((torch.arange(kw) - origin[1]) % W)[None, :].expand(kh, kw)
    grid = kernel.new_zeros(H, W).index_put((rows.to(kernel.device), cols.to(kernel.device)), kernel,
                                            accumulate=True)
    return torch.fft.rfft2(grid)


class CircularBlur(LinearOperator):
    """Base of the blur operators: ``y = k ⊛ x`` per channel, periodic boundaries, on ``(B, C, H, W)``.

    Subclasses implement :meth:`_make_transfer`. Transfer functions are built lazily for the image size
    and cached per ``(H, W, device, dtype)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple, torch.Tensor] = {}

    def _make_transfer(self, H: int, W: int) -> torch.Tensor:  # pragma: no cover - abstract
        """The complex128 CPU transfer function ``(H, W // 2 + 1)``; raise when the kernel does not fit."""
        raise NotImplementedError

    def transfer(self, H: int, W: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Transfer function for ``H × W`` images of real ``dtype`` on ``device``, ``(H, W // 2 + 1)``.

        Raises:
            InvalidInputError: the kernel is larger than the image.
        """
        key = (H, W, torch.device(device), dtype)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._make_transfer(H, W).to(device=device, dtype=_complex_dtype(dtype))
            self._cache[key] = cached
        return cached

    def _filter(self, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        check_image(x, type(self).__name__)
        H, W = x.shape[-2:]
        return torch.fft.irfft2(torch.fft.rfft2(x) * factor, s=(H, W))

    def _t(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, type(self).__name__)
        return self.transfer(x.shape[-2], x.shape[-1], x.device, x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._filter(x, self._t(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._filter(y, self._t(y).conj())

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self._filter(x, self._t(x).abs() ** 2)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Pseudo-inverse: ``conj K / |K|²`` where ``|K|² > PINV_RTOL · max |K|²``, zero elsewhere."""
        t = self._t(y)
        power = t.abs() ** 2
        keep = power > PINV_RTOL * power.max()
        inv = torch.where(keep, t.conj() / torch.where(keep, power, torch.ones_like(power)), torch.zeros_like(t))
        return self._filter(y, inv)

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """``(I + γAᵀA)⁻¹(z + γAᵀy)`` in closed form."""
        t = self._t(z)
        H, W = z.shape[-2:]
        num = torch.fft.rfft2(z) + gamma * torch.fft.rfft2(y) * t.conj()
        return torch.fft.irfft2(num / (1 + gamma * t.abs() ** 2), s=(H, W))

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        # The pseudo-inverse amplifies noise by up to 1/sqrt(PINV_RTOL); the blurred image is a safer start.
        return y.clone()

    def svd(self, x_shape):
        """Fourier SVD (``s = |K|``); exact for the periodic boundary this operator uses."""
        if getattr(self, "boundary", "circular") != "circular" or len(x_shape) != 4:
            return None
        from restore.operators.svd import circular_svd

        return circular_svd(self, x_shape)

    def _compose_with(self, other) -> "ComposedBlur | None":
        return ComposedBlur(self, other) if isinstance(other, CircularBlur) else None


class ComposedBlur(CircularBlur):
    """``outer ⊛ inner``: one blur whose transfer function is the product of both."""

    def __init__(self, outer: CircularBlur, inner: CircularBlur) -> None:
        super().__init__()
        self.outer, self.inner = outer, inner

    def _make_transfer(self, H: int, W: int) -> torch.Tensor:
        return self.outer._make_transfer(H, W) * self.inner._make_transfer(H, W)


class KernelBlur(BoundaryFilter, CircularBlur):
    """Convolution with an explicit kernel (operator ``kernel``) on ``(B, C, H, W)``.

    Args:
        kernel: a 2D tensor ``(kh, kw)`` (``(1, 1, kh, kw)`` is accepted), or the path of an image file
            (colour is averaged to gray). The kernel centre ``(kh // 2, kw // 2)`` is the origin.
        normalize: scale the kernel to sum 1 (always sensible for kernel images, whose scale is arbitrary).
        boundary: what lies past the image edge: ``valid`` (unknown; ``x`` is ``(kh - 1, kw - 1)`` larger
            than ``y`` and the operator crops), ``reflect``, ``replicate``, ``zero`` or ``circular``.
    """

    def __init__(self, kernel: torch.Tensor | str, normalize: bool = True, boundary: Boundary = "circular") -> None:
        super().__init__()
        self.boundary = check_boundary(boundary)
        fix = "pass a grayscale kernel image (PNG/TIFF) or a 2D tensor"
        if isinstance(kernel, (str, bytes)) or hasattr(kernel, "__fspath__"):
            self.source = str(kernel)
            k = read_gray(self.source, "kernel", fix)
        elif isinstance(kernel, torch.Tensor):
            self.source = "tensor"
            k = kernel
        else:
            raise InvalidInputError(f"kernel must be a tensor or an image path, got {type(kernel).__name__}; {fix}")
        while k.ndim > 2 and k.shape[0] == 1:
            k = k[0]
        if k.ndim != 2 or k.numel() == 0:
            raise InvalidInputError(f"kernel must be 2D (kh, kw), got shape {tuple(k.shape)}; {fix}")
        if k.is_complex() or not bool(torch.isfinite(k).all()):
            raise InvalidInputError(f"kernel {self.source} must be real and finite; {fix}")
        if normalize:
            total = float(k.sum())
            if not total > 0:
                raise InvalidInputError(
                    f"kernel {self.source} sums to {total:g}, cannot normalize it to 1; pass a non-negative "
                    "kernel or normalize=False")
            k = k / total
        self.register_buffer("kernel", k.clone() if k.requires_grad else k.detach().clone())

    def _check_fits(self, H: int, W: int) -> None:
        kh, kw = self.kernel.shape
        if kh > H or kw > W:
            raise InvalidInputError(
                f"the {kh}x{kw} blur kernel ({self.describe()}) is larger than the {H}x{W} image; use a "
                "smaller kernel (smaller sigma/length) or a larger image")

    def _make_transfer(self, H: int, W: int) -> torch.Tensor:
        self._check_fits(H, W)
        kh, kw = self.kernel.shape
        return kernel_transfer(self.kernel, H, W, (kh // 2, kw // 2))

    def transfer(self, H, W, device="cpu", dtype=torch.float32):
        if self.kernel.requires_grad:  # a learnable kernel (blind deblurring): keep the graph, no cache
            self._check_fits(H, W)
            kh, kw = self.kernel.shape
            padded = torch.nn.functional.pad(self.kernel, (0, W - kw, 0, H - kh))
            padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
            return torch.fft.rfft2(padded).to(device=device, dtype=_complex_dtype(dtype))
        return super().transfer(H, W, device, dtype)

    def _origin(self) -> tuple[int, int]:
        kh, kw = self.kernel.shape
        return kh // 2, kw // 2

    def _pads(self) -> tuple[int, int, int, int]:
        # y[i] = Σ_a k[a] x[i - a + origin]: the kernel reaches kh-1-origin rows above and origin rows below
        kh, kw = self.kernel.shape
        ch, cw = self._origin()
        return kh - 1 - ch, ch, kw - 1 - cw, cw

    def _domain_transfer(self, H: int, W: int, device, dtype) -> torch.Tensor:
        if self.kernel.requires_grad:  # a learnable kernel: keep the graph, no cache
            return wrapped_transfer(self.kernel, H, W, self._origin()).to(device=device, dtype=_complex_dtype(dtype))
        key = ("domain", H, W, torch.device(device), dtype)
        if key not in self._cache:
            t = wrapped_transfer(self.kernel.detach().to("cpu", torch.float64), H, W, self._origin())
            self._cache[key] = t.to(device=device, dtype=_complex_dtype(dtype))
        return self._cache[key]

    def describe(self) -> str:
        return f"kernel {self.source}"

    def extra_repr(self) -> str:
        return f"{self.describe()}, size={tuple(self.kernel.shape)}, boundary={self.boundary}"


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """Isotropic Gaussian ``(size, size)`` float64 kernel summing to 1; ``size`` defaults to ``2⌈3σ⌉ + 1``."""
    from kornia.filters import get_gaussian_kernel2d

    sigma = positive(sigma, "gaussian blur sigma", "e.g. --kernel gaussian:2.0")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise InvalidInputError(f"gaussian blur size must be an odd integer >= 1, got {size!r}; e.g. 13")
    k = get_gaussian_kernel2d((size, size), (sigma, sigma), dtype=torch.float64)[0]
    return k / k.sum()


def motion_kernel(length: float, angle: float = 0.0, supersample: int = 16) -> torch.Tensor:
    """Anti-aliased linear motion kernel: a centred segment of ``length`` pixels at ``angle`` degrees.

    The segment is sampled densely and every sample is splatted bilinearly onto the pixel grid, so
    non-axis-aligned and fractional lengths give smooth kernels. Angles are counter-clockwise from the
    +x axis as seen on screen (rows grow downwards). The kernel is odd-sized, centred, and sums to 1.
    """
    length = positive(length, "motion blur length", "e.g. --kernel motion:15:30 (length 15 px, angle 30°)")
    try:
        angle = float(angle)
    except (TypeError, ValueError):
        raise InvalidInputError(f"motion blur angle must be a number of degrees, got {angle!r}") from None
    half = length / 2
    radius = math.ceil(half) + 1
    size = 2 * radius + 1
    n = max(2, math.ceil(length * supersample) + 1)
    t = torch.linspace(-half, half, n, dtype=torch.float64)
    theta = math.radians(angle)
    rows = radius - t * math.sin(theta)
    cols = radius + t * math.cos(theta)
    r0, c0 = rows.floor(), cols.floor()
    fr, fc = rows - r0, cols - c0
    k = torch.zeros(size, size, dtype=torch.float64)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        k.index_put_(((r0 + dr).long(), (c0 + dc).long()), w, accumulate=True)
    return k / k.sum()


class GaussianBlur(KernelBlur):
    """Gaussian blur (operator ``gaussian-blur``) on ``(B, C, H, W)``.

    Args:
        sigma: standard deviation in pixels (> 0).
        size: odd kernel size; defaults to ``2⌈3σ⌉ + 1``.
        boundary: ``valid``, ``reflect``, ``replicate``, ``zero`` or ``circular`` (see :class:`KernelBlur`).
    """

    def __init__(self, sigma: float = 2.0, size: int | None = None, boundary: Boundary = "circular") -> None:
        super().__init__(gaussian_kernel(sigma, size), normalize=False, boundary=boundary)
        self.sigma = float(sigma)

    def describe(self) -> str:
        return f"gaussian:{self.sigma:g}"


class MotionBlur(KernelBlur):
    """Linear motion blur (operator ``motion-blur``) on ``(B, C, H, W)``.

    Args:
        length: blur length in pixels (> 0).
        angle: direction in degrees, counter-clockwise from the +x axis.
        boundary: ``valid``, ``reflect``, ``replicate``, ``zero`` or ``circular`` (see :class:`KernelBlur`).
    """

    def __init__(self, length: float = 15.0, angle: float = 0.0, boundary: Boundary = "circular") -> None:
        super().__init__(motion_kernel(length, angle), normalize=False, boundary=boundary)
        self.length, self.angle = float(length), float(angle)

    def describe(self) -> str:
        return f"motion:{self.length:g}:{self.angle:g}"

"""Inpainting: ``y = M ⊙ x`` with a pixel mask ``M`` (1 = observed, 0 = missing) on ``(B, C, H, W)``.

``M`` is diagonal, so ``adjoint`` (``M ⊙ y``), ``normal`` (``M² ⊙ x``), ``pinv`` (``y / M`` where
``M > 0``) and ``prox`` are exact and elementwise. Masks come from a file, a random fraction of missing
pixels, or a missing box; the latter two are built lazily for the image size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from restore.errors import InvalidInputError, ShapeError
from restore.operators import LinearOperator

from .common import check_image, read_gray

MASK_FIX = "pass a mask image (white = observed, black = missing), random:FRACTION or box:TOP,LEFT,HEIGHT,WIDTH"


def push_pull_fill(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Smooth fill of ``values / weights`` over the pixels where ``weights`` is 0, both ``(B, C, H, W)``
    with ``values`` already multiplied by ``weights`` (in [0, 1])."""
    own = torch.where(weights > 0, values / weights.clamp_min(1e-12), values.new_zeros(()))
    if values.shape[-2] <= 1 and values.shape[-1] <= 1 or bool((weights > 0).all()):
        return own
    coarse = push_pull_fill(F.avg_pool2d(values, 2, ceil_mode=True), F.avg_pool2d(weights, 2, ceil_mode=True))
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
    w = weights.clamp(0, 1)
    return own * w + (1 - w) * up[..., : values.shape[-2], : values.shape[-1]]


class Inpainting(LinearOperator):
    """Pixel mask operator (``inpainting``); exactly one of ``mask``, ``fraction``, ``box``.

    Args:
        mask: a tensor broadcastable to ``(B, C, H, W)`` (``(H, W)``, ``(1, 1, H, W)``, …) with values in
            [0, 1], or the path of a mask image (gray > 0.5 = observed).
        fraction: fraction of pixels to drop at random, in [0, 1); the same pixels in every channel. Exactly
            ``round(fraction · H · W)`` pixels are dropped.
        box: ``(top, left, height, width)`` of a missing rectangle, in pixels.
        seed: seeds the random mask when no ``generator`` is given, so ``random:0.5`` is the same mask for
            the same image size on every run and device.
        generator: a CPU ``torch.Generator`` for the random mask (drawn once, at the first image size seen).
    """

    exact_pinv = True

    def __init__(self, mask: torch.Tensor | str | None = None, fraction: float | None = None,
                 box: tuple[int, int, int, int] | None = None, seed: int = 0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        given = [name for name, v in (("mask", mask), ("fraction", fraction), ("box", box)) if v is not None]
        if len(given) != 1:
            raise InvalidInputError(f"inpainting needs exactly one of mask, fraction or box, got {given or 'none'}; "
                                    + MASK_FIX)
        self.fraction, self.box, self.source = None, None, None
        self._generator = generator if generator is not None else torch.Generator().manual_seed(int(seed))
        self._drawn: dict[tuple[int, int], torch.Tensor] = {}
        self._cache: dict[tuple, torch.Tensor] = {}
        if mask is not None:
            self.register_buffer("mask", self._explicit_mask(mask))
        elif fraction is not None:
            try:
                fraction = float(fraction)
            except (TypeError, ValueError):
                raise InvalidInputError(f"inpainting fraction must be a number in [0, 1), got {fraction!r}") from None
            if not 0 <= fraction < 1:
                raise InvalidInputError(
                    f"inpainting fraction (share of missing pixels) must be in [0, 1), got {fraction}; e.g. random:0.5")
            self.fraction = fraction
        else:
            self.box = self._check_box(box)

    @staticmethod
    def _explicit_mask(mask) -> torch.Tensor:
        if isinstance(mask, (str, bytes)) or hasattr(mask, "__fspath__"):
            return (read_gray(str(mask), "mask", MASK_FIX) > 0.5).to(torch.float64)[None, None]
        if not isinstance(mask, torch.Tensor):
            raise InvalidInputError(f"inpainting mask must be a tensor or an image path, got {type(mask).__name__}")
        m = mask.detach()
        if m.dtype == torch.bool:
            m = m.to(torch.float64)
        while m.ndim < 4:
            m = m[None]
        if m.ndim != 4 or m.is_complex() or not bool(((m >= 0) & (m <= 1)).all()):
            raise InvalidInputError(
                f"inpainting mask must be real, in [0, 1] and broadcastable to (B, C, H, W), got shape "
                f"{tuple(mask.shape)}; " + MASK_FIX)
        return m.clone()

    @staticmethod
    def _check_box(box) -> tuple[int, int, int, int]:
        try:
            values = tuple(int(v) for v in box)
            ok = len(values) == 4 and all(float(v) == int(v) for v in box)
        except (TypeError, ValueError):
            ok = False
        if not ok or values[0] < 0 or values[1] < 0 or values[2] < 1 or values[3] < 1:
            raise InvalidInputError(
                f"inpainting box must be 4 integers (top, left, height, width) with height, width >= 1, got {box!r}; "
                "e.g. box:16,16,32,32")
        return values

    def _base_mask(self, H: int, W: int) -> torch.Tensor:
        """The ``(1 | B, 1 | C, H, W)`` mask for ``H × W`` images (float64, CPU for lazily built masks)."""
        if self.fraction is None and self.box is None:
            if tuple(self.mask.shape[-2:]) != (H, W):
                mh, mw = self.mask.shape[-2:]
                raise ShapeError(f"the inpainting mask is {mh}x{mw} but the image is {H}x{W}; pass a mask of the "
                                 "image's size")
            return self.mask
        if (H, W) not in self._drawn:
            m = torch.ones(H, W, dtype=torch.float64)
            if self.fraction is not None:
                drop = torch.randperm(H * W, generator=self._generator)[: round(self.fraction * H * W)]
                m.view(-1)[drop] = 0
            else:
                top, left, h, w = self.box
                if top + h > H or left + w > W:
                    raise InvalidInputError(
                        f"inpainting box (top={top}, left={left}, height={h}, width={w}) does not fit the {H}x{W} "
                        "image; choose a box inside the image")
                m[top: top + h, left: left + w] = 0
            self._drawn[(H, W)] = m[None, None]
        return self._drawn[(H, W)]

    def mask_for(self, x: torch.Tensor) -> torch.Tensor:
        """The mask for images like ``x`` (same device and dtype), broadcastable to ``x.shape``."""
        check_image(x, "inpainting")
        H, W = x.shape[-2:]
        if self.fraction is None and self.box is None:
            m = self._base_mask(H, W).to(device=x.device, dtype=x.dtype)
        else:
            key = (H, W, x.device, x.dtype)
            if key not in self._cache:
                self._cache[key] = self._base_mask(H, W).to(device=x.device, dtype=x.dtype)
            m = self._cache[key]
        if any(a not in (1, b) for a, b in zip(m.shape[:2], x.shape[:2])):
            raise ShapeError(f"inpainting mask of shape {tuple(m.shape)} does not broadcast to images of shape "
                             f"{tuple(x.shape)}")
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_for(x) * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.mask_for(y) * y

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_for(x) ** 2 * x

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """``y / M`` on observed pixels, zero on missing ones."""
        m = self.mask_for(y)
        observed = m > 0
        return torch.where(observed, y / torch.where(observed, m, torch.ones_like(m)), torch.zeros_like(y))

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        """The observed pixels, with the holes filled smoothly from their surroundings (push-pull: the
        mask-weighted image is averaged down a pyramid until every pixel is covered, then each level's
        missing share is taken from the bilinear upsampling of the coarser one). Starting a splitting loop
        from zeros leaves large holes dark: a denoiser only fills what is a few noise widths wide."""
        m = self.mask_for(y).expand_as(y)
        observed = m * self.pinv(y)
        return observed + (1 - m) * push_pull_fill(observed, m)

    def svd(self, x_shape):
        """``U = V = I`` and ``s = M`` (the mask is diagonal)."""
        from restore.operators.svd import DiagonalSVD

        like = torch.zeros(1, 1, 1, 1, dtype=torch.float64).expand(tuple(x_shape))
        return DiagonalSVD(x_shape, self.mask_for(like))

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        m = self.mask_for(z)
        return (z + gamma * m * y) / (1 + gamma * m**2)

    def extra_repr(self) -> str:
        if self.fraction is not None:
            return f"fraction={self.fraction}"
        if self.box is not None:
            return f"box={self.box}"
        return f"mask={tuple(self.mask.shape)}"

"""Boundary models of the convolution-type operators (blurs, and the filter inside super-resolution).

A filter needs pixels beyond the image edge; the boundary model says what they are:

- ``valid``: the scene continues past the edge and is unknown. The unknown ``x`` is the observation's field
  of view plus the filter's support, and the operator keeps only the outputs whose whole support lies in
  ``x`` (it crops). The physics of a photo of a larger scene.
- ``reflect``: mirrored about the edge pixel (``d c b | a b c d``, OpenCV's default, ``numpy.pad`` reflect).
- ``replicate``: the edge pixel repeated.
- ``zero``: black.
- ``circular``: the opposite edge (periodic); exactly diagonal in the Fourier domain.

Every non-circular model is ``A = D · C · P``: ``P`` extends the image (a padding, or nothing for
``valid``), ``C`` is the filter computed by FFT on the extended domain — periodic there, but the extension
is wide enough that no output ``D`` keeps wraps around — and ``D`` keeps every ``stride``-th output of the
field of view. ``Aᵀ = Pᵀ Cᵀ Dᵀ`` with ``Pᵀ`` folding the padded bands back onto the pixels they copy.
``prox`` is CG preconditioned by the circulant ``(I + γ|K|²/stride²)⁻¹``, ``pinv`` is CG on the normal
equations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from restore.errors import InvalidInputError, ShapeError
from restore.operators import conjugate_gradient, preconditioned_cg

from .specs import BOUNDARIES, Boundary, check_boundary  # noqa: F401 - declared where the CLI reads them without torch


def pad(x: torch.Tensor, pads: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """Extend ``(B, C, H, W)`` by ``pads = (top, bottom, left, right)`` pixels with ``mode``."""
    top, bottom, left, right = pads
    if mode == "zero":
        return F.pad(x, (left, right, top, bottom))
    if mode == "reflect":
        H, W = x.shape[-2:]
        if max(top, bottom) >= H or max(left, right) >= W:
            raise InvalidInputError(
                f"boundary reflect needs the filter's reach ({max(top, bottom)}x{max(left, right)} px) to be "
                f"smaller than the {H}x{W} image; use --boundary valid or replicate, or a larger image")
    return F.pad(x, (left, right, top, bottom), mode=mode)


def _fold(e: torch.Tensor, dim: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Adjoint of a 1D padding along ``dim``: the bands' values are added to the pixels they copied."""
    n = e.shape[dim] - before - after
    core = e.narrow(dim, before, n).clone()
    if mode == "zero":
        return core
    head, tail = e.narrow(dim, 0, before), e.narrow(dim, before + n, after)
    if mode == "replicate":
        core.narrow(dim, 0, 1).add_(head.sum(dim, keepdim=True))
        core.narrow(dim, n - 1, 1).add_(tail.sum(dim, keepdim=True))
        return core
    # reflect: padded index before-1-j holds x[1+j]; index before+n+j holds x[n-2-j]
    core.narrow(dim, 1, before).add_(head.flip(dim))
    core.narrow(dim, n - 1 - after, after).add_(tail.flip(dim))
    return core


def pad_adjoint(e: torch.Tensor, pads: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``Pᵀ`` of :func:`pad`: ``(B, C, H + top + bottom, W + left + right)`` -> ``(B, C, H, W)``."""
    top, bottom, left, right = pads
    return _fold(_fold(e, -1, left, right, mode), -2, top, bottom, mode)


class BoundaryFilter:
    """Mixin giving a filtering operator the non-circular boundary models.

    The host class sets ``self.boundary`` and provides ``_pads()`` (top, bottom, left, right reach of
    the filter), ``_stride()`` and ``_domain_transfer(H, W, device, dtype)``, the real-FFT transfer
    function of its filter on an ``H × W`` periodic grid. For ``boundary == "circular"`` every method
    defers to the host's own (circular) implementation, which stays exactly as it was.
    """

    boundary: str = "circular"
    #: CG iterations of the non-circular ``prox`` (preconditioned) and ``pinv`` (normal equations).
    prox_iters: int = 100
    lsq_iters: int = 300

    def _pads(self) -> tuple[int, int, int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stride(self) -> int:
        return 1

    def _domain_transfer(self, H: int, W: int, device, dtype) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # shapes ---------------------------------------------------------------------------------------------
    def _extension(self) -> tuple[int, int]:
        """Extra rows and columns of the unknown over the field of view (non-zero for ``valid`` only)."""
        if self.boundary != "valid":
            return 0, 0
        top, bottom, left, right = self._pads()
        return top + bottom, left + right

    def input_shape(self, output_shape) -> tuple[int, ...]:
        """Shape of the unknown for an observation of ``output_shape``: the field of view (``stride`` times
        the observation) plus, for ``valid``, the filter's reach on every side."""
        if self.boundary == "circular":
            return super().input_shape(output_shape)
        s, f = tuple(output_shape), self._stride()
        eh, ew = self._extension()
        return s[:-2] + (s[-2] * f + eh, s[-1] * f + ew)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """The part of an unknown ``(B, C, H, W)`` inside the observation's field of view: ``valid`` crops
        the filter's reach away, the other models return ``x``."""
        if self.boundary != "valid":
            return x
        top, bottom, left, right = self._pads()
        return x[..., top: x.shape[-2] - bottom, left: x.shape[-1] - right]

    def _out_size(self, x: torch.Tensor) -> tuple[int, int]:
        """Observation size for an unknown ``x``, or a one-line error when ``x`` has no such size."""
        if x.ndim != 4:
            raise ShapeError(f"{self._name()} expects images of shape (B, C, H, W), got {tuple(x.shape)}")
        if x.is_complex():
            raise InvalidInputError(f"{self._name()} acts on real images, got a complex tensor")
        f = self._stride()
        eh, ew = self._extension()
        H, W = x.shape[-2] - eh, x.shape[-1] - ew
        if H < f or W < f or H % f or W % f:
            need = f"(a multiple of {f}) + {eh}x{ew}" if f > 1 else f"at least {eh + 1}x{ew + 1}"
            raise ShapeError(f"{self._name()} with boundary {self.boundary} needs an unknown of size {need}, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; build x with operator.input_shape(y.shape)")
        return H // f, W // f

    def _name(self) -> str:
        return type(self).__name__

    # the operator ---------------------------------------------------------------------------------------
    def _extend(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.boundary == "valid" else pad(x, self._pads(), self.boundary)

    def _keep(self, h: int, w: int) -> tuple[slice, slice]:
        top, _, left, _ = self._pads()
        f = self._stride()
        return slice(top, top + f * h, f), slice(left, left + f * w, f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.boundary == "circular":
            return super().forward(x)
        h, w = self._out_size(x)
        e = self._extend(x)
        t = self._domain_transfer(e.shape[-2], e.shape[-1], e.device, e.dtype)
        filtered = torch.fft.irfft2(torch.fft.rfft2(e) * t, s=e.shape[-2:])
        rows, cols = self._keep(h, w)
        return filtered[..., rows, cols]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self.boundary == "circular":
            return super().adjoint(y)
        if y.ndim != 4:
            raise ShapeError(f"{self._name()} adjoint expects (B, C, h, w), got {tuple(y.shape)}")
        h, w = y.shape[-2:]
        top, bottom, left, right = self._pads()
        f = self._stride()
        Hp, Wp = f * h + top + bottom, f * w + left + right
        up = y.new_zeros(y.shape[:-2] + (Hp, Wp))
        rows, cols = self._keep(h, w)
        up[..., rows, cols] = y
        t = self._domain_transfer(Hp, Wp, y.device, y.dtype)
        e = torch.fft.irfft2(torch.fft.rfft2(up) * t.conj(), s=(Hp, Wp))
        return e if self.boundary == "valid" else pad_adjoint(e, self._pads(), self.boundary)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        if self.boundary == "circular":
            return super().normal(x)
        return self.adjoint(self.forward(x))

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Minimum-norm least-squares ``A⁺y`` (CG on the normal equations from zero); circular: closed form."""
        if self.boundary == "circular":
            return super().pinv(y)
        x, _ = conjugate_gradient(self.normal, self.adjoint(y), max_iter=self.lsq_iters, tol=1e-9)
        return x

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """``(I + γAᵀA)⁻¹(z + γAᵀy)`` by CG preconditioned with the circulant ``(I + γ|K|²/f²)⁻¹``."""
        if self.boundary == "circular":
            return super().prox(z, y, gamma)
        H, W = z.shape[-2:]
        power = self._domain_transfer(H, W, z.device, z.dtype).abs() ** 2 / self._stride() ** 2
        inverse = 1 / (1 + gamma * power)

        def precondition(r: torch.Tensor) -> torch.Tensor:
            return torch.fft.irfft2(torch.fft.rfft2(r) * inverse, s=(H, W))

        return preconditioned_cg(lambda v: v + gamma * self.normal(v), z + gamma * self.adjoint(y), precondition,
                                 x0=z, max_iter=self.prox_iters, tol=1e-10)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        """The host's estimate on the field of view, extended by replication for ``valid``."""
        start = super().initial_estimate(y)
        return pad(start, self._pads(), "replicate") if self.boundary == "valid" else start

    def _compose_with(self, other):
        # only periodic blurs fuse into one blur (product of transfer functions)
        fuse = getattr(super(), "_compose_with", None)
        if fuse is None or self.boundary != "circular" or getattr(other, "boundary", "circular") != "circular":
            return None
        return fuse(other)

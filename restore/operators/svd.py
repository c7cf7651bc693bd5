"""Fast singular value decompositions ``A = U diag(s) Vᵀ`` of structured linear operators.

An :class:`SVD` never stores a matrix: ``V``, ``Vᵀ``, ``U`` and ``Uᵀ`` are fast transforms (FFT, block
transforms, channel mixing, masks) acting on *spectra*: flattened coefficient vectors ``(B, n)`` with one
slot per entry of ``x`` (``n = C·H·W`` for images ``(B, C, H, W)``). Slot ``i`` pairs the right singular
vector ``vᵢ`` with the singular value ``sᵢ`` and, where ``sᵢ > 0``, with a left singular vector ``uᵢ``:

* ``Vt(x)`` gives ``Vᵀx`` (an isometry: ``V(Vt(x)) = x``, ``‖Vt(x)‖ = ‖x‖``);
* ``Ut(y)`` gives ``Uᵀy`` in the same slots (zero in slots without a left vector); ``U(c)`` is its adjoint;
* ``singulars(like)`` gives ``s`` as ``(1 | B, n)``, zero on the null space of ``A``.

So ``A x = U(s · Vt(x))``, ``Aᵀ y = V(s · Ut(y))`` and ``A⁺ y = V(Ut(y) / s)`` on ``s > 0``.

Fourier-diagonal operators (circular blurs) have complex spectra (the unitary 2D DFT of a real image,
Hermitian-symmetric); the coefficients samplers apply depend on ``s`` only, which is symmetric too, so
``V`` of any such combination is real. Samplers draw their noise in pixel space and map it with ``Vt``,
which keeps it white in every basis.

Samplers that need an SVD (``ddrm``, ``ddnm``) call :func:`require_svd`, which raises a one-line error
naming the operator and the samplers that do apply when the operator has none.
"""
from __future__ import annotations

import math

import torch

from ..errors import IncompatibleError


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class SVD:
    """``A = U diag(s) Vᵀ`` for inputs of shape ``x_shape`` (batch first); see the module docstring.

    Subclasses implement ``Vt``, ``V``, ``Ut``, ``U`` and ``singulars``; the derived maps below are shared.
    """

    def __init__(self, x_shape: tuple[int, ...]) -> None:
        self.x_shape = tuple(x_shape)
        self.n = math.prod(self.x_shape[1:])

    def Vt(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def V(self, c: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def Ut(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def U(self, c: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def singulars(self, like: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``s`` as a real ``(1 | B, n)`` tensor of ``like``'s real dtype and device."""
        raise NotImplementedError

    # -- derived ---------------------------------------------------------------------------------------
    def _unflat(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape((v.shape[0],) + self.x_shape[1:])

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """``U diag(s) Vᵀ x``."""
        return self.U(self.singulars(x) * self.Vt(x))

    def At(self, y: torch.Tensor) -> torch.Tensor:
        """``V diag(s) Uᵀ y``."""
        return self.V(self.singulars(y) * self.Ut(y))

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """``V diag(1/s) Uᵀ y`` over ``s > 0``."""
        s = self.singulars(y)
        inv = torch.where(s > 0, 1 / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))
        return self.V(inv * self.Ut(y))


class DiagonalSVD(SVD):
    """``A = diag(d)`` with ``d ≥ 0`` (masks, identity): ``U = V = I``, ``s = d``.

    Args:
        x_shape: input shape.
        diag: a real tensor broadcastable to ``x_shape`` (``1`` for the identity).
    """

    def __init__(self, x_shape, diag: torch.Tensor | float) -> None:
        super().__init__(x_shape)
        self.diag = diag

    def Vt(self, x):
        return _flat(x)

    def V(self, c):
        return self._unflat(c.real if c.is_complex() else c)

    def Ut(self, y):
        return _flat(y)

    def U(self, c):
        return self._unflat(c.real if c.is_complex() else c)

    def singulars(self, like):
        dtype = like.real.dtype
        d = torch.as_tensor(self.diag, dtype=dtype, device=like.device).abs()
        batch = d.shape[0] if d.ndim == len(self.x_shape) else 1
        shape = (batch,) + self.x_shape[1:]
        return d.expand(shape).reshape(batch, -1)


class FourierSVD(SVD):
    """A per-channel circular convolution on ``(B, C, H, W)`` with full transfer function ``K`` ``(H, W)``.

    ``Vᵀ`` is the unitary 2D DFT, ``s = |K|``, ``Uᵀ = diag(conj(K)/|K|) · DFT`` (phase 1 where ``K = 0``).
    """

    def __init__(self, x_shape, transfer: torch.Tensor) -> None:
        super().__init__(x_shape)
        self.transfer = transfer  # complex (H, W)
        magnitude = transfer.abs()
        self._s = magnitude
        self._phase = torch.where(magnitude > 0, transfer / torch.where(magnitude > 0, magnitude,
                                                                         torch.ones_like(magnitude)),
                                  torch.ones_like(transfer))

    def _like(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        cdtype = torch.complex128 if like.real.dtype == torch.float64 else torch.complex64
        return t.to(device=like.device, dtype=cdtype if t.is_complex() else like.real.dtype)

    def Vt(self, x):
        return _flat(torch.fft.fft2(x, norm="ortho"))

    def V(self, c):
        return torch.fft.ifft2(self._unflat(c), norm="ortho").real

    def Ut(self, y):
        return _flat(self._like(self._phase, y).conj() * torch.fft.fft2(y, norm="ortho"))

    def U(self, c):
        return torch.fft.ifft2(self._like(self._phase, c) * self._unflat(c), norm="ortho").real

    def singulars(self, like):
        s = self._like(self._s, like)
        return s.expand(self.x_shape[1:]).reshape(1, -1)


def circular_svd(operator, x_shape) -> FourierSVD:
    """The SVD of a shift-invariant circular operator ``(B, C, H, W) -> (B, C, H, W)``, from its impulse
    response (computed once in float64)."""
    H, W = x_shape[-2:]
    delta = torch.zeros(1, 1, H, W, dtype=torch.float64)
    delta[0, 0, 0, 0] = 1
    with torch.no_grad():
        psf = operator.forward(delta)[0, 0].detach().to("cpu", torch.float64)
    K = torch.fft.fft2(psf)
    # Exact Hermitian symmetry K(-ω) = conj K(ω): the phase K/|K| at tiny |K| would otherwise amplify
    # round-off into an imaginary part of V(·) and U(·).
    mirrored = torch.roll(torch.flip(K, dims=(0, 1)), shifts=(1, 1), dims=(0, 1)).conj()
    return FourierSVD(x_shape, (K + mirrored) / 2)


def _block_basis(f: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``(f, f)`` in float64; row 0 is the constant ``1/√f``."""
    k = torch.arange(f, dtype=torch.float64)[:, None]
    i = torch.arange(f, dtype=torch.float64)[None, :]
    D = torch.cos(math.pi * (2 * i + 1) * k / (2 * f)) * math.sqrt(2 / f)
    D[0] = 1 / math.sqrt(f)
    return D


class BlockMeanSVD(SVD):
    """Mean over ``f × f`` blocks, ``(B, C, f·h, f·w) -> (B, C, h, w)``.

    ``Vᵀ`` is the orthonormal 2D DCT of every block (slot layout ``(C, f, f, h, w)``); only the DC slot of a
    block has a singular value, ``1/f``, and ``U`` is the identity on the low-res image.
    """

    def __init__(self, x_shape, factor: int) -> None:
        super().__init__(x_shape)
        self.f = factor
        self.D = _block_basis(factor)

    def _d(self, like):
        return self.D.to(device=like.device, dtype=like.real.dtype)

    def Vt(self, x):
        B, C, H, W = x.shape
        f = self.f
        blocks = x.reshape(B, C, H // f, f, W // f, f)
        D = self._d(x)
        return _flat(torch.einsum("pi,qj,bchiwj->bcpqhw", D, D, blocks))

    def V(self, c):
        B = c.shape[0]
        _, C, H, W = self.x_shape
        f = self.f
        coeffs = (c.real if c.is_complex() else c).reshape(B, C, f, f, H // f, W // f)
        D = self._d(coeffs)
        return torch.einsum("pi,qj,bcpqhw->bchiwj", D, D, coeffs).reshape(B, C, H, W)

    def Ut(self, y):
        B, C, h, w = y.shape
        out = y.new_zeros(B, C, self.f, self.f, h, w)
        out[:, :, 0, 0] = y
        return _flat(out)

    def U(self, c):
        B = c.shape[0]
        _, C, H, W = self.x_shape
        f = self.f
        c = c.real if c.is_complex() else c
        return c.reshape(B, C, f, f, H // f, W // f)[:, :, 0, 0]

    def singulars(self, like):
        _, C, H, W = self.x_shape
        f = self.f
        s = torch.zeros(C, f, f, H // f, W // f, dtype=like.real.dtype, device=like.device)
        s[:, 0, 0] = 1 / f
        return s.reshape(1, -1)


def _completion(w: torch.Tensor) -> torch.Tensor:
    """An orthogonal ``(k, k)`` float64 matrix whose first row is ``w / ‖w‖`` (Householder reflection)."""
    w = w.to(torch.float64)
    k = w.numel()
    u = w / torch.linalg.vector_norm(w)
    e = torch.zeros(k, dtype=torch.float64)
    e[0] = 1
    v = u - e
    if float(torch.linalg.vector_norm(v)) < 1e-12:
        return torch.eye(k, dtype=torch.float64)
    v = v / torch.linalg.vector_norm(v)
    return torch.eye(k, dtype=torch.float64) - 2 * torch.outer(v, v)


class ChannelMixSVD(SVD):
    """``y = Σ_c w_c x_c`` per pixel, ``(B, k, H, W) -> (B, 1, H, W)``: ``Vᵀ`` is a fixed orthogonal mix of the
    channels whose first output is along ``w``; ``s = ‖w‖`` on that slot, ``U`` the identity."""

    def __init__(self, x_shape, weights: torch.Tensor) -> None:
        super().__init__(x_shape)
        self.Q = _completion(weights)
        self.norm = float(torch.linalg.vector_norm(weights.to(torch.float64)))

    def _q(self, like):
        return self.Q.to(device=like.device, dtype=like.real.dtype)

    def Vt(self, x):
        return _flat(torch.einsum("ij,bjhw->bihw", self._q(x), x))

    def V(self, c):
        c = self._unflat(c.real if c.is_complex() else c)
        return torch.einsum("ij,bihw->bjhw", self._q(c), c)

    def Ut(self, y):
        B, _, H, W = y.shape
        out = y.new_zeros((B,) + self.x_shape[1:])
        out[:, :1] = y
        return _flat(out)

    def U(self, c):
        c = self._unflat(c.real if c.is_complex() else c)
        return c[:, :1]

    def singulars(self, like):
        s = torch.zeros(self.x_shape[1:], dtype=like.real.dtype, device=like.device)
        s[0] = self.norm
        return s.reshape(1, -1)


class MatrixSVD(SVD):
    """A dense ``(m, d)`` matrix on flattened samples (from ``torch.linalg.svd``; small problems and tests)."""

    def __init__(self, x_shape, matrix: torch.Tensor) -> None:
        super().__init__(x_shape)
        U, s, Vh = torch.linalg.svd(matrix.to(torch.float64), full_matrices=True)
        self.m = matrix.shape[0]
        self.r = s.numel()  # min(m, d)
        self.Um, self.Vh = U[:, : self.r], Vh  # left vectors paired with slots 0..r-1
        self.s = torch.cat([s, s.new_zeros(self.n - self.r)])

    def _t(self, t, like):
        return t.to(device=like.device, dtype=like.real.dtype)

    def Vt(self, x):
        return _flat(x) @ self._t(self.Vh, x).T

    def V(self, c):
        c = c.real if c.is_complex() else c
        return self._unflat(c @ self._t(self.Vh, c))

    def Ut(self, y):
        coeffs = y.reshape(y.shape[0], -1) @ self._t(self.Um, y)
        return torch.cat([coeffs, coeffs.new_zeros(coeffs.shape[0], self.n - self.r)], dim=1)

    def U(self, c):
        c = c.real if c.is_complex() else c
        return c[:, : self.r] @ self._t(self.Um, c).T

    def singulars(self, like):
        return self._t(self.s, like)[None]


class PaddedSVD(SVD):
    """The SVD of ``A ∘ Crop`` from the SVD of ``A``: the padded pixels are extra null-space slots."""

    def __init__(self, x_shape, inner: SVD, crop) -> None:
        super().__init__(x_shape)
        self.inner, self.crop = inner, crop
        pad = torch.ones(x_shape[1:], dtype=torch.bool)
        pad[..., : crop.height, : crop.width] = False
        self.pad = pad

    def _pad_mask(self, like):
        return self.pad.to(like.device)

    def Vt(self, x):
        inner = self.inner.Vt(self.crop(x))
        outer = x[:, self._pad_mask(x)]
        if inner.is_complex():
            outer = outer.to(inner.dtype)
        return torch.cat([inner, outer], dim=1)

    def V(self, c):
        n = self.inner.n
        inner = self.crop.adjoint(self.inner.V(c[:, :n]))
        rest = c[:, n:]
        inner[:, self._pad_mask(inner)] = rest.real if rest.is_complex() else rest
        return inner

    def Ut(self, y):
        inner = self.inner.Ut(y)
        return torch.cat([inner, inner.new_zeros(inner.shape[0], self.n - self.inner.n)], dim=1)

    def U(self, c):
        return self.inner.U(c[:, : self.inner.n])

    def singulars(self, like):
        s = self.inner.singulars(like)
        return torch.cat([s, s.new_zeros(s.shape[0], self.n - self.inner.n)], dim=1)


def operator_name(operator) -> str:
    """A short human name for an operator in error messages."""
    describe = getattr(operator, "describe", None)
    name = type(operator).__name__
    return f"{name} ({describe()})" if callable(describe) else name


def require_svd(operator, x_shape, sampler: str, alternatives: tuple[str, ...] = ()) -> SVD:
    """The operator's SVD for inputs of ``x_shape``, or a one-line :class:`IncompatibleError` naming the
    operator and the samplers that apply (``alternatives``)."""
    svd = operator.svd(tuple(x_shape)) if getattr(operator, "linear", False) and hasattr(operator, "svd") else None
    if svd is None:
        others = f"; use --sampler {' | '.join(alternatives)}" if alternatives else ""
        raise IncompatibleError(
            f"sampler {sampler} needs the operator's SVD, which {operator_name(operator)} does not provide (it "
            f"exists for circular blurs, average-pool super-resolution, inpainting, colorization and denoising)"
            f"{others}")
    return svd

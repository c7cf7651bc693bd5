"""Cartesian MRI forward models on complex images.

Conventions (every operator here):

* the unknown is a complex image ``x`` of shape ``(B, 1, H, W)`` (complex64/complex128);
* k-space ``y`` is ``(B, C, H, W)`` complex with ``C`` coils (``C = 1`` for single-coil), rows ``H`` the
  readout direction and columns ``W`` the phase-encode direction that fastMRI masks act on;
* the mask is ``(H, W)`` (or broadcastable, e.g. ``(1, W)`` for a 1D column mask) with values 0/1;
* FFTs are centred and orthonormal, so with RSS-normalised coil maps and a full mask ``AᴴA = I``;
* adjoints are Hermitian: ``<A x, y> = <x, Aᴴ y>`` with ``<u, v> = Σ conj(u) v``.

Two real views exist for priors that work on real images:

* :class:`RealImagView` — ``(B, 2, H, W)`` real (channel 0 = real part, 1 = imaginary part);
* :class:`PhaseMagnitude` — ``(B, 1, H, W)`` real magnitude ``m`` with a fixed phase map ``φ``:
  ``x = m · e^{iφ}``. This is the convention of ``restore mri --method diffusion`` (a 1-channel magnitude
  prior; ``φ`` from the smooth low-resolution calibration image). Its adjoint is ``Re(e^{-iφ} Aᴴ y)``,
  the exact adjoint for the real inner product ``Re<·,·>`` that CG uses on real unknowns.

``prox(z, y, γ) = argmin ‖x - z‖² + γ ‖A x - y‖²`` (the data step of plug-and-play samplers, with γ
large on noiseless data): closed form in k-space for :class:`SingleCoilMRI`; CG on the normal
equations warm-started at ``z`` for :class:`MultiCoilMRI` (``AᴴA`` mixes coils, no cheap inverse); for
:class:`PhaseMagnitude` over a single coil, CG preconditioned by the exact inverse for a phase of 0 or π
(one step then, a few for a smooth phase), otherwise plain CG.
"""
from __future__ import annotations

import torch

from restore.errors import ShapeError
from restore.operators import LinearOperator
from restore.operators.cg import conjugate_gradient, preconditioned_cg

from .fft import fft2c, ifft2c, rss


def _as_mask(mask: torch.Tensor | None, H: int | None = None, W: int | None = None) -> torch.Tensor | None:
    if mask is None:
        return None
    m = torch.as_tensor(mask)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2:
        raise ShapeError(f"an MRI mask must be (H, W) or (W,) over k-space columns, got shape {tuple(m.shape)}")
    return (m != 0).to(torch.float64)


# CG iterations of the multi-coil data step: with γ in the millions the solve approaches the SENSE projection,
# which needs hundreds of steps at 4-8x; CG stops earlier once the residual is at its tolerance.
PROX_ITERS = 300
PROX_TOL = 1e-7


def _mirror(m: torch.Tensor) -> torch.Tensor:
    """``m[-k]`` on centred k-space (index ``j`` ↔ ``(N - j) mod N`` for even ``N``, ``N - 1 - j`` for odd)."""
    H, W = m.shape[-2:]
    return torch.roll(torch.flip(m, dims=(-2, -1)), shifts=(1 - H % 2, 1 - W % 2), dims=(-2, -1))


def _cg_prox(op: LinearOperator, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    x, _ = conjugate_gradient(lambda v: v + gamma * op.normal(v), z + gamma * op.adjoint(y), x0=z,
                              max_iter=PROX_ITERS, tol=PROX_TOL)
    return x


def _check_image(x: torch.Tensor, what: str = "MRI image") -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ShapeError(f"{what} must have shape (B, 1, H, W) complex, got {tuple(x.shape)}")


class MultiCoilMRI(LinearOperator):
    """SENSE forward model ``y_c = M F (S_c x)``, ``Aᴴ y = Σ_c conj(S_c) F⁻¹ (M y_c)``.

    Args:
        maps: coil sensitivities ``(C, H, W)`` or ``(B, C, H, W)`` complex (RSS-normalised for ``AᴴA = I``
            under a full mask).
        mask: sampling mask ``(H, W)`` or column mask ``(W,)``; ``None`` = fully sampled.
    """

    def __init__(self, maps: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        maps = torch.as_tensor(maps)
        if maps.ndim == 3:
            maps = maps[None]
        if maps.ndim != 4 or not maps.is_complex():
            raise ShapeError(f"coil maps must be complex (C, H, W) or (B, C, H, W), got {tuple(maps.shape)} "
                             f"{maps.dtype}")
        self.register_buffer("maps", maps)
        m = _as_mask(mask)
        H, W = maps.shape[-2:]
        if m is not None and (m.shape[-1] != W or m.shape[-2] not in (1, H)):
            raise ShapeError(f"mask of shape {tuple(m.shape)} does not match k-space of {H}x{W} (H x W); "
                             f"pass a ({W},) column mask or an ({H}, {W}) mask")
        self.register_buffer("mask", m if m is not None else torch.ones(1, W, dtype=torch.float64))

    @property
    def coils(self) -> int:
        return int(self.maps.shape[1])

    def _check(self, x: torch.Tensor) -> None:
        _check_image(x)
        if tuple(x.shape[-2:]) != tuple(self.maps.shape[-2:]):
            raise ShapeError(f"MRI image of {tuple(x.shape[-2:])} does not match coil maps of "
                             f"{tuple(self.maps.shape[-2:])}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return fft2c(self.maps.to(x.dtype) * x) * self.mask.to(x.real.dtype)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 4 or y.shape[1] != self.coils:
            raise ShapeError(f"k-space must have shape (B, {self.coils}, H, W), got {tuple(y.shape)}")
        img = ifft2c(y * self.mask.to(y.real.dtype))
        return (self.maps.conj().to(img.dtype) * img).sum(dim=1, keepdim=True)

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        return (s[0], 1) + s[2:]

    def batch_slice(self, start: int, stop: int) -> "MultiCoilMRI":
        if self.maps.shape[0] == 1:
            return self
        return MultiCoilMRI(self.maps[start:stop], self.mask)

    def zero_filled(self, y: torch.Tensor) -> torch.Tensor:
        """Root-sum-of-squares of the zero-filled coil images, ``(B, 1, H, W)`` real."""
        return rss(ifft2c(y * self.mask.to(y.real.dtype)))

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.adjoint(y)

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """``(I + γAᴴA)⁻¹(z + γAᴴy)`` by CG warm-started at ``z``, ``(B, 1, H, W)`` complex."""
        return _cg_prox(self, z, y, gamma)


class SingleCoilMRI(MultiCoilMRI):
    """Single-coil Cartesian MRI ``y = M F x``; ``y`` is ``(B, 1, H, W)`` complex.

    Args:
        mask: ``(H, W)`` mask or ``(W,)`` column mask (``None`` = fully sampled, then ``shape`` is needed).
        shape: ``(H, W)`` of the image.
    """

    def __init__(self, mask: torch.Tensor | None = None, shape: tuple[int, int] | None = None) -> None:
        m = _as_mask(mask)
        if shape is None:
            if m is None or m.shape[0] == 1:
                raise ShapeError("single-coil MRI needs shape=(H, W) unless the mask is a full (H, W) mask")
            shape = tuple(m.shape)
        H, W = int(shape[0]), int(shape[1])
        super().__init__(torch.ones(1, 1, H, W, dtype=torch.complex128), mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return fft2c(x) * self.mask.to(x.real.dtype)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 4 or y.shape[1] != 1:
            raise ShapeError(f"single-coil k-space must have shape (B, 1, H, W), got {tuple(y.shape)}")
        return ifft2c(y * self.mask.to(y.real.dtype))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self.forward(x))

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """``F⁻¹ M y``: exact, since ``AᴴA = F⁻¹ M F`` is a projection."""
        return self.adjoint(y)

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """Exact: ``F⁻¹ (F z + γ M y) / (1 + γ M)``, since ``AᴴA = F⁻¹ M F`` is diagonal in k-space."""
        m = self.mask.to(z.real.dtype)
        return ifft2c((fft2c(z) + gamma * m * y) / (1 + gamma * m))


class RealImagView(LinearOperator):
    """A complex MRI operator seen from a real two-channel image ``(B, 2, H, W)`` (real, imaginary).

    ``forward(v) = A(v[:, 0] + i v[:, 1])``; ``adjoint(y) = (Re Aᴴy, Im Aᴴy)`` — the exact adjoint for the
    real inner product, which is what CG and DDS use on a real unknown.
    """

    def __init__(self, op: LinearOperator) -> None:
        super().__init__()
        self.op = op

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if v.ndim != 4 or v.shape[1] != 2 or v.is_complex():
            raise ShapeError(f"real/imag view expects real (B, 2, H, W), got {tuple(v.shape)} {v.dtype}")
        return self.op(torch.complex(v[:, :1], v[:, 1:]))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        x = self.op.adjoint(y)
        return torch.cat([x.real, x.imag], dim=1)

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(self.op.input_shape(output_shape))
        return (s[0], 2) + s[2:]

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        x = self.op.initial_estimate(y)
        return torch.cat([x.real, x.imag], dim=1)

    def batch_slice(self, start: int, stop: int) -> "RealImagView | None":
        inner = self.op.batch_slice(start, stop)
        return None if inner is None else self if inner is self.op else RealImagView(inner)


class PhaseMagnitude(LinearOperator):
    """A complex MRI operator seen from a real magnitude image ``m`` ``(B, 1, H, W)`` with fixed phase.

    ``forward(m) = A(m e^{iφ})``, ``adjoint(y) = Re(e^{-iφ} Aᴴ y)``.

    Args:
        op: the complex operator (:class:`MultiCoilMRI` or :class:`SingleCoilMRI`).
        phase: ``(B, 1, H, W)`` or ``(H, W)`` phase map in radians.
    """

    def __init__(self, op: LinearOperator, phase: torch.Tensor) -> None:
        super().__init__()
        self.op = op
        phase = torch.as_tensor(phase)
        self.register_buffer("phase", phase if phase.ndim == 4 else phase.reshape((1, 1) + phase.shape[-2:]))

    def _rot(self, like: torch.Tensor) -> torch.Tensor:
        return torch.polar(torch.ones_like(self.phase, dtype=like.real.dtype), self.phase.to(like.real.dtype))

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        if m.ndim != 4 or m.shape[1] != 1 or m.is_complex():
            raise ShapeError(f"magnitude view expects real (B, 1, H, W), got {tuple(m.shape)} {m.dtype}")
        return self.op(m * self._rot(m))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        x = self.op.adjoint(y)
        return (x * self._rot(x).conj()).real

    def input_shape(self, output_shape) -> tuple[int, ...]:
        return tuple(self.op.input_shape(output_shape))

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.adjoint(y)

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """``argmin_m ‖m - z‖² + γ ‖A(m e^{iφ}) - y‖²`` over real ``m`` ``(B, 1, H, W)``.

        Single coil: the real part of ``F⁻¹ M F`` on real images is ``Q = F⁻¹ M_s F`` with the Hermitian-
        symmetrised mask ``M_s = (M(k) + M(-k)) / 2``, so for a phase of 0 or π (``s = sign cos φ = ±1``)
        the normal matrix is ``s Q s`` and ``s (I + γQ)⁻¹ s`` is its exact inverse. That inverse preconditions
        CG for any phase; it stays a good one while the phase varies slowly. Multi-coil: plain CG.
        """
        if not isinstance(self.op, SingleCoilMRI):
            return _cg_prox(self, z, y, gamma)
        H, W = self.phase.shape[-2:]
        m = torch.broadcast_to(self.op.mask, (H, W))
        damping = 1 / (1 + gamma * (m + _mirror(m)) / 2)
        sign = torch.where(torch.cos(self.phase) < 0, -1.0, 1.0).to(z.dtype)
        damping = damping.to(z.dtype)

        def precondition(r: torch.Tensor) -> torch.Tensor:
            return sign * ifft2c(fft2c(sign * r) * damping).real

        return preconditioned_cg(lambda v: v + gamma * self.normal(v), z + gamma * self.adjoint(y), precondition,
                                 x0=z, max_iter=PROX_ITERS, tol=PROX_TOL)

    def batch_slice(self, start: int, stop: int) -> "PhaseMagnitude | None":
        inner = self.op.batch_slice(start, stop)
        if inner is None:
            return None
        return PhaseMagnitude(inner, self.phase[start:stop] if self.phase.shape[0] > 1 else self.phase)


def make_single(mask=None, shape=None) -> SingleCoilMRI:
    """Registry factory for ``mri-single``."""
    return SingleCoilMRI(mask=mask, shape=shape)


def make_multicoil(maps, mask=None) -> MultiCoilMRI:
    """Registry factory for ``mri-multicoil``."""
    return MultiCoilMRI(maps=maps, mask=mask)

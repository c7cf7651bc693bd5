"""Operator contract: ``forward``; linear operators add ``adjoint``, ``normal``, ``pinv`` and ``prox``.

Operators act on images in public units (``(B, C, H, W)`` float in ``[0, 1]``, or complex/volumes where
the domain says so). They are ``torch.nn.Module`` so that buffers (kernels, masks) follow ``.to(device)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .cg import conjugate_gradient
from .svd import SVD, DiagonalSVD, MatrixSVD


class Operator(nn.Module):
    """A (possibly nonlinear) differentiable degradation ``y = A(x)``."""

    linear: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_shape(self, output_shape: torch.Size | tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``x`` that produces a measurement of ``output_shape`` (same shape by default)."""
        return tuple(output_shape)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        """A cheap estimate of ``x`` from ``y`` (used to start optimisers); ``y`` itself by default."""
        return y

    def batch_slice(self, start: int, stop: int) -> "Operator | None":
        """This operator for batch entries ``start:stop`` only, so the engine can restore a stack of slices
        a few at a time. Operators that hold per-entry data (coil maps, phases) slice it; operators that
        act alike on every entry return ``self``. ``None`` (the default) means "unknown": the whole batch
        is then solved at once.
        """
        return None

    def __matmul__(self, other: "Operator") -> "Operator":
        from .compose import compose

        return compose(self, other)


class LinearOperator(Operator):
    """A linear operator with an exact adjoint.

    Subclasses implement ``forward`` and ``adjoint``; they override ``normal``, ``pinv`` and ``prox`` when
    their structure gives a fast exact form (FFT for circular blur, closed forms for masks and pooling).
    """

    linear = True
    pinv_iters: int = 100
    #: ``pinv`` is the exact pseudo-inverse in closed form (masks): a run on a noiseless measurement then
    #: returns ``x + A⁺(y − A x)``, the nearest estimate that reproduces ``y`` exactly (observed pixels kept).
    exact_pinv: bool = False

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``AᴴA x``."""
        return self.adjoint(self.forward(x))

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Minimum-norm least-squares solution ``A⁺ y`` (CG on the normal equations from zero)."""
        x, _ = conjugate_gradient(self.normal, self.adjoint(y), max_iter=self.pinv_iters, tol=1e-7)
        return x

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        """``argmin_x ||x - z||² + gamma ||A x - y||²`` = ``(I + γAᴴA)⁻¹(z + γAᴴy)``."""
        x, _ = conjugate_gradient(
            lambda v: v + gamma * self.normal(v), z + gamma * self.adjoint(y), x0=z,
            max_iter=self.pinv_iters, tol=1e-7,
        )
        return x

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.pinv(y)

    def svd(self, x_shape: tuple[int, ...]) -> "SVD | None":
        """A fast exact SVD ``A = U diag(s) Vᵀ`` for inputs of ``x_shape`` (see :mod:`restore.operators.svd`),
        or ``None`` when the operator has none (the default)."""
        return None


class Identity(LinearOperator):
    """``A = I`` (denoising)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def batch_slice(self, start: int, stop: int) -> "Identity":
        return self

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        return (z + gamma * y) / (1 + gamma)

    def svd(self, x_shape):
        return DiagonalSVD(x_shape, 1.0)


class MatrixOperator(LinearOperator):
    """A dense matrix acting on flattened samples: ``x`` of shape ``(B, *shape)`` -> ``(B, m)``.

    Used by the analytic test fixtures and by plugin authors for small problems.
    """

    def __init__(self, matrix: torch.Tensor, input_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.register_buffer("matrix", matrix)
        self._in_shape = tuple(input_shape) if input_shape is not None else (matrix.shape[1],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.matrix.to(x.dtype).T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        m = self.matrix.to(y.dtype)
        return (y @ m.conj()).reshape((y.shape[0],) + self._in_shape)

    def input_shape(self, output_shape) -> tuple[int, ...]:
        return (output_shape[0],) + self._in_shape

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return (y @ torch.linalg.pinv(self.matrix.to(y.dtype)).T).reshape((y.shape[0],) + self._in_shape)

    def svd(self, x_shape):
        return MatrixSVD(x_shape, self.matrix)

    def batch_slice(self, start: int, stop: int) -> "MatrixOperator":
        return self


class Crop(LinearOperator):
    """Crop ``(..., H_pad, W_pad)`` to its top-left ``(H, W)``; the adjoint zero-pads.

    The engine composes ``A @ Crop`` when a network needs sizes that are multiples of 8: the padded
    border is then unconstrained by the data and filled in by the prior.
    """

    def __init__(self, height: int, width: int, pad_h: int, pad_w: int) -> None:
        super().__init__()
        self.height, self.width, self.pad_h, self.pad_w = height, width, pad_h, pad_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.height, : self.width]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(y, (0, self.pad_w, 0, self.pad_h))

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return self.adjoint(y)

    def batch_slice(self, start: int, stop: int) -> "Crop":
        return self

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        return s[:-2] + (s[-2] + self.pad_h, s[-1] + self.pad_w)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(y, (0, self.pad_w, 0, self.pad_h), mode="replicate")

"""A linear and a nonlinear (affine) degradation, written as a third party would write them."""
from __future__ import annotations

import torch

from restore import LinearOperator, Operator
from restore.errors import InvalidInputError, ShapeError


def _check_image(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what} must have shape (B, C, H, W), got {tuple(x.shape)}")


def _radius2(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """Squared distance from the image centre, 1 at the corners, ``(H, W)``."""
    ys = torch.linspace(-1, 1, h, dtype=like.real.dtype, device=like.device)
    xs = torch.linspace(-1, 1, w, dtype=like.real.dtype, device=like.device)
    return (ys[:, None] ** 2 + xs[None, :] ** 2) / 2


class Vignetting(LinearOperator):
    """Vignetting ``y = v ⊙ x`` with ``v(r) = 1 - strength · r²`` (``r = 1`` at the corners).

    A diagonal operator: the adjoint is the same multiplication and the pseudo-inverse divides by ``v``.

    Args:
        strength: brightness lost at the corners, in ``[0, 1)``.

    Shapes:
        ``x`` and ``y`` are ``(B, C, H, W)`` in [0, 1] units.
    """

    def __init__(self, strength: float = 0.5) -> None:
        super().__init__()
        if not 0 <= strength < 1:
            raise InvalidInputError(f"vignetting strength must be in [0, 1), got {strength}")
        self.strength = float(strength)

    def gain(self, like: torch.Tensor) -> torch.Tensor:
        """``v`` as ``(H, W)`` for an image shaped like ``like``."""
        _check_image(like, "vignetting input")
        return 1 - self.strength * _radius2(like.shape[-2], like.shape[-1], like)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.gain(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain(x) ** 2

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.gain(y)

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        v = self.gain(z)
        return (z + gamma * v * y) / (1 + gamma * v * v)


class Haze(Operator):
    """Atmospheric scattering (Koschmieder): ``y = x · t + A (1 - t)``, ``t = exp(-beta · depth)``.

    Affine rather than linear in ``x`` (the airlight term), so it is registered with ``linear=False`` and
    restored with DPS, which differentiates through it. Depth grows linearly from ``near`` at the bottom
    row to ``far`` at the top row, a ground plane seen from eye level.

    Args:
        beta: scattering coefficient per unit depth (> 0); larger is thicker haze.
        airlight: atmospheric light ``A`` in [0, 1] units.
        near, far: depth at the bottom and top rows (``0 <= near <= far``).

    Shapes:
        ``x`` and ``y`` are ``(B, C, H, W)`` in [0, 1] units.
    """

    def __init__(self, beta: float = 1.0, airlight: float = 0.8, near: float = 0.2, far: float = 1.5) -> None:
        super().__init__()
        if not beta > 0:
            raise InvalidInputError(f"haze beta must be > 0, got {beta}")
        if not 0 <= airlight <= 1:
            raise InvalidInputError(f"airlight must be in [0, 1] image units, got {airlight}")
        if not 0 <= near <= far:
            raise InvalidInputError(f"need 0 <= near <= far, got near={near}, far={far}")
        self.beta, self.airlight, self.near, self.far = float(beta), float(airlight), float(near), float(far)

    def transmission(self, like: torch.Tensor) -> torch.Tensor:
        """``t`` as ``(H, 1)``, broadcast over width, for an image shaped like ``like``."""
        _check_image(like, "haze input")
        depth = torch.linspace(self.far, self.near, like.shape[-2], dtype=like.real.dtype, device=like.device)
        return torch.exp(-self.beta * depth)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.transmission(x)
        return x * t + self.airlight * (1 - t)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        t = self.transmission(y)
        return ((y - self.airlight * (1 - t)) / t).clamp(0, 1)

"""Colorization: RGB ``(B, 3, H, W)`` -> gray ``(B, 1, H, W)`` with ITU-R BT.601 luma weights."""
from __future__ import annotations

import torch

from restore.operators import LinearOperator

from .common import check_image

#: ITU-R BT.601 luma weights (R, G, B); they sum to 1, so a gray image replicated to RGB maps to itself.
BT601 = (0.299, 0.587, 0.114)


class Colorization(LinearOperator):
    """``y = Σ_c w_c x_c`` per pixel (operator ``colorization``).

    ``A Aᵀ = |w|² I``, so ``pinv = Aᵀ y / |w|²`` and ``prox`` (Sherman–Morrison per pixel) are closed forms.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weights", torch.tensor(BT601, dtype=torch.float64))

    def _w(self, like: torch.Tensor) -> torch.Tensor:
        return self.weights.to(device=like.device, dtype=like.dtype).reshape(1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "colorization", channels=3)
        return (x * self._w(x)).sum(dim=1, keepdim=True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        check_image(y, "colorization adjoint", channels=1)
        return y * self._w(y)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return self.adjoint(y) / float((self.weights**2).sum())

    def prox(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        v = z + gamma * self.adjoint(y)
        w = self._w(v)
        return v - gamma * w * (v * w).sum(dim=1, keepdim=True) / (1 + gamma * float((self.weights**2).sum()))

    def svd(self, x_shape):
        """Per-pixel channel mix: one singular value ``‖w‖`` (luma direction), two null directions."""
        from restore.operators.svd import ChannelMixSVD

        return ChannelMixSVD(x_shape, self.weights) if len(x_shape) == 4 and x_shape[1] == 3 else None

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        return s[:1] + (3,) + s[2:]

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        """The gray image replicated to RGB (it maps back to ``y`` exactly)."""
        check_image(y, "colorization", channels=1)
        return y.expand(-1, 3, -1, -1).clone()

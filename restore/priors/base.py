"""The prior interface samplers talk to."""
from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..errors import ShapeError
from .parameterization import to_eps, to_v, to_x0
from .schedules import VPSchedule


class DiffusionPrior(nn.Module):
    """A VP diffusion prior ``x_k = a_k x0 + s_k eps`` in its own data range (model space).

    Subclasses implement :meth:`model_output` in their ``prediction_type``; every other prediction is
    derived here. Images enter and leave samplers through :meth:`to_model` / :meth:`from_model`, which
    map public ``[0, 1]`` units to the model's ``data_range``.

    Attributes:
        kind: ``"vp"`` for DDPM/DDIM-family priors, ``"analytic"`` priors are also VP.
        channels: image channels ``C`` of ``(B, C, H, W)`` inputs, or ``None`` for any shape.
        data_range: ``(lo, hi)`` of the model space that ``[0, 1]`` maps onto.
    """

    kind = "vp"
    prediction_type = "epsilon"
    clamp_output = True  # public outputs are images in [0, 1]

    def __init__(self, schedule: VPSchedule, channels: int | None, data_range=(-1.0, 1.0)) -> None:
        super().__init__()
        self.schedule = schedule
        self.channels = channels
        self.data_range = (float(data_range[0]), float(data_range[1]))

    # -- to be implemented -------------------------------------------------------------------------
    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Raw network output at level ``k`` (LongTensor ``(B,)``) for ``x`` in model space."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        if self.channels is not None and (x.ndim != 4 or x.shape[1] != self.channels):
            raise ShapeError(
                f"this prior expects images of shape (B, {self.channels}, H, W), got {tuple(x.shape)}; "
                f"pick a prior with {x.shape[1] if x.ndim == 4 else '?'} channels with --prior"
            )

    def _levels(self, x: torch.Tensor, k) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = torch.as_tensor(k, dtype=torch.long)
        if k.ndim == 0:
            k = k.expand(x.shape[0])
        shape = (-1,) + (1,) * (x.ndim - 1)
        a = self.schedule.a(k).to(x.device, x.real.dtype).reshape(shape)
        s = self.schedule.s(k).to(x.device, x.real.dtype).reshape(shape)
        return k.to(x.device), a, s

    def eps(self, x: torch.Tensor, k) -> torch.Tensor:
        kk, a, s = self._levels(x, k)
        return to_eps(self.model_output(x, kk), x, a, s, self.prediction_type)

    def x0(self, x: torch.Tensor, k) -> torch.Tensor:
        kk, a, s = self._levels(x, k)
        return to_x0(self.model_output(x, kk), x, a, s, self.prediction_type)

    def v(self, x: torch.Tensor, k) -> torch.Tensor:
        kk, a, s = self._levels(x, k)
        return to_v(self.model_output(x, kk), x, a, s, self.prediction_type)

    def score(self, x: torch.Tensor, k) -> torch.Tensor:
        """``∇ log p_k(x) ≈ -eps / s_k``."""
        _, _, s = self._levels(x, k)
        return -self.eps(x, k) / s

    def to_model(self, x01: torch.Tensor) -> torch.Tensor:
        lo, hi = self.data_range
        return x01 * (hi - lo) + lo

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.data_range
        return (x - lo) / (hi - lo)

    @property
    def model_scale(self) -> float:
        """Model units per public [0, 1] unit (2 for a [-1, 1] model)."""
        return self.data_range[1] - self.data_range[0]

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def fingerprint(self) -> str:
        """Identifies weights and schedule, so saved latents can refuse a different prior."""
        h = hashlib.sha256(type(self).__name__.encode())
        h.update(self.schedule.fingerprint().encode())
        for t in list(self.state_dict().values())[:64]:
            h.update(t.detach().cpu().contiguous().numpy().tobytes()[:4096])
        return h.hexdigest()[:16]

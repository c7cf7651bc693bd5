"""Prior families as types: a small :class:`Prior` base and its sibling families.

* :class:`DiffusionPrior` — pixel-space VP diffusion (DDPM/DDIM family); the analytic priors are VP too
  (their ``kind`` is ``"analytic"``: exact scores, any shape, float64).
* :class:`~restore.priors.latent.LatentPrior` — a VP prior on the latents of an autoencoder.
* :class:`~restore.priors.mean_reverting.MeanRevertingPrior` — IR-SDE family, conditioned on the degraded
  image ``μ``.

A sampler declares the families it accepts (``Sampler.families``, a tuple of these classes); the engine's
mismatch error and ``restore list samplers`` both read that declaration. Each family provides its bound
view (:mod:`restore.priors.view`), the only object a sampler talks to.
"""
from __future__ import annotations

import hashlib
from typing import ClassVar

import torch
from torch import nn

from ..errors import InvalidInputError, ShapeError
from .parameterization import to_eps, to_v, to_x0
from .schedules import VPSchedule
from .view import LatentView, MeanRevertingView, ModelView


class Prior(nn.Module):
    """What every prior family shares: channels, the public ``[0, 1]`` <-> model-space mapping, a device, a
    fingerprint and :meth:`bind`.

    Attributes:
        kind: the family's name (``"vp"``, ``"analytic"``, ``"latent"``, ``"mean-reverting"``).
        family_label: how errors and ``restore list samplers`` name the family.
        hint: what a user with a mismatched prior should pass instead.
        view_class: the family's bound view.
        channels: image channels ``C`` of ``(B, C, H, W)`` inputs, or ``None`` for any shape.
        data_range: ``(lo, hi)`` of the model space that ``[0, 1]`` maps onto.
    """

    kind: ClassVar[str] = ""
    family_label: ClassVar[str] = ""
    hint: ClassVar[str] = ""
    view_class: ClassVar[type[ModelView]] = ModelView
    clamp_output = True  # public outputs are images in [0, 1]
    schedule: object

    def __init__(self, channels: int | None, data_range=(-1.0, 1.0)) -> None:
        super().__init__()
        self.channels = channels
        self.data_range = (float(data_range[0]), float(data_range[1]))

    def bind(self, problem=None, *, shape=None, x_init: torch.Tensor | None = None) -> ModelView:
        """This prior bound to one run: ``problem`` (or an unconditional ``shape``), padding included."""
        return self.view_class(self, problem, shape, x_init)

    def check_input(self, x: torch.Tensor) -> None:
        """Channels as declared, and sizes that are multiples of the network's ``multiple`` (if it has one)."""
        if self.channels is not None and (x.ndim != 4 or x.shape[1] != self.channels):
            raise ShapeError(
                f"this prior expects images of shape (B, {self.channels}, H, W), got {tuple(x.shape)}; "
                f"pick a {x.shape[1] if x.ndim == 4 else '?'}-channel prior with --prior (the default follows the "
                f"image's channels)"
            )
        multiple = getattr(self, "multiple", 1)
        if multiple > 1 and (x.shape[-1] % multiple or x.shape[-2] % multiple):
            raise InvalidInputError(
                f"image size {tuple(x.shape[-2:])} must be a multiple of {multiple} for this network; "
                f"the engine pads inputs automatically (Sampler.run, restore.solve, the CLI)")

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


class VPPrior(Prior):
    """VP machinery shared by the pixel and latent families: ``x_k = a_k x0 + s_k eps`` in model space.

    Subclasses implement :meth:`model_output` in their ``prediction_type``; every other prediction is
    derived here.
    """

    prediction_type = "epsilon"

    def __init__(self, schedule: VPSchedule, channels: int | None, data_range=(-1.0, 1.0)) -> None:
        super().__init__(channels, data_range)
        self.schedule = schedule

    # -- to be implemented -------------------------------------------------------------------------
    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Raw network output at level ``k`` (LongTensor ``(B,)``) for ``x`` in model space."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------------
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


class Reparameterised:
    """A VP prior seen through another family's coordinates (``VPAsVE``, ``VPAsFlow``): units, input checks,
    padding multiple, output clamping and fingerprint are the wrapped prior's. Call :meth:`wrap` in
    ``__init__`` after the family's own ``__init__``."""

    vp: VPPrior

    def wrap(self, vp: VPPrior, family: str) -> None:
        self.vp = vp
        self.kind = f"{vp.kind} as {family}"
        self.clamp_output = vp.clamp_output
        self.multiple = getattr(vp, "multiple", 1)

    def check_input(self, x: torch.Tensor) -> None:
        self.vp.check_input(x)

    def to_model(self, x01: torch.Tensor) -> torch.Tensor:
        return self.vp.to_model(x01)

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        return self.vp.from_model(x)

    def fingerprint(self) -> str:
        return self.vp.fingerprint()


class DiffusionPrior(VPPrior):
    """A pixel-space VP diffusion prior ``x_k = a_k x0 + s_k eps`` in its own data range (model space).

    Images enter and leave samplers through :meth:`to_model` / :meth:`from_model`, which map public
    ``[0, 1]`` units to the model's ``data_range``.
    """

    kind = "vp"
    family_label = "pixel-space"
    hint = "--prior NAME of a pixel-space model (restore list priors)"


class LatentFamily(VPPrior):
    """The latent family: a VP prior on autoencoder latents (:class:`~restore.priors.latent.LatentPrior`)."""

    kind = "latent"
    family_label = "latent"
    hint = "--prior PATH_TO_LATENT_MODEL (a folder with vae/ and unet/)"
    view_class = LatentView


class MeanRevertingFamily(Prior):
    """The mean-reverting family (:class:`~restore.priors.mean_reverting.MeanRevertingPrior`)."""

    kind = "mean-reverting"
    family_label = "mean-reverting"
    hint = "a mean-reverting --prior (e.g. mr-denoise-25)"
    view_class = MeanRevertingView


class NoPrior(Prior):
    """The stand-in a prior-free method (a classical baseline) runs with: model units are public units."""

    kind = "none"
    family_label = "prior-free"
    hint = "no prior"
    clamp_output = False
    schedule = None

    def __init__(self) -> None:
        super().__init__(channels=None, data_range=(0.0, 1.0))


def family_names(families: tuple[type[Prior], ...]) -> str:
    """``"pixel-space VP diffusion or latent (VAE + UNet)"``: the families a sampler accepts, for humans."""
    return " or ".join(f.family_label for f in families)

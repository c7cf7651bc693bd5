"""Latent diffusion priors: a VP prior on autoencoder latents (SAMPLERS.md §1.3).

A latent prior folder (written with diffusers ``save_pretrained``)::

    my-ldm/
      vae/                 AutoencoderKL or VQModel (config.json + weights)
      unet/                UNet2DModel or UNet2DConditionModel (config.json + weights)
      scheduler/           optional DDPM-style scheduler_config.json (default: linear 1000 steps)
      restore_prior.json   {"kind": "latent", "scaling_factor": 0.18215, ...}  (optional fields below)
      conditioning.pt      optional (1, L, D) encoder_hidden_states for a UNet2DConditionModel

``restore_prior.json`` fields: ``kind`` (``"latent"``), ``scaling_factor`` (default: the VAE config's),
``shift_factor`` (default: the VAE config's, else 0), ``name``. A ``UNet2DConditionModel`` without
``conditioning.pt`` gets zero conditioning (unconditional use).

The prior's ``eps`` / ``x0`` act on latents ``z = scaling_factor · (Enc(x) - shift_factor)`` of shape
``(B, C_latent, H / f, W / f)``; :meth:`LatentPrior.encode` / :meth:`LatentPrior.decode` map public
``[0, 1]`` images ``(B, C, H, W)`` to latents and back (the VAE works in ``[-1, 1]``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import InvalidInputError, ShapeError
from .base import LatentFamily
from .diffusers_prior import _scheduler_betas
from .schedules import VPSchedule

VAE_CLASSES = ("AutoencoderKL", "VQModel")
UNET_CLASSES = ("UNet2DModel", "UNet2DConditionModel")


class LatentPrior(LatentFamily):
    """A VP eps/x0/v prior on VAE latents, with the VAE as encoder/decoder.

    Samplers keep their state in latent space; :meth:`to_model` encodes and :meth:`from_model` decodes,
    so ``Sampler.run`` returns decoded images in ``[0, 1]``.

    Attributes:
        kind: ``"latent"``.
        channels: latent channels (what ``eps`` acts on); ``image_channels``: channels of the images.
        factor: spatial down-sampling factor ``f`` of the VAE.
        multiple: image sizes must be multiples of this (``f`` times the UNet's multiple).
        scaling_factor, shift_factor: ``z = scaling_factor · (Enc(x) - shift_factor)``.
    """


    def __init__(self, vae, unet, schedule: VPSchedule, scaling_factor: float, shift_factor: float = 0.0,
                 prediction_type: str = "epsilon", conditioning: torch.Tensor | None = None, name: str = "",
                 metadata: dict | None = None) -> None:
        super().__init__(schedule, channels=unet.config.in_channels, data_range=(-1.0, 1.0))
        self.vae = vae.eval().requires_grad_(False)
        self.unet = unet.eval().requires_grad_(False)
        self.is_vq = type(vae).__name__ == "VQModel"
        self.image_channels = int(vae.config.in_channels)
        self.scaling_factor = float(scaling_factor)
        self.shift_factor = float(shift_factor)
        self.prediction_type = prediction_type
        self.name = name
        self.metadata = metadata or {}
        self.factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.unet_multiple = 2 ** (len(unet.config.block_out_channels) - 1)
        self.multiple = self.factor * self.unet_multiple
        cross = getattr(unet.config, "cross_attention_dim", None)
        if type(unet).__name__ == "UNet2DConditionModel" and conditioning is None:
            conditioning = torch.zeros(1, 1, int(cross if isinstance(cross, int) else cross[0]))
        self.register_buffer("conditioning", conditioning, persistent=False)

    # -- folder loading ---------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "LatentPrior":
        folder = Path(path)
        meta_path = folder / "restore_prior.json"
        try:
            metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"'{meta_path}' is not valid JSON ({exc}); fix or remove it") from None
        vae_dir, unet_dir = folder / "vae", folder / "unet"
        if not vae_dir.is_dir():
            raise InvalidInputError(f"latent prior folder '{folder}' has no vae/ sub-folder; save an AutoencoderKL or "
                                    f"VQModel there with save_pretrained")
        vae_cls = _component_class(vae_dir, VAE_CLASSES, "vae")
        unet_cls = _component_class(unet_dir, UNET_CLASSES, "unet")
        vae, unet = _load(vae_cls, vae_dir), _load(unet_cls, unet_dir)
        if unet.config.in_channels != vae.config.latent_channels:
            raise InvalidInputError(
                f"'{folder}': unet/ takes {unet.config.in_channels} channels but vae/ makes "
                f"{vae.config.latent_channels}-channel latents; the two must come from the same model")
        scaling = metadata.get("scaling_factor", getattr(vae.config, "scaling_factor", None))
        if not isinstance(scaling, (int, float)) or not scaling > 0:
            raise InvalidInputError(f"'{folder}': scaling_factor must be a positive number in restore_prior.json, "
                                    f"got {scaling!r}")
        shift = metadata.get("shift_factor", getattr(vae.config, "shift_factor", None)) or 0.0
        betas, prediction_type = _scheduler_betas(folder)
        cond_path = folder / "conditioning.pt"
        conditioning = torch.load(cond_path, map_location="cpu", weights_only=True) if cond_path.exists() else None
        prior = cls(vae, unet, VPSchedule(betas, name=f"diffusers-{betas.numel()}"), float(scaling), float(shift),
                    prediction_type, conditioning, name=metadata.get("name", folder.name), metadata=metadata)
        return prior.to(device)

    # -- latent <-> image ---------------------------------------------------------------------------------
    def latent_shape(self, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(B, C_latent, H / f, W / f)`` for images of shape ``(B, C, H, W)``."""
        if len(image_shape) != 4 or image_shape[1] != self.image_channels:
            raise ShapeError(f"this latent prior expects images of shape (B, {self.image_channels}, H, W), got "
                             f"{tuple(image_shape)}; pick a prior with matching channels with --prior")
        B, _, H, W = image_shape
        if H % self.multiple or W % self.multiple:
            raise InvalidInputError(
                f"image size {(H, W)} must be a multiple of {self.multiple} for this latent prior; the engine "
                f"pads inputs automatically when called through restore.solve or the CLI")
        return (B, self.channels, H // self.factor, W // self.factor)

    def _module_dtype(self, module) -> torch.dtype:
        return next(module.parameters()).dtype

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        """Public ``[0, 1]`` images ``(B, C, H, W)`` -> scaled latents ``(B, C_latent, H/f, W/f)`` (differentiable).

        AutoencoderKL uses the posterior mean (deterministic); VQModel the pre-quantisation latents.
        """
        self.latent_shape(tuple(x01.shape))
        x = (x01 * 2 - 1).to(self._module_dtype(self.vae))
        enc = self.vae.encode(x)
        h = enc.latents if self.is_vq else enc.latent_dist.mean
        return ((h - self.shift_factor) * self.scaling_factor).to(x01.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, C_latent, h, w)`` -> public images ``(B, C, h·f, w·f)``, roughly ``[0, 1]``,
        not clamped (differentiable; VQ decoding quantises with a straight-through gradient)."""
        h = (z / self.scaling_factor + self.shift_factor).to(self._module_dtype(self.vae))
        return ((self.vae.decode(h).sample + 1) / 2).to(z.dtype)

    def to_model(self, x01: torch.Tensor) -> torch.Tensor:
        return self.encode(x01)

    def from_model(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    # -- network --------------------------------------------------------------------------------------------
    def check_input(self, z: torch.Tensor) -> None:
        if z.ndim != 4 or z.shape[1] != self.channels:
            raise ShapeError(f"this latent prior's network expects latents of shape (B, {self.channels}, h, w), "
                             f"got {tuple(z.shape)}")
        if z.shape[-1] % self.unet_multiple or z.shape[-2] % self.unet_multiple:
            raise InvalidInputError(f"latent size {tuple(z.shape[-2:])} must be a multiple of {self.unet_multiple}")

    def model_output(self, z: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        self.check_input(z)
        dtype = self._module_dtype(self.unet)
        if self.conditioning is not None:
            cond = self.conditioning.to(z.device, dtype).expand(z.shape[0], -1, -1)
            out = self.unet(z.to(dtype), k.to(z.device), encoder_hidden_states=cond).sample
        else:
            out = self.unet(z.to(dtype), k.to(z.device)).sample
        out = out.to(z.dtype)
        if out.shape[1] == 2 * z.shape[1]:  # learned variance: keep the prediction half
            out = out[:, : z.shape[1]]
        return out


def _component_class(sub: Path, allowed: tuple[str, ...], what: str):
    cfg = sub / "config.json"
    if not cfg.exists():
        raise InvalidInputError(f"latent prior folder '{sub.parent}' has no {what}/config.json; save the {what} "
                                f"there with diffusers save_pretrained")
    try:
        name = json.loads(cfg.read_text()).get("_class_name", "")
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"'{cfg}' is not valid JSON ({exc})") from None
    if name not in allowed:
        raise InvalidInputError(f"'{cfg}' describes a {name or 'unknown class'}; the {what} must be one of "
                                f"{', '.join(allowed)}")
    import diffusers

    return getattr(diffusers, name)


def _load(cls, sub: Path):
    try:
        return cls.from_pretrained(str(sub), low_cpu_mem_usage=False)
    except Exception as exc:  # noqa: BLE001 - diffusers raises many types for bad folders
        raise InvalidInputError(f"could not load {cls.__name__} from '{sub}': {exc}".splitlines()[0]) from None


def load_latent_folder(folder: str | os.PathLike, device: str | torch.device = "cpu") -> LatentPrior:
    """The ``FOLDER_LOADERS["latent"]`` entry: load a latent prior folder (layout in the module docstring)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return LatentPrior.from_folder(folder, device=device)

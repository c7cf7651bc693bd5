"""Load a diffusers ``UNet2DModel`` + scheduler config from a local folder as a :class:`DiffusionPrior`.

Accepted layouts: a pipeline folder with ``unet/`` and ``scheduler/`` sub-folders (``DDPMPipeline``),
or a bare model folder with ``config.json`` + weights and an optional ``scheduler_config.json``.
Nothing is downloaded: a hub name is refused with a message.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import InvalidInputError
from .base import DiffusionPrior
from .schedules import VPSchedule
from .tiling import tiled


def _scheduler_betas(folder: Path) -> tuple[torch.Tensor, str]:
    for candidate in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json"):
        if candidate.exists():
            from diffusers import DDPMScheduler

            sched = DDPMScheduler.from_pretrained(str(candidate.parent))
            return sched.betas.double(), sched.config.prediction_type
    return VPSchedule.linear().betas, "epsilon"


class DiffusersPrior(DiffusionPrior):
    """A pixel-space VP prior around a diffusers ``UNet2DModel`` (eps, sample or v prediction).

    Networks with learned variance (2·C output channels, ADM style) use only the first C channels.
    Inputs are ``(B, C, H, W)`` in model range ``[-1, 1]``; H and W must suit the network (multiples of
    ``2 ** (levels - 1)``).

    Attributes:
        tile: images larger than ``tile`` pixels on a side go through the network in overlapping
            ``tile × tile`` windows (:mod:`restore.priors.tiling`), so memory is bounded for large photos;
            ``None`` disables tiling. A multiple of ``multiple``.
        tile_overlap: pixels shared by neighbouring tiles (blended with linear ramps).
    """

    def __init__(self, unet, schedule: VPSchedule, prediction_type: str = "epsilon", name: str = "",
                 metadata: dict | None = None) -> None:
        super().__init__(schedule, channels=unet.config.in_channels, data_range=(-1.0, 1.0))
        self.unet = unet.eval().requires_grad_(False)
        self.prediction_type = prediction_type
        self.name = name
        self.metadata = metadata or {}
        self.multiple = 2 ** (len(unet.config.block_out_channels) - 1)
        self.tile: int | None = 512
        self.tile_overlap = 64

    @classmethod
    def from_folder(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "DiffusersPrior":
        folder = Path(path)
        if not folder.is_dir():
            raise InvalidInputError(
                f"prior folder '{path}' does not exist; pass a registered prior name or a local diffusers "
                f"folder (downloading from a hub is not supported offline)")
        unet_dir = folder / "unet" if (folder / "unet" / "config.json").exists() else folder
        if not (unet_dir / "config.json").exists():
            raise InvalidInputError(f"'{folder}' has no unet/config.json or config.json; it is not a diffusers model folder")
        from diffusers import UNet2DModel
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()  # a missing `accelerate` is not the user's problem
        try:
            unet = UNet2DModel.from_pretrained(str(unet_dir), low_cpu_mem_usage=False)
        except Exception as exc:  # noqa: BLE001 - diffusers raises many types for bad folders
            raise InvalidInputError(f"could not load a UNet2DModel from '{unet_dir}': {exc}".splitlines()[0]) from None
        betas, prediction_type = _scheduler_betas(folder)
        meta_path = folder / "restore_prior.json"
        metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        prior = cls(unet, VPSchedule(betas, name=f"diffusers-{betas.numel()}"), prediction_type,
                    name=metadata.get("name", folder.name), metadata=metadata)
        return prior.to(device)

    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if self.tile and max(x.shape[-2:]) > self.tile:
            if self.tile % self.multiple or self.tile_overlap % self.multiple or self.tile_overlap >= self.tile:
                raise InvalidInputError(f"prior tile {self.tile} and overlap {self.tile_overlap} must be multiples of "
                                        f"{self.multiple} with overlap < tile")
            return tiled(lambda part: self._network(part, k), x, self.tile, self.tile_overlap)
        return self._network(x, k)

    def _network(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        dtype = next(self.unet.parameters()).dtype
        out = self.unet(x.to(dtype), k.to(x.device)).sample.to(x.dtype)
        if out.shape[1] == 2 * x.shape[1]:
            out = out[:, : x.shape[1]]
        return out

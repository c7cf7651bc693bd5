"""A published network (ADM, NCSN++/DDPM++, DDPM, consistency model) as a VP :class:`DiffusionPrior`."""
from __future__ import annotations

import torch
from torch import nn

from restore.errors import InvalidInputError
from restore.priors.base import DiffusionPrior
from restore.priors.tiling import tiled_network

from .schedules import NoiseSchedule


def network_channels(network: nn.Module) -> int:
    cfg = network.config
    return cfg.in_channels if hasattr(cfg, "in_channels") else cfg.num_channels


class ArchitecturePrior(DiffusionPrior):
    """A pixel-space VP prior around one of this package's reference-equivalent networks.

    The network is called in its own units and time convention (:mod:`.schedules`); the prior exposes the
    engine's VP view: ``x_k = a_k x0 + s_k eps`` in model space, ``k = 0 .. T-1``. ADM and score-SDE VP
    networks predict ``eps`` (a learned-variance half is dropped; :meth:`learned_log_variance` uses it);
    VE score networks predict ``−eps/σ``; consistency models predict ``x0``.

    Args:
        network: an :class:`~.adm.ADMUNet`, :class:`~.ncsnpp.NCSNpp` or :class:`~.ddpm.ScoreDDPM`.
        architecture: its name (``"adm"``, ``"ncsnpp"``, ``"ddpm"``).
        noise: the schedule the network was trained with.
        name: shown in listings and saved configs.
        class_label: class index for class-conditional ADM networks; ``None`` leaves the label embedding out.
        metadata: the folder's ``restore_prior.json`` content (kept for ``--save-config``).

    Attributes:
        tile / tile_overlap: images larger than ``tile`` on a side go through the network in overlapping
            windows (:mod:`restore.priors.tiling`); ``None`` disables tiling. Multiples of ``multiple``.
        multiple: H and W must be multiples of it (the engine pads to it).
    """

    def __init__(self, network: nn.Module, architecture: str, noise: NoiseSchedule, *, name: str = "",
                 class_label: int | None = None, metadata: dict | None = None) -> None:
        cfg = network.config
        centered = getattr(cfg, "centered", True)  # ADM and consistency models work in [-1, 1]
        super().__init__(noise.vp_schedule(), channels=network_channels(network),
                         data_range=(-1.0, 1.0) if centered else (0.0, 1.0))
        if class_label is not None:
            if not getattr(cfg, "class_cond", False):
                raise InvalidInputError(f"prior '{name}' is not class-conditional; remove class_label")
            if not 0 <= int(class_label) < cfg.num_classes:
                raise InvalidInputError(f"class_label {class_label} is outside 0..{cfg.num_classes - 1}")
        if noise.type == "ve-sde" and not noise.continuous and noise.steps != getattr(cfg, "num_scales", noise.steps):
            raise InvalidInputError(f"a discrete VE network indexes its {cfg.num_scales} noise levels: set the "
                                    f"schedule's steps to {cfg.num_scales} (got {noise.steps})")
        self.network = network.eval().requires_grad_(False)
        self.architecture = architecture
        self.noise = noise
        self.name = name
        self.class_label = None if class_label is None else int(class_label)
        self.metadata = metadata or {}
        self.prediction_type = "sample" if noise.type == "karras" else "epsilon"
        self.multiple = network.multiple
        size = cfg.image_size
        self.tile: int | None = max(2 * size, self.multiple)
        self.tile_overlap = max(self.multiple, (size // 4) // self.multiple * self.multiple)
        self._sigmas = noise.sigmas() if noise.is_ve else None

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise InvalidInputError(
                f"image size {tuple(x.shape[-2:])} must be a multiple of {self.multiple} for this network; "
                f"the engine pads inputs automatically when called through restore.solve or the CLI")

    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return tiled_network(lambda part: self._predict(part, k), x, self.tile, self.tile_overlap, self.multiple)

    def raw(self, x_net: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The network's raw output for its own input ``x_net`` ``(B, C, H, W)`` at levels ``k`` ``(B,)``."""
        dtype = next(self.network.parameters()).dtype
        label = self.noise.label(k.cpu()).to(x_net.device, torch.float32)
        args = [x_net.to(dtype), label]
        if self.class_label is not None:
            args.append(torch.full((x_net.shape[0],), self.class_label, dtype=torch.long, device=x_net.device))
        return self.network(*args).to(x_net.dtype)

    def _predict(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        k = k.to(x.device)
        C = x.shape[1]
        if not self.noise.is_ve:
            return self.raw(x, k)[:, :C]
        shape = (-1,) + (1,) * (x.ndim - 1)
        sigma = self._sigmas.to(x.device, x.dtype)[k].reshape(shape)
        x_ve = x * (1 + sigma ** 2).sqrt()  # undo the VP scaling a_k = 1/√(1+σ²)
        if self.noise.type == "karras":
            c_skip, c_out, c_in = self.noise.karras_scalings(sigma)
            return c_skip * x_ve + c_out * self.raw(c_in * x_ve, k)[:, :C]
        return -sigma * self.raw(x_ve, k)[:, :C]  # the VE network returns the score −eps/σ

    def learned_log_variance(self, x: torch.Tensor, k) -> torch.Tensor:
        """ADM's learned reverse-step log variance at ``k`` (``learn_sigma`` networks, DDPM schedules).

        The second half of the output, ``v ∈ [−1, 1]``, interpolates ``log β_k`` and the clipped log of the
        posterior variance ``β̃_k = β_k (1 − abar_{k−1}) / (1 − abar_k)`` (Nichol & Dhariwal, 2021, eq. 15).
        """
        cfg = self.network.config
        if not getattr(cfg, "learn_sigma", False) or self.noise.is_ve:
            raise InvalidInputError(f"prior '{self.name}' has no learned variance (learn_sigma is off)")
        kk, _, _ = self._levels(x, k)
        C = x.shape[1]
        v = self.raw(x, kk)[:, C:]
        sched = self.schedule
        betas = sched.betas.to(x.device)
        abar = sched.abar(kk.cpu()).to(x.device)
        abar_prev = sched.abar(kk.cpu() - 1).to(x.device)
        tilde = betas[kk] * (1 - abar_prev) / (1 - abar)
        tilde1 = betas[1] * (1 - sched.abar(0)) / (1 - sched.abar(1))  # guided-diffusion clips level 0 to level 1
        tilde = torch.where(kk == 0, tilde1.to(x.device), tilde)
        shape = (-1,) + (1,) * (x.ndim - 1)
        lo, hi = tilde.log().reshape(shape).to(x.dtype), betas[kk].log().reshape(shape).to(x.dtype)
        frac = (v + 1) / 2
        return frac * hi + (1 - frac) * lo

"""The DDPM UNet (Ho et al., 2020) as trained by score-SDE (``model.name = "ddpm"``).

Written for this project; the flat ``all_modules`` list and layer names follow ``score_sde_pytorch``'s
state dicts. GroupNorm uses 32 groups (widths must be multiples of 32); attention is single-head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from restore.errors import InvalidInputError

from .sde_layers import (AttnBlock, Downsample, NearestUpsample, ResnetBlockDDPM, activation, conv3x3,
                         positional_embedding)


@dataclass(frozen=True)
class DDPMConfig:
    """score-SDE ``config.model`` / ``config.data`` fields of the DDPM network.

    Defaults are the official ``configs/vp/ddpm/cifar10`` ones (the DDPM paper's CIFAR-10 model).

    Attributes:
        image_size, num_channels, centered: training resolution, channels, data in ``[-1, 1]``.
        nf, ch_mult, num_res_blocks, attn_resolutions: width, multipliers, blocks per level, attention sizes.
        resamp_with_conv: resampling uses convolutions.
        scale_by_sigma: the output is divided by ``sigmas[label]``.
        sigma_min, sigma_max, num_scales: the ``sigmas`` buffer.
    """

    image_size: int = 32
    num_channels: int = 3
    centered: bool = True
    nf: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.1
    resamp_with_conv: bool = True
    conditional: bool = True
    scale_by_sigma: bool = False
    nonlinearity: str = "swish"
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    num_scales: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(self.attn_resolutions))
        if not self.conditional:
            raise InvalidInputError("score-SDE DDPM with conditional=False does not run in the reference code")
        if self.nf % 32:
            raise InvalidInputError(f"score-SDE DDPM needs nf divisible by 32 (GroupNorm 32), got {self.nf}")

    def sigmas(self) -> torch.Tensor:
        return torch.tensor(np.exp(np.linspace(np.log(self.sigma_max), np.log(self.sigma_min), self.num_scales)))


class ScoreDDPM(nn.Module):
    """``forward(x, labels)`` maps ``(B, C, H, W)`` to ``(B, C, H, W)``; ``labels`` ``(B,)`` are time labels."""

    def __init__(self, config: DDPMConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.act = act = activation(cfg.nonlinearity)
        self.register_buffer("sigmas", cfg.sigmas())
        nf, n_levels = cfg.nf, len(cfg.ch_mult)
        resolutions = [cfg.image_size // 2 ** i for i in range(n_levels)]

        def resblock(cin, cout=None):
            return ResnetBlockDDPM(act, cin, cout, 4 * nf, cfg.dropout, groups=32)

        modules: list[nn.Module] = [nn.Linear(nf, 4 * nf), nn.Linear(4 * nf, 4 * nf), conv3x3(cfg.num_channels, nf)]
        skip_chans, ch = [nf], nf
        for level in range(n_levels):
            for _ in range(cfg.num_res_blocks):
                modules.append(resblock(ch, nf * cfg.ch_mult[level]))
                ch = nf * cfg.ch_mult[level]
                if resolutions[level] in cfg.attn_resolutions:
                    modules.append(AttnBlock(ch, groups=32))
                skip_chans.append(ch)
            if level != n_levels - 1:
                modules.append(Downsample(ch, with_conv=cfg.resamp_with_conv))
                skip_chans.append(ch)
        modules += [resblock(ch), AttnBlock(ch, groups=32), resblock(ch)]
        for level in reversed(range(n_levels)):
            for _ in range(cfg.num_res_blocks + 1):
                modules.append(resblock(ch + skip_chans.pop(), nf * cfg.ch_mult[level]))
                ch = nf * cfg.ch_mult[level]
            if resolutions[level] in cfg.attn_resolutions:
                modules.append(AttnBlock(ch, groups=32))
            if level != 0:
                modules.append(NearestUpsample(ch, cfg.resamp_with_conv))
        modules += [nn.GroupNorm(32, ch, eps=1e-6), conv3x3(ch, cfg.num_channels)]
        self.all_modules = nn.ModuleList(modules)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.config.ch_mult) - 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg, m = self.config, iter(self.all_modules)
        # Attention sits at the levels whose training-size width is listed (the reference tests the actual
        # width, which is the same at the training size and keeps other sizes from misplacing modules).
        attn = [cfg.image_size // 2 ** i in cfg.attn_resolutions for i in range(len(cfg.ch_mult))]
        temb = next(m)(positional_embedding(labels, cfg.nf))
        temb = next(m)(self.act(temb))
        h = x if cfg.centered else 2 * x - 1.0
        skips = [next(m)(h)]
        n_levels = len(cfg.ch_mult)
        for level in range(n_levels):
            for _ in range(cfg.num_res_blocks):
                h = next(m)(skips[-1], temb)
                if attn[level]:
                    h = next(m)(h)
                skips.append(h)
            if level != n_levels - 1:
                skips.append(next(m)(skips[-1]))
        h = skips[-1]
        h = next(m)(h, temb)
        h = next(m)(h)
        h = next(m)(h, temb)
        for level in reversed(range(n_levels)):
            for _ in range(cfg.num_res_blocks + 1):
                h = next(m)(torch.cat([h, skips.pop()], dim=1), temb)
            if attn[level]:
                h = next(m)(h)
            if level != 0:
                h = next(m)(h)
        norm, conv = next(m), next(m)
        h = conv(self.act(norm(h)))
        if cfg.scale_by_sigma:
            h = h / self.sigmas[labels.long()].reshape(-1, 1, 1, 1)
        return h

"""The DDPM UNet (Ho et al., 2020) as trained by score-SDE (``model.name = "ddpm"``).

Written for this project; the flat ``all_modules`` list and layer names follow ``score_sde_pytorch``'s
state dicts. GroupNorm uses 32 groups (widths must be multiples of 32); attention is single-head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from restore.errors import InvalidInputError

from .sde_layers import (AttnBlock, Downsample, NearestUpsample, ResnetBlockDDPM, ScoreUNet, ScoreUNetConfig,
                         conv3x3, positional_embedding)


@dataclass(frozen=True)
class DDPMConfig(ScoreUNetConfig):
    """score-SDE ``config.model`` / ``config.data`` fields of the DDPM network (all in
    :class:`~.sde_layers.ScoreUNetConfig`, whose defaults are this network's official CIFAR-10 ones)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(self.attn_resolutions))
        if not self.conditional:
            raise InvalidInputError("score-SDE DDPM with conditional=False does not run in the reference code")
        if self.nf % 32:
            raise InvalidInputError(f"score-SDE DDPM needs nf divisible by 32 (GroupNorm 32), got {self.nf}")


class ScoreDDPM(ScoreUNet):
    """``forward(x, labels)`` maps ``(B, C, H, W)`` to ``(B, C, H, W)``; ``labels`` ``(B,)`` are time labels."""

    def __init__(self, config: DDPMConfig) -> None:
        super().__init__(config)
        cfg, act = config, self.act
        nf, n_levels = cfg.nf, len(cfg.ch_mult)

        def resblock(cin, cout=None):
            return ResnetBlockDDPM(act, cin, cout, 4 * nf, cfg.dropout, groups=32)

        def attn(ch):
            return AttnBlock(ch, groups=32)

        modules: list[nn.Module] = [nn.Linear(nf, 4 * nf), nn.Linear(4 * nf, 4 * nf), conv3x3(cfg.num_channels, nf)]
        skip_chans, ch = [nf], nf
        for level in range(n_levels):
            ch = self.add_down_blocks(modules, level, ch, skip_chans, resblock, attn)
            if level != n_levels - 1:
                modules.append(Downsample(ch, with_conv=cfg.resamp_with_conv))
                skip_chans.append(ch)
        modules += [resblock(ch), attn(ch), resblock(ch)]
        for level in reversed(range(n_levels)):
            ch = self.add_up_blocks(modules, level, ch, skip_chans, resblock, attn)
            if level != 0:
                modules.append(NearestUpsample(ch, cfg.resamp_with_conv))
        modules += [nn.GroupNorm(32, ch, eps=1e-6), conv3x3(ch, cfg.num_channels)]
        self.all_modules = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg, m = self.config, iter(self.all_modules)
        attn = self.attention_levels()
        temb = next(m)(positional_embedding(labels, cfg.nf))
        temb = next(m)(self.act(temb))
        h = x if cfg.centered else 2 * x - 1.0
        skips = [next(m)(h)]
        n_levels = len(cfg.ch_mult)
        for level in range(n_levels):
            self.run_down_blocks(m, skips, temb, attn[level])
            if level != n_levels - 1:
                skips.append(next(m)(skips[-1]))
        h = self.run_middle(m, skips[-1], temb)
        for level in reversed(range(n_levels)):
            h = self.run_up_blocks(m, h, skips, temb, attn[level])
            if level != 0:
                h = next(m)(h)
        norm, conv = next(m), next(m)
        h = conv(self.act(norm(h)))
        if cfg.scale_by_sigma:
            h = h / self.sigmas[labels.long()].reshape(-1, 1, 1, 1)
        return h

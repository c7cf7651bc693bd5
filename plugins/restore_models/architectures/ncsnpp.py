"""NCSN++ and DDPM++ (Song et al., "Score-Based Generative Modeling through SDEs", ICLR 2021).

Written for this project to the paper's description; the flat ``all_modules`` list and the layer names
follow ``score_sde_pytorch`` so its checkpoints (and those of DiffusionMBIR / DDS, trained with that code)
load with strict keys. DDPM++ is this network with positional time embedding, no FIR and no output
pyramid; the VE models (NCSN++) use Gaussian Fourier features of ``log σ`` and divide the output by σ.

Options that cannot run in the reference PyTorch code (``progressive="residual"``, NCSN++'s non-FIR
``Upsample`` and its FIR up-convolution) are refused, since no checkpoint can exist for them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from restore.errors import InvalidInputError

from .sde_layers import (AttnBlock, Combine, Downsample, FIRUpsample, GaussianFourierProjection,
                         ResnetBlockBigGAN, ResnetBlockDDPM, ScoreUNet, ScoreUNetConfig, conv3x3, group_norm,
                         positional_embedding)


@dataclass(frozen=True)
class NCSNppConfig(ScoreUNetConfig):
    """score-SDE ``config.model`` / ``config.data`` fields that shape the network.

    Defaults are those of the official VE FFHQ-256 NCSN++ config (``configs/ve/ffhq_256_ncsnpp_continuous``
    on top of ``default_celeba_configs``), except ``sigma_max``/``num_scales`` which are the defaults'.

    Attributes (the shared ones in :class:`~.sde_layers.ScoreUNetConfig`):
        resblock_type: ``"biggan"`` (resampling residual blocks) or ``"ddpm"``.
        progressive / progressive_input / progressive_combine: output and input image pyramids.
        fir, fir_kernel: FIR resampling (StyleGAN2) instead of nearest/average.
        skip_rescale: residual and attention sums are divided by √2.
        embedding_type: ``"fourier"`` (of ``log σ``, continuous VE) or ``"positional"`` (of the time label).
        fourier_scale: std of the Fourier frequencies.
    """

    image_size: int = 256
    centered: bool = False
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 2, 2, 2)
    scale_by_sigma: bool = True
    sigma_max: float = 90.0
    fir: bool = True
    fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
    skip_rescale: bool = True
    resblock_type: str = "biggan"
    progressive: str = "output_skip"
    progressive_input: str = "input_skip"
    progressive_combine: str = "sum"
    embedding_type: str = "fourier"
    fourier_scale: float = 16.0

    def __post_init__(self) -> None:
        for name in ("ch_mult", "attn_resolutions", "fir_kernel"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name, value, allowed in (("progressive", self.progressive, ("none", "output_skip")),
                                     ("progressive_input", self.progressive_input, ("none", "input_skip", "residual")),
                                     ("progressive_combine", self.progressive_combine, ("sum", "cat")),
                                     ("embedding_type", self.embedding_type, ("fourier", "positional")),
                                     ("resblock_type", self.resblock_type, ("biggan", "ddpm"))):
            if value not in allowed:
                raise InvalidInputError(f"NCSN++ {name}='{value}' is not supported (the reference PyTorch code "
                                        f"cannot run it either); use one of {', '.join(allowed)}")
        if not self.conditional:
            raise InvalidInputError("NCSN++ with conditional=False is not supported; published models are conditional")
        # The reference's non-FIR Upsample and its FIR up-convolution fail, so no checkpoint uses them.
        if self.progressive == "output_skip" and not self.fir:
            raise InvalidInputError("NCSN++ progressive='output_skip' needs fir=True (as in the reference code)")
        if self.resblock_type == "ddpm" and (not self.fir or self.resamp_with_conv):
            raise InvalidInputError("NCSN++ with resblock_type='ddpm' needs fir=True and resamp_with_conv=False "
                                    "(other combinations do not run in the reference code)")


class NCSNpp(ScoreUNet):
    """NCSN++ / DDPM++: ``forward(x, labels)`` maps ``(B, C, H, W)`` to ``(B, C, H, W)``.

    ``labels`` ``(B,)`` are σ for Fourier embeddings, else the time label (``999 t`` for continuous VP
    models, the integer index for discrete ones). ``x`` is in ``[-1, 1]`` when ``centered`` else
    ``[0, 1]``. With ``scale_by_sigma`` the output is divided by σ (VE score models).
    """

    def __init__(self, config: NCSNppConfig) -> None:
        super().__init__(config)
        cfg, act = config, self.act
        nf, n_levels = cfg.nf, len(cfg.ch_mult)
        temb_dim = 4 * nf

        def resblock(cin, cout=None, up=False, down=False):
            if cfg.resblock_type == "ddpm":
                return ResnetBlockDDPM(act, cin, cout, temb_dim, cfg.dropout, cfg.skip_rescale)
            return ResnetBlockBigGAN(act, cin, cout, temb_dim, up, down, cfg.dropout, cfg.fir, cfg.fir_kernel,
                                     cfg.skip_rescale)

        def attn(ch):
            return AttnBlock(ch, cfg.skip_rescale)

        modules: list[nn.Module] = []
        if cfg.embedding_type == "fourier":
            modules.append(GaussianFourierProjection(nf, cfg.fourier_scale))
            embed_dim = 2 * nf
        else:
            embed_dim = nf
        modules += [nn.Linear(embed_dim, temb_dim), nn.Linear(temb_dim, temb_dim)]
        if cfg.progressive == "output_skip":
            self.pyramid_upsample = FIRUpsample(cfg.fir_kernel)
        if cfg.progressive_input == "input_skip":
            self.pyramid_downsample = Downsample(0, fir=cfg.fir, k=cfg.fir_kernel)

        channels = cfg.num_channels
        pyramid_ch = channels
        modules.append(conv3x3(channels, nf))
        skip_chans, ch = [nf], nf
        for level in range(n_levels):
            ch = self.add_down_blocks(modules, level, ch, skip_chans, resblock, attn)
            if level != n_levels - 1:
                if cfg.resblock_type == "ddpm":
                    modules.append(Downsample(ch, with_conv=cfg.resamp_with_conv, fir=cfg.fir, k=cfg.fir_kernel))
                else:
                    modules.append(resblock(ch, down=True))
                if cfg.progressive_input == "input_skip":
                    modules.append(Combine(pyramid_ch, ch, cfg.progressive_combine))
                    if cfg.progressive_combine == "cat":
                        ch *= 2
                elif cfg.progressive_input == "residual":
                    modules.append(Downsample(pyramid_ch, ch, with_conv=True, fir=cfg.fir, k=cfg.fir_kernel))
                    pyramid_ch = ch
                skip_chans.append(ch)

        ch = skip_chans[-1]
        modules += [resblock(ch), attn(ch), resblock(ch)]
        for level in reversed(range(n_levels)):
            ch = self.add_up_blocks(modules, level, ch, skip_chans, resblock, attn)
            if cfg.progressive == "output_skip":
                modules.append(group_norm(ch))
                modules.append(conv3x3(ch, channels))
            if level != 0:
                if cfg.resblock_type == "ddpm":
                    modules.append(FIRUpsample(cfg.fir_kernel))
                else:
                    modules.append(resblock(ch, up=True))
        if cfg.progressive != "output_skip":
            modules += [group_norm(ch), conv3x3(ch, channels)]
        self.all_modules = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg, m = self.config, iter(self.all_modules)
        attn = self.attention_levels()
        if cfg.embedding_type == "fourier":
            used_sigmas = labels
            temb = next(m)(torch.log(labels))
        else:
            used_sigmas = self.sigmas[labels.long()] if cfg.scale_by_sigma else None
            temb = positional_embedding(labels, cfg.nf)
        temb = next(m)(temb)
        temb = next(m)(self.act(temb))
        if not cfg.centered:
            x = 2 * x - 1.0
        pyramid_in = x
        skips = [next(m)(x)]
        n_levels = len(cfg.ch_mult)
        for level in range(n_levels):
            self.run_down_blocks(m, skips, temb, attn[level])
            if level != n_levels - 1:
                h = next(m)(skips[-1]) if cfg.resblock_type == "ddpm" else next(m)(skips[-1], temb)
                if cfg.progressive_input == "input_skip":
                    pyramid_in = self.pyramid_downsample(pyramid_in)
                    h = next(m)(pyramid_in, h)
                elif cfg.progressive_input == "residual":
                    pyramid_in = next(m)(pyramid_in)
                    pyramid_in = (pyramid_in + h) / np.sqrt(2.0) if cfg.skip_rescale else pyramid_in + h
                    h = pyramid_in
                skips.append(h)

        h = self.run_middle(m, skips[-1], temb)
        pyramid = None
        for level in reversed(range(n_levels)):
            h = self.run_up_blocks(m, h, skips, temb, attn[level])
            if cfg.progressive == "output_skip":
                norm, conv = next(m), next(m)
                out = conv(self.act(norm(h)))
                pyramid = out if pyramid is None else self.pyramid_upsample(pyramid) + out
            if level != 0:
                h = next(m)(h) if cfg.resblock_type == "ddpm" else next(m)(h, temb)
        if cfg.progressive == "output_skip":
            h = pyramid
        else:
            norm, conv = next(m), next(m)
            h = conv(self.act(norm(h)))
        if cfg.scale_by_sigma:
            h = h / used_sigmas.reshape(-1, 1, 1, 1)
        return h

"""Building blocks of the score-SDE networks (NCSN++, DDPM++ and DDPM; Song et al., ICLR 2021).

Written for this project; attribute names (``GroupNorm_0``, ``Conv_0``, ``Dense_0``, ``NIN_0``, ``W``, ``b``)
follow the layout of ``score_sde_pytorch`` state dicts so that its checkpoints load with strict keys.
FIR resampling is StyleGAN2's ``upfirdn2d`` (zero insertion, padding, FIR filtering, decimation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restore.errors import InvalidInputError

ACTIVATIONS = {"swish": nn.SiLU, "elu": nn.ELU, "relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2)}


def activation(name: str) -> nn.Module:
    if name.lower() not in ACTIVATIONS:
        raise InvalidInputError(f"unknown nonlinearity '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name.lower()]()


def group_norm(channels: int, groups: int | None = None) -> nn.GroupNorm:
    """score-SDE's GroupNorm: ``min(channels // 4, 32)`` groups unless given, eps 1e-6."""
    return nn.GroupNorm(groups or min(channels // 4, 32), channels, eps=1e-6)


def conv3x3(cin: int, cout: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=padding)


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def positional_embedding(t: torch.Tensor, dim: int, max_positions: float = 10000.0) -> torch.Tensor:
    """DDPM's sinusoidal embedding ``[sin(t f), cos(t f)]``, ``f_i = max_positions^(-i/(half-1))``."""
    half = dim // 2
    step = math.log(max_positions) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -step)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of the (log) noise level: ``[sin(2π W x), cos(2π W x)]``; ``W`` is fixed."""

    def __init__(self, embedding_size: int, scale: float) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = x[:, None] * self.W[None, :] * 2 * np.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class NIN(nn.Module):
    """A 1×1 "network in network" layer stored as ``W (in, out)`` and ``b (out,)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.zeros(cin, cout))
        self.b = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("bhwc,cd->bhwd", x.permute(0, 2, 3, 1), self.W) + self.b).permute(0, 3, 1, 2)


class AttnBlock(nn.Module):
    """Single-head self-attention over positions with NIN projections; ``(x + h) / √2`` when rescaling."""

    def __init__(self, channels: int, skip_rescale: bool = False, groups: int | None = None) -> None:
        super().__init__()
        self.GroupNorm_0 = group_norm(channels, groups)
        self.NIN_0, self.NIN_1, self.NIN_2, self.NIN_3 = (NIN(channels, channels) for _ in range(4))
        self.skip_rescale = skip_rescale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.GroupNorm_0(x)
        q, k, v = self.NIN_0(h), self.NIN_1(h), self.NIN_2(h)
        w = torch.einsum("bchw,bcij->bhwij", q, k) * (int(C) ** -0.5)
        w = F.softmax(w.reshape(B, H, W, H * W), dim=-1).reshape(B, H, W, H, W)
        h = self.NIN_3(torch.einsum("bhwij,bcij->bchw", w, v))
        return (x + h) / np.sqrt(2.0) if self.skip_rescale else x + h


# -- FIR resampling ---------------------------------------------------------------------------------------
def fir_kernel(k, gain: float = 1.0) -> torch.Tensor:
    """A separable FIR kernel normalised to sum ``gain`` (built in float32 as the reference does)."""
    k = np.asarray(k, dtype=np.float32)
    k = np.outer(k, k) if k.ndim == 1 else k
    k = k / np.sum(k)
    return torch.tensor(k * gain)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)):
    """Zero-insert by ``up``, zero-pad by ``pad`` on each side, filter with ``kernel``, keep every ``down``-th."""
    n, c, h, w = x.shape
    x = x.reshape(n * c, 1, h, w)
    if up > 1:
        x = F.pad(x.reshape(n * c, 1, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(n * c, 1, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    k = kernel.to(x.device, x.dtype)
    x = F.conv2d(x, torch.flip(k, [0, 1])[None, None])[..., ::down, ::down]
    return x.reshape(n, c, x.shape[-2], x.shape[-1])


def upsample_2d(x: torch.Tensor, k, factor: int = 2) -> torch.Tensor:
    kernel = fir_kernel(k, factor ** 2)
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x: torch.Tensor, k, factor: int = 2) -> torch.Tensor:
    kernel = fir_kernel(k)
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))


def naive_upsample_2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, c, h, 1, w, 1).repeat(1, 1, 1, factor, 1, factor).reshape(n, c, h * factor, w * factor)


def naive_downsample_2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


class FIRConvDown(nn.Module):
    """FIR low-pass then a stride-2 3×3 convolution (StyleGAN2's fused ``conv_downsample_2d``)."""

    def __init__(self, cin: int, cout: int, k) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = fir_kernel(self.k)
        p = (kernel.shape[0] - 2) + (self.weight.shape[-1] - 1)
        x = upfirdn2d(x, kernel, pad=((p + 1) // 2, p // 2))
        return F.conv2d(x, self.weight, stride=2) + self.bias.reshape(1, -1, 1, 1)


class Downsample(nn.Module):
    """×½: FIR (+ fused conv) when ``fir``, else average pooling or a stride-2 conv with 'SAME' padding."""

    def __init__(self, cin: int, cout: int | None = None, with_conv: bool = False, fir: bool = False,
                 k=(1, 3, 3, 1)) -> None:
        super().__init__()
        cout = cout or cin
        if with_conv and fir:
            self.Conv2d_0 = FIRConvDown(cin, cout, k)
        elif with_conv:
            self.Conv_0 = conv3x3(cin, cout, stride=2, padding=0)
        self.with_conv, self.fir, self.k = with_conv, fir, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else downsample_2d(x, self.k)
        if self.with_conv:
            return self.Conv_0(F.pad(x, (0, 1, 0, 1)))
        return F.avg_pool2d(x, 2, stride=2)


class FIRUpsample(nn.Module):
    """×2 by FIR interpolation (no parameters)."""

    def __init__(self, k=(1, 3, 3, 1)) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_2d(x, self.k)


class Combine(nn.Module):
    """Merge a pyramid image into features: 1×1 conv, then sum or concatenate."""

    def __init__(self, dim1: int, dim2: int, method: str) -> None:
        super().__init__()
        self.Conv_0 = conv1x1(dim1, dim2)
        self.method = method

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.Conv_0(x)
        return torch.cat([h, y], dim=1) if self.method == "cat" else h + y


class ResnetBlockDDPM(nn.Module):
    """DDPM's residual block (NIN or 3×3 shortcut when widths differ), optionally ``/√2``-rescaled."""

    def __init__(self, act: nn.Module, cin: int, cout: int | None = None, temb_dim: int | None = None,
                 dropout: float = 0.1, skip_rescale: bool = False, groups: int | None = None,
                 conv_shortcut: bool = False) -> None:
        super().__init__()
        cout = cout or cin
        self.GroupNorm_0 = group_norm(cin, groups)
        self.Conv_0 = conv3x3(cin, cout)
        if temb_dim is not None:
            self.Dense_0 = nn.Linear(temb_dim, cout)
        self.GroupNorm_1 = group_norm(cout, groups)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(cout, cout)
        if cin != cout:
            if conv_shortcut:
                self.Conv_2 = conv3x3(cin, cout)
            else:
                self.NIN_0 = NIN(cin, cout)
        self.act, self.skip_rescale, self.cout, self.conv_shortcut = act, skip_rescale, cout, conv_shortcut

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.Conv_0(self.act(self.GroupNorm_0(x)))
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))
        if x.shape[1] != self.cout:
            x = self.Conv_2(x) if self.conv_shortcut else self.NIN_0(x)
        return (x + h) / np.sqrt(2.0) if self.skip_rescale else x + h


class ResnetBlockBigGAN(nn.Module):
    """BigGAN-style residual block that may resample (FIR or nearest/average) on both paths."""

    def __init__(self, act: nn.Module, cin: int, cout: int | None = None, temb_dim: int | None = None,
                 up: bool = False, down: bool = False, dropout: float = 0.1, fir: bool = False,
                 k=(1, 3, 3, 1), skip_rescale: bool = True) -> None:
        super().__init__()
        cout = cout or cin
        self.GroupNorm_0 = group_norm(cin)
        self.Conv_0 = conv3x3(cin, cout)
        if temb_dim is not None:
            self.Dense_0 = nn.Linear(temb_dim, cout)
        self.GroupNorm_1 = group_norm(cout)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(cout, cout)
        self.shortcut = cin != cout or up or down
        if self.shortcut:
            self.Conv_2 = conv1x1(cin, cout)
        self.act, self.up, self.down, self.fir, self.k, self.skip_rescale = act, up, down, fir, k, skip_rescale

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return upsample_2d(x, self.k) if self.fir else naive_upsample_2d(x)
        if self.down:
            return downsample_2d(x, self.k) if self.fir else naive_downsample_2d(x)
        return x

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self._resample(self.act(self.GroupNorm_0(x)))
        x = self._resample(x)
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))
        if self.shortcut:
            x = self.Conv_2(x)
        return (x + h) / np.sqrt(2.0) if self.skip_rescale else x + h


class NearestUpsample(nn.Module):
    """×2 nearest neighbour, optionally followed by a 3×3 convolution (DDPM)."""

    def __init__(self, channels: int, with_conv: bool) -> None:
        super().__init__()
        if with_conv:
            self.Conv_0 = conv3x3(channels, channels)
        self.with_conv = with_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(x, (x.shape[-2] * 2, x.shape[-1] * 2), mode="nearest")
        return self.Conv_0(h) if self.with_conv else h


@dataclass(frozen=True)
class ScoreUNetConfig:
    """The score-SDE ``config.model`` / ``config.data`` fields that DDPM and NCSN++/DDPM++ share.

    Defaults are the official ``configs/vp/ddpm/cifar10`` ones (the DDPM paper's CIFAR-10 model).

    Attributes:
        image_size, num_channels: training resolution and image channels (``config.data``).
        centered: data were in ``[-1, 1]``; otherwise ``[0, 1]`` and the network maps ``x → 2x − 1`` itself.
        nf, ch_mult, num_res_blocks, attn_resolutions: width, multipliers, blocks per level, attention sizes.
        resamp_with_conv: resampling uses convolutions.
        scale_by_sigma: the output is divided by ``sigmas[label]`` (the network predicts a score).
        sigma_min, sigma_max, num_scales: the noise levels stored in the ``sigmas`` buffer.
        conditional, dropout, nonlinearity: as in score-SDE.
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

    def sigmas(self) -> torch.Tensor:
        """The ``sigmas`` buffer: ``num_scales`` geometric levels from ``sigma_max`` down to ``sigma_min``."""
        return torch.tensor(np.exp(np.linspace(np.log(self.sigma_max), np.log(self.sigma_min), self.num_scales)))


class ScoreUNet(nn.Module):
    """What score-SDE's DDPM and NCSN++/DDPM++ share: the order in which their flat ``all_modules`` list is
    built and walked around the skip connections (``config`` has ``nf``, ``ch_mult``, ``num_res_blocks``,
    ``attn_resolutions`` and ``image_size``)."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.act = activation(config.nonlinearity)
        self.register_buffer("sigmas", config.sigmas())

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.config.ch_mult) - 1)

    def add_down_blocks(self, modules: list, level: int, ch: int, skip_chans: list[int], resblock, attn) -> int:
        """Append one level's residual blocks (attention after each where the level has it); returns ``ch``."""
        cfg = self.config
        for _ in range(cfg.num_res_blocks):
            modules.append(resblock(ch, cfg.nf * cfg.ch_mult[level]))
            ch = cfg.nf * cfg.ch_mult[level]
            if cfg.image_size // 2 ** level in cfg.attn_resolutions:
                modules.append(attn(ch))
            skip_chans.append(ch)
        return ch

    def add_up_blocks(self, modules: list, level: int, ch: int, skip_chans: list[int], resblock, attn) -> int:
        """Append one level's residual blocks on the concatenated skips, then its attention; returns ``ch``."""
        cfg = self.config
        for _ in range(cfg.num_res_blocks + 1):
            modules.append(resblock(ch + skip_chans.pop(), cfg.nf * cfg.ch_mult[level]))
            ch = cfg.nf * cfg.ch_mult[level]
        if cfg.image_size // 2 ** level in cfg.attn_resolutions:
            modules.append(attn(ch))
        return ch

    def attention_levels(self) -> list[bool]:
        # Attention sits at the levels whose training-size width is listed (the reference tests the actual
        # width, which is the same at the training size and keeps other sizes from misplacing modules).
        cfg = self.config
        return [cfg.image_size // 2 ** i in cfg.attn_resolutions for i in range(len(cfg.ch_mult))]

    def run_down_blocks(self, m, skips: list[torch.Tensor], temb: torch.Tensor, attn: bool) -> None:
        """Walk one level's residual (and attention) blocks, appending each output to ``skips``."""
        for _ in range(self.config.num_res_blocks):
            h = next(m)(skips[-1], temb)
            if attn:
                h = next(m)(h)
            skips.append(h)

    def run_middle(self, m, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """Residual block, attention, residual block at the lowest resolution."""
        h = next(m)(h, temb)
        h = next(m)(h)
        return next(m)(h, temb)

    def run_up_blocks(self, m, h: torch.Tensor, skips: list[torch.Tensor], temb: torch.Tensor,
                      attn: bool) -> torch.Tensor:
        """Walk one level's residual blocks on ``h`` concatenated with the skips, then its attention."""
        for _ in range(self.config.num_res_blocks + 1):
            h = next(m)(torch.cat([h, skips.pop()], dim=1), temb)
        return next(m)(h) if attn else h

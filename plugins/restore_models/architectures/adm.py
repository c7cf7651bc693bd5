"""The ADM UNet of "Diffusion Models Beat GANs on Image Synthesis" (Dhariwal & Nichol, 2021).

Written for this project to the published description; module and parameter names follow the layout of
OpenAI's ``guided_diffusion.unet.UNetModel`` state dicts, so their checkpoints (``ffhq_10m.pt`` of DPS,
``256x256_diffusion_uncond.pt``, the ImageNet models, consistency-model checkpoints) load with strict key
matching. ``tests/test_architectures.py`` checks outputs against the reference code on random weights.

Structure: sinusoidal time embedding → MLP; an encoder of residual blocks (optionally FiLM
"scale-shift" conditioning) with self-attention at chosen resolutions and downsampling by strided
convolution, average pooling or residual blocks; a middle block (res, attention, res); a decoder that
concatenates the encoder's features; GroupNorm → SiLU → conv to ``out_channels`` (``2 C`` with learned
variance, whose second half a prior may ignore).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from restore.errors import InvalidInputError

# guided-diffusion script_util.create_model: channel multipliers when none are given.
DEFAULT_CHANNEL_MULT = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4),
                        64: (1, 2, 3, 4)}


@dataclass(frozen=True)
class ADMConfig:
    """Hyper-parameters of an ADM UNet, named as guided-diffusion's ``create_model`` flags.

    Defaults are ``create_model``'s (official code), except ``image_size`` which has no default there.

    Attributes:
        image_size: training resolution; fixes the default ``channel_mult`` and where attention sits.
        num_channels: base width (``model_channels``).
        num_res_blocks: residual blocks per level.
        attention_resolutions: feature-map sizes (pixels) with self-attention, e.g. ``(32, 16, 8)``.
        channel_mult: width multipliers per level; empty for guided-diffusion's default for ``image_size``.
        learn_sigma: the network also outputs the variance interpolation (``2 C`` channels).
        class_cond / num_classes: a class-label embedding is added to the time embedding.
        num_heads / num_head_channels / num_heads_upsample: attention heads (``num_head_channels`` wins
            when not -1).
        use_scale_shift_norm: FiLM conditioning ``norm(h) (1 + scale) + shift`` instead of adding a bias.
        resblock_updown: residual blocks do the up/down-sampling instead of plain (conv) resamplers.
        use_new_attention_order: split q/k/v before heads (``QKVAttention``) instead of after (legacy).
        use_fp16: the torso runs in float16 (only on CUDA; CPU runs in float32).
        in_channels: image channels.
        conv_resample: plain resamplers use a convolution.
        dropout: dropout rate (inactive at inference).
    """

    image_size: int = 256
    num_channels: int = 128
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16,)
    channel_mult: tuple[float, ...] = ()
    learn_sigma: bool = False
    class_cond: bool = False
    num_classes: int = 1000
    num_heads: int = 1
    num_head_channels: int = -1
    num_heads_upsample: int = -1
    use_scale_shift_norm: bool = False
    resblock_updown: bool = False
    use_new_attention_order: bool = False
    use_fp16: bool = False
    in_channels: int = 3
    conv_resample: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        mult = tuple(self.channel_mult)
        if not mult:
            if self.image_size not in DEFAULT_CHANNEL_MULT:
                raise InvalidInputError(f"ADM has no default channel_mult for image_size {self.image_size}; "
                                        f"give channel_mult explicitly (e.g. [1, 1, 2, 2, 4, 4])")
            mult = DEFAULT_CHANNEL_MULT[self.image_size]
        object.__setattr__(self, "channel_mult", mult)
        object.__setattr__(self, "attention_resolutions", tuple(int(r) for r in self.attention_resolutions))

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def attention_downsample_rates(self) -> set[int]:
        return {self.image_size // r for r in self.attention_resolutions}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """ADM's sinusoidal embedding ``[cos(t f), sin(t f)]``, ``f_i = max_period^(-i/half)``; ``t`` may be fractional."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the activations' dtype (keeps a float16 torso stable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def _norm(channels: int) -> GroupNorm32:
    return GroupNorm32(32, channels)


class EmbedSequential(nn.Sequential):
    """A sequence whose residual blocks also receive the time embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class Upsample(nn.Module):
    """Nearest-neighbour ×2, optionally followed by a 3×3 convolution."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Stride-2 3×3 convolution, or 2×2 average pooling."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with the time embedding in between; may resample (``up``/``down``)."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int | None = None,
                 use_scale_shift_norm: bool = False, up: bool = False, down: bool = False) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels))
        self.out_layers = nn.Sequential(_norm(out_channels), nn.SiLU(), nn.Dropout(p=dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        # A 1×1 convolution matches channels on the skip path (guided-diffusion never uses the 3×3 option).
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:  # resample between the activation and the first convolution, on both paths
            h = self.h_upd(self.in_layers[:-1](x))
            x = self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all positions, with 1×1 (``Conv1d``) q/k/v and output projections.

    ``new_order`` splits q, k, v before the heads (channels laid out ``(3, heads, d)``); the legacy order
    splits heads first (``(heads, 3, d)``). Consistency-model checkpoints store the projections as 1×1
    ``Conv2d`` weights and use the new order; their weights are reshaped on load.
    """

    def __init__(self, channels: int, num_heads: int, num_head_channels: int, new_order: bool) -> None:
        super().__init__()
        if num_head_channels != -1:
            if channels % num_head_channels:
                raise InvalidInputError(f"attention width {channels} is not divisible by num_head_channels "
                                        f"{num_head_channels}")
            num_heads = channels // num_head_channels
        self.num_heads = num_heads
        self.new_order = new_order
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        self._register_load_state_dict_pre_hook(_squeeze_conv2d_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        length = qkv.shape[-1]
        d = c // self.num_heads
        if self.new_order:
            q, k, v = (t.reshape(b * self.num_heads, d, length) for t in qkv.chunk(3, dim=1))
        else:
            q, k, v = qkv.reshape(b * self.num_heads, 3 * d, length).split(d, dim=1)
        scale = d ** -0.25  # on both q and k: more stable in float16 than dividing the product
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        h = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, length)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


def _squeeze_conv2d_weights(state_dict, prefix, *args, **kwargs) -> None:
    for name in ("qkv.weight", "proj_out.weight"):
        w = state_dict.get(prefix + name)
        if w is not None and w.ndim == 4 and w.shape[-2:] == (1, 1):
            state_dict[prefix + name] = w[..., 0]


class ADMUNet(nn.Module):
    """The ADM UNet; ``forward(x, t, y=None)`` maps ``(B, C, H, W)`` to ``(B, out_channels, H, W)``.

    ``t`` is the network's own time input ``(B,)`` (the training index for DDPM-trained models, a log-sigma
    for consistency models; fractional values are fine). ``y`` holds class labels ``(B,)`` for
    class-conditional networks; ``None`` runs them unconditionally (the label embedding is left out), which
    the published class-conditional networks were not trained for: pass a class when one fits.
    H and W must be multiples of ``2 ** (len(channel_mult) - 1)``.
    """

    def __init__(self, config: ADMConfig) -> None:
        super().__init__()
        self.config = cfg = config
        mc = cfg.num_channels
        emb_dim = 4 * mc
        heads_up = cfg.num_heads if cfg.num_heads_upsample == -1 else cfg.num_heads_upsample
        attn_ds = cfg.attention_downsample_rates

        def res(ch_in, ch_out=None, **kw):
            return ResBlock(ch_in, emb_dim, cfg.dropout, ch_out, cfg.use_scale_shift_norm, **kw)

        def attn(ch, heads):
            return AttentionBlock(ch, heads, cfg.num_head_channels, cfg.use_new_attention_order)

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if cfg.class_cond:
            self.label_emb = nn.Embedding(cfg.num_classes, emb_dim)
        ch = input_ch = int(cfg.channel_mult[0] * mc)
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skip_chans, ds = [ch], 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * mc))]
                ch = int(mult * mc)
                if ds in attn_ds:
                    layers.append(attn(ch, cfg.num_heads))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(cfg.channel_mult) - 1:
                down = res(ch, ch, down=True) if cfg.resblock_updown else Downsample(ch, cfg.conv_resample)
                self.input_blocks.append(EmbedSequential(down))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = EmbedSequential(res(ch), attn(ch, cfg.num_heads), res(ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), int(mc * mult))]
                ch = int(mc * mult)
                if ds in attn_ds:
                    layers.append(attn(ch, heads_up))
                if level and i == cfg.num_res_blocks:
                    layers.append(res(ch, ch, up=True) if cfg.resblock_updown else Upsample(ch, cfg.conv_resample))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(input_ch, cfg.out_channels, 3, padding=1))
        self.torso_dtype = torch.float32

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.config.channel_mult) - 1)

    def half_torso(self) -> "ADMUNet":
        """Store convolution weights of the encoder, middle and decoder in float16 (as ``use_fp16`` does)."""
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            for m in part.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                    m.half()
        self.torso_dtype = torch.float16
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.config.num_channels))
        if y is not None:
            if not self.config.class_cond:
                raise InvalidInputError("class labels were given to an unconditional ADM network; drop the class")
            emb = emb + self.label_emb(y)
        skips = []
        h = x.type(self.torso_dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.type(x.dtype))

"""``restore enhance IMG``: blind restoration of any corrupted photo with CODE (no operator needed).

The guidance image is ``problem.y`` with an Identity operator, so the generic task machinery (priors,
padding, progress, atomic output, ``--simulate`` PSNR) applies unchanged. ``--strength`` in (0, 1] is the
fraction of the DDIM levels CODE inverts to (its start level): small values keep the input's details,
large ones let the prior repaint more.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

from .errors import InvalidInputError, ShapeError
from .tasks import Setup, Task, TaskOption

if TYPE_CHECKING:  # the task declaration imports no torch (restore enhance --help); the builders import it
    import torch

    from .io import Image

#: Noise std (in [0, 1] image units) that ``--simulate`` adds when ``--noise`` is not given.
SIMULATE_NOISE = 0.05
#: JPEG quality of the simulated compression (PIL scale 1-95); 0 turns it off.
SIMULATE_JPEG_QUALITY = 15


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-compress ``(B, C, H, W)`` images in [0, 1] (C = 1 or 3) with PIL at ``quality`` (8-bit)."""
    import numpy as np
    import torch
    from PIL import Image as PILImage

    out = []
    for img in x.detach().cpu().clamp(0, 1):
        arr = (img.permute(1, 2, 0).double().numpy() * 255).round().astype(np.uint8)
        pil = PILImage.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        back = np.asarray(PILImage.open(buf).convert("L" if arr.shape[2] == 1 else "RGB"), dtype=np.float64) / 255
        out.append(torch.from_numpy(back.reshape(arr.shape).transpose(2, 0, 1).copy()))
    return torch.stack(out).to(x.dtype)


def corrupt(x: torch.Tensor, noise: float, quality: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of std ``noise`` ([0, 1] units), clipping, then JPEG at ``quality`` (0 = no JPEG)."""
    from .operators import GaussianNoise

    y = GaussianNoise(noise).sample(x, generator).clamp(0, 1) if noise > 0 else x
    return jpeg(y, quality) if quality > 0 else y


def build(image: Image, noise: float, simulate: bool, generator: torch.Generator,
          strength: float | None = None, jpeg_quality: int = SIMULATE_JPEG_QUALITY) -> Setup:
    from .operators import GaussianNoise, Identity
    from .problem import Problem

    x = image.data
    if x.ndim != 4 or x.is_complex() or x.shape[1] not in (1, 3):
        raise ShapeError(f"enhance needs a gray or RGB image (B, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    if strength is not None and not 0 < strength <= 1:
        raise InvalidInputError(f"--strength must be in (0, 1], got {strength}")
    if not (jpeg_quality == 0 or 1 <= jpeg_quality <= 95):
        raise InvalidInputError(f"--jpeg-quality must be 0 (off) or in [1, 95], got {jpeg_quality}")
    options = {"code": {"strength": strength}} if strength is not None else {}
    reference = None
    if simulate:
        reference, x = x, corrupt(x, noise, jpeg_quality, generator)
    return Setup(Problem(x, Identity(), GaussianNoise(noise)), reference=reference, sampler_options=options)


TASK = Task(
    build=build,
    options=(
        TaskOption("strength", float, None,
                   "in (0, 1]: how deep CODE inverts, as a fraction of its levels (default 0.1 = start "
                   "level 5 of 50); raise it for heavy or global corruptions"),
        TaskOption("jpeg_quality", int, SIMULATE_JPEG_QUALITY,
                   "with --simulate: JPEG quality of the simulated corruption (0 = no JPEG)"),
    ),
    default_sampler="code",
    # The notebook defaults (577 NFE) lower PSNR with the small shipped priors; 50 levels inverted to 10 %
    # with 50 Langevin steps per correction level is ~10x faster and kept the PSNR gain on noisy inputs
    # (issue 6 note). The sampler's own config still holds the notebook defaults.
    sampler_defaults={"code": {"steps": 50, "strength": 0.1, "langevin_steps": 50}},
    default_noise=SIMULATE_NOISE,
)

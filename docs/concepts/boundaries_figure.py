"""Draw docs/concepts/boundaries.png: what each boundary model assumes past the edge, and what it restores.

    python docs/concepts/boundaries_figure.py

Top row: a photo crop extended by 20 pixels the way each model assumes (``valid`` shows the true scene,
dimmed: it is unknown and estimated). Bottom row: the same crop blurred as a camera blurs it (a Gaussian
blur of the larger scene, centre kept, noise 0.01), restored with ``restore deblur`` physics under each
model — the stationary Gaussian prior and DDS, 20 steps — with the whole-image PSNR. The photo is
matplotlib's grace_hopper, a held-out validation image.
"""
from __future__ import annotations

import os

import numpy as np
import torch

import restore
from restore.metrics import psnr
from restore_imaging.boundary import pad

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boundaries.png")
MODELS = ("valid", "reflect", "replicate", "zero", "circular")
SIDE, REACH, SIGMA, NOISE = 96, 20, 2.0, 0.01


def photo() -> torch.Tensor:
    from matplotlib import get_data_path
    from PIL import Image

    im = Image.open(os.path.join(get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB")
    im = im.resize((im.width // 2, im.height // 2), Image.LANCZOS)
    return torch.from_numpy(np.asarray(im) / 255.0).permute(2, 0, 1)[None]


def centre(x: torch.Tensor, side: int) -> torch.Tensor:
    top, left = (x.shape[-2] - side) // 2 - 20, (x.shape[-1] - side) // 2
    return x[..., top:top + side, left:left + side]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scene = centre(photo(), SIDE + 2 * REACH)
    crop = scene[..., REACH:-REACH, REACH:-REACH]
    physics = restore.operator("gaussian-blur", sigma=SIGMA, boundary="valid")
    big = centre(photo(), physics.input_shape((1, 3, SIDE, SIDE))[-1])
    y = physics(big) + NOISE * torch.randn(crop.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = y.clamp(0, 1).float()
    sharp = physics.view(big).float()

    fig, axes = plt.subplots(2, len(MODELS) + 1, figsize=(1.5 * (len(MODELS) + 1), 3.9), dpi=80)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    show = lambda ax, x: ax.imshow(x[0].permute(1, 2, 0).clamp(0, 1).numpy())  # noqa: E731
    show(axes[0, 0], crop)
    axes[0, 0].set_title("photo crop", fontsize=8)
    show(axes[1, 0], y)
    axes[1, 0].set_title(f"blurred {psnr(y, sharp):.1f} dB", fontsize=8)
    for i, model in enumerate(MODELS, start=1):
        if model == "valid":
            extended = scene.clone()
            extended[..., :REACH, :] *= 0.45
            extended[..., -REACH:, :] *= 0.45
            extended[..., REACH:-REACH, :REACH] *= 0.45
            extended[..., REACH:-REACH, -REACH:] *= 0.45
        elif model == "circular":
            extended = torch.nn.functional.pad(crop, (REACH,) * 4, mode="circular")
        else:
            extended = pad(crop, (REACH,) * 4, model)
        show(axes[0, i], extended)
        axes[0, i].add_patch(plt.Rectangle((REACH - 0.5, REACH - 0.5), SIDE, SIDE, fill=False, ec="w", lw=0.8))
        axes[0, i].set_title(model + (" (unknown)" if model == "valid" else ""), fontsize=8)
        op = restore.operator("gaussian-blur", sigma=SIGMA, boundary=model)
        x = restore.solve(y, op, prior="stationary-gaussian", sampler="dds", noise_sigma=NOISE, steps=20, seed=0,
                          device="cpu", gamma_rule="snr")
        x = op.view(x).clamp(0, 1)
        show(axes[1, i], x)
        axes[1, i].set_title(f"{psnr(x, sharp):.1f} dB", fontsize=8)
    fig.suptitle("past the edge (top) and the deblurred photo (bottom), per boundary model", fontsize=9)
    fig.tight_layout(h_pad=1.2)
    fig.savefig(OUT)
    from PIL import Image

    Image.open(OUT).convert("RGB").quantize(96).save(OUT, optimize=True)  # a small file for the repository
    print(OUT)


if __name__ == "__main__":
    main()

"""Classical baselines a user would otherwise pick, run on exactly the same degraded inputs."""
from __future__ import annotations

import numpy as np
import torch


def _np(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) -> (H, W, C) float64."""
    return x[0].detach().cpu().double().permute(1, 2, 0).numpy()


def _torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.clip(a, 0, 1)).permute(2, 0, 1)[None].float()


def _per_channel(fn, y: np.ndarray) -> np.ndarray:
    return np.stack([fn(y[..., c]) for c in range(y.shape[2])], axis=2)


def _psf(op, shape) -> np.ndarray:
    """The operator's blur kernel as a centred PSF: its response to an impulse at the centre of its input
    (a ``valid`` operator's input is larger than ``shape``, so the response is found, not assumed centred)."""
    H, W = tuple(op.input_shape((1, 1) + tuple(shape)))[-2:]
    impulse = torch.zeros(1, 1, H, W, dtype=torch.float64)
    impulse[0, 0, H // 2, W // 2] = 1
    resp = op(impulse)[0, 0].numpy()
    ys, xs = np.nonzero(np.abs(resp) > 1e-6 * np.abs(resp).max())
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    r = max(cy - ys.min(), ys.max() - cy, cx - xs.min(), xs.max() - cx) + 1
    return resp[cy - r:cy + r + 1, cx - r:cx + r + 1]


def deblur_baselines(y: torch.Tensor, op, sigma: float) -> dict[str, torch.Tensor]:
    from skimage import restoration

    yn = _np(y)
    psf = _psf(op.to(torch.float64), yn.shape[:2])
    balance = max(sigma, 1e-3) ** 2 * 100
    # The FFT baselines assume a periodic image; a photo is not one, so (as a careful user would) the input is
    # extended by mirroring past its edges and the result cropped back, which keeps ringing out of the frame.
    m = 2 * psf.shape[0]
    yn = np.pad(yn, ((m, m), (m, m), (0, 0)), mode="symmetric")
    out = {
        "wiener": _per_channel(lambda c: restoration.wiener(c, psf, balance, clip=False), yn),
        "unsupervised-wiener": _per_channel(
            lambda c: restoration.unsupervised_wiener(c, psf, clip=False, rng=0)[0], yn),
        "richardson-lucy": _per_channel(
            lambda c: restoration.richardson_lucy(np.clip(c, 1e-6, None), psf, num_iter=30, clip=False), yn),
        "tv-chambolle": restoration.denoise_tv_chambolle(
            _per_channel(lambda c: restoration.wiener(c, psf, balance * 0.1, clip=False), yn),
            weight=max(sigma, 0.005) * 2, channel_axis=2),
    }
    return {k: _torch(v[m:-m, m:-m]) for k, v in out.items()}


def denoise_baselines(y: torch.Tensor, sigma: float) -> dict[str, torch.Tensor]:
    from skimage import restoration

    yn = _np(y)
    out = {"tv-chambolle": restoration.denoise_tv_chambolle(yn, weight=sigma * 1.2, channel_axis=2)}
    try:
        import bm3d
    except ImportError:
        bm3d = None
    if bm3d is not None:
        out["bm3d"] = bm3d.bm3d_rgb(yn, sigma) if yn.shape[2] == 3 else bm3d.bm3d(yn[..., 0], sigma)[..., None]
    return {k: _torch(v) for k, v in out.items()}


def sr_baselines(y: torch.Tensor, scale: int) -> dict[str, torch.Tensor]:
    from skimage.transform import resize

    yn = _np(y)
    H, W = yn.shape[0] * scale, yn.shape[1] * scale
    return {"bicubic": _torch(resize(yn, (H, W, yn.shape[2]), order=3, anti_aliasing=False))}


def inpaint_baselines(y: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    from skimage.restoration import inpaint_biharmonic

    yn = _np(y)
    missing = (mask[0, 0] if mask.ndim == 4 else mask).cpu().numpy() < 0.5
    return {"biharmonic": _torch(inpaint_biharmonic(yn, missing, channel_axis=2))}

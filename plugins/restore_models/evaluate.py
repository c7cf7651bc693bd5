"""One-step Tweedie denoising of a prior versus BM3D on the same noisy images."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from restore.errors import InvalidInputError
from restore.metrics import psnr


@dataclass
class Row:
    image: str
    sigma: float
    noisy_psnr: float
    prior_psnr: float
    bm3d_psnr: float | None
    prior_seconds: float


def tweedie_denoise(prior, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """Denoise ``(B, C, H, W)`` images in [0, 1] with noise std ``sigma`` (public units) in one network call.

    ``x + σn`` in model units is ``x_k / a_k`` at the level ``k`` where ``s_k / a_k = σ · model_scale``; a flow
    prior takes the time ``t`` with ``σ_t / α_t`` equal to that ratio.
    """
    from restore.priors.flow import FlowPrior

    rho = sigma * prior.model_scale
    if isinstance(prior, FlowPrior):
        interp = prior.interpolant
        t = interp.time_of_ratio(rho)
        x = interp.alpha(t) * prior.to_model(noisy)
        with torch.no_grad():
            x0 = interp.x0(prior.velocity(x, t), x, t)
        return prior.from_model(x0).clamp(0, 1)
    sched = prior.schedule
    ratio = (sched._abar[1:].reciprocal() - 1).sqrt()  # s_k / a_k for k = 0..T-1
    k = int((ratio - rho).abs().argmin())
    a = float(sched.a(k))
    with torch.no_grad():
        x0 = prior.x0(a * prior.to_model(noisy), k)
    return prior.from_model(x0).clamp(0, 1)


def centre_crop(im: np.ndarray, side: int) -> np.ndarray:
    H, W = im.shape[:2]
    s = min(side, H, W) // 8 * 8
    top, left = (H - s) // 2, (W - s) // 2
    return im[top:top + s, left:left + s]


def validation_crop(im: np.ndarray, channels: int, side: int) -> torch.Tensor:
    """``(1, C, s, s)`` float32 centre crop (``s`` = ``side`` or less, a multiple of 8) of an ``(H, W, C)``
    image, converted to ``channels`` (alpha dropped, luma for gray, gray repeated for colour)."""
    im = centre_crop(im[..., :3], side)
    if channels == 1 and im.shape[2] == 3:
        im = im @ np.array([[0.299], [0.587], [0.114]], np.float32)
    elif channels == 3 and im.shape[2] == 1:
        im = np.repeat(im, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(im, dtype=np.float32)).permute(2, 0, 1)[None]


def validation_set(name: str, channels: int, root: str, side: int = 256) -> list[tuple[str, torch.Tensor]]:
    """``(name, (1, C, H, W) in [0, 1])`` centre crops of a validation set, converted to ``channels``.

    ``name`` is a prepared collection's held-out split (``bsd400-val``, ``cbsd432-val``: see
    ``restore_models.prepare``), ``wheels-val`` (the natural validation images shipped in installed wheels) or
    ``dipy-val`` (the medical slices of ``MEDICAL_EXTRA_VALIDATION``, from the dipy wheel).
    """
    from .data import MEDICAL_EXTRA_VALIDATION, NATURAL_VALIDATION, load_medical, load_natural, \
        read_image_file, scan_folder

    if name == "wheels-val":
        images = [(key, load_natural(key)) for key in NATURAL_VALIDATION]
    elif name == "dipy-val":
        try:
            images = [(f"{key}#{i}", im) for key in MEDICAL_EXTRA_VALIDATION for i, im in enumerate(load_medical(key))]
        except FileNotFoundError as err:
            raise InvalidInputError(str(err)) from None
    else:
        folder = os.path.join(root, name.removesuffix("-val"), "val")
        if not os.path.isdir(folder):
            raise InvalidInputError(f"validation folder '{folder}' does not exist; prepare it with "
                                    f"`python -m restore_models.prepare {name.removesuffix('-val')}` or set RESTORE_DATA")
        images = [(os.path.basename(p), read_image_file(p)) for p in scan_folder(folder)]
    return [(key, validation_crop(im, channels, side)) for key, im in images]


def load_folder(folder: str, channels: int, max_side: int = 512) -> list[tuple[str, torch.Tensor]]:
    import restore

    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff")))
    if not files:
        raise InvalidInputError(f"no images (.png, .jpg, .tif) in '{folder}'")
    out = []
    for name in files:
        data = restore.read(os.path.join(folder, name)).data
        if data.shape[1] != channels:
            data = data.mean(1, keepdim=True) if channels == 1 else data.expand(-1, channels, -1, -1)
        H, W = data.shape[-2:]
        h, w = min(H, max_side) // 8 * 8, min(W, max_side) // 8 * 8
        top, left = (H - h) // 2, (W - w) // 2
        out.append((name, data[..., top:top + h, left:left + w].contiguous()))
    return out


def noisy_copy(clean: torch.Tensor, sigma: float, key: str) -> torch.Tensor:
    """``clean + sigma * n`` with ``n`` seeded by the image's key and sigma, so every prior and every baseline,
    in every process, sees the same noisy image."""
    import hashlib

    seed = int(hashlib.sha256(f"{key}:{sigma}".encode()).hexdigest()[:8], 16)
    return clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))


def keyed_noisy(name: str, clean: torch.Tensor, sigma: float) -> tuple[torch.Tensor, str]:
    """For an image named ``"SET|KEY"``: its :func:`noisy_copy` and its key in the BM3D cache,
    ``"SET|C|KEY|sigma·255"`` (the keys ``bench.priors`` writes)."""
    set_name, key = name.split("|", 1)
    return noisy_copy(clean, sigma, key), f"{set_name}|{clean.shape[1]}|{key}|{round(sigma * 255)}"


def evaluate(prior, images: list[tuple[str, torch.Tensor]], sigmas: list[float], seed: int = 0,
             use_bm3d: bool = True, bm3d_cache: dict[str, float] | None = None) -> list[Row]:
    """Tweedie PSNR (and BM3D's) per image and sigma.

    An image named ``"SET|KEY"`` gets the keyed noise of :func:`noisy_copy` and its BM3D result is looked up
    in (and added to) ``bm3d_cache`` under ``"SET|C|KEY|sigma·255"``, the keys ``bench.priors`` writes; other
    images get noise from a generator seeded with ``seed``.
    """
    try:
        import bm3d
    except ImportError:
        bm3d = None
    rows = []
    for name, clean in images:
        for sigma in sigmas:
            if "|" in name:
                noisy, cache_key = keyed_noisy(name, clean, sigma)
            else:
                g = torch.Generator().manual_seed(seed)
                noisy = clean + sigma * torch.randn(clean.shape, generator=g)
                cache_key = None
            start = time.perf_counter()
            den = tweedie_denoise(prior, noisy.to(prior.device), sigma).cpu()
            seconds = time.perf_counter() - start
            ref = bm3d_cache.get(cache_key) if bm3d_cache is not None and cache_key else None
            if ref is None and use_bm3d and bm3d is not None:
                arr = noisy[0].permute(1, 2, 0).double().numpy()
                out = bm3d.bm3d_rgb(arr, sigma) if arr.shape[2] == 3 else bm3d.bm3d(arr[..., 0], sigma)[..., None]
                ref = psnr(torch.from_numpy(np.clip(out, 0, 1)).permute(2, 0, 1)[None].float(), clean)
                if bm3d_cache is not None and cache_key:
                    bm3d_cache[cache_key] = ref
            rows.append(Row(name, sigma, psnr(noisy.clamp(0, 1), clean), psnr(den, clean), ref, seconds))
    return rows

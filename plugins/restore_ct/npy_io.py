"""Raw NumPy arrays (``.npy``) as images, volumes or sinograms, values kept as they are (no [0, 1] scaling).

Reading: 2D ``(H, W)`` -> ``(1, 1, H, W)``, 3D ``(D, H, W)`` -> ``(1, 1, D, H, W)``; 4D/5D are taken as
``(B, C, H, W)`` / ``(B, C, D, H, W)``. Writing squeezes the leading singleton batch/channel axes.
"""
from __future__ import annotations

import numpy as np
import torch

from restore.errors import InvalidInputError
from restore.io import Image


def read_npy(path: str) -> Image:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"cannot read '{path}' as a NumPy array ({exc})") from None
    if arr.dtype.kind not in "uif" or arr.ndim not in (2, 3, 4, 5):
        raise InvalidInputError(f"'{path}' must hold a real 2D-5D array, got {arr.ndim}D {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"'{path}' contains NaN or infinite values")
    t = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float64))
    if arr.ndim in (2, 3):
        t = t[None, None]
    return Image(t, {"format": "npy", "dtype": "float32"})


def write_npy(path: str, image: Image) -> None:
    data = image.data.detach().cpu()
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    with open(path, "wb") as f:
        np.save(f, data.numpy().astype(np.float32))


def read_factory():
    return read_npy


def write_factory():
    return write_npy

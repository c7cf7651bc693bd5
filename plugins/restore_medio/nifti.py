"""NIfTI-1/2 (``.nii``, ``.nii.gz``) via nibabel.

Reader: a 3D volume ``(X, Y, Z)`` becomes ``Image.data`` ``(1, 1, D=Z, H=Y, W=X)``, a 2D image (or a
volume with ``Z = 1``) ``(1, 1, H=Y, W=X)``; values are min–max normalised to [0, 1] in float64 (so round
trips are exact) with the original ``range`` in ``meta``, plus ``nifti_affine`` (4×4) and ``nifti_header``.
A 4D file (time series, more than one volume) is refused with a one-line error.

Writer: float32 data (``set_data_dtype(np.float32)``: reusing an int16 header would quantise), the original
range restored, the affine and header of ``meta`` when present (identity affine otherwise).
"""
from __future__ import annotations

import numpy as np
import torch

from restore.errors import InvalidInputError, ShapeError, require
from restore.io import Image


def _nib():
    return require("nibabel", "medical")


def read_nifti(path: str) -> Image:
    nib = _nib()
    try:
        img = nib.load(path)
        arr = np.asarray(img.get_fdata(dtype=np.float64))
    except Exception as exc:  # nibabel raises several unrelated types for bad files
        raise InvalidInputError(f"cannot read '{path}' as NIfTI ({type(exc).__name__}: {exc})") from None
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim > 3:
        raise ShapeError(f"'{path}' is a {arr.ndim}D NIfTI of shape {arr.shape}; restore reads 2D/3D volumes — "
                         f"extract one volume first (e.g. nibabel.funcs.four_to_three)")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"'{path}' contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    norm = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    data = torch.from_numpy(np.ascontiguousarray(norm.T))  # (X, Y[, Z]) -> ([Z,] Y, X)
    data = data[None, None]
    meta = {"range": (lo, hi), "nifti_affine": np.asarray(img.affine, dtype=np.float64),
            "nifti_header": img.header.copy(), "format": "nifti"}
    return Image(data, meta)


def write_nifti(path: str, image: Image) -> None:
    nib = _nib()
    x = image.data
    if x.is_complex():
        x = x.abs()
    if x.ndim not in (4, 5) or x.shape[0] != 1 or x.shape[1] != 1:
        raise ShapeError(f"NIfTI output takes one gray image (1, 1, H, W) or volume (1, 1, D, H, W), "
                         f"got {tuple(x.shape)}")
    lo, hi = image.meta.get("range", (0.0, 1.0))
    arr = x[0, 0].detach().cpu().double().numpy() * (hi - lo) + lo
    arr = np.ascontiguousarray(arr.T).astype(np.float32)  # ([D,] H, W) -> (W=X, H=Y[, D=Z])
    affine = image.meta.get("nifti_affine")
    header = image.meta.get("nifti_header")
    header = header.copy() if header is not None else None
    out = nib.Nifti1Image(arr, np.eye(4) if affine is None else affine, header)
    out.set_data_dtype(np.float32)
    out.header.set_slope_inter(1.0, 0.0)
    nib.save(out, path)


def read_factory():
    return read_nifti


def write_factory():
    return write_nifti

"""PNG / JPEG / TIFF, 8 and 16 bit, gray / RGB / RGBA (alpha kept aside and restored)."""
from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import InvalidInputError
from .image import Image


def _to_image(arr: np.ndarray, path: str, fmt: str) -> Image:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise InvalidInputError(f"'{path}' has an unsupported layout {arr.shape}; expected gray, RGB or RGBA")
    dtype = arr.dtype
    if dtype == bool:
        arr, scale = arr.astype(np.float32), 1.0
    elif dtype.kind in "ui":
        scale = float(np.iinfo(dtype).max)
    else:  # float TIFF: keep the original range so the writer can restore it
        scale = 1.0
    data = arr.astype(np.float64) / scale
    meta = {"dtype": str(dtype), "format": fmt}
    if dtype.kind == "f":
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        if not np.isfinite(data).all():
            raise InvalidInputError(f"'{path}' contains NaN or infinite values")
        if lo < 0 or hi > 1:
            meta["range"] = (lo, hi)
            data = (data - lo) / max(hi - lo, 1e-12)
    alpha = None
    if data.shape[2] in (2, 4):
        alpha = torch.from_numpy(data[..., -1].copy()).float()[None, None]
        data = data[..., :-1]
        meta["alpha"] = alpha
    tensor = torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1))).float()[None]
    return Image(tensor, meta)


def read_pillow(path: str) -> Image:
    from PIL import Image as PILImage, UnidentifiedImageError

    if path.lower().endswith(".png"):
        return _read_png(path)
    try:
        with PILImage.open(path) as im:
            im.load()
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode == "CMYK":
                im = im.convert("RGB")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"cannot read '{path}': not a readable image or truncated ({exc})") from None
    return _to_image(arr, path, os.path.splitext(path)[1].lower().lstrip("."))


def _read_png(path: str) -> Image:
    import png

    try:
        reader = png.Reader(filename=path)
        width, height, rows, info = reader.asDirect()
        arr = np.vstack([np.asarray(r) for r in rows])
    except (png.Error, OSError, ValueError, EOFError) as exc:
        raise InvalidInputError(f"cannot read '{path}': not a readable PNG or truncated ({exc})") from None
    planes = info["planes"]
    arr = arr.reshape(height, width, planes).astype(np.uint16 if info["bitdepth"] > 8 else np.uint8)
    if info["bitdepth"] not in (8, 16):  # 1/2/4-bit grayscale: asDirect keeps the small range
        arr = (arr.astype(np.float64) / (2 ** info["bitdepth"] - 1) * 255).round().astype(np.uint8)
    return _to_image(arr, path, "png")


def read_tiff(path: str) -> Image:
    import tifffile

    try:
        arr = tifffile.imread(path)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for broken files
        raise InvalidInputError(f"cannot read '{path}': not a readable TIFF or truncated ({exc})") from None
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)
    return _to_image(arr, path, "tiff")


def _to_array(image: Image) -> np.ndarray:
    data = image.data
    if data.ndim != 4 or data.shape[0] != 1:
        raise InvalidInputError(f"image writers take one image of shape (1, C, H, W), got {tuple(data.shape)}")
    arr = data[0].detach().cpu().double().clamp(0, 1).numpy().transpose(1, 2, 0)
    alpha = image.meta.get("alpha")
    if alpha is not None and tuple(alpha.shape[-2:]) == arr.shape[:2]:
        arr = np.concatenate([arr, alpha[0, 0].double().numpy()[..., None]], axis=2)
    return arr


def _quantise(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "uint16":
        return np.round(arr * 65535).astype(np.uint16)
    return np.round(arr * 255).astype(np.uint8)


def write_png(path: str, image: Image) -> None:
    import png

    arr = _quantise(_to_array(image), "uint16" if image.meta.get("dtype") == "uint16" else "uint8")
    H, W, C = arr.shape
    writer = png.Writer(W, H, greyscale=C in (1, 2), alpha=C in (2, 4), bitdepth=arr.dtype.itemsize * 8)
    with open(path, "wb") as f:
        writer.write(f, arr.reshape(H, W * C))


def write_jpeg(path: str, image: Image) -> None:
    from PIL import Image as PILImage

    arr = _quantise(_to_array(image), "uint8")[..., : image.channels]
    PILImage.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(path, quality=95)


def write_tiff(path: str, image: Image) -> None:
    import tifffile

    arr = _to_array(image)
    dtype = image.meta.get("dtype", "uint8")
    if dtype.startswith("float"):
        lo, hi = image.meta.get("range", (0.0, 1.0))
        out = (arr * (hi - lo) + lo).astype(dtype)
    else:
        out = _quantise(arr, dtype)
    tifffile.imwrite(path, out[..., 0] if out.shape[2] == 1 else out)


# Registry factories: ``factory()`` returns the read/write callable.
def read_pillow_factory():
    return read_pillow


def read_tiff_factory():
    return read_tiff


def write_png_factory():
    return write_png


def write_jpeg_factory():
    return write_jpeg


def write_tiff_factory():
    return write_tiff

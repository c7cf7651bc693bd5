"""Raster images: PNG (pypng, 8/16 bit), TIFF (tifffile, 8/16 bit and float) and every other format Pillow
reads (JPEG, BMP, WEBP, GIF, PPM/PGM, TGA, JPEG 2000, …); gray / RGB / RGBA (alpha kept aside and restored).

docs/reference/formats.md has the table of extensions; ``restore list readers`` shows the installed set.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import InvalidInputError
from ..pillow_formats import pillow_read_extensions, pillow_write_extensions  # noqa: F401 - re-exported
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


_PILLOW_ERRORS = (Exception,)  # Pillow's decoders raise many types on damaged input (struct.error, …)

_KEEP_MODES = {"1", "L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "F"}


def read_pillow(path: str) -> Image:
    from PIL import Image as PILImage
    from PIL import ImageOps

    PILImage.MAX_IMAGE_PIXELS = None  # restore.io.limits checks the declared size (overridable) instead
    if path.lower().endswith(".png"):
        return _read_png(path)
    try:
        with PILImage.open(path) as im:
            im.load()
            # A camera's orientation tag says how the photo is displayed: restore that view (as viewers do), so
            # the output, written without the tag, is not turned sideways, and masks and kernel angles drawn on
            # the displayed photo line up with it.
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I", "I;32", "I;32L", "I;32B"):  # 16-bit PGM/PNG-like data come as 32-bit ints
                arr = np.asarray(im, dtype=np.int64)
                arr = arr.clip(0, 65535).astype(np.uint16 if arr.max() > 255 else np.uint8)
            else:
                if im.mode not in _KEEP_MODES:  # P, PA, CMYK, YCbCr, LAB, HSV, premultiplied …
                    alpha = "A" in im.mode or "a" in im.mode or "transparency" in im.info
                    im = im.convert("RGBA" if alpha else "RGB")
                arr = np.asarray(im)
    except _PILLOW_ERRORS as exc:
        raise InvalidInputError(f"cannot read '{path}': not a readable image or truncated "
                                f"({type(exc).__name__}: {_short(exc)})") from None
    return _to_image(arr, path, os.path.splitext(path)[1].lower().lstrip("."))


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    prefix = f"{type(exc).__name__}: "
    text = text[len(prefix):] if text.startswith(prefix) else text  # pypng repeats its class name
    return text if len(text) <= 160 else text[:157] + "..."


def _read_png(path: str) -> Image:
    import png

    try:
        reader = png.Reader(filename=path)
        width, height, rows, info = reader.asDirect()
        arr = np.vstack([np.asarray(r) for r in rows])
        if arr.size != width * height * info["planes"]:
            raise ValueError(f"{arr.size} samples for {width}x{height}x{info['planes']}")
    except Exception as exc:  # noqa: BLE001 - pypng raises many types on damaged input
        raise InvalidInputError(f"cannot read '{path}': not a readable PNG or truncated "
                                f"({type(exc).__name__}: {_short(exc)})") from None
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
        raise InvalidInputError(f"cannot read '{path}': not a readable TIFF or truncated "
                                f"({type(exc).__name__}: {_short(exc)})") from None
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


def write_pillow(path: str, image: Image) -> None:
    """8-bit gray/RGB/RGBA in the format of the extension (BMP, WEBP lossless, GIF, PPM, …)."""
    from PIL import Image as PILImage

    arr = _quantise(_to_array(image), "uint8")
    pil = PILImage.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    ext = os.path.splitext(path)[1].lower()
    fmt = PILImage.registered_extensions()[ext]
    options = {"lossless": True} if fmt == "WEBP" else {}
    try:
        pil.save(path, format=fmt, **options)
    except (OSError, ValueError, KeyError):
        if pil.mode not in ("RGBA", "LA"):
            raise InvalidInputError(f"Pillow cannot write a {pil.mode} image as {fmt}; choose .png") from None
        pil.convert("RGB" if pil.mode == "RGBA" else "L").save(path, format=fmt, **options)  # alpha dropped


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


def write_pillow_factory():
    return write_pillow

"""Input size limits checked from file headers before any pixel is decoded.

A decompression bomb (a small PNG declaring 10,000 x 10,000 pixels) or a huge volume would otherwise be
decoded, converted to float and handed to a sampler for minutes at gigabytes of memory. The limit counts
samples per channel (H x W for an image, D x H x W or slices x H x W for a volume); raise it with
``--max-pixels N`` on the command line, ``RESTORE_MAX_PIXELS=N`` in the environment or :func:`max_pixels`.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from contextvars import ContextVar
from typing import Iterator

from ..errors import InvalidInputError

# 8000 x 8000 pixels or a 400^3 volume: far past what a diffusion prior restores in reasonable time on a CPU.
DEFAULT_MAX_PIXELS = 64_000_000
_override: ContextVar[int | None] = ContextVar("restore_max_pixels", default=None)


def current_limit() -> int:
    """The limit in force: :func:`max_pixels` override, else ``RESTORE_MAX_PIXELS``, else the default."""
    value = _override.get()
    if value is not None:
        return value
    env = os.environ.get("RESTORE_MAX_PIXELS")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise InvalidInputError(f"RESTORE_MAX_PIXELS must be a number, got '{env}'") from None
    return DEFAULT_MAX_PIXELS


@contextlib.contextmanager
def max_pixels(limit: int | None) -> Iterator[None]:
    """Within the block, allow inputs up to ``limit`` samples per channel (``None``: leave as is)."""
    if limit is not None and limit < 1:
        raise InvalidInputError(f"--max-pixels must be >= 1, got {limit}")
    token = _override.set(limit) if limit is not None else None
    try:
        yield
    finally:
        if token is not None:
            _override.reset(token)


def check_size(path: str, spatial: tuple[int, ...], what: str = "pixels") -> None:
    """Raise InvalidInputError when ``prod(spatial)`` exceeds the limit (or a dimension is not positive)."""
    dims = tuple(int(d) for d in spatial)
    if any(d <= 0 for d in dims):
        raise InvalidInputError(f"'{path}' declares an empty or negative size {'x'.join(map(str, dims))}; "
                                "the file is damaged")
    count, limit = math.prod(dims), current_limit()
    if count > limit:
        raise InvalidInputError(
            f"'{path}' is {'x'.join(map(str, dims))} = {count / 1e6:.1f} million {what}, over the limit of "
            f"{limit / 1e6:.1f} million; pass --max-pixels {count} (or set RESTORE_MAX_PIXELS) to allow it")


def header_size(path: str) -> tuple[int, ...] | None:
    """The spatial size a file declares, read from its header only; ``None`` when the format is not known
    here (its reader then checks after decoding) or the header cannot be parsed (the reader reports it)."""
    lower = path.lower()
    try:
        with warnings.catch_warnings():  # a damaged header warns here and is reported by the reader
            warnings.simplefilter("ignore")
            return _header_size(path, lower)
    except Exception:  # noqa: BLE001 - a damaged header is the reader's to report, with its own message
        return None


def _header_size(path: str, lower: str) -> tuple[int, ...] | None:
    # fastMRI k-space (slices, [coils,] H, W); a .npy / NIfTI volume's last three axes; TIFF without samples.
    if lower.endswith(".npy"):
        import numpy as np

        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, _ = read(f)
        return tuple(shape[-3:]) if len(shape) >= 3 else tuple(shape)
    if lower.endswith((".nii", ".nii.gz")):
        import nibabel

        return tuple(nibabel.load(path).header.get_data_shape()[:3])
    if lower.endswith(".h5"):
        import h5py

        with h5py.File(path, "r") as f:
            data = f.get("kspace")
            shape = getattr(data, "shape", None)
        return (shape[0], *shape[-2:]) if shape is not None and len(shape) >= 3 else shape
    if lower.endswith((".tif", ".tiff")):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            shape = tuple(tif.series[0].shape)
        if len(shape) == 3 and shape[-1] in (1, 3, 4):
            return shape[:2]
        if len(shape) == 3 and shape[0] in (1, 3, 4):
            return shape[1:]
        return shape[-3:]
    from PIL import Image as PILImage

    from .pillow_io import pillow_read_extensions

    if not lower.endswith(pillow_read_extensions()):
        return None
    PILImage.MAX_IMAGE_PIXELS = None  # this module's limit (overridable) replaces Pillow's fixed one
    with PILImage.open(path) as im:  # parses the header only; decoding is deferred to load()
        return (im.size[1], im.size[0])

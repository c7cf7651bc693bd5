"""Reading and writing through the reader/writer registry; outputs are written atomically."""
from __future__ import annotations

import os
import shutil
import tempfile

import torch

from ..errors import InvalidInputError, OutputExistsError
from .image import Image

__all__ = ["Image", "read", "write", "match_extension"]


def match_extension(kind: str, path: str):
    """The reader/writer component whose longest extension ends ``path``."""
    from ..plugins import registry

    lower = str(path).lower()
    best, best_len = None, -1
    for comp in registry().all(kind):
        for ext in comp.metadata.get("extensions", ()):
            if lower.endswith(ext) and len(ext) > best_len:
                best, best_len = comp, len(ext)
    if best is None:
        known = sorted({e for c in registry().all(kind) for e in c.metadata.get("extensions", ())})
        raise InvalidInputError(f"no {kind} for '{path}'; supported extensions: {', '.join(known)}")
    return best


def read(path: str | os.PathLike) -> Image:
    """Read an image or volume; the format is chosen by extension (``restore list readers``)."""
    path = os.fspath(path)
    reader = match_extension("reader", path)  # unknown extension is reported before a missing file
    if not os.path.exists(path):
        raise InvalidInputError(f"input file '{path}' does not exist")
    return reader.build()(path)


def write(path: str | os.PathLike, image: Image | torch.Tensor, *, overwrite: bool = True,
          meta: dict | None = None) -> None:
    """Write atomically: to a temporary file in the same folder, renamed when complete.

    A tensor is taken as ``(1, C, H, W)`` in [0, 1]; ``meta`` (e.g. from :func:`read`) restores the
    original dtype, range and alpha.
    """
    path = os.fspath(path)
    if isinstance(image, torch.Tensor):
        image = Image(image, dict(meta or {}))
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(f"output '{path}' exists; pass --overwrite or choose another -o path")
    writer = match_extension("writer", path).build()
    # A folder output (e.g. a DICOM series "scan/") is written as a temporary folder, renamed when complete.
    is_dir = path.endswith(("/", os.sep))
    target = path.rstrip("/" + os.sep) or path
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise InvalidInputError(f"output folder '{folder}' does not exist")
    name = os.path.basename(target)
    # Keep the real extension at the end so format-sniffing writers see it; hidden prefix marks partials.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".partial{_suffix(name)}", dir=folder)
    os.close(fd)
    try:
        writer(tmp + os.sep if is_dir else tmp, image)
        if os.path.isdir(tmp) and os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _suffix(name: str) -> str:
    lower = name.lower()
    for ext in (".nii.gz", ".tar.gz"):
        if lower.endswith(ext):
            return ext
    return os.path.splitext(name)[1]

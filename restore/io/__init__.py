"""Reading and writing through the reader/writer registry; outputs are written atomically.

Reading checks the declared size from the header before decoding (:mod:`restore.io.limits`) and refuses
NaN/Inf pixels. Writing goes to a hidden temporary file in the output folder, renamed over the target only
when complete (a full disk or a crash leaves no partial file), never through a symbolic link, with the
permissions the umask gives a new file.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
import warnings

import torch

from ..errors import InvalidInputError, OutputExistsError, RestoreError
from .image import Image
from .limits import check_size, header_size, max_pixels

__all__ = ["Image", "read", "write", "match_extension", "check_output", "max_pixels", "OutputError"]


class OutputError(RestoreError):
    """An output cannot be written (full disk, no permission, a link in the way); nothing was written."""


_COMMON = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".nii", ".nii.gz", ".dcm", ".h5", ".npy")


def _is_folder_extension(ext: str) -> bool:
    return ext.endswith(("/", os.sep))


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
        exts = {e for c in registry().all(kind) for e in c.metadata.get("extensions", ())}
        files = sorted(e for e in exts if not _is_folder_extension(e))
        shown = [e for e in _COMMON if e in files] + [e for e in files if e not in _COMMON]
        more = f" and {len(shown) - 12} more (restore list {kind}s)" if len(shown) > 12 else ""
        folders = "; DICOM series folders end with '/'" if any(map(_is_folder_extension, exts)) else ""
        raise InvalidInputError(f"no {kind} for '{path}'; supported extensions: {', '.join(shown[:12])}{more}"
                                f"{folders}")
    return best


def read(path: str | os.PathLike) -> Image:
    """Read an image or volume; the format is chosen by extension (``restore list readers``).

    Raises:
        InvalidInputError: unknown extension, missing file, a folder where a file is expected, a size over
            the pixel limit (from the header, before decoding), a damaged file, NaN/Inf values.
    """
    path = os.fspath(path)
    if os.path.isdir(path) and not path.endswith(("/", os.sep)):
        raise InvalidInputError(
            f"'{path}' is a folder; this command restores one file: pass a file in it, or 'restore batch TASK "
            f"{path}' for every image in it (a DICOM series folder is read when given as '{path}/')")
    reader = match_extension("reader", path)  # unknown extension is reported before a missing file
    if not os.path.exists(path):
        raise InvalidInputError(f"input file '{path}' does not exist")
    with quiet_decoders():
        declared = header_size(path) if os.path.isfile(path) else None
    if declared is not None:
        check_size(path, declared)
    try:
        with quiet_decoders():
            image = reader.build()(path)
    except RestoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure on a damaged file is the user's to fix
        if os.environ.get("RESTORE_DEBUG") == "1":
            raise
        text = " ".join(str(exc).split())[:160]
        raise InvalidInputError(f"cannot read '{path}': damaged or not the format its extension says "
                                f"({type(exc).__name__}: {text})") from None
    data = image.data
    # Samples per channel: (B, C, H, W) counts B x H x W (B > 1: slices), (B, C, D, H, W) counts B x D x H x W.
    depth = data.shape[0] * (data.shape[2] if data.ndim == 5 else 1) if data.ndim >= 4 else 1
    check_size(path, ((depth,) if depth > 1 else ()) + tuple(data.shape[-2:]), "pixels/voxels")
    check_finite(data, f"input '{path}'")
    return image


@contextlib.contextmanager
def quiet_decoders():
    """Silence decoders' warnings and log records about damaged data (tifffile, nibabel log them): what
    the user sees is the one-line outcome, an error or the image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous)


def check_finite(data: torch.Tensor, what: str) -> None:
    """Raise InvalidInputError naming ``what`` and how many values are NaN or infinite."""
    if data.is_floating_point() or data.is_complex():
        finite = torch.isfinite(data)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise InvalidInputError(f"{what} contains {bad} NaN or infinite value(s) of {data.numel()}; "
                                    "fix or mask them before restoring")


def check_output(path: str | os.PathLike, overwrite: bool) -> None:
    """Everything about an output path that can be checked before any compute.

    Raises:
        OutputExistsError: it exists and ``overwrite`` is false.
        InvalidInputError: no writer for its extension, its folder is missing or not a folder.
        OutputError: it is a symbolic link, or the folder is not writable.
    """
    path = os.fspath(path)
    target = path.rstrip("/" + os.sep) or path
    match_extension("writer", path)
    if os.path.islink(target):
        raise OutputError(f"output '{target}' is a symbolic link; restore does not write through links: "
                          "remove it or choose another -o path")
    if os.path.lexists(target) and not overwrite:
        raise OutputExistsError(f"output '{path}' exists; pass --overwrite or choose another -o path")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise InvalidInputError(f"output folder '{folder}' {what}; create it first or choose another -o path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder '{folder}' is not writable; choose another -o path")


def write(path: str | os.PathLike, image: Image | torch.Tensor, *, overwrite: bool = True,
          meta: dict | None = None) -> None:
    """Write atomically: to a temporary file in the same folder, renamed when complete.

    A tensor is taken as ``(1, C, H, W)`` in [0, 1]; ``meta`` (e.g. from :func:`read`) restores the
    original dtype, range and alpha. The file gets the permissions the umask gives a new file; a symbolic
    link at ``path`` is refused, never followed.

    Raises:
        OutputError: disk full, permission denied or another OS error (no partial file is left).
    """
    path = os.fspath(path)
    if isinstance(image, torch.Tensor):
        image = Image(image, dict(meta or {}))
    check_output(path, overwrite)
    if image.data.is_floating_point() and not bool(torch.isfinite(image.data).all()):
        raise OutputError(f"the result for '{path}' contains NaN or infinite values; nothing was written "
                          "(try another sampler, fewer steps or --device cpu)")
    writer = match_extension("writer", path).build()
    # A folder output (e.g. a DICOM series "scan/") is written as a temporary folder, renamed when complete.
    is_dir = path.endswith(("/", os.sep))
    target = path.rstrip("/" + os.sep) or path
    folder = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    # Keep the real extension at the end so format-sniffing writers see it; hidden prefix marks partials.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".partial{_suffix(name)}", dir=folder)
    os.close(fd)
    try:
        writer(tmp + os.sep if is_dir else tmp, image)
        _apply_umask(tmp)
        if os.path.isdir(tmp) and os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(tmp, target)  # replaces a name, never follows a link at target
    except BaseException as exc:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp)
        elif os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, RestoreError):
            reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                      errno.EFBIG: "the file is too large for this file system or limit",
                      errno.EACCES: "permission denied", errno.EROFS: "the file system is read-only"}.get(
                exc.errno, exc.strerror or type(exc).__name__)
            raise OutputError(f"cannot write '{target}': {reason}; nothing was written") from None
        raise


def _apply_umask(path: str) -> None:
    """mkstemp creates 0600 files: give the result the mode a plain ``open`` would (0666 & ~umask)."""
    mask = _umask()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for f in files:
                os.chmod(os.path.join(root, f), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


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

"""Helpers shared by the imaging operators: shape checks and reading kernel/mask images."""
from __future__ import annotations

import torch

from restore.errors import InvalidInputError, RestoreError, ShapeError


def check_image(x: torch.Tensor, what: str, channels: int | None = None) -> None:
    """Raise ShapeError unless ``x`` is a real ``(B, C, H, W)`` tensor (with ``channels`` channels if given)."""
    if x.ndim != 4:
        raise ShapeError(f"{what} expects images of shape (B, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ShapeError(f"{what} expects {channels} channels (B, {channels}, H, W), got {tuple(x.shape)}")
    if x.is_complex():
        raise InvalidInputError(f"{what} acts on real images, got a complex tensor of shape {tuple(x.shape)}")


def positive(value, name: str, fix: str) -> float:
    """``value`` as a float, or a one-line error naming it when it is not a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number > 0, got {value!r}; {fix}") from None
    if not (v > 0 and v < float("inf")):
        raise InvalidInputError(f"{name} must be > 0, got {value!r}; {fix}")
    return v


def read_gray(path: str, what: str, fix: str) -> torch.Tensor:
    """Read an image file as a float64 ``(H, W)`` map (mean over colour channels, alpha ignored).

    Args:
        path: image file (any extension with a registered reader).
        what: what the file is for (``kernel``, ``mask``), used in the error message.
        fix: the remedy appended to the error message.
    """
    from restore.io import read

    try:
        image = read(path)
    except RestoreError as exc:
        raise InvalidInputError(f"cannot read {what} file '{path}' ({exc}); {fix}") from None
    data = image.data
    if data.ndim != 4 or data.shape[0] != 1:
        raise InvalidInputError(f"{what} file '{path}' must be a single 2D image, got shape {tuple(data.shape)}")
    return data[0].to(torch.float64).mean(dim=0)

"""CLI spec strings for kernels and masks.

``--kernel gaussian:SIGMA[:SIZE] | motion:LENGTH[:ANGLE] | path/to/kernel.png``
``--mask path/to/mask.png | random:FRACTION | box:TOP,LEFT,HEIGHT,WIDTH``

This module and the names it declares (boundary models, resize methods) import no torch: the task
declarations of ``restore deblur --help`` read them; the operators are imported when a spec is parsed.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, get_args

from restore.errors import InvalidInputError

if TYPE_CHECKING:
    from .masks import Inpainting

KERNEL_FORMS = "gaussian:SIGMA[:SIZE], motion:LENGTH[:ANGLE] or a kernel image file"

#: Boundary models of the filter operators (:mod:`restore_imaging.boundary` explains each).
Boundary = Literal["valid", "reflect", "replicate", "zero", "circular"]
BOUNDARIES: tuple[str, ...] = get_args(Boundary)

#: Downsampling models of :class:`restore_imaging.resize.SuperResolution`.
RESIZE_METHODS = ("avgpool", "bicubic")


def check_boundary(value) -> str:
    """``value`` if it names a boundary model, else a one-line error listing them."""
    if value not in BOUNDARIES:
        raise InvalidInputError(f"unknown boundary {value!r}; use one of {', '.join(BOUNDARIES)} "
                                "(e.g. --boundary valid)")
    return value


def _numbers(spec: str, parts: list[str], names: tuple[str, ...], required: int, example: str,
             sep: str = ":") -> list[float]:
    if not required <= len(parts) <= len(names):
        raise InvalidInputError(f"bad spec '{spec}': expected {sep.join(names)} after the prefix; e.g. {example}")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise InvalidInputError(f"bad spec '{spec}': {', '.join(names)} must be numbers; e.g. {example}") from None


def parse_kernel(spec: str, boundary: str = "circular"):
    """Blur operator from a ``--kernel`` spec: ``gaussian:2.0``, ``gaussian:2.0:13``, ``motion:15:30``, a file,
    with the given ``boundary`` model (see :mod:`restore_imaging.boundary`).

    Raises:
        InvalidInputError: unknown form, bad numbers, or an unreadable kernel file.
    """
    from .blur import GaussianBlur, KernelBlur, MotionBlur

    spec = str(spec).strip()
    prefix, _, rest = spec.partition(":")
    if prefix == "gaussian":
        values = _numbers(spec, rest.split(":"), ("SIGMA", "SIZE"), 1, "gaussian:2.0")
        size = None
        if len(values) == 2:
            if not values[1].is_integer():
                raise InvalidInputError(f"bad spec '{spec}': SIZE must be an odd integer; e.g. gaussian:2.0:13")
            size = int(values[1])
        return GaussianBlur(values[0], size, boundary=boundary)
    if prefix == "motion":
        values = _numbers(spec, rest.split(":"), ("LENGTH", "ANGLE"), 1, "motion:15:30")
        return MotionBlur(*values, boundary=boundary)
    if not os.path.isfile(spec):
        raise InvalidInputError(f"--kernel '{spec}' is neither a spec nor an existing file; use {KERNEL_FORMS}")
    return KernelBlur(spec, boundary=boundary)


def parse_mask(spec: str, seed: int = 0) -> Inpainting:
    """Inpainting operator from a ``--mask`` spec: ``random:0.5`` (share of missing pixels),
    ``box:16,16,32,32`` (top, left, height, width of the missing box) or a mask image (white = observed).

    Args:
        spec: the spec string.
        seed: seed of the random mask (the same spec and image size give the same mask).
    """
    from .masks import MASK_FIX, Inpainting

    spec = str(spec).strip()
    prefix, _, rest = spec.partition(":")
    if prefix == "random":
        (fraction,) = _numbers(spec, rest.split(":"), ("FRACTION",), 1, "random:0.5")
        return Inpainting(fraction=fraction, seed=seed)
    if prefix == "box":
        values = _numbers(spec, rest.split(","), ("TOP", "LEFT", "HEIGHT", "WIDTH"), 4, "box:16,16,32,32",
                          sep=",")
        if not all(v.is_integer() for v in values):
            raise InvalidInputError(f"bad spec '{spec}': box values must be integers; e.g. box:16,16,32,32")
        return Inpainting(box=tuple(int(v) for v in values))
    if not os.path.isfile(spec):
        raise InvalidInputError(f"--mask '{spec}' is neither a spec nor an existing file; {MASK_FIX}")
    return Inpainting(mask=spec)

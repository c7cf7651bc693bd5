"""An up-front time and memory estimate for large inputs, and a refusal when memory will not fit.

The estimate is linear in the pixel count, with coefficients fitted by ``python -m bench.estimate`` for
the default natural prior on one CPU thread (bench/results/estimate.json); other priors, devices and
thread counts scale differently, so it is printed as an order of magnitude ("~").
"""
from __future__ import annotations

import math
import sys

from ..errors import RestoreError

# bench/results/estimate.json: peak MB = base + per-MP x megapixels; s/NFE = base + per-MP x megapixels.
FITS = {
    "dds": {"mb_base": 484.2, "mb_per_mp": 3051.1, "s_base": 0.05, "s_per_mp": 15.34},
    "dps": {"mb_base": 497.4, "mb_per_mp": 9486.7, "s_base": 0.236, "s_per_mp": 25.18},
}
GRADIENT_SAMPLERS = ("dps", "psld", "stsl", "red-diff")  # back-propagate through the network each step
LARGE_PIXELS = 512 * 512  # below this the run is short and no estimate is printed


class InsufficientMemoryError(RestoreError):
    """The estimated peak memory exceeds what the machine has available."""


def available_mb() -> float | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no refusal without a number)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def estimate(pixels: int, nfe: int, sampler: str) -> tuple[float, float]:
    """``(peak_mb, seconds)`` for ``pixels`` samples per channel and ``nfe`` network evaluations."""
    fit = FITS.get("dps" if sampler in GRADIENT_SAMPLERS else "dds", FITS["dds"])
    mp = pixels / 1e6
    return fit["mb_base"] + fit["mb_per_mp"] * mp, nfe * (fit["s_base"] + fit["s_per_mp"] * mp)


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def check_resources(input_path: str, sampler: str, nfe: int | None, quiet: bool, memory_check: bool = True) -> None:
    """Print the estimate for a large input (stderr) and refuse when its memory exceeds what is available."""
    from ..io.limits import header_size

    size = header_size(input_path)
    if not size or nfe is None:
        return
    pixels = math.prod(size)
    if pixels < LARGE_PIXELS:
        return
    mb, seconds = estimate(pixels, nfe, sampler)
    have = available_mb()
    if not quiet:
        room = f", {have / 1024:.1f} GB available" if have is not None else ""
        print(f"estimate: {'x'.join(map(str, size))} input, {nfe} network evaluations with {sampler}: "
              f"~{_human(seconds)} and ~{mb / 1024:.1f} GB on one CPU thread{room}", file=sys.stderr)
    if memory_check and have is not None and mb > have:
        raise InsufficientMemoryError(
            f"'{input_path}' ({'x'.join(map(str, size))}) needs ~{mb / 1024:.1f} GB, {have / 1024:.1f} GB is "
            "available: crop or downscale it, free memory, use --device cuda, or pass --no-memory-check to try")

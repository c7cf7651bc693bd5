"""Undersampling masks.

1D column masks follow fastMRI's ``subsample.py`` exactly (same numbers for the same seed):

* centre: ``N_low = round(N · center_fraction)`` contiguous columns from ``pad = (N - N_low + 1) // 2``;
* ``random``: every other column kept with probability ``(N / R - N_low) / (N - N_low)``;
* ``equispaced``: ``mask[offset::R] = 1`` with ``offset ~ randint(0, R)``, plus the centre (the real
  acceleration is then a little below ``R``, as in fastMRI).

2D masks (``poisson``, ``gaussian``) sample k-space points ``(H, W)`` with density falling off from a fully
sampled square calibration region of side ``round(center_fraction · min(H, W))``; the number of samples is
``round(H · W / R)`` including the calibration region.

Masks are drawn from ``numpy.random.RandomState(seed)`` (fastMRI's generator), so a seed gives the same
mask on every machine; ``restore mri`` derives the seed from the input file name unless ``--mask-seed``.
"""
from __future__ import annotations

import numpy as np
import torch

from restore.errors import InvalidInputError

KINDS = ("random", "equispaced", "poisson", "gaussian")


def _check(acceleration: float, center_fraction: float) -> None:
    if not acceleration >= 1:
        raise InvalidInputError(f"--acceleration must be >= 1, got {acceleration}")
    if not 0 <= center_fraction < 1:
        raise InvalidInputError(f"--center-fraction must be in [0, 1), got {center_fraction}")


def center_columns(num_cols: int, center_fraction: float) -> tuple[int, int]:
    """``(pad, N_low)``: the fully sampled centre block ``[pad, pad + N_low)`` (fastMRI rule)."""
    n_low = int(round(num_cols * center_fraction))
    return (num_cols - n_low + 1) // 2, n_low


def column_mask(kind: str, num_cols: int, acceleration: float = 4, center_fraction: float = 0.08,
                seed: int = 0) -> torch.Tensor:
    """fastMRI 1D mask over ``num_cols`` k-space columns -> ``(num_cols,)`` float 0/1.

    Args:
        kind: ``random`` or ``equispaced``.
        acceleration: nominal acceleration ``R`` (an integer for ``equispaced``).
        center_fraction: fraction of fully sampled centre columns (fastMRI pairs: 0.08 with 4×, 0.04 with 8×).
        seed: RandomState seed.
    """
    _check(acceleration, center_fraction)
    rng = np.random.RandomState(seed)
    pad, n_low = center_columns(num_cols, center_fraction)
    center = np.zeros(num_cols, dtype=np.float32)
    center[pad: pad + n_low] = 1
    if kind == "random":
        prob = (num_cols / acceleration - n_low) / max(num_cols - n_low, 1)
        accel = (rng.uniform(size=num_cols) < prob).astype(np.float32)
    elif kind == "equispaced":
        if float(acceleration) != int(acceleration):
            raise InvalidInputError(f"equispaced masks need an integer --acceleration, got {acceleration}")
        r = int(acceleration)
        accel = np.zeros(num_cols, dtype=np.float32)
        accel[rng.randint(0, high=r)::r] = 1
    else:
        raise InvalidInputError(f"unknown 1D mask '{kind}'; use random or equispaced")
    return torch.from_numpy(np.maximum(center, accel))


def _calibration(H: int, W: int, center_fraction: float) -> np.ndarray:
    side = int(round(center_fraction * min(H, W)))
    m = np.zeros((H, W), dtype=bool)
    if side > 0:
        y0, x0 = (H - side + 1) // 2, (W - side + 1) // 2
        m[y0:y0 + side, x0:x0 + side] = True
    return m


def _radius_grid(H: int, W: int) -> np.ndarray:
    """Normalised distance from the k-space centre (1 at the edge midpoints)."""
    ky = (np.arange(H) - H // 2) / (H / 2)
    kx = (np.arange(W) - W // 2) / (W / 2)
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def gaussian_mask(shape: tuple[int, int], acceleration: float = 4, center_fraction: float = 0.08,
                  seed: int = 0, width: float = 0.35) -> torch.Tensor:
    """2D Gaussian variable-density mask ``(H, W)``: points drawn without replacement with probability
    ``∝ exp(-r² / (2 width²))`` (``r`` normalised radius), plus the calibration square."""
    _check(acceleration, center_fraction)
    H, W = shape
    rng = np.random.RandomState(seed)
    calib = _calibration(H, W, center_fraction)
    n_total = int(round(H * W / acceleration))
    n_draw = max(n_total - int(calib.sum()), 0)
    free = np.flatnonzero(~calib.ravel())
    p = np.exp(-_radius_grid(H, W).ravel()[free] ** 2 / (2 * width**2))
    picked = rng.choice(free, size=min(n_draw, free.size), replace=False, p=p / p.sum())
    m = calib.ravel().copy()
    m[picked] = True
    return torch.from_numpy(m.reshape(H, W).astype(np.float32))


def _dart_throw(H: int, W: int, r0: float, order: np.ndarray, dist: np.ndarray, slope: float) -> np.ndarray:
    """Variable-radius dart throwing: a point is accepted when no accepted point lies within its radius
    ``r0 (1 + slope · r)`` (denser at the centre)."""
    radius = r0 * (1 + slope * dist)
    R = int(np.ceil(radius.max()))
    dy, dx = np.mgrid[-R:R + 1, -R:R + 1]
    offsets = np.sqrt(dy**2 + dx**2)
    grid = np.zeros((H + 2 * R, W + 2 * R), dtype=bool)
    for idx in order:
        y, x = divmod(int(idx), W)
        rad = radius[y, x]
        win = grid[y: y + 2 * R + 1, x: x + 2 * R + 1]
        if not (win & (offsets < rad)).any():
            grid[y + R, x + R] = True
    return grid[R:R + H, R:R + W]


def poisson_mask(shape: tuple[int, int], acceleration: float = 4, center_fraction: float = 0.08,
                 seed: int = 0, slope: float = 2.0, tries: int = 6) -> torch.Tensor:
    """2D variable-density Poisson-disc mask ``(H, W)`` with a calibration square.

    The minimum distance between samples grows linearly with the k-space radius (``1 + slope · r``);
    its scale is adjusted (Newton steps on ``count ∝ r0⁻²``) until the sample count is within 2 % of
    ``H · W / R``. Samples in the calibration square count towards that total.
    """
    _check(acceleration, center_fraction)
    H, W = shape
    rng = np.random.RandomState(seed)
    calib = _calibration(H, W, center_fraction)
    target = H * W / acceleration
    dist = _radius_grid(H, W)
    order = rng.permutation(H * W)
    order = order[~calib.ravel()[order]]
    r0 = max(np.sqrt(acceleration / (np.pi / 2 * (1 + slope) ** 2 / 2)), 0.5)
    best = None
    for _ in range(tries):
        m = _dart_throw(H, W, r0, order, dist, slope) | calib
        n = int(m.sum())
        if best is None or abs(n - target) < abs(int(best.sum()) - target):
            best = m
        if abs(n - target) <= 0.02 * target:
            break
        extra = max(target - calib.sum(), 1.0)
        r0 *= float(np.sqrt(max(n - calib.sum(), 1.0) / extra))
    return torch.from_numpy(best.astype(np.float32))


def make_mask(kind: str, shape: tuple[int, int], acceleration: float = 4, center_fraction: float = 0.08,
              seed: int = 0) -> torch.Tensor:
    """A mask for k-space of ``shape = (H, W)``: ``(1, W)`` for 1D kinds, ``(H, W)`` for 2D kinds."""
    H, W = shape
    if kind in ("random", "equispaced"):
        return column_mask(kind, W, acceleration, center_fraction, seed)[None, :]
    if kind == "poisson":
        return poisson_mask((H, W), acceleration, center_fraction, seed)
    if kind == "gaussian":
        return gaussian_mask((H, W), acceleration, center_fraction, seed)
    raise InvalidInputError(f"unknown mask '{kind}'; use one of {', '.join(KINDS)} or a .npy file")


def acceleration_of(mask: torch.Tensor, shape: tuple[int, int]) -> float:
    """Achieved acceleration ``H·W / samples`` of a mask broadcast to ``shape``."""
    full = torch.broadcast_to(torch.as_tensor(mask) != 0, shape)
    return float(shape[0] * shape[1]) / max(int(full.sum()), 1)

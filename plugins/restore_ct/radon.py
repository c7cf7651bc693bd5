"""Parallel-beam and fan-beam Radon transforms in torch with an exact (matched) adjoint.

Every ray is sampled at points ``p0 + t·d`` (``t`` in ``[-R, R]`` with step ``step`` pixels, ``R`` the half
diagonal of the image, ``p0`` the point of the ray closest to the image centre) and the image is read with
bilinear interpolation there; the line integral is the sum times ``step``. The sampling positions are the
geometry: they are precomputed once per (device, dtype) and cached. Projection is ``grid_sample`` with that
grid (a sparse interpolation matrix ``A``); back-projection is the transpose of the very same matrix
(``grid_sampler_2d_backward``, a scatter of the bilinear weights), so ``<A x, y> = <x, Aᵀ y>`` holds to
round-off. Both directions are autograd Functions whose derivative is the other one, so the operator is
differentiable (any order).

Units: pixel size 1, detector spacing ``det_spacing`` pixels (at the isocentre for fan beam), so a sinogram
holds line integrals in pixel units (the ``skimage.transform.radon`` convention).
Angles in degrees. Parallel: ray direction ``(-sin θ, cos θ)`` in (x = column, y = row) coordinates, detector
along ``(cos θ, sin θ)``. Fan: source at distance ``source_distance`` from the centre in direction
``(cos β, sin β)`` rotated by 90° (so β = 0 shoots along +y like the parallel θ = 0), a flat virtual detector
through the isocentre.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from restore.errors import InvalidInputError, ShapeError
from restore.operators import LinearOperator

# Largest sampled intermediate (elements) per chunk of views: bounds memory independently of the view count.
_CHUNK_ELEMENTS = 1 << 23


def make_angles(views: int | Sequence[float] | None = None, limited_angle: float | None = None,
                arc: float = 180.0) -> torch.Tensor:
    """Projection angles in degrees (float64).

    Args:
        views: a view count N (uniform over ``[0, arc)``, or over ``[0, limited_angle)``), or an explicit
            list of angles in degrees.
        limited_angle: angular range in degrees; alone it gives 1° steps ``0, 1, …, limited_angle - 1``
            (DDS/DiffusionMBIR: 120 views at 0..119°).
        arc: full range for a view count (180 parallel, 360 fan).
    """
    if limited_angle is not None:
        if not 0 < float(limited_angle) <= arc:
            raise InvalidInputError(f"limited_angle must be in (0, {arc:g}] degrees, got {limited_angle}; "
                                    f"pass e.g. --limited-angle 120")
    if views is not None and not isinstance(views, (int, float)):
        angles = torch.as_tensor(list(views), dtype=torch.float64).flatten()
        if angles.numel() == 0 or not torch.isfinite(angles).all():
            raise InvalidInputError("the angle list must be a non-empty list of finite angles in degrees")
        return angles
    if views is not None:
        if int(views) != views or views <= 0:
            raise InvalidInputError(f"views must be a positive integer, got {views}; pass e.g. --views 60")
        span = float(limited_angle) if limited_angle is not None else arc
        return torch.arange(int(views), dtype=torch.float64) * (span / int(views))
    if limited_angle is not None:
        return torch.arange(int(math.ceil(float(limited_angle))), dtype=torch.float64)
    raise InvalidInputError("give the views (a count or an angle list) or limited_angle; e.g. --views 60")


class _Apply(torch.autograd.Function):
    """``A x`` (``adjoint=False``) or ``Aᵀ y``; the derivative of each direction is the other one."""

    @staticmethod
    def forward(ctx, x, op, adjoint):
        ctx.op, ctx.adjoint = op, adjoint
        return op._backproject(x) if adjoint else op._project(x)

    @staticmethod
    def backward(ctx, g):
        return _Apply.apply(g, ctx.op, not ctx.adjoint), None, None


class Radon(LinearOperator):
    """Radon transform ``(B, C, H, W) -> (B, C, n_views, n_det)`` (parallel or fan beam).

    Args:
        size: ``H = W`` or ``(H, W)`` of the image.
        angles: projection angles in degrees (see :func:`make_angles`).
        n_det: detector count; default ``ceil(sqrt(H² + W²))`` (``ceil(H·√2)`` for square images).
        geometry: ``parallel`` or ``fan``.
        det_spacing: detector spacing in pixels (at the isocentre for fan beam).
        source_distance: fan beam: source-to-centre distance in pixels (default 2 × image diagonal).
        step: sampling step along a ray, in pixels.
    """

    pinv_iters = 50

    def __init__(self, size: int | Sequence[int], angles: torch.Tensor | Sequence[float], n_det: int | None = None,
                 geometry: str = "parallel", det_spacing: float = 1.0, source_distance: float | None = None,
                 step: float = 1.0) -> None:
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if h < 2 or w < 2:
            raise InvalidInputError(f"CT image size must be at least 2×2, got {size!r}")
        if geometry not in ("parallel", "fan"):
            raise InvalidInputError(f"geometry must be parallel or fan, got '{geometry}'")
        diag = math.hypot(h, w)
        self.height, self.width, self.geometry = h, w, geometry
        self.angles = torch.as_tensor(angles, dtype=torch.float64).flatten()
        if self.angles.numel() == 0:
            raise InvalidInputError("a CT geometry needs at least one view")
        self.n_det = int(n_det) if n_det is not None else int(math.ceil(diag - 1e-9))
        if self.n_det < 1:
            raise InvalidInputError(f"detector count must be positive, got {n_det}")
        if det_spacing <= 0 or step <= 0:
            raise InvalidInputError(f"det_spacing and step must be > 0, got {det_spacing}, {step}")
        self.det_spacing, self.step = float(det_spacing), float(step)
        self.source_distance = float(source_distance) if source_distance is not None else 2.0 * diag
        if geometry == "fan" and self.source_distance <= diag / 2:
            raise InvalidInputError(f"source_distance must exceed the half diagonal {diag / 2:.1f} px, got "
                                    f"{self.source_distance}")
        half = diag / 2
        self.n_t = int(math.ceil(2 * half / self.step)) + 1
        self._t = (torch.arange(self.n_t, dtype=torch.float64) - (self.n_t - 1) / 2) * self.step
        self._cache: dict[tuple, list[torch.Tensor]] = {}

    @property
    def n_views(self) -> int:
        return int(self.angles.numel())

    def __getstate__(self):  # the grid cache is rebuilt on demand (e.g. after pickling to a worker)
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    # -- geometry ------------------------------------------------------------------------------------
    def _rays(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Closest-to-centre points ``p0`` and unit directions ``d`` ``(V, n_det, 2)`` (x, y), and detector
        positions ``s`` ``(n_det,)``, all float64."""
        theta = torch.deg2rad(self.angles)[:, None]
        s = (torch.arange(self.n_det, dtype=torch.float64) - (self.n_det - 1) / 2) * self.det_spacing
        c, sn = torch.cos(theta), torch.sin(theta)
        if self.geometry == "parallel":
            p0 = torch.stack([s * c, s * sn], dim=-1)
            d = torch.stack([-sn.expand_as(p0[..., 0]), c.expand_as(p0[..., 0])], dim=-1)
            return p0, d, s
        src = self.source_distance * torch.stack([sn, -c], dim=-1)  # opposite to the central ray direction
        q = torch.stack([s * c, s * sn], dim=-1)                     # detector point on the isocentre line
        d = q - src
        d = d / d.norm(dim=-1, keepdim=True)
        p0 = src - (src * d).sum(-1, keepdim=True) * d
        return p0, d, s

    def _grids(self, device, dtype) -> list[torch.Tensor]:
        key = (str(device), dtype)
        if key not in self._cache:
            p0, d, _ = self._rays()
            pts = p0[:, None] + self._t[None, :, None, None] * d[:, None]   # (V, n_t, n_det, 2)
            # grid_sample (align_corners=False) wants x/(W/2), y/(H/2) for centred pixel coordinates.
            grid = torch.stack([pts[..., 0] * (2.0 / self.width), pts[..., 1] * (2.0 / self.height)], dim=-1)
            per_view = self.n_t * self.n_det
            chunk = max(1, _CHUNK_ELEMENTS // per_view)
            self._cache[key] = [g.reshape(1, -1, self.n_det, 2).to(device=device, dtype=dtype)
                                for g in grid.split(chunk, dim=0)]
        return self._cache[key]

    def _views_per_chunk(self, channels: int) -> int:
        # The grid is chunked for a single channel; more channels shrink the chunk to bound memory.
        base = max(1, _CHUNK_ELEMENTS // (self.n_t * self.n_det))
        return max(1, base // max(1, channels))

    # -- raw (no autograd) projection and back-projection ----------------------------------------------
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(1, b * c, h, w)
        out = []
        for grid in self._grids(x.device, x.dtype):
            for g in grid.split(self._views_per_chunk(b * c) * self.n_t, dim=1):
                v = g.shape[1] // self.n_t
                s = torch.nn.functional.grid_sample(flat, g, mode="bilinear", padding_mode="zeros",
                                                    align_corners=False)
                out.append(s.reshape(b * c, v, self.n_t, self.n_det).sum(2))
        return (torch.cat(out, dim=1) * self.step).reshape(b, c, self.n_views, self.n_det)

    def _backproject(self, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        b, c = y.shape[:2]
        x = torch.zeros(1, b * c, self.height, self.width, dtype=y.dtype, device=y.device)
        flat = (y * self.step).reshape(b * c, self.n_views, 1, self.n_det)
        start = 0
        for grid in self._grids(y.device, y.dtype):
            for g in grid.split(self._views_per_chunk(b * c) * self.n_t, dim=1):
                v = g.shape[1] // self.n_t
                gy = flat[:, start:start + v].expand(b * c, v, self.n_t, self.n_det)
                if weights is not None:
                    gy = gy * weights[None, start:start + v].to(y.dtype)
                gy = gy.reshape(1, b * c, v * self.n_t, self.n_det)
                gx, _ = torch.ops.aten.grid_sampler_2d_backward(gy, x, g.contiguous(), 0, 0, False, [True, False])
                x = x + gx
                start += v
        return x.reshape(b, c, self.height, self.width)

    # -- operator interface ----------------------------------------------------------------------------
    def _check_image(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[-2:]) != (self.height, self.width):
            raise ShapeError(f"CT operator expects images (B, C, {self.height}, {self.width}), got "
                             f"{tuple(x.shape)}")

    def _check_sinogram(self, y: torch.Tensor) -> None:
        if y.ndim != 4 or tuple(y.shape[-2:]) != (self.n_views, self.n_det):
            raise ShapeError(f"CT sinogram must be (B, C, {self.n_views} views, {self.n_det} detectors) for this "
                             f"geometry, got {tuple(y.shape)}; check --views/--limited-angle/--detectors")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, n_views, n_det)``."""
        self._check_image(x)
        return _Apply.apply(x, self, False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Matched back-projection ``(B, C, n_views, n_det) -> (B, C, H, W)``."""
        self._check_sinogram(y)
        return _Apply.apply(y, self, True)

    def input_shape(self, output_shape) -> tuple[int, ...]:
        s = tuple(output_shape)
        if len(s) != 4 or s[-2:] != (self.n_views, self.n_det):
            raise ShapeError(f"CT sinogram must be (B, C, {self.n_views} views, {self.n_det} detectors) for this "
                             f"geometry, got {s}; check --views/--limited-angle/--detectors")
        return s[:2] + (self.height, self.width)

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        from .fbp import fbp

        return fbp(self, y)

    def extra_repr(self) -> str:
        return (f"geometry={self.geometry}, size=({self.height}, {self.width}), views={self.n_views}, "
                f"n_det={self.n_det}")


def _angles_from(views, angles, limited_angle, arc):
    if angles is not None:
        return make_angles(list(angles))
    return make_angles(views, limited_angle, arc)


def make_parallel(size: int | Sequence[int], views: int | Sequence[float] | None = None,
                  limited_angle: float | None = None, detectors: int | None = None,
                  angles: Sequence[float] | None = None, det_spacing: float = 1.0, step: float = 1.0) -> Radon:
    """Factory of ``ct-parallel``: sparse view (``views=N`` over [0, 180)), limited angle
    (``limited_angle=120``: 0..119° in 1° steps) or an explicit ``angles`` list (degrees)."""
    return Radon(size, _angles_from(views, angles, limited_angle, 180.0), detectors, "parallel", det_spacing,
                 step=step)


def make_fan(size: int | Sequence[int], views: int | Sequence[float] | None = None,
             limited_angle: float | None = None, detectors: int | None = None,
             angles: Sequence[float] | None = None, det_spacing: float = 1.0,
             source_distance: float | None = None, step: float = 1.0) -> Radon:
    """Factory of ``ct-fan``: a view count covers [0, 360); ``limited_angle`` in degrees."""
    return Radon(size, _angles_from(views, angles, limited_angle, 360.0), detectors, "fan", det_spacing,
                 source_distance, step)

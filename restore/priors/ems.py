"""Empirical model statistics (EMS) of a VP prior, for DPM-Solver-v3 (Zheng et al., NeurIPS 2023).

Along the probability-flow trajectory, with ``λ = log(a/s)``, DPM-Solver-v3 integrates
``f = (s eps - l x) / a`` after removing the part of its λ-derivative that is linear in ``f``:
``f′ ≈ s_λ f + b_λ``. The statistics minimise the first-order discretisation error:

* ``l_λ = E[diag ∂(s eps)/∂x]`` — the linear part of the noise prediction (Hutchinson estimate with one
  Rademacher probe per state, one backward pass), clamped to [0, 1], its range for an exact denoiser;
* ``s_λ, b_λ`` — the least-squares fit of ``f′`` on ``f`` (``s = Cov(f′, f) / Var(f)``, ``b = E f′ - s E f``),
  with ``f′`` by central differences along each trajectory.

The states are the model's own trajectories: ``N(0, I)`` at the noisiest level, advanced level to level by
DPM-Solver++(2M) on the statistics grid (data-free, as the statistics describe the model, not a data set).
The official statistics are per pixel (``C × H × W``); here they are per channel (reduced over the spatial
axes), so one file serves every image size; for flat samples ``(B, d)`` they are per entry.

The file is a small safetensors file next to the prior (``ems.safetensors`` in its folder) holding the
statistics' levels and a fingerprint of the prior's weights and schedule; loading it for another prior is
an error, not a silent mismatch.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InvalidInputError
from .schedules import VPSchedule

FILENAME = "ems.safetensors"


@dataclass
class EMS:
    """Statistics on a grid of training levels.

    Attributes:
        levels: ``(M,)`` training levels, descending (noisiest first, λ ascending).
        l, s, b: ``(M, *stat_shape)`` float64; ``stat_shape`` is ``(C, 1, 1)`` for images, ``(d,)`` for flat samples.
        fingerprint: the prior's :meth:`~restore.priors.base.Prior.fingerprint` at computation time.
        states: trajectories the statistics were estimated on.
    """

    levels: torch.Tensor
    l: torch.Tensor
    s: torch.Tensor
    b: torch.Tensor
    fingerprint: str
    states: int

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a temporary file renamed into place)."""
        from safetensors.torch import save_file

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"levels": self.levels.long().contiguous(), "l": self.l.contiguous(), "s": self.s.contiguous(),
                   "b": self.b.contiguous()}, str(tmp),
                  metadata={"fingerprint": self.fingerprint, "states": str(self.states), "format": "restore-ems-1"})
        os.replace(tmp, path)
        return path


def load_ems(path: str | os.PathLike, fingerprint: str) -> EMS:
    """Read an EMS file and check it belongs to the prior with ``fingerprint``.

    Raises:
        InvalidInputError: unreadable file, or statistics of another prior or schedule (one line).
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in ("levels", "l", "s", "b")}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise InvalidInputError(f"cannot read model statistics '{path}': {str(exc).splitlines()[0]}; recompute "
                                f"them with `restore ems PRIOR`") from None
    if meta.get("format") != "restore-ems-1":
        raise InvalidInputError(f"'{path}' is not a restore model-statistics file; recompute it with `restore ems PRIOR`")
    if meta.get("fingerprint") != fingerprint:
        raise InvalidInputError(
            f"model statistics '{path}' belong to another prior or schedule (fingerprint {meta.get('fingerprint')}, "
            f"this prior {fingerprint}); recompute them with `restore ems PRIOR`")
    return EMS(tensors["levels"], tensors["l"].double(), tensors["s"].double(), tensors["b"].double(),
               meta["fingerprint"], int(meta.get("states", "0")))


def default_path(prior) -> Path | None:
    """``ems.safetensors`` in the prior's folder, or ``None`` for a prior without one."""
    folder = getattr(prior, "folder", None)
    return Path(folder) / FILENAME if folder else None


def stat_levels(schedule: VPSchedule, n: int) -> list[int]:
    """``n`` training levels uniform in λ from the noisiest to level 0 (merged where levels are coarser)."""
    from ..samplers.solver_grid import level_grid

    return level_grid(schedule, n, "logSNR")


def _reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Axes averaged over: the batch, and for images the spatial axes."""
    return (0,) + tuple(range(2, x.ndim))


def compute_ems(prior, shape: tuple[int, ...], *, levels: int = 100, generator: torch.Generator | None = None,
                batch: int | None = None, progress=None) -> EMS:
    """Estimate the EMS of a VP ``prior`` on trajectories of ``shape[0]`` states of shape ``shape[1:]``.

    Args:
        prior: a VP prior (``eps(x, k)``, ``schedule``).
        shape: ``(K, C, H, W)`` (or ``(K, d)``): number of trajectories and the state shape.
        levels: statistics grid size (λ-uniform training levels).
        generator: draws the initial noise and the Hutchinson probes.
        batch: trajectories per network call (default: all).
        progress: called with ``(level_index, total)``.
    """
    sched = prior.schedule
    grid = stat_levels(sched, levels)
    if len(grid) < 3:
        raise InvalidInputError(f"model statistics need at least 3 levels, got {len(grid)}")
    K = shape[0]
    batch = batch or K
    dtype = torch.float64 if any(b.dtype == torch.float64 for b in prior.buffers()) else torch.float32
    x = torch.randn(shape, generator=generator, dtype=dtype).to(prior.device)
    lam = [0.5 * (math.log(float(sched.abar(k))) - math.log1p(-float(sched.abar(k)))) for k in grid]
    dims = _reduce_dims(x)
    l_all, fs, x0_prev = [], [], None
    moments = []  # per level, once its neighbours' f are known
    for i, k in enumerate(grid):
        a, sg = float(sched.a(k)), float(sched.s(k))
        eps_parts, diag_parts = [], []
        for lo in range(0, K, batch):
            xb = x[lo:lo + batch].detach().requires_grad_(True)
            with torch.enable_grad():
                eps = prior.eps(xb, k)
                probe = (torch.randint(0, 2, xb.shape, generator=generator) * 2 - 1).to(xb)
                (jt_probe,) = torch.autograd.grad(eps, xb, grad_outputs=probe)
            eps_parts.append(eps.detach())
            diag_parts.append((probe * jt_probe).detach())
        eps = torch.cat(eps_parts)
        # For an MMSE denoiser s ∂eps/∂x = I - (a/s)² Cov[x0|x] and E Var[x0|x] <= (s/a)² (the error of x/a),
        # so l lies in [0, 1]. A trained network leaves that range near the clean end (up to 1.5 measured on
        # natural-rgb), and there v3's error jumped up and down with the step count.
        l_k = (sg * torch.cat(diag_parts).double().mean(dim=dims)).clamp(0.0, 1.0)
        l_b = l_k.reshape((1,) + tuple(l_k.shape) + (1,) * (x.ndim - 2)).to(dtype)
        f = ((sg * eps - l_b * x) / a).double()
        l_all.append(l_k)
        fs.append(f)
        if len(fs) > 3:
            fs[-4] = None  # only three consecutive f's are needed for a central difference
        if i >= 1:
            moments.append(_moments(fs, lam, i - 1, dims))
        # advance the trajectory by DPM-Solver++(2M) on the statistics grid
        x0 = (x - sg * eps) / a
        if i + 1 < len(grid):
            a_t, sg_t = float(sched.a(grid[i + 1])), float(sched.s(grid[i + 1]))
            h = lam[i + 1] - lam[i]
            d = x0 if x0_prev is None else x0 + 0.5 * (x0 - x0_prev) * h / (lam[i] - lam[i - 1])
            x = (sg_t / sg) * x - (a_t * math.expm1(-h)) * d
            x0_prev = x0
        if progress is not None:
            progress(i + 1, len(grid))
    moments.append(_moments(fs, lam, len(grid) - 1, dims))
    s_all, b_all = [], []
    for mf, mf1, vff, cov in moments:
        s_k = torch.where(vff > 1e-12 * (mf * mf + 1e-30), cov / vff.clamp_min(1e-300), torch.zeros_like(vff))
        s_all.append(s_k)
        b_all.append(mf1 - s_k * mf)
    stat_shape = tuple(l_all[0].shape) + (1,) * (x.ndim - 2)
    stack = lambda v: torch.stack(v).reshape((len(grid),) + stat_shape)  # noqa: E731
    return EMS(torch.tensor(grid), stack(l_all), stack(s_all), stack(b_all), prior.fingerprint(), K)


def _moments(fs, lam, i, dims):
    """Per-channel ``(E f, E f′, Var f, Cov(f′, f))`` at grid index ``i`` (``fs`` holds the last three f's)."""
    n = len(fs)
    lo, hi = max(i - 1, 0), min(i + 1, n - 1)
    f_lo, f_hi, f = fs[lo], fs[hi], fs[i]
    d1 = (f_hi - f_lo) / (lam[hi] - lam[lo])
    mf, mf1 = f.mean(dim=dims), d1.mean(dim=dims)
    shape = (1,) + tuple(mf.shape) + (1,) * (f.ndim - 2)
    fc, d1c = f - mf.reshape(shape), d1 - mf1.reshape(shape)
    return mf, mf1, (fc * fc).mean(dim=dims), (fc * d1c).mean(dim=dims)


def describe(ems: EMS) -> str:
    return json.dumps({"levels": int(ems.levels.numel()), "states": ems.states, "fingerprint": ems.fingerprint})

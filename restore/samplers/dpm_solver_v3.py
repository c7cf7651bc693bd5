"""DPM-Solver-v3 (Zheng, Lu, Chen, Zhu, NeurIPS 2023): the ODE solver with empirical model statistics.

With the statistics ``l, s, b`` of :mod:`restore.priors.ems` and their running integrals on the statistics
grid (``L = ∫l``, ``S = ∫s``, ``I = ∫e^{L+S}``, ``B = ∫e^{-S} b``, ``C = ∫e^{L+S} B``, trapezoid rule as the
official code), the solver integrates
``g = e^{-(S - S_s)} f - ∫ e^{-(S - S_s)} b`` with ``f = (s_λ eps - l x) / a`` — the parameterisation whose
first-order error the statistics minimise — by a multistep predictor (order up to 3, derivatives from
previous calls, or "pseudo" divided differences) and a corrector that re-uses the newest call (no extra
NFE). The solver runs on its own grid of training levels; the statistics are interpolated in λ to those
levels and integrated on a fine λ grid (:class:`Statistics`), where the official code snaps the solver's
steps to the statistics grid (``convert_to_indexes``). ``end="clean"`` finishes with the data prediction
of the last state (one first-order step, no extra call).

Without statistics (no file next to the prior and no ``statistics`` path) the sampler runs DPM-Solver++
with the same steps, order and spacing, and says so once.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import torch

from ..errors import InvalidInputError
from ..priors.ems import EMS, default_path, load_ems
from .base import Sampler
from .dpm_solver_pp import DPMSolverPP
from .solver_grid import CLEAN, End, SolverSpacing, grid, lam

_WARNED: set[str] = set()


@dataclass(frozen=True)
class DPMSolverV3Config:
    """Attributes:
        steps: network calls (NFE).
        order: predictor order (official 3).
        spacing: ``time-uniform`` (official default ``skip_type``), ``logSNR``, ``time-quadratic`` or an engine rule.
        use_corrector: the multistep corrector (official: on, except 9–10 steps for CIFAR-10).
        predictor_pseudo: pseudo-order predictor (official: on for ≤ 5 steps).
        corrector_pseudo: pseudo-order corrector (official: on for guided sampling).
        lower_order_final: lower the order of the last steps (official: on).
        end: ``clean`` or ``lowest``.
        statistics: path of the EMS file; ``None`` uses ``ems.safetensors`` in the prior's folder.
    """

    steps: int = 10
    order: int = 3
    spacing: SolverSpacing = "time-uniform"
    use_corrector: bool = True
    predictor_pseudo: bool = False
    corrector_pseudo: bool = False
    lower_order_final: bool = True
    end: End = "clean"
    statistics: str | None = None


def _cum_trapz_exp(a: torch.Tensor, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """``y_n = ∫_{x_0}^{x_n} w e^{a} dx`` by the trapezoid rule, stable for large ``a`` (official helper)."""
    a_max = a.amax(dim=0, keepdim=True)
    v = torch.exp(a - a_max) if w is None else w * torch.exp(a - a_max)
    steps = 0.5 * (x[1:] - x[:-1]) * (v[1:] + v[:-1])
    out = torch.cumsum(steps, 0) * torch.exp(a_max)
    return torch.cat([torch.zeros_like(out[:1]), out])


#: largest λ gap between the nodes the statistics' integrals are taken on (trapezoid error ~ gap² / 12)
MAX_DLAMBDA = 0.01


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(x)`` along the first axis (``xp`` ascending, ``x`` inside its range)."""
    j = torch.searchsorted(xp, x).clamp(1, len(xp) - 1)
    w = ((x - xp[j - 1]) / (xp[j] - xp[j - 1])).reshape((-1,) + (1,) * (fp.ndim - 1))
    return (1 - w) * fp[j - 1] + w * fp[j]


class Statistics:
    """EMS and their running integrals on a fine λ grid (index ``i`` = node, λ ascending).

    The nodes are every training level the statistics span plus points in between where two levels are
    more than :data:`MAX_DLAMBDA` apart in λ; ``l, s, b`` are interpolated linearly in λ between the EMS
    levels. The official code instead snaps the solver's steps to the statistics grid and integrates on it,
    which needs a statistics grid much finer than any solver grid (120–1200 levels); interpolating keeps
    the solver on its own grid and the integrals' error independent of how many levels the EMS have.
    """

    def __init__(self, ems: EMS, schedule) -> None:
        levels = [int(k) for k in ems.levels.tolist()]
        lam_e = torch.tensor([lam(schedule, k) for k in levels], dtype=torch.float64)
        self.top, self.bottom = levels[0], levels[-1]
        nodes, self._node = [], {}
        for k in range(self.top, self.bottom - 1, -1):
            lk = lam(schedule, k)
            if nodes:
                start, gap = nodes[-1], lk - nodes[-1]
                n_sub = max(math.ceil(gap / MAX_DLAMBDA) - 1, 0)
                nodes += [start + gap * (i + 1) / (n_sub + 1) for i in range(n_sub)]
            self._node[k] = len(nodes)
            nodes.append(lk)
        extra = (1,) * (ems.l.ndim - 1)
        lam_f = torch.tensor(nodes, dtype=torch.float64)
        self.lam = lam_f.reshape((-1,) + extra)
        self.l, self.s, self.b = (_interp(lam_f, lam_e, v) for v in (ems.l, ems.s, ems.b))
        zero = torch.zeros_like(self.l)
        self.L = _cum_trapz_exp(zero, self.lam, self.l)
        self.S = _cum_trapz_exp(zero, self.lam, self.s)
        self.I = _cum_trapz_exp(self.L + self.S, self.lam, None)
        self.B = _cum_trapz_exp(-self.S, self.lam, self.b)
        self.C = _cum_trapz_exp(self.L + self.S, self.lam, self.B)
        self._coeffs: dict = {}

    def index(self, k: int) -> int:
        """Node of training level ``k``.

        Raises:
            InvalidInputError: ``k`` outside the levels the statistics were computed on.
        """
        if k not in self._node:
            raise InvalidInputError(f"level {k} lies outside the model statistics' levels {self.bottom}..{self.top}; "
                                    f"recompute them with `restore ems PRIOR`")
        return self._node[k]

    def g(self, f: torch.Tensor, i_s: int, i: int) -> torch.Tensor:
        return torch.exp(self.S[i_s] - self.S[i]) * f - torch.exp(self.S[i_s]) * (self.B[i] - self.B[i_s])

    def high_order_coefficient(self, i_s: int, i_t: int, order: int) -> torch.Tensor:
        """``∫ e^{L+S - L_s - S_s} (λ - λ_s)^n / n! dλ`` over ``[λ_s, λ_t]``, ``n = order - 1``."""
        key = (i_s, i_t, order)
        if key not in self._coeffs:
            n = order - 1
            a = self.L[i_s:i_t + 1] + self.S[i_s:i_t + 1] - self.L[i_s] - self.S[i_s]
            x = self.lam[i_s:i_t + 1]
            w = (x - self.lam[i_s]) ** n / math.factorial(n)
            self._coeffs[key] = _cum_trapz_exp(a, x, w)[-1]
        return self._coeffs[key]


def _derivatives(n: int, lams: list[float], gs: list[torch.Tensor], pseudo: bool) -> list[torch.Tensor]:
    """``g⁽¹⁾ … g⁽ⁿ⁾`` at the first point from ``n + 1`` values (polynomial fit, or divided differences)."""
    if pseudo:
        D = [list(gs)]
        for i in range(1, n + 1):
            D.append([(D[i - 1][j] - D[i - 1][j + 1]) / (lams[j] - lams[i + j]) for j in range(n - i + 1)])
        return [D[i][0] * math.factorial(i) for i in range(1, n + 1)]
    R = torch.tensor([[(lams[j + 1] - lams[0]) ** i for i in range(1, n + 1)] for j in range(n)], dtype=torch.float64)
    rhs = torch.stack([(gs[j + 1] - gs[0]).reshape(-1) for j in range(n)])
    sol = torch.linalg.solve(R, rhs.double()).to(gs[0].dtype)
    return [sol[i - 1].reshape(gs[0].shape) * math.factorial(i) for i in range(1, n + 1)]


class DPMSolverV3(Sampler):
    """DPM-Solver-v3 multistep predictor–corrector with empirical model statistics (fallback: DPM-Solver++)."""

    Config = DPMSolverV3Config
    unconditional = True

    def validate(self) -> None:
        if self.config.order not in (1, 2, 3):
            raise InvalidInputError(f"order must be 1, 2 or 3, got {self.config.order}")

    def statistics(self, prior) -> EMS | None:
        """The prior's EMS: the configured file (must exist), else the one in its folder, else ``None``."""
        if self.config.statistics is not None:
            if not os.path.exists(self.config.statistics):
                raise InvalidInputError(f"model statistics file '{self.config.statistics}' does not exist; compute "
                                        f"it with `restore ems PRIOR --out {self.config.statistics}`")
            return load_ems(self.config.statistics, prior.fingerprint())
        path = default_path(prior)
        if path is None or not path.exists():
            return None
        return load_ems(path, prior.fingerprint())

    def sample(self, view, generator, callback):
        cfg = self.config
        ems = self.statistics(view.prior)
        if ems is None:
            key = view.prior.fingerprint()
            if key not in _WARNED:
                _WARNED.add(key)
                warnings.warn("dpm-solver-v3: this prior has no model statistics (compute them with `restore ems "
                              "PRIOR`); running DPM-Solver++ with the same steps instead", stacklevel=2)
            fallback = DPMSolverPP(steps=cfg.steps, order=cfg.order, spacing=cfg.spacing,
                                   lower_order_final=cfg.lower_order_final, end=cfg.end)
            x, extras = fallback.sample(view, generator, callback)
            return x, {**extras, "fallback": "dpm-solver++"}
        stats = Statistics(ems, view.schedule)
        return self.solve(view, view.initial_state(generator), stats, callback)

    def solve(self, view, x: torch.Tensor, stats: Statistics, callback) -> tuple[torch.Tensor, dict]:
        cfg, sched = self.config, view.schedule
        levels = grid(sched, cfg.steps, cfg.spacing, cfg.end)
        clean = levels[-1] == CLEAN
        noisy = levels[:-1] if clean else levels
        idx = [stats.index(k) for k in noisy]
        n = len(levels) - 1  # transitions
        xs, eps_list, ks, iis = [], [], [], []
        p_order = 0
        for step in range(1, n + 1):
            k_s, i_s = noisy[step - 1], idx[step - 1]
            eps, _ = view.predict(x, k_s)
            xs.append(x)
            eps_list.append(eps)
            ks.append(k_s)
            iis.append(i_s)
            if cfg.use_corrector:
                c_order = p_order + int(cfg.corrector_pseudo)
                if c_order > 1:
                    x_new = self._update(view, stats, xs, eps_list, ks, iis, k_s, c_order, cfg.corrector_pseudo,
                                         corrector=True)
                    a_t, sg_t = view.coefficients(k_s)
                    l_t = stats.l[i_s].to(x)
                    n_old = sg_t * eps_list[-1] - l_t * xs[-1]
                    xs[-1] = x_new
                    eps_list[-1] = (n_old + l_t * x_new) / sg_t
            p_order = min(step, cfg.order)
            if cfg.lower_order_final:
                p_order = min(p_order, n + 1 - step)
            xs, eps_list, ks, iis = xs[-4:], eps_list[-4:], ks[-4:], iis[-4:]
            if clean and step == n:
                a_s, sg_s = view.coefficients(k_s)
                x = (xs[-1] - sg_s * eps_list[-1]) / a_s
            else:
                x = self._update(view, stats, xs, eps_list, ks, iis, noisy[step], p_order, cfg.predictor_pseudo)
            callback(step, n, view.nfe)
        return x, {"levels": levels}

    def _update(self, view, stats: Statistics, xs, eps_list, ks, iis, k_t: int, order: int, pseudo: bool,
                corrector: bool = False) -> torch.Tensor:
        """Predictor (to level ``k_t`` from the last ``order`` points) or corrector (recompute the newest
        point, level ``k_t``, from the one before it and its own call)."""
        if corrector:
            sel = [-2, -1] + [-(j + 1) for j in range(2, order)]
        else:
            sel = [-(j + 1) for j in range(order)]
        x0n = [xs[j] for j in sel]
        e0n = [eps_list[j] for j in sel]
        k0n = [ks[j] for j in sel]
        i0n = [iis[j] for j in sel]
        i_s, x_s = i0n[0], x0n[0]
        a_s = view.coefficients(k0n[0])[0]
        a_t, i_t = view.coefficients(k_t)[0], stats.index(k_t)
        dtype = x_s.dtype
        gs = []
        for x_i, e_i, k_i, ii in zip(x0n, e0n, k0n, i0n):
            a_i, sg_i = view.coefficients(k_i)
            f_i = (sg_i * e_i - stats.l[ii].to(dtype) * x_i) / a_i
            gs.append(stats.g(f_i.double(), i_s, ii))
        L, S, I, B, C = stats.L, stats.S, stats.I, stats.B, stats.C
        x_t = (a_t / a_s * torch.exp(L[i_s] - L[i_t]) * x_s.double()
               - a_t * torch.exp(-L[i_t] - S[i_s]) * (I[i_t] - I[i_s]) * gs[0]
               - a_t * torch.exp(-L[i_t]) * (C[i_t] - C[i_s] - B[i_s] * (I[i_t] - I[i_s])))
        if order > 1:
            lams = [float(stats.lam.flatten()[ii]) for ii in i0n]
            for j, g_d in enumerate(_derivatives(order - 1, lams, gs, pseudo)):
                x_t = x_t - a_t * torch.exp(L[i_s] - L[i_t]) * stats.high_order_coefficient(i_s, i_t, j + 2) * g_d
        return x_t.to(dtype)

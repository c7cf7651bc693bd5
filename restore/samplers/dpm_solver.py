"""DPM-Solver (Lu et al., NeurIPS 2022): exponential integrators of the probability-flow ODE, SAMPLERS.md §10.1.

With ``λ = log(a/s)`` the VP probability-flow ODE has an exactly integrable linear part; DPM-Solver-k
Taylor-expands the noise prediction ``eps(x_λ, λ)`` in ``λ`` to order ``k - 1``. Order 1 is DDIM.
``singlestep`` spends ``order`` network calls per step at intermediate levels ("DPM-Solver-fast" mixes orders
to use the NFE budget exactly); ``multistep`` reuses the previous steps' calls (one call per step). Defaults
are the official code's ``DPM_Solver.sample`` recommendation for unconditional pixel models (order 3,
singlestep, logSNR spacing, ``solver_type="dpmsolver"``, lower-order final steps).

Grid points are the prior's training levels (:mod:`restore.samplers.solver_grid`); ``end="clean"`` appends a
first-order step into the clean level (the only finite update there: it returns x0̂ of the last state, as
DDIM's last step and diffusers' ``final_sigmas_type="zero"`` do, without an extra call), ``end="lowest"``
stops at level 0 as the official code does. :class:`DPMSolver` integrates the noise prediction;
:class:`~restore.samplers.dpm_solver_pp.DPMSolverPP` (DPM-Solver++) the data prediction with the same
machinery.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError
from .base import Sampler
from .solver_grid import CLEAN, CONTINUOUS_SPACINGS, End, SolverSpacing, grid, inner_levels, lam, level_grid
from .unic import unic_correct

Method = Literal["singlestep", "singlestep-fixed", "multistep"]
#: the official code's two high-order forms: ``dpmsolver`` (finite-difference of the calls) or ``taylor``
SolverType = Literal["dpmsolver", "taylor"]


@dataclass(frozen=True)
class DPMSolverConfig:
    """Attributes:
        steps: network calls (NFE) of the whole solve, as the official ``steps``.
        order: 1 (DDIM), 2 or 3.
        method: ``singlestep`` ("DPM-Solver-fast": orders mixed to spend exactly ``steps`` calls),
            ``singlestep-fixed`` (``steps // order`` steps all of ``order``, official ``singlestep_fixed``) or
            ``multistep`` (warm-up at lower order, then one call per step).
        spacing: ``logSNR`` (official recommendation for small pixel models), ``time-uniform`` (high
            resolution), ``time-quadratic``, ``karras`` (EDM's noise levels, ρ = 7), or an engine respacing
            rule.
        solver_type: ``dpmsolver`` or ``taylor`` high-order form.
        lower_order_final: lower the order of the last multistep steps when there are fewer than ten
            (official: stabilises very few steps).
        end: ``clean`` (the last step returns x0̂ of the state at level 0) or ``lowest`` (stop at level 0).
        corrector: ``none`` (the paper's solver) or ``unic`` (:mod:`restore.samplers.unic`): multistep only,
            one order more at the same NFE.
    """

    steps: int = 20
    order: int = 3
    method: Method = "singlestep"
    spacing: SolverSpacing = "logSNR"
    solver_type: SolverType = "dpmsolver"
    lower_order_final: bool = True
    end: End = "clean"
    corrector: Literal["none", "unic"] = "none"


def singlestep_orders(budget: int, order: int) -> list[int]:
    """Per-step orders spending exactly ``budget`` calls (official ``get_orders_and_timesteps_for_singlestep_solver``)."""
    if budget <= 0:
        return []
    if order == 3:
        K = budget // 3 + 1
        if budget % 3 == 0:
            return [3] * (K - 2) + [2, 1]
        if budget % 3 == 1:
            return [3] * (K - 1) + [1]
        return [3] * (K - 1) + [2]
    if order == 2:
        return [2] * (budget // 2) + [1] * (budget % 2)
    return [1] * budget


class DPMSolver(Sampler):
    """DPM-Solver-1/2/3 on the noise prediction, singlestep or multistep, for VP priors of any prediction type."""

    Config = DPMSolverConfig
    unconditional = True
    #: which model output the update formulas integrate: ``eps`` (DPM-Solver) or ``x0`` (DPM-Solver++)
    prediction: str = "eps"

    def validate(self) -> None:
        cfg = self.config
        if cfg.order not in (1, 2, 3):
            raise InvalidInputError(f"order must be 1, 2 or 3, got {cfg.order}")
        if cfg.corrector != "none" and cfg.method != "multistep":
            raise InvalidInputError(f"corrector={cfg.corrector} corrects multistep solvers: use "
                                    f"method=multistep, or corrector=none")

    # -- the model in the solver's parameterisation -------------------------------------------------
    def model(self, view, x: torch.Tensor, k: int) -> torch.Tensor:
        eps, x0 = view.predict(x, k)
        return x0 if self.prediction == "x0" else eps

    def coefficients(self, view, k: int) -> tuple[float, float, float]:
        """``(a_k, s_k, λ_k)``."""
        a, s = view.coefficients(k)
        return a, s, lam(view.schedule, k)

    # -- first order (DDIM) ----------------------------------------------------------------------------
    def first_update(self, view, x, s: int, t: int, m_s: torch.Tensor) -> torch.Tensor:
        a_s, s_s, l_s = self.coefficients(view, s)
        a_t, s_t, l_t = self.coefficients(view, t)
        if self.prediction == "x0":
            return (s_t / s_s) * x - (a_t * math.expm1(-(l_t - l_s))) * m_s
        # s_t (e^h - 1) written so that t = clean (s_t = 0, h = ∞) stays finite: it tends to a_t s_s / a_s
        sig_phi = s_t * math.expm1(l_t - l_s) if t != CLEAN else a_t * s_s / a_s
        return (a_t / a_s) * x - sig_phi * m_s

    # -- singlestep -----------------------------------------------------------------------------------
    def second_update(self, view, x, s: int, s1: int, t: int, m_s: torch.Tensor) -> torch.Tensor:
        """Singlestep DPM-Solver-2 through the intermediate level ``s1`` (one extra call)."""
        a_s, sg_s, l_s = self.coefficients(view, s)
        a_1, sg_1, l_1 = self.coefficients(view, s1)
        a_t, sg_t, l_t = self.coefficients(view, t)
        h = l_t - l_s
        r1 = (l_1 - l_s) / h
        taylor = self.config.solver_type == "taylor"
        if self.prediction == "x0":
            phi_11, phi_1 = math.expm1(-r1 * h), math.expm1(-h)
            x_1 = (sg_1 / sg_s) * x - (a_1 * phi_11) * m_s
            d = self.model(view, x_1, s1) - m_s
            base = (sg_t / sg_s) * x - (a_t * phi_1) * m_s
            if taylor:
                return base + (1.0 / r1) * (a_t * (phi_1 / h + 1.0)) * d
            return base - (0.5 / r1) * (a_t * phi_1) * d
        phi_11, phi_1 = math.expm1(r1 * h), math.expm1(h)
        x_1 = (a_1 / a_s) * x - (sg_1 * phi_11) * m_s
        d = self.model(view, x_1, s1) - m_s
        base = (a_t / a_s) * x - (sg_t * phi_1) * m_s
        if taylor:
            return base - (1.0 / r1) * (sg_t * (phi_1 / h - 1.0)) * d
        return base - (0.5 / r1) * (sg_t * phi_1) * d

    def third_update(self, view, x, s: int, s1: int, s2: int, t: int, m_s: torch.Tensor) -> torch.Tensor:
        """Singlestep DPM-Solver-3 through ``s1`` and ``s2`` (two extra calls)."""
        a_s, sg_s, l_s = self.coefficients(view, s)
        a_1, sg_1, l_1 = self.coefficients(view, s1)
        a_2, sg_2, l_2 = self.coefficients(view, s2)
        a_t, sg_t, l_t = self.coefficients(view, t)
        h = l_t - l_s
        r1, r2 = (l_1 - l_s) / h, (l_2 - l_s) / h
        taylor = self.config.solver_type == "taylor"
        if self.prediction == "x0":
            phi_11, phi_12, phi_1 = math.expm1(-r1 * h), math.expm1(-r2 * h), math.expm1(-h)
            phi_22 = math.expm1(-r2 * h) / (r2 * h) + 1.0
            phi_2 = phi_1 / h + 1.0
            phi_3 = phi_2 / h - 0.5
            x_1 = (sg_1 / sg_s) * x - (a_1 * phi_11) * m_s
            m_1 = self.model(view, x_1, s1)
            x_2 = (sg_2 / sg_s) * x - (a_2 * phi_12) * m_s + (r2 / r1) * (a_2 * phi_22) * (m_1 - m_s)
            m_2 = self.model(view, x_2, s2)
            base = (sg_t / sg_s) * x - (a_t * phi_1) * m_s
            if not taylor:
                return base + (1.0 / r2) * (a_t * phi_2) * (m_2 - m_s)
            D1, D2 = self._taylor_differences(m_s, m_1, m_2, r1, r2)
            return base + (a_t * phi_2) * D1 - (a_t * phi_3) * D2
        phi_11, phi_12, phi_1 = math.expm1(r1 * h), math.expm1(r2 * h), math.expm1(h)
        phi_22 = math.expm1(r2 * h) / (r2 * h) - 1.0
        phi_2 = phi_1 / h - 1.0
        phi_3 = phi_2 / h - 0.5
        x_1 = (a_1 / a_s) * x - (sg_1 * phi_11) * m_s
        m_1 = self.model(view, x_1, s1)
        x_2 = (a_2 / a_s) * x - (sg_2 * phi_12) * m_s - (r2 / r1) * (sg_2 * phi_22) * (m_1 - m_s)
        m_2 = self.model(view, x_2, s2)
        base = (a_t / a_s) * x - (sg_t * phi_1) * m_s
        if not taylor:
            return base - (1.0 / r2) * (sg_t * phi_2) * (m_2 - m_s)
        D1, D2 = self._taylor_differences(m_s, m_1, m_2, r1, r2)
        return base - (sg_t * phi_2) * D1 - (sg_t * phi_3) * D2

    @staticmethod
    def _taylor_differences(m_s, m_1, m_2, r1, r2):
        D1_0, D1_1 = (m_1 - m_s) / r1, (m_2 - m_s) / r2
        return (r2 * D1_0 - r1 * D1_1) / (r2 - r1), 2.0 * (D1_1 - D1_0) / (r2 - r1)

    def singlestep(self, view, x: torch.Tensor, callback) -> tuple[torch.Tensor, list[int]]:
        cfg, sched = self.config, view.schedule
        budget = cfg.steps - 1 if cfg.end == "clean" else cfg.steps
        if cfg.method == "singlestep-fixed":
            orders = [cfg.order] * (budget // cfg.order)
        else:
            orders = singlestep_orders(budget, cfg.order)
        K = len(orders)
        if cfg.spacing == "logSNR" or K == 0 or cfg.method == "singlestep-fixed":
            outer = level_grid(sched, K + 1, cfg.spacing)
        else:  # official: the outer points are the NFE grid's points at the cumulative orders
            full = level_grid(sched, budget + 1, cfg.spacing)
            picks = [0] + list(torch.cumsum(torch.tensor(orders), 0).tolist())
            outer = [full[min(i, len(full) - 1)] for i in picks]
            outer = [k for i, k in enumerate(outer) if i == 0 or k < outer[i - 1]]
        steps = list(zip(outer[:-1], outer[1:], orders))
        if cfg.end == "clean":
            steps.append((outer[-1], CLEAN, 1))
        visited = [outer[0]]
        for i, (s, t, order) in enumerate(steps):
            inner = inner_levels(sched, s, t, order, self._inner_spacing()) if t != CLEAN else []
            m_s = self.model(view, x, s)
            if len(inner) == 2:
                x = self.third_update(view, x, s, inner[0], inner[1], t, m_s)
            elif len(inner) == 1:
                x = self.second_update(view, x, s, inner[0], t, m_s)
            else:
                x = self.first_update(view, x, s, t, m_s)
            visited.append(t)
            callback(i + 1, len(steps), view.nfe)
        return x, visited

    def _inner_spacing(self) -> str:
        sp = self.config.spacing
        return sp if sp in CONTINUOUS_SPACINGS else "time-uniform"

    # -- multistep ------------------------------------------------------------------------------------
    def multistep_update(self, view, x, ms: list, ks: list[int], t: int, order: int, generator) -> torch.Tensor:
        """One multistep update to level ``t`` from the last ``order`` calls ``ms`` at levels ``ks``."""
        if order == 1:
            return self.first_update(view, x, ks[-1], t, ms[-1])
        a_0, sg_0, l_0 = self.coefficients(view, ks[-1])
        a_t, sg_t, l_t = self.coefficients(view, t)
        l_1 = lam(view.schedule, ks[-2])
        h, h_0 = l_t - l_0, l_0 - l_1
        r0 = h_0 / h
        D1_0 = (ms[-1] - ms[-2]) / r0
        pp = self.prediction == "x0"
        if order == 2:
            if pp:
                phi_1 = math.expm1(-h)
                base = (sg_t / sg_0) * x - (a_t * phi_1) * ms[-1]
                if self.config.solver_type == "taylor":
                    return base + (a_t * (phi_1 / h + 1.0)) * D1_0
                return base - 0.5 * (a_t * phi_1) * D1_0
            phi_1 = math.expm1(h)
            base = (a_t / a_0) * x - (sg_t * phi_1) * ms[-1]
            if self.config.solver_type == "taylor":
                return base - (sg_t * (phi_1 / h - 1.0)) * D1_0
            return base - 0.5 * (sg_t * phi_1) * D1_0
        l_2 = lam(view.schedule, ks[-3])
        r1 = (l_1 - l_2) / h
        D1_1 = (ms[-2] - ms[-3]) / r1
        D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1)
        D2 = (D1_0 - D1_1) / (r0 + r1)
        if pp:
            phi_1 = math.expm1(-h)
            phi_2 = phi_1 / h + 1.0
            phi_3 = phi_2 / h - 0.5
            return (sg_t / sg_0) * x - (a_t * phi_1) * ms[-1] + (a_t * phi_2) * D1 - (a_t * phi_3) * D2
        phi_1 = math.expm1(h)
        phi_2 = phi_1 / h - 1.0
        phi_3 = phi_2 / h - 0.5
        return (a_t / a_0) * x - (sg_t * phi_1) * ms[-1] - (sg_t * phi_2) * D1 - (sg_t * phi_3) * D2

    def multistep_orders(self, n: int, levels: list[int]) -> list[int]:
        """Order of each of the ``n`` steps: warm-up, lower-order final steps (official, < 10 steps) and a
        first-order step into the clean level."""
        cfg = self.config
        out = []
        for step in range(1, n + 1):
            order = min(cfg.order, step)
            if cfg.lower_order_final and n < 10:
                order = min(order, n + 1 - step)
            if levels[step] == CLEAN:
                order = 1
            out.append(order)
        return out

    def multistep(self, view, x: torch.Tensor, levels: list[int], generator, callback) -> torch.Tensor:
        n = len(levels) - 1
        orders = self.multistep_orders(n, levels)
        ms, ks = [], []
        x_prev = None
        for step in range(1, n + 1):
            s, t = levels[step - 1], levels[step]
            m = self.model(view, x, s)
            if x_prev is not None and self.config.corrector != "none":
                # the next predictor keeps m, called at the uncorrected state: the corrector costs no call
                x = unic_correct(view.schedule, x_prev, ms, ks, s, m, orders[step - 2], self.prediction)
            ms.append(m)
            ks.append(s)
            ms, ks = ms[-3:], ks[-3:]
            x_prev = x
            x = self.multistep_update(view, x, ms, ks, t, orders[step - 1], generator)
            callback(step, n, view.nfe)
        return x

    # -- the run ----------------------------------------------------------------------------------------
    def sample(self, view, generator, callback):
        cfg = self.config
        x = view.initial_state(generator)
        if cfg.method != "multistep":
            x, levels = self.singlestep(view, x, callback)
        else:
            levels = grid(view.schedule, cfg.steps, cfg.spacing, cfg.end)
            x = self.multistep(view, x, levels, generator, callback)
        return x, {"levels": levels}


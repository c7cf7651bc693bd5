"""UniC (Zhao et al., NeurIPS 2023, "UniPC"): a corrector that raises a multistep solver's order by one for free.

After a multistep predictor has moved the state from level ``s`` to level ``t`` with order ``p``, the network
is called at the predicted state anyway, to start the next step. UniC uses that call ``m_t`` once more: it
recomputes the step from ``s`` with the ``p`` divided differences of the calls at ``s``, at the ``p - 1``
levels before it and at ``t``, which makes the state at ``t`` accurate to order ``p + 1``. The next
predictor keeps ``m_t`` (called at the uncorrected state), so the corrector costs no network call.

In the solver's variable ``hh`` (``-h`` for the data prediction, ``h`` for the noise prediction), with the
φ-functions ``φ_1(z) = (e^z - 1)/z``, ``φ_{k+1}(z) = (φ_k(z) - 1/k!)/z`` and ``r_j`` the λ-offsets of the
calls divided by ``h`` (``r = 1`` for the call at ``t``), the weights ``ρ`` solve
``Σ_j ρ_j r_j^{i-1} = i! hh φ_{i+1}(hh)`` for ``i = 1 … p``. The paper scales both sides by ``1/B(h)``
(``bh1``: ``B = h``, ``bh2``: ``B = e^h - 1``); that choice cancels wherever the system is solved, and the
official code only feels it at order 1, where it fixes ``ρ = 1/2`` instead of solving. Here the system is
solved at every order, so there is no ``B`` to choose.
"""
from __future__ import annotations

import math

import torch

from .solver_grid import lam


def unic_weights(hh: float, rs: list[float]) -> list[float]:
    """The UniC weights of the divided differences at offsets ``rs`` (the last, the new call, is 1)."""
    phi = math.expm1(hh) / hh  # φ_1
    rhs = []
    factorial = 1.0
    for i in range(1, len(rs) + 1):
        phi = (phi - 1.0 / factorial) / hh  # φ_{i+1}
        rhs.append(factorial * hh * phi)
        factorial *= i + 1
    vander = torch.tensor([[r ** (i - 1) for r in rs] for i in range(1, len(rs) + 1)], dtype=torch.float64)
    return torch.linalg.solve(vander, torch.tensor(rhs, dtype=torch.float64)).tolist()


def unic_correct(schedule, x_s: torch.Tensor, ms: list[torch.Tensor], ks: list[int], t: int, m_t: torch.Tensor,
                 order: int, prediction: str) -> torch.Tensor:
    """The corrected state at level ``t``.

    Args:
        schedule: the VP schedule.
        x_s: ``(B, C, H, W)`` state at level ``ks[-1]``, from which the predictor stepped to ``t``.
        ms: the model outputs (``x0`` or ``eps``, as ``prediction``) at the levels ``ks``; the last is at ``s``.
        t: the level of the predicted state.
        m_t: the model output at the predicted state.
        order: the predictor's order ``p`` (``p - 1`` earlier calls are used).
        prediction: ``x0`` (DPM-Solver++) or ``eps`` (DPM-Solver).
    """
    s = ks[-1]
    l_s = lam(schedule, s)
    h = lam(schedule, t) - l_s
    m_s = ms[-1]
    rs = [(lam(schedule, ks[-(j + 1)]) - l_s) / h for j in range(1, order)] + [1.0]
    diffs = [(ms[-(j + 1)] - m_s) / rs[j - 1] for j in range(1, order)] + [m_t - m_s]
    a_s, sg_s = float(schedule.a(s)), float(schedule.s(s))
    a_t, sg_t = float(schedule.a(t)), float(schedule.s(t))
    if prediction == "x0":
        rho = unic_weights(-h, rs)
        base, scale = (sg_t / sg_s) * x_s - (a_t * math.expm1(-h)) * m_s, -a_t
    else:
        rho = unic_weights(h, rs)
        base, scale = (a_t / a_s) * x_s - (sg_t * math.expm1(h)) * m_s, -sg_t
    return base + scale * sum(w * d for w, d in zip(rho, diffs))

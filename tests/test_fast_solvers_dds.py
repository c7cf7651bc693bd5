"""DDS with a DPM-Solver++ step (float64): the first-order step from the data-consistent state is DDS's own
re-noising, and the noise fraction interpolates between the ODE and SDE-DPM-Solver++ forms."""
from __future__ import annotations

import math

import pytest
import torch

from restore.priors.schedules import VPSchedule
from restore.samplers.dpm_solver_pp import dpmpp_step
from restore.samplers.solver_grid import lam
from restore.samplers.steps import dds_renoise


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    sched = VPSchedule.linear(1000)
    x_tilde, x_prev, eps, z = (torch.randn(3, 5, generator=g, dtype=torch.float64) for _ in range(4))
    return sched, x_tilde, x_prev, eps, z


@pytest.mark.parametrize("eta", [0.0, 0.3, 0.85, 1.0])
def test_first_order_step_from_the_consistent_state_is_dds_renoising(case, eta):
    sched, x_tilde, _, eps, z = case
    k, j = 620, 540
    a_k, s_k = float(sched.a(k)), float(sched.s(k))
    out = dpmpp_step(sched, a_k * x_tilde + s_k * eps, [x_tilde], [k], j, noise=z, fraction=eta)
    ref = dds_renoise(sched, x_tilde, eps, k, j, eta, "code", lambda: z)
    assert float((out - ref).abs().max()) < 1e-12  # same affine map, two groupings


def test_noise_fraction_forms(case):
    sched, x_tilde, x_prev, eps, z = case
    k, j, k_prev = 620, 540, 700
    x = float(sched.a(k)) * x_tilde + float(sched.s(k)) * eps
    hist, ks = [x_prev, x_tilde], [k_prev, k]
    ode = dpmpp_step(sched, x, hist, ks, j)
    # η′ = 0 is the ODE step
    assert float((dpmpp_step(sched, x, hist, ks, j, noise=z, fraction=0.0) - ode).abs().max()) < 1e-12
    # the SDE form equals η′ = sqrt(1 - e^{-2h})
    h = lam(sched, j) - lam(sched, k)
    sde = dpmpp_step(sched, x, hist, ks, j, noise=z)
    same = dpmpp_step(sched, x, hist, ks, j, noise=z, fraction=math.sqrt(-math.expm1(-2 * h)))
    assert float((sde - same).abs().max()) < 1e-12
    # η′ = 1 forgets the state: a_j D + s_j z with the 2M data estimate D
    r = (lam(sched, k) - lam(sched, k_prev)) / h
    D = x_tilde + 0.5 * (x_tilde - x_prev) / r
    fresh = dpmpp_step(sched, x, hist, ks, j, noise=z, fraction=1.0)
    assert float((fresh - (float(sched.a(j)) * D + float(sched.s(j)) * z)).abs().max()) < 1e-12

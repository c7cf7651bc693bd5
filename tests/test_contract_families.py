"""The shipped contracts on every prior family and the exported moment oracle (issue 15, item 6)."""
from __future__ import annotations

import torch

from restore.samplers.steps import ddpm_coefficients
from restore.testing import PriorContract, SamplerContract, tweedie_affine


class TestMeanRevertingGaussianPrior(PriorContract):
    prior = "mean-reverting-gaussian"
    x_shape = (2, 1, 4, 4)
    dtype = torch.float64
    tol = 1e-10


class TestIRSDEContract(SamplerContract):
    sampler = "ir-sde"
    config = {"steps": 100}


class TestMRSContract(SamplerContract):
    sampler = "mrs"
    config = {"steps": 20}


class TestDDIMOracle(SamplerContract):
    """Deterministic DDIM: ``x_j = a_j x0̂ + s_j epŝ``, affine on the Gaussian fixture."""

    sampler = "ddim"
    config = {"steps": 50}

    def affine_steps(self, fixture, sampler):
        sched, steps = fixture.prior.schedule, []
        for k, j in sched.pairs(50, "uniform"):
            J, h, E, e = tweedie_affine(fixture.prior, k)
            a, s = float(sched.a(j)), float(sched.s(j))
            steps.append((a * J + s * E, a * h + s * e, 0 * J))
        return steps


class TestDPSOracle(SamplerContract):
    """DPS with the squared norm: ``x' = c1 x0̂ + c2 x + std z - 2ζ Jᵀ Aᵀ (A x0̂ - y)`` ."""

    sampler = "dps"
    config = {"steps": 20, "zeta": 1.0, "norm": "squared", "clip": False, "zeta_reference_steps": None}

    def affine_steps(self, fixture, sampler):
        prior, A, y, zeta = fixture.prior, fixture.matrix, fixture.y[0], 1.0
        weight = 2 * zeta  # ∇ ζ||y - A x0̂||² with x0̂ = J x + h
        eye, steps = torch.eye(fixture.d, dtype=torch.float64), []
        for k, j in prior.schedule.pairs(20, "guided"):
            J, h, _, _ = tweedie_affine(prior, k)
            c1, c2, std = ddpm_coefficients(prior.schedule, k, j)
            M = c1 * J + c2 * eye - weight * J.T @ A.T @ A @ J
            b = c1 * h + weight * J.T @ A.T @ (y - A @ h)
            steps.append((M, b, std * eye))
        return steps

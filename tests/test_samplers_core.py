"""Core samplers against analytic oracles (SAMPLERS.md §1.6, §2(f), §5.1(f), §9)."""
from __future__ import annotations

import math

import pytest
import torch

import restore
from restore.errors import IncompatibleError, InvalidInputError
from restore.operators import GaussianNoise, Identity
from restore.priors import GaussianPrior
from restore.samplers.ddim import DDIM
from restore.samplers.ddpm import DDPM
from restore.samplers.dds import DDS
from restore.samplers.dps import DPS
from restore.samplers.steps import ddpm_coefficients, dps_gradient
from restore.testing import affine_moments, check_moments, tweedie_affine


def test_ddim_converges_at_first_order_to_the_exact_pf_ode_map(gaussian_problem):
    prior = gaussian_problem[0]
    x_T = torch.randn(64, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = prior.pf_ode_map(x_T, prior.schedule.T - 1, -1)
    errors = []
    steps = [10, 20, 40, 80]
    for n in steps:
        out = DDIM(steps=n, spacing="trailing").run(prior, shape=x_T.shape, x_init=x_T.clone()).x
        errors.append(float((out - exact).norm() / exact.norm()))
    slope = (math.log(errors[-1]) - math.log(errors[0])) / (math.log(steps[-1]) - math.log(steps[0]))
    assert -1.25 < slope < -0.8, (errors, slope)


def test_dps_with_zero_guidance_equals_ddpm(gaussian_problem):
    prior, op, _, y = gaussian_problem
    problem = restore.Problem(y.expand(5, -1), op, GaussianNoise(0.05))
    ref = DDPM(steps=25, clip=False).run(prior, shape=(5, 4), generator=torch.Generator().manual_seed(3)).x
    out = DPS(steps=25, zeta=0.0, clip=False).run(prior, problem, generator=torch.Generator().manual_seed(3)).x
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)  # two samplers, one update: float64 round-off only


def test_dps_squared_variant_matches_the_affine_moment_oracle(gaussian_problem):
    prior, op, A, y = gaussian_problem
    zeta, n_steps, n = 0.05, 20, 6000
    sampler = DPS(steps=n_steps, zeta=zeta, norm="squared", clip=False, zeta_reference_steps=None)
    problem = restore.Problem(y.expand(n, -1), op, GaussianNoise(0.05))
    out = sampler.run(prior, problem, generator=torch.Generator().manual_seed(0)).x
    steps = []
    eye = torch.eye(4, dtype=torch.float64)
    for k, j in prior.schedule.pairs(n_steps, "guided"):
        J, h, _, _ = tweedie_affine(prior, k)
        c1, c2, std = ddpm_coefficients(prior.schedule, k, j)
        M = c1 * J + c2 * eye - 2 * zeta * J.T @ A.T @ A @ J
        b = c1 * h + 2 * zeta * J.T @ A.T @ (y[0] - A @ h)
        steps.append((M, b, std * eye))
    check_moments(out, *affine_moments(steps))


def test_dds_with_an_exact_solve_matches_the_affine_moment_oracle(gaussian_problem):
    prior, op, A, y = gaussian_problem
    n_steps, n, eta = 10, 6000, 0.85
    problem = restore.Problem(y.expand(n, -1), op, GaussianNoise(0.0))
    out = DDS(steps=n_steps, cg_iters=8, eta=eta).run(prior, problem, generator=torch.Generator().manual_seed(0)).x
    pinv = torch.linalg.pinv(A)
    eye = torch.eye(4, dtype=torch.float64)
    proj = eye - pinv @ A
    steps = []
    for k, j in prior.schedule.pairs(n_steps, "uniform"):
        J, h, E, e = tweedie_affine(prior, k)
        Mt, bt = proj @ J, proj @ h + pinv @ y[0]     # x̃ = x0̂ + A⁺(y - A x0̂)
        if j <= 0:
            steps.append((Mt, bt, 0 * eye))
        else:
            aj, sj = float(prior.schedule.a(j)), float(prior.schedule.s(j))
            c = sj * (1 - eta**2) ** 0.5
            steps.append((aj * Mt + c * E, aj * bt + c * e, sj * eta * eye))
    check_moments(out, *affine_moments(steps))


def test_dds_noiseless_output_is_consistent_with_the_measurement(gaussian_problem):
    prior, op, A, y = gaussian_problem
    problem = restore.Problem(y.expand(3, -1), op)
    out = DDS(steps=10, cg_iters=8).run(prior, problem, generator=torch.Generator().manual_seed(1)).x
    assert torch.allclose(out @ A.T, y.expand(3, -1), atol=1e-8)


def test_samplers_are_deterministic_for_a_seed_and_count_nfe(gaussian_problem):
    prior, op, _, y = gaussian_problem
    problem = restore.Problem(y.expand(2, -1), op, GaussianNoise(0.05))
    for sampler, given in ((DPS(steps=7), {"problem": problem}), (DDS(steps=7), {"problem": problem}),
                           (DDPM(steps=7), {"shape": (2, 4)})):
        r1 = sampler.run(prior, **given, generator=torch.Generator().manual_seed(5))
        r2 = sampler.run(prior, **given, generator=torch.Generator().manual_seed(5))
        assert torch.equal(r1.x, r2.x) and r1.nfe == 7
    assert DPS(steps=7).run(prior, problem, generator=torch.Generator().manual_seed(5)).vjp == 7


def test_unconditional_samplers_refuse_a_measurement(gaussian_problem):
    """They would ignore y and return a prior draw unrelated to it: a silent wrong answer on a task."""
    prior, op, _, y = gaussian_problem
    for name in ("ddim", "ddpm", "dpm-solver", "dpm-solver++", "dpm-solver-v3", "bdia", "ve-ode", "flow-euler",
                 "rf-solver"):
        with pytest.raises(restore.RestoreError, match="ignores the measurement") as err:
            restore.sampler(name).run(prior, restore.Problem(y, op))
        assert "\n" not in str(err.value)


def test_dps_gradient_matches_the_closed_form(gaussian_problem):
    prior, op, A, y = gaussian_problem
    problem = restore.Problem(y, op)
    k = 500
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64).requires_grad_(True)
    x0 = prior.x0(x, k)
    grad = dps_gradient(prior.bind(problem), x, x0, "code")
    J, h, _, _ = tweedie_affine(prior, k)
    r = y[0] - A @ (J @ x.detach()[0] + h)
    expected = -(J.T @ A.T @ r) / r.norm()
    assert torch.allclose(grad[0], expected, atol=1e-10)


def test_sampler_config_errors_are_clear():
    with pytest.raises(restore.RestoreError, match="no option"):
        restore.sampler("dds", stepz=3)
    with pytest.raises(restore.RestoreError, match="steps must be a positive integer"):
        restore.sampler("dps", steps=0)
    with pytest.raises(restore.RestoreError, match="unknown sampler 'ddz'. Did you mean 'dds'"):
        restore.sampler("ddz")


def test_dds_refuses_a_nonlinear_operator(gaussian_problem):
    prior = gaussian_problem[0]

    class Square(restore.Operator):
        def forward(self, x):
            return x**2

    problem = restore.Problem(torch.zeros(1, 4, dtype=torch.float64), Square())
    with pytest.raises(restore.RestoreError, match="needs a linear operator"):
        DDS(steps=3).run(prior, problem)


def test_solve_pads_to_the_network_multiple_and_crops_back():
    """restore.solve on a stationary prior: odd sizes work and the output keeps the input size."""
    from restore.operators import Identity

    y = torch.rand(1, 3, 21, 19)
    x = restore.solve(y, Identity(), prior="stationary-gaussian", sampler="dds", steps=3, noise_sigma=0.05,
                      device="cpu")
    assert x.shape == y.shape and float(x.min()) >= 0 and float(x.max()) <= 1


def test_tweedie_is_the_exact_posterior_mean_for_denoising():
    gen = torch.Generator().manual_seed(3)
    d = 5
    root = torch.randn(d, d, generator=gen, dtype=torch.float64) * 0.05
    cov = root @ root.T + 0.01 * torch.eye(d, dtype=torch.float64)
    mean = 0.5 + 0.05 * torch.randn(d, generator=gen, dtype=torch.float64)
    prior = GaussianPrior(mean, cov)
    k = 200  # σ chosen on the schedule's grid, so the matched level is exact
    sigma = float(prior.schedule.s(k) / prior.schedule.a(k))
    y = mean + 0.2 + sigma * torch.randn(2, d, generator=gen, dtype=torch.float64)
    problem = restore.Problem(y, Identity(), GaussianNoise(sigma))
    result = restore.sampler("tweedie").run(prior, problem)
    expected = mean + (y - mean) @ torch.linalg.solve(cov + sigma**2 * torch.eye(d, dtype=torch.float64), cov)
    assert result.extras["levels"] == [k] and result.nfe == 1
    torch.testing.assert_close(result.x, expected, rtol=0, atol=1e-10)


def test_tweedie_refuses_operators_other_than_identity(gaussian_problem):
    prior, op, _, y = gaussian_problem
    with pytest.raises(IncompatibleError, match="denoising only"):
        restore.sampler("tweedie").run(prior, restore.Problem(y, op, GaussianNoise(0.1)))
    with pytest.raises(InvalidInputError, match="no option steps"):  # one network call: no steps to set
        restore.sampler("tweedie", steps=20)

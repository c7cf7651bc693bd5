"""DiffPIR, pnp-hqs, DDRM, DDNM and ΠGDM against analytic oracles (float64, SAMPLERS.md §1.6, §10.2-10.5)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import restore
from restore.errors import IncompatibleError, InvalidInputError
from restore.operators import GaussianNoise, MatrixOperator
from restore.priors import GaussianPrior
from restore.priors.schedules import VPSchedule
from restore.samplers.ddim import DDIM
from restore.samplers.ddnm import DDNM
from restore.samplers.ddrm import DDRM
from restore.samplers.diffpir import DiffPIR, diffpir_levels
from restore.samplers.pigdm import PiGDM
from restore.samplers.pnp_hqs import PnPHQS

F64 = torch.float64


def _tweedie_affine(prior, k):
    """``x0̂ = J x + h`` and ``eps = E x + e`` of the Gaussian prior at level k."""
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    d = prior.cov.shape[0]
    cinv = torch.linalg.inv(a * a * prior.cov + s * s * torch.eye(d, dtype=F64))
    J = a * prior.cov @ cinv
    h = prior.mean - a * J @ prior.mean
    return J, h, s * cinv, -a * s * cinv @ prior.mean


def _affine_moments(mu, P, steps):
    for M, b, L in steps:
        mu, P = M @ mu + b, M @ P @ M.T + L @ L.T
    return mu, P


def _check_moments(samples, mu, P, n_se=4.5):
    n = samples.shape[0]
    se = (P.diagonal() / n).sqrt()
    assert bool(((samples.mean(0) - mu).abs() < n_se * se + 1e-10).all()), (samples.mean(0), mu, se)
    se_cov = ((P.diagonal()[:, None] * P.diagonal()[None, :] + P**2) / n).sqrt()
    assert bool(((torch.cov(samples.T) - P).abs() < n_se * se_cov + 1e-10).all()), (torch.cov(samples.T), P)


@pytest.fixture
def decoupled():
    """A diagonal Gaussian prior and a diagonal measurement with one unobserved coordinate: the null-space
    coordinate is independent of the observed ones, so its posterior is the prior's marginal."""
    prior = GaussianPrior(torch.tensor([0.1, -0.2, 0.3], dtype=F64), torch.diag(torch.tensor([0.25, 1.0, 0.04],
                                                                                                dtype=F64)))
    A = torch.diag(torch.tensor([1.0, 0.5, 0.0], dtype=F64))
    y = torch.tensor([[0.4, 0.3, 0.0]], dtype=F64)
    return prior, MatrixOperator(A), A, y


# -- DDRM and DDNM ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, options", [(DDRM, {"eta": 0.0}), (DDNM, {"eta": 0.0})])
def test_noiseless_output_satisfies_the_measurement(gaussian_problem, cls, options):
    prior, op, A, y = gaussian_problem
    problem = restore.Problem(y.expand(5, -1), op)
    out = cls(steps=15, **options).run(prior, problem, generator=torch.Generator().manual_seed(0)).x
    assert torch.allclose(out @ A.T, y.expand(5, -1), atol=1e-8, rtol=0)


@pytest.mark.parametrize("cls", [DDRM, DDNM])
def test_null_space_follows_the_prior_conditional(decoupled, cls):
    """η = 0: the unobserved coordinate runs exactly the DDIM map of its conditional (here its marginal) from
    the same start, and its samples have the conditional's moments as the steps grow."""
    prior, op, A, y = decoupled
    n, steps = 4000, 400
    problem = restore.Problem(y.expand(n, -1), op)
    x_T = torch.randn(n, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    out = cls(steps=steps, eta=0.0).run(prior, problem, x_init=x_T.clone(),
                                        generator=torch.Generator().manual_seed(2)).x
    ddim = DDIM(steps=steps, eta=0.0, spacing="uniform").run(prior, shape=x_T.shape, x_init=x_T.clone()).x
    assert torch.allclose(out[:, 2], ddim[:, 2], atol=1e-10, rtol=0)
    assert torch.allclose(out[:, :2], y[:, :2] / torch.tensor([1.0, 0.5], dtype=F64), atol=1e-10)
    mean, var = 0.3, 0.04  # the conditional of coordinate 2 given y
    assert abs(float(out[:, 2].mean()) - mean) < 4.5 * (var / n) ** 0.5
    assert abs(float(out[:, 2].var()) / var - 1) < 0.08  # first-order DDIM error at 400 steps plus MC error


def test_ddrm_moments_match_the_closed_form_of_its_discretised_update(gaussian_problem):
    """DDRM is affine in its Gaussian draws on a Gaussian prior: the exact mean and covariance of its output,
    propagated through every step, match the Monte-Carlo moments of the implementation (all three branches:
    null space, noisier than y, less noisy than y)."""
    prior, op, A, y = gaussian_problem
    sigma_y, n, n_steps, eta, eta_b = 0.2, 8000, 6, 0.6, 0.9
    sampler = DDRM(steps=n_steps, eta=eta, eta_b=eta_b)
    problem = restore.Problem(y.expand(n, -1), op, GaussianNoise(sigma_y))
    out = sampler.run(prior, problem, generator=torch.Generator().manual_seed(0)).x
    d = 4
    svd = op.svd((1, d))
    eye = torch.eye(d, dtype=F64)
    Vt = svd.Vt(eye).T                     # x̄ = Vt x
    s = svd.singulars(eye)[0]
    ut_y = (svd.Ut(y))[0]
    obs = s > 0
    ybar = torch.where(obs, ut_y / torch.where(obs, s, torch.ones_like(s)), torch.zeros_like(s))
    inv_s = torch.where(obs, sigma_y / torch.where(obs, s, torch.ones_like(s)), torch.full_like(s, float("inf")))
    pairs = prior.schedule.pairs(n_steps, "uniform")

    def sig(k):
        return 0.0 if k < 0 else float(prior.schedule.s(k) / prior.schedule.a(k))

    def a_of(k):
        return 1.0 if k < 0 else float(prior.schedule.a(k))

    sT = sig(pairs[0][0])
    start = obs & (sT > inv_s)
    spread = torch.where(start, (sT**2 - torch.where(start, inv_s, 0 * s) ** 2).clamp_min(0).sqrt(), sT + 0 * s)
    aT = a_of(pairs[0][0])
    mu = aT * Vt.T @ torch.where(start, ybar, 0 * s)
    P = (aT * Vt.T @ torch.diag(spread)) @ (aT * Vt.T @ torch.diag(spread)).T
    seen = set()
    steps = []
    for k, j in pairs:
        J, h, E, e = _tweedie_affine(prior, k)
        sn = sig(j)
        rest = (1 - eta**2) ** 0.5 * sn
        before = obs & (sn >= inv_s)
        after = obs & (sn < inv_s)
        null = ~obs
        seen.update(int(v) for v in torch.nonzero(before | after).flatten())
        # spectral update x̄′ = Mb x + bb + Lb z̄, with x̄0 = Vt (J x + h), Vt eps = Vt (E x + e)
        Dn, Db, Da = (torch.diag(m.to(F64)) for m in (null, before, after))
        M = Dn @ (Vt @ J + rest * Vt @ E) + Db @ ((1 - eta_b) * Vt @ J) + Da @ (Vt @ J - rest * torch.diag(
            torch.where(after, s / sigma_y, 0 * s)) @ Vt @ J)
        b = Dn @ (Vt @ h + rest * Vt @ e) + Db @ ((1 - eta_b) * Vt @ h + eta_b * ybar) + Da @ (
            Vt @ h + rest * torch.where(after, (ut_y - s * (Vt @ h)) / sigma_y, 0 * s))
        b_std = (sn**2 - eta_b**2 * torch.where(before, inv_s, 0 * s) ** 2).clamp_min(0).sqrt()
        L = torch.diag(torch.where(before, b_std, eta * sn + 0 * s))
        aj = a_of(j)
        steps.append((aj * Vt.T @ M, aj * Vt.T @ b, aj * Vt.T @ L))
    assert len(seen) == 2 and any(bool((obs & (sig(j) < inv_s)).any()) for _, j in pairs)
    _check_moments(out, *_affine_moments(mu, P, steps))


def test_ddnm_plus_with_noise_fits_observed_components_partially(gaussian_problem):
    prior, op, A, y = gaussian_problem
    problem = restore.Problem(y.expand(3, -1), op, GaussianNoise(0.3))
    out = DDNM(steps=20).run(prior, problem, generator=torch.Generator().manual_seed(0)).x
    assert float((out @ A.T - y).abs().max()) > 1e-4  # DDNM⁺ no longer forces A x = y on noisy data


def test_svd_samplers_refuse_operators_without_svd(gaussian_problem):
    prior = gaussian_problem[0]
    op = restore.operator("super-resolution", factor=2, method="bicubic")
    problem = restore.Problem(torch.zeros(1, 1, 4, 4, dtype=F64), op)
    for cls in (DDRM, DDNM):
        with pytest.raises(IncompatibleError) as info:
            cls(steps=2).run(GaussianPrior(torch.zeros(1, 1, 8, 8, dtype=F64), torch.eye(64, dtype=F64)), problem)
        assert "\n" not in str(info.value) and "SVD" in str(info.value) and "pigdm" in str(info.value)
    del prior


# -- pnp-hqs -----------------------------------------------------------------------------------------------------
def test_pnp_hqs_converges_to_the_map_estimate(gaussian_problem):
    """With λ = 1 the pair of steps is HQS on ‖Ax - y‖²/2 + σ² R(x); as the levels go to zero (a schedule whose
    first level is nearly clean) and the iterations grow, the result tends to the MAP = posterior mean."""
    prior0, op, A, y = gaussian_problem
    prior = GaussianPrior(prior0.mean, prior0.cov, schedule=VPSchedule.linear(1000, 1e-12, 0.02))
    sigma = 0.1
    problem = restore.Problem(y, op, GaussianNoise(sigma))
    map_mean, _ = prior.posterior(A, y[0], sigma)
    errors = []
    for iters in (10, 40, 160, 640):
        out = PnPHQS(steps=iters, lam=1.0, sigma_start=1.0, sigma_end=1e-6).run(prior, problem).x[0]
        errors.append(float((out - map_mean).norm() / map_mean.norm()))
    assert errors[0] > errors[1] > errors[2] > errors[3] and errors[3] < 3e-3, errors


def test_pnp_hqs_denoiser_is_the_exact_gaussian_mmse_at_its_level(gaussian_problem):
    prior, op, A, y = gaussian_problem
    sampler = PnPHQS()
    view = prior.bind(restore.Problem(y, op))
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    k, sigma = sampler.level(view, 0.3)
    d = 4
    expected = prior.mean + (prior.cov @ torch.linalg.inv(prior.cov + sigma**2 * torch.eye(d, dtype=F64)) @ (
        z - prior.mean).T).T
    assert torch.allclose(sampler.denoise(view, z, k), expected, atol=1e-10)
    assert abs(np.log(sigma / 0.3)) < 0.05  # the nearest level is close to the asked one


# -- DiffPIR -----------------------------------------------------------------------------------------------------
def test_diffpir_data_step_is_the_exact_proximal_solution(gaussian_problem):
    prior, op, A, y = gaussian_problem
    sampler = DiffPIR()
    view = prior.bind(restore.Problem(y, op, GaussianNoise(0.05)))
    x0 = torch.randn(1, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    k = 300
    rho = sampler.rho(view, k)
    expected = torch.linalg.solve(A.T @ A + rho * torch.eye(4, dtype=F64), A.T @ y[0] + rho * x0[0])
    assert torch.allclose(sampler.data_step(view, x0, k)[0], expected, atol=1e-8)


def _diffpir_oracle(prior, A, y, sigma_n, steps, lam, zeta, d=4):
    """Exact mean/cov of DiffPIR's output (every step is affine in x and the fresh noise)."""
    levels = diffpir_levels(prior.schedule.T, steps)
    eye = torch.eye(d, dtype=F64)
    mu, P = torch.zeros(d, dtype=F64), eye.clone()
    moves = []
    for i, k in enumerate(levels):
        J, h, _, _ = _tweedie_affine(prior, k)
        if i == len(levels) - 1:
            moves.append((J, h, 0 * eye))
            break
        a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
        rho = lam * max(sigma_n, 1e-3) ** 2 / (s / a) ** 2
        Q = torch.linalg.inv(A.T @ A + rho * eye)
        Mx, bx = rho * Q @ J, Q @ (A.T @ y[0] + rho * h)                 # x̂0 = Mx x + bx
        aj, sj = float(prior.schedule.a(levels[i + 1])), float(prior.schedule.s(levels[i + 1]))
        c = sj * (1 - zeta) ** 0.5 / s
        moves.append((aj * Mx + c * (eye - a * Mx), aj * bx - c * a * bx, sj * zeta**0.5 * eye))
    return _affine_moments(mu, P, moves)


def test_diffpir_matches_the_affine_moment_oracle(gaussian_problem):
    prior, op, A, y = gaussian_problem
    n, steps, lam, zeta, sigma_n = 6000, 12, 2.0, 0.4, 0.05
    problem = restore.Problem(y.expand(n, -1), op, GaussianNoise(sigma_n))
    out = DiffPIR(steps=steps, lam=lam, zeta=zeta, clip=False).run(
        prior, problem, generator=torch.Generator().manual_seed(0)).x
    _check_moments(out, *_diffpir_oracle(prior, A, y, sigma_n, steps, lam, zeta))


def test_diffpir_mean_converges_to_the_map_estimate(gaussian_problem):
    """The exact output mean of DiffPIR (affine oracle, validated against the implementation above) with λ = 1
    and full re-noising (ζ = 1) tends to the MAP = posterior mean as the steps grow (first order). With ζ = 0 it
    stalls about 2 % away: the deterministic part carries the early, noise-dominated estimates along."""
    prior, op, A, y = gaussian_problem
    sigma_n = 0.1
    map_mean, _ = prior.posterior(A, y[0], sigma_n)

    def error(n, zeta):
        return float((_diffpir_oracle(prior, A, y, sigma_n, n, 1.0, zeta)[0] - map_mean).norm() / map_mean.norm())

    errors = [error(n, 1.0) for n in (10, 100, 1000)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 3e-3, errors
    assert error(1000, 0.0) > 5 * errors[2]


# -- ΠGDM ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma_y, r2", [(0.1, "code"), (0.1, "paper"), (0.0, "code")])
def test_pigdm_guidance_equals_its_closed_form(gaussian_problem, sigma_y, r2):
    prior, op, A, y = gaussian_problem
    sampler = PiGDM(r2=r2, clip=False)
    view = prior.bind(restore.Problem(y, op, GaussianNoise(sigma_y)))
    k = 400
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    g, _, _ = sampler.guidance(view, x, k)
    J, h, _, _ = _tweedie_affine(prior, k)
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    rt2 = s * s / (a * a if r2 == "code" else 1.0)
    residual = y[0] - A @ (J @ x[0] + h)
    if sigma_y > 0:
        v = A.T @ torch.linalg.solve(rt2 * A @ A.T + sigma_y**2 * torch.eye(2, dtype=F64), residual)
    else:
        v = torch.linalg.pinv(A) @ residual / rt2
    assert torch.allclose(g[0], J.T @ v, atol=1e-8, rtol=1e-8)
    assert view.vjp == 1


def test_samplers_are_deterministic_and_count_nfe(gaussian_problem):
    prior, op, _, y = gaussian_problem
    problem = restore.Problem(y.expand(2, -1), op, GaussianNoise(0.05))
    for name in ("diffpir", "pnp-hqs", "ddrm", "ddnm", "pigdm"):
        sampler = restore.sampler(name, steps=7, **({"clip": False} if name in ("diffpir", "pigdm") else {}))
        r1 = sampler.run(prior, problem, generator=torch.Generator().manual_seed(5))
        r2 = sampler.run(prior, problem, generator=torch.Generator().manual_seed(5))
        assert torch.equal(r1.x, r2.x) and r1.nfe == 7 and r1.vjp == (7 if name == "pigdm" else 0), name


@pytest.mark.parametrize("name, options", [("ddrm", {"eta": 1.5}), ("ddnm", {"eta": -0.1}), ("diffpir", {"zeta": 2}),
                                           ("pnp-hqs", {"lam": 0}), ("pigdm", {"r2": "exact"})])
def test_bad_options_are_one_line_errors(name, options):
    with pytest.raises(InvalidInputError) as info:
        restore.sampler(name, **options)
    assert "\n" not in str(info.value)


# -- CLI ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def gray_png(tmp_path):
    x = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    path = tmp_path / "in.png"
    restore.write(path, x)
    return path


@pytest.mark.parametrize("sampler", ["diffpir", "pnp-hqs", "ddrm", "ddnm", "pigdm"])
def test_cli_deblur_runs_every_new_sampler(gray_png, sampler, capsys):
    from restore.cli import main

    out = gray_png.parent / f"out-{sampler}.png"
    # the SVD samplers need the circular blur's Fourier basis (the CLI's default boundary is valid)
    rc = main(["deblur", str(gray_png), "--sampler", sampler, "--steps", "3", "--prior", "stationary-gaussian",
               "-o", str(out), "--quiet", "--boundary", "circular"])
    assert rc == 0 and out.exists(), capsys.readouterr().err


def test_cli_svd_sampler_on_bicubic_super_resolution_is_one_line_exit_2(gray_png, capsys):
    from restore.cli import main

    out = gray_png.parent / "sr.png"
    capsys.readouterr()
    rc = main(["super-resolve", str(gray_png), "--scale", "2", "--sampler", "ddrm", "--steps", "2",
               "--prior", "stationary-gaussian", "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert err.count("\n") == 1 and "SVD" in err and "pigdm" in err, err


@pytest.mark.parametrize("steps", [1, 2, 3, 20])
def test_diffpir_levels_stay_on_the_schedule_and_start_at_the_noisiest(steps):
    # one step is the noisiest level alone (the official spacing's last entry would step past T - 1)
    levels = diffpir_levels(1000, steps)
    assert levels[0] == 999 and all(0 <= k <= 999 for k in levels) and levels == sorted(set(levels), reverse=True)


def test_the_eight_flips_and_rotations_are_distinct_and_inverted_exactly():
    from restore.samplers.steps import dihedral

    x = torch.randn(1, 2, 3, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert len({tuple(dihedral(x, i).flatten().tolist()) for i in range(8)}) == 8
    assert all(torch.equal(dihedral(dihedral(x, i), i, inverse=True), x) for i in range(8))


def test_cycling_the_flips_and_rotations_keeps_an_isotropic_prior_s_result():
    """The stationary prior's spectrum is isotropic, so its denoiser commutes with every flip and quarter turn
    (also on a non-square image, whose turns change its shape): DPIR's x8 cycling must then give the plain
    run's result, and a wrong inverse would hand back a turned or mirrored image."""
    prior = restore.prior("stationary-gaussian", channels=1)
    op = restore.operator("gaussian-blur", sigma=1.5)
    x = prior.sample((1, 1, 24, 40), generator=torch.Generator().manual_seed(1)).float().clamp(-1, 1) / 2 + 0.5
    y = op(x) + 0.01 * torch.randn(op(x).shape, generator=torch.Generator().manual_seed(2))
    problem = restore.Problem(y, op, GaussianNoise(0.01))
    plain = PnPHQS(steps=8).run(prior, problem).x
    cycled = PnPHQS(steps=8, cycle_transforms=True).run(prior, problem).x
    assert plain.shape == cycled.shape and torch.allclose(plain, cycled, atol=1e-5), (plain - cycled).abs().max()


def test_tweedie_x8_self_ensemble_commutes_with_every_flip_and_turn():
    """A random network's one-step estimate does not commute with a quarter turn; the x8 average over the eight
    flips/rotations does (exactly, up to rounding), and costs one network call per transform."""
    from restore.samplers.steps import dihedral
    from restore.testing import tiny_unet_prior

    prior = tiny_unet_prior()
    y = torch.rand(1, 1, 16, 24, generator=torch.Generator().manual_seed(0))

    def denoise(image, transforms):
        problem = restore.Problem(image, restore.operators.Identity(), GaussianNoise(0.1))
        return restore.sampler("tweedie", transforms=transforms).run(prior, problem)

    plain, x8 = denoise(y, 1), denoise(y, 8)
    assert plain.nfe == 1 and x8.nfe == 8
    for i in (1, 4, 6):
        turned = dihedral(y, i)
        assert (dihedral(denoise(turned, 1).x, i, inverse=True) - plain.x).abs().max() > 1e-3
        assert torch.allclose(dihedral(denoise(turned, 8).x, i, inverse=True), x8.x, atol=1e-5)
    with pytest.raises(InvalidInputError, match="transforms must be 1 to 8"):
        restore.sampler("tweedie", transforms=9)

"""Fast diffusion solvers against analytic oracles (float64): DPM-Solver / DPM-Solver++ convergence orders,
DPM-Solver-1 = DDIM, DPM-Solver-v3 with model statistics, HB/GHVB momentum, VE predictor-corrector."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from restore.errors import InvalidInputError
from restore.priors import GaussianPrior, GMMPrior
from restore.priors.base import DiffusionPrior
from restore.priors.ems import compute_ems, load_ems
from restore.priors.schedules import VPSchedule
from restore.priors.ve import VEGaussianPrior, VPAsVE
from restore.samplers.ddim import DDIM
from restore.samplers.dpm_solver import DPMSolver, singlestep_orders
from restore.samplers.dpm_solver_pp import DPMSolverPP
from restore.samplers.dpm_solver_v3 import DPMSolverV3
from restore.samplers.ve_ode import VEODE
from restore.samplers.ve_pc import VEPC


def lambda_uniform_schedule(T: int = 2881, lam_max: float = 5.0, lam_min: float = -5.0) -> VPSchedule:
    """Training levels uniform in λ: every logSNR grid of a divisor of T - 1 lands on levels exactly, so the
    measured order is the solver's, not the rounding's (a linear schedule's levels near t = 0 are coarser
    in λ than a fine solver grid)."""
    lam = torch.linspace(lam_max, lam_min, T, dtype=torch.float64)
    abar = torch.sigmoid(2 * lam)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    return VPSchedule(1 - abar / prev, name="lambda-uniform")


def spd(d: int, g: torch.Generator, scale: float = 0.3) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return (q * (scale * (0.2 + torch.rand(d, generator=g, dtype=torch.float64)))) @ q.T


@pytest.fixture(scope="module")
def fine_gaussian():
    g = torch.Generator().manual_seed(1)
    return GaussianPrior(0.3 * torch.randn(4, generator=g, dtype=torch.float64), spd(4, g),
                         schedule=lambda_uniform_schedule())


@pytest.fixture(scope="module")
def fine_gmm():
    means = torch.tensor([[0.6, 0.2], [-0.5, -0.4], [0.3, -0.6]], dtype=torch.float64)
    covs = torch.stack([0.05 * torch.eye(2, dtype=torch.float64), torch.tensor([[0.08, 0.03], [0.03, 0.04]],
                        dtype=torch.float64), 0.02 * torch.eye(2, dtype=torch.float64)])
    return GMMPrior([0.3, 0.5, 0.2], means, covs, schedule=lambda_uniform_schedule())


def x_T(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def solve(sampler, prior, x):
    return sampler.run(prior, shape=x.shape, x_init=x.clone())


def slope(nfes, errors) -> float:
    """Least-squares slope of log error against log NFE."""
    return float(np.polyfit(np.log(nfes), np.log(errors), 1)[0])


def rel_err(out, ref) -> float:
    return float((out - ref).norm() / ref.norm())


CASES = [  # (name, class, options, step counts, expected order, tolerance)
    ("dpm-solver-1", DPMSolver, dict(order=1, method="multistep"), [12, 24, 48, 96], 1, 0.2),
    ("dpm-solver-2 singlestep", DPMSolver, dict(order=2, method="singlestep-fixed"), [12, 24, 48, 96], 2, 0.3),
    ("dpm-solver-3 singlestep", DPMSolver, dict(order=3, method="singlestep-fixed"), [24, 48, 96, 192], 3, 0.45),
    ("dpm-solver-2 multistep", DPMSolver, dict(order=2, method="multistep"), [12, 24, 48, 96], 2, 0.3),
    ("dpm-solver++ 1", DPMSolverPP, dict(order=1), [12, 24, 48, 96], 1, 0.2),
    ("dpm-solver++ 2M", DPMSolverPP, dict(order=2), [12, 24, 48, 96], 2, 0.3),
    ("dpm-solver++ 3S taylor", DPMSolverPP, dict(order=3, method="singlestep-fixed", solver_type="taylor"),
     [24, 48, 96, 192], 3, 0.45),
    # UniC lifts each multistep solver by one order at the same NFE
    ("dpm-solver++ 1 + unic", DPMSolverPP, dict(order=1, corrector="unic"), [12, 24, 48, 96], 2, 0.3),
    ("dpm-solver++ 2M + unic", DPMSolverPP, dict(order=2, corrector="unic"), [12, 24, 48, 96], 3, 0.45),
    ("dpm-solver 2M + unic", DPMSolver, dict(order=2, method="multistep", corrector="unic"), [12, 24, 48, 96], 3,
     0.45),
]


@pytest.mark.parametrize("name,cls,options,steps,order,tol", CASES, ids=[c[0] for c in CASES])
def test_convergence_order_on_the_gaussian_against_the_exact_pf_map(fine_gaussian, name, cls, options, steps,
                                                                      order, tol):
    prior = fine_gaussian
    x = x_T(64, 4)
    exact = prior.pf_ode_map(x, prior.schedule.T - 1, 0)
    errors, nfes = [], []
    for n in steps:
        res = solve(cls(steps=n, spacing="logSNR", end="lowest", lower_order_final=False, **options), prior, x)
        errors.append(rel_err(res.x, exact))
        nfes.append(res.nfe)
    fitted = slope(nfes, errors)
    print(f"\n{name}: NFE {nfes} error {['%.2e' % e for e in errors]} slope {fitted:.2f}")
    assert abs(fitted + order) < tol, (errors, fitted)


def test_karras_spacing_is_edm_noise_levels_and_keeps_the_solver_order(fine_gaussian):
    from restore.samplers.solver_grid import KARRAS_RHO, lam, level_grid

    prior, x = fine_gaussian, x_T(64, 4)
    sched = prior.schedule
    levels = level_grid(sched, 12, "karras")
    roots = np.exp(-np.array([lam(sched, k) for k in levels]) / KARRAS_RHO)  # σ^(1/ρ), σ = e^{-λ}
    steps = np.diff(roots)
    # uniform in σ^(1/ρ) up to the rounding to training levels (≈ 1/T of the range per point)
    assert np.allclose(steps, steps.mean(), rtol=0.02), steps
    exact = prior.pf_ode_map(x, sched.T - 1, 0)
    nfes = [12, 24, 48, 96]
    errors = [rel_err(solve(DPMSolverPP(steps=n, spacing="karras", end="lowest", lower_order_final=False), prior,
                            x).x, exact) for n in nfes]
    print(f"\n2M karras: {['%.2e' % e for e in errors]} slope {slope(nfes, errors):.2f}")
    assert abs(slope(nfes, errors) + 2) < 0.3


def test_third_order_multistep_beats_second_order_and_converges(fine_gaussian):
    """The official 3M starts with one first- and one second-order step, which bounds its asymptotic global
    order by 2; it must still converge and be more accurate than 2M at equal NFE (from 24 steps on)."""
    prior, x = fine_gaussian, x_T(64, 4)
    exact = prior.pf_ode_map(x, prior.schedule.T - 1, 0)
    for cls in (DPMSolver, DPMSolverPP):
        e3 = [rel_err(solve(cls(steps=n, order=3, method="multistep", spacing="logSNR", end="lowest"), prior, x).x,
                      exact) for n in (12, 24, 48, 96)]
        e2 = [rel_err(solve(cls(steps=n, order=2, method="multistep", spacing="logSNR", end="lowest"), prior, x).x,
                      exact) for n in (12, 24, 48, 96)]
        print(f"\n{cls.__name__} 3M {['%.2e' % e for e in e3]} 2M {['%.2e' % e for e in e2]}")
        assert slope([12, 24, 48, 96], e3) < -1.8
        assert all(a < b for a, b in zip(e3[1:], e2[1:]))  # beyond the warm-up-dominated coarsest grid


def test_convergence_order_on_the_gmm_against_a_converged_reference(fine_gmm):
    """No closed-form map for a mixture: the reference is a 480-call third-order solve, whose own error
    (checked against 240 calls) is far below the errors measured."""
    prior, x = fine_gmm, x_T(8, 2, seed=5)
    ref = solve(DPMSolver(steps=480, order=3, method="singlestep-fixed", spacing="logSNR", end="lowest"),
                prior, x).x
    half = solve(DPMSolver(steps=240, order=3, method="singlestep-fixed", spacing="logSNR", end="lowest"),
                 prior, x).x
    assert rel_err(half, ref) < 1e-5
    for cls, options, order, steps in [(DPMSolverPP, dict(order=2), 2, [12, 24, 48, 96]),
                                       (DPMSolver, dict(order=3, method="singlestep-fixed"), 3, [24, 48, 96, 192])]:
        errors = [rel_err(solve(cls(steps=n, spacing="logSNR", end="lowest", lower_order_final=False, **options),
                                prior, x).x, ref) for n in steps]
        fitted = slope(steps, errors)
        print(f"\nGMM {cls.__name__} {options}: {['%.2e' % e for e in errors]} slope {fitted:.2f}")
        assert abs(fitted + order) < 0.45, (errors, fitted)


@pytest.mark.parametrize("spacing", ["guided", "trailing", "uniform"])
def test_dpm_solver_1_equals_ddim(gaussian_problem, spacing):
    prior = gaussian_problem[0]
    x = x_T(16, 4)
    ddim = solve(DDIM(steps=20, spacing=spacing), prior, x).x
    for cls in (DPMSolver, DPMSolverPP):
        for method in ("multistep", "singlestep"):
            out = solve(cls(steps=20, order=1, method=method, spacing=spacing), prior, x).x
            assert float((out - ddim).abs().max()) < 1e-12  # same map, different algebra: rounding only


def test_dpm_solver_1_with_logsnr_spacing_matches_ddim_on_the_same_levels(gaussian_problem):
    prior, x = gaussian_problem[0], x_T(16, 4)
    res = solve(DPMSolver(steps=15, order=1, method="multistep", spacing="logSNR"), prior, x)
    levels = res.extras["levels"]
    y = x.clone()
    for k, j in zip(levels[:-1], levels[1:]):
        eps = prior.eps(y, k)
        a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
        y = float(prior.schedule.a(j)) * (y - s * eps) / a + float(prior.schedule.s(j)) * eps
    assert float((res.x - y).abs().max()) < 1e-12


def test_singlestep_orders_spend_the_budget_exactly():
    for budget in range(1, 30):
        for order in (1, 2, 3):
            orders = singlestep_orders(budget, order)
            assert sum(orders) == budget and max(orders) <= order


def test_nfe_counts_and_prediction_types(gaussian_problem):
    """Every solver spends ``steps`` calls; x0- and v-prediction priors give the same result as eps."""
    prior = gaussian_problem[0]

    class Reparam(DiffusionPrior):
        kind = "analytic"
        clamp_output = False

        def __init__(self, kind):
            super().__init__(prior.schedule, None, (0.0, 1.0))
            self.prediction_type = kind

        def model_output(self, x, k):
            a = prior.schedule.a(k).reshape(-1, 1).to(x)
            s = prior.schedule.s(k).reshape(-1, 1).to(x)
            eps = prior.model_output(x, k)
            x0 = (x - s * eps) / a
            return x0 if self.prediction_type == "sample" else a * eps - s * x0

    x = x_T(8, 4)
    for sampler in (DPMSolver(steps=10), DPMSolver(steps=10, method="multistep"), DPMSolverPP(steps=10),
                    DPMSolverPP(steps=10, order=3), DPMSolverPP(steps=10, variant="sde")):
        ref = solve(sampler, prior, x)
        assert ref.nfe == 10
        for kind in ("sample", "v_prediction"):
            if sampler.config.__class__.__name__ == "DPMSolverPPConfig" and sampler.config.variant == "sde":
                continue
            out = solve(sampler, Reparam(kind), x).x
            assert float((out - ref.x).abs().max()) < 1e-9  # conversions round differently


def test_sde_dpm_solver_pp_first_order_is_the_ddpm_posterior_step(gaussian_problem):
    """SDE-DPM-Solver++(1) = ancestral DDPM with the posterior variance: same noise, same output."""
    from restore.samplers.ddpm import DDPM

    prior, x = gaussian_problem[0], x_T(8, 4)
    a = DPMSolverPP(steps=12, order=1, variant="sde", spacing="guided").run(
        prior, shape=x.shape, x_init=x.clone(), generator=torch.Generator().manual_seed(3)).x
    b = DDPM(steps=12, spacing="guided", clip=False).run(
        prior, shape=x.shape, x_init=x.clone(), generator=torch.Generator().manual_seed(3)).x
    assert float((a - b).abs().max()) < 1e-10


def test_bad_options_are_one_line_errors():
    with pytest.raises(InvalidInputError, match="order"):
        DPMSolver(order=4)
    with pytest.raises(InvalidInputError, match="sde"):
        DPMSolverPP(variant="sde", order=3)
    with pytest.raises(InvalidInputError, match="ghvb"):
        DPMSolverPP(momentum="ghvb")
    with pytest.raises(InvalidInputError, match="β"):
        DDIM(momentum="hb", beta=1.5)
    with pytest.raises(InvalidInputError, match="method=multistep"):
        DPMSolver(corrector="unic")  # the paper's default is singlestep
    with pytest.raises(InvalidInputError, match="variant=ode"):
        DPMSolverPP(corrector="unic", variant="sde")
    with pytest.raises(InvalidInputError, match="corrector takes one of none, unic"):
        DPMSolverPP(corrector="bh2")


@pytest.mark.parametrize("cls", [DPMSolver, DPMSolverPP])
def test_ddim_quad_spacing_is_refused_with_the_solver_quadratic_named(gaussian_problem, cls):
    with pytest.raises(InvalidInputError, match="time-quadratic"):
        solve(cls(steps=10, spacing="quad"), gaussian_problem[0], x_T(1, 4))


# -- DPM-Solver-v3 ------------------------------------------------------------------------------------------

def test_v3_with_statistics_beats_dpm_solver_pp_on_the_gaussian(tmp_path):
    g = torch.Generator().manual_seed(1)
    prior = GaussianPrior(0.3 * torch.randn(4, generator=g, dtype=torch.float64), spd(4, g))
    ems = compute_ems(prior, (512, 4), levels=200, generator=torch.Generator().manual_seed(3))
    path = ems.save(tmp_path / "ems.safetensors")
    x = x_T(64, 4)
    exact = prior.pf_ode_map(x, prior.schedule.T - 1, -1)
    rows = []
    for n in (5, 6, 8, 10, 15, 20):
        v3 = rel_err(solve(DPMSolverV3(steps=n, statistics=str(path)), prior, x).x, exact)
        pp = min(rel_err(solve(DPMSolverPP(steps=n, spacing=sp), prior, x).x, exact)
                 for sp in ("time-uniform", "logSNR"))
        rows.append((n, v3, pp))
        assert v3 < 0.5 * pp
        for variant in (dict(use_corrector=False), dict(predictor_pseudo=True, corrector_pseudo=True)):
            assert rel_err(solve(DPMSolverV3(steps=n, statistics=str(path), **variant), prior, x).x, exact) < pp
    print("\nNFE  v3-error  best-dpm-solver++-error\n" + "\n".join(f"{n:3d}  {a:.2e}  {b:.2e}" for n, a, b in rows))


class OverconfidentGaussian(GaussianPrior):
    """Noise predictions 1.5× the exact ones: a Jacobian diagonal above one, as a trained network has near the
    clean end."""

    def model_output(self, x, k):
        return 1.5 * super().model_output(x, k)


def test_ems_linear_part_is_the_jacobian_diagonal_within_its_range():
    g = torch.Generator().manual_seed(1)
    prior = GaussianPrior(0.3 * torch.randn(4, generator=g, dtype=torch.float64), spd(4, g))
    ems = compute_ems(prior, (2048, 4), levels=30, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(4, dtype=torch.float64)
    for k, l in zip(ems.levels.tolist(), ems.l):
        a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
        exact = s ** 2 * torch.linalg.inv(a ** 2 * prior.cov + s ** 2 * eye).diagonal()  # s ∂eps*/∂x = s² C⁻¹
        assert torch.allclose(l, exact.clamp(max=1.0), atol=0.1), (k, l, exact)  # Hutchinson: std ≈ 0.02
    over = compute_ems(OverconfidentGaussian(prior.mean, prior.cov), (64, 4), levels=30,
                       generator=torch.Generator().manual_seed(0))
    assert float(over.l.min()) >= 0.0 and float(over.l.max()) == 1.0


def test_v3_statistics_file_belongs_to_its_prior(tmp_path, gaussian_problem):
    prior = gaussian_problem[0]
    ems = compute_ems(prior, (16, 4), levels=20, generator=torch.Generator().manual_seed(0))
    path = ems.save(tmp_path / "ems.safetensors")
    other = GaussianPrior(prior.mean + 1, prior.cov)
    with pytest.raises(InvalidInputError, match="another prior"):
        load_ems(path, other.fingerprint())
    with pytest.raises(InvalidInputError, match="another prior"):
        solve(DPMSolverV3(steps=5, statistics=str(path)), other, x_T(2, 4))
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_ems(tmp_path / "bad.safetensors", prior.fingerprint())
    with pytest.raises(InvalidInputError, match="does not exist"):
        solve(DPMSolverV3(steps=5, statistics=str(tmp_path / "missing.safetensors")), prior, x_T(2, 4))


def test_v3_without_statistics_falls_back_to_dpm_solver_pp_once(gaussian_problem):
    prior, x = gaussian_problem[0], x_T(4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = solve(DPMSolverV3(steps=8), prior, x)
        b = solve(DPMSolverV3(steps=8), prior, x)
    assert sum("no model statistics" in str(w.message) for w in caught) <= 1
    ref = solve(DPMSolverPP(steps=8, order=3, spacing="time-uniform"), prior, x).x
    assert a.extras["fallback"] == "dpm-solver++" and torch.equal(a.x, ref) and torch.equal(b.x, ref)


# -- momentum -------------------------------------------------------------------------------------------------

def test_momentum_with_beta_one_is_the_plain_solver(gaussian_problem):
    prior, x = gaussian_problem[0], x_T(16, 4)
    plain = solve(DDIM(steps=15), prior, x).x
    hb = solve(DDIM(steps=15, momentum="hb", beta=1.0), prior, x).x
    assert float((hb - plain).abs().max()) < 1e-12
    pp = solve(DPMSolverPP(steps=15), prior, x).x
    pp_hb = solve(DPMSolverPP(steps=15, momentum="hb", beta=1.0), prior, x).x
    assert float((pp_hb - pp).abs().max()) < 1e-12
    # GHVB with β = 1 is the second-order Adams–Bashforth (PLMS-2) step in x̄ = x/a
    sched = prior.schedule
    pairs = sched.pairs(15, "uniform")
    y, prev = x.clone(), None
    for k, j in pairs:
        eps = prior.eps(y, k)
        d = eps if prev is None else 1.5 * eps - 0.5 * prev
        prev = eps
        a_k, s_k, a_j, s_j = (float(v) for v in (sched.a(k), sched.s(k), sched.a(j), sched.s(j)))
        y = a_j * (y / a_k + (s_j / a_j - s_k / a_k) * d)
    ghvb = solve(DDIM(steps=15, momentum="ghvb", beta=1.0), prior, x).x
    assert float((ghvb - y).abs().max()) < 1e-12


class _Guided(DiffusionPrior):
    """A GMM pushed toward one component with a classifier-free-guidance-like scale ``w``:
    ``eps = eps_gmm + w (eps_component - eps_gmm)``."""

    kind = "analytic"
    clamp_output = False

    def __init__(self, gmm, component, w):
        super().__init__(gmm.schedule, None, (0.0, 1.0))
        self.gmm, self.component, self.w = gmm, component, w

    def model_output(self, x, k):
        u = self.gmm.model_output(x, k)
        return u + self.w * (self.component.model_output(x, k) - u)


def test_momentum_removes_the_low_step_divergence_under_strong_guidance():
    means = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], dtype=torch.float64)
    covs = 0.02 * torch.eye(2, dtype=torch.float64).expand(3, 2, 2).clone()
    gmm = GMMPrior([1 / 3, 1 / 3, 1 / 3], means, covs)
    prior = _Guided(gmm, GaussianPrior(means[0], covs[0]), w=8.0)
    x = x_T(256, 2)
    ref = solve(DPMSolverPP(steps=200, spacing="logSNR"), prior, x).x
    rms = lambda v: float((v - ref).pow(2).mean().sqrt())  # noqa: E731
    lines = ["steps  plain-RMS  plain-max|x|  HB0.8-RMS  HB0.8-max|x|  HB0.6-RMS  HB0.6-max|x|"]
    for n in (4, 6):
        plain = solve(DPMSolverPP(steps=n), prior, x).x
        hb8 = solve(DPMSolverPP(steps=n, momentum="hb", beta=0.8), prior, x).x
        hb6 = solve(DPMSolverPP(steps=n, momentum="hb", beta=0.6), prior, x).x
        lines.append(f"{n:5d}  {rms(plain):9.3f}  {float(plain.abs().max()):12.2f}  {rms(hb8):9.3f}  "
                     f"{float(hb8.abs().max()):12.2f}  {rms(hb6):9.3f}  {float(hb6.abs().max()):12.2f}")
        assert rms(plain) > 0.5  # the plain solver diverges: the data live within |x| <= 1.5
        assert rms(hb8) < rms(plain) and rms(hb6) < 0.5 * rms(plain)
        assert float(hb6.abs().max()) < 0.5 * float(plain.abs().max())
    print("\n" + "\n".join(lines))


# -- VE family --------------------------------------------------------------------------------------------

def test_ve_pc_sampler_matches_the_gaussian_marginal_moments():
    g = torch.Generator().manual_seed(2)
    mean = torch.tensor([0.5, -0.3, 0.1], dtype=torch.float64)
    cov = spd(3, g, scale=0.4)
    prior = VEGaussianPrior(mean, cov, sigma_min=0.01, sigma_max=10.0)
    n = 4000
    out = VEPC(steps=300).run(prior, shape=(n, 3), generator=torch.Generator().manual_seed(4)).x
    emp_mean, emp_cov = out.mean(0), torch.cov(out.T)
    se_mean = (torch.diagonal(cov) / n).sqrt()
    z_mean = ((emp_mean - mean) / se_mean).abs()
    # standard error of an empirical covariance entry: sqrt((Σ_ii Σ_jj + Σ_ij²) / n)
    se_cov = ((torch.diagonal(cov)[:, None] * torch.diagonal(cov)[None, :] + cov**2) / n).sqrt()
    z_cov = ((emp_cov - cov) / se_cov).abs()
    print(f"\nVE-PC: max |z| mean {float(z_mean.max()):.2f}, covariance {float(z_cov.max()):.2f}")
    assert float(z_mean.max()) < 4.5 and float(z_cov.max()) < 4.5


def test_ve_ode_matches_the_exact_ve_flow_and_vp_conversion_is_exact(gaussian_problem):
    g = torch.Generator().manual_seed(2)
    mean, cov = torch.tensor([0.2, -0.1], dtype=torch.float64), spd(2, g)
    prior = VEGaussianPrior(mean, cov, sigma_min=0.01, sigma_max=20.0)
    x = 20.0 * x_T(32, 2)
    exact = prior.pf_ode_map(prior.pf_ode_map(x, 20.0, 0.01), 0.01, 0.0)
    errors = [rel_err(VEODE(steps=n).run(prior, shape=x.shape, x_init=x.clone()).x, exact) for n in (10, 20, 40, 80)]
    print(f"\nVE-ODE Heun errors {['%.2e' % e for e in errors]}")
    assert slope([10, 20, 40, 80], errors) < -1.6
    # a VP prior seen as VE: the score at σ_k = s_k/a_k is exactly -eps(a_k x̃, k)/σ_k and equals the VE form
    vp = gaussian_problem[0]
    ve = VPAsVE(vp)
    exact_ve = VEGaussianPrior(vp.mean, vp.cov)
    k = 300
    sigma = float(vp.schedule.s(k) / vp.schedule.a(k))
    y = x_T(8, 4)
    assert float((ve.score(y, sigma) - exact_ve.score(y, sigma)).abs().max()) < 1e-9


def test_ve_samplers_run_on_vp_priors_end_to_end(gaussian_problem):
    """The VE ODE on a VP prior ends where DPM-Solver on the same prior ends (same flow, two solvers)."""
    prior = gaussian_problem[0]
    x = x_T(16, 4)
    ref = solve(DPMSolver(steps=200, order=3, spacing="logSNR"), prior, x).x
    sigma_max = float(prior.schedule.s(prior.schedule.T - 1) / prior.schedule.a(prior.schedule.T - 1))
    a_T = float(prior.schedule.a(prior.schedule.T - 1))
    out = VEODE(steps=200).run(prior, shape=x.shape, x_init=x.clone() / a_T).x
    assert rel_err(out, ref) < 1e-3 and sigma_max > 100
    pc = VEPC(steps=50).run(prior, shape=(4, 4), generator=torch.Generator().manual_seed(0))
    # grid points closer than one VP level are merged (the lowest VP levels are coarse in σ)
    assert 45 <= len(pc.extras["sigmas"]) <= 50 and pc.nfe == 2 * len(pc.extras["sigmas"])
    assert torch.isfinite(pc.x).all()


# -- DDS with a DPM-Solver++ step, the `restore ems` command ---------------------------------------------------

@pytest.mark.parametrize("step", ["dpm-solver++", "sde-dpm-solver++"])
def test_dds_with_a_dpm_solver_pp_step_stays_consistent_with_the_measurement(gaussian_problem, step):
    import restore
    from restore.operators import GaussianNoise
    from restore.samplers.dds import DDS

    prior, op, A, y = gaussian_problem
    problem = restore.Problem(y.expand(6, -1), op, GaussianNoise(0.0))
    res = DDS(steps=20, cg_iters=8, step=step).run(prior, problem, generator=torch.Generator().manual_seed(0))
    assert res.nfe == 20
    assert float((res.x @ A.T - y).abs().max()) < 1e-8  # the last CG is exact on this 2-D range


def test_ems_command_writes_statistics_next_to_the_prior_and_v3_uses_them(tmp_path, capsys):
    from diffusers import UNet2DModel

    import restore
    from restore.cli import main

    torch.manual_seed(0)
    UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
                down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                norm_num_groups=4).save_pretrained(tmp_path / "p" / "unet")
    folder = tmp_path / "p"
    assert main(["ems", str(folder), "--states", "4", "--levels", "6", "--size", "8", "--batch", "2"]) in (0, None)
    assert (folder / "ems.safetensors").exists()
    prior = restore.prior(str(folder), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # statistics found: no fallback warning
        res = DPMSolverV3(steps=4).run(prior, shape=(1, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    assert "fallback" not in res.extras and torch.isfinite(res.x).all()
    # another prior in the same place: the statistics are refused in one line
    torch.manual_seed(1)
    UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
                down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                norm_num_groups=4).save_pretrained(folder / "unet")
    with pytest.raises(InvalidInputError, match="another prior"):
        DPMSolverV3(steps=4).run(restore.prior(str(folder), device="cpu"), shape=(1, 1, 8, 8))
    code = main(["ems", "stationary-gaussian", "--states", "4", "--levels", "6"])
    assert code == 2 and "--out" in capsys.readouterr().err

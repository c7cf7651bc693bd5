"""Flows (issue 18): the flow family and its conversions, the exact VP reparameterisation, the flow samplers
against the exact Gaussian flow map, FlowChef and flow-SMC on the affine-Gaussian fixture, RF-Solver inversion."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import restore
from restore.errors import IncompatibleError, InvalidInputError
from restore.operators import GaussianNoise
from restore.priors import GaussianPrior
from restore.priors.flow import RECTIFIED, TRIGONOMETRIC, FlowView, GaussianFlowPrior, VPAsFlow, as_flow
from restore.problem import Problem
from restore.samplers.ddim import DDIM
from restore.samplers.flow_euler import FlowEuler
from restore.samplers.flow_heun import FlowHeun
from restore.samplers.flow_smc import FlowSMC
from restore.samplers.flow_steps import euler_step
from restore.samplers.flowchef import FlowChef
from restore.samplers.rf_solver import RFSolver
from restore.testing import SamplerContract, affine_moments, check_moments, make_gaussian_fixture, tweedie_affine

F64 = torch.float64


def _gaussian(seed: int = 0, d: int = 4):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
    cov = (q * (0.05 + 0.4 * torch.rand(d, generator=g, dtype=F64))) @ q.T
    mean = 0.5 + 0.1 * torch.randn(d, generator=g, dtype=F64)
    return mean, cov


def _slope(steps, errors) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


# -- the family --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interp", [RECTIFIED, TRIGONOMETRIC], ids=["rectified", "trigonometric"])
def test_conversions_between_velocity_x0_eps_and_score_are_consistent(interp):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 5, generator=g, dtype=F64), torch.randn(3, 5, generator=g, dtype=F64)
    for t in (0.1, 0.5, 0.9):
        x = interp.alpha(t) * x0 + interp.sigma(t) * eps
        v = interp.velocity(x0, eps, t)
        torch.testing.assert_close(interp.x0(v, x, t), x0, rtol=0, atol=1e-12)  # a 2x2 solve: round-off only
        torch.testing.assert_close(interp.eps(v, x, t), eps, rtol=0, atol=1e-12)
        torch.testing.assert_close(interp.velocity_from_x0(x0, x, t), v, rtol=0, atol=1e-12)
        torch.testing.assert_close(interp.velocity_from_eps(eps, x, t), v, rtol=0, atol=1e-12)
        torch.testing.assert_close(interp.score(v, x, t), -eps / interp.sigma(t), rtol=0, atol=1e-12)
        assert abs(interp.time_of_ratio(interp.sigma(t) / interp.alpha(t)) - t) < 1e-14


@pytest.mark.parametrize("interp", ["rectified", "trigonometric"])
def test_reparameterised_vp_and_native_flow_give_the_same_x0_hat(interp):
    mean, cov = _gaussian()
    native = GaussianFlowPrior(mean, cov, interp)
    vp = as_flow(GaussianPrior(mean, cov), interp)
    assert isinstance(vp, VPAsFlow) and vp.fingerprint() == GaussianPrior(mean, cov).fingerprint()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    for k in (0, 3, 100, 500, 900, 999):
        t = float(vp.table[k])
        v_vp, v_nat = vp.velocity(x, t), native.velocity(x, t)
        x0_vp = vp.interpolant.x0(v_vp, x, t)
        # two exact formulas for one quantity, float64: agreement to round-off
        torch.testing.assert_close(x0_vp, native.x0_exact(x, t), rtol=0, atol=1e-10)
        torch.testing.assert_close(v_vp, v_nat, rtol=0, atol=1e-10)
        # the score from the velocity is the exact score -C_t^{-1}(x - α m)
        a, s = native.interpolant.alpha(t), native.interpolant.sigma(t)
        c = a * a * cov + s * s * torch.eye(4, dtype=F64)
        exact_score = -torch.linalg.solve(c, (x - a * mean).T).T
        torch.testing.assert_close(native.interpolant.score(v_nat, x, t), exact_score, rtol=1e-9, atol=1e-9)


def test_gaussian_flow_map_solves_the_flow_ode():
    mean, cov = _gaussian(2)
    prior = GaussianFlowPrior(mean, cov)
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    t, h = 0.6, 1e-5
    deriv = (prior.flow_map(x, t, t + h) - prior.flow_map(x, t, t - h)) / (2 * h)
    torch.testing.assert_close(deriv, prior.velocity(x, t), rtol=0, atol=1e-8)  # central difference, O(h²)
    torch.testing.assert_close(prior.flow_map(prior.flow_map(x, t, 0.2), 0.2, t), x, rtol=0, atol=1e-12)


def test_flow_euler_on_a_vp_prior_is_ddim():
    mean, cov = _gaussian(4)
    prior = GaussianPrior(mean, cov)
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(5), dtype=F64)
    ddim = DDIM(steps=20).run(prior, shape=z.shape, generator=torch.Generator().manual_seed(5)).x
    flow = FlowEuler(steps=20).run(prior, shape=z.shape, generator=torch.Generator().manual_seed(5))
    # Euler in rectified-flow coordinates keeps (x0̂, ε̂) fixed over a step, as DDIM does; two code paths
    torch.testing.assert_close(flow.x, ddim, rtol=0, atol=1e-12)
    assert flow.nfe == 20


def test_flow_samplers_refuse_a_latent_or_mean_reverting_prior():
    from restore.priors.mean_reverting import MeanRevertingGaussianPrior

    with pytest.raises(IncompatibleError):
        FlowEuler(steps=4).run(MeanRevertingGaussianPrior(), shape=(1, 1, 2, 2))


# -- convergence orders against the exact flow map ---------------------------------------------------------
STEPS = [8, 16, 32, 64]


def _errors(sampler, prior, x1, steps=STEPS):
    exact = prior.flow_map(x1, 1.0, 0.0)
    return [float((sampler(steps=n).run(prior, shape=x1.shape, x_init=x1).x_model - exact).norm() / exact.norm())
            for n in steps]


@pytest.mark.parametrize("interp", ["rectified", "trigonometric"])
def test_euler_is_first_order_heun_and_rf_solver_second_order(interp):
    mean, cov = _gaussian(6)
    prior = GaussianFlowPrior(mean, cov, interp)
    x1 = torch.randn(32, 4, generator=torch.Generator().manual_seed(7), dtype=F64)
    slopes = {name: _slope(STEPS, _errors(s, prior, x1))
              for name, s in (("euler", FlowEuler), ("heun", FlowHeun), ("rf-solver", RFSolver))}
    print(f"{interp}: observed orders {slopes}")
    assert -1.15 < slopes["euler"] < -0.85
    assert -2.3 < slopes["heun"] < -1.8
    # the midpoint rule is third order on the rectified Gaussian (its error terms cancel), second elsewhere
    assert slopes["rf-solver"] < -1.8
    if interp == "trigonometric":
        assert slopes["rf-solver"] > -2.3


def _euler_round_trip(view: FlowView, z0: torch.Tensor, steps: int) -> torch.Tensor:
    times = view.times(steps)
    up, down = times[::-1], times
    z = z0
    for t, u in zip(up, up[1:]):
        z = euler_step(z, view.velocity(z, t), t, u)
    for t, u in zip(down, down[1:]):
        z = euler_step(z, view.velocity(z, t), t, u)
    return z


def test_rf_solver_inversion_round_trip_is_second_order_and_beats_euler():
    mean, cov = _gaussian(8)
    prior = GaussianFlowPrior(mean, cov, "trigonometric")
    z0 = prior.sample(16, torch.Generator().manual_seed(9))
    view = prior.bind(shape=z0.shape)
    steps, errors = [5, 10, 20, 40], []
    s10 = None
    for n in steps:
        s = RFSolver(steps=n)
        rec = s.reconstruct(view, s.invert(view, z0))
        errors.append(float((rec - z0).norm() / z0.norm()))
        if n == 10:
            s10 = errors[-1]
    euler10 = float((_euler_round_trip(view, z0, 10) - z0).norm() / z0.norm())
    slope = _slope(steps, errors)
    print(f"rf-solver round trip {errors} (order {-slope:.2f}); euler at 10 steps {euler10:.3g}, rf-solver {s10:.3g} "
          f"({euler10 / s10:.0f}x)")
    assert slope < -1.8
    assert euler10 > 10 * s10


def test_rf_solver_invert_api_on_a_vp_prior_saves_and_refuses_another_prior(tmp_path):
    mean, cov = _gaussian(10)
    prior = GaussianPrior(mean, cov)
    x = prior.sample(4, torch.Generator().manual_seed(11))
    inv = restore.invert(prior, x, sampler="rf-solver", steps=40)
    assert inv.nfe > 0 and inv.sampler == "rf-solver"
    err40 = float((inv.reconstruct() - x).norm() / x.norm())
    err10 = float((restore.invert(prior, x, sampler="rf-solver", steps=10).reconstruct() - x).norm() / x.norm())
    assert err40 < err10 / 4  # second order over 4x the steps: 16x in the limit
    path = tmp_path / "lat.safetensors"
    inv.save(path)
    loaded = restore.inversion.Inversion.load(path)
    torch.testing.assert_close(loaded.reconstruct(prior), inv.reconstruct(), rtol=0, atol=1e-12)  # same ops
    with pytest.raises(IncompatibleError):
        loaded.reconstruct(GaussianPrior(mean + 0.1, cov))


def test_restore_invert_and_reconstruct_cli_with_rf_solver(tmp_path, capsys):
    from PIL import Image as PILImage

    from restore.cli import main

    img = tmp_path / "in.png"
    sample = os.path.join(os.path.dirname(__file__), "..", "sample_images", "astronaut.png")
    PILImage.open(sample).convert("L").resize((32, 32)).save(img)
    lat = tmp_path / "lat.safetensors"
    code = main(["invert", str(img), "-o", str(lat), "--prior", "stationary-gaussian", "--sampler", "rf-solver",
                 "--steps", "50", "--check"])
    err = capsys.readouterr().err
    assert code in (0, None) and lat.exists() and "sampler rf-solver" in err and "round-trip" in err
    out = tmp_path / "rec.png"
    code = main(["reconstruct", str(lat), "-o", str(out)])
    assert code in (0, None) and out.exists()
    a = np.asarray(PILImage.open(img), dtype=float)
    b = np.asarray(PILImage.open(out), dtype=float)
    assert np.abs(a - b).mean() < 2  # grey levels: an inexact (second-order) round trip at 50 steps


# -- FlowChef ----------------------------------------------------------------------------------------------
def _fixture():
    return make_gaussian_fixture(torch.Generator().manual_seed(1234))


def test_flowchef_with_zero_guidance_is_flow_euler():
    fx = _fixture()
    problem = Problem(fx.batch_y(6), fx.operator, GaussianNoise(fx.sigma_y))
    ref = FlowEuler(steps=30).run(fx.prior, shape=(6, fx.d), generator=torch.Generator().manual_seed(2))
    out = FlowChef(steps=30, scale=0.0, clip=False).run(fx.prior, problem, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out.x, ref.x)  # scale = 0 skips the guidance: the same Euler code path, bit for bit
    assert out.nfe == ref.nfe == 30 and out.vjp == 0
    native = GaussianFlowPrior(fx.prior.mean, fx.prior.cov)  # default clip: off on native flows
    ref = FlowEuler(steps=30).run(native, shape=(6, fx.d), generator=torch.Generator().manual_seed(2))
    out = FlowChef(steps=30, scale=0.0).run(native, problem, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out.x, ref.x)


def _flowchef_affine_steps(fx, steps: int, scale: float):
    """FlowChef on the reparameterised Gaussian fixture as affine maps ``x' = M x + b`` (RF, model units = [0, 1])."""
    prior = as_flow(fx.prior)
    A, y = fx.matrix, fx.y[0]
    eye, m = torch.eye(fx.d, dtype=F64), A.shape[0]
    ks = fx.prior.schedule.timesteps(steps, "uniform")
    times = [float(prior.table[k]) for k in ks] + [0.0]
    out = [(prior.noise_scale(times[0]) * eye, torch.zeros(fx.d, dtype=F64), 0 * eye)]
    for i, k in enumerate(ks):
        t, t_next, c = times[i], times[i + 1], float(prior.scales[k])
        J, h, E, e = tweedie_affine(fx.prior, k)
        Jx, Ex = J / c, E / c  # x_vp = x / c
        Vx, vb = Ex - Jx, e - h  # rectified flow: v = ε̂ - x0̂
        M, b = eye + (t_next - t) * Vx, (t_next - t) * vb
        if i + 1 < len(ks):  # guidance: x -= scale · (2/m) Aᵀ (A x0̂ - y), x0̂ = Jx x + h
            M = M - scale * 2 / m * A.T @ A @ Jx
            b = b - scale * 2 / m * A.T @ (A @ h - y)
        out.append((M, b, 0 * eye))
    return out


def test_flowchef_matches_its_affine_oracle_and_moves_towards_the_posterior_mean():
    fx = _fixture()
    n, steps, scale = 4000, 50, 1.0
    problem = Problem(fx.batch_y(n), fx.operator, GaussianNoise(fx.sigma_y))
    gen = torch.Generator().manual_seed(0)
    x = FlowChef(steps=steps, scale=scale, clip=False).run(fx.prior, problem, generator=gen).x
    mean, cov = affine_moments(_flowchef_affine_steps(fx, steps, scale))
    check_moments(x, mean, cov)
    prior_gap = float((fx.prior.mean - fx.post_mean).norm())
    bias = float((mean - fx.post_mean).norm())
    cov_err = float(torch.linalg.matrix_norm(cov - fx.post_cov) / torch.linalg.matrix_norm(fx.post_cov))
    print(f"flowchef (50 steps, scale 1): ||E[x] - mu_post|| = {bias:.4g} vs prior gap {prior_gap:.4g} "
          f"(ratio {bias / prior_gap:.3f}); relative cov error {cov_err:.3f}")
    assert bias < 0.5 * prior_gap  # moves towards the posterior mean ...
    assert bias > 1e-3 * prior_gap  # ... but is biased (x0̂-likelihood guidance, no covariance term)


def test_flowchef_clip_keeps_x0_hat_in_range_and_is_automatic_on_vp_priors():
    from restore.samplers.flowchef import clipped_velocity

    fx = _fixture()
    view = as_flow(fx.prior).bind(shape=(5, fx.d))
    x = 3 * torch.randn(5, fx.d, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = view.times(10)[2]
    v = clipped_velocity(view, view.velocity(x, t), x, t)
    x0 = view.interpolant.x0(v, x, view.snap(t))
    assert float(x0.min()) >= 0 and float(x0.max()) <= 1
    problem = Problem(fx.batch_y(5), fx.operator, GaussianNoise(fx.sigma_y))
    auto = FlowChef(steps=10, scale=1.0).run(fx.prior, problem, generator=torch.Generator().manual_seed(1)).x
    on = FlowChef(steps=10, scale=1.0, clip=True).run(fx.prior, problem, generator=torch.Generator().manual_seed(1)).x
    assert torch.equal(auto, on)  # the same run: clip=None means clip=True on a VP prior


# -- flow-SMC ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("coefficient", ["square", "sigma"])
def test_flow_smc_spends_its_budget_and_its_weighted_mean_approaches_the_posterior(coefficient):
    fx = make_gaussian_fixture(torch.Generator().manual_seed(3), d=3, m=2, sigma_y=0.05)
    problem = Problem(fx.y, fx.operator, GaussianNoise(fx.sigma_y))
    r = FlowSMC(particles=8, budget=80, coefficient=coefficient).run(fx.prior, problem, generator=torch.Generator().manual_seed(1))
    assert r.nfe == 80 and r.extras["weights"].shape == (8, 1) and r.extras["particles"].shape == (8, 1, 3)
    errors = []
    reps = 8
    prob = Problem(fx.batch_y(reps), fx.operator, GaussianNoise(fx.sigma_y))
    for n in (16, 256):
        r = FlowSMC(particles=n, steps=25, coefficient=coefficient).run(fx.prior, prob, generator=torch.Generator().manual_seed(n))
        w = r.extras["weights"].unsqueeze(-1)
        means = (w * r.extras["particles"]).sum(0)  # (reps, d)
        errors.append(float((means - fx.post_mean).norm(dim=1).mean()))
    gap = float((fx.prior.mean - fx.post_mean).norm())
    print(f"flow-smc ({coefficient}) mean error (16, 256 particles): {errors}, prior-to-posterior gap {gap:.3g}")
    assert errors[1] < errors[0] and errors[1] < 0.25 * gap


def test_flow_smc_rejects_a_budget_below_one_step_and_noiseless_measurements():
    with pytest.raises(InvalidInputError):
        FlowSMC(particles=8, budget=4)
    with pytest.raises(InvalidInputError):
        FlowSMC(coefficient="linear")
    fx = _fixture()
    with pytest.raises(IncompatibleError):
        FlowSMC(particles=2, steps=2).run(fx.prior, Problem(fx.y, fx.operator, GaussianNoise(0.0)))


def test_samples_n_sets_the_flow_smc_particles():
    from restore.plan import make_plan

    plan = make_plan("flow-smc", samples=6)
    assert plan.sampler_config["particles"] == 6


# -- the shared contract on every new sampler -------------------------------------------------------------
class TestFlowEulerContract(SamplerContract):
    sampler = "flow-euler"
    config = {"steps": 50}

    def affine_steps(self, fixture, sampler):
        return _flowchef_affine_steps(fixture, 50, 0.0)  # FlowChef without guidance is flow-euler


class TestFlowHeunContract(SamplerContract):
    sampler = "flow-heun"
    config = {"steps": 20}


class TestRFSolverContract(SamplerContract):
    sampler = "rf-solver"
    config = {"steps": 20}


class TestFlowChefContract(SamplerContract):
    sampler = "flowchef"
    config = {"steps": 50, "scale": 1.0, "clip": False}

    def affine_steps(self, fixture, sampler):
        return _flowchef_affine_steps(fixture, 50, 1.0)


class TestFlowSMCContract(SamplerContract):
    sampler = "flow-smc"
    config = {"steps": 10, "particles": 4}
    n_samples = 800

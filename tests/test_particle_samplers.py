"""Asymptotically exact samplers (issue 19): SMC machinery, twisted SMC, Feynman–Kac correctors, Denoising MCMC.

Oracles (float64): the exact posterior of the DDPM chain's own Gaussian prior (affine moment oracle), the
exact posterior mixture of a GMM prior under a linear Gaussian measurement, the tempered mixture's moments
by quadrature, the product of two mixtures in closed form, and the Gaussian prior's diffused marginals.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.errors import RestoreError
from restore.operators.base import MatrixOperator
from restore.operators.noise import GaussianNoise
from restore.priors.analytic import GaussianPrior, GMMPrior
from restore.problem import Problem
from restore.samplers.dmcmc import DMCMC
from restore.samplers.dps import DPS
from restore.samplers.fkc import FKC
from restore.samplers.particles import ParticleWeights, ess, systematic_resample, weighted_moments
from restore.samplers.smc import SMC
from restore.testing.exact import (ddpm_chain_moments, gmm_posterior, gmm_product, mixture_moments,
                                   tempered_moments)
from restore.testing.fixtures import make_gaussian_fixture

F64 = torch.float64


# -- SMC machinery --------------------------------------------------------------------------------------------
def test_systematic_resampling_is_unbiased_on_fixed_weights():
    w = torch.tensor([0.05, 0.4, 0.15, 0.3, 0.1], dtype=F64)
    n, reps = 5, 20000
    log_w = w.log().unsqueeze(1).expand(n, reps)  # 20000 independent problems share the weights
    idx = systematic_resample(log_w, torch.Generator().manual_seed(0))
    counts = torch.stack([(idx == i).sum(0) for i in range(n)]).double()  # (n, reps) offspring counts
    mean = counts.mean(1)
    # systematic resampling gives floor(N w) or ceil(N w) copies: the count's std is at most 1/2
    se = counts.std(1) / math.sqrt(reps)
    assert torch.all((mean - n * w).abs() <= 4.5 * se + 1e-12), (mean, n * w)
    assert torch.all((counts - (n * w).unsqueeze(1)).abs() < 1)  # never more than one copy off


def test_ess_and_log_z_of_known_weights():
    log_w = torch.tensor([[0.0], [0.0], [math.log(2.0)]], dtype=F64)
    assert float(ess(log_w)) == pytest.approx(16 / 6)  # weights 1/4, 1/4, 1/2
    pw = ParticleWeights(3, 1, threshold=1.0)
    pw.add(log_w)
    assert float(pw.log_z()) == pytest.approx(math.log(4 / 3))
    anc = pw.maybe_resample(1, torch.Generator().manual_seed(0))
    assert anc is not None and float(pw.log_z()) == pytest.approx(math.log(4 / 3))  # resampling keeps log Ẑ
    pw.add(torch.full((3, 1), math.log(0.5), dtype=F64))
    assert float(pw.log_z()) == pytest.approx(math.log(4 / 3 * 0.5))
    assert pw.diagnostics()["resampled_steps"] == [1]


# -- twisted SMC ----------------------------------------------------------------------------------------------
def _mean_error(draws, weights, mean):
    """Root mean square over problems of the weighted mean's error."""
    m, _ = weighted_moments(draws, weights)
    return float((m - mean).pow(2).sum(1).mean().sqrt())


def _rmse_over_problems(draws, weights, mean, cov):
    """Root mean square over problems of the weighted mean's and covariance's errors."""
    m, _ = weighted_moments(draws, weights)
    centred = draws - m
    w = weights.unsqueeze(-1).unsqueeze(-1)
    c = (w * centred.unsqueeze(-1) * centred.unsqueeze(-2)).sum(0)
    err = (m - mean).pow(2).sum(1) + (c - cov).pow(2).sum((1, 2))
    return float(err.mean().sqrt())


@pytest.mark.parametrize("proposal", ["gaussian", "gradient"])
def test_smc_converges_on_the_affine_gaussian_fixture_like_one_over_sqrt_n(proposal):
    fx = make_gaussian_fixture(torch.Generator().manual_seed(3), d=3, m=2, sigma_y=0.2, scale=0.5)
    steps, reps = 20, 16
    chain_mean, chain_cov = ddpm_chain_moments(fx.prior, steps, variance="fixed-large")
    # SMC is exact for the posterior of the prior its chain samples: that prior is Gaussian here
    target = GaussianPrior(chain_mean, chain_cov)
    mean, cov = target.posterior(fx.matrix, fx.y, fx.sigma_y)
    problem = Problem(fx.batch_y(reps), fx.operator, GaussianNoise(fx.sigma_y))  # 16 independent SMC runs
    sizes, errors = [64, 256, 1024], []
    for n in sizes:
        r = SMC(particles=n, steps=steps, proposal=proposal).run(fx.prior, problem,
                                                                  generator=torch.Generator().manual_seed(n))
        errors.append(_rmse_over_problems(r.extras["particles"], r.extras["weights"], mean, cov))
    smc_mean_err = _mean_error(r.extras["particles"], r.extras["weights"], mean)
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    cont_gap = float((mean - fx.post_mean).norm())
    print(f"{proposal}: smc errors {errors} slope {slope:.2f}; chain-vs-continuous posterior mean gap {cont_gap:.2e}")
    assert -0.8 < slope < -0.3
    d = DPS(steps=steps, norm="squared", zeta=1.0, clip=False, zeta_reference_steps=None)
    x = d.run(fx.prior, Problem(fx.batch_y(1024), fx.operator, GaussianNoise(fx.sigma_y)),
              generator=torch.Generator().manual_seed(1)).x
    dps_err = float((x.mean(0) - mean).norm())
    print(f"dps (1024 samples) mean error {dps_err:.3g} vs smc (1024 particles) {smc_mean_err:.3g}")
    assert dps_err > 3 * smc_mean_err


def _gmm_problem():
    weights = torch.tensor([0.5, 0.5], dtype=F64)
    means = torch.tensor([[-1.0, 0.5], [1.2, -0.3]], dtype=F64)
    covs = torch.stack([torch.tensor([[0.6, 0.2], [0.2, 0.5]], dtype=F64), 0.8 * torch.eye(2, dtype=F64)])
    prior = GMMPrior(weights, means, covs)
    a = torch.tensor([[0.8, 0.6]], dtype=F64)
    y = torch.tensor([[0.25]], dtype=F64)
    return prior, a, y, 0.3


@pytest.mark.parametrize("proposal", ["gaussian", "gradient"])
def test_smc_recovers_the_gmm_posterior_and_dps_keeps_its_bias(proposal):
    prior, a, y, sigma_y = _gmm_problem()
    pw, pm, pc = gmm_posterior(prior.weights, prior.means, prior.covs, a, y, sigma_y)
    mean, cov = mixture_moments(pw, pm, pc)
    reps, steps = 6, 50
    problem = Problem(y.expand(reps, -1), MatrixOperator(a), GaussianNoise(sigma_y))
    sizes, errors = [64, 256, 1024], []
    for n in sizes:
        r = SMC(particles=n, steps=steps, proposal=proposal).run(prior, problem,
                                                                  generator=torch.Generator().manual_seed(n))
        errors.append(_rmse_over_problems(r.extras["particles"], r.extras["weights"], mean, cov))
    smc_mean_err = _mean_error(r.extras["particles"], r.extras["weights"], mean)
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    # posterior weight of component 0 from the exact responsibilities of each particle
    draws, w = r.extras["particles"], r.extras["weights"]
    log0 = torch.distributions.MultivariateNormal(pm[0], pc[0]).log_prob(draws) + pw[0].log()
    log1 = torch.distributions.MultivariateNormal(pm[1], pc[1]).log_prob(draws) + pw[1].log()
    w0 = (w * torch.sigmoid(log0 - log1)).sum(0)  # (reps,)
    ess_final = torch.tensor([e for e in r.extras["diagnostics"]["ess"][-1]], dtype=F64)
    se = (pw[0] * pw[1] / ess_final).sqrt()
    z = ((w0 - pw[0]) / se).abs()
    x = DPS(steps=steps, clip=False).run(prior, Problem(y.expand(1024, -1), MatrixOperator(a), GaussianNoise(sigma_y)),
                                         generator=torch.Generator().manual_seed(2)).x
    dps_err = float((x.mean(0) - mean).norm())
    print(f"gmm, {proposal}: exact w0 {float(pw[0]):.4f}; smc w0 {w0.tolist()} (|z| max {float(z.max()):.2f}); smc rmse "
          f"{errors} slope {slope:.2f}; mean error: smc {smc_mean_err:.3g}, dps (1024 samples) {dps_err:.3g}")
    assert -0.8 < slope < -0.3
    assert float(z.max()) < 3.0
    assert dps_err > 3 * smc_mean_err


@pytest.mark.parametrize("proposal", ["gaussian", "gradient"])
def test_smc_particle_batch_does_not_change_the_result(proposal):
    fx = make_gaussian_fixture(torch.Generator().manual_seed(0), d=3, m=2, sigma_y=0.05)
    problem = Problem(fx.y, fx.operator, GaussianNoise(fx.sigma_y))
    r1 = SMC(particles=12, steps=10, proposal=proposal).run(fx.prior, problem, generator=torch.Generator().manual_seed(5))
    r2 = SMC(particles=12, steps=10, particle_batch=5, proposal=proposal).run(
        fx.prior, problem, generator=torch.Generator().manual_seed(5))
    # same draws, same arithmetic per particle; chunked batched matmuls may round differently
    torch.testing.assert_close(r1.extras["particles"], r2.extras["particles"], rtol=1e-9, atol=1e-12)
    assert r1.nfe == r2.nfe == 12 * 10  # one evaluation per particle and level
    assert r1.vjp == r2.vjp == (12 * 10 if proposal == "gradient" else 0)  # the Gaussian transition needs none


def _unit_gaussian_problem(kind: str):
    """A prior ``N(m, I)``, an operator with a fast SVD of each family and a measurement; ``(prior, A, y, σ_y)``."""
    import restore

    g = torch.Generator().manual_seed(4)
    if kind == "matrix":
        shape, op = (3,), MatrixOperator(torch.randn(2, 3, generator=g, dtype=F64) / 3**0.5)
    elif kind == "blur":  # circular: Fourier SVD with complex spectra
        shape, op = (1, 8, 8), restore.operator("gaussian-blur", sigma=0.8)
    elif kind == "reflect-blur":  # no fast SVD: the CG transition only
        shape, op = (1, 8, 8), restore.operator("gaussian-blur", sigma=0.8, boundary="reflect")
    else:  # a mask: diagonal SVD with null slots
        shape, op = (1, 8, 8), restore.operator("inpainting", mask=(torch.rand(8, 8, generator=g) > 0.4).double())
    d = math.prod(shape)
    prior = GaussianPrior((0.5 + 0.1 * torch.randn(d, generator=g, dtype=F64)).reshape(shape), torch.eye(d, dtype=F64))
    x = prior.mean.unsqueeze(0) + torch.randn((1,) + shape, generator=g, dtype=F64)
    sigma_y = 0.2
    y = op(x) + sigma_y * torch.randn(op(x).shape, generator=g, dtype=F64)
    return prior, op, y, sigma_y


@pytest.mark.parametrize("kind,solver", [("matrix", "svd"), ("blur", "svd"), ("mask", "svd"), ("matrix", "cg"),
                                         ("blur", "cg"), ("mask", "cg"), ("reflect-blur", "cg")])
def test_smc_gaussian_proposal_is_the_exact_transition_for_a_unit_gaussian_prior(kind, solver):
    # For N(m, I) in VP units the fixed-large chain is the exact reverse process, ΠGDM's twist is the exact
    # p(y | x_k) and the linearised proposal the exact p(x_j | x_k, y): every incremental weight is one, and
    # log Ẑ is log p(y) (only the first weight, x_T ~ N(0, I) against N(a_T m, I), and the last step's
    # deterministic Tweedie output depart from it, by amounts of order a_T and s_0). The CG transition
    # (Matheron's rule) draws the same law and gets the same weights and log Ẑ to its solver tolerance (its
    # log-determinants from the exact spectrum of A Aᵀ, computed for small measurements).
    prior, op, y, sigma_y = _unit_gaussian_problem(kind)
    n, steps = 64, 20
    r = SMC(particles=n, steps=steps, proposal="gaussian", tau2=1.0, gaussian_solver=solver, cg_tol=1e-10).run(
        prior, Problem(y, op, GaussianNoise(sigma_y)), generator=torch.Generator().manual_seed(0))  # τ² = prior var
    diag = r.extras["diagnostics"]
    ess_trace = [e[0] for e in diag["ess"]]
    assert diag["proposal"] == f"gaussian ({solver})" and r.vjp == 0
    assert diag["resampled_steps"] == []
    assert max(ess_trace[:-1]) - min(ess_trace[:-1]) < 1e-3 and min(ess_trace) > 0.99 * n, ess_trace
    flat = GaussianPrior(prior.mean.flatten(), prior.cov)  # the oracles take flat samples
    chain_mean, chain_cov = ddpm_chain_moments(flat, steps, variance="fixed-large")
    a = torch.func.jacrev(lambda v: op(v.reshape((1,) + prior.event_shape)).flatten())(
        torch.zeros(prior.mean.numel(), dtype=F64))  # the operator as a matrix
    mean, cov = GaussianPrior(chain_mean, chain_cov).posterior(a, y.reshape(1, -1), sigma_y)
    m, _ = weighted_moments(r.extras["particles"].reshape(n, 1, -1), r.extras["weights"])
    z = (m[0] - mean.flatten()) / (cov.diag().sqrt() / math.sqrt(n))
    assert float(z.abs().max()) < 4.5, z
    if solver == "cg":
        assert diag["cg_iterations"] > 0
    # exact log p(y) relative to N(y; ·, σ_y² I)'s normaliser (the likelihood's convention)
    cov_y = sigma_y**2 * torch.eye(a.shape[0], dtype=F64) + a @ a.T
    log_py = torch.distributions.MultivariateNormal(a @ prior.mean.flatten(), cov_y).log_prob(y.flatten())
    log_py = float(log_py) + a.shape[0] / 2 * math.log(2 * math.pi * sigma_y**2)
    print(f"{kind}: ESS {ess_trace[0]:.4f}..{ess_trace[-1]:.4f} of {n}; log Z {diag['log_z'][0]:.5f} exact {log_py:.5f}")
    assert abs(diag["log_z"][0] - log_py) < 0.01


def _circulant_natural_problem(gen_seed: int = 6):
    """A Gaussian prior whose covariance is the shipped stationary fit of natural images (circulant on 8×8,
    public units), a circular blur and a measurement drawn from the model; ``(prior, op, y, σ_y, v)`` with
    ``v`` the per-Fourier-slot variance."""
    import restore
    from restore.samplers.smc_gaussian import spectral_variance

    class _Unit:  # spectral_variance reads the channel layout and the prior's units from a view
        x_shape = (1, 1, 8, 8)
        prior = GaussianPrior(torch.zeros(1, 8, 8, dtype=F64), torch.eye(64, dtype=F64))

    op = restore.operator("gaussian-blur", sigma=0.8)
    v = spectral_variance(_Unit, op.svd((1, 1, 8, 8))).reshape(8, 8)
    basis = torch.eye(64, dtype=F64).reshape(64, 1, 8, 8)
    cov = torch.fft.ifft2(torch.fft.fft2(basis, norm="ortho") * v, norm="ortho").real.reshape(64, 64)
    prior = GaussianPrior(torch.full((1, 8, 8), 0.4, dtype=F64), (cov + cov.T) / 2)
    g = torch.Generator().manual_seed(gen_seed)
    sigma_y = 0.05
    x = prior.mean + (torch.linalg.cholesky(prior.cov) @ torch.randn(64, generator=g, dtype=F64)).reshape(1, 8, 8)
    y = op(x.unsqueeze(0)) + sigma_y * torch.randn(1, 1, 8, 8, generator=g, dtype=F64)
    return prior, op, y, sigma_y, v


def test_spectral_twist_is_the_exact_likelihood_of_a_stationary_prior():
    # For the prior N(m, Σ) with Σ the stationary fit, p(y | x_k) = N(y; A E[x0|x_k], σ_y² I + A Cov[x0|x_k] Aᵀ)
    # exactly; tau2=spectral's twist must equal it up to an x-independent constant, a scalar τ² must not.
    from restore.samplers.smc_gaussian import GaussianTransition

    prior, op, y, sigma_y, _ = _circulant_natural_problem()
    view = prior.bind(Problem(y, op, GaussianNoise(sigma_y)))
    a_mat = torch.func.jacrev(lambda u: op(u.reshape(1, 1, 8, 8)).flatten())(torch.zeros(64, dtype=F64))
    g = torch.Generator().manual_seed(1)
    for k in (900, 300, 40):
        a, s = view.coefficients(k)
        xs = a * prior.mean + torch.randn(2, 1, 8, 8, generator=g, dtype=F64)  # two states at level k
        x0 = view.predict(xs, k)[1]
        c = a * a * prior.cov + s * s * torch.eye(64, dtype=F64)
        post_cov = prior.cov - a * a * prior.cov @ torch.linalg.solve(c, prior.cov)
        exact = torch.distributions.MultivariateNormal(
            (a_mat @ x0.reshape(2, 64).T).T, sigma_y**2 * torch.eye(64, dtype=F64) + a_mat @ post_cov @ a_mat.T
        ).log_prob(y.reshape(1, 64))
        gaps = {}
        for tau2 in ("spectral", 0.12):
            twist = GaussianTransition(view, 2, tau2).log_twist(view, x0, k)
            gaps[tau2] = float((twist - exact - (twist - exact)[0]).abs().max())
        print(f"level {k}: |twist - exact log p(y|x_k)| up to a constant: spectral {gaps['spectral']:.2e}, "
              f"tau2=0.12 {gaps[0.12]:.2e}")
        assert gaps["spectral"] < 1e-8 * max(1.0, float(exact.abs().max()))
        assert gaps[0.12] > 1e3 * gaps["spectral"]


def test_smc_spectral_twist_targets_the_posterior_and_keeps_more_particles_alive():
    # The chain's fixed-large variance is not the stationary prior's reverse kernel, so weights are not one;
    # the weighted particles still target the chain's posterior (moments within Monte Carlo error), and the
    # twist matched to the spectrum keeps the ESS above the scalar τ² twist's.
    prior, op, y, sigma_y, _ = _circulant_natural_problem()
    problem = Problem(y, op, GaussianNoise(sigma_y))
    n, steps = 256, 20
    runs = {tau2: SMC(particles=n, steps=steps, tau2=tau2, ess_threshold=0.3).run(
        prior, problem, generator=torch.Generator().manual_seed(2)) for tau2 in ("spectral", 0.12)}
    flat = GaussianPrior(prior.mean.flatten(), prior.cov)
    chain_mean, chain_cov = ddpm_chain_moments(flat, steps, variance="fixed-large")
    a_mat = torch.func.jacrev(lambda u: op(u.reshape(1, 1, 8, 8)).flatten())(torch.zeros(64, dtype=F64))
    mean, cov = GaussianPrior(chain_mean, chain_cov).posterior(a_mat, y.reshape(1, -1), sigma_y)
    r = runs["spectral"]
    m, _ = weighted_moments(r.extras["particles"].reshape(n, 1, -1), r.extras["weights"])
    e = r.extras["diagnostics"]["ess"][-1][0]
    z = (m[0] - mean.flatten()) / (cov.diag().sqrt() / math.sqrt(e))
    med = {t: float(np.median([v[0] for v in rr.extras["diagnostics"]["ess"]])) for t, rr in runs.items()}
    print(f"median ESS of {n}: spectral {med['spectral']:.1f}, tau2=0.12 {med[0.12]:.1f}; max |z| {float(z.abs().max()):.2f}")
    assert float(z.abs().max()) < 4.5, z
    assert med["spectral"] > med[0.12]


def test_smc_spectral_twist_needs_a_circular_operator():
    import restore

    prior = GaussianPrior(torch.full((1, 8, 8), 0.5, dtype=F64), torch.eye(64, dtype=F64))
    op = restore.operator("inpainting", mask=torch.ones(8, 8, dtype=F64))
    problem = Problem(op(prior.mean.unsqueeze(0)), op, GaussianNoise(0.1))
    with pytest.raises(RestoreError, match="circular operator"):
        SMC(tau2="spectral", steps=3, particles=2).run(prior, problem)
    with pytest.raises(RestoreError, match="proposal=gaussian"):
        SMC(tau2="spectral", proposal="gradient")


def test_smc_unweighted_mode_keeps_every_particle():
    # weight_exponent=0 is the documented approximate mode: independent draws of the guided proposal
    fx = make_gaussian_fixture(torch.Generator().manual_seed(0), d=3, m=2, sigma_y=0.05)
    r = SMC(particles=8, steps=10, weight_exponent=0.0).run(fx.prior, Problem(fx.y, fx.operator, GaussianNoise(0.05)),
                                                            generator=torch.Generator().manual_seed(0))
    assert torch.allclose(r.extras["weights"], torch.full((8, 1), 1 / 8, dtype=F64))
    assert r.extras["diagnostics"]["resampled_steps"] == []


def test_smc_refuses_noiseless_measurements_and_bad_options():
    fx = make_gaussian_fixture(torch.Generator().manual_seed(0), d=3, m=2)
    with pytest.raises(RestoreError, match="noise level > 0"):
        SMC(steps=5).run(fx.prior, Problem(fx.y, fx.operator, GaussianNoise(0.0)))
    with pytest.raises(RestoreError, match="particles"):
        SMC(particles=0)
    with pytest.raises(RestoreError, match="weight_exponent"):
        SMC(weight_exponent=1.5)
    with pytest.raises(RestoreError, match="tau2"):
        SMC(proposal="gaussian", tau2=0.0)


def test_smc_gaussian_proposal_without_an_svd_uses_cg_or_names_the_alternative():
    import restore

    op = restore.operator("gaussian-blur", sigma=0.8, boundary="reflect")  # no fast SVD
    prior = GaussianPrior(torch.full((1, 8, 8), 0.5, dtype=F64), torch.eye(64, dtype=F64))
    problem = Problem(op(torch.full((1, 1, 8, 8), 0.5, dtype=F64)), op, GaussianNoise(0.1))
    with pytest.raises(RestoreError, match="proposal=gradient"):
        SMC(proposal="gaussian", gaussian_solver="svd", steps=3, particles=2).run(prior, problem)
    r = SMC(proposal="gaussian", steps=3, particles=2).run(prior, problem, generator=torch.Generator().manual_seed(0))
    assert r.extras["diagnostics"]["proposal"] == "gaussian (cg)" and r.vjp == 0
    r = SMC(steps=3, particles=2).run(prior, problem, generator=torch.Generator().manual_seed(0))  # auto
    assert r.extras["diagnostics"]["proposal"] == "gaussian (cg)" and r.vjp == 0
    r = SMC(steps=3, particles=2, gaussian_solver="svd").run(prior, problem, generator=torch.Generator().manual_seed(0))
    assert r.vjp == 2 * 3  # auto with the SVD solver only: the gradient proposal
    with pytest.raises(RestoreError, match="Fourier SVD"):
        SMC(tau2="spectral", gaussian_solver="cg")
    with pytest.raises(RestoreError, match="cg_iters"):
        SMC(cg_iters=0)


# -- Feynman–Kac correctors -----------------------------------------------------------------------------------
def _gmm_1d():
    return GMMPrior(torch.tensor([0.3, 0.7], dtype=F64), torch.tensor([[-1.0], [1.0]], dtype=F64),
                    torch.tensor([[[0.5]], [[0.3]]], dtype=F64))


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_fkc_annealing_matches_the_tempered_mixture(beta):
    prior = _gmm_1d()

    def log_p(g):
        comps = [torch.log(w) + torch.distributions.Normal(m[0], c[0, 0].sqrt()).log_prob(g[:, 0])
                 for w, m, c in zip(prior.weights, prior.means, prior.covs)]
        return torch.logsumexp(torch.stack(comps), 0)

    mean, cov = tempered_moments(log_p, beta, -8.0, 8.0, 8001)
    r = FKC(mode="anneal", beta=beta, particles=4000, steps=100).run(prior, shape=(1, 1),
                                                                      generator=torch.Generator().manual_seed(0))
    m, s = weighted_moments(r.extras["particles"], r.extras["weights"])
    e = r.extras["diagnostics"]["ess"][-1][0]
    sd = float(cov.sqrt())
    se_m, se_s = sd / math.sqrt(e), sd / math.sqrt(2 * e)
    print(f"beta {beta}: exact mean {float(mean):.4f} sd {sd:.4f}; fkc {float(m):.4f} {float(s):.4f}; ESS {e}")
    assert abs(float(m) - float(mean)) < 4.5 * se_m
    assert abs(float(s) - sd) < 4.5 * se_s
    assert math.isfinite(r.extras["diagnostics"]["log_z"][0])


def test_fkc_product_of_experts_matches_the_closed_form_product():
    p1 = _gmm_1d()
    p2 = GaussianPrior(torch.tensor([0.5], dtype=F64), torch.tensor([[0.8]], dtype=F64))
    w, m, c = gmm_product(p1.weights, p1.means, p1.covs, torch.ones(1, dtype=F64), p2.mean.reshape(1, 1),
                          p2.cov.reshape(1, 1, 1))
    mean, cov = mixture_moments(w, m, c)
    r = FKC(mode="product", particles=4000, steps=100, other_prior=p2).run(
        p1, shape=(1, 1), generator=torch.Generator().manual_seed(1))
    mm, ss = weighted_moments(r.extras["particles"], r.extras["weights"])
    e = r.extras["diagnostics"]["ess"][-1][0]
    sd = float(cov.sqrt())
    print(f"product: exact {float(mean):.4f} {sd:.4f}; fkc {float(mm):.4f} {float(ss):.4f}; ESS {e}")
    assert abs(float(mm) - float(mean)) < 4.5 * sd / math.sqrt(e)
    assert abs(float(ss) - sd) < 4.5 * sd / math.sqrt(2 * e)
    assert r.nfe == 2 * 4000 * 100  # two priors, one evaluation per particle and step


def test_fkc_with_a_measurement_converges_to_the_posterior_like_one_over_sqrt_n():
    # β = 1: the Feynman–Kac increment vanishes and the target is the posterior of the prior the DDPM chain
    # samples (a Gaussian, in closed form); the measurement enters through the twist and the exact likelihood
    fx = make_gaussian_fixture(torch.Generator().manual_seed(3), d=3, m=2, sigma_y=0.2, scale=0.5)
    steps, reps = 20, 16
    chain_mean, chain_cov = ddpm_chain_moments(fx.prior, steps, variance="fixed-large")
    mean, cov = GaussianPrior(chain_mean, chain_cov).posterior(fx.matrix, fx.y, fx.sigma_y)
    problem = Problem(fx.batch_y(reps), fx.operator, GaussianNoise(fx.sigma_y))
    sizes, errors = [64, 256, 1024], []
    for n in sizes:
        r = FKC(mode="anneal", beta=1.0, particles=n, steps=steps).run(fx.prior, problem,
                                                                       generator=torch.Generator().manual_seed(n))
        errors.append(_rmse_over_problems(r.extras["particles"], r.extras["weights"], mean, cov))
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    print(f"fkc with y: errors {errors} slope {slope:.2f}; vjp {r.vjp}")
    assert -0.8 < slope < -0.3
    assert r.vjp == 1024 * steps  # one VJP per particle and level, as smc counts it


def test_fkc_product_of_experts_posterior_matches_the_closed_form():
    # target ∝ p1(x) p2(x) N(y; A x, σ_y²) with two Gaussian experts: a Gaussian in closed form
    c1 = torch.tensor([[0.6, 0.2], [0.2, 0.5]], dtype=F64)
    c2 = torch.tensor([[0.8, -0.1], [-0.1, 0.4]], dtype=F64)
    p1 = GaussianPrior(torch.tensor([0.3, -0.2], dtype=F64), c1)
    p2 = GaussianPrior(torch.tensor([-0.4, 0.5], dtype=F64), c2)
    prec = torch.linalg.inv(c1) + torch.linalg.inv(c2)
    prod_cov = torch.linalg.inv(prec)
    prod_mean = prod_cov @ (torch.linalg.solve(c1, p1.mean) + torch.linalg.solve(c2, p2.mean))
    a, y, sigma_y = torch.tensor([[0.8, 0.6]], dtype=F64), torch.tensor([[0.9]], dtype=F64), 0.3
    mean, cov = GaussianPrior(prod_mean, prod_cov).posterior(a, y, sigma_y)
    n, reps = 1000, 8
    r = FKC(mode="product", particles=n, steps=100, other_prior=p2).run(
        p1, Problem(y.expand(reps, -1), MatrixOperator(a), GaussianNoise(sigma_y)),
        generator=torch.Generator().manual_seed(4))
    m, sd = weighted_moments(r.extras["particles"], r.extras["weights"])  # (reps, 2): independent SMC runs
    # resampling correlates particles, so the final ESS understates the error: use the spread across runs
    z_m = (m.mean(0) - mean.flatten()) / (m.std(0) / math.sqrt(reps))
    z_s = (sd.mean(0) - cov.diag().sqrt()) / (sd.std(0) / math.sqrt(reps))
    prior_gap = float((prod_mean - mean.flatten()).norm())
    print(f"fkc product with y: exact mean {mean.flatten().tolist()} sd {cov.diag().sqrt().tolist()}; fkc "
          f"{m.mean(0).tolist()} {sd.mean(0).tolist()}; |z| {z_m.abs().max():.2f}, {z_s.abs().max():.2f}; "
          f"prior-to-posterior mean gap {prior_gap:.2f}")
    assert float(z_m.abs().max()) < 4.5 and float(z_s.abs().max()) < 4.5


# -- Denoising MCMC -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["langevin", "hmc"])
def test_dmcmc_on_the_gaussian_prior_has_the_prior_as_stationary_law(kernel):
    fx = make_gaussian_fixture(torch.Generator().manual_seed(2), d=3, m=2, scale=0.5)
    prior, n = fx.prior, 3000
    r = DMCMC(mcmc=kernel, mcmc_steps=150, reverse_steps=40).run(
        prior, shape=(n, 3), generator=torch.Generator().manual_seed(0))
    x = r.x
    sd = prior.cov.diag().sqrt()
    z_mean = ((x.mean(0) - prior.mean) / (sd / math.sqrt(n))).abs()
    z_var = ((x.var(0) - sd**2) / (sd**2 * math.sqrt(2 / (n - 1)))).abs()
    levels = torch.tensor(r.extras["diagnostics"]["levels"])
    print(f"{kernel}: |z| of means {z_mean.tolist()}, of variances {z_var.tolist()}; levels "
          f"{int(levels.min())}..{int(levels.max())}")
    assert float(z_mean.max()) < 4.5 and float(z_var.max()) < 4.5
    assert int(levels.min()) < int(levels.max())  # the noise level moves


def test_dmcmc_posterior_moves_towards_the_measurement():
    fx = make_gaussian_fixture(torch.Generator().manual_seed(2), d=3, m=2, scale=0.5, sigma_y=0.1)
    problem = Problem(fx.batch_y(500), fx.operator, GaussianNoise(fx.sigma_y))
    x = DMCMC(mcmc_steps=60, reverse_steps=20).run(fx.prior, problem, generator=torch.Generator().manual_seed(0)).x
    prior_gap = float((fx.prior.mean - fx.post_mean).norm())
    assert float((x.mean(0) - fx.post_mean).norm()) < 0.5 * prior_gap


# -- the run plan and the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["smc", "fkc"])
def test_particle_samplers_on_the_shipped_prior_record_finite_diagnostics(tmp_path, sampler):
    import json

    from restore.io import Image, write
    from restore.tasks import RunSettings, run_task

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    write(str(tmp_path / "in.png"), Image((0.2 + 0.6 * xx * yy).reshape(1, 1, 16, 16), {}))
    settings = RunSettings(sampler=sampler, steps=4, samples=3, simulate=True, save_config=True, device="cpu")
    report = run_task("deblur", str(tmp_path / "in.png"), str(tmp_path / "out.png"), settings,
                      {"kernel": "gaussian:1.0"})
    cfg = json.loads((tmp_path / "out.png.config.json").read_text())
    diag = cfg["diagnostics"][0]
    assert cfg["sampler_config"]["particles"] == 3 and diag["particles"] == 3
    assert len(diag["ess"]) == 4 and all(1 - 1e-9 <= e[0] <= 3 + 1e-9 for e in diag["ess"])
    assert all(math.isfinite(v) for v in diag["log_z"])
    assert (tmp_path / "out_std.png").exists() and report.nfe == 3 * 4


def test_cli_smc_gaussian_proposal_on_the_default_valid_blur(tmp_path, capsys):
    # the deblur task's default boundary has no fast SVD: --set proposal=gaussian runs the CG transition
    import json

    from restore.cli import main
    from restore.io import Image, write

    src = tmp_path / "in.png"
    write(str(src), Image(torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))))
    out = tmp_path / "out.png"
    code = main(["deblur", str(src), "-o", str(out), "--sampler", "smc", "--set", "proposal=gaussian",
                 "--samples", "3", "--steps", "4", "--noise", "0.05", "--prior", "stationary-gaussian",
                 "--save-config", "-q"])
    assert code == 0, capsys.readouterr().err
    config = json.loads((tmp_path / "out.png.config.json").read_text())
    (diagnostics,) = config["diagnostics"]
    assert diagnostics["proposal"] == "gaussian (cg)" and math.isfinite(diagnostics["log_z"][0])
    assert (tmp_path / "out_std.png").exists()


def test_smc_cg_transition_reports_no_log_z_above_the_exact_spectrum_size(monkeypatch):
    import restore
    from restore.samplers import smc_gaussian

    monkeypatch.setattr(smc_gaussian, "EXACT_LOGDET_ENTRIES", 10)  # the 8×8 measurement is then "large"
    prior, op, y, sigma_y = _unit_gaussian_problem("reflect-blur")
    r = SMC(particles=8, steps=20, tau2=1.0).run(prior, Problem(y, op, GaussianNoise(sigma_y)),
                                                generator=torch.Generator().manual_seed(0))
    diag = r.extras["diagnostics"]
    assert diag["proposal"] == "gaussian (cg)" and diag["log_z"] is None
    assert min(e[0] for e in diag["ess"][:-1]) > 0.99 * 8  # the weights do not need the log-determinants
    assert restore.sampler("smc").config.proposal == "auto"


def test_collapse_note_reads_the_worst_problems_median_ess():
    from restore.samplers.particles import collapse_note

    healthy = {"particles": 16, "ess": [[16.0, 15.0], [12.0, 9.0], [16.0, 16.0]]}
    # the last step's ESS is high, as after a final resampling onto copies of one particle
    collapsed = {"particles": 16, "ess": [[16.0, 1.1], [12.0, 1.3], [16.0, 16.0]]}
    assert collapse_note([healthy], True) is None
    note = collapse_note([healthy, collapsed], True)
    assert "1.3 of 16" in note and "weight_exponent=0" in note
    assert "weight_exponent" not in collapse_note([collapsed], False)
    assert collapse_note([{"particles": 1, "ess": [[1.0]]}], True) is None  # one particle is no collapse


def test_cli_notes_a_collapsed_particle_run_and_not_an_unweighted_one(tmp_path, capsys):
    from restore.cli import main
    from restore.io import Image, write

    src = tmp_path / "in.png"
    write(str(src), Image(torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))))
    # a gradient proposal against a nearly noiseless measurement: the exact weights fall on one particle
    common = ["deblur", str(src), "--sampler", "smc", "--set", "proposal=gradient", "--samples", "8", "--steps", "4",
              "--noise", "0.001", "--prior", "stationary-gaussian", "-q"]
    assert main(common + ["-o", str(tmp_path / "exact.png")]) == 0
    err = capsys.readouterr().err
    assert "note: the particle weights collapsed" in err and "of 8" in err
    assert main(common + ["-o", str(tmp_path / "draws.png"), "--set", "weight_exponent=0"]) == 0
    assert "collapsed" not in capsys.readouterr().err


def test_solve_warns_when_the_particle_weights_collapsed():
    import warnings

    import restore

    y = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    op = restore.operator("gaussian-blur", sigma=1.5)
    with pytest.warns(UserWarning, match=r"collapsed .* of 8 .*particles=N\) or weight_exponent=0"):
        restore.solve(op(y), op, prior="stationary-gaussian", sampler="smc", steps=4, noise_sigma=0.001,
                      particles=8, proposal="gradient")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the unweighted draws never collapse
        restore.solve(op(y), op, prior="stationary-gaussian", sampler="smc", steps=4, noise_sigma=0.001,
                      particles=8, proposal="gradient", weight_exponent=0.0)

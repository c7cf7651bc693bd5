"""Heavy-ball / GHVB momentum as the base step inside DDS and CODE (float64 analytic priors): β = 1 is the
plain sampler, and the DDS form is the momentum DDIM step from the data-consistent state."""
from __future__ import annotations

import pytest
import torch

import restore
from restore.errors import InvalidInputError
from restore.operators import GaussianNoise, Identity
from restore.samplers.code import CODE
from restore.samplers.dds import DDS
from restore.samplers.momentum import Velocity, ddim_momentum_step


def _dds_problem(gaussian_problem, sigma=0.05):
    prior, op, _, y = gaussian_problem
    return prior, restore.Problem(y.expand(6, -1).clone(), op, GaussianNoise(sigma))


@pytest.mark.parametrize("renoise", ["code", "paper"])
def test_dds_with_hb_beta_one_is_plain_dds(gaussian_problem, renoise):
    prior, problem = _dds_problem(gaussian_problem)
    runs = [DDS(steps=15, renoise=renoise, **kw).run(prior, problem, generator=torch.Generator().manual_seed(0)).x
            for kw in ({}, {"momentum": "hb", "beta": 1.0})]
    # the momentum path rewrites the noise direction as (σ̄_k ε + (σ̄_j - σ̄_k) ε) / σ̄_j: equal up to rounding
    assert float((runs[0] - runs[1]).abs().max()) < 1e-12
    plain_pp, hb_pp = (DDS(steps=15, step="dpm-solver++", **kw).run(prior, problem,
                                                                    generator=torch.Generator().manual_seed(0)).x
                       for kw in ({}, {"momentum": "hb", "beta": 1.0}))
    assert float((plain_pp - hb_pp).abs().max()) < 1e-12


@pytest.mark.parametrize("kind", ["hb", "ghvb"])
def test_dds_momentum_is_the_momentum_ddim_step_from_the_data_consistent_state(gaussian_problem, kind):
    """With η = 0, each DDS step is the momentum DDIM step (HB: the velocity; GHVB: its Adams–Bashforth mix)
    started at ``a_k x̃ + s_k ε̂``, the state whose Tweedie estimate is the data-consistent x̃."""
    prior, problem = _dds_problem(gaussian_problem)
    dds = DDS(steps=12, eta=0.0, momentum=kind, beta=0.6)
    x_start = torch.randn(problem.x_shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = dds.run(prior, problem, x_init=x_start.clone()).x
    view, sched, velocity = prior.bind(problem), prior.schedule, Velocity(kind, 0.6)
    x = x_start.clone()
    for k, j in sched.pairs(12, "uniform"):
        eps, x0 = view.predict(x, k)
        x_tilde = dds.data_step(view, x0, k)
        if j <= 0:
            x = x_tilde
            continue
        a_k, s_k = view.coefficients(k)
        x = ddim_momentum_step(sched, a_k * x_tilde + s_k * eps, velocity(eps), k, j)
    # two orderings of the same float64 arithmetic
    assert float((view.result(x) - out).abs().max()) < 1e-12


def _code_case():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    prior = restore.prior("gaussian", mean=torch.tensor([0.4, -0.3, 0.2, 0.1], dtype=torch.float64),
                          cov=A @ A.T / 4 + 0.1 * torch.eye(4, dtype=torch.float64))
    y = 0.5 + 0.2 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    return prior, restore.Problem(y, Identity(), GaussianNoise(0.0))


def test_code_with_hb_beta_one_is_plain_code():
    prior, problem = _code_case()
    opts = dict(steps=30, strength=0.6, langevin_steps=8, annealing=2, n_levels=2, min_level=5)
    runs = [CODE(**opts, **kw).run(prior, problem, generator=torch.Generator().manual_seed(0)).x
            for kw in ({}, {"momentum": "hb", "beta": 1.0})]
    # x_j = a_j (x_k / a_k + (σ̄_j - σ̄_k) ε) is a_j x0̂ + s_j ε rearranged: equal up to rounding
    assert float((runs[0] - runs[1]).abs().max()) < 1e-12
    damped = CODE(**opts, momentum="ghvb", beta=0.8).run(prior, problem, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(damped.x).all() and float((damped.x - runs[0]).abs().max()) > 1e-6


def test_momentum_option_errors_on_guided_samplers():
    with pytest.raises(InvalidInputError, match="β"):
        DDS(momentum="hb", beta=0.0)
    with pytest.raises(InvalidInputError, match="does not apply"):
        DDS(momentum="ghvb", step="dpm-solver++")
    with pytest.raises(InvalidInputError, match="does not apply"):
        DDS(momentum="hb", step="sde-dpm-solver++")
    with pytest.raises(InvalidInputError, match="β"):
        CODE(momentum="ghvb", beta=2.0)

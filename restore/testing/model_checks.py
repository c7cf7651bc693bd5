"""Contract checks for priors, samplers and readers/writers (operators: :mod:`restore.testing.checks`).

Like the operator checks, each raises :class:`~restore.testing.checks.ContractError` with a one-line
message naming the measured error, and returns the measured error when it passes.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import torch

from ..operators.noise import GaussianNoise
from ..priors.base import DiffusionPrior
from ..priors.schedules import VPSchedule
from ..problem import Problem
from ..samplers.base import Result, Sampler
from .checks import ContractError, _fail_if, _rel
from .fixtures import GaussianFixture


# -- priors ---------------------------------------------------------------------------------------------
def check_schedule(schedule: VPSchedule, steps: Sequence[int] = (1, 10, 50)) -> None:
    """``abar`` decreases strictly from ``abar_{-1} = 1`` inside (0, 1], ``a² + s² = 1``, and respaced
    timesteps are unique, descending, in ``[0, T)`` with the last transition landing on clean (``-1``)."""
    T = schedule.T
    k = torch.arange(-1, T)
    abar = schedule.abar(k)
    if float(abar[0]) != 1.0:
        raise ContractError(f"schedule: abar at the clean level k=-1 is {float(abar[0])}, expected 1")
    if not bool(((abar[1:] > 0) & (abar[1:] <= 1)).all()):
        raise ContractError(f"schedule: abar leaves (0, 1]: min {float(abar.min()):.3g}, max {float(abar.max()):.3g}")
    steps_up = abar[1:] - abar[:-1]
    if not bool((steps_up < 0).all()):
        bad = int(torch.nonzero(steps_up >= 0)[0]) - 1
        raise ContractError(f"schedule: abar does not decrease strictly at level k={bad}")
    _fail_if(float((schedule.a(k) ** 2 + schedule.s(k) ** 2 - 1).abs().max()), 1e-12, "schedule: a² + s² != 1")
    for n in steps:
        if n > T:
            continue
        ts = schedule.timesteps(n)
        if len(ts) != n or ts != sorted(set(ts), reverse=True) or not (0 <= min(ts) and max(ts) < T):
            raise ContractError(f"schedule: timesteps({n}) = {ts[:6]}… are not {n} unique descending levels in [0, {T})")
        pairs = schedule.pairs(n)
        if pairs[-1][1] != -1 or any(j >= k for k, j in pairs):
            raise ContractError(f"schedule: pairs({n}) must step down and end at the clean level -1, got {pairs[-3:]}")


def _noisy_inputs(prior: DiffusionPrior, x_shape: Sequence[int], generator: torch.Generator, k: int,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, x_k)`` in model space: ``x0`` from uniform [0, 1] images, ``x_k = a_k x0 + s_k eps``."""
    x0 = prior.to_model(torch.rand(tuple(x_shape), generator=generator, dtype=dtype))
    eps = torch.randn(tuple(x_shape), generator=generator, dtype=dtype)
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    return x0.to(prior.device), (a * x0 + s * eps).to(prior.device)


def default_levels(prior: DiffusionPrior) -> list[int]:
    """Low, middle and high noise levels of the prior's schedule."""
    T = prior.schedule.T
    return sorted({0, T // 10, T // 2, T - 1})


def check_prediction_consistency(prior: DiffusionPrior, x_shape: Sequence[int], generator: torch.Generator,
                                 levels: Sequence[int] | None = None, dtype: torch.dtype = torch.float32,
                                 tol: float = 1e-4) -> float:
    """eps / x0 / v / score predictions describe one denoiser (Tweedie): ``x_k = a x0̂ + s epŝ``,
    ``score = -epŝ / s`` and ``v = a epŝ - s x0̂``, with finite ``x``-shaped outputs."""
    worst = 0.0
    with torch.no_grad():
        for k in levels or default_levels(prior):
            _, x = _noisy_inputs(prior, x_shape, generator, k, dtype)
            a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
            eps, x0, v, score = prior.eps(x, k), prior.x0(x, k), prior.v(x, k), prior.score(x, k)
            for name, out in (("eps", eps), ("x0", x0), ("v", v), ("score", score)):
                if tuple(out.shape) != tuple(x.shape):
                    raise ContractError(f"prior.{name} returns shape {tuple(out.shape)} for input {tuple(x.shape)}")
                if not bool(torch.isfinite(out).all()):
                    raise ContractError(f"prior.{name} returns non-finite values at level k={k}")
            worst = max(
                worst,
                _fail_if(_rel(a * x0 + s * eps, x), tol, f"Tweedie mismatch at k={k}: a·x0̂ + s·epŝ != x_k"),
                _fail_if(_rel(score, -eps / s), tol, f"score mismatch at k={k}: score != -epŝ/s"),
                _fail_if(_rel(v, a * eps - s * x0), tol, f"v mismatch at k={k}: v != a·epŝ - s·x0̂"),
            )
    return worst


def check_prior_determinism(prior: DiffusionPrior, x_shape: Sequence[int], generator: torch.Generator,
                            dtype: torch.dtype = torch.float32, tol: float = 1e-5,
                            sample: Callable[[torch.Generator], torch.Tensor] | None = None) -> float:
    """Predictions are deterministic (no dropout left on) and batch-independent; ``sample(generator)``
    (the prior's own sampler, when given) repeats with the same seed."""
    k = prior.schedule.T // 2
    _, x = _noisy_inputs(prior, x_shape, generator, k, dtype)
    with torch.no_grad():
        first, second = prior.eps(x, k), prior.eps(x, k)
        worst = _fail_if(_rel(second, first), tol, "prior.eps is not deterministic (call .eval()?)")
        if x.shape[0] > 1:
            singles = torch.cat([prior.eps(x[i: i + 1], k) for i in range(x.shape[0])])
            worst = max(worst, _fail_if(_rel(singles, first), tol,
                                        "prior.eps mixes batch samples (batch-norm in training mode?)"))
    if sample is not None:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        if not torch.equal(sample(torch.Generator().manual_seed(seed)), sample(torch.Generator().manual_seed(seed))):
            raise ContractError("the prior's sampler gives different draws for the same seed")
    return worst


def check_range_mapping(prior: DiffusionPrior, tol: float = 1e-6) -> float:
    """``to_model`` maps [0, 1] onto ``data_range`` and ``from_model`` inverts it."""
    lo, hi = prior.data_range
    u = torch.linspace(0, 1, 11, dtype=torch.float64)
    mapped = prior.to_model(u)
    error = max(abs(float(mapped[0]) - lo), abs(float(mapped[-1]) - hi)) / max(abs(hi - lo), 1e-12)
    _fail_if(error, tol, f"to_model(0..1) does not span data_range {prior.data_range}")
    return max(error, _fail_if(_rel(prior.from_model(mapped), u), tol, "from_model(to_model(u)) != u"))


def check_denoising(prior: DiffusionPrior, clean: torch.Tensor, generator: torch.Generator,
                    levels: Sequence[int] | None = None, margin: float = 1.0) -> float:
    """On clean images from the prior's domain (public [0, 1] units, ``(B, C, H, W)``), the Tweedie
    denoiser beats the trivial estimate ``x_k / a_k``: ``MSE(x0̂) < margin · MSE(x_k / a_k)`` at each level.

    Returns:
        The worst ratio ``MSE(x0̂) / MSE(x_k / a_k)``.
    """
    x0 = prior.to_model(clean.to(prior.device))
    worst = 0.0
    with torch.no_grad():
        for k in levels or default_levels(prior):
            a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
            eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            x = a * x0 + s * eps
            ratio = float(((prior.x0(x, k) - x0) ** 2).mean() / ((x / a - x0) ** 2).mean())
            if not ratio < margin:
                raise ContractError(f"denoiser worse than doing nothing at k={k}: MSE ratio {ratio:.3g} >= "
                                    f"{margin:g} (x0̂ vs. x_k/a_k)")
            worst = max(worst, ratio)
    return worst


# -- mean-reverting priors ------------------------------------------------------------------------------
def check_mr_schedule(schedule) -> None:
    """``α_t`` decreases from ``α_0 = 1`` and ``σ̄_t² = λ²(1 - α_t²)`` (the IR-SDE stationary variance λ²)."""
    t = torch.arange(0, schedule.T + 1, dtype=torch.float64)
    alpha, sb = schedule.alpha(t), schedule.sigma_bar(t)
    if abs(float(alpha[0]) - 1) > 1e-12 or not bool((alpha[1:] < alpha[:-1]).all()):
        raise ContractError("mean-reverting schedule: alpha must start at 1 and decrease strictly")
    _fail_if(float((sb**2 - schedule.lam**2 * (1 - alpha**2)).abs().max()), 1e-12,
             "mean-reverting schedule: sigma_bar² != lambda²(1 - alpha²)")


def _mr_inputs(prior, x_shape, generator, t, dtype):
    x0 = torch.rand(tuple(x_shape), generator=generator, dtype=dtype)
    mu = torch.rand(tuple(x_shape), generator=generator, dtype=dtype)
    noise = torch.randn(tuple(x_shape), generator=generator, dtype=dtype)
    return mu.to(prior.device), prior.schedule.marginal(x0, mu, t, noise).to(prior.device)


def check_mr_prediction_consistency(prior, x_shape: Sequence[int], generator: torch.Generator,
                                    dtype: torch.dtype = torch.float32, tol: float = 1e-4) -> float:
    """Through the bound view: ``x_t = μ + α_t (x0̂ - μ) + σ̄_t epŝ`` and ``score = -epŝ / σ̄_t``, finite and
    ``x``-shaped, at low, middle and high times."""
    from ..operators.base import Identity

    worst = 0.0
    T = prior.schedule.T
    with torch.no_grad():
        for t in sorted({1, T // 10 or 1, T // 2, T}):
            mu, x = _mr_inputs(prior, x_shape, generator, t, dtype)
            view = prior.bind(Problem(mu, Identity()))
            eps, x0 = view.predict(x, t)
            a, s = view.coefficients(t)
            for name, out in (("eps", eps), ("x0", x0)):
                if tuple(out.shape) != tuple(x.shape) or not bool(torch.isfinite(out).all()):
                    raise ContractError(f"mean-reverting {name} at t={t}: shape {tuple(out.shape)} or non-finite values")
            worst = max(worst,
                        _fail_if(_rel(view.mu + a * (x0 - view.mu) + s * eps, x), tol,
                                 f"mean-reverting Tweedie mismatch at t={t}: mu + a(x0̂ - mu) + s·epŝ != x_t"),
                        _fail_if(_rel(prior.score(x, t, view.mu), -eps / s), tol, f"score mismatch at t={t}"))
    return worst


def check_mr_determinism(prior, x_shape: Sequence[int], generator: torch.Generator,
                         dtype: torch.dtype = torch.float32, tol: float = 1e-5) -> float:
    """Mean-reverting predictions are deterministic and batch-independent."""
    t = prior.schedule.T // 2
    mu, x = _mr_inputs(prior, x_shape, generator, t, dtype)
    with torch.no_grad():
        first, second = prior.eps(x, t, mu), prior.eps(x, t, mu)
        worst = _fail_if(_rel(second, first), tol, "prior.eps is not deterministic (call .eval()?)")
        if x.shape[0] > 1:
            singles = torch.cat([prior.eps(x[i: i + 1], t, mu[i: i + 1]) for i in range(x.shape[0])])
            worst = max(worst, _fail_if(_rel(singles, first), tol, "prior.eps mixes batch samples"))
    return worst


def mr_fixture_prior():
    """The analytic mean-reverting fixture ``x0 ~ N(0.6, 0.15²)`` (independent of ``μ``), float64."""
    from ..priors.mean_reverting import MeanRevertingGaussianPrior

    return MeanRevertingGaussianPrior(m0=0.6, s0=0.15, T=100, max_sigma=50)


def check_mr_moments(make_sampler: Callable[[], Sampler], n: int = 2000, seed: int = 0,
                     bias: float = 0.1) -> tuple[float, float]:
    """From ``μ = 0.2`` the samples reproduce the fixture's ``N(m0, s0²)``: mean within ``4 s0/√n + bias·s0``,
    standard deviation within ``4·s0/√(2n) + bias·s0``. Returns ``(mean_error, std_error)`` in units of ``s0``."""
    from ..operators.base import Identity

    prior = mr_fixture_prior()
    mu = torch.full((n, 1, 1, 1), 0.2, dtype=torch.float64)
    x = run_sampler(make_sampler(), prior, Problem(mu, Identity()), None, seed).x
    mean_err = abs(float(x.mean()) - float(prior.m0)) / prior.s0
    std_err = abs(float(x.std()) - prior.s0) / prior.s0
    _fail_if(mean_err, 4 / n**0.5 + bias, "mean-reverting samples' mean off m0 (in s0 units)")
    _fail_if(std_err, 4 / (2 * n) ** 0.5 + bias, "mean-reverting samples' std off s0 (relative)")
    return mean_err, std_err


# -- samplers -------------------------------------------------------------------------------------------
def run_sampler(sampler: Sampler, prior: DiffusionPrior, problem: Problem | None, shape: Sequence[int] | None,
                seed: int) -> Result:
    return sampler.run(prior, problem, shape=None if problem is not None else tuple(shape),
                       generator=torch.Generator().manual_seed(seed))


def check_sampler_basics(make_sampler: Callable[[], Sampler], prior: DiffusionPrior, problem: Problem | None,
                         shape: Sequence[int], seed: int = 0) -> Result:
    """Output shape and dtype, finite values, NFE counted, same seed -> same output, new seed -> new output."""
    first = run_sampler(make_sampler(), prior, problem, shape, seed)
    if not isinstance(first, Result):
        raise ContractError(f"sampler.run must return restore.Result, got {type(first).__name__}")
    expected = tuple(problem.x_shape) if problem is not None else tuple(shape)
    if tuple(first.x.shape) != expected:
        raise ContractError(f"sampler output has shape {tuple(first.x.shape)}, expected {expected}")
    dtype = problem.y.real.dtype if problem is not None else torch.float64  # the fixtures are float64
    if first.x.real.dtype != dtype:
        raise ContractError(f"sampler output is {first.x.dtype}, expected {dtype} (the measurement's/prior's precision)")
    if not bool(torch.isfinite(first.x).all()):
        raise ContractError("sampler output contains non-finite values")
    if first.nfe < 1:
        raise ContractError(f"sampler reports nfe={first.nfe}; call the network through view.predict / view.eps")
    again = run_sampler(make_sampler(), prior, problem, shape, seed)
    diff = _rel(again.x, first.x)
    _fail_if(diff, 0.0, "same seed, different output")
    other = run_sampler(make_sampler(), prior, problem, shape, seed + 1)
    if torch.equal(other.x, first.x):
        raise ContractError("a different seed gives the identical output; draw all noise from the generator")
    return first


def check_unconditional_moments(make_sampler: Callable[[], Sampler], fixture: GaussianFixture, n: int = 4000,
                                seed: int = 0, bias: float = 0.1) -> tuple[float, float]:
    """Unconditional samples of the Gaussian fixture's prior reproduce its mean and covariance.

    Errors are measured in units of the prior's standard deviation: the mean error per coordinate must be
    below ``4/√n + bias`` and the relative Frobenius error of the covariance below ``4·√(2/n) + 2·bias``
    (``bias`` allows the discretisation error of a few-step sampler).

    Returns:
        ``(mean_error, cov_error)``.
    """
    prior = fixture.prior
    x = run_sampler(make_sampler(), prior, None, (n, fixture.d), seed).x
    std = prior.cov.diagonal().sqrt()
    mean_err = float(((x.mean(0) - prior.mean) / std).abs().max())
    _fail_if(mean_err, 4 / n**0.5 + bias, "unconditional mean off the prior mean (in prior std units)")
    cov_err = _rel(torch.cov(x.T), prior.cov)
    _fail_if(cov_err, 4 * (2 / n) ** 0.5 + 2 * bias, "unconditional covariance off the prior covariance")
    return mean_err, cov_err


def check_posterior_shift(make_sampler: Callable[[], Sampler], fixture: GaussianFixture, n: int = 1000,
                          seed: int = 0, factor: float = 0.8) -> float:
    """With a linear measurement of the Gaussian fixture, the samples' mean moves from the prior mean
    toward the exact posterior mean: ``||E[x] - μ_post|| <= factor · ||m - μ_post||``.

    Returns:
        The ratio ``||E[x] - μ_post|| / ||m - μ_post||``.
    """
    problem = Problem(fixture.batch_y(n), fixture.operator, GaussianNoise(fixture.sigma_y))
    x = run_sampler(make_sampler(), fixture.prior, problem, None, seed).x
    ratio = float((x.mean(0) - fixture.post_mean).norm() / (fixture.prior.mean - fixture.post_mean).norm())
    if not ratio <= factor:
        raise ContractError(f"posterior mean not approached: ||E[x] - mu_post|| / ||m - mu_post|| = {ratio:.3g} "
                            f"> {factor:g}")
    return ratio


# -- readers and writers --------------------------------------------------------------------------------
def check_io_roundtrip(path: str | os.PathLike, data: torch.Tensor, tol: float = 0.0,
                       meta: dict | None = None) -> float:
    """Write ``data`` (``(B, C, H, W)`` in [0, 1]) to ``path`` through the registry (atomically), read it
    back, and compare: same shape, ``max |read - written| <= tol``, no partial files left behind.

    Returns:
        The measured maximum absolute error.
    """
    from ..io import read, write

    path = os.fspath(path)
    write(path, data, meta=meta)
    folder = os.path.dirname(os.path.abspath(path))
    leftovers = [f for f in os.listdir(folder) if ".partial" in f]
    if leftovers:
        raise ContractError(f"writing left partial files behind: {', '.join(leftovers)}")
    back = read(path).data
    if tuple(back.shape) != tuple(data.shape):
        raise ContractError(f"round trip changes the shape: wrote {tuple(data.shape)}, read {tuple(back.shape)}")
    error = float((back.to(torch.float64) - data.to(torch.float64)).abs().max())
    if not error <= tol:
        raise ContractError(f"round trip mismatch: max abs error {error:.3g} > {tol:g}")
    return error

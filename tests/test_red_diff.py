"""RED-diff (SAMPLERS.md §3(f)): fixed-t stationary point, pseudo-inverse start, time order."""
from __future__ import annotations

import pytest
import torch

import restore
from restore.errors import InvalidInputError
from restore.operators import MatrixOperator
from restore.priors import GaussianPrior
from restore.samplers.red_diff import REDDiff, snr_weight


class Mask(restore.LinearOperator):
    """Coordinate mask (inpainting): ``A = Aᵀ = A⁺ = diag(mask)``."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return x * self.mask

    def adjoint(self, y):
        return y * self.mask

    def pinv(self, y):
        return y * self.mask


def _spd(d: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return q @ torch.diag(torch.linspace(0.5, 2.0, d, dtype=torch.float64)) @ q.T


def test_fixed_t_stationary_point_matches_closed_form():
    # SGD at one fixed level: E[grad] = (1/m)Aᵀ(Aμ - y) + (λ w/d) a s C⁻¹(μ - m) is affine in μ, so the
    # mean of the iterates over independent chains (the batch) converges to μ* exactly.
    gen = torch.Generator().manual_seed(0)
    d, m, B, k, lam = 4, 2, 4000, 300, 4.0
    mean = torch.randn(d, generator=gen, dtype=torch.float64)
    cov = _spd(d, gen)
    prior = GaussianPrior(mean, cov)
    A = torch.randn(m, d, generator=gen, dtype=torch.float64)
    y1 = torch.randn(m, generator=gen, dtype=torch.float64)
    problem = restore.Problem(y1.expand(B, m).clone(), MatrixOperator(A), restore.GaussianNoise(0.0))
    sampler = restore.sampler("red-diff", steps=300, lam=lam, lr=0.2, optimizer="sgd", fixed_t=k)
    out = sampler.run(prior, problem, generator=torch.Generator().manual_seed(1))

    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    C = a * a * cov + s * s * torch.eye(d, dtype=torch.float64)
    K = snr_weight(a, s, "linear") * a * s * torch.linalg.inv(C)
    H = A.T @ A / m + lam / d * K
    mu_star = torch.linalg.solve(H, A.T @ y1 / m + lam / d * K @ mean)
    est, sem = out.x.mean(0), out.x.std(0) / B**0.5
    assert out.nfe == 300 and out.vjp == 0
    assert bool(((est - mu_star).abs() < 5 * sem + 1e-9).all()), (est, mu_star, sem)
    assert float((est - mu_star).abs().max()) < 1e-2


def test_zero_lambda_with_consistent_data_keeps_pseudo_inverse_start():
    gen = torch.Generator().manual_seed(2)
    shape = (1, 4, 4)
    prior = GaussianPrior(torch.zeros(shape, dtype=torch.float64), _spd(16, gen))
    op = Mask((torch.rand((1,) + shape, generator=gen) > 0.5).double())
    y = op(torch.rand((1,) + shape, generator=gen, dtype=torch.float64))
    out = restore.sampler("red-diff", steps=25, lam=0.0).run(prior, restore.Problem(y, op),
                                                            generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.x, op.pinv(y), rtol=0, atol=1e-12)  # float64: unit conversions' round-off only
    assert out.nfe == 25


def test_descending_order_is_the_default():
    prior = GaussianPrior(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    sampler = REDDiff(steps=20)
    assert sampler.config.order == "descending"
    expected = list(range(950, -1, -50))
    assert sampler.timesteps(prior) == expected
    op = MatrixOperator(torch.eye(3, dtype=torch.float64))
    out = sampler.run(prior, restore.Problem(torch.ones(1, 3, dtype=torch.float64), op),
                      generator=torch.Generator().manual_seed(0))
    assert out.extras["levels"] == expected
    assert REDDiff(steps=20, order="ascending").timesteps(prior) == expected[::-1]
    shuffled = REDDiff(steps=20, order="random").timesteps(prior, torch.Generator().manual_seed(0))
    assert sorted(shuffled) == sorted(expected) and shuffled != expected
    assert (sampler.config.lam, sampler.config.lr, tuple(sampler.config.betas)) == (0.25, 0.5, (0.9, 0.99))


@pytest.mark.parametrize("bad", [{"order": "sideways"}, {"weighting": "cubic"}, {"lr": 0.0}, {"betas": [0.9]}])
def test_bad_options_are_one_line_errors(bad):
    with pytest.raises(InvalidInputError) as info:
        REDDiff(**bad)
    assert "\n" not in str(info.value)

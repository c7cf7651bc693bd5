"""Shared fixtures: analytic Gaussian problems in float64 (SAMPLERS.md §1.6)."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # tiny tensors: threads cost more than they give, and results stay reproducible


def random_spd(d: int, generator: torch.Generator, scale: float = 0.3) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    evals = scale * (0.2 + torch.rand(d, generator=generator, dtype=torch.float64))
    return (q * evals) @ q.T


@pytest.fixture(name="random_spd")
def random_spd_fixture():
    return random_spd


@pytest.fixture
def gaussian_problem():
    """A d=4 Gaussian prior with a 2x4 linear measurement, float64."""
    from restore.operators import MatrixOperator
    from restore.priors import GaussianPrior

    g = torch.Generator().manual_seed(1)
    d, m = 4, 2
    prior = GaussianPrior(0.3 * torch.randn(d, generator=g, dtype=torch.float64), random_spd(d, g))
    A = torch.randn(m, d, generator=g, dtype=torch.float64) / d**0.5
    x_true = prior.sample(1, g)
    y = MatrixOperator(A)(x_true)
    return prior, MatrixOperator(A), A, y

"""Analytic Gaussian test problems with exact answers (SAMPLERS.md §1.6), float64, any small dimension."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..operators.base import MatrixOperator
from ..priors.analytic import GaussianPrior


def random_spd(d: int, generator: torch.Generator, scale: float = 0.3) -> torch.Tensor:
    """A random ``(d, d)`` symmetric positive-definite matrix with eigenvalues in ``scale · [0.2, 1.2]``."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    evals = scale * (0.2 + torch.rand(d, generator=generator, dtype=torch.float64))
    return (q * evals) @ q.T


@dataclass
class GaussianFixture:
    """``x0 ~ N(mean, cov)`` with a linear measurement ``y = A x0 + N(0, sigma_y² I)``.

    Attributes:
        prior: the exact :class:`~restore.priors.analytic.GaussianPrior` (samples of shape ``(B, d)``).
        matrix: ``A``, ``(m, d)``.
        operator: ``A`` as a :class:`~restore.operators.MatrixOperator`.
        x_true: ``(1, d)`` the sample that produced ``y``.
        y: ``(1, m)`` the measurement.
        sigma_y: measurement noise std (same units as ``x``).
        post_mean: ``(d,)`` exact posterior mean of ``x0 | y``.
        post_cov: ``(d, d)`` exact posterior covariance.
    """

    prior: GaussianPrior
    matrix: torch.Tensor
    operator: MatrixOperator
    x_true: torch.Tensor
    y: torch.Tensor
    sigma_y: float
    post_mean: torch.Tensor
    post_cov: torch.Tensor

    @property
    def d(self) -> int:
        return int(self.matrix.shape[1])

    def batch_y(self, n: int) -> torch.Tensor:
        """``y`` repeated ``n`` times, ``(n, m)``: ``n`` independent posterior draws in one batch."""
        return self.y.expand(n, -1).clone()


def make_gaussian_fixture(generator: torch.Generator, d: int = 4, m: int = 2, sigma_y: float = 0.02,
                          scale: float = 0.03) -> GaussianFixture:
    """Build a :class:`GaussianFixture` with a random mean, covariance and ``(m, d)`` measurement matrix.

    The prior lives inside the image range (mean ``0.5 ± 0.05``, standard deviations at most ``0.19``), so
    samplers can keep their default clamping to ``[0, 1]``. The measurement comes from a point two prior
    standard deviations away from the mean, so "moves toward the posterior" is a clear signal.

    Args:
        generator: CPU generator; the same seed gives the same fixture.
        d: dimension of ``x`` (samples are ``(B, d)``).
        m: number of measurements.
        sigma_y: measurement noise std in [0, 1] units.
        scale: prior covariance eigenvalues lie in ``scale · [0.2, 1.2]``.
    """
    mean = 0.5 + 0.05 * torch.randn(d, generator=generator, dtype=torch.float64)
    cov = random_spd(d, generator, scale)
    prior = GaussianPrior(mean, cov)
    matrix = torch.randn(m, d, generator=generator, dtype=torch.float64) / d**0.5
    operator = MatrixOperator(matrix)
    direction = torch.randn(d, generator=generator, dtype=torch.float64)
    x_true = (mean + 2 * scale**0.5 * direction / direction.norm()).reshape(1, d)
    y = operator(x_true) + sigma_y * torch.randn(1, m, generator=generator, dtype=torch.float64)
    post_mean, post_cov = prior.posterior(matrix, y, sigma_y)
    return GaussianFixture(prior, matrix, operator, x_true, y, sigma_y, post_mean, post_cov)


def tiny_unet_prior(channels: int = 1, seed: int = 0):
    """A randomly initialised two-level diffusers ``UNet2DModel`` (widths 8, 16) on the linear VP schedule: a real
    network path (padding, batching, precision) in milliseconds, with no symmetry and no trained meaning."""
    from diffusers import UNet2DModel

    from ..priors.diffusers_prior import DiffusersPrior
    from ..priors.schedules import VPSchedule

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=16, in_channels=channels, out_channels=channels, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D",) * 2,
                       up_block_types=("UpBlock2D",) * 2, norm_num_groups=4)
    return DiffusersPrior(unet, VPSchedule.linear())

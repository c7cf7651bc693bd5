"""CODE: Langevin invariance on the Gaussian fixture, confidence-based clipping, and ``restore enhance``."""
from __future__ import annotations

import math

import pytest
import torch

from restore.cli import main
from restore.enhance_task import corrupt
from restore.errors import InvalidInputError
from restore.io import read, write
from restore.metrics import psnr
from restore.priors import GaussianPrior
from restore.samplers.code import CODE, confidence_clip, confidence_interval


def _gaussian_prior():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    return GaussianPrior(torch.tensor([0.4, -0.3, 0.2, 0.1], dtype=torch.float64), A @ A.T / 4 + 0.1 * torch.eye(4))


def test_langevin_leaves_the_gaussian_marginal_invariant():
    prior = _gaussian_prior()
    code = CODE(steps=20, langevin_steps=40, annealing=1, cbc=False, dynamic_threshold=False)
    view = prior.bind(shape=(1, 4))
    levels = code.levels(view)
    i = 10
    a, s = view.coefficients(levels[i])
    C = a * a * prior.cov + s * s * torch.eye(4, dtype=torch.float64)
    mu = a * prior.mean
    n = 20000
    g = torch.Generator().manual_seed(1)
    x = a * prior.sample(n, g) + s * torch.randn(n, 4, generator=g, dtype=torch.float64)
    step = 0.02 * float(torch.linalg.eigvalsh(C).min())
    out = code.langevin(view, levels, x, i, step, g)
    assert view.nfe == 41
    # Exact moments of the discretised chain (affine-Gaussian oracle, SAMPLERS.md §1.6(5)) ...
    M = torch.eye(4, dtype=torch.float64) - step * torch.linalg.inv(C)
    m_or, P_or = mu.clone(), C.clone()
    for _ in range(40):
        m_or = M @ (m_or - mu) + mu
        P_or = M @ P_or @ M.T + 2 * step * torch.eye(4, dtype=torch.float64)
    m_or, P_or = M @ (m_or - mu) + mu, M @ P_or @ M.T
    # ... match the Monte-Carlo moments of the implementation (4 standard errors) ...
    se = (P_or.diagonal() / n).sqrt()
    assert bool(((out.mean(0) - m_or).abs() < 4 * se).all())
    cov = torch.cov(out.T)
    assert float((cov - P_or).abs().max()) < 4 * float(C.diagonal().max()) * math.sqrt(2 / n)
    # ... and stay at the level-k marginal N(a m, C_k) up to the O(step) ULA bias.
    assert float((m_or - mu).abs().max()) < 1e-12
    assert float((P_or - C).abs().max() / C.abs().max()) < 0.05


def test_confidence_clipping_clips_exactly_the_pixels_outside():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64) * 1.5
    a, s, eta = 0.8, 0.6, 1.7
    lo, hi = confidence_interval(a, s, eta, -1.0, 1.0)
    assert (lo, hi) == pytest.approx((-0.8 - 1.02, 0.8 + 1.02))
    out = confidence_clip(x, a, s, eta, -1.0, 1.0)
    outside = (x < lo) | (x > hi)
    assert 0 < int(outside.sum()) < x.numel()
    assert torch.equal(out[~outside], x[~outside])
    assert bool((out[x < lo] == lo).all()) and bool((out[x > hi] == hi).all())
    ref = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    out_r = confidence_clip(x, a, s, eta, -1.0, 1.0, reference=ref)
    outside_r = (x - a * ref).abs() > eta * s
    assert torch.equal(out_r[~outside_r], x[~outside_r])
    assert torch.allclose((out_r - a * ref)[outside_r].abs(), torch.full_like(x[outside_r], eta * s))
    # coverage: forward-diffused images in [-1, 1] leave the interval with probability <= 2(1 - Φ(η))
    x0 = torch.rand(64, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    xt = a * x0 + s * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    frac = float(((xt < lo) | (xt > hi)).double().mean())
    assert frac <= 2 * (1 - 0.5 * (1 + math.erf(eta / math.sqrt(2))))


def test_code_config_errors():
    with pytest.raises(InvalidInputError, match="strength"):
        CODE(strength=1.5)
    with pytest.raises(InvalidInputError, match="start_level"):
        CODE(steps=20, start_level=30)


def test_enhance_improves_psnr_on_noise_and_jpeg(tmp_path):
    clean = read("sample_images/astronaut.png").data[..., 96:160, 96:160]
    corrupted = corrupt(clean, 0.1, 90, torch.Generator().manual_seed(0))
    in_path, out_path = tmp_path / "corrupted.png", tmp_path / "enhanced.png"
    write(in_path, corrupted)
    args = [str(in_path), "-o", str(out_path), "--prior", "stationary-gaussian", "--device", "cpu", "-q"]
    assert main(["enhance", *args, *ENHANCE_TEST_ARGS]) == 0
    restored = read(out_path).data
    before, after = psnr(read(in_path).data, clean), psnr(restored, clean)
    assert after > before + 0.5
    # an existing output is refused without --overwrite, with a one-line error and exit code 2
    assert main(["enhance", *args, *ENHANCE_TEST_ARGS]) == 2


# Tuned for the stationary-Gaussian prior (fast, no weights): shallow start level, small Langevin steps; with
# a Gaussian prior the gain comes from the ODE encode/decode at the start level, Langevin only adds variance.
ENHANCE_TEST_ARGS = ["--steps", "50", "--strength", "0.04", "--set", "langevin_steps=100", "--set", "step_size=3e-7"]

"""STSL, PSLD, latent priors and the second-order Tweedie utility (SAMPLERS.md §4(f), §1.1)."""
from __future__ import annotations

import json
import os

import pytest
import torch

import restore
from restore.errors import IncompatibleError, InvalidInputError
from restore.operators import MatrixOperator
from restore.priors import GaussianPrior, GMMPrior
from restore.priors.tweedie import posterior_cov_apply, probes, score_trace, trace_gradient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
F64 = torch.float64


class Mask(restore.LinearOperator):
    """Inpainting mask ``A = Aᵀ = diag(mask)`` on ``(B, C, H, W)`` images."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return x * self.mask.to(x.dtype)

    def adjoint(self, y):
        return y * self.mask.to(y.dtype)

    def pinv(self, y):
        return self.adjoint(y)


def _spd(d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))
    return q @ torch.diag(torch.linspace(0.3, 2.0, d, dtype=F64)) @ q.T


def _gaussian(d: int = 6, seed: int = 0) -> GaussianPrior:
    gen = torch.Generator().manual_seed(seed + 100)
    return GaussianPrior(torch.randn(d, generator=gen, dtype=F64), _spd(d, seed))


# -- second-order Tweedie and Hutchinson ------------------------------------------------------------------
@pytest.mark.parametrize("method", ["backward", "forward"])
def test_second_order_tweedie_identity_is_exact_on_gaussian(method):
    prior, d, k = _gaussian(), 6, 350
    x = torch.randn(1, d, generator=torch.Generator().manual_seed(1), dtype=F64).expand(d, d).clone()
    cov = posterior_cov_apply(prior, x, k, torch.eye(d, dtype=F64), method=method)  # row i = Cov e_i
    torch.testing.assert_close(cov, prior.posterior_cov_x0(k), rtol=0, atol=1e-12)


def test_hutchinson_trace_matches_gaussian_score_divergence():
    prior, d, k, n = _gaussian(), 6, 200, 20000
    x = torch.randn(1, d, generator=torch.Generator().manual_seed(2), dtype=F64).expand(n, d).clone()
    v = probes(x.shape, torch.Generator().manual_seed(3), x)
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    exact = -torch.trace(torch.linalg.inv(a * a * prior.cov + s * s * torch.eye(d, dtype=F64)))
    est = score_trace(prior, x, k, v, mode="jvp")
    assert abs(float(est.mean() - exact)) < 3 * float(est.std()) / n**0.5
    # the finite difference is exact for an affine score, whatever δ
    torch.testing.assert_close(score_trace(prior, x, k, v, mode="fd", delta=0.7), est, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mode", ["jvp", "fd"])
def test_trace_gradient_matches_gmm_closed_form(mode):
    d, k, n = 2, 150, 4000
    means = torch.tensor([[1.0, -0.5], [-1.0, 0.8], [0.2, 1.5]], dtype=F64)
    covs = torch.stack([_spd(d, i) * 0.3 for i in range(3)])
    prior = GMMPrior(torch.tensor([0.5, 0.3, 0.2], dtype=F64), means, covs)
    x = torch.tensor([[0.3, 0.1]], dtype=F64, requires_grad=True)
    g = torch.autograd.grad(prior.log_prob(x, k).sum(), x, create_graph=True)[0]
    trace = sum(torch.autograd.grad(g[0, i], x, create_graph=True)[0][0, i] for i in range(d))
    expected = torch.autograd.grad(trace, x)[0][0]

    rows = trace_gradient(prior, x.detach().expand(n, d).clone(), k, 1, torch.Generator().manual_seed(4),
                          mode=mode, delta=1e-4)
    est, sem = rows.mean(0), rows.std(0) / n**0.5
    assert bool(((est - expected).abs() < 4 * sem + 1e-3 * expected.abs().max()).all()), (est, expected, sem)


@pytest.mark.parametrize("trace_mode", ["fd", "jvp"])
def test_stsl_on_gaussian_prior_equals_dps(trace_mode):
    shape = (1, 1, 4, 4)
    prior = GaussianPrior(torch.full(shape[1:], 0.5, dtype=F64), _spd(16, 5) * 0.05)
    op = Mask((torch.rand(shape, generator=torch.Generator().manual_seed(6)) > 0.4).double())
    y = op(torch.rand(shape, generator=torch.Generator().manual_seed(7), dtype=F64))
    problem = restore.Problem(y, op, restore.GaussianNoise(0.01))
    dps = restore.sampler("dps", steps=20, zeta=0.5, spacing="uniform", zeta_reference_steps=None).run(
        prior, problem, generator=torch.Generator().manual_seed(8))
    stsl = restore.sampler("stsl", steps=20, omega=0.5, omega_reference_steps=None, beta=3.0, trace_mode=trace_mode).run(
        prior, problem, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(stsl.x, dps.x, rtol=0, atol=1e-10)
    assert stsl.nfe == (40 if trace_mode == "fd" else 20) and dps.nfe == 20


# -- latent priors ----------------------------------------------------------------------------------------
def _save_latent(folder, vq: bool = False, conditional: bool = False, meta: dict | None = None) -> None:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel, UNet2DModel, VQModel

    torch.manual_seed(0)  # diffusers initialises weights from the global generator
    vae_kw = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                  latent_channels=4, norm_num_groups=4, sample_size=16)
    vae = VQModel(num_vq_embeddings=16, **vae_kw) if vq else AutoencoderKL(**vae_kw)
    unet_kw = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                   norm_num_groups=4)
    if conditional:
        unet = UNet2DConditionModel(down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                                    attention_head_dim=2, **unet_kw)
    else:
        unet = UNet2DModel(down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                           up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=4, **unet_kw)
    vae.save_pretrained(folder / "vae")
    unet.save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    (folder / "restore_prior.json").write_text(json.dumps(meta or {"kind": "latent", "scaling_factor": 0.5}))


@pytest.mark.parametrize("vq,conditional", [(False, False), (True, True)])
def test_latent_round_trip_psld_and_stsl(tmp_path, vq, conditional):
    _save_latent(tmp_path, vq=vq, conditional=conditional)
    prior = restore.prior(str(tmp_path))
    assert prior.kind == "latent" and prior.scaling_factor == 0.5 and prior.multiple == 4
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    z = prior.encode(x)
    assert z.shape == (1, 4, 8, 8) and prior.decode(z).shape == x.shape
    op = Mask((torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.3).float())
    problem = restore.Problem(op(x), op, restore.GaussianNoise(0.01))
    for name, cfg in (("psld", {}), ("stsl", {"trace_mode": "fd"}), ("stsl", {"trace_mode": "jvp"})):
        out = restore.sampler(name, steps=3, **cfg).run(prior, problem, generator=torch.Generator().manual_seed(2))
        assert out.x.shape == x.shape and bool(torch.isfinite(out.x).all()), name
        assert out.x_model.shape == (1, 4, 8, 8) and out.nfe >= 3 and out.vjp >= 3


# -- bad input --------------------------------------------------------------------------------------------
def _one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


def test_latent_folder_missing_vae_or_config(tmp_path):
    _save_latent(tmp_path)
    (tmp_path / "vae" / "config.json").unlink()
    with pytest.raises(InvalidInputError) as info:
        restore.prior(str(tmp_path))
    _one_line(info, "vae/config.json")
    for f in (tmp_path / "vae").iterdir():
        f.unlink()
    (tmp_path / "vae").rmdir()
    with pytest.raises(InvalidInputError) as info:
        restore.prior(str(tmp_path))
    _one_line(info, "no vae/")
    (tmp_path / "restore_prior.json").write_text("{not json")
    with pytest.raises(InvalidInputError) as info:
        restore.prior(str(tmp_path))
    assert "\n" not in str(info.value)


def test_latent_sampler_with_pixel_prior_and_the_reverse(tmp_path):
    pixel = GaussianPrior(torch.zeros(1, 4, 4, dtype=F64), torch.eye(16, dtype=F64))
    op = Mask(torch.ones(1, 1, 4, 4))
    problem = restore.Problem(torch.zeros(1, 1, 4, 4, dtype=F64), op)
    with pytest.raises(IncompatibleError) as info:
        restore.sampler("psld", steps=2).run(pixel, problem)
    _one_line(info, "needs a latent prior")

    _save_latent(tmp_path)
    latent = restore.prior(str(tmp_path))
    problem = restore.Problem(torch.zeros(1, 3, 16, 16), Mask(torch.ones(1, 1, 16, 16)))
    for name in ("dps", "red-diff"):
        with pytest.raises(IncompatibleError) as info:
            restore.sampler(name, steps=2).run(latent, problem)
        _one_line(info, "latent", "psld or stsl")
    nonlinear = restore.Problem(torch.zeros(1, 3, 16, 16), MatrixOperator(torch.eye(3)) @ restore.Operator())
    with pytest.raises(IncompatibleError) as info:
        restore.sampler("psld", steps=2).run(latent, nonlinear)
    _one_line(info, "gamma=0")

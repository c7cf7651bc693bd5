"""CG, priors and conversions in the core engine."""
from __future__ import annotations

import pytest
import torch

import restore
from restore.operators import MatrixOperator, conjugate_gradient
from restore.priors import GaussianPrior, StationaryGaussianPrior, VPSchedule
from restore.priors.parameterization import to_eps, to_v, to_x0


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_cg_solves_batched_hermitian_systems(dtype):
    g = torch.Generator().manual_seed(0)
    B, n = 3, 6
    real = torch.randn(B, n, n, generator=g, dtype=torch.float64)
    mats = real.to(dtype)
    if dtype.is_complex:
        mats = mats + 1j * torch.randn(B, n, n, generator=g, dtype=torch.float64)
    H = mats @ mats.mH + 0.5 * torch.eye(n, dtype=dtype)
    b = torch.randn(B, n, generator=g, dtype=torch.float64).to(dtype)
    x, info = conjugate_gradient(lambda v: (H @ v.unsqueeze(-1)).squeeze(-1), b, max_iter=4 * n)
    assert torch.allclose(x, torch.linalg.solve(H, b), atol=1e-8)
    assert info.residual_norm.max() < 1e-8


def test_cg_on_normal_equations_from_x0_gives_the_projection_and_the_prox():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(3, 7, generator=g, dtype=torch.complex128)
    op = MatrixOperator(A)
    x0 = torch.randn(2, 7, generator=g, dtype=torch.complex128)
    y = torch.randn(2, 3, generator=g, dtype=torch.complex128)
    pinv = torch.linalg.pinv(A)
    x, _ = conjugate_gradient(op.normal, op.adjoint(y), x0=x0, max_iter=20)
    expected = x0 + (y - x0 @ A.T) @ pinv.T
    assert torch.allclose(x, expected, atol=1e-10)
    # Krylov property after only one iteration: the update lies in the row space of A.
    x1, _ = conjugate_gradient(op.normal, op.adjoint(y), x0=x0, max_iter=1)
    null_proj = torch.eye(7, dtype=torch.complex128) - pinv @ A
    assert torch.allclose((x1 - x0) @ null_proj.T, torch.zeros_like(x0), atol=1e-10)
    gamma = 0.7
    prox = op.prox(x0, y, gamma)
    lhs = torch.eye(7, dtype=torch.complex128) + gamma * A.mH @ A
    assert torch.allclose(prox, torch.linalg.solve(lhs, (x0 + gamma * y @ A.conj()).T).T, atol=1e-10)


def test_prediction_conversions_round_trip():
    g = torch.Generator().manual_seed(2)
    x, out = torch.randn(2, 5, generator=g, dtype=torch.float64), torch.randn(2, 5, generator=g, dtype=torch.float64)
    a, s = torch.tensor(0.6, dtype=torch.float64), torch.tensor(0.8, dtype=torch.float64)
    for kind in ("epsilon", "sample", "v_prediction"):
        eps, x0 = to_eps(out, x, a, s, kind), to_x0(out, x, a, s, kind)
        assert torch.allclose(a * x0 + s * eps, x, atol=1e-12)
        v = to_v(out, x, a, s, kind)
        assert torch.allclose(to_x0(v, x, a, s, "v_prediction"), x0, atol=1e-12)


def test_gaussian_prior_scores_and_tweedie_covariance(random_spd):
    g = torch.Generator().manual_seed(3)
    cov = random_spd(3, g)
    prior = GaussianPrior(torch.zeros(3, dtype=torch.float64), cov)
    k = 300
    x = torch.randn(1, 3, generator=g, dtype=torch.float64)
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    ck = a * a * cov + s * s * torch.eye(3, dtype=torch.float64)
    assert torch.allclose(prior.score(x, k)[0], -torch.linalg.solve(ck, x[0]), atol=1e-12)
    jac = torch.autograd.functional.jacobian(lambda v: prior.x0(v, k), x)[0, :, 0, :]
    assert torch.allclose(prior.posterior_cov_x0(k), (s * s / a) * jac, atol=1e-10)


def test_stationary_prior_equals_the_dense_gaussian_with_its_covariance():
    prior = restore.prior("stationary-gaussian", channels=3, device="cpu")
    C, H, W = 3, 4, 6
    d = C * H * W
    basis = torch.eye(d, dtype=torch.float64).reshape(d, C, H, W)
    one = torch.ones(d, dtype=torch.float64)
    cov = prior._apply_ck(basis, one, 0 * one, 1.0).reshape(d, d)
    mean = prior.mean.reshape(C, 1, 1).expand(C, H, W)
    dense = GaussianPrior(mean, (cov + cov.T) / 2)
    x = torch.randn(2, C, H, W, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for k in (0, 250, 999):
        assert torch.allclose(prior.eps(x, k), dense.eps(x, k), atol=1e-9)


def test_stationary_fit_recovers_a_power_law():
    prior = StationaryGaussianPrior([[1.0]], [0.0], [[1e-3, 0.01, 2.5, 1e-6]])
    images = [prior.from_model(prior.sample((1, 1, 128, 128), torch.Generator().manual_seed(i)))[0].permute(1, 2, 0).numpy()
              for i in range(6)]
    fitted = StationaryGaussianPrior.fit(images)
    assert abs(float(fitted.spectra[0, 2]) - 2.5) < 0.3


def test_schedule_respacing_rules():
    sched = VPSchedule.linear()
    assert sched.timesteps(10, "uniform") == list(range(900, -1, -100))
    guided = sched.timesteps(5, "guided")
    assert guided[0] == 999 and guided[-1] == 0
    assert sched.pairs(4)[-1] == (0, -1)
    assert float(sched.abar(-1)) == 1.0
    with pytest.raises(restore.RestoreError, match="steps must be between"):
        sched.timesteps(0)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_diffusers_folder_prior_loads_and_converts(tmp_path, prediction_type):
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=2, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D",) * 2,
                       up_block_types=("UpBlock2D",) * 2, norm_num_groups=4)
    unet.save_pretrained(tmp_path / "unet")
    DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction_type).save_pretrained(tmp_path / "scheduler")
    prior = restore.prior(str(tmp_path), device="cpu")
    assert prior.prediction_type == prediction_type and prior.channels == 1
    x = torch.randn(2, 1, 16, 16)
    k = 400
    raw = unet(x, torch.tensor([k, k])).sample[:, :1]  # learned-variance half dropped
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    expected_x0 = (x - s * raw) / a if prediction_type == "epsilon" else a * x - s * raw
    assert torch.allclose(prior.x0(x, k), expected_x0, atol=1e-5)
    with pytest.raises(restore.RestoreError, match="multiple of 2"):
        prior.eps(torch.randn(1, 1, 15, 16), k)
    with pytest.raises(restore.RestoreError, match="expects images of shape"):
        prior.eps(torch.randn(1, 3, 16, 16), k)


def test_missing_prior_folder_is_a_clear_error(tmp_path):
    with pytest.raises(restore.RestoreError, match="not a diffusers model folder"):
        restore.prior(str(tmp_path))
    with pytest.raises(restore.RestoreError, match="unknown prior"):
        restore.prior("no-such-prior")


def test_tiles_blend_to_the_untiled_result_for_a_pointwise_network():
    from restore.priors.tiling import tile_starts, tiled

    x = torch.randn(2, 3, 40, 72, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = []

    def pointwise(part):
        calls.append(tuple(part.shape[-2:]))
        return torch.cat([part.sin(), 2 * part], dim=1)  # a different channel count is fine

    torch.testing.assert_close(tiled(pointwise, x, 16, 8), pointwise(x), rtol=0, atol=1e-12)
    assert set(calls[:-1]) == {(16, 16)} and len(calls) - 1 == len(tile_starts(40, 16, 8)) * len(tile_starts(72, 16, 8))
    assert tile_starts(40, 16, 8) == [0, 8, 16, 24] and tile_starts(10, 16, 8) == [0]


def test_large_images_go_through_the_network_in_tiles(tmp_path):
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    UNet2DModel(sample_size=16, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
                down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                norm_num_groups=4).save_pretrained(tmp_path / "unet")
    prior = restore.prior(str(tmp_path), device="cpu")
    seen = []
    prior.unet.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape[-2:])))
    x = torch.randn(1, 1, 48, 32)
    with torch.no_grad():
        whole = prior.x0(x, 100)
        prior.tile, prior.tile_overlap = 16, 3
        with pytest.raises(restore.RestoreError, match="multiples of 2"):
            prior.x0(x, 100)
        prior.tile_overlap = 8
        tiles = prior.x0(x, 100)
    assert seen[0] == (48, 32) and set(seen[1:]) == {(16, 16)}
    assert tiles.shape == whole.shape and torch.isfinite(tiles).all()


def test_windows_are_balanced_to_the_shortest_that_covers_each_side():
    from restore.priors.tiling import balanced_length, tile_starts, tiled

    # a 700-pixel side needs two windows of at most 512: two of 384 cover it, a second 512 would mostly repeat
    assert balanced_length(700, 512, 64, 8) == 384 and tile_starts(700, 384, 64) == [0, 316]
    assert balanced_length(1024, 512, 64, 8) == 384 and len(tile_starts(1024, 384, 64)) == 3
    assert balanced_length(400, 512, 64, 8) == 400  # one window: the side itself
    for size in range(40, 400, 7):  # never more windows than the full tile needs, each a multiple of 8
        t = balanced_length(size, 64, 16, 8)
        assert t <= 64 and len(tile_starts(size, t, 16)) == len(tile_starts(size, 64, 16))
        assert t == size or t % 8 == 0
    x = torch.randn(1, 2, 40, 90, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    shapes = []

    def pointwise(part):
        shapes.append(tuple(part.shape[-2:]))
        return part.cos()

    torch.testing.assert_close(tiled(pointwise, x, 32, 8, multiple=8), x.cos(), rtol=0, atol=1e-12)
    assert set(shapes) == {(24, 32)}  # 40 -> 2 windows of 24 (not 32), 90 -> 4 windows of 32

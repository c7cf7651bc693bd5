"""CT plugin: exact adjoints, FBP against skimage, TV, geometries, the ``restore ct`` task and its errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import restore
from restore.errors import InvalidInputError, RestoreError, ShapeError
from restore.metrics import psnr
from restore.phantoms import random_ellipses_2d, random_ellipses_3d, shepp_logan_2d, shepp_logan_3d
from restore_ct.fbp import FILTERS, fbp, fourier_filter
from restore_ct.radon import make_angles
from restore.operators.tv import grad2d, grad2d_adjoint, tv_admm, tv_objective


def _adjoint_error(op, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randn(op(x).shape, generator=g, dtype=torch.float64)
    lhs, rhs = (op(x) * y).sum(), (x * op.adjoint(y)).sum()
    return float((lhs - rhs).abs() / lhs.abs())


@pytest.mark.parametrize("name,kw", [("ct-parallel", {"views": 13}), ("ct-fan", {"views": 11}),
                                     ("ct-parallel", {"limited_angle": 120, "views": 9}),
                                     ("ct-fan", {"angles": [0.0, 33.0, 91.5, 250.0], "detectors": 20})])
def test_adjoint_float64(name, kw):
    op = restore.operator(name, size=(20, 17), **kw)
    assert _adjoint_error(op, (2, 3, 20, 17)) < 1e-5
    assert _adjoint_error(op, (2, 3, 20, 17), seed=1) < 1e-12  # exact up to round-off, not just 1e-5


def test_shapes_geometry_and_autograd():
    op = restore.operator("ct-parallel", size=16, views=7)
    assert op.n_det == 23 and op(torch.zeros(2, 1, 16, 16)).shape == (2, 1, 7, 23)  # ceil(16·√2)
    assert op.input_shape((2, 1, 7, 23)) == (2, 1, 16, 16)
    assert torch.allclose(make_angles(4), torch.tensor([0.0, 45.0, 90.0, 135.0], dtype=torch.float64))
    assert make_angles(limited_angle=120).tolist() == list(map(float, range(120)))
    assert make_angles(60, limited_angle=120)[-1] == 118.0
    assert make_angles(4, arc=360.0)[1] == 90.0
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))
    y = torch.rand(1, 1, 7, 23, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.adjoint, (y,))


def test_line_integral_of_a_disc():
    """A disc of radius r: every parallel projection at the centre equals its chord length 2r."""
    n, r = 64, 20.0
    yy, xx = torch.meshgrid(torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij")
    disc = ((xx**2 + yy**2) <= r**2).double()[None, None]
    op = restore.operator("ct-parallel", size=n, views=8, detectors=91)
    centre = op(disc)[0, 0, :, 45]
    assert torch.allclose(centre, torch.full_like(centre, 2 * r), atol=1.5)


def test_fbp_matches_skimage_iradon():
    transform = pytest.importorskip("skimage.transform")
    n = 96
    phantom = shepp_logan_2d(n, torch.float64)
    op = restore.operator("ct-parallel", size=n, views=180)
    ours = psnr(fbp(op, op(phantom)).clamp(0, 1), phantom)
    theta = np.arange(180.0)
    sino = transform.radon(phantom[0, 0].numpy(), theta, circle=False)
    ref = transform.iradon(sino, theta, circle=False, output_size=n)
    theirs = psnr(torch.from_numpy(np.clip(ref, 0, 1))[None, None], phantom)
    assert ours >= theirs - 0.5, (ours, theirs)


def test_fan_fbp_and_filters():
    n = 64
    phantom = shepp_logan_2d(n, torch.float64)
    op = restore.operator("ct-fan", size=n, views=180)
    rec = fbp(op, op(phantom))
    assert psnr(rec.clamp(0, 1), phantom) > 20
    # quantitative: the mean inside the skull matches (weights and scaling are right)
    assert abs(float(rec[..., 20:44, 20:44].mean() - phantom[..., 20:44, 20:44].mean())) < 0.02
    ramp = fourier_filter(64, "ramp")
    assert ramp[0] > 0 and abs(float(ramp[32]) - 1.0) < 0.02  # |ω| reaches 1 at Nyquist (skimage scale)
    for name in FILTERS[1:]:
        windowed = fourier_filter(64, name)
        assert (windowed <= ramp + 1e-12).all() and windowed[32] < ramp[32]


def test_tv_gradient_adjoint_and_admm_decreases_objective():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 9, 7, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, 1, 9, 7, generator=g, dtype=torch.float64)
    assert abs(float((grad2d(x) * v).sum() - (x * grad2d_adjoint(v)).sum())) < 1e-12
    n = 32
    phantom = shepp_logan_2d(n, torch.float64)
    op = restore.operator("ct-parallel", size=n, views=12)
    y = op(phantom)
    objective = []
    from restore.operators import operator_norm_sq

    scale = operator_norm_sq(op, phantom)
    rec = tv_admm(op, y, lam=1e-3, rho=1e-2, iters=30, cg_iters=5,
                  callback=lambda i, xi: objective.append(tv_objective(op, y, xi, 1e-3, scale)))
    assert objective[-1] < objective[2]
    assert psnr(rec.clamp(0, 1), phantom) > psnr(fbp(op, y).clamp(0, 1), phantom) + 2


def test_phantoms():
    p = shepp_logan_2d(32)
    assert p.shape == (1, 1, 32, 32) and p.min() == 0 and p.max() == 1
    assert shepp_logan_3d((4, 8, 6)).shape == (1, 1, 4, 8, 6)
    a = random_ellipses_2d(16, torch.Generator().manual_seed(3))
    b = random_ellipses_2d(16, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.max() == 1 and a.min() >= 0
    v = random_ellipses_3d((4, 8, 8), torch.Generator().manual_seed(1))
    assert v.shape == (1, 1, 4, 8, 8) and 0 <= float(v.min()) and float(v.max()) == 1
    with pytest.raises(InvalidInputError):
        shepp_logan_3d((4, 8))


def test_bad_geometry_and_shapes():
    with pytest.raises(InvalidInputError, match="views must be a positive integer"):
        restore.operator("ct-parallel", size=16, views=0)
    with pytest.raises(InvalidInputError, match="limited_angle"):
        restore.operator("ct-parallel", size=16, limited_angle=200)
    op = restore.operator("ct-parallel", size=16, views=5)
    with pytest.raises(ShapeError, match="sinogram must be"):
        op.adjoint(torch.zeros(1, 1, 6, 23))
    with pytest.raises(ShapeError, match="expects images"):
        op(torch.zeros(1, 1, 15, 16))


def _run(args, capsys):
    from restore.cli import main

    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_ct_task_cli(tmp_path, capsys):
    from restore.io import write

    img = tmp_path / "p.png"
    write(str(img), shepp_logan_2d(32))
    out = tmp_path / "fbp.png"
    code, output = _run(["ct", str(img), "--simulate", "--views", "30", "--method", "fbp", "-o", str(out)], capsys)
    assert code == 0, output
    assert out.exists() and "psnr" in output
    assert "psnr_input" not in output and "psnr_bicubic" not in output  # a sinogram is not a low-res image
    # sinogram input (.npy, raw line integrals) -> volume reconstruction with TV, written as .npy
    vol = shepp_logan_3d((3, 32, 32), torch.float64)
    op = restore.operator("ct-parallel", size=32, views=10)
    sino = torch.stack([op(vol[:, :, i]) for i in range(3)], dim=2)[0, 0].numpy()
    np.save(tmp_path / "sino.npy", sino)
    out3 = tmp_path / "rec.npy"
    code, output = _run(["ct", str(tmp_path / "sino.npy"), "--views", "10", "--method", "tv", "--steps", "5",
                         "-o", str(out3)], capsys)
    assert code == 0, output
    assert np.load(out3).shape == (3, 32, 32)


def test_ct_volume_diffusion_defaults_to_slicewise_pnp_and_takes_dds3d(tmp_path, capsys):
    np.save(tmp_path / "vol.npy", shepp_logan_3d((3, 16, 16), torch.float64)[0, 0].numpy())
    for extra, sampler in (([], "pnp-hqs"), (["--sampler", "dds-3d", "--steps", "3"], "dds-3d")):
        out = tmp_path / f"{sampler}.npy"
        code, output = _run(["ct", str(tmp_path / "vol.npy"), "--simulate", "--views", "8", "--chunk", "2",
                             "--prior", "stationary-gaussian", "--save-config", "-o", str(out), *extra], capsys)
        assert code == 0, output
        assert np.load(out).shape == (3, 16, 16)
        saved = json.loads((tmp_path / f"{sampler}.npy.config.json").read_text())
        assert saved["sampler"] == sampler and saved["sampler_config"]["chunk"] == 2, saved
    code, output = _run(["ct", str(tmp_path / "vol.npy"), "--simulate", "--views", "8", "--sampler", "dds",
                         "-o", str(tmp_path / "dds.npy")], capsys)
    assert code == 2 and "reconstructs 2D images" in output and len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "dds.npy").exists()


@pytest.mark.parametrize("args,message", [
    (["--views", "0"], "views must be a positive integer"),
    (["--views", "12"], "sinogram has 10 views"),
    ([], "--views N"),
    (["--views", "10", "--method", "magic"], "--method must be one of"),
])
def test_ct_task_errors(tmp_path, capsys, args, message):
    np.save(tmp_path / "s.npy", np.zeros((10, 46)))
    out = tmp_path / "o.png"
    code, output = _run(["ct", str(tmp_path / "s.npy"), "-o", str(out), *args], capsys)
    assert code == 2 and message in output and len(output.strip().splitlines()) == 1, output
    assert not out.exists()


def test_restore_error_base():
    assert issubclass(ShapeError, RestoreError)


@pytest.mark.parametrize("noise", [0.005, 0.02])
def test_ct_default_reconstruction_of_noisy_sinograms_beats_fbp(tmp_path, capsys, noise):
    """Sinogram noise is in sinogram units; plug-and-play must carry it into image units (σ_n / ‖A‖). Before it
    did, the denoiser ran at the sinogram's σ (tens of times the image's noise) and fell far below FBP."""
    from restore.io import write

    src = tmp_path / "x.png"
    write(str(src), random_ellipses_2d(32, generator=torch.Generator().manual_seed(3)).float())
    scores = {}
    for method in ("fbp", "diffusion"):
        out = tmp_path / f"{method}.png"
        code, output = _run(["ct", str(src), "--simulate", "--views", "16", "--noise", str(noise), "--method", method,
                             "--prior", "stationary-gaussian", "--save-config", "-o", str(out)], capsys)
        assert code == 0, output
        scores[method] = json.loads((tmp_path / f"{method}.png.config.json").read_text())["metrics"]["psnr"]
    assert scores["diffusion"] >= scores["fbp"] + 1.0, scores

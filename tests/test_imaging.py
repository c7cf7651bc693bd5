"""The imaging plugin: operator contracts (adjoint, pinv, normal, prox, composition), spec strings, tasks
and one end-to-end ``restore deblur`` run through the CLI."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import restore
from restore.errors import InvalidInputError, RestoreError, ShapeError
from restore.metrics import psnr
from restore.testing.checks import check_adjoint, check_normal, check_pinv_on_range
from restore_imaging.blur import ComposedBlur, motion_kernel
from restore_imaging.specs import parse_kernel, parse_mask
from tests.operator_cases import IMAGING_OPERATORS

F64 = torch.float64

OPERATORS = IMAGING_OPERATORS
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(OPERATORS)]


def _op(name, params):
    return restore.operator(name, **params)


@pytest.mark.parametrize("name,params,shape", OPERATORS, ids=IDS)
def test_adjoint_normal_and_pinv(name, params, shape):
    g = torch.Generator().manual_seed(0)
    op = _op(name, params)
    assert check_adjoint(op, shape, g) < 1e-12
    assert check_normal(op, shape, g) < 1e-10
    # Blurs truncate |K|² <= 1e-8·max in pinv, so white-noise x leaves up to ~1e-4·||x|| of y outside the
    # kept band (the dense-SVD test below checks that truncation exactly); bicubic SR uses CG (tol 1e-7).
    tol = 1e-3 if "blur" in name or name == "kernel" else 1e-6
    check_pinv_on_range(op, shape, g, tol=tol)


@pytest.mark.parametrize("name,params,shape", OPERATORS, ids=IDS)
def test_prox_is_the_regularised_least_squares_solution(name, params, shape):
    g = torch.Generator().manual_seed(1)
    op = _op(name, params)
    z = torch.randn(shape, generator=g, dtype=F64)
    y = op(torch.randn(shape, generator=g, dtype=F64))
    x = op.prox(z, y, 0.7)
    # Optimality: (x - z) + γ Aᵀ(Ax - y) = 0.
    grad = (x - z) + 0.7 * op.adjoint(op(x) - y)
    assert float(grad.norm() / z.norm()) < 1e-6


def _dense(op, shape):
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=F64).reshape((n,) + tuple(shape[1:]))
    return op(basis).reshape(n, -1).T  # (m, n)


def test_blur_pinv_is_the_truncated_svd_pseudo_inverse():
    op = restore.operator("gaussian-blur", sigma=1.0)
    shape = (1, 1, 12, 10)
    A = _dense(op, shape)
    y = torch.randn(1, A.shape[0], generator=torch.Generator().manual_seed(2), dtype=F64)
    expected = y @ torch.linalg.pinv(A, rtol=1e-4).T  # σ² <= 1e-8 σ²max dropped
    got = op.pinv(y.reshape(shape)).reshape(1, -1)
    assert torch.allclose(got, expected, atol=1e-8 * float(expected.abs().max()))


def test_bicubic_and_avgpool_rows_are_local_averages():
    for method in ("avgpool", "bicubic"):
        op = restore.operator("super-resolution", factor=2, method=method)
        A = _dense(op, (1, 1, 16, 16))
        assert A.shape == (64, 256)
        assert torch.allclose(A.sum(dim=1), torch.ones(64, dtype=F64))  # constants are preserved
    # bicubic x2 of a linear ramp along x samples the ramp at the low-res pixel centres (periodic wrap aside)
    x = torch.arange(32, dtype=F64).repeat(32, 1)[None, None]
    y = restore.operator("super-resolution", factor=2)(x)
    assert torch.allclose(y[0, 0, 5, 3:12], torch.arange(3, 12, dtype=F64) * 2 + 0.5, atol=1e-9)


def test_blur_composition_keeps_the_fast_path_and_equals_sequential_application():
    g = torch.Generator().manual_seed(4)
    a = restore.operator("gaussian-blur", sigma=1.2)
    b = restore.operator("motion-blur", length=7, angle=45)
    ab = a @ b
    assert isinstance(ab, ComposedBlur)
    x = torch.randn(2, 3, 20, 24, generator=g, dtype=F64)
    assert torch.allclose(ab(x), a(b(x)), atol=1e-12)
    assert torch.allclose(ab.adjoint(x), b.adjoint(a.adjoint(x)), atol=1e-12)
    assert check_adjoint(ab, x.shape, g) < 1e-12
    # a blur composed with a non-blur falls back to the generic composition
    assert not isinstance(a @ restore.operator("inpainting", fraction=0.3), ComposedBlur)


def test_shapes_devices_and_dtypes():
    sr = restore.operator("super-resolution", factor=4)
    assert sr.input_shape((1, 3, 8, 6)) == (1, 3, 32, 24)
    assert sr.initial_estimate(torch.rand(1, 3, 8, 6)).shape == (1, 3, 32, 24)
    col = restore.operator("colorization")
    assert col.input_shape((2, 1, 5, 5)) == (2, 3, 5, 5)
    gray = torch.rand(2, 1, 5, 5)
    assert torch.allclose(col(col.initial_estimate(gray)), gray, atol=1e-6)
    blur = restore.operator("gaussian-blur", sigma=1.0)
    x32 = torch.rand(1, 3, 16, 16)
    y32, y64 = blur(x32), blur(x32.double())
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    assert torch.allclose(y32.double(), y64, atol=1e-6)
    assert len(blur._cache) == 2  # one transfer function per (H, W, device, dtype)


def test_motion_kernel_is_antialiased_and_centred():
    k = motion_kernel(10, 0)
    assert abs(float(k.sum()) - 1) < 1e-12
    ys, xs = torch.meshgrid(torch.arange(k.shape[0], dtype=F64), torch.arange(k.shape[1], dtype=F64),
                            indexing="ij")
    c = k.shape[0] // 2
    assert abs(float((k * ys).sum()) - c) < 1e-9 and abs(float((k * xs).sum()) - c) < 1e-9
    diag = motion_kernel(10, 30)
    assert int((diag > 0).sum()) > 10  # spread over neighbouring pixels, not a 1-pixel staircase
    # the second moment along the motion direction is a uniform segment's L²/12, plus ~1/6 from the
    # bilinear splatting (a wrong direction, e.g. -30°, would give about a quarter of it)
    t = (xs - c) * np.cos(np.pi / 6) - (ys - c) * np.sin(np.pi / 6)
    assert abs(float((diag * t**2).sum()) - (100 / 12 + 1 / 6)) < 0.15


def test_learnable_kernel_keeps_the_autograd_graph():
    kernel = torch.rand(3, 3, dtype=F64, requires_grad=True)
    op = restore.operator("kernel", kernel=kernel, normalize=False)
    x = torch.rand(1, 1, 8, 8, dtype=F64)
    op(x).sum().backward()  # d/dk_m Σ_n (k ⊛ x)[n] = Σ_n x[n - m] = Σ x for every tap
    assert kernel.grad is not None and torch.allclose(kernel.grad, x.sum().expand(3, 3))


def test_random_mask_is_reproducible_and_drops_the_fraction():
    x = torch.ones(1, 3, 10, 10)
    m1, m2 = parse_mask("random:0.3").mask_for(x), parse_mask("random:0.3").mask_for(x)
    assert torch.equal(m1, m2) and int((m1 == 0).sum()) == 30
    g = torch.Generator().manual_seed(7)
    m3 = restore.operator("inpainting", fraction=0.3, generator=g).mask_for(x)
    assert not torch.equal(m1, m3)
    box = parse_mask("box:1,2,3,4").mask_for(x)
    assert int((box == 0).sum()) == 12 and float(box[0, 0, 1:4, 2:6].sum()) == 0


@pytest.mark.parametrize("mask", ["random:0.7", "box:4,6,20,30", "box:2,3,28,34"])
def test_inpainting_initial_estimate_keeps_observed_pixels_and_fills_holes_smoothly(mask):
    # the push-pull fill is a convex combination of observed pixels: exact on observed pixels, inside their
    # range, exact for a constant image, and close to a smooth image (a plane) over a large hole
    H, W = 32, 40
    rows, cols = torch.meshgrid(torch.linspace(0, 1, H, dtype=F64), torch.linspace(0, 1, W, dtype=F64), indexing="ij")
    plane = (0.2 + 0.5 * rows + 0.3 * cols).expand(1, 3, H, W)
    op = parse_mask(mask)
    m = op.mask_for(plane).expand_as(plane)
    filled = op.initial_estimate(op(plane))
    assert torch.equal(filled[m > 0], plane[m > 0])
    observed = plane[m > 0]
    assert float(filled.min()) >= float(observed.min()) - 1e-12 and float(filled.max()) <= float(observed.max()) + 1e-12
    assert float((filled - plane).abs().max()) < 0.06
    constant = torch.full((1, 1, H, W), 0.37, dtype=F64)
    assert float((op.initial_estimate(op(constant)) - 0.37).abs().max()) < 1e-12


@pytest.mark.parametrize("sampler", ["pnp-hqs", "dps"])
def test_noiseless_inpainting_returns_the_observed_pixels_exactly(sampler):
    # an inpainting operator's pseudo-inverse is exact, so a noiseless run ends on {x : A x = y}: the
    # denoiser's small changes to known pixels (RMS 0.003 before, on real crops) are undone; with noise they stay
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=g)
    op = parse_mask("box:8,8,12,12")
    m = op.mask_for(x).expand_as(x) > 0
    for noise in (0.0, 0.05):
        y = op(x) + noise * op(torch.randn(x.shape, generator=g))
        out = restore.solve(y, op, prior="stationary-gaussian", sampler=sampler, steps=10, noise_sigma=noise)
        gap = float((out - y)[m].abs().max())
        assert (gap < 1e-6) if noise == 0 else (gap > 1e-3), (noise, gap)


def test_kernel_and_mask_files(tmp_path):
    k = parse_kernel("gaussian:1.5").kernel
    restore.write(tmp_path / "kernel.png", (k / k.max())[None, None].float())
    from_file = parse_kernel(str(tmp_path / "kernel.png")).kernel
    assert from_file.shape == k.shape and float((from_file - k).abs().max()) < 2e-4  # 8-bit quantisation
    mask = torch.ones(1, 1, 6, 8)
    mask[..., 2:4, 1:5] = 0
    restore.write(tmp_path / "mask.png", mask)
    op = parse_mask(str(tmp_path / "mask.png"))
    assert torch.equal(op(torch.ones(1, 3, 6, 8)), mask.expand(1, 3, 6, 8))


@pytest.mark.parametrize("spec,expected", [
    ("gaussian:2.0", (13, 13)), ("gaussian:1:5", (5, 5)), ("motion:15:30", (19, 19)), ("motion:4", (7, 7)),
])
def test_kernel_specs(spec, expected):
    assert tuple(parse_kernel(spec).kernel.shape) == expected


@pytest.mark.parametrize("spec,words", [
    ("gaussian:-1", ["sigma", "-1"]),
    ("gaussian:0", ["sigma", "> 0"]),
    ("gaussian:abc", ["gaussian:abc", "numbers"]),
    ("gaussian:2:4", ["odd"]),
    ("motion:0:10", ["length", "> 0"]),
    ("motion:1:2:3", ["LENGTH:ANGLE"]),
    ("nosuch.png", ["nosuch.png", "gaussian:SIGMA"]),
    ("blob:3", ["blob:3", "motion:LENGTH"]),
])
def test_kernel_spec_errors(spec, words):
    with pytest.raises(InvalidInputError) as info:
        parse_kernel(spec)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_operator_value_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cases = [
        (lambda: restore.operator("gaussian-blur", sigma=8.0)(torch.rand(1, 1, 32, 32)), ["49x49", "32x32"]),
        (lambda: restore.operator("super-resolution", factor=0), ["factor", "0"]),
        (lambda: restore.operator("super-resolution", factor=2, method="nearest"), ["nearest", "avgpool"]),
        (lambda: restore.operator("super-resolution", factor=4)(torch.rand(1, 1, 30, 32)), ["30x32", "divisible"]),
        (lambda: restore.operator("inpainting", mask=torch.ones(8, 8))(torch.rand(1, 1, 9, 8)), ["8x8", "9x8"]),
        (lambda: restore.operator("inpainting", box=(0, 0, 20, 2))(torch.rand(1, 1, 8, 8)), ["box", "8x8"]),
        (lambda: restore.operator("inpainting", fraction=1.5), ["fraction", "1.5"]),
        (lambda: restore.operator("kernel", kernel=str(bad)), ["kernel file", "bad.png"]),
        (lambda: parse_mask(str(bad)), ["mask file", "bad.png"]),
        (lambda: parse_mask("random:x"), ["random:x"]),
        (lambda: restore.operator("colorization")(torch.rand(1, 1, 4, 4)), ["3 channels"]),
    ]
    for call, words in cases:
        with pytest.raises(RestoreError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and all(w in message for w in words), message
    assert issubclass(ShapeError, InvalidInputError)


def test_tasks_simulate_degrade_the_clean_input():
    from restore.io import Image
    from restore.tasks import get_task

    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    setup = get_task("super-resolve").build(image=Image(x), noise=0.0, simulate=True,
                                            generator=torch.Generator(), scale=4, method="avgpool")
    assert setup.problem.y.shape == (1, 3, 4, 4) and setup.problem.x_shape == (1, 3, 16, 16)
    assert torch.equal(setup.reference, x)
    setup = get_task("inpaint").build(image=Image(x), noise=0.1, simulate=True, generator=torch.Generator(),
                                      mask="box:0,0,4,4")
    assert float(setup.problem.y[..., :4, :4].abs().sum()) == 0  # no noise in the holes
    measured = get_task("denoise").build(image=Image(x), noise=0.1, simulate=False, generator=torch.Generator())
    assert torch.equal(measured.problem.y, x) and measured.reference is None
    task = get_task("inpaint")
    assert task.sampler_defaults["dps"]["zeta"] == 0.5 and task.default_noise == 0.0


@pytest.fixture(scope="module")
def sharp_png(tmp_path_factory):
    from skimage.transform import resize

    sample = os.path.join(os.path.dirname(__file__), "..", "sample_images", "astronaut.png")
    if os.path.exists(sample):
        rgb = restore.read(sample).data[0].permute(1, 2, 0).numpy()
    else:
        from skimage.data import astronaut

        rgb = astronaut() / 255.0
    sharp = torch.from_numpy(resize(rgb, (64, 64), anti_aliasing=True)).permute(2, 0, 1)[None].float()
    path = tmp_path_factory.mktemp("deblur") / "sharp.png"
    restore.write(path, sharp)
    return path


def test_cli_deblur_improves_psnr_over_the_blurred_input(sharp_png):
    from restore.cli import main

    folder = sharp_png.parent
    sharp = restore.read(sharp_png).data
    blurred = restore.operator("gaussian-blur", sigma=2.0)(sharp).clamp(0, 1)
    restore.write(folder / "blurred.png", blurred)
    blurred = restore.read(folder / "blurred.png").data  # 8-bit, as a user's file would be
    out = folder / "out.png"
    # The FFT-diagonal stationary prior keeps this fast and independent of which trained priors are installed.
    rc = main(["deblur", str(folder / "blurred.png"), "--kernel", "gaussian:2", "-o", str(out), "--steps", "20",
               "--prior", "stationary-gaussian", "--quiet"])
    assert rc == 0
    restored = restore.read(out).data
    assert psnr(restored, sharp) > psnr(blurred, sharp) + 0.1


def test_cli_kernel_larger_than_image_is_one_line_exit_2_and_no_output(sharp_png, capsys):
    from restore.cli import main

    out = sharp_png.parent / "too_big.png"
    capsys.readouterr()
    rc = main(["deblur", str(sharp_png), "--kernel", "gaussian:20", "--boundary", "circular", "-o", str(out),
               "--steps", "2", "--prior", "stationary-gaussian", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert err.count("\n") == 1 and "121x121" in err and "64x64" in err, err
    assert not [p for p in os.listdir(sharp_png.parent) if "too_big" in p]  # no partial file either

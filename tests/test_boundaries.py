"""Boundary models of the blur and super-resolution operators: exact adjoints, the operator against a dense
matrix written from the definition, prox/pinv against dense solves, circular unchanged, every sampler,
and `restore deblur` on a photo blurred with the physics of a larger scene."""
from __future__ import annotations

import math
import os

import pytest
import torch

import restore
from restore.errors import InvalidInputError, ShapeError
from restore.metrics import psnr
from restore.testing.checks import check_adjoint, check_normal
from restore_imaging.boundary import BOUNDARIES
from restore_imaging.resize import bicubic_taps

F64 = torch.float64
HERE = os.path.dirname(__file__)

# (name, parameters, observation shape (B, C, h, w)); small, non-square, and an even-sized asymmetric kernel
OPERATORS = [
    ("gaussian-blur", {"sigma": 1.0}, (2, 2, 9, 8)),
    ("motion-blur", {"length": 5, "angle": 30}, (1, 2, 10, 11)),
    ("kernel", {"kernel": torch.arange(1, 13, dtype=F64).reshape(4, 3)}, (1, 1, 7, 9)),
    ("super-resolution", {"factor": 2, "method": "bicubic"}, (1, 2, 5, 6)),
    ("super-resolution", {"factor": 3, "method": "bicubic"}, (1, 1, 4, 5)),
    ("super-resolution", {"factor": 2, "method": "avgpool"}, (1, 1, 4, 5)),
]
CASES = [(n, p, s, b) for n, p, s in OPERATORS for b in BOUNDARIES]
IDS = [f"{n}-{i // len(BOUNDARIES)}-{b}" for i, (n, _, _, b) in enumerate(CASES)]


def _op(name, params, boundary):
    return restore.operator(name, boundary=boundary, **params)


def _source(i: int, n: int, before: int, boundary: str) -> int | None:
    """Index into ``x`` (length ``n``) of extended-domain position ``i`` (``i = 0`` is the first pixel of the
    field of view), or ``None`` for a zero; for ``valid``, ``x`` starts ``before`` pixels earlier."""
    if boundary == "valid":
        return i + before
    if 0 <= i < n:
        return i
    if boundary == "zero":
        return None
    if boundary == "replicate":
        return min(max(i, 0), n - 1)
    if boundary == "circular":
        return i % n
    return -i if i < 0 else 2 * (n - 1) - i  # reflect about the edge pixel


def _taps(name, params):
    """``(weights, offsets, stride)`` from the operator's definition: ``y[i] = Σ w · x[stride·i + offset]``."""
    if name == "super-resolution":
        f = params["factor"]
        if params["method"] == "avgpool":
            w = torch.full((f, f), 1.0 / f**2, dtype=F64)
            return w, (0, 0), f
        g, dmin = bicubic_taps(f)
        return torch.outer(g, g), (dmin, dmin), f
    # convolution: y[i] = Σ_a k[a] x[i - a + c] = Σ_m kflip[m] x[i + m - (kh - 1 - c)]
    k = restore.operator(name, **params).kernel.to(F64)
    kh, kw = k.shape
    return k.flip(0, 1), (-(kh - 1 - kh // 2), -(kw - 1 - kw // 2)), 1


def dense_matrix(name, params, boundary, y_hw, x_hw) -> torch.Tensor:
    """The operator on one channel as a ``(h·w, H·W)`` matrix, written from its definition."""
    w, (oh, ow), f = _taps(name, params)
    h, wy = y_hw
    H, W = x_hw
    M = torch.zeros(h * wy, H * W, dtype=F64)
    for i in range(h):
        for j in range(wy):
            for a in range(w.shape[0]):
                for b in range(w.shape[1]):
                    r = _source(f * i + a + oh, H, -oh, boundary)
                    c = _source(f * j + b + ow, W, -ow, boundary)
                    if r is not None and c is not None:
                        M[i * wy + j, r * W + c] += w[a, b]
    return M


def _apply_dense(M, x):
    B, C = x.shape[:2]
    return (x.reshape(B, C, -1) @ M.T)


@pytest.mark.parametrize("name,params,y_shape,boundary", CASES, ids=IDS)
def test_adjoint_is_exact_in_float64(name, params, y_shape, boundary):
    op = _op(name, params, boundary)
    x_shape = op.input_shape(y_shape)
    g = torch.Generator().manual_seed(0)
    assert check_adjoint(op, x_shape, g, tol=1e-10) <= 1e-10
    assert check_normal(op, x_shape, g, tol=1e-10) <= 1e-10


@pytest.mark.parametrize("name,params,y_shape,boundary", CASES, ids=IDS)
def test_operator_matches_the_dense_definition(name, params, y_shape, boundary):
    op = _op(name, params, boundary)
    x_shape = op.input_shape(y_shape)
    M = dense_matrix(name, params, boundary, y_shape[-2:], x_shape[-2:])
    x = torch.randn(x_shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    y = op(x)
    assert y.shape == y_shape
    # FFT round-off only: both sides are sums of the same few products
    assert torch.allclose(y.reshape(*y_shape[:2], -1), _apply_dense(M, x), atol=1e-12, rtol=0)
    v = torch.randn(y_shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert torch.allclose(op.adjoint(v).reshape(*x_shape[:2], -1), _apply_dense(M.T, v), atol=1e-12, rtol=0)


def test_valid_unknown_is_the_field_of_view_plus_the_filter_reach():
    blur = restore.operator("gaussian-blur", sigma=2.0, boundary="valid")  # 13x13 kernel
    assert blur.input_shape((1, 3, 40, 30)) == (1, 3, 52, 42)
    x = torch.rand(1, 3, 52, 42)
    assert blur.view(x).shape == (1, 3, 40, 30) and torch.equal(blur.view(x), x[..., 6:46, 6:36])
    sr = restore.operator("super-resolution", factor=4, boundary="valid")  # 16 taps: reach 6 on each side
    assert sr.input_shape((1, 1, 8, 8)) == (1, 1, 44, 44)
    for b in ("reflect", "replicate", "zero", "circular"):
        assert restore.operator("gaussian-blur", sigma=2.0, boundary=b).input_shape((1, 3, 40, 30)) == (1, 3, 40, 30)


# A well-conditioned kernel (|K| >= 0.2 at every frequency) so that CG solves to near machine precision.
SOLVE_CASES = [("kernel", {"kernel": torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]])}, (1, 2, 7, 6)),
               ("gaussian-blur", {"sigma": 0.7, "size": 3}, (1, 1, 6, 7)),
               ("super-resolution", {"factor": 2, "method": "bicubic"}, (1, 1, 4, 5))]
SOLVE_IDS = [f"{n}-{i}-{b}" for i, (n, _, _) in enumerate(SOLVE_CASES) for b in BOUNDARIES]


@pytest.mark.parametrize("name,params,y_shape,boundary",
                         [(n, p, s, b) for n, p, s in SOLVE_CASES for b in BOUNDARIES], ids=SOLVE_IDS)
def test_prox_and_pinv_match_dense_solves(name, params, y_shape, boundary):
    op = _op(name, params, boundary)
    x_shape = op.input_shape(y_shape)
    M = dense_matrix(name, params, boundary, y_shape[-2:], x_shape[-2:])
    g = torch.Generator().manual_seed(3)
    z = torch.randn(x_shape, generator=g, dtype=F64)
    y = torch.randn(y_shape, generator=g, dtype=F64)
    gamma = 4.0
    n = M.shape[1]
    dense_prox = torch.linalg.solve(torch.eye(n, dtype=F64) + gamma * M.T @ M,
                                    (z.reshape(*x_shape[:2], n) + gamma * _apply_dense(M.T, y)).unsqueeze(-1))[..., 0]
    # circular blurs solve in closed form; circular bicubic SR keeps the engine's CG (residual 1e-7); the
    # other models run CG to a 1e-10 (prox) / 1e-9 (pinv, normal equations) residual
    cg_default = boundary == "circular" and name == "super-resolution"
    got = op.prox(z, y, gamma).reshape(*x_shape[:2], n)
    assert float((got - dense_prox).norm() / dense_prox.norm()) < (1e-6 if cg_default else 1e-8)
    dense_pinv = _apply_dense(torch.linalg.pinv(M), y)
    got = op.pinv(y).reshape(*x_shape[:2], n)
    assert float((got - dense_pinv).norm() / dense_pinv.norm()) < (1e-4 if cg_default else 1e-6)


def test_circular_outputs_are_unchanged():
    """Outputs recorded before boundary models existed (tests/data/record_circular_reference.py)."""
    ref = torch.load(os.path.join(HERE, "data", "circular_reference.pt"))
    ops = {"gauss": ("gaussian-blur", {"sigma": 1.5}), "motion": ("motion-blur", {"length": 7, "angle": 30}),
           "kernel": ("kernel", {"kernel": torch.arange(12, dtype=F64).reshape(4, 3)}),
           "bicubic": ("super-resolution", {"factor": 2, "method": "bicubic"}),
           "avgpool": ("super-resolution", {"factor": 2, "method": "avgpool"})}
    for key, (name, params) in ops.items():
        op, r = _op(name, params, "circular"), ref[key]
        got = {"forward": op(r["x"]), "adjoint": op.adjoint(r["y"]), "normal": op.normal(r["x"]),
               "pinv": op.pinv(r["y"]), "prox": op.prox(r["x"], r["y"], 3.0), "init": op.initial_estimate(r["y"])}
        for what, value in got.items():
            # The same code path as when recorded: only a different CPU's FFT rounding (float64) may differ, and
            # the Gaussian pinv amplifies it by its condition number (2e-11 of outputs up to 75, AMD against Intel).
            assert float((value - r[what]).norm() / r[what].norm().clamp_min(1e-30)) < 1e-10, (key, what)
    op = _op("gaussian-blur", {"sigma": 1.0}, "circular")
    # The recording ran the sampler on a generator seeded with 0 (restore.solve has since derived its chain
    # seeds differently), so the sampler is called here as it was then.
    prior = restore.prior("stationary-gaussian", channels=ref["solve"]["y"].shape[1])
    problem = restore.Problem(ref["solve"]["y"], op, restore.GaussianNoise(0.01))
    x = restore.sampler("dds", steps=10, gamma_rule="snr").run(
        prior, problem, generator=torch.Generator().manual_seed(0)).x
    # float32 sampler arithmetic; a thread-count-dependent reduction order may move the last bits
    assert torch.allclose(x, ref["solve"]["x"], atol=1e-5, rtol=0)


def test_bad_boundary_is_a_one_line_error():
    with pytest.raises(InvalidInputError, match="unknown boundary 'mirror'.*valid, reflect"):
        restore.operator("gaussian-blur", sigma=1.0, boundary="mirror")
    with pytest.raises(InvalidInputError, match="reflect needs"):
        restore.operator("gaussian-blur", sigma=3.0, boundary="reflect")(torch.rand(1, 1, 8, 8))
    with pytest.raises(ShapeError, match="input_shape"):
        restore.operator("gaussian-blur", sigma=1.0, boundary="valid")(torch.rand(1, 1, 6, 6))


def test_valid_blur_takes_kernels_larger_than_the_observation():
    op = restore.operator("gaussian-blur", sigma=3.0, boundary="valid")  # 19x19 kernel, 8x8 observation
    x = torch.rand(1, 1, *op.input_shape((1, 1, 8, 8))[-2:], dtype=F64)
    assert op(x).shape == (1, 1, 8, 8)
    assert check_adjoint(op, x.shape, torch.Generator().manual_seed(0), tol=1e-10) <= 1e-10


# Samplers that use the operator on natural images, with a prior of the kind they need.
SAMPLERS = [("dds", "stationary-gaussian", {}), ("dps", "stationary-gaussian", {"zeta": 0.5}),
            ("red-diff", "stationary-gaussian", {}), ("stsl", "stationary-gaussian", {}),
            ("mrs", "mean-reverting-gaussian", {}), ("ir-sde", "mean-reverting-gaussian", {})]


@pytest.mark.parametrize("sampler,prior,config", SAMPLERS, ids=[s for s, _, _ in SAMPLERS])
@pytest.mark.parametrize("boundary", ["valid", "reflect"])
def test_every_sampler_runs_with_boundary_operators(sampler, prior, config, boundary):
    op = restore.operator("gaussian-blur", sigma=1.0, boundary=boundary)
    clean = torch.rand(1, 3, *op.input_shape((1, 3, 16, 16))[-2:], generator=torch.Generator().manual_seed(0))
    y = op(clean)
    try:
        p = restore.prior(prior, channels=3)
    except Exception as exc:  # an analytic prior that needs fitting data absent here
        pytest.skip(f"prior {prior} unavailable: {exc}")
    x = restore.solve(y, op, prior=p, sampler=sampler, noise_sigma=0.01, steps=3, seed=0, device="cpu", **config)
    assert x.shape == clean.shape and bool(torch.isfinite(x).all())


def _band_and_interior(x, ref, band=16):
    err = ((x.double() - ref.double()) ** 2).mean(dim=(0, 1))
    inner = torch.zeros_like(err, dtype=torch.bool)
    inner[band:-band, band:-band] = True
    return 10 * math.log10(1 / float(err[~inner].mean())), 10 * math.log10(1 / float(err[inner].mean()))


def test_cli_deblur_default_boundary_restores_a_real_blur_without_a_frame(tmp_path):
    """A photo of a larger scene: blur a crop larger by the kernel's reach and keep its centre (valid
    physics). The default boundary must beat the blurred input by >= 1.5 dB over the whole image, and
    the 16-pixel border band must improve within 1 dB of the interior (no frame)."""
    import numpy as np
    from matplotlib import get_data_path
    from PIL import Image

    from restore.cli import main

    # grace_hopper: a held-out validation photo (restore_models.data NATURAL_VALIDATION)
    photo = np.asarray(Image.open(os.path.join(get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB"))
    photo = torch.from_numpy(photo / 255.0).permute(2, 0, 1)[None]
    physics = restore.operator("gaussian-blur", sigma=1.5, boundary="valid")  # 11x11 kernel
    side = 128
    big = physics.input_shape((1, 3, side, side))[-1]
    top, left = (photo.shape[-2] - big) // 2, (photo.shape[-1] - big) // 2
    scene = photo[..., top:top + big, left:left + big].contiguous()
    sharp = physics.view(scene)
    blurred = (physics(scene) + 0.01 * torch.randn(sharp.shape, generator=torch.Generator().manual_seed(0),
                                                   dtype=F64)).clamp(0, 1)
    restore.write(tmp_path / "blurred.png", blurred.float())
    blurred = restore.read(tmp_path / "blurred.png").data  # 8-bit, as a user's file would be
    out = tmp_path / "out.png"
    rc = main(["deblur", str(tmp_path / "blurred.png"), "--kernel", "gaussian:1.5", "--noise", "0.01", "-o", str(out),
               "--steps", "20", "--prior", "stationary-gaussian", "--quiet"])
    assert rc == 0
    restored = restore.read(out).data
    assert restored.shape == blurred.shape  # the valid unknown's extension is cropped away
    sharp = sharp.float()
    assert psnr(restored, sharp) >= psnr(blurred, sharp) + 1.5
    border_in, inner_in = _band_and_interior(blurred, sharp)
    border_out, inner_out = _band_and_interior(restored, sharp)
    assert border_out - border_in >= (inner_out - inner_in) - 1.0


def test_cli_simulate_uses_the_same_physics_and_can_cross_models(tmp_path):
    """A valid simulation observes the centre of the clean image (a blur of the larger scene): the output
    is that field of view, whatever model restores it; other simulations keep the clean image's size."""
    from restore.cli import main

    clean = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(0))
    restore.write(tmp_path / "clean.png", clean)
    runs = {"same": ([], (34, 30)),  # gaussian:1 is 7x7: the valid observation loses 3 px on every side
            "crossed": (["--simulate-boundary", "reflect"], (40, 36)),
            "crossed-back": (["--boundary", "reflect", "--simulate-boundary", "valid"], (34, 30))}
    for tag, (extra, size) in runs.items():
        out = tmp_path / f"{tag}.png"
        rc = main(["deblur", str(tmp_path / "clean.png"), "--simulate", "--kernel", "gaussian:1", "-o", str(out),
                   "--steps", "2", "--prior", "stationary-gaussian", "--quiet", *extra])
        assert rc == 0
        assert restore.read(out).data.shape[-2:] == size, tag
    out = tmp_path / "sr.png"
    rc = main(["super-resolve", str(tmp_path / "clean.png"), "--simulate", "--scale", "2", "-o", str(out),
               "--steps", "2", "--prior", "stationary-gaussian", "--quiet"])
    assert rc == 0 and restore.read(out).data.shape[-2:] == (34, 30)  # the x2 bicubic filter reaches 3 px


@pytest.mark.parametrize("args,message", [
    (["--boundary", "mirror"], "unknown boundary 'mirror'"),
    (["--simulate-boundary", "valid"], "--simulate-boundary only applies with --simulate"),
])
def test_cli_bad_boundary_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    from restore.cli import main

    restore.write(tmp_path / "in.png", torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)))
    out = tmp_path / "out.png"
    capsys.readouterr()
    rc = main(["deblur", str(tmp_path / "in.png"), "-o", str(out), "--steps", "2", "--prior", "stationary-gaussian",
               "--quiet", *args])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists() and err.count("\n") == 1 and message in err, err

"""MRI plugin: operators (Hermitian adjoints), masks, coil maps, baselines, fastMRI I/O, the mri task."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

import restore
from restore.errors import InvalidInputError, RestoreError, ShapeError
from restore.metrics import psnr
from restore.operators import conjugate_gradient
from restore.tasks import RunSettings, run_task
from restore.testing.checks import check_adjoint
from restore_mri.coils import birdcage_maps, espirit_maps, simulate_kspace
from restore_mri.fastmri import ismrmrd_header, parse_header, read_fastmri, write_kspace
from restore_mri.fft import fft2c, ifft2c
from restore_mri.masks import acceleration_of, center_columns, column_mask, make_mask
from restore_mri.operators import MultiCoilMRI, PhaseMagnitude, RealImagView, SingleCoilMRI
from restore.operators.tv import grad2d, grad2d_adjoint, tv_admm
from restore_mri.recon import sense, zero_filled

# Only the fastMRI file-format tests need h5py; the operators, masks, coils and baselines are pure torch.
needs_h5py = pytest.mark.skipif(importlib.util.find_spec("h5py") is None, reason="h5py not installed")


def phantom(n: int) -> torch.Tensor:
    """Shepp–Logan magnitude image (1, 1, n, n) in [0, 1], float64."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    p = resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)
    return torch.from_numpy(np.clip(p / p.max(), 0, 1))[None, None]


G = torch.Generator().manual_seed(0)


# -- operators ---------------------------------------------------------------------------------------
def test_fft2c_is_unitary_and_centred():
    x = torch.randn(2, 3, 8, 6, dtype=torch.complex128, generator=G)
    assert torch.allclose(ifft2c(fft2c(x)), x)
    assert torch.allclose(torch.linalg.vector_norm(fft2c(x)), torch.linalg.vector_norm(x))
    k = fft2c(torch.ones(1, 1, 8, 6, dtype=torch.complex128))  # DC lands at (H // 2, W // 2)
    assert abs(k[0, 0, 4, 3]) == pytest.approx(np.sqrt(48)) and float(k.abs().sum()) == pytest.approx(np.sqrt(48))


@pytest.mark.parametrize("mask_kind", ["full", "random", "poisson"])
def test_adjoints_of_every_mri_operator(mask_kind):
    H, W = 16, 12
    mask = None if mask_kind == "full" else make_mask(mask_kind, (H, W), 2, 0.25, seed=1)
    maps = birdcage_maps(4, (H, W), dtype=torch.complex128)
    multi = MultiCoilMRI(maps, mask)
    single = SingleCoilMRI(mask, (H, W))
    phase = torch.rand(1, 1, H, W, generator=G, dtype=torch.float64) * 6
    cases = [(single, torch.complex128), (multi, torch.complex128),
             (restore.operator("mri-multicoil", maps=maps, mask=mask), torch.complex128),
             (restore.operator("mri-single", mask=mask, shape=(H, W)), torch.complex128),
             (RealImagView(multi), torch.float64), (PhaseMagnitude(multi, phase), torch.float64)]
    for op, dtype in cases:
        channels = 2 if isinstance(op, RealImagView) else 1
        assert check_adjoint(op, (2, channels, H, W), G, dtype=dtype, tol=1e-12) < 1e-12
        assert op.adjoint(op(torch.zeros(1, channels, H, W, dtype=dtype))).dtype == dtype  # real views stay real


def test_tv_gradient_adjoint():
    x = torch.randn(2, 1, 7, 9, dtype=torch.complex128, generator=G)
    g = torch.randn(2, 2, 1, 7, 9, dtype=torch.complex128, generator=G)
    lhs = (grad2d(x).conj() * g).sum()
    rhs = (x.conj() * grad2d_adjoint(g)).sum()
    assert abs(lhs - rhs) < 1e-12 * float(x.abs().sum() * g.abs().sum())


def test_shape_errors_are_one_line():
    op = MultiCoilMRI(birdcage_maps(4, (8, 8)), None)
    with pytest.raises(ShapeError, match=r"\(B, 1, H, W\)"):
        op(torch.zeros(1, 2, 8, 8, dtype=torch.complex64))
    with pytest.raises(ShapeError, match="does not match k-space of 8x8"):
        MultiCoilMRI(birdcage_maps(4, (8, 8)), torch.ones(7))


# -- reconstructions ---------------------------------------------------------------------------------
def test_sense_cg_recovers_fully_sampled_phantom_exactly():
    x = phantom(32).to(torch.complex128)
    op = MultiCoilMRI(birdcage_maps(8, (32, 32), dtype=torch.complex128), None)
    xs = sense(op, op(x), iters=10)
    assert float((xs - x).abs().max()) < 1e-10


def test_sense_and_tv_beat_zero_filled_at_4x():
    x = phantom(64)
    maps = birdcage_maps(8, (64, 64), dtype=torch.complex128)
    op = MultiCoilMRI(maps, make_mask("equispaced", (64, 64), 4, 0.08, seed=0))
    y = op(x.to(torch.complex128))
    zf = psnr(zero_filled(op, y), x)
    se = psnr(sense(op, y, iters=30).abs(), x)
    tv = psnr(tv_admm(op, y, lam=0.002, rho=0.05, iters=6).abs(), x)
    assert se > zf + 5 and tv > zf + 5


def test_cg_uses_hermitian_product_on_mri_normal_equations():
    """CG on AᴴA x = Aᴴy equals the dense least-squares solution (complex, undersampled, 2 coils)."""
    H = W = 6
    op = MultiCoilMRI(birdcage_maps(2, (H, W), dtype=torch.complex128), make_mask("random", (H, W), 2, 0.34, 3))
    eye = torch.eye(H * W, dtype=torch.complex128).reshape(H * W, 1, H, W)
    A = op(eye).reshape(H * W, -1).T  # (m, n) dense matrix
    y = torch.randn(1, 2, H, W, dtype=torch.complex128, generator=G) * op.mask
    x_ref = torch.linalg.pinv(A) @ y.reshape(-1)
    x, _ = conjugate_gradient(op.normal, op.adjoint(y), max_iter=200, tol=1e-13)
    assert torch.allclose(x.reshape(-1), x_ref, atol=1e-9)


def test_dds_runs_on_mri_with_two_channel_prior():
    """DDS with an analytic 2-channel (real, imag) Gaussian prior: real output, data-consistent."""
    H = W = 6
    op = RealImagView(MultiCoilMRI(birdcage_maps(2, (H, W), dtype=torch.complex128),
                                   make_mask("equispaced", (H, W), 2, 0.34, 0)))
    d = 2 * H * W
    prior = restore.prior("gaussian", mean=torch.full((2, H, W), 0.3, dtype=torch.float64),
                          cov=0.05 * torch.eye(d, dtype=torch.float64))
    truth = 0.3 + 0.2 * torch.randn(1, 2, H, W, generator=G, dtype=torch.float64)
    y = op(truth)
    problem = restore.Problem(y, op)
    res = restore.sampler("dds", steps=5, cg_iters=40, noisy="no").run(prior, problem, generator=torch.Generator().manual_seed(0))
    assert res.x.dtype == torch.float64 and tuple(res.x.shape) == (1, 2, H, W)
    assert float(torch.linalg.vector_norm(op(res.x) - y) / torch.linalg.vector_norm(y)) < 1e-6


# -- masks -------------------------------------------------------------------------------------------
def test_fastmri_random_mask_matches_reference_rule():
    N, R, cf, seed = 368, 4, 0.08, 42
    m = column_mask("random", N, R, cf, seed).numpy()
    pad, n_low = center_columns(N, cf)
    assert (pad, n_low) == (170, 29)
    rng = np.random.RandomState(seed)  # fastMRI RandomMaskFunc, written out
    ref = rng.uniform(size=N) < (N / R - n_low) / (N - n_low)
    ref[pad:pad + n_low] = True
    assert np.array_equal(m.astype(bool), ref)
    assert torch.equal(column_mask("random", N, R, cf, seed), column_mask("random", N, R, cf, seed))
    assert not torch.equal(column_mask("random", N, R, cf, seed), column_mask("random", N, R, cf, seed + 1))
    mean_acc = np.mean([N / float(column_mask("random", N, R, cf, s).sum()) for s in range(20)])
    assert abs(mean_acc - R) < 0.25


def test_equispaced_mask_and_2d_masks():
    m = column_mask("equispaced", 320, 8, 0.04, seed=5)
    pad, n_low = center_columns(320, 0.04)
    assert m[pad:pad + n_low].all()
    outside = torch.cat([m[:pad], m[pad + n_low:]]).nonzero().flatten()
    offs = torch.cat([torch.arange(pad), torch.arange(pad + n_low, 320)])[outside]
    assert len(set((offs % 8).tolist())) == 1  # one offset, every 8th column
    for kind in ("poisson", "gaussian"):
        mk = make_mask(kind, (32, 32), 4, 0.25, seed=2)
        assert abs(acceleration_of(mk, (32, 32)) - 4) < 0.2
        assert mk[12:20, 12:20].all()  # calibration square (side 8)
        assert torch.equal(mk, make_mask(kind, (32, 32), 4, 0.25, seed=2))
    with pytest.raises(InvalidInputError, match="integer --acceleration"):
        column_mask("equispaced", 32, 2.5)


# -- coil maps ---------------------------------------------------------------------------------------
def test_birdcage_rss_normalised_and_espirit_recovers_it():
    maps = birdcage_maps(6, (32, 32), dtype=torch.complex128)
    assert torch.allclose((maps.abs() ** 2).sum(0), torch.ones(32, 32, dtype=torch.float64))
    x = phantom(32).to(torch.complex128)
    k = simulate_kspace(x, maps[None])[0]
    mask = make_mask("random", (32, 32), 2, 0.4, seed=0)
    est = espirit_maps(k * mask, mask, kernel=4)
    inside = x[0, 0].abs() > 0.1
    corr = (est.conj() * maps).sum(0).abs()  # |<ŝ, s>| = 1 when equal up to a per-pixel phase
    assert float(corr[inside].min()) > 0.99


# -- fastMRI files and the task ----------------------------------------------------------------------
def _write_file(path, multicoil=True, slices=2, n=32, mask=None):
    x = phantom(n).to(torch.complex128).expand(slices, 1, n, n)
    maps = birdcage_maps(4, (n, n), dtype=torch.complex128)[None]
    k = simulate_kspace(x, maps) if multicoil else fft2c(x)[:, 0]
    target = x.abs()[:, 0, 4:-4, 4:-4].numpy()
    write_kspace(path, k, header=ismrmrd_header((n, n, 1), (n - 8, n - 8, 1)), target=target, mask=mask,
                 attrs={"acquisition": "CORPD_FBK", "max": 1.0})
    return x


@needs_h5py
@pytest.mark.parametrize("multicoil", [True, False])
def test_fastmri_reader_round_trip(tmp_path, multicoil):
    path = str(tmp_path / "file1000.h5")
    _write_file(path, multicoil)
    img = restore.read(path)
    assert img.data.dtype == torch.complex64 and tuple(img.data.shape) == (2, 4 if multicoil else 1, 32, 32)
    assert img.meta["fastmri_recon_size"] == (24, 24, 1) and img.meta["fastmri_encoded_size"] == (32, 32, 1)
    assert img.meta["fastmri_target_key"] == ("reconstruction_rss" if multicoil else "reconstruction_esc")
    assert tuple(img.meta["fastmri_target"].shape) == (2, 1, 24, 24)
    assert img.meta["fastmri_attrs"]["acquisition"] == "CORPD_FBK"
    assert parse_header(img.meta["fastmri_header"])["recon_size"] == (24, 24, 1)


@needs_h5py
def test_mri_task_on_fastmri_file_writes_reconstruction(tmp_path):
    import h5py

    path = str(tmp_path / "file1001.h5")
    x = _write_file(path)
    out = str(tmp_path / "rec.h5")
    settings = RunSettings(prior="stationary-gaussian", device="cpu")
    run_task("mri", path, out, settings, {"method": "sense", "mask": "equispaced",
                                                        "center_fraction": 0.25, "coil_maps": "birdcage"})
    with h5py.File(out) as f:
        rec = f["reconstruction"][()]
        assert rec.shape == (2, 24, 24) and rec.dtype == np.float32
        assert f.attrs["acquisition"] == "CORPD_FBK"
    ref = x.abs()[:, 0, 4:-4, 4:-4].float().numpy()
    assert 10 * np.log10(1 / np.mean((rec - ref) ** 2)) > 25  # back in the k-space units
    assert not [n for n in os.listdir(tmp_path) if ".partial" in n]


def test_mri_task_simulate_png(tmp_path):
    from restore.io import write

    src = str(tmp_path / "p.png")
    write(src, phantom(32).float())
    results = {}
    for method in ("zero-filled", "tv", "diffusion"):
        settings = RunSettings(prior="stationary-gaussian", device="cpu", simulate=True, steps=4)
        rep = run_task("mri", src, str(tmp_path / f"o_{method}.png"), settings,
                                     {"method": method, "center_fraction": 0.25, "coil_maps": "birdcage",
                                      "coils": 4})
        results[method] = rep.metrics["psnr"]
    assert results["tv"] > results["zero-filled"]


def test_single_coil_pnp_schedule_is_the_cli_default():
    """Single-coil runs get the longer pnp-hqs schedule (PNP_SINGLE_COIL) over the task defaults, multi-coil keeps
    DPIR's, and the user's --steps / --set still win."""
    from restore.plan import plan_task
    from restore.tasks import get_task
    from restore_mri.tasks import PNP_DEFAULTS, PNP_SINGLE_COIL

    task = get_task("mri")
    image = phantom(32).float()

    def plan(coils, **settings):
        setup = task.build(image=restore.Image(image.clone()), noise=0.0, simulate=True, generator=G, coils=coils,
                           center_fraction=0.25, coil_maps="birdcage")
        return plan_task(task, RunSettings(prior="stationary-gaussian", device="cpu", **settings), {}, setup,
                         channels=1).sampler_config

    one, eight = plan(1), plan(8)
    assert (one["steps"], one["sigma_start"]) == (PNP_SINGLE_COIL["steps"], PNP_SINGLE_COIL["sigma_start"])
    assert (eight["steps"], eight["sigma_start"]) == (PNP_DEFAULTS["steps"], PNP_DEFAULTS["sigma_start"])
    assert one["lam"] == PNP_DEFAULTS["lam"]
    assert plan(1, steps=3)["steps"] == 3
    assert plan(1, sampler_options={"sigma_start": 0.1})["sigma_start"] == 0.1
    # --quality scales the single-coil schedule, not pnp-hqs's own 8 steps
    assert plan(1, quality="best")["steps"] == 2 * PNP_SINGLE_COIL["steps"]
    assert plan(1, quality="draft")["steps"] < PNP_SINGLE_COIL["steps"]
    assert plan(8, quality="best")["steps"] == 2 * PNP_DEFAULTS["steps"]


@needs_h5py
def test_bad_kspace_files_and_masks(tmp_path):
    import h5py

    bad = str(tmp_path / "bad.h5")
    with h5py.File(bad, "w") as f:
        f.create_dataset("image", data=np.zeros((2, 4, 4)))
    with pytest.raises(InvalidInputError, match="no 'kspace' dataset"):
        read_fastmri(bad)
    with h5py.File(bad, "w") as f:
        f.create_dataset("kspace", data=np.zeros((2, 4, 4), np.float32))
    with pytest.raises(InvalidInputError, match="kspace must be complex"):
        read_fastmri(bad)
    with h5py.File(bad, "w") as f:
        f.create_dataset("kspace", data=np.zeros((1, 2, 2, 4, 4), np.complex64))
    with pytest.raises(ShapeError, match=r"\(slices, coils, H, W\)"):
        read_fastmri(bad)
    path = str(tmp_path / "m.h5")
    _write_file(path, mask=np.ones(31, bool))
    with pytest.raises(ShapeError, match="mask has length 31 but kspace has 32 columns"):
        read_fastmri(path)
    good = str(tmp_path / "g.h5")
    _write_file(good)
    np.save(tmp_path / "mask.npy", np.ones(30))
    settings = RunSettings(prior="stationary-gaussian", device="cpu")
    with pytest.raises(ShapeError, match="does not match k-space of 32x32") as err:
        run_task("mri", good, str(tmp_path / "o.h5"), settings, {"mask": str(tmp_path / "mask.npy")})
    assert "\n" not in str(err.value)
    with pytest.raises(RestoreError, match="unknown --method"):
        run_task("mri", good, str(tmp_path / "o.h5"), settings, {"method": "magic"})


@needs_h5py
def test_multi_slice_files_are_reconstructed_in_chunks(tmp_path):
    import h5py

    from restore.problem import Problem
    from restore.plan import batch_parts

    maps = birdcage_maps(4, (16, 16), dtype=torch.complex128)[None] * torch.exp(1j * torch.arange(5.0))[:, None, None, None]
    op = PhaseMagnitude(MultiCoilMRI(maps, make_mask("random", (16, 16), 4, 0.25, 0)), torch.rand(5, 1, 16, 16, generator=G))
    x = torch.rand(5, 1, 16, 16, generator=G, dtype=torch.float64)
    parts = batch_parts(Problem(op(x), op), 2)
    assert [p.y.shape[0] for p in parts] == [2, 2, 1]
    torch.testing.assert_close(torch.cat([p.operator(x[2 * i:2 * i + 2]) for i, p in enumerate(parts)]), op(x))

    path = str(tmp_path / "file1002.h5")
    _write_file(path, slices=5)
    outputs = []
    for chunk in (2, 5):
        out = str(tmp_path / f"rec{chunk}.h5")
        run_task("mri", path, out, RunSettings(prior="stationary-gaussian", device="cpu"),
                 {"method": "sense", "mask": "equispaced", "center_fraction": 0.25, "coil_maps": "birdcage",
                  "chunk": chunk})
        with h5py.File(out) as f:
            outputs.append(f["reconstruction"][()])
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)

    seen = []
    run_task("mri", path, str(tmp_path / "dds.h5"), RunSettings(prior="stationary-gaussian", device="cpu", steps=3),
             {"mask": "equispaced", "center_fraction": 0.25, "coil_maps": "birdcage", "chunk": 2},
             progress=lambda step, total, nfe: seen.append(total))
    assert seen[-1] == 3 * 3  # three chunks (2 + 2 + 1 slices) of three steps

"""Regression tests for issue 20: the diffusion MRI reconstruction is at least as good as zero-filled and SENSE.

Single-coil and multi-coil, from ``--simulate`` and from a fastMRI-style file, on a smooth image that fills
the field of view, with the analytic stationary-Gaussian prior, for the task's default sampler (pnp-hqs) and
for DDS (a slow-marked test repeats the default with the shipped medical prior). Before the fix, single-coil DDS ran exact CG on the fixed-phase magnitude view,
whose normal operator has near-zero eigenvalues on the unsampled columns; the data's small inconsistency
with the estimated phase was amplified into vertical stripes far below zero-filled.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.io import write
from restore.metrics import psnr
from restore.tasks import RunSettings, run_task
from restore_mri.coils import birdcage_maps, simulate_kspace
from restore_mri.fastmri import write_kspace
from restore_mri.fft import fft2c
from restore_mri.masks import column_mask

pytest.importorskip("h5py")

N = 48


def smooth_image(n: int = N) -> torch.Tensor:
    """A smooth magnitude image (1, 1, n, n) in [0.1, 0.9] whose content fills the whole field of view."""
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    img = 0.5 + 0.2 * torch.sin(2 * torch.pi * (1.5 * xx + 0.5 * yy)) * torch.cos(2 * torch.pi * 1.2 * yy)
    img = img + 0.2 * torch.exp(-((xx - 0.35) ** 2 + (yy - 0.6) ** 2) / 0.02)
    return img.clamp(0.1, 0.9)[None, None]


NOISE = 0.01  # noiseless multi-coil SENSE is exact at 4x, which no prior can improve on
SAMPLES = 4


def _methods(tmp_path, path, options, prior="stationary-gaussian", steps=30, reference=None, sampler=None):
    out = {}
    for method in ("zero-filled", "sense", "diffusion"):
        diffusion = method == "diffusion"
        settings = RunSettings(prior=prior, device="cpu", simulate=reference is None, steps=steps, noise=NOISE,
                               sampler=sampler if diffusion else None, samples=SAMPLES if diffusion and sampler else 1)
        dst = str(tmp_path / f"{method}.{'png' if reference is None else 'h5'}")
        rep = run_task("mri", path, dst, settings, {"method": method, **options})
        if reference is None:
            out[method] = rep.metrics["psnr"]
        else:
            import h5py

            with h5py.File(dst) as f:
                rec = torch.from_numpy(f["reconstruction"][()]).double()
            out[method] = psnr(rec[:, None], reference, data_range=float(reference.max()))
    return out


# The task's default sampler (pnp-hqs) is deterministic: with the stationary prior, which is diagonal in Fourier
# space, it leaves the unsampled columns of one coil at the prior mean (zero), as zero-filling does, and smooths
# the sampled ones, so it is at least zero-filled with no slack (+0.04 to +0.10 dB here).
# DDS, where the single-coil bug was, samples: its unsampled columns keep the prior's variance / SAMPLES on top
# of that mean. Over seeds 0-3 the 4-sample average lands 3.4-3.9 dB below zero-filled here, hence 4.5 dB;
# the bug cost 20 dB. Multi-coil: the coils do inform the unsampled columns, no slack for either sampler.
TOLERANCE = {(1, None): 0.0, (4, None): 0.0, (1, "dds"): 4.5, (4, "dds"): 0.0}
SAMPLERS = [None, "dds"]  # None: the task's default


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("coils", [1, 4])
def test_simulated_diffusion_at_least_zero_filled_and_sense(tmp_path, coils, sampler):
    src = str(tmp_path / "smooth.png")
    write(src, smooth_image().float())
    p = _methods(tmp_path, src, {"coils": coils, "acceleration": 4.0, "center_fraction": 0.08, "mask_seed": 0},
                 sampler=sampler)
    assert p["diffusion"] >= max(p["zero-filled"], p["sense"]) - TOLERANCE[coils, sampler], p


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("coils", [1, 4])
def test_fastmri_file_diffusion_at_least_zero_filled_and_sense(tmp_path, coils, sampler, caplog):
    x = smooth_image() * 3.0  # k-space units other than [0, 1]: the task normalises and scales back
    x = x.to(torch.complex128)
    maps = birdcage_maps(coils, (N, N), dtype=torch.complex128)[None] if coils > 1 else None
    k = simulate_kspace(x, maps)[0] if coils > 1 else fft2c(x)[0, 0]
    k = k + 3.0 * NOISE * torch.randn(k.shape, generator=torch.Generator().manual_seed(1), dtype=k.dtype)
    mask = column_mask("random", N, 4, 0.08, seed=0).numpy()
    path = str(tmp_path / "file_r20.h5")
    write_kspace(path, (k * torch.from_numpy(mask))[None], mask=mask.astype(bool))
    options = {}
    if coils > 1:  # measured maps as a file: this smooth image fills the field of view (see the next test)
        np.save(str(tmp_path / "maps.npy"), maps[0].numpy())
        options = {"coil_maps": str(tmp_path / "maps.npy")}
    p = _methods(tmp_path, path, options, reference=x.abs(), sampler=sampler)
    assert p["diffusion"] >= max(p["zero-filled"], p["sense"]) - TOLERANCE[coils, sampler], p
    assert "coil maps" not in caplog.text


def test_poor_coil_map_estimate_is_reported_in_one_line(tmp_path, caplog):
    """Coil maps estimated from 4 centre lines of an image that fills the field of view fit the data badly."""
    x = smooth_image().to(torch.complex128)
    maps = birdcage_maps(4, (N, N), dtype=torch.complex128)[None]
    mask = column_mask("random", N, 4, 0.08, seed=0).numpy()
    path = str(tmp_path / "file_maps.h5")
    write_kspace(path, (simulate_kspace(x, maps) * torch.from_numpy(mask)), mask=mask.astype(bool))
    run_task("mri", path, str(tmp_path / "o.h5"), RunSettings(device="cpu"), {"method": "sense"})
    lines = [r.getMessage() for r in caplog.records if "coil maps" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "--coil-maps FILE.npy" in lines[0]


def test_simulate_uses_the_simulated_maps_and_says_so(tmp_path, caplog):
    src = str(tmp_path / "smooth.png")
    write(src, smooth_image().float())
    rep = run_task("mri", src, str(tmp_path / "o.png"), RunSettings(device="cpu", simulate=True, noise=0.0),
                   {"method": "sense", "coils": 4, "acceleration": 2.0, "center_fraction": 0.08, "mask_seed": 0})
    assert rep.metrics["psnr"] > 40  # noiseless SENSE with the true maps at 2x is near exact
    assert sum("birdcage coil maps the simulation used" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.slow
def test_shipped_prior_single_coil_at_least_zero_filled(tmp_path):
    """The default medical prior on a held-out real MRI slice (matplotlib's s1045), single-coil 4x."""
    bench = pytest.importorskip("bench.medical")
    src = str(tmp_path / "s1045.png")
    write(src, bench.load_image("s1045", 64, False))
    p = _methods(tmp_path, src, {"coils": 1, "acceleration": 4.0, "center_fraction": 0.08, "mask_seed": 0},
                 prior="default", steps=20)
    assert p["diffusion"] >= p["zero-filled"], p


@pytest.mark.slow
def test_shipped_prior_single_coil_small_noise_costs_little(tmp_path):
    """An object on a zero background: there the estimated phase is noise, the fixed-phase view has near-null
    directions, and an uncapped data step amplified k-space noise of 0.002 into a 4.7 dB loss here (35.1 -> 30.4
    dB; s1045 at 128²: 30.4 -> 5.9). Small noise must cost little."""
    t = torch.linspace(-1, 1, N, dtype=torch.float64)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= 0.6).double()
    src = str(tmp_path / "object.png")
    write(src, (smooth_image() * disk).float())
    scores = {}
    for noise in (0.0, 0.002):
        settings = RunSettings(prior="default", device="cpu", simulate=True, noise=noise, overwrite=True)
        rep = run_task("mri", src, str(tmp_path / "o.png"), settings,
                       {"coils": 1, "acceleration": 4.0, "center_fraction": 0.08, "mask_seed": 0})
        scores[noise] = rep.metrics["psnr"]
    assert scores[0.002] >= scores[0.0] - 1.0, scores

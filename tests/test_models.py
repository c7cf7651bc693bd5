"""Shipped priors (issue 3): offline loading, full convolutionality, denoising quality, the training command."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import restore
from restore.cli import main
from restore.metrics import psnr

SHIPPED = {"natural-rgb": 3, "natural-gray": 1, "medical-gray": 1}


def _shipped(name):
    names = {c.name for c in restore.components("prior")}
    if name not in names:
        pytest.fail(f"shipped prior '{name}' is not registered; known: {sorted(names)}")
    return restore.prior(name, device="cpu")


def _validation_crop(name: str, side: int) -> torch.Tensor:
    from restore_models.ship import validation_images

    img = validation_images(name, side=side)[0][1]
    return img


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_prior_loads_offline_and_is_the_default(name):
    prior = _shipped(name)
    assert prior.kind == "vp" and prior.channels == SHIPPED[name]
    domain = "medical" if name.startswith("medical") else "natural"
    assert restore.default_prior_name(SHIPPED[name], domain) == name


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_prior_is_fully_convolutional(name):
    prior = _shipped(name)
    k = 200
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    clean = _validation_crop(name, 96) * 2 - 1
    x_big = a * clean + s * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    crop = x_big[..., 16:80, 16:80]
    with torch.no_grad():
        from_big = prior.x0(x_big, k)[..., 16:80, 16:80]
        from_crop = prior.x0(crop, k)
    # Away from the crop's border the denoised crops agree up to GroupNorm's image-wide statistics:
    # measured ~0.01 RMS (model units, range 2) against a denoising error of ~0.1.
    diff = (from_big - from_crop)[..., 16:48, 16:48].pow(2).mean().sqrt()
    error = (from_crop - clean[..., 16:80, 16:80])[..., 16:48, 16:48].pow(2).mean().sqrt()
    assert float(diff) < 0.03 and float(diff) < 0.5 * float(error), (float(diff), float(error))
    with torch.no_grad():
        assert prior.eps(torch.zeros(1, SHIPPED[name], 40, 56), 10).shape == (1, SHIPPED[name], 40, 56)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_one_step_denoiser_beats_the_noisy_input(name):
    from restore_models.evaluate import tweedie_denoise

    prior = _shipped(name)
    clean = _validation_crop(name, 128)
    sigma = 25 / 255
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    gain = psnr(tweedie_denoise(prior, noisy, sigma), clean) - psnr(noisy.clamp(0, 1), clean)
    assert gain > 4.0, gain


def test_one_step_denoiser_of_a_flow_prior_is_the_exact_posterior_mean():
    from restore.priors.flow import GaussianFlowPrior
    from restore_models.evaluate import tweedie_denoise

    g = torch.Generator().manual_seed(0)
    root = 0.1 * torch.randn(4, 4, generator=g, dtype=torch.float64)
    cov = root @ root.T + 0.01 * torch.eye(4, dtype=torch.float64)
    mean = torch.full((1, 2, 2), 0.5, dtype=torch.float64)
    sigma = 0.05
    noisy = mean[None] + 0.05 * torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64)
    exact = 0.5 + cov @ torch.linalg.solve(cov + sigma**2 * torch.eye(4, dtype=torch.float64), noisy.flatten() - 0.5)
    for interpolant in ("rectified", "trigonometric"):
        prior = GaussianFlowPrior(mean, cov, interpolant=interpolant)
        assert torch.allclose(tweedie_denoise(prior, noisy, sigma).flatten(), exact, atol=1e-10)


def test_train_command_trains_saves_resumes_and_loads(tmp_path, capsys):
    out = tmp_path / "tiny"
    args = ["train", "prior", "--preset", "natural-gray", "-o", str(out), "--widths", "8,16", "--crop", "16",
            "--batch-size", "2"]
    assert main(args + ["--steps", "3"]) == 0, capsys.readouterr().err
    assert (out / "checkpoint.pt").exists() and (out / "unet" / "config.json").exists()
    assert main(args + ["--steps", "5", "--resume", str(out / "checkpoint.pt")]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 5
    prior = restore.prior(str(out), device="cpu")
    assert prior.eps(torch.zeros(1, 1, 16, 16), 3).shape == (1, 1, 16, 16)
    assert main(["train", "prior", "--preset", "nope", "-o", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_default_deblur_with_the_trained_prior_beats_the_stationary_prior(tmp_path, capsys):
    from PIL import Image as PILImage

    sample = os.path.join(os.path.dirname(__file__), "..", "sample_images", "chelsea.png")
    arr = np.asarray(PILImage.open(sample).convert("RGB"))[64:192, 64:192]
    PILImage.fromarray(arr).save(tmp_path / "clean.png")
    scores = {}
    for prior in ("default", "stationary-gaussian"):
        out = tmp_path / f"{prior}.png"
        code = main(["deblur", str(tmp_path / "clean.png"), "--simulate", "--kernel", "gaussian:2",
                     "-o", str(out), "--prior", prior, "--save-config"])
        assert code == 0, capsys.readouterr().err
        import json

        cfg = json.loads((tmp_path / f"{prior}.png.config.json").read_text())
        scores[cfg["prior"]] = cfg["metrics"]["psnr"]
    # The default sampler (pnp-hqs, measured best) makes even the stationary Gaussian prior a strong Wiener-like
    # baseline: the trained prior leads it by 0.8 dB here (by 1.0 dB under 20 DDS steps).
    assert scores["natural-rgb"] > scores["stationary-gaussian"] + 0.5, scores


def test_training_history_lists_each_stage_once():
    from restore_models.ship import training_history

    run = {"training_steps": 300, "training_minutes": 10.0, "train_config": {"init": None, "data": ["d"]}}
    stage = {"steps": 300, "minutes": 10.0, "init": None, "data": ["d"]}
    assert training_history(run) == [stage]
    shipped = {**run, "history": [{"steps": 100, "minutes": 5.0, "init": None, "data": []}, stage]}
    assert training_history(shipped) == shipped["history"]  # its own stage is already the last entry


def test_a_run_inherits_the_history_of_the_prior_it_started_from(tmp_path):
    import json

    from restore_models.ship import run_history

    def prior(name, history):
        (tmp_path / name).mkdir()
        (tmp_path / name / "restore_prior.json").write_text(json.dumps({"name": name, "history": history}))

    gray = [{"steps": 2000, "minutes": 80.0, "init": None, "data": ["photos"]}]
    medical = [{"steps": 3000, "minutes": 90.0, "init": None, "data": []}]
    prior("natural-gray", gray)
    prior("medical-gray", medical)
    run = {"name": "medical-gray", "training_steps": 500, "training_minutes": 30.0,
           "train_config": {"init": "natural-gray", "data": ["photos"]}}
    stage = {"steps": 500, "minutes": 30.0, "init": "natural-gray", "data": ["photos"], "prior": "medical-gray"}
    # started from natural-gray: its stages (named as its), not those of the medical-gray it replaces
    assert run_history(run, tmp_path) == [{**gray[0], "prior": "natural-gray"}, stage]
    continued = {**run, "train_config": {"init": "medical-gray", "data": []}, "training_steps": 3500}
    assert run_history(continued, tmp_path)[0] == {**medical[0], "prior": "medical-gray"}
    assert run_history({**run, "train_config": {"init": None, "data": []}}, tmp_path)[0]["init"] is None
    # a run started from an unshipped run folder keeps every stage back to the shipped prior behind that run
    folder = tmp_path / "runs" / "gray-run"
    folder.mkdir(parents=True)
    folder.joinpath("restore_prior.json").write_text(json.dumps(
        {"name": "natural-gray", "training_steps": 700, "training_minutes": 40.0,
         "train_config": {"init": "natural-gray", "data": ["photos"]}}))
    chained = {"name": "natural-gray", "training_steps": 900, "training_minutes": 20.0,
               "train_config": {"init": str(folder), "data": ["photos"]}}
    assert [h["steps"] for h in run_history(chained, tmp_path)] == [2000, 700, 900]


def test_a_new_run_from_the_shipped_weights_is_a_new_stage_and_a_continued_run_replaces_its_own(tmp_path):
    import json

    from restore_models.ship import run_history
    from restore_models.training import weights_fingerprint

    folder = tmp_path / "natural-rgb"
    (folder / "unet").mkdir(parents=True)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"the weights shipped now")
    first = {"steps": 7000, "minutes": 200.0, "init": None, "data": []}
    tuned = {"steps": 1800, "minutes": 130.0, "init": "natural-rgb", "data": ["photos"], "init_weights": "0123456789ab"}
    (folder / "restore_prior.json").write_text(json.dumps({"name": "natural-rgb", "history": [first, tuned]}))
    run = {"name": "natural-rgb", "training_steps": 4000, "training_minutes": 90.0,
           "train_config": {"init": "natural-rgb", "data": ["photos"]}}
    # same --init and data as the last stage, but started from the weights shipped now: a third stage
    new = run_history({**run, "init_weights": weights_fingerprint(str(weights))}, tmp_path)
    assert [s["steps"] for s in new] == [7000, 1800, 4000]
    # started where the last stage started (that run resumed and shipped again): it replaces that stage
    again = run_history({**run, "init_weights": "0123456789ab"}, tmp_path)
    assert [s["steps"] for s in again] == [7000, 4000] and again[-1]["init_weights"] == "0123456789ab"


def test_dipy_validation_set_reads_every_slice_of_the_b0_volume(tmp_path, monkeypatch):
    nib = pytest.importorskip("nibabel")
    from restore_models.data import MEDICAL_EXTRA_VALIDATION, MEDICAL_TRAIN
    from restore_models.evaluate import validation_set

    vol = np.random.default_rng(0).random((40, 32, 3, 2)).astype(np.float32)  # (x, y, z, volume)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "S0_10slices.nii.gz"))
    monkeypatch.setenv("RESTORE_DIPY_DATA", str(tmp_path))
    images = validation_set("dipy-val", 1, root="unused")
    assert [key for key, _ in images] == [f"dipy:S0_10slices.nii.gz#{z}" for z in range(3)]
    assert all(im.shape == (1, 1, 32, 32) and 0 <= im.min() and im.max() <= 1 for _, im in images)  # rows = y
    assert not set(MEDICAL_EXTRA_VALIDATION) & set(MEDICAL_TRAIN)


def test_dipy_validation_set_without_the_files_names_the_fix(tmp_path, monkeypatch):
    from restore.errors import InvalidInputError
    from restore_models.evaluate import validation_set

    monkeypatch.setenv("RESTORE_DIPY_DATA", str(tmp_path))
    with pytest.raises(InvalidInputError, match="pip install dipy"):
        validation_set("dipy-val", 1, root="unused")


def test_a_medical_card_reports_the_unseen_dipy_slices_apart_from_the_wheel_slices():
    import json

    from restore_models.evaluate import Row
    from restore_models.plugin import WEIGHTS
    from restore_models.ship import SIGMAS, model_card

    meta = json.loads((WEIGHTS / "medical-gray" / "restore_prior.json").read_text())
    rows = [Row(f"{group}|key", sigma, 20.0, psnr_, None, 0.1)
            for group, psnr_ in (("wheels-val", 30.0), ("dipy-val", 31.0)) for sigma in SIGMAS]
    card = model_card(meta, rows, fwd_ms=300.0, size_mb=8.3, dtype="float16")
    assert "| wheel images | 1 | 25/255 | 20.00 | 30.00 | n/a |" in card
    assert "| dipy b=0 MRI (unseen) | 1 | 25/255 | 20.00 | 31.00 | n/a |" in card
    assert "dipy:S0_10slices.nii.gz (a scanner and contrast no stage trained on" in card

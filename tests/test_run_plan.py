"""One run plan for the CLI, the Python API and batch (issue 15): what runs is what is recorded."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import restore
import restore.api  # the fixture patches it; the package imports it lazily
from restore.batch.runner import batch_config
from restore.cli import main
from restore.errors import InvalidInputError
from restore.operators import Identity
from restore.plan import make_plan, plan_task
from restore.tasks import RunSettings, get_task

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "sample_images", "camera.png")


@pytest.fixture
def gray_image(tmp_path):
    path = tmp_path / "in.png"
    PILImage.fromarray(np.asarray(PILImage.open(SAMPLE).convert("L").resize((32, 32)))).save(path)
    return path


@pytest.fixture
def no_prior_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a prior was loaded")

    monkeypatch.setattr(restore.api, "prior", refuse)


def test_mri_sense_records_sense_and_loads_no_prior(tmp_path, gray_image, capsys, no_prior_loading):
    out = tmp_path / "out.png"
    code = main(["mri", str(gray_image), "-o", str(out), "--simulate", "--method", "sense", "--coils", "4",
                 "--coil-maps", "birdcage", "--save-config"])
    assert code == 0, capsys.readouterr().err
    cfg = json.loads((tmp_path / "out.png.config.json").read_text())
    assert cfg["sampler"] == "mri-sense" and cfg["prior"] is None and cfg["options"]["method"] == "sense"
    assert cfg["sampler_config"] == {"steps": 30}


def test_denoise_steps_with_tweedie_says_in_one_line_that_it_has_none(tmp_path, gray_image, capsys):
    out = tmp_path / "out.png"
    code = main(["denoise", str(gray_image), "-o", str(out), "--noise", "0.1", "--steps", "50", "--save-config",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("note: sampler tweedie has no steps"), err
    cfg = json.loads((tmp_path / "out.png.config.json").read_text())
    assert cfg["sampler"] == "tweedie" and "steps" not in cfg["sampler_config"] and cfg["nfe"] == 8  # the x8 average


def test_denoise_estimates_the_noise_of_a_real_input(tmp_path, capsys):
    """A real photo's noise is unknown: 25/255 assumed on a photo with 2/255 gave 24.7 dB from a 42 dB input
    (bsd400 validation crops). Without --noise (or with --noise auto) the level is estimated and recorded."""
    g = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    clean = 0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy)
    noisy = np.clip(clean + 0.05 * g.standard_normal(clean.shape), 0, 1)
    PILImage.fromarray(np.round(noisy * 255).astype(np.uint8)).save(tmp_path / "noisy.png")
    assert abs(restore.GaussianNoise.estimate(torch.from_numpy(noisy)[None, None]) / 0.05 - 1) < 0.1
    for extra in ([], ["--noise", "auto"]):
        out = tmp_path / f"out{len(extra)}.png"
        assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(out), "--save-config", "-q", *extra]) == 0
        err = capsys.readouterr().err.strip()
        assert err.startswith("note: noise 0.0") and "estimated from the input" in err and "\n" not in err
        recorded = json.loads((tmp_path / f"{out.name}.config.json").read_text())["noise"]
        assert abs(recorded / 0.05 - 1) < 0.1
    PILImage.fromarray(np.round(noisy * 255).astype(np.uint8)).save(tmp_path / "noisy.jpg", quality=85)
    assert main(["denoise", str(tmp_path / "noisy.jpg"), "-o", str(tmp_path / "j.png"), "-q"]) == 0
    assert "JPEG compression hides part of the noise" in capsys.readouterr().err
    for args, expected in ((["--noise", "auto", "--simulate"], "with --simulate give the level"),
                           (["--noise", "abc"], "must be a number"), (["--noise", "-0.1"], "must be >= 0")):
        assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "x.png"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err and not (tmp_path / "x.png").exists()
    assert main(["super-resolve", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "x.png"), "--noise", "auto"]) == 2
    assert "not available for super-resolve" in capsys.readouterr().err


def test_a_denoise_batch_estimates_each_inputs_noise(tmp_path):
    """Photos of a folder differ in noise: a batch estimates each one's level and records it per input; the
    batch's config records that it was estimated rather than the 25/255 that --simulate would add."""
    from restore.batch import run_batch

    g = np.random.default_rng(2)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    clean = 0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy)
    for sigma in (0.02, 0.08):
        noisy = np.clip(clean + sigma * g.standard_normal(clean.shape), 0, 1)
        PILImage.fromarray(np.round(noisy * 255).astype(np.uint8)).save(tmp_path / f"noisy{sigma}.png")
    result = run_batch([str(tmp_path / "noisy*.png")], "denoise", str(tmp_path / "out"),
                       settings=RunSettings(sampler="tweedie", sampler_options={"transforms": 1}))
    assert result.ok
    noise = {os.path.basename(r["input"]): r["noise"] for r in result.records}
    assert abs(noise["noisy0.02.png"] / 0.02 - 1) < 0.15 and abs(noise["noisy0.08.png"] / 0.08 - 1) < 0.15
    assert plan_task(get_task("denoise"), RunSettings(), {}).record()["noise"] == "auto"
    assert plan_task(get_task("denoise"), RunSettings(simulate=True), {}).record()["noise"] == pytest.approx(25 / 255)


def test_deblur_estimates_the_noise_on_request(tmp_path, capsys):
    """Blur leaves the finest wavelet band to the noise: the estimate is within 5 % on blurred photographs
    (bench/results/noise_estimate.json), so deblur offers --noise auto; its default stays 0.01."""
    g = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    clean = torch.from_numpy(0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy)).float()[None, None]
    blurred = restore.operator("gaussian-blur", sigma=2.0)(clean)[0, 0].numpy()
    noisy = np.clip(blurred + 0.02 * g.standard_normal(blurred.shape), 0, 1)
    PILImage.fromarray(np.round(noisy * 255).astype(np.uint8)).save(tmp_path / "blurred.png")
    out = tmp_path / "out.png"
    assert main(["deblur", str(tmp_path / "blurred.png"), "-o", str(out), "--noise", "auto", "--quality", "draft",
                 "--save-config", "-q"]) == 0
    assert "estimated from the input" in capsys.readouterr().err
    assert abs(json.loads((tmp_path / "out.png.config.json").read_text())["noise"] / 0.02 - 1) < 0.1
    assert main(["deblur", str(tmp_path / "blurred.png"), "-o", str(tmp_path / "default.png"), "--quality", "draft",
                 "--save-config", "-q"]) == 0
    assert json.loads((tmp_path / "default.png.config.json").read_text())["noise"] == 0.01


def test_steps_reach_samplers_that_have_them_and_the_record_is_what_ran():
    task = get_task("denoise")
    plan = plan_task(task, RunSettings(sampler="dds", steps=7, sampler_options={"eta": 0.5}), {})
    assert plan.sampler_config["steps"] == 7 and plan.sampler_config["eta"] == 0.5 and not plan.notes
    built = plan.build_sampler()
    assert built.config.steps == 7 and plan.record()["sampler_config"] == plan.sampler_config
    # batch hashes exactly the plan's record
    settings = RunSettings(sampler="dds", steps=7, sampler_options={"eta": 0.5})
    assert {k: v for k, v in batch_config(task, settings, {}).items() if k != "device"} == plan.record()


def test_setup_method_wins_and_classical_plans_name_no_prior():
    plan = make_plan("mri-sense", steps=12)
    assert plan.prior is None and plan.sampler_config == {"steps": 12}
    assert make_plan("mri-zero-filled", steps=12).notes  # no steps: a note, not an error
    with pytest.raises(InvalidInputError, match="noisy=.maybe. is not allowed; noisy takes one of auto, yes, no"):
        make_plan("dds", option_layers=({"noisy": "maybe"},))


def test_solve_runs_the_same_plan():
    prior = restore.prior("gaussian", mean=torch.full((4,), 0.5, dtype=torch.float64),
                          cov=0.01 * torch.eye(4, dtype=torch.float64))
    y = torch.full((1, 4), 0.6, dtype=torch.float64)
    x = restore.solve(y, Identity(), prior=prior, sampler="tweedie", noise_sigma=0.1, steps=50, device="cpu")
    direct = restore.sampler("tweedie").run(prior, restore.Problem(y, Identity(), restore.GaussianNoise(0.1))).x
    torch.testing.assert_close(x, direct, rtol=0, atol=1e-12)  # the same sampler run; float64

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
    code = main(["denoise", str(gray_image), "-o", str(out), "--steps", "50", "--save-config", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("note: sampler tweedie has no steps"), err
    cfg = json.loads((tmp_path / "out.png.config.json").read_text())
    assert cfg["sampler"] == "tweedie" and "steps" not in cfg["sampler_config"] and cfg["nfe"] == 8  # the x8 average


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

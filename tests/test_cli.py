"""The CLI end to end: bad input is one line on stderr, exit code 2, and no output file."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image as PILImage

from restore.cli import main

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "sample_images", "astronaut.png")


@pytest.fixture
def small_image(tmp_path):
    arr = np.asarray(PILImage.open(SAMPLE).convert("RGB").resize((32, 32)))
    path = tmp_path / "in.png"
    PILImage.fromarray(arr).save(path)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("case", ["missing", "truncated", "operator", "sampler", "prior", "noise", "exists", "kernel"])
def test_bad_input_is_one_line_exit_2_and_leaves_no_output(tmp_path, small_image, capsys, case):
    out = tmp_path / "out.png"
    args = ["deblur", small_image, "-o", out, "--steps", "2", "--prior", "stationary-gaussian"]
    if case == "missing":
        args[1] = tmp_path / "nope.png"
    elif case == "truncated":
        data = small_image.read_bytes()
        bad = tmp_path / "bad.png"
        bad.write_bytes(data[: len(data) // 3])
        args[1] = bad
    elif case == "operator":
        args += ["--kernel", "wobble:3"]
    elif case == "sampler":
        args += ["--sampler", "dpz"]
    elif case == "prior":
        args[-1] = "no-such-prior"
    elif case == "noise":
        args += ["--noise", "-0.1"]
    elif case == "exists":
        shutil.copy(small_image, out)
        before = out.read_bytes()
    elif case == "kernel":
        args += ["--kernel", "motion:80:0"]
    code, err = run(capsys, *args)
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    if case == "exists":
        assert out.read_bytes() == before and "--overwrite" in err
    else:
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    if case == "sampler":
        assert "dps" in err  # did-you-mean / known names


def test_samples_write_mean_std_and_config(tmp_path, small_image, capsys):
    out = tmp_path / "out.png"
    code, err = run(capsys, "denoise", small_image, "-o", out, "--sampler", "dds", "--steps", "3", "--samples", "3",
                    "--noise", "0.05", "--save-config", "--prior", "stationary-gaussian")
    assert code == 0, err
    assert out.exists() and (tmp_path / "out_std.png").exists()
    cfg = json.loads((tmp_path / "out.png.config.json").read_text())
    assert cfg["sampler"] == "dds" and cfg["sampler_config"]["steps"] == 3 and cfg["samples"] == 3


def test_samples_of_a_deterministic_sampler_say_so(tmp_path, small_image, capsys):
    out = tmp_path / "out.png"
    code, err = run(capsys, "deblur", small_image, "-o", out, "--samples", "2", "--prior", "stationary-gaussian")
    assert code == 0, err
    assert "pnp-hqs is deterministic" in err and "--sampler diffpir" in err, err
    code, err = run(capsys, "deblur", small_image, "-o", tmp_path / "b.png", "--samples", "2", "--sampler", "dds",
                    "--steps", "3", "--prior", "stationary-gaussian")
    assert code == 0 and "deterministic" not in err, err


def test_denoise_defaults_to_the_x8_averaged_posterior_mean(tmp_path, small_image, capsys):
    out = tmp_path / "out.png"
    code, err = run(capsys, "denoise", small_image, "-o", out, "--simulate", "--save-config")
    assert code == 0, err
    cfg = json.loads((tmp_path / "out.png.config.json").read_text())
    assert cfg["sampler"] == "tweedie" and cfg["sampler_config"]["transforms"] == 8 and cfg["nfe"] == 8
    assert cfg["metrics"]["psnr"] > cfg["metrics"]["psnr_input"] + 3
    code, err = run(capsys, "denoise", small_image, "-o", tmp_path / "draft.png", "--simulate", "--save-config",
                    "--quality", "draft")
    assert code == 0, err
    assert json.loads((tmp_path / "draft.png.config.json").read_text())["nfe"] == 1


def test_list_and_plugins_commands(capsys):
    code, _ = run(capsys, "list", "samplers")
    assert code == 0
    assert main(["plugins"]) == 0
    assert "imaging" in capsys.readouterr().out


def test_up_front_network_calls_follow_the_task_defaults_and_quality():
    from restore.cli.guard import expected_nfe, expected_steps
    from restore.tasks import RunSettings, get_task

    denoise, deblur = get_task("denoise"), get_task("deblur")
    assert expected_steps(denoise, RunSettings()) is None  # tweedie has no steps: its one step sets the bar
    assert expected_nfe(denoise, RunSettings()) == 8  # the x8 average
    assert expected_nfe(denoise, RunSettings(quality="draft")) == 1
    assert expected_nfe(denoise, RunSettings(samples=2, sampler_options={"transforms": 4})) == 8
    assert expected_steps(deblur, RunSettings(quality="draft")) == 8  # deblur's draft preset: pnp-hqs 8

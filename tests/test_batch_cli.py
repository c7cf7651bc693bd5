"""``restore batch TASK INPUTS… [task options]``: same options as ``restore TASK``, local == Dask bytes,
a broken input reported while the others finish (exit 1)."""
from __future__ import annotations

from pathlib import Path

import pytest

from restore.cli import main

from test_batch import cut_images

COMMON = ["--kernel", "gaussian:1.5", "--noise", "0.01", "--prior", "stationary-gaussian", "--steps", "3",
          "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    cut_images(folder, n=3, size=24)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_deblur.png"))}


def test_task_form_local_and_dask_byte_identical_and_a_broken_input_is_reported(inputs, tmp_path, capsys):
    pytest.importorskip("distributed")
    local, dask = tmp_path / "local", tmp_path / "dask"
    assert main(["batch", "deblur", str(inputs / "*.png"), *COMMON, "-o", str(local)]) == 1
    err = capsys.readouterr().err
    assert "failed: broken.png" in err and "3 done" in err and "1 failed" in err, err
    assert main(["batch", "deblur", str(inputs / "*.png"), *COMMON, "-o", str(dask), "--engine", "dask",
                 "--workers", "2"]) == 1
    assert sorted(outputs(local)) == ["img0_deblur.png", "img1_deblur.png", "img2_deblur.png"]
    assert outputs(local) == outputs(dask)
    assert not (local / "broken_deblur.png").exists() and not list(local.glob(".*partial*"))


def test_task_option_form_equals_the_old_task_opt_form(inputs, tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    good = [str(inputs / f"img{i}.png") for i in range(2)]
    assert main(["batch", "deblur", *good, *COMMON, "-o", str(new)]) == 0
    opts = [a for a in COMMON if a not in ("--kernel", "gaussian:1.5")]
    assert main(["batch", *good, "--task", "deblur", "--opt", "kernel=gaussian:1.5", *opts, "-o", str(old)]) == 0
    assert outputs(new) == outputs(old) and len(outputs(new)) == 2


def test_batch_help_lists_the_tasks_and_their_options(capsys):
    from restore.plugins import registry

    assert main(["batch", "--help"]) == 0
    text = capsys.readouterr().out
    assert "deblur: --kernel" in text and "super-resolve: --scale, --method" in text
    assert main(["batch", "deblur", "--help"]) == 0
    text = capsys.readouterr().out
    for task in (c.build() for c in registry().all("task") if c.name == "mri"):
        assert main(["batch", "mri", "--help"]) == 0
        mri = capsys.readouterr().out
        assert all(f"--{o.name.replace('_', '-')}" in mri for o in task.options)
    assert "--kernel" in text and "--engine" in text and "--resume" in text


def test_a_runs_note_reaches_the_manifest_and_the_summary_once(inputs, tmp_path, capsys):
    import json

    good = [str(inputs / f"img{i}.png") for i in range(2)]
    # exact SMC with a gradient proposal against a nearly noiseless blur: the weights collapse on both inputs
    assert main(["batch", "deblur", *good, "--kernel", "gaussian:1.5", "--noise", "0.001", "--prior",
                 "stationary-gaussian", "--sampler", "smc", "--set", "proposal=gradient", "--samples", "8",
                 "--steps", "4", "--device", "cpu", "-q", "-o", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("the particle weights collapsed") == 1 and "note (2 inputs):" in err, err
    records = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert all("the particle weights collapsed" in r["notes"][0] for r in records if r["status"] == "done")

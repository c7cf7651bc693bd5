"""restore batch --group-size: images of one shape share the network's batch; each equals its own run (issue 23)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import restore.plan
from restore.batch import item_seed, run_batch
from restore.errors import InvalidInputError
from restore.plan import execute_group, execute_plan, groupable
from restore.tasks import RunSettings, prepare_run
from restore.testing import tiny_unet_prior


def gray_images(folder: Path, sizes: list[int]) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate(sizes):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("sampler,samples", [("dds", 1), ("dds", 2), ("pnp-hqs", 1)])
def test_grouped_images_equal_their_own_runs(tmp_path, sampler, samples):
    paths = gray_images(tmp_path / "in", [16, 12, 16, 16])
    runs = [prepare_run("deblur", p, str(tmp_path / f"out{i}.png"),
                        RunSettings(prior="stationary-gaussian", sampler=sampler, steps=3, device="cpu",
                                    seed=item_seed(7, p), simulate=True, samples=samples, precision="fp32"),
                        {"kernel": "gaussian:1.0", "boundary": "circular"})
            for i, p in enumerate(paths)]
    groups = groupable(runs, 2)
    assert groups == [[0, 2], [1], [3]]  # same shape only, at most two per group, in input order
    prior = tiny_unet_prior()
    for members in groups:
        plans = [runs[i].plan for i in members]
        grouped = execute_group(plans, [runs[i].setup.problem for i in members], prior)
        for i, execution in zip(members, grouped):
            alone = execute_plan(runs[i].plan, runs[i].setup.problem, prior)
            assert execution.draws.shape == alone.draws.shape == (samples, 1, 1) + runs[i].setup.problem.y.shape[-2:]
            assert execution.draws.dtype == torch.float32
            # the batched network call differs from the single one only by float32 reassociation, which the
            # deblur task's 10 CG iterations per DDS step can amplify to a few 1e-5
            assert (execution.draws - alone.draws).abs().max() <= 1e-4
            assert execution.nfe == alone.nfe  # the group shares each call
    different = [runs[0].plan, runs[2].plan]
    assert different[0].seed != different[1].seed  # per-image generators: the two outputs differ
    both = execute_group(different, [runs[0].setup.problem, runs[2].setup.problem], prior)
    assert (both[0].draws - both[1].draws).abs().max() > 1e-3


def test_operators_that_differ_are_not_grouped(tmp_path):
    paths = gray_images(tmp_path / "in", [16, 16])
    settings = RunSettings(prior="stationary-gaussian", sampler="dds", steps=2, device="cpu")
    a = prepare_run("deblur", paths[0], str(tmp_path / "a.png"), settings, {"kernel": "gaussian:1.0"})
    b = prepare_run("deblur", paths[1], str(tmp_path / "b.png"), settings, {"kernel": "gaussian:2.0"})
    assert groupable([a, b], 4) == [[0], [1]]
    assert groupable([a, a], 1) == [[0], [1]]


def test_batch_group_size_gives_the_ungrouped_outputs(tmp_path, monkeypatch):
    from PIL import Image

    paths = gray_images(tmp_path / "in", [16, 16, 12, 16])
    settings = RunSettings(prior="stationary-gaussian", sampler="dds", steps=3, device="cpu", seed=3)
    options = {"kernel": "gaussian:1.0"}
    plain = run_batch(paths, "deblur", str(tmp_path / "plain"), options=options, settings=settings)
    sizes = []
    real = restore.plan.execute_group

    def spy(plans, problems, prior, progress=None):
        sizes.append(len(plans))
        return real(plans, problems, prior, progress)

    monkeypatch.setattr(restore.plan, "execute_group", spy)
    grouped = run_batch(paths, "deblur", str(tmp_path / "grouped"), options=options, settings=settings, group_size=3)
    assert plain.ok and grouped.ok
    assert sizes == [2]  # the first two 16² images; the 12² one and the last 16² one (a new window) alone
    for a, b in zip(plain.records, grouped.records):
        assert a["seed"] == b["seed"] and a["nfe"] == b["nfe"]
        x = np.asarray(Image.open(a["output"]), dtype=np.int16)
        y = np.asarray(Image.open(b["output"]), dtype=np.int16)
        assert np.abs(x - y).max() <= 1  # 8-bit outputs: a 1e-5 difference may cross one rounding step


def test_group_size_errors(tmp_path):
    paths = gray_images(tmp_path / "in", [16])
    for kwargs, text in [({"group_size": 0}, "--group-size must be >= 1"),
                         ({"group_size": 2, "workers": 2}, "one worker"),
                         ({"group_size": 2, "engine": "dask"}, "--engine local")]:
        with pytest.raises(InvalidInputError, match=text):
            run_batch(paths, "deblur", str(tmp_path / "out"), settings=RunSettings(prior="stationary-gaussian"),
                      **kwargs)
    assert not (tmp_path / "out").exists()


def test_cli_group_size(tmp_path, capsys):
    from restore.cli import main

    paths = gray_images(tmp_path / "in", [16, 16])
    common = ["--prior", "stationary-gaussian", "--steps", "2", "--kernel", "gaussian:1.0", "--quiet"]
    assert main(["batch", "deblur", *paths, "-o", str(tmp_path / "out"), "--group-size", "2", *common]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["img0_deblur.png", "img1_deblur.png"]
    assert main(["batch", "deblur", *paths, "-o", str(tmp_path / "o2"), "--group-size", "2", "--workers", "2",
                 *common]) == 2
    assert "one worker" in capsys.readouterr().err

"""Training a prior on the user's own folders (issue 14): exact resume, fine-tuning, bad data."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from restore.cli import main

WIDTHS = ["--widths", "8,16", "--crop", "16", "--batch-size", "2", "--precision", "fp32", "--threads", "1"]


def _write_images(folder, n=3, size=24, mode="L", seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"im{i}.png")
    return folder


def _weights(run):
    return load_file(str(run / "unet" / "diffusion_pytorch_model.safetensors"))


def test_resumed_run_equals_an_uninterrupted_run(tmp_path, capsys):
    data = _write_images(tmp_path / "data" / "nested")
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "prior", "--data", str(tmp_path / "data"), "-o", str(straight), "--steps", "6"]
                + WIDTHS) == 0, capsys.readouterr().err
    assert main(["train", "prior", "--data", str(data), "-o", str(split), "--steps", "3"] + WIDTHS) == 0
    assert main(["train", "prior", "--resume", str(split), "--steps", "6"]) == 0
    assert torch.load(split / "checkpoint.pt", weights_only=False)["step"] == 6
    a, b = _weights(straight), _weights(split)
    # Same code path, same seeds, one thread, float32: the interrupted run must continue bit for bit.
    assert all(torch.equal(a[k], b[k]) for k in a)
    state_a = torch.load(straight / "checkpoint.pt", weights_only=False)["model"]
    state_b = torch.load(split / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_a_killed_run_resumes_exactly_with_cosine_lr_and_restoration_levels(tmp_path):
    from restore_models.training import TrainConfig, train

    data = _write_images(tmp_path / "data")
    config = TrainConfig(preset="run", steps=6, batch_size=2, crop=16, block_out_channels=(8, 16), threads=1,
                         precision="fp32", data=(str(data),), builtin_sources=False, channels=1,
                         checkpoint_minutes=0.0, lr_schedule="cosine", timesteps="restoration")
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(config, str(straight))

    def kill(step, total, loss):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, str(split), progress=kill)
    assert torch.load(split / "checkpoint.pt", weights_only=False)["step"] == 3
    train(config, str(split), resume=str(split / "checkpoint.pt"))
    a, b = _weights(straight), _weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_restoration_levels_put_half_the_batch_in_the_restoration_band():
    from restore_models.training import RESTORATION_SIGMAS, sample_levels

    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float()
    ratio = (1 / abar.double() - 1).sqrt()
    k = sample_levels(abar, 4000, "restoration", torch.Generator().manual_seed(0))
    lo, hi = RESTORATION_SIGMAS
    in_band = (ratio[k] >= lo * 0.97) & (ratio[k] <= hi * 1.03)
    assert bool(in_band[2000:].all())
    # the uniform half lands in the band at the band's share of the 1000 levels
    share = float(((ratio >= lo) & (ratio <= hi)).double().mean())
    assert abs(float(in_band[:2000].double().mean()) - share) < 0.03
    # log-uniform inside the band: the median level sits near the geometric mean of its ends
    assert abs(np.log(float(ratio[k[2000:]].median())) - 0.5 * np.log(lo * hi)) < 0.1


def test_cosine_schedule_ends_at_zero_on_the_nearest_budget():
    from restore_models.training import TrainConfig, lr_factor

    config = TrainConfig(preset="x", steps=1000, max_minutes=10.0, lr_schedule="cosine")
    assert lr_factor(config, 0, 0.0, 0.0) == pytest.approx(1.0)
    assert lr_factor(config, 500, 1.0, 0.0) == pytest.approx(0.5)
    assert lr_factor(config, 10, 10.0, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(TrainConfig(preset="x", steps=1000), 500, 9.0, 0.0) == 1.0


def test_gray_folder_gives_a_one_channel_prior_that_loads(tmp_path, capsys):
    import restore

    _write_images(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "prior", "--data", str(tmp_path / "data"), "-o", str(run), "--steps", "2",
                 "--val", str(tmp_path / "data"), "--checkpoint-minutes", "0"] + WIDTHS) == 0, capsys.readouterr().err
    prior = restore.prior(str(run), device="cpu")
    assert prior.channels == 1
    assert (run / "val.csv").read_text().count("\n") >= 2


def test_init_starts_from_the_named_prior(tmp_path, capsys):
    from restore_models.plugin import WEIGHTS

    _write_images(tmp_path / "data", size=72)
    run = tmp_path / "ft"
    assert main(["train", "prior", "--data", str(tmp_path / "data"), "--init", "natural-gray", "-o", str(run),
                 "--steps", "0", "--crop", "64"]) == 0, capsys.readouterr().err
    shipped = load_file(str(WEIGHTS / "natural-gray" / "unet" / "diffusion_pytorch_model.safetensors"))
    mine = _weights(run)
    assert set(shipped) == set(mine)
    assert all(torch.equal(shipped[k].float(), mine[k].float()) for k in shipped)


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("case, expected", [
    ("empty", "holds no images"),
    ("small", "smaller than"),
    ("two-channel", "cannot be converted"),
    ("missing", "is not a folder"),
    ("init-channels", "channel(s)"),
    ("unknown-init", "neither a shipped prior"),
    ("bad-lr", "--lr must be in (0, 1)"),
    ("bad-schedule", "--lr-schedule must be"),
    ("flow-timesteps", "(eps or v objective)"),
    ("bad-precision", "--precision must be auto, bf16 or fp32"),
])
def test_bad_data_is_one_line_and_leaves_no_run_folder(tmp_path, capsys, case, expected):
    import tifffile

    data = tmp_path / "data"
    data.mkdir()
    extra = []
    if case == "small":
        _write_images(data, size=8)
    elif case == "two-channel":
        tifffile.imwrite(data / "two.tif", np.zeros((32, 32, 2), np.uint8), photometric="minisblack",
                         planarconfig="contig")
    elif case == "missing":
        data = tmp_path / "nope"
    elif case == "init-channels":
        _write_images(data, mode="RGB")
        extra = ["--init", "natural-gray", "--channels", "3"]
    elif case == "unknown-init":
        _write_images(data)
        extra = ["--init", "no-such-prior"]
    elif case == "bad-lr":
        _write_images(data)
        extra = ["--lr", "0"]
    elif case == "bad-schedule":
        _write_images(data)
        extra = ["--lr-schedule", "linear"]
    elif case == "flow-timesteps":
        _write_images(data)
        extra = ["--objective", "flow", "--timesteps", "restoration"]
    elif case == "bad-precision":
        _write_images(data)
        extra = ["--precision", "half"]
    run = tmp_path / "run"
    assert main(["train", "prior", "--data", str(data), "-o", str(run)] + WIDTHS + extra) == 2
    assert expected in _one_line_error(capsys)
    assert not run.exists()


def test_unreadable_file_is_skipped_with_one_warning(tmp_path, capsys):
    data = _write_images(tmp_path / "data")
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    run = tmp_path / "run"
    assert main(["train", "prior", "--data", str(data), "-o", str(run), "--steps", "1"] + WIDTHS) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "broken.png" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning:")


def test_an_existing_run_is_not_overwritten(tmp_path, capsys):
    _write_images(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "prior", "--data", str(tmp_path / "data"), "-o", str(run), "--steps", "1"] + WIDTHS
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "--resume" in _one_line_error(capsys)


def test_prepare_copies_verified_files_into_splits_and_refuses_a_changed_file(tmp_path, monkeypatch):
    import hashlib
    import json

    from restore_models import prepare

    source = _write_images(tmp_path / "clone" / "images")
    files = {p.name: {"split": "val" if p.name == "im0.png" else "train",
                      "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in source.iterdir()}
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "tiny.json").write_text(json.dumps(
        {"name": "tiny", "repository": "https://example.org/tiny", "commit": "0" * 40, "path": "images",
         "files": files}))
    monkeypatch.setattr(prepare, "COLLECTIONS", tmp_path / "manifests")
    assert prepare.prepare("tiny", str(tmp_path / "clone"), str(tmp_path / "out")) == {"train": 2, "val": 1}
    assert (tmp_path / "out" / "val" / "im0.png").exists()
    (source / "im1.png").write_bytes(b"changed")
    with pytest.raises(SystemExit, match="checksum"):
        prepare.prepare("tiny", str(tmp_path / "clone"), str(tmp_path / "out2"))


def test_v_objective_exports_a_v_prediction_prior_whose_x0_is_a_x_minus_s_v(tmp_path, capsys):
    import restore

    data = _write_images(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "prior", "--data", str(data), "-o", str(run), "--steps", "2", "--objective", "v",
                 "--val", str(data), "--checkpoint-minutes", "0"] + WIDTHS) == 0, capsys.readouterr().err
    prior = restore.prior(str(run), device="cpu")
    assert prior.prediction_type == "v_prediction"
    x = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    k = 700
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    with torch.no_grad():
        v = prior.unet(x, torch.tensor([k])).sample
        assert torch.allclose(prior.x0(x, k), a * x - s * v, atol=1e-5)


def test_auto_precision_trains_in_bf16_only_on_native_bfloat16(monkeypatch):
    from restore_models.mean_reverting import MRTrainConfig
    from restore_models.training import training_precision

    # emulated bf16 made a training step 3x slower than fp32 on an AVX-512 CPU without BF16
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=native: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert training_precision("auto") == expected
        assert MRTrainConfig(task="denoise").resolved().precision == expected  # the card records what ran
    assert training_precision("bf16") == "bf16" and training_precision("fp32") == "fp32"

"""The high-noise blend of a network prior with the stationary Gaussian (restore.priors.gaussian_blend)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from restore.errors import InvalidInputError
from restore.priors.diffusers_prior import DiffusersPrior
from restore.priors.gaussian_blend import GaussianBlend, fit_gaussian_blend, fit_logistic, stationary_for
from restore.testing import tiny_unet_prior

LEVELS = (100, 300, 600, 800, 999)


def state(prior, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x0 = stationary_for(prior).sample((4, prior.channels, 16, 16), g).float()
    a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
    return a * x0 + s * torch.randn(x0.shape, generator=g)


def ratio(prior, k: int) -> float:
    return float(prior.schedule.s(k) / prior.schedule.a(k))


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_blend_is_the_weighted_x0_of_network_and_gaussian(prediction):
    prior = tiny_unet_prior()
    prior.prediction_type = prediction
    gauss = stationary_for(prior)
    blend = GaussianBlend(ratio_center=ratio(prior, 700), width=0.5)
    x = state(prior, 600)
    with torch.no_grad():
        net = prior.x0(x, 600)
        prior.set_gaussian_blend(blend)
        w = 1 / (1 + (ratio(prior, 600) / ratio(prior, 700)) ** 2)
        torch.testing.assert_close(prior.x0(x, 600), w * net + (1 - w) * gauss.x0(x, 600), rtol=1e-5, atol=1e-5)
        top = state(prior, 999)
        prior.set_gaussian_blend(GaussianBlend(ratio_center=1e-3, width=0.1))  # all Gaussian up there
        torch.testing.assert_close(prior.x0(top, 999), gauss.x0(top, 999), rtol=1e-5, atol=1e-5)
        low = state(prior, 10)  # where the weight rounds to one the network is exactly alone
        prior.set_gaussian_blend(blend)
        assert blend.weight(torch.tensor(ratio(prior, 10))) == 1
        blended_low = prior.x0(low, 10)
        prior.set_gaussian_blend(None)
        torch.testing.assert_close(blended_low, prior.x0(low, 10), rtol=0, atol=0)


def test_weight_falls_smoothly_from_one_to_zero():
    blend = GaussianBlend(ratio_center=4.0, width=0.6)
    r = torch.logspace(-2, 3, 200)
    w = blend.weight(r)
    assert w[0] == 1 and w[-1] < 1e-3 and bool((w[1:] <= w[:-1]).all())
    assert abs(float(blend.weight(torch.tensor(4.0))) - 0.5) < 1e-12


def test_fingerprint_changes_with_the_blend_only():
    plain = tiny_unet_prior().fingerprint()
    assert tiny_unet_prior().fingerprint() == plain
    blended = tiny_unet_prior().set_gaussian_blend(GaussianBlend(4.0, 0.6))
    other = tiny_unet_prior().set_gaussian_blend(GaussianBlend(4.0, 0.5))
    assert len({plain, blended.fingerprint(), other.fingerprint()}) == 3


def test_logistic_fit_recovers_its_parameters():
    truth = GaussianBlend(ratio_center=5.0, width=0.6)
    ratios = torch.logspace(-1, 2.2, 20, dtype=torch.float64)
    fit = fit_logistic(ratios, truth.weight(ratios), torch.ones(20, dtype=torch.float64))
    assert abs(math.log(fit.ratio_center / 5.0)) < 0.02 and abs(fit.width - 0.6) < 0.03, fit


def test_fitted_blend_beats_both_denoisers_on_fresh_data():
    # An untrained network against the exact denoiser of the data's own Gaussian law, at levels where the
    # network is far off: the fit must lean on the Gaussian, and on fresh draws the blend must be no worse
    # than either part at any of them.
    prior = tiny_unet_prior()
    gauss = stationary_for(prior)
    train = gauss.sample((16, 1, 16, 16), torch.Generator().manual_seed(1)).float()
    levels = (600, 700, 800, 900, 999)
    blend, record = fit_gaussian_blend(prior, train, levels, torch.Generator().manual_seed(2))
    assert [r["level"] for r in record] == list(levels) and all(r["optimal"] < 0.2 for r in record), record
    x0 = gauss.sample((16, 1, 16, 16), torch.Generator().manual_seed(3)).float()
    with torch.no_grad():
        for k in levels:
            a, s = float(prior.schedule.a(k)), float(prior.schedule.s(k))
            x = a * x0 + s * torch.randn(x0.shape, generator=torch.Generator().manual_seed(k))
            prior.set_gaussian_blend(None)
            err_net = float((prior.x0(x, k) - x0).pow(2).mean())
            err_gauss = float((gauss.x0(x, k) - x0).pow(2).mean())
            prior.set_gaussian_blend(blend)
            err_blend = float((prior.x0(x, k) - x0).pow(2).mean())
            print(f"level {k}: network {err_net:.4f}, Gaussian {err_gauss:.4f}, blend {err_blend:.4f}")
            assert err_blend <= 1.05 * min(err_net, err_gauss)


def test_bad_blends_are_one_line_errors():
    with pytest.raises(InvalidInputError, match="positive"):
        GaussianBlend(ratio_center=0.0, width=0.5)
    with pytest.raises(InvalidInputError, match="malformed"):
        GaussianBlend.from_dict({"ratio_center": 4.0})


@pytest.fixture
def prior_folder(tmp_path):
    """A run on the user's own folder (no preset), as `restore train prior --data DIR` records it."""
    images = tmp_path / "train"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(images / f"{i}.png")
    prior = tiny_unet_prior()
    out = tmp_path / "prior"
    prior.unet.save_pretrained(out / "unet", safe_serialization=True)
    (out / "restore_prior.json").write_text(json.dumps({"name": "tiny", "channels": 1, "train_config": {
        "preset": "tiny", "data": [str(images)]}}))
    return out


def test_calibrate_writes_the_blend_that_the_folder_then_loads(prior_folder):
    # without --data it fits on the folders the prior was trained on
    run = subprocess.run([sys.executable, "-m", "restore_models.calibrate", str(prior_folder),
                          "--crops", "8", "--size", "16"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    meta = json.loads((prior_folder / "restore_prior.json").read_text())
    assert meta["name"] == "tiny" and len(meta["gaussian_blend"]["fitted_on"]["levels"]) > 4
    loaded = DiffusersPrior.from_folder(prior_folder)
    assert loaded.gaussian_blend == GaussianBlend.from_dict(meta["gaussian_blend"])
    assert loaded.fingerprint() != DiffusersPrior.from_folder(prior_folder).set_gaussian_blend(None).fingerprint()


@pytest.mark.parametrize("damage, message", [("no-metadata", "restore_prior.json"), ("no-data", "--data")])
def test_calibrate_errors_are_one_line(prior_folder, damage, message):
    meta_path = prior_folder / "restore_prior.json"
    if damage == "no-metadata":
        meta_path.unlink()
    else:
        meta_path.write_text(json.dumps({"name": "tiny", "channels": 1, "train_config": {"data": ["/nowhere"]}}))
    run = subprocess.run([sys.executable, "-m", "restore_models.calibrate", str(prior_folder)],
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and message in run.stderr, run.stderr


def test_benchmark_records_mark_a_blended_prior():
    from bench.run import blend_suffix

    blend = GaussianBlend(4.0, 0.6)
    assert blend_suffix({"name": "plain"}) == ""
    assert blend_suffix({"gaussian_blend": {**blend.to_dict(), "fitted_on": {}}}) == "+" + blend.digest()
    assert blend_suffix({"gaussian_blend": GaussianBlend(4.0, 0.5).to_dict()}) != "+" + blend.digest()

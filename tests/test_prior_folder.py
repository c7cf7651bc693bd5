"""Prior folders are validated before loading: configs, weight shapes and dtypes, model-card checksums."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import restore
from restore.errors import InvalidInputError
from restore.io.prior_folder import stamp, validate_prior_folder

WEIGHTS = Path(restore.__file__).resolve().parent.parent / "plugins" / "restore_models" / "weights"


@pytest.fixture
def folder(tmp_path) -> Path:
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    net = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                      layers_per_block=1, norm_num_groups=8, down_block_types=("DownBlock2D", "DownBlock2D"),
                      up_block_types=("UpBlock2D", "UpBlock2D"))
    out = tmp_path / "prior"
    net.save_pretrained(out / "unet", safe_serialization=True)
    (out / "restore_prior.json").write_text(json.dumps({"name": "tiny", "channels": 1}))
    (out / "MODEL_CARD.md").write_text("# tiny\n")
    stamp(out)
    return out


def test_shipped_priors_are_valid_and_carry_checksums():
    # hidden folders are ship.py's work in progress (renamed into place when complete), not shipped priors
    for prior in sorted(p for p in WEIGHTS.iterdir() if p.is_dir() and not p.name.startswith(".")):
        validate_prior_folder(prior)
        assert "sha256" in (prior / "MODEL_CARD.md").read_text(), prior


def test_a_valid_folder_passes_and_a_replaced_weight_file_is_caught(folder):
    validate_prior_folder(folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # same size, same header: only the checksum can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="does not match its model card"):
        validate_prior_folder(folder)
    with pytest.raises(InvalidInputError, match="does not match its model card"):
        restore.prior(str(folder))  # checked on load, before any weight is read


@pytest.mark.parametrize("damage, message", [
    ("config_channels", "do not belong together"),
    ("config_key", "lacks in_channels"),
    ("config_json", "not a valid JSON config"),
    ("truncated", "truncated or padded"),
    ("pickle_only", "pickled weights are not loaded"),
    ("int_dtype", "I64 tensors"),
    ("card_missing_file", "which is missing"),
])
def test_damaged_folders_are_refused_with_the_fix(folder, damage, message):
    unet = folder / "unet"
    weights = unet / "diffusion_pytorch_model.safetensors"
    config = json.loads((unet / "config.json").read_text())
    if damage == "config_channels":
        config["in_channels"] = 3
        (unet / "config.json").write_text(json.dumps(config))
    elif damage == "config_key":
        del config["in_channels"]
        (unet / "config.json").write_text(json.dumps(config))
    elif damage == "config_json":
        (unet / "config.json").write_text("{not json")
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "pickle_only":
        torch.save({}, unet / "diffusion_pytorch_model.bin")
        weights.unlink()
    elif damage == "int_dtype":
        from safetensors.torch import save_file

        save_file({"conv_in.weight": torch.zeros(8, 1, 3, 3, dtype=torch.int64)}, weights)
    elif damage == "card_missing_file":
        with open(folder / "MODEL_CARD.md", "a") as f:
            f.write(f"- `unet/extra.safetensors` sha256 `{'0' * 64}`\n")
    if damage not in ("card_missing_file",):
        shutil.copy(folder / "MODEL_CARD.md", folder / "card.bak")
        (folder / "MODEL_CARD.md").write_text("# tiny\n")  # checksums would catch every change first
    with pytest.raises(InvalidInputError, match=message):
        validate_prior_folder(folder)

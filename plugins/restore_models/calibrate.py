"""Fit a prior's high-noise blend with the stationary Gaussian on training crops and store it in the folder.

Run: ``python -m restore_models.calibrate FOLDER [--data DIR ...] [--preset NAME] [--crops 64] [--seed 0]``
(without ``--data``: the folders the prior was trained on, as recorded in its ``restore_prior.json``).

The blend (:mod:`restore.priors.gaussian_blend`) is fitted on random 64² crops of the preset's training
sources and the ``--data`` folders — training images only, never the validation split — and written as
``gaussian_blend`` into ``FOLDER/restore_prior.json`` with the per-level optimal weights it was fitted to;
every later load of the folder applies it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from restore.errors import InvalidInputError
from restore.priors.diffusers_prior import DiffusersPrior
from restore.priors.gaussian_blend import GaussianBlend, fit_gaussian_blend

from .data import PRESETS, PatchSampler, Preset, load_training_folders


def training_crops(preset_name: str | None, channels: int, folders: tuple[str, ...], n: int, size: int,
                   seed: int) -> torch.Tensor:
    """``(n, channels, size, size)`` crops in model units [-1, 1] from the preset's sources (a run on the
    user's own folders has none) and ``folders``; photographs and slices only, no procedural images."""
    if preset_name in PRESETS:
        preset = replace(PRESETS[preset_name], channels=channels)
    else:
        preset = Preset(preset_name or "custom", channels, "", "custom", (), (), 0.0, lambda size, rng: None)
    images = load_training_folders(folders, size, lambda line: print(f"warning: {line}", file=sys.stderr))
    sampler = PatchSampler(preset, size, seed, images, procedural_fraction=0.0)
    if not sampler.images:
        raise InvalidInputError(f"no training image of at least {size}² to fit on; pass --data DIR (the prior's "
                                f"training folders)")
    return torch.from_numpy(sampler.batch(n).astype(np.float32)) * 2 - 1


def calibrate(folder: str, folders: tuple[str, ...] = (), preset: str | None = None, crops: int = 64,
              size: int = 64, seed: int = 0) -> tuple[GaussianBlend, list[dict]]:
    """Fit the blend of the prior in ``folder`` and write it into its ``restore_prior.json``; returns the blend
    and the per-level record of :func:`~restore.priors.gaussian_blend.fit_gaussian_blend`."""
    meta_path = Path(folder) / "restore_prior.json"
    if not meta_path.exists():
        raise InvalidInputError(f"'{folder}' has no restore_prior.json; calibrate a trained or shipped prior folder")
    meta = json.loads(meta_path.read_text())
    train_config = meta.get("train_config", {})
    preset = preset or train_config.get("preset")
    if not folders:  # the folders the prior was trained on, where they still exist
        folders = tuple(d for d in train_config.get("data", []) if os.path.isdir(d))
    torch.manual_seed(seed)
    prior = DiffusersPrior.from_folder(folder)
    images = training_crops(preset, prior.channels, tuple(folders), crops, size, seed)
    blend, record = fit_gaussian_blend(prior, images, generator=torch.Generator().manual_seed(seed))
    meta["gaussian_blend"] = {**blend.to_dict(), "fitted_on": {
        "preset": preset, "data": ["/".join(Path(f).resolve().parts[-2:]) for f in folders],
        "crops": crops, "size": size, "seed": seed, "levels": record}}
    tmp = meta_path.with_name(".restore_prior.json.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
    return blend, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="prior folder (a training run or weights/<name>)")
    parser.add_argument("--data", action="append", default=[],
                        help="training image folder (repeatable; default: the prior's own training folders)")
    parser.add_argument("--preset", default=None,
                        help="data preset whose sources are added (default: the one the prior was trained with)")
    parser.add_argument("--crops", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        blend, record = calibrate(args.folder, tuple(args.data), args.preset, args.crops, args.size, args.seed)
    except InvalidInputError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"network weight 1 / (1 + (s/a / {blend.ratio_center:.3f})^(1 / {blend.width:.3f}))")
    print("level   s/a      optimal  fitted")
    for r in record:
        print(f"{r['level']:5d}  {r['ratio']:7.3f}  {r['optimal']:.3f}    {r['fitted']:.3f}")


if __name__ == "__main__":
    main()

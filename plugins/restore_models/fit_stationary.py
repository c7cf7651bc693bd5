"""Refit ``stationary_default.json`` from the training split of the shipped priors' data.

Run: ``python -m restore_models.fit_stationary``. It lives in this plugin because it needs its training data;
the core's stationary prior only reads the JSON it writes.
"""
from __future__ import annotations

import json
from importlib import resources

import numpy as np

from restore.priors.stationary import StationaryGaussianPrior

from .data import NATURAL_TRAIN, load_natural


def main() -> None:
    images = []
    for key in NATURAL_TRAIN:
        try:
            im = load_natural(key)
        except Exception:  # noqa: BLE001 - optional sources
            continue
        images.append(im if im.shape[2] == 3 else np.repeat(im, 3, axis=2))
    gray = [im @ np.array([[0.299], [0.587], [0.114]]) for im in images]
    out = {"rgb": StationaryGaussianPrior.fit(images).to_dict(), "gray": StationaryGaussianPrior.fit(gray).to_dict(),
           "fitted_on": list(NATURAL_TRAIN)}
    path = resources.files("restore.priors").joinpath("stationary_default.json")
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()

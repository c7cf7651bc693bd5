"""Load a prior from a local folder, whatever its kind (the folder's files say which)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import InvalidInputError

# Kind-specific loaders register here by the marker file their folders carry (e.g. a latent prior's vae/).
FOLDER_LOADERS: dict[str, str] = {
    "mean-reverting": "restore.priors.mean_reverting:load_mean_reverting_folder",
    "latent": "restore.priors.latent:load_latent_folder",
}


def load_prior_folder(path: str, device: torch.device | str = "cpu"):
    from ..io.prior_folder import validate_prior_folder
    from ..registry import resolve_factory

    folder = Path(path)
    if not folder.exists():
        raise InvalidInputError(f"prior '{path}' is neither a registered name nor an existing folder; "
                                f"see 'restore list priors'")
    validate_prior_folder(folder)  # config keys, weight shapes and dtypes, model-card checksums
    meta_path = folder / "restore_prior.json"
    try:
        kind = json.loads(meta_path.read_text()).get("kind", "vp") if meta_path.exists() else "vp"
    except (json.JSONDecodeError, AttributeError) as exc:
        raise InvalidInputError(f"'{meta_path}' is not a valid JSON object ({exc}); fix or remove it") from None
    if not meta_path.exists() and (folder / "vae").is_dir():  # a diffusers latent-diffusion folder
        kind = "latent"
    if kind in FOLDER_LOADERS:
        return resolve_factory(FOLDER_LOADERS[kind])(folder, device=device)
    from .diffusers_prior import DiffusersPrior

    return DiffusersPrior.from_folder(folder, device=device)

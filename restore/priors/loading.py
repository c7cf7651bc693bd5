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
    "flow": "restore.priors.flow:load_flow_folder",
}
# Checkpoint files (.pt/.pth/.safetensors …) and folders whose restore_prior.json names an "architecture"
# or "preset": published networks (ADM, NCSN++/DDPM++, consistency models), built by restore_models.
ARCHITECTURE_LOADER = "restore_models.architectures.loading:load_architecture_prior"
ARCHITECTURE_TEST = "restore_models.architectures.loading:is_architecture_path"


def load_prior_folder(path: str, device: torch.device | str = "cpu"):
    from ..io.prior_folder import validate_prior_folder
    from ..registry import resolve_factory

    folder = Path(path)
    if folder.is_file() or (folder / "restore_prior.json").is_file():
        try:
            is_architecture = resolve_factory(ARCHITECTURE_TEST)
        except Exception:  # noqa: BLE001 - the restore_models plugin is missing or broken
            is_architecture = None
        if is_architecture is not None and is_architecture(folder):
            return resolve_factory(ARCHITECTURE_LOADER)(folder, device=device)
        if folder.is_file():
            raise InvalidInputError(f"prior '{path}' is a file but not a checkpoint restore can read (.pt, .pth, "
                                    f".ckpt, .safetensors with the restore_models plugin); pass a prior folder")
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

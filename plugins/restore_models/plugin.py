"""Registers the shipped priors found under ``weights/`` (one diffusers folder per prior)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from restore.hookspecs import hookimpl

WEIGHTS = Path(__file__).parent / "weights"


def shipped_prior_folders() -> list[Path]:
    # Hidden folders are shipments in progress (restore_models.ship copies, measures, then renames).
    return sorted(p.parent for p in WEIGHTS.glob("*/restore_prior.json") if not p.parent.name.startswith("."))


def load_shipped(folder: str, device: str = "cpu"):
    from restore.priors.loading import load_prior_folder

    return load_prior_folder(folder, device=device)


@hookimpl
def restore_register_commands(app):
    from .cli import register

    register(app)


@hookimpl
def restore_register_priors(register):
    for folder in shipped_prior_folders():
        meta = json.loads((folder / "restore_prior.json").read_text())
        kind = meta.get("kind", "vp")
        register(
            meta.get("name", folder.name), functools.partial(load_shipped, str(folder)), kind=kind,
            channels=meta.get("channels"), summary=meta.get("summary", ""),
            default_for=(meta["domain"],) if kind == "vp" and meta.get("domain") else (), rank=10,
            path=str(folder),
        )


# Published networks (ADM, NCSN++/DDPM++, consistency models): preset priors and `restore convert`.
from .architectures.hooks import register_architecture_commands, register_architecture_priors  # noqa: E402,F401

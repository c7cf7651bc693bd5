"""Hook implementations of the published-network support (imported by ``restore_models.plugin``).

Importing this module imports neither torch nor the networks: commands and priors resolve lazily.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer

from restore.hookspecs import hookimpl

from .presets import PRESETS


def _estimate(preset: str) -> dict:
    from .cost import estimate

    spec = PRESETS[preset]
    return estimate(spec["architecture"], spec["config"])


def _load(preset: str, device: str = "cpu", **overrides):
    from .loading import load_preset

    return load_preset(preset, device=device, **overrides)


@hookimpl(specname="restore_register_priors")
def register_architecture_priors(register) -> None:
    """Published checkpoints by preset name; each loads its file from ``RESTORE_CHECKPOINTS`` & co."""
    for preset, spec in PRESETS.items():
        if not spec["files"]:  # generic file names (score-SDE's checkpoint_N.pth): folders only
            continue
        channels = spec["config"].get("in_channels", 3)
        register(preset, functools.partial(_load, preset), kind="vp", channels=channels,
                 summary=f"{spec['summary']} [needs {spec['files'][0]}]",
                 estimate=functools.partial(_estimate, preset))


def convert(
    checkpoint: Path = typer.Argument(..., help="A published checkpoint file (.pt/.pth/.safetensors) or a "
                                                "folder with restore_prior.json."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to create (must not exist)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset for a file whose name is not a "
                                         "published one: " + ", ".join(PRESETS)),
    name: Optional[str] = typer.Option(None, "--name", help="Prior name stored in the folder."),
) -> None:
    """Convert a published checkpoint into a safetensors prior folder usable as --prior FOLDER."""
    from .convert import convert_checkpoint

    folder = convert_checkpoint(checkpoint, output, preset=preset, name=name)
    typer.echo(f"wrote {folder} (model.safetensors, restore_prior.json)")


@hookimpl(specname="restore_register_commands")
def register_architecture_commands(app) -> None:
    app.command("convert")(convert)

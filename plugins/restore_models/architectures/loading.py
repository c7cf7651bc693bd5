"""Load a published checkpoint (a file or a folder) as an :class:`~.prior.ArchitecturePrior`.

A file is recognised by its published name (:mod:`.presets`). A folder holds the checkpoint and a
``restore_prior.json``::

    {"architecture": "adm" | "ncsnpp" | "ddpm",    # or "preset": "dps-ffhq-256" (keys below override it)
     "config": {...},                               # the architecture's config (flat or score-SDE's nested)
     "schedule": {"type": "linear", "steps": 1000}, # see restore_models.architectures.schedules
     "checkpoint": "ffhq_10m.pt",                   # optional when the folder holds one weights file
     "name": "...", "class_label": null, "use_ema": true}

``restore convert`` writes such folders with a ``model.safetensors``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from restore.errors import InvalidInputError

from .checkpoint import WEIGHT_SUFFIXES, fit_state, read_checkpoint, split_state
from .networks import build_network, make_config
from .presets import PRESETS, find_preset_file, preset_for_file
from .prior import ArchitecturePrior
from .schedules import schedule_from_dict

META_KEYS = {"architecture", "preset", "config", "schedule", "checkpoint", "name", "class_label", "use_ema", "kind",
             "summary", "channels", "domain", "source", "source_sha256", "parameters"}


def is_architecture_path(path: str | Path) -> bool:
    """True for a weights file, or a folder whose ``restore_prior.json`` names an architecture or preset."""
    p = Path(path)
    if p.is_file():
        return p.suffix in WEIGHT_SUFFIXES
    meta = p / "restore_prior.json"
    if not meta.is_file():
        return False
    try:
        data = json.loads(meta.read_text())
    except (json.JSONDecodeError, OSError):
        return False
    return isinstance(data, dict) and ("architecture" in data or "preset" in data)


def resolve_meta(path: str | Path) -> tuple[dict, Path]:
    """``(metadata with the preset merged in, checkpoint file)`` for a file or a folder."""
    p = Path(path)
    if p.is_file() and is_architecture_path(p.parent):  # a file next to its description
        return {"name": p.parent.name, **_read_meta(p.parent)}, p
    if p.is_file():
        preset = preset_for_file(p)
        if preset is None:
            raise InvalidInputError(
                f"no preset knows the file name '{p.name}'; put it in a folder with a restore_prior.json naming "
                f"its architecture, config and schedule (docs/howto/published-networks.md); published names are "
                f"{', '.join(f for pr in PRESETS.values() for f in pr['files'][:1])}")
        return {"preset": preset, "name": p.stem}, p
    meta = _read_meta(p)
    if meta.get("checkpoint"):
        ckpt = p / meta["checkpoint"]
    else:
        files = sorted(f for f in p.iterdir() if f.suffix in WEIGHT_SUFFIXES)
        if len(files) != 1:
            raise InvalidInputError(f"'{p}' holds {len(files)} weight files; name one with \"checkpoint\" in "
                                    f"restore_prior.json")
        ckpt = files[0]
    meta.setdefault("name", p.name)
    return meta, ckpt


def _read_meta(p: Path) -> dict:
    meta_path = p / "restore_prior.json"
    if not meta_path.is_file():
        raise InvalidInputError(f"'{p}' has no restore_prior.json; see docs/howto/published-networks.md")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"'{meta_path}' is not valid JSON ({exc}); fix it") from None
    if not isinstance(meta, dict):
        raise InvalidInputError(f"'{meta_path}' must hold a JSON object")
    unknown = sorted(set(meta) - META_KEYS)
    if unknown:
        raise InvalidInputError(f"'{meta_path}' has unknown keys {unknown}; known: {', '.join(sorted(META_KEYS))}")
    return meta


def merged(meta: dict) -> dict:
    """``meta`` on top of its preset (config dicts are merged key by key)."""
    if "preset" not in meta:
        if "architecture" not in meta or "schedule" not in meta:
            raise InvalidInputError("restore_prior.json needs \"architecture\", \"config\" and \"schedule\" "
                                    f"(or a \"preset\": one of {', '.join(PRESETS)})")
        return dict(meta)
    if meta["preset"] not in PRESETS:
        raise InvalidInputError(f"unknown preset '{meta['preset']}'; choose one of {', '.join(PRESETS)}")
    base = PRESETS[meta["preset"]]
    out = {"architecture": base["architecture"], "summary": base["summary"]}
    out.update({k: v for k, v in meta.items() if k not in ("config", "schedule")})
    out["config"] = {**base["config"], **meta.get("config", {})}
    out["schedule"] = {**base["schedule"], **meta.get("schedule", {})}
    return out


def build_prior(meta: dict, state: dict | None = None, ema=None, source: str | Path = "",
                device: str | torch.device = "cpu") -> ArchitecturePrior:
    """The prior described by merged metadata, with ``state`` loaded when given (random weights otherwise)."""
    arch = meta["architecture"]
    config = make_config(arch, meta.get("config", {}))
    network = build_network(arch, config)
    if state is not None:
        fit_state(network, state, ema if meta.get("use_ema", True) else None, source, arch)
    prior = ArchitecturePrior(network, arch, schedule_from_dict(meta["schedule"]), name=meta.get("name", arch),
                              class_label=meta.get("class_label"), metadata=meta)
    prior = prior.to(device)
    if getattr(config, "use_fp16", False) and torch.device(device).type == "cuda":
        network.half_torso()  # as the published sampling runs them; float16 convolutions are slow on a CPU
    return prior


def load_architecture_prior(path: str | Path, device: str | torch.device = "cpu", **overrides) -> ArchitecturePrior:
    """Load ``path`` (a published checkpoint file or a folder with ``restore_prior.json``) as a prior.

    Args:
        path: the file or folder.
        device: where the prior lives.
        overrides: metadata keys to override, e.g. ``class_label=207``.
    """
    meta, ckpt = resolve_meta(path)
    meta = merged({**meta, **overrides})
    state, ema = split_state(read_checkpoint(ckpt), ckpt)
    return build_prior(meta, state, ema, ckpt, device)


def load_preset(preset: str, device: str | torch.device = "cpu", **overrides) -> ArchitecturePrior:
    """A registered preset: its published file is looked up in :func:`.presets.checkpoint_dirs`."""
    from .presets import checkpoint_dirs

    found = find_preset_file(preset)
    if found is None:
        spec = PRESETS[preset]
        where = ", ".join(str(d) for d in checkpoint_dirs())
        raise InvalidInputError(f"prior '{preset}' needs {' or '.join(spec['files'])} in one of {where} "
                                f"(set RESTORE_CHECKPOINTS); download it from {spec['source']}")
    prior = load_architecture_prior(found, device=device, **overrides)
    prior.name = preset
    return prior

"""``restore convert``: a published checkpoint → a safetensors prior folder (``model.safetensors`` +
``restore_prior.json`` with the full architecture config and schedule).

The checkpoint is read without executing code and fitted to its network with strict keys first, so a
folder is written only for weights that load; the folder appears atomically (written aside, then renamed).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from restore.checksums import file_sha256
from restore.errors import InvalidInputError

from .checkpoint import read_checkpoint, split_state
from .loading import build_prior, merged, resolve_meta


def convert_checkpoint(checkpoint: str | Path, output: str | Path, preset: str | None = None,
                       name: str | None = None) -> Path:
    """Write ``output/`` with ``model.safetensors`` and ``restore_prior.json``; returns the folder.

    Args:
        checkpoint: a published file (recognised by name, or by ``preset``) or a folder with
            ``restore_prior.json``.
        output: the folder to create; it must not exist yet.
        preset: preset to use for a file whose name is not a published one.
        name: the prior's name in the new folder (default: the output folder's name).
    """
    from safetensors.torch import save_file

    out = Path(output)
    if out.exists():
        raise InvalidInputError(f"output '{out}' already exists; choose a new folder with -o")
    src = Path(checkpoint)
    if preset is not None and src.is_file():
        meta, ckpt = {"preset": preset}, src
    else:
        meta, ckpt = resolve_meta(src)
    meta = merged(meta)
    state, ema = split_state(read_checkpoint(ckpt), ckpt)
    prior = build_prior(meta, state, ema, ckpt)
    network = prior.network
    config = dataclasses.asdict(network.config)
    new_meta = {
        "name": name or out.name,
        "architecture": meta["architecture"],
        "config": config,
        "schedule": dataclasses.asdict(prior.noise),
        "checkpoint": "model.safetensors",
        "source": ckpt.name,
        "source_sha256": file_sha256(str(ckpt)),
        "parameters": prior.parameter_count,
    }
    for key in ("summary", "class_label", "domain"):
        if meta.get(key) is not None:
            new_meta[key] = meta[key]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tensors = {k: v.detach().contiguous() for k, v in network.state_dict().items()}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"source": ckpt.name})
        (tmp / "restore_prior.json").write_text(json.dumps(new_meta, indent=1) + "\n")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

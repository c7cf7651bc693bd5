"""Validate a prior folder before any weight is loaded: safetensors only, configs with the keys the
networks need, tensor shapes that agree with the config, floating-point dtypes, and the SHA-256 that the
model card lists for each weight file.

The checks read JSON and safetensors headers only (no tensor data), plus one hash per weight file (cached
by size and modification time). A model card lists its checksums as lines of the form::

    - `unet/diffusion_pytorch_model.safetensors` sha256 `<64 hex digits>`

``python -m restore.io.prior_folder --stamp FOLDER`` writes them (shipping a prior should do it too).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from ..checksums import file_sha256
from ..errors import InvalidInputError

PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
# Keys a diffusers network config must have to be rebuilt (by _class_name).
REQUIRED_KEYS = {
    "UNet2DModel": ("in_channels", "out_channels", "block_out_channels", "layers_per_block"),
    "AutoencoderKL": ("in_channels", "out_channels", "latent_channels", "block_out_channels"),
}
CHECKSUM_LINE = re.compile(r"`([^`]+)`\s+sha256\s+`([0-9a-fA-F]{64})`")
_hash_cache: dict[tuple[str, int, int], str] = {}


def sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = file_sha256(str(path))
    return _hash_cache[key]


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (names -> dtype, shape, offsets), without reading tensors."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > min(size - 8, 100 << 20):
                raise ValueError(f"header length {n} does not fit the {size}-byte file")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (OSError, ValueError, struct.error) as exc:
        raise InvalidInputError(f"weights '{path}' are not a readable safetensors file ({exc}); "
                                "the file is damaged: download or convert it again") from None
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise InvalidInputError(f"weights '{path}': entry '{name}' is malformed; the file is damaged")
        end = max(end, int(info["data_offsets"][1]))
    if 8 + n + end != size:
        raise InvalidInputError(f"weights '{path}' are truncated or padded ({size} bytes, header says "
                                f"{8 + n + end}); download or convert them again")
    return header


def card_checksums(folder: Path) -> dict[str, str]:
    card = folder / "MODEL_CARD.md"
    if not card.is_file():
        return {}
    return {name: digest.lower() for name, digest in CHECKSUM_LINE.findall(card.read_text(errors="replace"))}


def _check_network(folder: Path, sub: Path, config_path: Path) -> None:
    try:
        config = json.loads(config_path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"'{config_path}' is not a valid JSON config ({exc}); fix or re-download "
                                "the prior") from None
    cls = config.get("_class_name")
    missing = [k for k in REQUIRED_KEYS.get(cls, ()) if k not in config]
    if missing:
        raise InvalidInputError(f"'{config_path}' ({cls}) lacks {', '.join(missing)}; the prior folder is "
                                "incomplete")
    weights = sub / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        pickled = [p.name for p in sub.iterdir() if p.suffix in PICKLE_WEIGHTS]
        hint = (f" (found {', '.join(pickled)}: pickled weights are not loaded; convert them to safetensors "
                "with 'restore convert')") if pickled else ""
        raise InvalidInputError(f"prior folder '{folder}' has no {weights.relative_to(folder)}{hint}")
    header = safetensors_header(weights)
    bad = sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"} - FLOAT_DTYPES)
    if bad:
        raise InvalidInputError(f"weights '{weights}' hold {', '.join(bad)} tensors; a prior's weights are "
                                "floating point: the file is not a network of this kind")
    blocks = config.get("block_out_channels") or [None]
    expect = {"conv_in.weight": (blocks[0], config.get("in_channels")),
              "conv_out.weight": (config.get("out_channels"), blocks[0])}
    if cls == "UNet2DModel":
        for name, (out_ch, in_ch) in expect.items():
            shape = header.get(name, {}).get("shape")
            if shape is not None and None not in (out_ch, in_ch) and tuple(shape[:2]) != (out_ch, in_ch):
                raise InvalidInputError(
                    f"weights '{weights}': {name} has shape {tuple(shape)}, but the config says "
                    f"({out_ch}, {in_ch}, ...); config.json and the weights do not belong together")


def validate_prior_folder(folder: str | os.PathLike) -> None:
    """Raise InvalidInputError naming the problem and the fix if ``folder`` is not a usable prior."""
    folder = Path(folder)
    if not folder.is_dir():
        return  # a registered name or missing path: the loader reports it
    meta = folder / "restore_prior.json"
    if meta.exists():
        try:
            if not isinstance(json.loads(meta.read_text()), dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"'{meta}' is not a valid JSON object ({exc}); fix or remove it") from None
    configs = [(folder, folder / "config.json")] if (folder / "config.json").is_file() else []
    configs += [(sub, sub / "config.json") for sub in sorted(folder.iterdir())
                if sub.is_dir() and (sub / "config.json").is_file()]
    for sub, config_path in configs:
        if (sub / "diffusion_pytorch_model.safetensors").exists() or any(
                p.suffix in PICKLE_WEIGHTS for p in sub.iterdir()):
            _check_network(folder, sub, config_path)
    for name, digest in card_checksums(folder).items():
        path = folder / name
        if not path.resolve().is_relative_to(folder.resolve()):
            raise InvalidInputError(f"model card of '{folder}' lists '{name}' outside the folder")
        if not path.is_file():
            raise InvalidInputError(f"model card of '{folder}' lists '{name}', which is missing")
        actual = sha256(path)
        if actual != digest:
            raise InvalidInputError(f"'{path}' does not match its model card (sha256 {actual[:12]}…, card says "
                                    f"{digest[:12]}…): the file is damaged or was replaced; download it again")


def stamp(folder: str | os.PathLike) -> list[str]:
    """Write (or refresh) the checksum lines of every ``*.safetensors`` file into MODEL_CARD.md."""
    folder = Path(folder)
    card = folder / "MODEL_CARD.md"
    text = card.read_text() if card.exists() else f"# {folder.name}\n"
    text = re.sub(r"\n## Checksums\n(?:- .*\n?)*", "\n", text).rstrip("\n") + "\n"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))
    lines = [f"- `{name}` sha256 `{sha256(folder / name)}`" for name in files]
    card.write_text(text + "\n## Checksums\n" + "\n".join(lines) + "\n")
    return files


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Validate prior folders, or write their model-card checksums.")
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--stamp", action="store_true", help="write the checksums into MODEL_CARD.md")
    args = ap.parse_args()
    for f in args.folders:
        if args.stamp:
            print(f, "stamped:", ", ".join(stamp(f)))
        validate_prior_folder(f)
        print(f, "ok")

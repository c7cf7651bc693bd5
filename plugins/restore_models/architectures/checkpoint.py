"""Reading checkpoint files safely and fitting them to a network with strict key matching.

``.pt``/``.pth``/``.ckpt`` files are read with ``torch.load(..., weights_only=True)`` only: tensors, numbers,
strings and containers. A file whose pickle needs arbitrary Python objects is refused, never executed.
``.safetensors`` files are read with safetensors. Accepted contents: a plain state dict (guided-diffusion,
consistency models), score-SDE's ``{"model", "ema", "optimizer", "step"}`` (its EMA weights are used, as
score-SDE's sampling does), ``{"state_dict": …}``, and ``module.`` prefixes from ``DataParallel``.
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from restore.errors import InvalidInputError

WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


def read_checkpoint(path: str | Path) -> dict:
    """The raw object stored in ``path`` (a dict), read without executing code."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"checkpoint '{path}' does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InvalidInputError(f"'{path}' is not a readable safetensors file ({_first_line(exc)}); "
                                    f"it may be truncated: download or convert it again") from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing or reading
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise InvalidInputError(
                f"'{path}' stores Python objects that only arbitrary (code-executing) unpickling can read, so it "
                f"is refused; on a machine where you trust the file re-save its tensors, e.g. python -c \"import "
                f"torch; torch.save(torch.load('{path}', weights_only=False)['model'], 'weights.pt')\" (pick the "
                f"key that holds the state dict), then pass weights.pt") from None
        raise InvalidInputError(f"'{path}' is not a readable checkpoint ({_first_line(exc)}); it may be truncated: "
                                f"download it again") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInputError(f"'{path}' is not a readable checkpoint ({_first_line(exc)}); it may be truncated: "
                                f"download it again") from None
    if not isinstance(obj, dict):
        raise InvalidInputError(f"'{path}' holds a {type(obj).__name__}, not a state dict; save model.state_dict()")
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def split_state(obj: dict, path: str | Path = "") -> tuple[dict[str, torch.Tensor], list[torch.Tensor] | None]:
    """``(state_dict, ema_parameters_or_None)`` from a checkpoint object, prefixes removed."""
    ema = None
    if isinstance(obj.get("model"), dict) and all(isinstance(v, torch.Tensor) for v in obj["model"].values()):
        state = obj["model"]
        shadow = obj.get("ema", {}).get("shadow_params") if isinstance(obj.get("ema"), dict) else None
        ema = list(shadow) if shadow else None
    elif isinstance(obj.get("state_dict"), dict):
        state = obj["state_dict"]
    else:
        state = obj
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InvalidInputError(f"'{path}' holds no tensors (keys: {sorted(map(str, obj))[:5]}); it is not a "
                                f"network checkpoint")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors, ema


def fit_state(network: nn.Module, state: dict[str, torch.Tensor], ema: list[torch.Tensor] | None,
              path: str | Path, what: str) -> None:
    """Load ``state`` into ``network`` with strict keys and shapes; ``ema`` replaces the parameters in order.

    Raises:
        InvalidInputError: naming the first missing and the first unexpected key (in the network's order and
            the file's order), or the first tensor whose shape differs.
    """
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first '{unexpected[0]}')")
        raise InvalidInputError(f"'{path}' does not fit the {what} network: {', '.join(parts)}; check the "
                                f"architecture and config (restore_prior.json or the preset)")
    for key, ref in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape) and not (got.ndim == ref.ndim + 2 and got.shape[:ref.ndim] == ref.shape
                                                         and got.shape[ref.ndim:] == (1, 1)):
            raise InvalidInputError(f"'{path}' does not fit the {what} network: '{key}' has shape {tuple(got.shape)}, "
                                    f"the config gives {tuple(ref.shape)}; check the config (channels, widths)")
    network.load_state_dict(state, strict=True)
    if ema is not None:  # score-SDE's EMA keeps trainable parameters only (not the fixed Fourier features)
        params = [p for p in network.parameters() if p.requires_grad]
        if len(params) != len(ema) or any(p.shape != e.shape for p, e in zip(params, ema)):
            raise InvalidInputError(f"'{path}': its EMA weights do not match the network's parameters; the "
                                    f"checkpoint and config disagree")
        with torch.no_grad():
            for p, e in zip(params, ema):
                p.copy_(e)

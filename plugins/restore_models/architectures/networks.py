"""Architecture names → (config dataclass, network class), and building a network from a config dict."""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from restore.errors import InvalidInputError

from .adm import ADMConfig, ADMUNet
from .ddpm import DDPMConfig, ScoreDDPM
from .ncsnpp import NCSNpp, NCSNppConfig

ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "adm": (ADMConfig, ADMUNet),
    "ncsnpp": (NCSNppConfig, NCSNpp),
    "ddpm": (DDPMConfig, ScoreDDPM),
}
# score-SDE / guided-diffusion keys that do not shape the network (training, EMA, normalization choice …).
IGNORED_KEYS = {"name", "ema_rate", "normalization", "attention_type", "conv_size", "init_scale", "beta_min",
                "beta_max", "dataset", "random_flip", "uniform_dequantization", "tfrecords_path", "root",
                "is_complex", "is_multi", "use_checkpoint", "model_path", "diffusion_steps", "noise_schedule",
                "timestep_respacing", "use_kl", "predict_xstart", "rescale_timesteps", "rescale_learned_sigmas",
                "continuous", "weight_schedule", "sigma_data"}


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """Accept a flat dict or score-SDE's nested ``{"model": …, "data": …, "training": …}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("model", "data", "training") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def make_config(architecture: str, config: dict[str, Any]):
    """The frozen config of ``architecture`` from a (possibly nested) dict; unknown keys are an error."""
    if architecture not in ARCHITECTURES:
        raise InvalidInputError(f"unknown architecture '{architecture}'; choose one of {', '.join(ARCHITECTURES)}")
    cls = ARCHITECTURES[architecture][0]
    fields = {f.name for f in dataclasses.fields(cls)}
    flat = flatten_config(config)
    if architecture == "adm" and isinstance(flat.get("attention_resolutions"), str):  # "32,16,8" as on the CLI
        flat["attention_resolutions"] = [int(r) for r in flat["attention_resolutions"].split(",") if r]
    if architecture == "adm" and isinstance(flat.get("channel_mult"), str):
        flat["channel_mult"] = [float(c) for c in flat["channel_mult"].split(",") if c]
    ignored = IGNORED_KEYS | ({f.name for f in dataclasses.fields(NCSNppConfig)} if architecture == "ddpm" else set())
    unknown = sorted(set(flat) - fields - ignored)
    if unknown:
        raise InvalidInputError(f"unknown {architecture} config keys {unknown}; known: {', '.join(sorted(fields))}")
    try:
        return cls(**{k: v for k, v in flat.items() if k in fields})
    except TypeError as exc:
        raise InvalidInputError(f"bad {architecture} config: {exc}") from None


def build_network(architecture: str, config: dict[str, Any] | Any) -> nn.Module:
    """An untrained network of ``architecture`` for ``config`` (a dict or the architecture's config object)."""
    cfg = config if dataclasses.is_dataclass(config) else make_config(architecture, config)
    return ARCHITECTURES[architecture][1](cfg)

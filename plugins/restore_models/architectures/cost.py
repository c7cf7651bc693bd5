"""Parameter count and estimated seconds per network call, without the weights.

The network is built on the ``meta`` device (no memory, no weights) and its floating-point operations at
its training resolution are counted with :class:`torch.utils.flop_counter.FlopCounterMode`. The machine's
sustained rate is measured once by timing a small ADM network on the CPU; seconds per call is the ratio.
Both are cached in ``~/.cache/restore/architecture_costs.json`` (keyed by config, thread count and torch), and
so is each finished estimate, under a key computed without importing torch: a listing after the first one
imports no torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

CACHE = Path(os.environ.get("RESTORE_CACHE", Path.home() / ".cache" / "restore")) / "architecture_costs.json"


def _load_cache() -> dict:
    try:
        return json.loads(CACHE.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _save_cache(cache: dict) -> None:
    try:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(CACHE)
    except OSError:  # a read-only home only costs a recomputation next time
        pass


def network_flops(architecture: str, config: dict) -> tuple[int, float]:
    """``(parameters, flops of one call at batch 1 and the training resolution)``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .networks import build_network, make_config

    cfg = make_config(architecture, config)
    with torch.device("meta"):
        net = build_network(architecture, cfg)
        channels = getattr(cfg, "in_channels", getattr(cfg, "num_channels", 3))
        x = torch.zeros(1, channels, cfg.image_size, cfg.image_size)
        with FlopCounterMode(display=False) as counter:
            net(x, torch.ones(1))
    return sum(p.numel() for p in net.parameters()), float(counter.get_total_flops())


def machine_flops_per_second() -> float:
    """Sustained float32 rate of this machine on a small ADM network (one measurement, cached)."""
    import torch

    key = f"machine/{torch.__version__}/{torch.get_num_threads()}"
    cache = _load_cache()
    if key in cache:
        return cache[key]
    from .networks import build_network

    config = dict(image_size=64, num_channels=64, num_res_blocks=1, attention_resolutions=[16],
                  channel_mult=[1, 2, 2], use_scale_shift_norm=True, resblock_updown=True)
    _, flops = network_flops("adm", config)
    net = build_network("adm", config).eval()
    x, t = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)), torch.ones(1)
    with torch.no_grad():
        net(x, t)  # warm-up
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < 0.5 or calls < 2:
            net(x, t)
            calls += 1
    rate = flops * calls / (time.perf_counter() - start)
    cache[key] = rate
    _save_cache(cache)
    return rate


def _estimate_key(architecture: str, config: dict) -> str:
    """Cache key of a finished estimate that needs no torch import (``restore list priors`` stays light): the
    installed torch's version, the thread setting, the config and the source of the network code."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "unknown"
    source = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        source.update(path.read_bytes())
    threads = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    digest = hashlib.sha256(json.dumps([architecture, config, source.hexdigest()], sort_keys=True,
                                       default=str).encode()).hexdigest()
    return f"estimate/{torch_version}/{threads}/{digest[:16]}"


def estimate(architecture: str, config: dict) -> dict:
    """``{"parameters", "gflops", "seconds_per_call"}`` for one call at the training resolution, batch 1."""
    done = _estimate_key(architecture, config)
    cached = _load_cache().get(done)
    if cached is not None:
        return cached
    result = _compute_estimate(architecture, config)
    cache = _load_cache()
    cache[done] = result
    _save_cache(cache)
    return result


def _compute_estimate(architecture: str, config: dict) -> dict:
    import torch

    from .networks import make_config

    cfg = make_config(architecture, config)
    digest = hashlib.sha256(json.dumps([architecture, dataclasses.asdict(cfg)], sort_keys=True).encode()).hexdigest()
    key = f"network/{torch.__version__}/{digest[:16]}"
    cache = _load_cache()
    if key not in cache:
        params, flops = network_flops(architecture, config)
        cache[key] = {"parameters": params, "flops": flops}
        _save_cache(cache)
    entry = cache[key]
    return {"parameters": entry["parameters"], "gflops": entry["flops"] / 1e9,
            "seconds_per_call": entry["flops"] / machine_flops_per_second()}

"""``restore ems PRIOR``: compute the empirical model statistics DPM-Solver-v3 needs, next to the prior.

Registered through ``restore_register_commands`` by :mod:`restore.builtins`.
"""
from __future__ import annotations

import sys
import time
from typing import Optional

import typer

from ..errors import InvalidInputError


def ems_command(
    prior: str = typer.Argument(..., help="registered prior name (restore list priors) or a prior folder"),
    out: Optional[str] = typer.Option(None, "--out", help="output file (default: ems.safetensors in the prior's "
                                      "folder; required for priors without a folder)"),
    states: int = typer.Option(256, "--states", help="trajectories the statistics are estimated on"),
    levels: int = typer.Option(100, "--levels", help="statistics grid: training levels uniform in logSNR"),
    size: int = typer.Option(32, "--size", help="image size of the trajectories (statistics are per channel, "
                             "so any size works with every image size)"),
    batch: int = typer.Option(16, "--batch", help="trajectories per network call"),
    seed: int = typer.Option(0, "--seed"),
    channels: int = typer.Option(3, "--channels", help="channels of the default prior"),
) -> None:
    """Empirical model statistics of a VP prior for --sampler dpm-solver-v3 (one-off, minutes on a CPU)."""
    import torch

    from ..api import prior as load_prior
    from ..priors.base import VPPrior
    from ..priors.ems import compute_ems, default_path

    p = load_prior(prior, channels=channels, device="cpu")
    if not isinstance(p, VPPrior):
        raise InvalidInputError(f"model statistics are defined for VP diffusion priors; '{prior}' is a "
                                f"{getattr(p, 'family_label', type(p).__name__)} prior")
    target = out or default_path(p)
    if target is None:
        raise InvalidInputError(f"prior '{prior}' has no folder to store statistics in; pass --out FILE.safetensors")
    if states < 2 or levels < 3 or size < 1 or batch < 1:
        raise InvalidInputError("need --states >= 2, --levels >= 3, --size >= 1 and --batch >= 1")
    shape = (states, p.channels, size, size) if p.channels is not None else None
    if shape is None:
        raise InvalidInputError(f"prior '{prior}' has no fixed image shape; compute its statistics from Python with "
                                f"restore.priors.ems.compute_ems(prior, shape)")
    start = time.process_time()

    def progress(i: int, n: int) -> None:
        print(f"\rlevel {i}/{n}", end="", file=sys.stderr, flush=True)

    with torch.no_grad():
        ems = compute_ems(p, shape, levels=levels, generator=torch.Generator().manual_seed(seed), batch=batch,
                          progress=progress)
    path = ems.save(target)
    print(f"\nwrote {path} ({len(ems.levels)} levels, {states} states, {time.process_time() - start:.0f} s CPU)",
          file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("ems")(ems_command)

"""``restore invert IMG -o latents.safetensors`` and ``restore reconstruct latents.safetensors -o IMG``."""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

import typer

from ..errors import OutputExistsError


def _output_path(output: str | None, source: str, suffix: str, overwrite: bool) -> str:
    """``-o`` or ``SOURCE`` with ``suffix`` for its extension; refused when it exists without --overwrite."""
    path = output or os.path.splitext(source)[0] + suffix
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(f"output '{path}' exists; pass --overwrite or choose another -o path")
    return path


def _with_progress(label: str, quiet: bool, run):
    """``run(callback)`` under a progress bar; returns its result and the wall seconds it took."""
    from .progress import progress_bar

    start = time.perf_counter()
    with progress_bar(label, enabled=None if not quiet else False) as update:
        out = run(update)
    return out, time.perf_counter() - start


def invert_command(
    input: str = typer.Argument(..., help="image to invert (PNG, JPEG, TIFF)", show_default=False),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="latents file (default: INPUT_latents.safetensors)"),
    prior: str = typer.Option("default", "--prior", help="prior name or folder (default: chosen by channels)"),
    sampler: str = typer.Option("bdia", "--sampler", help="bdia | bdia-edm | ddim-inversion (inexact baseline) | rf-solver (second order, inexact)"),
    steps: Optional[int] = typer.Option(None, "--steps", help="number of levels (sampler default: 50; bdia-edm 18; rf-solver 25)"),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="BDIA gamma in (0, 1] (default 1.0)"),
    check: bool = typer.Option(False, "--check", help="also reconstruct and report the round-trip error"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output file"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or summary"),
) -> None:
    """Invert an image to diffusion latents that reconstruct it exactly (BDIA)."""
    from .. import api
    from ..devices import resolve_device
    from ..inversion import invert
    from ..io import read
    from ..metrics import psnr

    output = _output_path(output, input, "_latents.safetensors", overwrite)
    image = read(input)
    x = image.data
    dev = resolve_device(device)
    p = api.prior(prior, channels=x.shape[1], device=str(dev))
    inv, seconds = _with_progress("invert", quiet, lambda update: invert(p, x, sampler=sampler, steps=steps,
                                                                          gamma=gamma, callback=update))
    inv.prior_name = prior if prior != "default" else api.default_prior_name(x.shape[1])
    if os.path.isdir(inv.prior_name):
        inv.prior_name = os.path.abspath(inv.prior_name)
    inv.meta = {k: v for k, v in image.meta.items() if isinstance(v, (str, int, float, list, tuple))}
    inv.save(output)
    if not quiet:
        parts = [f"wrote {output}", f"prior {inv.prior_name}", f"sampler {sampler}", f"steps {inv.steps}",
                 f"NFE {inv.nfe}", f"{seconds:.1f} s"]
        if check:
            err = inv.reconstruct(p).cpu() - x
            parts.append(f"round-trip max error {float(err.abs().max()):.2e} "
                         f"(PSNR {psnr((x + err), x):.1f} dB)")
        print(" | ".join(parts), file=sys.stderr)


def reconstruct_command(
    latents: str = typer.Argument(..., help="latents file written by 'restore invert'", show_default=False),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="image file (default: LATENTS_reconstructed.png)"),
    prior: Optional[str] = typer.Option(None, "--prior", help="prior name or folder (default: the one recorded in the file)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output file"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or summary"),
) -> None:
    """Reconstruct the image from latents written by 'restore invert' (refuses a different prior)."""
    from .. import api
    from ..devices import resolve_device
    from ..inversion import Inversion
    from ..io import Image, write

    output = _output_path(output, latents, "_reconstructed.png", overwrite)
    inv = Inversion.load(latents)
    name = prior or inv.prior_name
    p = api.prior(name, channels=inv.shape[1] if len(inv.shape) > 1 else 1, device=str(resolve_device(device)))
    inv.check_prior(p)
    x, seconds = _with_progress("reconstruct", quiet, lambda update: inv.reconstruct(p, callback=update))
    write(output, Image(x.detach().cpu().float().clamp(0, 1), dict(inv.meta)), overwrite=True)
    if not quiet:
        print(f"wrote {output} | prior {name} | sampler {inv.sampler} | steps {inv.steps} | {seconds:.1f} s",
              file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("invert")(invert_command)
    app.command("reconstruct")(reconstruct_command)

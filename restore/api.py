"""The public Python API: look up components by name and solve a problem in one call."""
from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from .devices import resolve_device
from .errors import InvalidInputError
from .operators import GaussianNoise, Operator
from .plugins import registry
from .priors.base import Prior
from .problem import Problem
from .registry import Component


def components(kind: str) -> list[Component]:
    """Registered components of a kind: ``operator``, ``prior``, ``sampler``, ``task``, ``reader``, ``writer``."""
    return registry().all(kind)


def operator(name: str, **params: Any) -> Operator:
    """Build a registered operator, e.g. ``restore.operator("gaussian-blur", sigma=2.0)``."""
    return registry().get("operator", name).build(**params)


def default_prior_name(channels: int, domain: str = "natural") -> str:
    """The highest-ranked prior registered as a default for ``domain`` with matching channels."""
    best: tuple[int, str] | None = None
    for comp in registry().all("prior"):
        meta = comp.metadata
        if domain not in meta.get("default_for", ()):
            continue
        if meta.get("channels") not in (None, channels):
            continue
        rank = int(meta.get("rank", 0))
        if best is None or rank > best[0]:
            best = (rank, comp.name)
    if best is None:
        raise InvalidInputError(f"no default prior for {channels}-channel {domain} images; pass --prior NAME")
    return best[1]


def prior(name: str = "default", *, channels: int = 3, domain: str = "natural", device: str = "cpu",
          **params: Any) -> Prior:
    """Build a prior by registered name, by local diffusers folder path, or ``"default"``.

    Args:
        name: registered name (``restore list priors``), a folder path, or ``"default"``.
        channels, domain: pick the default prior when ``name == "default"``.
        device: where the prior lives (``"auto"`` picks CUDA, then MPS, then CPU).
        params: forwarded to the prior's factory (e.g. ``mean=``, ``cov=`` for ``gaussian``), except the
            speed options of network priors: ``precision`` (``fp32`` | ``bf16`` | ``auto``),
            ``channels_last`` and ``compile`` (see :class:`~restore.priors.diffusers_prior.DiffusersPrior`);
            priors without a network (analytic) ignore them.
    """
    speed = {key: params.pop(key) for key in ("precision", "channels_last", "compile") if key in params}
    if "precision" in speed:
        from .priors.diffusers_prior import PRECISIONS

        if speed["precision"] not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got '{speed['precision']}'")
    return _with_speed(_build_prior(name, channels, domain, device, params), speed)


def _with_speed(built: Prior, speed: dict[str, Any]) -> Prior:
    set_speed = getattr(built, "set_speed", None)
    return set_speed(**speed) if speed and set_speed is not None else built


def _build_prior(name: str, channels: int, domain: str, device: str, params: dict[str, Any]) -> Prior:
    dev = resolve_device(device)
    if name == "default":
        name = default_prior_name(channels, domain)
    if os.sep in name or os.path.exists(name):
        from .priors.loading import load_prior_folder

        return load_prior_folder(name, device=dev)
    comp = registry().get("prior", name)
    if comp.metadata.get("per_channel_factory"):
        params.setdefault("channels", channels)
    try:
        built = comp.build(**params)
    except TypeError as exc:  # e.g. the analytic `gaussian` prior needs mean= and cov=
        raise InvalidInputError(f"prior '{name}' cannot be built with {sorted(params) or 'no parameters'} ({exc}); "
                                f"build it from Python, e.g. restore.prior('{name}', ...)") from None
    return built.to(dev)


def sampler(name: str, **config: Any):
    """Build a registered sampler with config fields as keyword arguments, e.g. ``sampler("dds", steps=50)``."""
    return registry().get("sampler", name).build(**config)


def solve(y: torch.Tensor, op: Operator, *, prior: str | Prior = "default", sampler: str = "dds",
          noise_sigma: float = 0.0, seed: int = 0, device: str = "auto", steps: int | None = None,
          domain: str = "natural", precision: str = "fp32", **sampler_config: Any) -> torch.Tensor:
    """Restore ``x`` from ``y = op(x) + noise`` in one call.

    Args:
        y: measurement ``(B, C, H, W)`` in [0, 1] units.
        op: the degradation operator.
        prior: prior name, folder, ``"default"`` (chosen by channels) or a prior object.
        sampler: sampler name (``restore list samplers``).
        noise_sigma: Gaussian noise std of ``y`` in [0, 1] units.
        seed: the random seed; the same seed gives the same output.
        steps: the sampler's number of steps (ignored, as the CLI does, by samplers without steps).
        precision: ``fp32`` | ``bf16`` | ``auto`` for the network call of a prior loaded by name (a prior
            object keeps its own setting, see :meth:`DiffusersPrior.set_speed`).

    Returns:
        The estimate ``(B, C, H, W)`` in [0, 1] units.
    """
    from .plan import execute_plan, make_plan
    from .samplers.particles import collapse_note

    dev = resolve_device(device)
    if not isinstance(y, torch.Tensor):
        raise InvalidInputError("y must be a torch.Tensor of shape (B, C, H, W)")
    problem = Problem(y.to(dev), op.to(dev), GaussianNoise(noise_sigma))
    x_shape = problem.x_shape
    channels = x_shape[1] if len(x_shape) > 1 else 1
    label = prior if isinstance(prior, str) else getattr(prior, "name", "") or type(prior).__name__
    plan = make_plan(sampler, prior=label, steps=steps,
                     option_layers=(sampler_config,), noise=noise_sigma, seed=seed, channels=channels, domain=domain,
                     precision=precision)
    p = plan.load_prior(channels, domain, str(dev)) if isinstance(prior, str) else prior
    run = execute_plan(plan, problem, p)
    collapsed = collapse_note(run.diagnostics, "weight_exponent" in plan.sampler_config, cli=False)
    if collapsed:
        warnings.warn(collapsed, stacklevel=2)
    # a particle sampler's estimate is its weighted posterior mean; others return their one draw
    return (run.draws[0] if run.weights is None else run.moments()[0]).to(dev)

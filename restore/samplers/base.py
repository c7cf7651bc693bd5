"""Sampler base: frozen configs, explicit generators, NFE accounting and a progress callback."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from ..errors import IncompatibleError, InvalidInputError
from ..priors.base import DiffusionPrior
from ..problem import Problem

Callback = Callable[[int, int, int], None]  # (step, total_steps, nfe_so_far)


@dataclass
class Result:
    """What a sampler returns.

    Attributes:
        x: the estimate in public units, ``(B, C, H, W)`` (clamped to [0, 1] for image priors).
        nfe: network forward evaluations; ``vjp``: backward passes through the network.
        seconds: wall time of :meth:`Sampler.run`.
        x_model: the raw final state in the prior's model space.
        extras: sampler-specific outputs.
    """

    x: torch.Tensor
    nfe: int
    vjp: int
    seconds: float
    x_model: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


def randn(shape, generator: torch.Generator | None, like: torch.Tensor | None = None,
          dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Gaussian noise drawn on the CPU from ``generator`` then moved: same seed, same numbers on any device."""
    dtype = dtype or (like.dtype if like is not None else torch.float32)
    device = device or (like.device if like is not None else "cpu")
    return torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device)


class Sampler:
    """One algorithm. Subclasses set ``Config`` (a frozen dataclass with the paper's defaults),
    ``requires`` and implement :meth:`_sample`, which works in the prior's model space."""

    Config: ClassVar[type]
    requires: ClassVar[tuple[str, ...]] = ()
    prior_kinds: ClassVar[tuple[str, ...]] = ("vp", "analytic")

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        base = config if config is not None else self.Config()
        names = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InvalidInputError(
                f"{type(self).__name__} has no option {', '.join(unknown)}; options: {', '.join(sorted(names))}")
        self.config = dataclasses.replace(base, **overrides)
        self.validate()
        self.nfe = 0
        self.vjp = 0

    def validate(self) -> None:
        steps = getattr(self.config, "steps", 1)
        if not isinstance(steps, int) or steps < 1:
            raise InvalidInputError(f"steps must be a positive integer, got {steps}")

    # -- engine ------------------------------------------------------------------------------------
    def check(self, prior: DiffusionPrior, problem: Problem | None) -> None:
        name = type(self).__name__
        if prior.kind not in self.prior_kinds and prior.kind == "latent":
            raise IncompatibleError(
                f"sampler {name} works on pixel-space priors, but the prior is a latent (VAE + UNet) prior; "
                f"use --sampler psld or stsl with it, or choose a pixel-space --prior")
        if prior.kind not in self.prior_kinds and self.prior_kinds == ("latent",):
            raise IncompatibleError(
                f"sampler {name} needs a latent prior (a folder with vae/ and unet/, kind 'latent'), but the "
                f"prior is a pixel-space '{prior.kind}' prior; pass --prior PATH_TO_LATENT_MODEL or use "
                f"--sampler stsl, dps or red-diff")
        if prior.kind not in self.prior_kinds:
            raise IncompatibleError(
                f"sampler {name} needs a prior of kind {' or '.join(self.prior_kinds)}, but the prior is "
                f"'{prior.kind}'; choose a matching --prior or --sampler")
        if "operator" in self.requires and problem is None:
            raise IncompatibleError(f"sampler {name} needs a measurement (a Problem with y and an operator)")
        if "linear" in self.requires and problem is not None and not problem.operator.linear:
            raise IncompatibleError(f"sampler {name} needs a linear operator; use dps or red-diff for nonlinear ones")

    def run(self, prior: DiffusionPrior, problem: Problem | None = None, *, shape=None,
            generator: torch.Generator | None = None, callback: Callback | None = None,
            x_init: torch.Tensor | None = None) -> Result:
        """Sample ``x`` given ``problem`` (or unconditionally when ``problem`` is None, with ``shape``).

        Args:
            prior: the prior; its device sets the device of the computation.
            problem: measurement, operator and noise; ``None`` for unconditional samplers.
            shape: ``(B, C, H, W)`` of ``x`` when there is no problem.
            generator: CPU ``torch.Generator``; the same seed gives the same output.
            callback: called after every step with ``(step, total, nfe)``.
            x_init: optional starting state in model space (e.g. a given ``x_T``).
        """
        self.check(prior, problem)
        if problem is not None:
            shape = problem.x_shape
        if shape is None:
            raise InvalidInputError("pass a Problem or an explicit shape=(B, C, H, W)")
        self.nfe, self.vjp = 0, 0
        start = time.perf_counter()
        x_model, extras = self._sample(prior, problem, tuple(shape), generator, callback or (lambda *a: None), x_init)
        x = prior.from_model(x_model.detach())
        if prior.clamp_output and not x.is_complex():
            x = x.clamp(0, 1)
        return Result(x, self.nfe, self.vjp, time.perf_counter() - start, x_model.detach(), extras)

    def _sample(self, prior, problem, shape, generator, callback, x_init):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers shared by samplers -------------------------------------------------------------------
    def eps(self, prior: DiffusionPrior, x: torch.Tensor, k: int) -> torch.Tensor:
        self.nfe += 1
        return prior.eps(x, k)

    @staticmethod
    def dtype_for(prior: DiffusionPrior, problem: Problem | None) -> torch.dtype:
        if problem is not None and problem.y.is_floating_point():
            return problem.y.dtype
        if problem is not None and problem.y.is_complex():
            return problem.y.real.dtype
        for b in list(prior.buffers()) + list(prior.parameters()):
            if b.is_floating_point():
                return b.dtype
        return torch.float32

"""Sampler base: frozen configs checked by one validator, prior families, and the run around ``sample``.

A sampler is one class with a ``Config`` (a frozen dataclass with the paper's defaults), the prior
``families`` it accepts, what it ``requires`` of the problem, and one method
``sample(view, generator, callback)`` that works on the bound model view (:mod:`restore.priors.view`):
the view owns padding, units, ``predict(x, k) -> (eps, x0)``, the initial state and the NFE/VJP counts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from ..errors import IncompatibleError, InvalidInputError, ShapeError
from ..priors.base import DiffusionPrior, NoPrior, Prior, family_names
from ..priors.view import ModelView, randn
from ..problem import Problem
from .options import build_config

__all__ = ["Callback", "Result", "Sampler", "randn"]

Callback = Callable[[int, int, int], None]  # (step, total_steps, nfe_so_far)


#: Every key a sampler's ``Result.extras`` may hold, and its meaning: the shared keys first, then those only
#: one sampler returns. Network calls are not extras: they are ``Result.nfe`` and ``Result.vjp``.
EXTRAS: dict[str, str] = {
    "levels": "the level grid walked, first to last, in the prior family's level coordinate (VP: training "
              "level k; mean-reverting and flow: time t)",
    "sigmas": "the noise-level grid walked as σ (ve-pc, ve-ode: the VE σ in model units; pnp-hqs: the "
              "denoiser σ in public [0, 1] units)",
    "noise_image": "pnp-hqs: the measurement noise in image units that ends its σ grid, σ_n / max(‖A‖, 1)",
    "latent": "the inverted state (model space) whose decoding gives the output (code, ddim-inversion)",
    "particles": "the weighted particles (N, B, C, H, W) in public units (smc, fkc)",
    "weights": "the particles' normalised weights (N, B) (smc, fkc)",
    "diagnostics": "a dict of per-run diagnostics: ess, log_z, resampling (smc, fkc); the chain's levels (dmcmc)",
    "fallback": "the sampler that ran instead when a requirement was missing (dpm-solver-v3 without statistics)",
    "correction_levels": "code: the levels at which Langevin corrections ran",
    "admm": "dds-3d: the z-coupling ADMM state {'z', 'u'} (public units) at the end",
}


@dataclass
class Result:
    """What a sampler returns.

    Attributes:
        x: the estimate in public units, ``(B, C, H, W)`` (clamped to [0, 1] for image priors).
        nfe: network forward evaluations; ``vjp``: backward passes through the network.
        seconds: wall time of :meth:`Sampler.run`.
        x_model: the raw final state in the prior's model space (padded to the network's size multiple).
        extras: what the sampler reports beyond ``x``, under the keys of :data:`EXTRAS` only.
    """

    x: torch.Tensor
    nfe: int
    vjp: int
    seconds: float
    x_model: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


def _noop(*_: Any) -> None:
    return None


class Sampler:
    """One algorithm. Subclasses set ``Config``, ``families``, ``requires`` and implement :meth:`sample`.

    Attributes:
        families: the prior families (classes from :mod:`restore.priors.base`) the sampler accepts.
        requires: ``"operator"`` (a Problem is needed), ``"linear"`` (its operator must be linear).
        uses_prior: ``False`` for prior-free methods (classical baselines): ``run`` then takes ``prior=None``
            and the run plan loads no prior for them.
        nonnegative: config fields that must be ``>= 0`` (or ``None``), checked before :meth:`validate`.
        volumes: the sampler takes a volume ``(B, C, D, H, W)`` with a 2D prior (its slices through the
            network); prior-free samplers take whatever their operator takes.
        deterministic: the sampler draws no noise (an estimator, not a posterior sampler): ``--samples N``
            repeats one result, so the plan says so.
        unconditional: the sampler draws from the prior alone (generation, inversion). It would ignore a
            problem's measurement and return an image unrelated to ``y``, so :meth:`run` refuses a problem.
    """

    Config: ClassVar[type]
    requires: ClassVar[tuple[str, ...]] = ()
    families: ClassVar[tuple[type[Prior], ...]] = (DiffusionPrior,)
    uses_prior: ClassVar[bool] = True
    # The sampler draws all its noise through the view (initial_state / noise_like) and treats batch entries
    # independently, so posterior samples can run as one batch (restore.plan.execute_plan).
    chain_batching: ClassVar[bool] = False
    nonnegative: ClassVar[tuple[str, ...]] = ()
    volumes: ClassVar[bool] = False
    deterministic: ClassVar[bool] = False
    unconditional: ClassVar[bool] = False

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        self.config = build_config(type(self).__name__, self.Config, config, overrides)
        for name in self.nonnegative:
            value = getattr(self.config, name)
            if value is not None and value < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {value}")
        self.validate()

    def validate(self) -> None:
        """Checks across fields beyond the per-field ones of :func:`restore.samplers.options.build_config`."""

    # -- engine ------------------------------------------------------------------------------------
    def check(self, prior: Prior, problem: Problem | None) -> None:
        """Refuse a prior of another family or a problem the sampler cannot use (one-line errors)."""
        name = type(self).__name__
        if not isinstance(prior, self.families):
            others = compatible_samplers(type(prior))
            listed = " or ".join(others[:4]) + (" (restore list samplers shows all)" if len(others) > 4 else "")
            instead = f"use --sampler {listed} with it, or " if others else ""
            hints = " or ".join(f.hint for f in self.families)
            raise IncompatibleError(
                f"sampler {name} needs a {family_names(self.families)} prior, but the prior is a "
                f"{getattr(prior, 'family_label', type(prior).__name__)} prior; {instead}pass {hints}")
        if self.unconditional and problem is not None:
            raise IncompatibleError(
                f"sampler {name} draws from the prior alone and ignores the measurement, so it would return an image "
                f"unrelated to the input; use a posterior sampler (leave out --sampler for the task's default; "
                f"restore list samplers shows those that need an operator), or run {name} without a problem")
        if "operator" in self.requires and problem is None:
            raise IncompatibleError(f"sampler {name} needs a measurement: pass a Problem with y (the degraded "
                                    f"image) and an operator")
        if "linear" in self.requires and problem is not None and not problem.operator.linear:
            raise IncompatibleError(f"sampler {name} needs a linear operator; use dps or red-diff for nonlinear ones")

    def run(self, prior: Prior | None, problem: Problem | None = None, *, shape=None,
            generator: torch.Generator | None = None, callback: Callback | None = None,
            x_init: torch.Tensor | None = None) -> Result:
        """Sample ``x`` given ``problem`` (or unconditionally when ``problem`` is None, with ``shape``).

        The unknown is padded to the network's size multiple inside the run and cropped back in ``Result.x``.

        Args:
            prior: the prior; its device sets the device of the computation. ``None`` for samplers with
                ``uses_prior = False``.
            problem: measurement, operator and noise; ``None`` for unconditional samplers.
            shape: ``(B, C, H, W)`` of ``x`` when there is no problem.
            generator: CPU ``torch.Generator``; the same seed gives the same output.
            callback: called after every step with ``(step, total, nfe)``.
            x_init: optional starting state in model space (e.g. a given ``x_T``).
        """
        if prior is None and not self.uses_prior:
            prior = NoPrior()
        self.check(prior, problem)
        view = prior.bind(problem, shape=shape, x_init=x_init)
        if len(view.image_shape) == 5 and self.uses_prior and not self.volumes:
            raise ShapeError(f"sampler {type(self).__name__} reconstructs 2D images, got a volume "
                             f"{tuple(view.image_shape)}; use --sampler {' or '.join(volume_samplers())} for volumes")
        self.check_view(view)
        start = time.perf_counter()
        x_model, extras = self.sample(view, generator, callback or _noop)
        return Result(view.result(x_model), view.nfe, view.vjp, time.perf_counter() - start, x_model.detach(), extras)

    def check_view(self, view: ModelView) -> None:
        """Checks that need the bound problem (e.g. its padded shape); nothing by default."""

    def sample(self, view: ModelView, generator: torch.Generator | None,
               callback: Callback) -> tuple[torch.Tensor, dict[str, Any]]:  # pragma: no cover - abstract
        """The algorithm: the final state in model space and the sampler's extras."""
        raise NotImplementedError


def registered_samplers(keep: Callable[[type], bool]) -> list[str]:
    """Names of the registered samplers whose class ``keep`` accepts (plugins that fail to load are skipped:
    a broken plugin must not hide the error being reported)."""
    from ..plugins import registry

    names = []
    for comp in registry().all("sampler"):
        try:
            cls = comp.load()
        except Exception:  # noqa: BLE001
            continue
        if keep(cls):
            names.append(comp.name)
    return names


def volume_samplers() -> list[str]:
    """Registered samplers that reconstruct volumes with a 2D prior."""
    return registered_samplers(lambda cls: getattr(cls, "volumes", False))


def compatible_samplers(prior_type: type) -> list[str]:
    """Registered samplers made for priors of ``prior_type`` (baselines that take any prior left out)."""
    def made_for(cls) -> bool:
        families = getattr(cls, "families", (Prior,))
        return Prior not in families and issubclass(prior_type, families)

    return registered_samplers(made_for)

"""Exact diffusion inversion as an object: ``restore.invert(prior, x0)`` -> :class:`Inversion`.

An :class:`Inversion` holds the latents of an image (the pair ``(z_N, z_{N-1})`` for BDIA, ``z_N`` for the
naive DDIM baseline), reconstructs the image from them, and saves/loads them as safetensors together
with a fingerprint of the prior and its schedule, so latents are never decoded by a different prior.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import IncompatibleError, InvalidInputError, OutputExistsError
from .priors.base import Prior
from .samplers.base import Callback

FORMAT = "restore-inversion/1"
INVERTIBLE = ("bdia", "bdia-edm", "ddim-inversion", "rf-solver")


def _build_sampler(name: str, config: dict[str, Any]):
    from .api import sampler as make_sampler

    s = make_sampler(name, **config)
    if not hasattr(s, "invert") or not hasattr(s, "reconstruct"):
        raise IncompatibleError(f"sampler '{name}' cannot invert images; choose one of {', '.join(INVERTIBLE)}")
    return s


def _prior_label(prior: Prior | str) -> str:
    if isinstance(prior, str):
        return os.path.abspath(prior) if os.path.isdir(prior) else prior
    return getattr(prior, "name", "") or type(prior).__name__


@dataclass
class Inversion:
    """Latents of an image under a prior and an invertible sampler.

    Attributes:
        latents: ``{"z_top": z_N}`` plus ``"z_next": z_{N-1}`` for BDIA samplers, each ``(B, C, H', W')``
            in the sampler's latent units (model space; EDM units ``z/a`` for ``bdia-edm``), where
            ``H', W'`` include padding to the network's size multiple.
        sampler: sampler name; ``config``: its full config (steps, gamma, spacing, ...).
        fingerprint: :meth:`Prior.fingerprint` of the prior that made the latents (covers weights
            and schedule); ``schedule``: the schedule's own fingerprint.
        prior_name: registered name or folder of that prior (used by ``restore reconstruct`` by default).
        shape: ``(B, C, H, W)`` of the original image; ``dtype``: its dtype name.
        meta: JSON-serialisable reader metadata of the image (original bit depth, format) for writers.
        prior: the prior object when in memory (not saved).
    """

    latents: dict[str, torch.Tensor]
    sampler: str
    config: dict[str, Any]
    fingerprint: str
    schedule: str
    prior_name: str
    shape: tuple[int, ...]
    dtype: str
    nfe: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    prior: Prior | None = field(default=None, repr=False)

    @property
    def steps(self) -> int:
        return int(self.config["steps"])

    @property
    def gamma(self) -> float | None:
        return self.config.get("gamma")

    def check_prior(self, prior: Prior) -> None:
        """Raise :class:`IncompatibleError` unless ``prior`` is the one (weights and schedule) that made the latents."""
        fp = prior.fingerprint()
        if fp != self.fingerprint:
            what = "schedule" if prior.schedule.fingerprint() != self.schedule else "prior"
            raise IncompatibleError(
                f"these latents were made by a different prior or schedule (a different {what}): made by "
                f"'{self.prior_name}' (fingerprint {self.fingerprint}), given fingerprint {fp}; reconstruct "
                f"with the same prior (--prior {self.prior_name})")

    def reconstruct(self, prior: Prior | str | None = None, callback: Callback | None = None) -> torch.Tensor:
        """The image ``(B, C, H, W)`` in public [0, 1] units (not clamped), exact for BDIA samplers.

        Args:
            prior: the prior that made the latents (object, name or folder); defaults to the one in memory.
            callback: progress ``(step, total, nfe)``.
        """
        if prior is None:
            prior = self.prior
        if prior is None:
            raise InvalidInputError("pass the prior that made these latents: inversion.reconstruct(prior)")
        if isinstance(prior, str):
            from .api import prior as make_prior

            prior = make_prior(prior, channels=self.shape[1] if len(self.shape) > 1 else 1)
        self.check_prior(prior)
        s = _build_sampler(self.sampler, self.config)
        lat = [self.latents[k].to(prior.device) for k in ("z_top", "z_next") if k in self.latents]
        view = prior.bind(shape=self.shape)
        with torch.no_grad():
            z0 = s.reconstruct(view, *lat, callback=callback)
        return view.unpad(view.from_model(z0))

    # -- files -----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write the latents and their metadata to a safetensors file, atomically."""
        from safetensors.torch import save_file

        path = os.fspath(path)
        if os.path.exists(path) and not overwrite:
            raise OutputExistsError(f"output '{path}' exists; pass --overwrite or choose another -o path")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InvalidInputError(f"output folder '{folder}' does not exist")
        meta = {"format": FORMAT, "sampler": self.sampler, "config": json.dumps(self.config),
                "fingerprint": self.fingerprint, "schedule": self.schedule, "prior": self.prior_name,
                "shape": json.dumps(list(self.shape)), "dtype": self.dtype, "nfe": str(self.nfe),
                "image_meta": json.dumps(self.meta)}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.latents.items()}
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Inversion":
        """Read latents written by :meth:`save` (``restore invert``)."""
        from safetensors import safe_open

        path = os.fspath(path)
        if not os.path.exists(path):
            raise InvalidInputError(f"latents file '{path}' does not exist")
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad files
            raise InvalidInputError(f"cannot read '{path}' as safetensors ({exc}); "
                                    f"pass a file written by 'restore invert'".replace("\n", " ")) from None
        if meta.get("format") != FORMAT or "z_top" not in tensors:
            raise InvalidInputError(f"'{path}' is not a restore latents file; make one with 'restore invert IMG -o FILE'")
        try:
            return cls(latents=tensors, sampler=meta["sampler"], config=json.loads(meta["config"]),
                       fingerprint=meta["fingerprint"], schedule=meta["schedule"], prior_name=meta["prior"],
                       shape=tuple(json.loads(meta["shape"])), dtype=meta["dtype"], nfe=int(meta.get("nfe", 0)),
                       meta=json.loads(meta.get("image_meta", "{}")))
        except (KeyError, TypeError, ValueError) as exc:  # damaged or hand-edited metadata
            raise InvalidInputError(f"'{path}' has damaged latents metadata ({type(exc).__name__}: {exc}); "
                                    "make it again with 'restore invert IMG -o FILE'") from None


def invert(prior: Prior | str, x0: torch.Tensor, sampler: str = "bdia", steps: int | None = None,
           gamma: float | None = None, callback: Callback | None = None, **config: Any) -> Inversion:
    """Invert an image to latents that reconstruct it (exactly, for ``bdia`` and ``bdia-edm``).

    Args:
        prior: a prior object, a registered name or a diffusers folder.
        x0: the image ``(B, C, H, W)`` in public [0, 1] units; its dtype (float32/float64) is kept.
        sampler: ``bdia`` (default), ``bdia-edm``, ``ddim-inversion`` (the inexact baseline) or ``rf-solver``
            (second-order flow inversion; VP priors are reparameterised as rectified flows).
        steps, gamma: sampler config overrides (``gamma`` only for the BDIA samplers).
        callback: progress ``(step, total, nfe)``.
        config: further sampler options (e.g. ``spacing``).

    Returns:
        An :class:`Inversion`; ``.reconstruct()`` gives the image back, ``.save(path)`` writes it.
    """
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point():
        raise InvalidInputError("x0 must be a floating-point torch.Tensor of shape (B, C, H, W) in [0, 1]")
    if not bool(torch.isfinite(x0).all()):
        raise InvalidInputError("x0 contains NaN or infinite values")
    label = _prior_label(prior)
    if isinstance(prior, str):
        from .api import prior as make_prior

        prior = make_prior(prior, channels=x0.shape[1] if x0.ndim > 1 else 1)
    if steps is not None:
        config["steps"] = steps
    if gamma is not None:
        config["gamma"] = gamma
    s = _build_sampler(sampler, config)
    if s.config.steps < 2:
        raise InvalidInputError(f"inversion needs steps >= 2, got {s.config.steps}")
    # the view pads to the network's size multiple; reconstruction crops the padding again
    view = prior.bind(shape=tuple(x0.shape), x_init=None)
    with torch.no_grad():
        out = s.invert(view, view.to_model(view.pad(x0.to(prior.device))), callback=callback)
    latents = {"z_top": out[0], "z_next": out[1]} if isinstance(out, tuple) else {"z_top": out}
    return Inversion(latents=latents, sampler=sampler, config=dataclasses.asdict(s.config),
                     fingerprint=prior.fingerprint(), schedule=prior.schedule.fingerprint(), prior_name=label,
                     shape=tuple(x0.shape), dtype=str(x0.dtype).removeprefix("torch."), nfe=view.nfe, prior=prior)

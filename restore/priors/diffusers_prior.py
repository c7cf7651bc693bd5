"""Load a diffusers ``UNet2DModel`` + scheduler config from a local folder as a :class:`DiffusionPrior`.

Accepted layouts: a pipeline folder with ``unet/`` and ``scheduler/`` sub-folders (``DDPMPipeline``),
or a bare model folder with ``config.json`` + weights and an optional ``scheduler_config.json``.
Nothing is downloaded: a hub name is refused with a message.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Literal

import torch

from ..errors import InvalidInputError
from .base import DiffusionPrior
from .gaussian_blend import GaussianBlend, stationary_for
from .parameterization import to_v, to_x0
from .schedules import VPSchedule
from .tiling import tiled_network

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS = ("fp32", "bf16", "auto")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX), which oneDNN uses for bf16
    autocast. Elsewhere bf16 is emulated and slower than float32: on an AVX-512 CPU without BF16, one
    ``natural-rgb`` call at 256² took 1.66 s in bf16 against 0.44 s in float32 (both channels-last, one thread;
    ``bench/results/precision_cpu.json``)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def warn_if_emulated(precision: str) -> None:
    """A one-line warning, once per process, when ``bf16`` is forced on a CPU that would emulate it: on an AMD
    EPYC with AVX2 only, a ``natural-gray`` training step (batch 8 of 64², one thread) took 38x as long in bf16
    autocast as in float32 (49.7 s against 1.32 s; ``bench/results/precision_cpu_avx2.json``)."""
    if precision == "bf16" and not torch.cuda.is_available() and not cpu_has_native_bf16():
        _warn_emulated_bf16()


@functools.cache
def _warn_emulated_bf16() -> None:
    warnings.warn("this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so bf16 is emulated and several times "
                  "slower than fp32; use --precision auto or fp32", stacklevel=4)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with native bfloat16 (:func:`cpu_has_native_bf16`; oneDNN uses AVX-512
    BF16/AMX, bench/speed.py measures it), ``fp32`` on other CPUs, the CUDA autocast type on a GPU; ``fp32``
    and ``bf16`` as given. MPS stays ``fp32``. With ``auto`` the network also runs channels-last
    (:attr:`DiffusersPrior.channels_last`), which is faster in float32 as well."""
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def _scheduler_betas(folder: Path) -> tuple[torch.Tensor, str]:
    for candidate in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json"):
        if candidate.exists():
            from diffusers import DDPMScheduler

            sched = DDPMScheduler.from_pretrained(str(candidate.parent))
            return sched.betas.double(), sched.config.prediction_type
    return VPSchedule.linear().betas, "epsilon"


class DiffusersPrior(DiffusionPrior):
    """A pixel-space VP prior around a diffusers ``UNet2DModel`` (eps, sample or v prediction).

    Networks with learned variance (2·C output channels, ADM style) use only the first C channels.
    Inputs are ``(B, C, H, W)`` in model range ``[-1, 1]``; H and W must suit the network (multiples of
    ``2 ** (levels - 1)``).

    Attributes:
        tile: images larger than ``tile`` pixels on a side go through the network in overlapping
            ``tile × tile`` windows (:mod:`restore.priors.tiling`), so memory is bounded for large photos;
            ``None`` disables tiling. A multiple of ``multiple``.
        tile_overlap: pixels shared by neighbouring tiles (blended with linear ramps).
        precision: ``fp32``, ``bf16`` or ``auto`` (:func:`resolve_precision`): the dtype of the network call
            only, by autocast; the sampler's state, CG and data terms keep the caller's dtype.
        channels_last: run the network on channels-last tensors (oneDNN's preferred layout on CPUs; implied
            by ``precision="auto"``, whose measured gain on CPUs comes mostly from bf16 and this layout together).
        compile: trace and freeze the network per input shape (``torch.jit.freeze``: oneDNN conv fusion);
            falls back to eager, with one debug log line, where tracing fails.
    """

    def __init__(self, unet, schedule: VPSchedule, prediction_type: str = "epsilon", name: str = "",
                 metadata: dict | None = None) -> None:
        super().__init__(schedule, channels=unet.config.in_channels, data_range=(-1.0, 1.0))
        self.unet = unet.eval().requires_grad_(False)
        self.prediction_type = prediction_type
        self.name = name
        self.metadata = metadata or {}
        self.multiple = 2 ** (len(unet.config.block_out_channels) - 1)
        self.tile: int | None = 512
        self.tile_overlap = 64
        self.precision: Precision = "fp32"
        self.channels_last = False
        self.compile = False
        self._frozen: dict[tuple, object] = {}  # frozen graphs by input shape and settings (False: eager)
        self.gaussian_blend: GaussianBlend | None = None
        self._gaussian = None
        if self.metadata.get("gaussian_blend") is not None:
            self.set_gaussian_blend(GaussianBlend.from_dict(self.metadata["gaussian_blend"]))

    def set_gaussian_blend(self, blend: GaussianBlend | None) -> "DiffusersPrior":
        """Blend the network's ``x0̂`` with the stationary Gaussian's at high noise by ``blend``'s weight
        (:mod:`restore.priors.gaussian_blend`); ``None`` is the network alone. Returns ``self``."""
        self.gaussian_blend = blend
        self._gaussian = None if blend is None else stationary_for(self).to(self.device)
        return self

    def fingerprint(self) -> str:
        base = super().fingerprint()
        if self.gaussian_blend is None:
            return base
        return hashlib.sha256(f"{base}|{self.gaussian_blend.digest()}".encode()).hexdigest()[:16]

    def set_speed(self, precision: Precision | None = None, channels_last: bool | None = None,
                  compile: bool | None = None) -> "DiffusersPrior":
        """Set how the network runs (``None`` keeps a setting); returns ``self``. Raises
        :class:`~restore.errors.InvalidInputError` for an unknown precision."""
        if precision is not None:
            resolve_precision(precision, torch.device("cpu"))
            warn_if_emulated(precision)
            self.precision = precision
        if channels_last is not None:
            self.channels_last = bool(channels_last)
        self.unet.to(memory_format=torch.channels_last if self._channels_last else torch.contiguous_format)
        if compile is not None:
            self.compile = bool(compile)
        return self

    @classmethod
    def from_folder(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "DiffusersPrior":
        folder = Path(path)
        if not folder.is_dir():
            raise InvalidInputError(
                f"prior folder '{path}' does not exist; pass a registered prior name or a local diffusers "
                f"folder (downloading from a hub is not supported offline)")
        unet_dir = folder / "unet" if (folder / "unet" / "config.json").exists() else folder
        if not (unet_dir / "config.json").exists():
            raise InvalidInputError(f"'{folder}' has no unet/config.json or config.json; it is not a diffusers model folder")
        from diffusers import UNet2DModel
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()  # a missing `accelerate` is not the user's problem
        try:
            unet = UNet2DModel.from_pretrained(str(unet_dir), low_cpu_mem_usage=False)
        except Exception as exc:  # noqa: BLE001 - diffusers raises many types for bad folders
            raise InvalidInputError(f"could not load a UNet2DModel from '{unet_dir}': {exc}".splitlines()[0]) from None
        betas, prediction_type = _scheduler_betas(folder)
        meta_path = folder / "restore_prior.json"
        metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        prior = cls(unet, VPSchedule(betas, name=f"diffusers-{betas.numel()}"), prediction_type,
                    name=metadata.get("name", folder.name), metadata=metadata)
        prior.folder = str(folder)  # where side files belong (DPM-Solver-v3's model statistics)
        return prior.to(device)

    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out = tiled_network(lambda part: self._network(part, k), x, self.tile, self.tile_overlap, self.multiple)
        if self.gaussian_blend is None:
            return out
        _, a, s = self._levels(x, k)
        w = self.gaussian_blend.weight(s / a).to(x.device, x.real.dtype)
        if bool((w >= 1).all()):
            return out
        gauss = self._gaussian.model_output(x, k)  # eps
        if self.prediction_type == "sample":
            gauss = to_x0(gauss, x, a, s, "epsilon")
        elif self.prediction_type == "v_prediction":
            gauss = to_v(gauss, x, a, s, "epsilon")
        return w * out + (1 - w) * gauss

    @property
    def _channels_last(self) -> bool:
        return self.channels_last or self.precision == "auto"

    def _autocast(self, device: torch.device):
        precision = resolve_precision(self.precision, device)
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)

    def _call(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if not self.compile or torch.is_grad_enabled():  # a frozen graph is for inference (no VJP through it)
            return self.unet(x, k, return_dict=False)[0]
        key = (tuple(x.shape), x.dtype, x.device, resolve_precision(self.precision, x.device), self._channels_last)
        frozen = self._frozen.get(key)
        if frozen is None:
            try:
                with warnings.catch_warnings():  # tracer warnings about shape asserts are expected
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(self.unet, (x, k), strict=False, check_trace=False)
                frozen = torch.jit.freeze(traced.eval())
            except Exception as exc:  # noqa: BLE001 - compilation is an optimisation, never a failure
                log.debug("network not frozen (%s: %s); running eagerly", type(exc).__name__, exc)
                frozen = False
            self._frozen[key] = frozen
        if frozen is False:
            return self.unet(x, k, return_dict=False)[0]
        out = frozen(x, k)
        return out["sample"] if isinstance(out, dict) else out[0]

    def _network(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        dtype = next(self.unet.parameters()).dtype
        inp = x.to(dtype)
        if self._channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        k = k.to(x.device)
        if k.ndim == 0:  # a traced network is specialised to a batch of timesteps
            k = k.expand(x.shape[0])
        with self._autocast(x.device):
            out = self._call(inp, k)
        out = out.to(x.dtype).contiguous()
        if out.shape[1] == 2 * x.shape[1]:
            out = out[:, : x.shape[1]]
        return out

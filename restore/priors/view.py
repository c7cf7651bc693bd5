"""The bound model view: a prior bound to one run, the one seam between samplers and priors.

``view = prior.bind(problem)`` is built once per run by :meth:`restore.samplers.base.Sampler.run`. It owns

* padding: the unknown is padded to the network's size multiple (the operator sees ``A @ Crop``) and the
  result is cropped back; :meth:`ModelView.y_image` gives ``y`` in the padded x-space where a sampler
  needs the measurement as an image (denoising, blind restoration, mean-reversion targets);
* units: :meth:`to_model` / :meth:`from_model` between public ``[0, 1]`` and the prior's own space
  (encode/decode for latent priors);
* :meth:`predict` ``(x, k) -> (eps, x0)`` with one network call, and the NFE/VJP counts of the run;
* the initial state (:meth:`initial_state`) and the family-specific parts (μ for mean-reverting priors).

Samplers never touch the prior directly, so a new prior family is one new view, and a new sampler is one
``sample(view, generator, callback)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError, ShapeError
from ..operators.base import Crop
from ..operators.noise import GaussianNoise
from ..problem import Problem

if TYPE_CHECKING:  # pragma: no cover
    from .base import Prior


def randn(shape, generator: torch.Generator | None, like: torch.Tensor | None = None,
          dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Gaussian noise drawn on the CPU from ``generator`` then moved: same seed, same numbers on any device.

    ``generator`` may be a :class:`restore.plan.ChainGenerators` (batched posterior samples): each chain's
    share of the batch then comes from its own generator."""
    dtype = dtype or (like.dtype if like is not None else torch.float32)
    device = device or (like.device if like is not None else "cpu")
    if hasattr(generator, "generators"):
        return generator.randn(tuple(shape), dtype).to(device)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device)


def _dtype(prior: Prior, problem: Problem | None) -> torch.dtype:
    if problem is not None and problem.y.is_floating_point():
        return problem.y.dtype
    if problem is not None and problem.y.is_complex():
        return problem.y.real.dtype
    for b in list(prior.buffers()) + list(prior.parameters()):
        if b.is_floating_point():
            return b.dtype
    return torch.float32


class ModelView:
    """A prior bound to one run (VP family: ``x_k = a_k x0 + s_k eps`` in the prior's model space).

    Attributes:
        prior: the prior; ``schedule``: its noise schedule.
        problem: the measurement with the padded unknown (``None`` for unconditional runs).
        image_shape: ``(B, C, H, W)`` of the unknown as the caller gave it; ``x_shape``: after padding.
        shape: shape of the sampler's state in model space (``x_shape``; the latent shape for latent priors).
        dtype, device: of the computation.
        x_init: a given starting state in model space, or ``None``.
        nfe, vjp: network forward evaluations and backward passes through the network so far.
    """

    def __init__(self, prior: Prior, problem: Problem | None, shape=None, x_init: torch.Tensor | None = None) -> None:
        if problem is not None:
            shape = problem.x_shape
        if shape is None:
            raise InvalidInputError("pass a Problem or an explicit shape=(B, C, H, W)")
        self.prior = prior
        self.schedule = prior.schedule
        self.image_shape = tuple(shape)
        self.crop: Crop | None = None
        multiple = getattr(prior, "multiple", 1)
        if multiple > 1 and len(self.image_shape) in (4, 5):  # images (B, C, H, W) and volumes (B, C, D, H, W)
            H, W = self.image_shape[-2:]
            ph, pw = (-H) % multiple, (-W) % multiple
            if ph or pw:
                self.crop = Crop(H, W, ph, pw)
        self.measured = problem  # as the caller gave it (the padded one is ``problem``)
        if self.crop is not None and problem is not None:
            problem = Problem(problem.y, problem.operator @ self.crop, problem.noise,
                              self.image_shape[:-2] + (self.crop.height + self.crop.pad_h,
                                                       self.crop.width + self.crop.pad_w))
        self.problem = problem
        self.x_shape = self.image_shape if self.crop is None else self.crop.input_shape(self.image_shape)
        self.shape = self.state_shape(self.x_shape)
        self.dtype = _dtype(prior, problem)
        self.device = prior.device
        self.x_init = x_init
        self.nfe = 0
        self.vjp = 0
        self.data_range = prior.data_range

    # -- family hooks --------------------------------------------------------------------------------------
    def state_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the model-space state for an image of ``x_shape``."""
        return tuple(x_shape)

    def to_model(self, x01: torch.Tensor) -> torch.Tensor:
        """Public ``[0, 1]`` units -> the prior's model space."""
        return self.prior.to_model(x01)

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """The prior's model space -> public ``[0, 1]`` units."""
        return self.prior.from_model(x)

    # -- the network ---------------------------------------------------------------------------------------
    def eps(self, x: torch.Tensor, k) -> torch.Tensor:
        """Noise prediction at level ``k`` (one network call)."""
        self.nfe += 1
        return self.prior.eps(x, k)

    def coefficients(self, k) -> tuple[float, float]:
        """``(a_k, s_k)`` of level ``k``."""
        return float(self.schedule.a(k)), float(self.schedule.s(k))

    def predict(self, x: torch.Tensor, k) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eps, x0)`` at level ``k`` from one network call: ``x0 = (x - s_k eps) / a_k``."""
        eps = self.eps(x, k)
        a, s = self.coefficients(k)
        return eps, (x - s * eps) / a

    def clip(self, x0: torch.Tensor) -> torch.Tensor:
        """``x0`` clamped to the model's data range."""
        lo, hi = self.data_range
        return x0.clamp(lo, hi)

    def count_vjp(self, n: int = 1) -> None:
        """Record ``n`` backward passes through the network."""
        self.vjp += n

    # -- states --------------------------------------------------------------------------------------------
    def initial_state(self, generator: torch.Generator | None) -> torch.Tensor:
        """The given ``x_init``, else ``N(0, I)`` of :attr:`shape`."""
        if self.x_init is not None:
            return self.x_init
        return randn(self.shape, generator, dtype=self.dtype, device=self.device)

    def noise_like(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return randn(x.shape, generator, like=x)

    def y_image(self, resize: bool = False) -> torch.Tensor:
        """``y`` as an image in the padded x-space, ``(B, C, H, W)`` in public units.

        A ``y`` of the unpadded image's size is replicate-padded at the bottom/right; with ``resize`` a ``y``
        of another size (super-resolution) is first resized bicubically to the image size.
        """
        y = self.problem.y
        size = tuple(self.image_shape[-2:])
        if y.is_complex() or y.ndim != len(self.image_shape) or tuple(y.shape[:2]) != tuple(self.image_shape[:2]):
            raise ShapeError(f"this sampler needs y as an image of x's batch and channels {self.image_shape}, "
                             f"got y of shape {tuple(y.shape)}")
        if tuple(y.shape[-2:]) != size:
            if not resize:
                raise ShapeError(f"this sampler needs y of the image's size {size}, got {tuple(y.shape[-2:])}; "
                                 f"use an identity operator")
            # The operator's own estimate when it has x's size (bicubic upsampling for super-resolution, the
            # edge-extended y of a `valid` blur); a plain bicubic resize otherwise.
            op = self.problem.operator
            base = op.outer if self.crop is not None and hasattr(op, "outer") else op
            start = base.initial_estimate(y) if hasattr(base, "initial_estimate") else None
            if start is not None and tuple(start.shape[-2:]) == size:
                y = start
            else:
                y = F.interpolate(y, size=size, mode="bicubic", align_corners=False)
        return self.pad(y)

    def pad(self, x01: torch.Tensor) -> torch.Tensor:
        """An image of the unpadded size, replicate-padded at the bottom/right to the network's multiple."""
        return x01 if self.crop is None else self.crop.initial_estimate(x01)

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """An image of the padded size cropped back to the caller's size."""
        return x if self.crop is None else self.crop(x)

    def result(self, x_model: torch.Tensor) -> torch.Tensor:
        """The public estimate of a final state: from model space, clamped for image priors, padding cropped;
        on a noiseless measurement by an operator with an exact pseudo-inverse (a mask), made to reproduce
        ``y`` exactly: the observed pixels are the measured ones."""
        x = self.from_model(x_model.detach())
        if self.prior.clamp_output and not x.is_complex():
            x = x.clamp(0, 1)
        x = self.unpad(x)
        given = self.measured
        if (given is not None and getattr(given.operator, "exact_pinv", False)
                and isinstance(given.noise, GaussianNoise) and given.noise.sigma == 0):
            op, y = given.operator, given.y.to(device=x.device, dtype=x.dtype)
            x = x + op.pinv(y - op(x))
        return x


class LatentView(ModelView):
    """A latent prior bound to one run: the state is the latent ``z``; units go through the VAE."""

    def state_shape(self, x_shape):
        return tuple(self.prior.latent_shape(tuple(x_shape)))


class MeanRevertingView(ModelView):
    """A mean-reverting prior bound to one run: ``μ`` (the degraded input in x-space) conditions every call.

    Levels are training times ``t`` of the :class:`~restore.priors.mean_reverting.MRSchedule`.
    """

    def __init__(self, prior: Prior, problem: Problem | None, shape=None, x_init: torch.Tensor | None = None) -> None:
        super().__init__(prior, problem, shape, x_init)
        self.mu: torch.Tensor | None = None
        if self.problem is not None:
            check = getattr(prior, "check_problem", None)
            if check is not None:
                check(self.problem)
            self.mu = self.y_image(resize=True).to(self.device, self.dtype)

    def y_image(self, resize: bool = True) -> torch.Tensor:
        y = self.problem.y
        if y.is_complex() or y.ndim != 4 or len(self.image_shape) != 4:
            raise ShapeError(f"mean-reverting samplers need real images (B, C, H, W), got y of shape {tuple(y.shape)}")
        if y.shape[:2] != self.image_shape[:2]:
            raise ShapeError(f"y has shape {tuple(y.shape)} but x has {self.image_shape}: batch and channels must "
                             f"match for a mean-reverting prior")
        return super().y_image(resize)

    def eps(self, x: torch.Tensor, t) -> torch.Tensor:
        self.nfe += 1
        return self.prior.eps(x, t, self.mu)

    def coefficients(self, t) -> tuple[float, float]:
        """``(α_t, σ̄_t)``."""
        return float(self.schedule.alpha(t)), float(self.schedule.sigma_bar(t))

    def predict(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        from .mean_reverting import mr_to_x0

        eps = self.eps(x, t)
        a, s = self.coefficients(t)
        return eps, mr_to_x0(eps, x, self.mu, a, s, self.schedule.lam, "epsilon")

    def initial_state(self, generator: torch.Generator | None) -> torch.Tensor:
        """The given ``x_init``, else ``x_T = μ + λ z``."""
        if self.x_init is not None:
            return self.x_init
        return self.mu + self.schedule.lam * randn(self.shape, generator, like=self.mu)


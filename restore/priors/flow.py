"""The flow prior family: velocity fields on an interpolant ``x_t = α_t x0 + σ_t ε``, ``t ∈ [0, 1]``.

Rectified flow (Liu et al., ICLR 2023) is ``α_t = 1 - t``, ``σ_t = t``; stochastic interpolants (Albergo et al.
2023) are any other ``(α, σ)`` with ``α_0 = σ_1 = 1``, ``α_1 = σ_0 = 0``. A flow prior predicts the velocity
``v(x, t) = E[α'_t x0 + σ'_t ε | x_t = x]``; sampling integrates ``dx/dt = v`` from ``t = 1`` (noise) to ``0``.

* :class:`Interpolant` — ``α, σ`` and their derivatives, and every conversion between velocity, ``x0``,
  ``ε`` and score, in one place (:data:`RECTIFIED`, :data:`TRIGONOMETRIC`);
* :class:`FlowPrior` — the family; subclasses implement :meth:`FlowPrior.velocity`;
* :class:`GaussianFlowPrior` — ``x0 ~ N(m, Σ)`` with the exact velocity and the exact flow map (test oracle);
* :class:`VPAsFlow` — any VP prior as a flow through the exact reparameterisation: a VP state
  ``x_k = a_k x0 + s_k ε`` at level ``k`` is the flow state ``x_t = (α_t / a_k) x_k`` at the time with
  ``σ_t / α_t = s_k / a_k`` (for rectified flow ``t = s_k / (a_k + s_k)``, ``x_t = x_k / (a_k + s_k)``). Every
  velocity call is one VP network call at level ``k``; times are snapped to the VP levels, where the
  conversion is exact. All flow samplers run on the shipped VP priors through it (:func:`as_flow`).

The bound view (:class:`FlowView`) gives samplers ``velocity(x, t)`` (one network call, counted), the
conversions, the time grid and the initial state.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InvalidInputError
from .analytic import GaussianPrior
from .base import DiffusionPrior, Prior, Reparameterised, VPPrior
from .view import ModelView, randn


class Interpolant:
    """``x_t = α_t x0 + σ_t ε`` with ``σ_t / α_t`` increasing from 0 to ∞; subclasses give ``α, σ, α', σ'``.

    The conversions solve ``[x, v] = [[α, σ], [α', σ']] [x0, ε]`` (determinant ``α σ' - σ α'`` > 0).
    """

    name = "custom"

    def alpha(self, t: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def sigma(self, t: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def d_alpha(self, t: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def d_sigma(self, t: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _det(self, t: float) -> float:
        return self.alpha(t) * self.d_sigma(t) - self.sigma(t) * self.d_alpha(t)

    # -- conversions (x = α x0 + σ ε, v = α' x0 + σ' ε) ------------------------------------------------------
    def x0(self, v: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
        """``x0 = (σ' x - σ v) / det``."""
        return (self.d_sigma(t) * x - self.sigma(t) * v) / self._det(t)

    def eps(self, v: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
        """``ε = (α v - α' x) / det``."""
        return (self.alpha(t) * v - self.d_alpha(t) * x) / self._det(t)

    def velocity(self, x0: torch.Tensor, eps: torch.Tensor, t: float) -> torch.Tensor:
        """``v = α' x0 + σ' ε``."""
        return self.d_alpha(t) * x0 + self.d_sigma(t) * eps

    def velocity_from_x0(self, x0: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
        """``v`` from an ``x0`` prediction (``t > 0``)."""
        return self.velocity(x0, (x - self.alpha(t) * x0) / self.sigma(t), t)

    def velocity_from_eps(self, eps: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
        """``v`` from an ``ε`` prediction (``t < 1``)."""
        return self.velocity((x - self.sigma(t) * eps) / self.alpha(t), eps, t)

    def x0_gain(self, t: float) -> float:
        """``∂x0/∂x`` with the velocity held fixed: ``σ' / det`` (1 for rectified flow)."""
        return self.d_sigma(t) / self._det(t)

    def score(self, v: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
        """``∇ log p_t(x) = -ε / σ_t`` (``t > 0``)."""
        return -self.eps(v, x, t) / self.sigma(t)

    # -- time change -----------------------------------------------------------------------------------------
    def time_of_ratio(self, rho: float) -> float:
        """The time with ``σ_t / α_t = rho`` (bisection to round-off; subclasses give closed forms)."""
        lo, hi = 0.0, 1.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if self.sigma(mid) < rho * self.alpha(mid):
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-17:
                break
        return 0.5 * (lo + hi)

    def fingerprint(self) -> str:
        return self.name


class Rectified(Interpolant):
    """Rectified flow / flow matching with the linear path: ``α = 1 - t``, ``σ = t`` (``v = ε - x0``)."""

    name = "rectified"

    def alpha(self, t):
        return 1.0 - t

    def sigma(self, t):
        return t

    def d_alpha(self, t):
        return -1.0

    def d_sigma(self, t):
        return 1.0

    def time_of_ratio(self, rho):
        return rho / (1.0 + rho)


class Trigonometric(Interpolant):
    """The variance-preserving trigonometric interpolant ``α = cos(πt/2)``, ``σ = sin(πt/2)`` (Albergo et al.)."""

    name = "trigonometric"

    def alpha(self, t):
        return math.cos(0.5 * math.pi * t)

    def sigma(self, t):
        return math.sin(0.5 * math.pi * t)

    def d_alpha(self, t):
        return -0.5 * math.pi * math.sin(0.5 * math.pi * t)

    def d_sigma(self, t):
        return 0.5 * math.pi * math.cos(0.5 * math.pi * t)

    def time_of_ratio(self, rho):
        return 2.0 / math.pi * math.atan(rho)


RECTIFIED = Rectified()
TRIGONOMETRIC = Trigonometric()
INTERPOLANTS = {"rectified": RECTIFIED, "trigonometric": TRIGONOMETRIC}


def get_interpolant(name: str | Interpolant) -> Interpolant:
    """An :class:`Interpolant` by name (``rectified``, ``trigonometric``) or as given."""
    if isinstance(name, Interpolant):
        return name
    if name not in INTERPOLANTS:
        raise InvalidInputError(f"unknown interpolant '{name}'; choose one of {', '.join(INTERPOLANTS)}")
    return INTERPOLANTS[name]


class FlowView(ModelView):
    """A flow prior bound to one run: the state is ``x_t = α_t x0 + σ_t ε`` in the prior's model space.

    Attributes:
        interpolant: the prior's :class:`Interpolant`.
    """

    def __init__(self, prior, problem, shape=None, x_init=None) -> None:
        super().__init__(prior, problem, shape, x_init)
        self.interpolant = prior.interpolant

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``v(x, t)`` (one network call; VP priors evaluate at :meth:`snap` ``(t)``)."""
        self.nfe += 1
        return self.prior.velocity(x, t)

    def snap(self, t: float) -> float:
        """The time the network is actually evaluated at for ``t`` (``t`` itself for native flows)."""
        return self.prior.snap(t)

    def x0(self, v: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
        """Tweedie's ``E[x0 | x_t]`` from the velocity at the evaluated time."""
        return self.interpolant.x0(v, x, self.snap(t))

    def predict(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ε, x0)`` at time ``t`` from one velocity call."""
        v = self.velocity(x, t)
        ts = self.snap(t)
        return self.interpolant.eps(v, x, ts), self.interpolant.x0(v, x, ts)

    def times(self, steps: int) -> list[float]:
        """``steps + 1`` times from the top (noisiest) down to ``0``."""
        return self.prior.times(steps)

    def initial_state(self, generator: torch.Generator | None, t: float = 1.0) -> torch.Tensor:
        """The given ``x_init``, else the noise state at time ``t`` (``σ_1 ε`` for native flows; a VP prior's
        ``N(0, I)`` at the level of ``t``, rescaled, as its DDIM sampler starts)."""
        if self.x_init is not None:
            return self.x_init
        return self.noise_scale(t) * randn(self.shape, generator, dtype=self.dtype, device=self.device)

    def noise_scale(self, t: float) -> float:
        """The standard deviation of the pure-noise state at time ``t`` (see :meth:`initial_state`)."""
        return self.prior.noise_scale(t)

    @classmethod
    def of(cls, view: ModelView) -> "FlowView":
        """``view`` as a flow view: itself, or an unconditional flow view of the same shape on
        :func:`as_flow` of its prior (for inversion, which binds the prior without a measurement)."""
        if isinstance(view, FlowView):
            return view
        return as_flow(view.prior).bind(shape=view.image_shape, x_init=view.x_init)


class FlowPrior(Prior):
    """The flow family: subclasses implement :meth:`velocity` ``(x, t) -> v`` in model space.

    Attributes:
        interpolant: the :class:`Interpolant` the velocity belongs to.
        shift: time-grid shift of native flows (SD3/FLUX: ``t -> s t / (1 + (s - 1) t)``); 1 is uniform.
    """

    kind = "flow"
    family_label = "flow (velocity)"
    hint = "a flow prior, or any pixel-space VP --prior (reparameterised exactly)"
    view_class = FlowView
    schedule = None

    def __init__(self, interpolant: Interpolant | str = "rectified", channels: int | None = None,
                 data_range=(-1.0, 1.0), shift: float = 1.0) -> None:
        super().__init__(channels, data_range)
        self.interpolant = get_interpolant(interpolant)
        if not shift > 0:
            raise InvalidInputError(f"shift must be > 0, got {shift}")
        self.shift = float(shift)
        self.schedule = _FlowSchedule(self.interpolant, self.shift)

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def snap(self, t: float) -> float:
        return float(t)

    def noise_scale(self, t: float) -> float:
        return self.interpolant.sigma(t)

    def times(self, steps: int) -> list[float]:
        if not isinstance(steps, int) or steps < 1:
            raise InvalidInputError(f"steps must be a positive integer, got {steps!r}")
        u = np.linspace(1.0, 0.0, steps + 1)
        return [float(self.shift * v / (1 + (self.shift - 1) * v)) for v in u]


class _FlowSchedule:
    """What :meth:`Prior.fingerprint` and saved latents record of a native flow's time axis."""

    def __init__(self, interp: Interpolant, shift: float) -> None:
        self.interp, self.shift = interp, shift

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(f"flow-{self.interp.fingerprint()}-{self.shift!r}".encode()).hexdigest()[:16]


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class GaussianFlowPrior(FlowPrior):
    """``x0 ~ N(mean, cov)`` as a flow: exact velocity, Tweedie mean and flow map, any interpolant, float64.

    With ``C_t = α_t² Σ + σ_t² I``: ``v*(x, t) = α'_t m + (α_t α'_t Σ + σ_t σ'_t I) C_t⁻¹ (x - α_t m)`` and
    the flow map ``x_u = α_u m + (C_u C_t⁻¹)^½ (x_t - α_t m)`` (all matrices commute with Σ).
    """

    kind = "analytic-flow"
    clamp_output = False  # test oracles compare raw values

    def __init__(self, mean, cov, interpolant: Interpolant | str = "rectified", data_range=(0.0, 1.0),
                 shift: float = 1.0) -> None:
        super().__init__(interpolant, channels=None, data_range=data_range, shift=shift)
        self.gaussian = GaussianPrior(mean, cov, data_range=data_range)  # validation, eigenbasis, sampling
        self.event_shape = self.gaussian.event_shape

    def check_input(self, x: torch.Tensor) -> None:
        self.gaussian.check_input(x)

    def _apply(self, x: torch.Tensor, t: float, coef) -> torch.Tensor:
        g = self.gaussian
        a = self.interpolant.alpha(t)
        m = g.mean.flatten().to(g.evecs.dtype)
        u = ((_flat(x).to(g.evecs.dtype) - a * m) @ g.evecs) * coef(g.evals) @ g.evecs.T
        return u, m

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        self.check_input(x)
        it = self.interpolant
        a, s, da, ds = it.alpha(t), it.sigma(t), it.d_alpha(t), it.d_sigma(t)
        u, m = self._apply(x, t, lambda lam: (a * da * lam + s * ds) / (a * a * lam + s * s))
        return (da * m + u).to(x.dtype).reshape(x.shape)

    def x0_exact(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``E[x0 | x_t] = m + α_t Σ C_t⁻¹ (x - α_t m)``."""
        it = self.interpolant
        a, s = it.alpha(t), it.sigma(t)
        u, m = self._apply(x, t, lambda lam: a * lam / (a * a * lam + s * s))
        return (m + u).to(x.dtype).reshape(x.shape)

    def flow_map(self, x: torch.Tensor, t: float, u: float) -> torch.Tensor:
        """The exact solution of ``dx/dt = v*`` from time ``t`` to time ``u``."""
        it = self.interpolant
        a, s, au, su = it.alpha(t), it.sigma(t), it.alpha(u), it.sigma(u)
        w, m = self._apply(x, t, lambda lam: ((au * au * lam + su * su) / (a * a * lam + s * s)).sqrt())
        return (au * m + w).to(x.dtype).reshape(x.shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.gaussian.sample(n, generator)

    def posterior(self, matrix: torch.Tensor, y: torch.Tensor, sigma_y: float):
        """Exact ``(mean, cov)`` of ``x0 | y`` for ``y = matrix @ x0 + N(0, sigma_y² I)`` (flattened)."""
        return self.gaussian.posterior(matrix, y, sigma_y)


class VPAsFlow(Reparameterised, FlowPrior):
    """A VP prior seen as a flow on ``interpolant`` through the exact time and scale change (module docstring).

    Units, channels, padding multiple and fingerprint are the VP prior's. Velocity calls at a time between the
    VP levels use the nearest level (:meth:`snap`); the flow samplers step on the levels themselves.
    """

    def __init__(self, vp: VPPrior, interpolant: Interpolant | str = "rectified") -> None:
        super().__init__(interpolant, channels=vp.channels, data_range=vp.data_range)
        self.wrap(vp, "flow")
        self.schedule = vp.schedule
        a = vp.schedule.alphas_cumprod.double().sqrt().numpy()
        s = (1 - vp.schedule.alphas_cumprod.double()).sqrt().numpy()
        self._a, self._s = a, s
        self.table = np.array([self.interpolant.time_of_ratio(float(sk / ak)) for ak, sk in zip(a, s)])
        self.scales = np.array([self.interpolant.alpha(float(t)) / float(ak) for t, ak in zip(self.table, a)])

    def level(self, t: float) -> int:
        """The VP level whose flow time is nearest to ``t``."""
        return int(np.argmin(np.abs(self.table - float(t))))

    def snap(self, t: float) -> float:
        return float(self.table[self.level(t)])

    def noise_scale(self, t: float) -> float:
        return float(self.scales[self.level(t)])

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        k = self.level(t)
        c, a, s = float(self.scales[k]), float(self._a[k]), float(self._s[k])
        x_vp = x / c
        eps = self.vp.eps(x_vp, k)
        return self.interpolant.velocity((x_vp - s * eps) / a, eps, float(self.table[k]))

    def times(self, steps: int) -> list[float]:
        """The flow times of the VP prior's DDIM levels (``uniform`` respacing), then ``0``."""
        return [float(self.table[k]) for k in self.vp.schedule.timesteps(steps, "uniform")] + [0.0]


def as_flow(prior: Prior, interpolant: Interpolant | str = "rectified") -> Prior:
    """A pixel-space VP prior wrapped by :class:`VPAsFlow`; any other prior as it is (a sampler's family
    check then names the mismatch)."""
    if isinstance(prior, DiffusionPrior):
        return VPAsFlow(prior, interpolant)
    return prior


class FlowUNetPrior(FlowPrior):
    """A velocity network: a diffusers ``UNet2DModel`` with ``v(x, t) = unet(x, 1000 t)`` in ``[-1, 1]`` units
    (``restore train prior --objective flow``). H and W must be multiples of ``multiple``.

    Args:
        unet: the network (its input and output channels are the image's).
        interpolant: the interpolant it was trained on (``restore_prior.json`` ``"interpolant"``).
        name: a label for errors and latents files.
    """

    kind = "flow"

    def __init__(self, unet, interpolant: Interpolant | str = "rectified", name: str = "") -> None:
        super().__init__(interpolant, channels=unet.config.in_channels, data_range=(-1.0, 1.0))
        self.unet = unet.eval().requires_grad_(False)
        self.name = name
        self.multiple = 2 ** (len(unet.config.block_out_channels) - 1)

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        self.check_input(x)
        tt = torch.full((x.shape[0],), 1000.0 * float(t), device=x.device, dtype=torch.float32)
        return self.unet(x.float(), tt).sample.to(x.dtype)


def load_flow_folder(folder, device="cpu") -> FlowUNetPrior:
    """A flow prior folder (``unet/`` + ``restore_prior.json`` with ``"kind": "flow"``)."""
    import json
    from pathlib import Path

    from diffusers import UNet2DModel

    folder = Path(folder)
    meta = json.loads((folder / "restore_prior.json").read_text())
    unet = UNet2DModel.from_pretrained(str(folder / "unet"))
    return FlowUNetPrior(unet, meta.get("interpolant", "rectified"), name=str(folder)).to(device)

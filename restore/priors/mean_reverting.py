"""Mean-reverting (IR-SDE) priors (SAMPLERS.md §6): schedule, marginals, posterior step, conversions.

Forward SDE ``dx = θ_t (μ - x) dt + σ_t dw`` with ``σ_t² = 2 λ² θ_t`` (``λ`` = stationary std, in [0, 1]
image units). With ``α_t = e^{-θ̄_t}`` and ``σ̄_t = λ sqrt(1 - α_t²)`` the marginal is
``x_t = μ + α_t (x_0 - μ) + σ̄_t ε``: with ``u = x - μ`` this is a VP process, which MRS exploits.

Time is the training index ``t ∈ [0, T]`` (``t = 0`` clean, ``t = T`` gives ``α_T = ε = 0.005``);
fractional ``t`` interpolates ``θ̄`` linearly, so ``α`` and ``σ̄`` stay consistent (``σ̄² = λ²(1 - α²)``).

Conditioning: every prediction takes the degraded image ``μ`` as an explicit argument
(``prior.eps(x, t, mu)``) rather than as hidden state, so one prior object can serve many inputs.
Data range is ``[0, 1]`` (model space = public space).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path

import torch

from ..errors import IncompatibleError, InvalidInputError, ShapeError
from .base import MeanRevertingFamily

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


class MRSchedule:
    """Discrete IR-SDE schedule (float64), as in the IR-SDE code.

    ``θ_i = 1 - abar_cos[i+1]/abar_cos[0]`` for ``i = 0..T`` with
    ``abar_cos(x) = cos²((x/(T+2) + 0.008)/1.008 · π/2)``; ``dt = -log(ε)/Σ_{j≥1} θ_j`` and
    ``θ̄_i = dt · Σ_{1≤j≤i} θ_j`` so that ``θ̄_0 = 0`` and ``e^{-θ̄_T} = ε``.

    Args:
        T: number of training steps (100 in most IR-SDE configs).
        max_sigma: stationary std ``λ`` in 0..255 units (``λ = max_sigma / 255``).
        eps: ``e^{-θ̄_T}``, how close to ``μ`` the process ends (0.005).
    """

    def __init__(self, T: int = 100, max_sigma: float = 50.0, eps: float = 0.005) -> None:
        if not (isinstance(T, int) and T >= 2):
            raise InvalidInputError(f"T must be an integer >= 2, got {T}")
        if not max_sigma > 0 or not 0 < eps < 1:
            raise InvalidInputError(f"need max_sigma > 0 and 0 < eps < 1, got max_sigma={max_sigma}, eps={eps}")
        self.T, self.max_sigma, self.eps = T, float(max_sigma), float(eps)
        self.lam = self.max_sigma / 255.0
        x = torch.linspace(0, T + 2, T + 3, dtype=torch.float64)
        abar = torch.cos(((x / (T + 2)) + 0.008) / 1.008 * math.pi / 2) ** 2
        self.thetas = 1 - abar[1:-1] / abar[0]  # (T+1,)
        cum = torch.cumsum(self.thetas, 0) - self.thetas[0]
        self.dt = -math.log(eps) / float(cum[-1])
        self.thetas_bar = cum * self.dt  # (T+1,), θ̄_0 = 0
        self.sigmas = (2 * self.lam**2 * self.thetas).sqrt()  # diffusion coefficient σ_t of the SDE

    # -- values at (fractional) times -----------------------------------------------------------------
    def _interp(self, table: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        if bool(((t < 0) | (t > self.T)).any()):
            raise InvalidInputError(f"time must lie in [0, {self.T}], got {t.min().item()}..{t.max().item()}")
        lo = t.floor().long().clamp(max=self.T - 1)
        w = t - lo
        return table[lo] * (1 - w) + table[lo + 1] * w

    def theta_bar(self, t) -> torch.Tensor:
        return self._interp(self.thetas_bar, t)

    def theta(self, t) -> torch.Tensor:
        return self._interp(self.thetas, t)

    def sigma(self, t) -> torch.Tensor:
        """SDE diffusion coefficient ``σ_t = sqrt(2 λ² θ_t)``."""
        return (2 * self.lam**2 * self.theta(t)).sqrt()

    def alpha(self, t) -> torch.Tensor:
        """``α_t = e^{-θ̄_t}``."""
        return torch.exp(-self.theta_bar(t))

    def sigma_bar(self, t) -> torch.Tensor:
        """Marginal std ``σ̄_t = λ sqrt(1 - α_t²)`` in [0, 1] image units."""
        return self.lam * (-torch.expm1(-2 * self.theta_bar(t))).sqrt()

    def log_snr(self, t) -> torch.Tensor:
        """``λ_t = log(α_t / σ̄_t)`` (``+inf`` at ``t = 0``)."""
        return torch.log(self.alpha(t)) - torch.log(self.sigma_bar(t))

    # -- closed forms ---------------------------------------------------------------------------------
    def marginal(self, x0: torch.Tensor, mu: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """Draw ``x_t | x_0`` given standard normal ``noise``; ``t`` scalar or ``(B,)``."""
        a, s = bcast(self.alpha(t), x0), bcast(self.sigma_bar(t), x0)
        return mu + (x0 - mu) * a + s * noise

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, mu: torch.Tensor, t, s) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of ``x_s | x_t, x_0`` for ``s < t`` (the optimal IR-SDE reverse step when s = t - 1).

        With ``A = e^{-(θ̄_t - θ̄_s)}``, ``B = α_t``, ``C = α_s``: mean ``μ + A(1-C²)/(1-B²)(x_t - μ) +
        C(1-A²)/(1-B²)(x_0 - μ)``, variance ``λ²(1-A²)(1-C²)/(1-B²)``.
        """
        tb_t, tb_s = self.theta_bar(t), self.theta_bar(s)
        A, C = torch.exp(tb_s - tb_t), torch.exp(-tb_s)
        den = -torch.expm1(-2 * tb_t)
        c_x = A * (-torch.expm1(-2 * tb_s)) / den
        c_0 = C * (-torch.expm1(-2 * (tb_t - tb_s))) / den
        var = self.lam**2 * (-torch.expm1(-2 * (tb_t - tb_s))) * (-torch.expm1(-2 * tb_s)) / den
        mean = mu + bcast(c_x, x_t) * (x_t - mu) + bcast(c_0, x_t) * (x0 - mu)
        return mean, bcast(var.sqrt(), x_t)

    def reverse_sde_mean(self, x_t: torch.Tensor, eps: torch.Tensor, mu: torch.Tensor, t, steps: float = 1.0) -> torch.Tensor:
        """Euler step of the reverse-SDE mean over ``steps`` index units:
        ``x_t - [θ_t(μ - x_t) + σ_t² ε̂/σ̄_t] · steps · dt`` (the IR-SDE training prediction)."""
        th, g2 = bcast(self.theta(t), x_t), bcast(self.sigma(t) ** 2, x_t)
        sb = bcast(self.sigma_bar(t), x_t)
        return x_t - (th * (mu - x_t) + g2 * eps / sb) * (steps * self.dt)

    def config(self) -> dict:
        return {"T": self.T, "max_sigma": self.max_sigma, "eps": self.eps}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()[:16]


def bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar or ``(B,)`` float64 table value shaped ``(B, 1, 1, …)`` in ``like``'s dtype and device."""
    v = torch.as_tensor(v)
    if v.ndim == 0:
        return v.to(like.device, like.real.dtype)
    return v.to(like.device, like.real.dtype).reshape((-1,) + (1,) * (like.ndim - 1))


# -- conversions between noise, data and velocity predictions (the one place they live) ----------------
def _check(kind: str) -> None:
    if kind not in PREDICTION_TYPES:
        raise InvalidInputError(f"unknown prediction type '{kind}'; choose one of {', '.join(PREDICTION_TYPES)}")


def mr_to_eps(out, x, mu, alpha, sigma, lam: float, kind: str) -> torch.Tensor:
    """Noise ``ε̂`` from a model output of ``kind`` (``u = x - μ = α(x_0 - μ) + σ ε``).

    ``sample``: ``ε̂ = (x - μ - α(x̂_0 - μ))/σ``; ``v_prediction``: ``ε̂ = (α v + (σ/λ)(x - μ))/λ``.
    """
    _check(kind)
    if kind == "epsilon":
        return out
    if kind == "sample":
        return (x - mu - alpha * (out - mu)) / sigma
    return (alpha * out + (sigma / lam) * (x - mu)) / lam


def mr_to_x0(out, x, mu, alpha, sigma, lam: float, kind: str) -> torch.Tensor:
    """Data ``x̂_0``: ``epsilon``: ``μ + (x - μ - σ ε̂)/α``; ``v_prediction``: ``α x - (σ/λ) v + (1-α) μ``."""
    _check(kind)
    if kind == "epsilon":
        return mu + (x - mu - sigma * out) / alpha
    if kind == "sample":
        return out
    return alpha * x - (sigma / lam) * out + (1 - alpha) * mu


def mr_to_v(out, x, mu, alpha, sigma, lam: float, kind: str) -> torch.Tensor:
    """Velocity ``v = α λ ε - (σ/λ)(x_0 - μ)`` (the MRS velocity target)."""
    _check(kind)
    if kind == "v_prediction":
        return out
    eps = mr_to_eps(out, x, mu, alpha, sigma, lam, kind)
    x0 = mr_to_x0(out, x, mu, alpha, sigma, lam, kind)
    return alpha * lam * eps - (sigma / lam) * (x0 - mu)


class MeanRevertingPrior(MeanRevertingFamily):
    """A mean-reverting (IR-SDE) prior ``p(x_0 | μ)``: kind ``"mean-reverting"``, data range ``[0, 1]``.

    Subclasses implement :meth:`model_output` ``(x, t, mu)``; ``x`` and ``mu`` are ``(B, C, H, W)`` in
    [0, 1] units and ``t`` is a float64 scalar or ``(B,)`` tensor of training times in ``[0, T]``. The predictions
    :meth:`eps`, :meth:`x0`, :meth:`v`, :meth:`score` take ``mu`` explicitly; ``t`` may also be a scalar
    (shared by the batch).
    """

    prediction_type = "epsilon"
    multiple = 1

    def __init__(self, schedule: MRSchedule, channels: int | None) -> None:
        super().__init__(channels, data_range=(0.0, 1.0))
        self.schedule = schedule

    def model_output(self, x: torch.Tensor, t: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def check_problem(self, problem) -> None:
        """Refuse a problem this prior was not made for; nothing by default (analytic priors take any)."""

    def _times(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] != x.shape[0]):
            raise ShapeError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t

    def _check_mu(self, x: torch.Tensor, mu: torch.Tensor) -> None:
        if mu.shape != x.shape:
            raise ShapeError(f"mu (the degraded image) must have the shape of x {tuple(x.shape)}, "
                             f"got {tuple(mu.shape)}; resize the input to the output size first")

    def _call(self, x, t, mu, convert):
        self._check_mu(x, mu)
        tt = self._times(x, t)
        a, s = bcast(self.schedule.alpha(tt), x), bcast(self.schedule.sigma_bar(tt), x)
        return convert(self.model_output(x, tt, mu), x, mu, a, s, self.schedule.lam, self.prediction_type)

    def eps(self, x: torch.Tensor, t, mu: torch.Tensor) -> torch.Tensor:
        """Noise prediction ``ε̂(x_t, μ, t)``."""
        return self._call(x, t, mu, mr_to_eps)

    def x0(self, x: torch.Tensor, t, mu: torch.Tensor) -> torch.Tensor:
        """Data prediction ``x̂_0(x_t, μ, t)`` in [0, 1] units (not clamped)."""
        return self._call(x, t, mu, mr_to_x0)

    def v(self, x: torch.Tensor, t, mu: torch.Tensor) -> torch.Tensor:
        return self._call(x, t, mu, mr_to_v)

    def score(self, x: torch.Tensor, t, mu: torch.Tensor) -> torch.Tensor:
        """``∇ log p_t(x | μ) ≈ -ε̂ / σ̄_t``."""
        return -self.eps(x, t, mu) / bcast(self.schedule.sigma_bar(self._times(x, t)), x)


class MeanRevertingGaussianPrior(MeanRevertingPrior):
    """Analytic fixture (SAMPLERS.md §1.6 item 3): ``x_0 ~ N(m0, s0² I)`` independent of ``μ``, float64.

    Exact noise: ``ε* = σ̄ (u - α(m0 - μ)) / (α² s0² + σ̄²)`` with ``u = x - μ``; any sample shape.
    """

    clamp_output = False

    def __init__(self, m0=0.5, s0: float = 0.2, T: int = 100, max_sigma: float = 50.0, eps: float = 0.005) -> None:
        super().__init__(MRSchedule(T, max_sigma, eps), channels=None)
        self.register_buffer("m0", torch.as_tensor(m0, dtype=torch.float64))
        if not s0 > 0:
            raise InvalidInputError(f"s0 must be > 0, got {s0}")
        self.s0 = float(s0)

    def _c(self, x, t):
        a, s = bcast(self.schedule.alpha(t), x), bcast(self.schedule.sigma_bar(t), x)
        return a, s, a * a * self.s0**2 + s * s

    def model_output(self, x, t, mu):
        a, s, c = self._c(x, t)
        return s * (x - mu - a * (self.m0.to(x) - mu)) / c

    def ode_map(self, x_t: torch.Tensor, mu: torch.Tensor, t: float, s: float) -> torch.Tensor:
        """Exact probability-flow map from time ``t`` to ``s``:
        ``x_s = μ + α_s(m0-μ) + sqrt(c_s/c_t)(x_t - μ - α_t(m0-μ))``, ``c = α² s0² + σ̄²``."""
        m = self.m0.to(x_t)
        a_t, _, c_t = self._c(x_t, torch.tensor(float(t)))
        a_s, _, c_s = self._c(x_t, torch.tensor(float(s)))
        return mu + a_s * (m - mu) + (c_s / c_t).sqrt() * (x_t - mu - a_t * (m - mu))


#: What each task of ``restore train mean-reverting`` trains a network to undo.
TRAINED_FOR = {"denoise": "denoising (no blur or resizing)", "deblur": "deblurring",
               "super-resolve": "super-resolution"}


class ConditionalUNetPrior(MeanRevertingPrior):
    """A trained conditional network: a diffusers ``UNet2DModel`` on ``concat(x_t, μ)`` (``2C`` input
    channels, ``C`` output), timestep = training time ``t``. Sizes must be multiples of ``2**(levels-1)``
    (the engine pads automatically).

    ``residual=True`` (``"residual_to_mu"`` in ``restore_prior.json``) means the network predicts
    ``x̂_0 - μ`` for ``prediction_type="sample"``: a small network learns the residual far faster, and a
    data prediction keeps its error bounded at ``t ≈ T``, where an ``ε̂`` error is amplified by ``1/α_T``.
    """

    def __init__(self, unet, schedule: MRSchedule, prediction_type: str = "epsilon", name: str = "",
                 metadata: dict | None = None, residual: bool = False) -> None:
        out_c, in_c = unet.config.out_channels, unet.config.in_channels
        if in_c != 2 * out_c:
            raise InvalidInputError(f"a mean-reverting network needs in_channels = 2 x out_channels, "
                                    f"got {in_c} and {out_c}")
        _check(prediction_type)
        super().__init__(schedule, channels=out_c)
        self.unet = unet.eval().requires_grad_(False)
        if residual and prediction_type != "sample":
            raise InvalidInputError("residual_to_mu needs prediction_type 'sample'")
        self.prediction_type = prediction_type
        self.residual = residual
        self.name = name
        self.metadata = metadata or {}
        self.multiple = 2 ** (len(unet.config.block_out_channels) - 1)

    def check_problem(self, problem) -> None:
        """A trained network restores the one degradation it was trained on (``restore_prior.json``'s
        ``train_config``): another operator is a one-line error, another noise level a one-line warning."""
        config = self.metadata.get("train_config") or {}
        task = self.metadata.get("task") or config.get("task")
        if task not in TRAINED_FOR:
            return  # a folder from elsewhere that does not say
        from ..operators.base import Identity

        name = self.name or "this mean-reverting prior"
        identity = isinstance(problem.operator, Identity)
        (h, w), (yh, yw) = problem.x_shape[-2:], problem.y.shape[-2:]
        scale = config.get("scale", 4)
        ratio = round(h / yh)  # a `valid` boundary trims y a little, so compare the rounded size ratio
        fits = {"denoise": identity, "deblur": not identity and ratio == 1,
                "super-resolve": not identity and ratio == scale}[task]
        if not fits:
            what = f"{scale}x super-resolution" if task == "super-resolve" else TRAINED_FOR[task]
            raise IncompatibleError(
                f"prior '{name}' is a mean-reverting network trained for {what} only and cannot restore this "
                f"problem ({type(problem.operator).__name__}, {yh}x{yw} -> {h}x{w}); leave out --prior for the "
                f"task's default prior, or train one: restore train mean-reverting --task {'|'.join(TRAINED_FOR)}")
        trained, given = config.get("noise"), getattr(problem.noise, "sigma", None)
        if trained and given and abs(given - trained) > 0.2 * trained + 1e-3:  # 0: the Problem did not say
            warnings.warn(f"prior '{name}' was trained for noise {trained:.4f} ({trained * 255:.0f}/255) and this "
                          f"input's noise is {given:.4f}: a mean-reverting network restores the degradation it was "
                          f"trained on, so expect a worse result (restore train mean-reverting --task {task} "
                          f"--noise {given:.4f} makes one for it)", stacklevel=2)

    def model_output(self, x, t, mu):
        self.check_input(x)
        dtype = next(self.unet.parameters()).dtype
        out = self.unet(torch.cat([x, mu], 1).to(dtype), t.to(x.device, torch.float32)).sample.to(x.dtype)
        return mu + out if self.residual else out


def save_mean_reverting_folder(unet, schedule: MRSchedule, folder: str | os.PathLike, info: dict | None = None,
                               prediction_type: str = "epsilon", residual: bool = False) -> None:
    """Write ``config.json`` + ``diffusion_pytorch_model.safetensors`` + ``restore_prior.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(str(folder), safe_serialization=True)
    meta = {"kind": "mean-reverting", "channels": unet.config.out_channels, "data_range": [0.0, 1.0],
            "prediction_type": prediction_type, "residual_to_mu": residual, **schedule.config(), **(info or {})}
    tmp = folder / "restore_prior.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, folder / "restore_prior.json")


def load_mean_reverting_folder(folder: str | os.PathLike, device: str | torch.device = "cpu") -> ConditionalUNetPrior:
    """Load a folder written by :func:`save_mean_reverting_folder` (``restore.prior(path)`` calls this)."""
    folder = Path(folder)
    meta_path = folder / "restore_prior.json"
    if not meta_path.exists() or not (folder / "config.json").exists():
        raise InvalidInputError(f"'{folder}' is not a mean-reverting prior folder (needs restore_prior.json "
                                f"and config.json); train one with 'restore train mean-reverting'")
    meta = json.loads(meta_path.read_text())
    from diffusers import UNet2DModel

    try:
        unet = UNet2DModel.from_pretrained(str(folder), low_cpu_mem_usage=False)
    except Exception as exc:  # noqa: BLE001 - diffusers raises many types for bad folders
        raise InvalidInputError(f"could not load a UNet2DModel from '{folder}': {exc}".splitlines()[0]) from None
    schedule = MRSchedule(int(meta.get("T", 100)), float(meta.get("max_sigma", 50.0)), float(meta.get("eps", 0.005)))
    prior = ConditionalUNetPrior(unet, schedule, meta.get("prediction_type", "epsilon"),
                                 name=meta.get("name", folder.name), metadata=meta,
                                 residual=bool(meta.get("residual_to_mu", False)))
    return prior.to(device)

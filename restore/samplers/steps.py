"""Update steps shared by several samplers (SAMPLERS.md §1.1), written once on the bound model view.

* :func:`ddim_step` — DDIM from level k to j (η = 0: the deterministic map ``a_j x0 + s_j eps``, used by
  DDIM, BDIA, DDIM inversion and CODE);
* :func:`ddpm_step` — the respaced ancestral step (DDPM, DPS, STSL);
* :func:`dds_renoise` — DDS's move from the data-consistent x̃ to the next level (DDS, DDS-3D);
* :func:`measurement_loss` / :func:`dps_gradient` — DPS guidance (DPS, STSL on pixel priors);
* :func:`latent_guidance_loss` — PSLD's decoder + gluing term (PSLD, STSL on latent priors);
* :func:`dihedral` — the eight flips/quarter turns of an image (pnp-hqs's cycling, tweedie's x8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import IncompatibleError
from ..priors.schedules import VPSchedule
from ..priors.view import ModelView

#: data-term norm of DPS-style guidance: ``code`` ‖r‖, ``paper`` ζ/‖r‖·∇‖r‖², ``squared`` ζ∇‖r‖²
Norm = Literal["code", "paper", "squared"]
#: ancestral-step variance: posterior (``fixed-small``) or beta (``fixed-large``)
Variance = Literal["fixed-small", "fixed-large"]
#: the adjoint in PSLD's gluing term: the true Aᵀ or the identity (a code quirk)
Adjoint = Literal["true", "identity"]


def ddim_step(schedule: VPSchedule, x0: torch.Tensor, eps: torch.Tensor, k: int, j: int, eta: float = 0.0,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """DDIM from level k to level j: ``a_j x0 + sqrt(s_j² - σ²) eps + σ z``, ``σ = η s_j/s_k sqrt(1 - abar_k/abar_j)``.

    With ``η = 0`` (or ``j`` above ``k``, an inversion step) this is the deterministic map ``a_j x0 + s_j eps``.
    """
    a_j, s_j = float(schedule.a(j)), float(schedule.s(j))
    if eta == 0 or j >= k:
        return a_j * x0 + s_j * eps
    abar_k, abar_j = float(schedule.abar(k)), float(schedule.abar(j))
    sigma = eta * ((1 - abar_j) / (1 - abar_k)) ** 0.5 * (1 - abar_k / abar_j) ** 0.5
    out = a_j * x0 + max(1 - abar_j - sigma**2, 0.0) ** 0.5 * eps
    if sigma > 0 and noise is not None:
        out = out + sigma * noise
    return out


def ddpm_coefficients(schedule: VPSchedule, k: int, j: int, variance: str = "fixed-small") -> tuple[float, float, float]:
    """``(c1, c2, std)`` of the respaced ancestral step ``x_j = c1 x0 + c2 x_k + std z``."""
    abar_k, abar_j = float(schedule.abar(k)), float(schedule.abar(j))
    beta = 1 - abar_k / abar_j
    c1 = abar_j**0.5 * beta / (1 - abar_k)
    c2 = (1 - beta) ** 0.5 * (1 - abar_j) / (1 - abar_k)
    if j < 0:
        return c1, c2, 0.0
    var = beta * (1 - abar_j) / (1 - abar_k) if variance == "fixed-small" else beta
    return c1, c2, var**0.5


def ddpm_step(view: ModelView, x0: torch.Tensor, x: torch.Tensor, k: int, j: int, variance: str,
              generator: torch.Generator | None) -> torch.Tensor:
    """Ancestral step ``c1 x0 + c2 x + std z`` (no noise on the last step)."""
    c1, c2, std = ddpm_coefficients(view.schedule, k, j, variance)
    out = c1 * x0 + c2 * x
    if std > 0:
        out = out + std * view.noise_like(out, generator)
    return out


def dds_renoise(schedule: VPSchedule, x_tilde: torch.Tensor, eps: torch.Tensor, k: int, j: int, eta: float,
                renoise: str, draw) -> torch.Tensor:
    """DDS's move from the data-consistent x̃ at level k to level j (SAMPLERS.md §5.1).

    ``renoise="code"``: ``a_j x̃ + s_j (η′ z + sqrt(1 - η′²) eps)`` with the network's eps; ``"paper"``: a DDIM
    step with η. Landing on index 0 (or clean) returns x̃ and draws no noise. ``draw()`` returns ``z``.
    """
    if j <= 0:
        return x_tilde
    if renoise == "code":
        z = draw()
        return float(schedule.a(j)) * x_tilde + float(schedule.s(j)) * (eta * z + (1 - eta**2) ** 0.5 * eps)
    return ddim_step(schedule, x_tilde, eps, k, j, eta, draw())


def per_step(weight: float, reference_steps: int | None, steps: int) -> float:
    """A guidance weight published for ``reference_steps`` steps, spread over ``steps`` (``None``: as given)."""
    return weight if reference_steps is None else weight * reference_steps / steps


def measurement_loss(view: ModelView, x0: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample DPS data term of ``x0̂`` (model space), ``(B,)``, residual in model units as the published
    weights assume: ``‖r‖`` (``code``), ``‖r‖²/sg‖r‖`` (``paper``) or ``‖r‖²`` (``squared``)."""
    problem = view.problem
    misfit = problem.noise.data_misfit(problem.y, problem.operator(view.from_model(x0)))
    misfit = misfit * view.prior.model_scale**2
    loss = misfit.sqrt() if norm == "code" else misfit
    if norm == "paper":
        loss = loss / misfit.detach().sqrt().clamp_min(1e-12)
    return loss


def dps_gradient(view: ModelView, x: torch.Tensor, x0: torch.Tensor, norm: str) -> torch.Tensor:
    """Gradient of :func:`measurement_loss` w.r.t. ``x`` (which ``x0`` depends on); one VJP."""
    (grad,) = torch.autograd.grad(measurement_loss(view, x0, norm).sum(), x)
    view.count_vjp()
    return grad


def gluing_image(problem, x0: torch.Tensor, adjoint: str = "true") -> torch.Tensor:
    """``Aᵀy + (I - AᵀA) x0`` in public units (``adjoint="identity"``: ``y + x0 - A x0``, a PSLD code quirk)."""
    op, y = problem.operator, problem.y
    if adjoint == "identity":
        if tuple(y.shape) != tuple(x0.shape):
            raise IncompatibleError(f"adjoint='identity' needs a measurement of the image's shape {tuple(x0.shape)}, "
                                    f"got {tuple(y.shape)}; use adjoint='true'")
        return y + x0 - op(x0)
    return x0 + op.adjoint(y - op(x0))


@dataclass(frozen=True)
class GluingOptions:
    """PSLD's gluing-term options, shared by the configs of ``psld`` and ``stsl`` (on latent priors).

    Attributes:
        gamma: γ, weight of the gluing term (official 0.1; the inpainting scripts also use 0.01).
        adjoint: ``true`` (default) or ``identity`` (the code's blur "transpose" in the gluing term).
        noisy_pred: add measurement noise to the predicted measurement (code quirk; off by default).
    """

    gamma: float = 0.1
    adjoint: Adjoint = "true"
    noisy_pred: bool = False


def latent_guidance_loss(view: ModelView, z0: torch.Tensor, omega: float, gluing: GluingOptions,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample PSLD loss ``ω ‖y - A(Dec(ẑ0))‖ + γ ‖Enc(glue) - ẑ0‖``, ``(B,)``, differentiable in z0.

    Args:
        view: a latent prior bound to the problem (``to_model`` encodes, ``from_model`` decodes).
        z0: ``(B, C_latent, h, w)`` Tweedie estimate of the clean latent.
        omega: weight of the measurement term (unsquared norm, as in the code).
        gluing: γ and PSLD's code-quirk flags (a ``psld`` or ``stsl`` config).
        generator: draws the measurement noise of ``noisy_pred``.
    """
    problem = view.problem
    x0 = view.from_model(z0)
    pred = problem.operator(x0)
    if gluing.noisy_pred:
        pred = problem.noise.sample(pred, generator)
    misfit = problem.noise.data_misfit(problem.y, pred) * view.prior.model_scale**2
    loss = omega * misfit.clamp_min(1e-24).sqrt()
    if gluing.gamma > 0:
        glued = view.to_model(gluing_image(problem, x0, gluing.adjoint))
        loss = loss + gluing.gamma * torch.linalg.vector_norm((glued - z0).reshape(z0.shape[0], -1), dim=1)
    return loss


def check_latent_guidance(name: str, gamma: float, problem) -> None:
    """PSLD's gluing term uses Aᵀ: refuse a nonlinear operator unless γ = 0."""
    if problem is not None and gamma > 0 and not problem.operator.linear:
        raise IncompatibleError(f"{name}'s gluing term needs a linear operator (it uses Aᵀ); for "
                                f"{type(problem.operator).__name__} pass --set gamma=0")


def dihedral(x: torch.Tensor, i: int, inverse: bool = False) -> torch.Tensor:
    """The ``i mod 8``-th rotation/flip of the last two axes of ``x``, or with ``inverse`` its inverse."""
    quarter_turns, flip = i % 4, (i // 4) % 2 == 1
    if inverse:
        return torch.rot90(x.flip(-1) if flip else x, -quarter_turns, (-2, -1))
    x = torch.rot90(x, quarter_turns, (-2, -1))
    return x.flip(-1) if flip else x

"""DDS-3D: DDS on a volume with a 2D prior, slices coupled by TV along z through ADMM (SAMPLERS.md §5.1(c),
§5.2; the DiffusionMBIR scheme with DDS's Tweedie + Krylov data step).

Per diffusion step: the 2D prior denoises the slices ``chunk`` at a time (Tweedie ``x0̂``); one ADMM-TV
iteration on the whole volume, started at ``x0̂``, with ``M`` CG steps on ``AᵀA + ρD_zᵀD_z``; re-noise as
DDS does. ``z_aux`` and ``u`` persist across steps. ``slicewise=True`` drops the z coupling (plain DDS per
slice: ``M`` CG steps on ``AᵀA`` from ``x0̂``) for comparison.

Memory: the prior's working memory is bounded by ``chunk`` slices; the sampler keeps O(volume) state
(``x``, ``eps``, ``x̃``, ``z``, ``u``, ``Aᵀy`` and the CG vectors), none of it per-slice network activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidInputError, ShapeError
from ..operators import operator_norm_sq
from ..operators.tv import ADMMState, admm_tv_step
from ..priors.schedules import Spacing
from ..samplers.base import Sampler
from ..samplers.dds import Renoise
from ..samplers.steps import dds_renoise
from .slices import stack_slices, volume_slices


@dataclass(frozen=True)
class DDS3DConfig:
    """Attributes:
        steps: diffusion steps N (DDS: 50).
        cg_iters: CG steps M per ADMM iteration (5).
        admm_iters: ADMM iterations per diffusion step (1).
        rho: ADMM penalty ρ, relative to ``||A||²`` (0.01): the x-update solves
            ``(AᵀA + ρ||A||² D_zᵀD_z) x = …``, i.e. the data term is divided by ``||A||²`` as in the CT TV
            baseline, so the weights keep their meaning across view counts and image sizes. (DiffusionMBIR's
            ρ = 10, λ = 0.04 are in its own Radon's units; in ours, with ``||A||² ≈ 250`` at 8 views of
            32², they pulled a 24×32² random-ellipse volume from 29.1 dB slice-wise to 16.5 dB.)
        lam: TV weight along z, relative to ``||A||²`` like ρ (0.001, λ/ρ = 0.1). Chosen on random-ellipse
            volumes: ``python -m bench.volumes --phantom ellipses --size 32 --depth 24 --seed 5 --steps 30``
            gives 8 views 29.12 → 32.00 dB and 90° 25.01 → 26.28 dB over slice-wise DDS.
        eta: DDS re-noising noise fraction η′ (0.85; DDIM η with ``renoise="paper"``).
        renoise: ``code`` or ``paper``.
        chunk: slices per prior call (bounds the network's memory).
        slicewise: no z coupling (λ = 0, ρ = 0): independent DDS per slice.
        spacing: timestep respacing rule.
    """

    steps: int = 50
    cg_iters: int = 5
    admm_iters: int = 1
    rho: float = 0.01
    lam: float = 0.001
    eta: float = 0.85
    renoise: Renoise = "code"
    chunk: int = 8
    slicewise: bool = False
    spacing: Spacing = "uniform"


class DDS3D(Sampler):
    Config = DDS3DConfig
    requires = ("operator", "linear")
    volumes = True

    def validate(self) -> None:
        c = self.config
        if c.chunk < 1 or c.cg_iters < 1 or c.admm_iters < 1:
            raise InvalidInputError(f"dds-3d needs chunk, cg_iters, admm_iters >= 1; got {c.chunk}, {c.cg_iters}, "
                                    f"{c.admm_iters}")
        if c.rho < 0 or c.lam < 0 or not 0 <= c.eta <= 1:
            raise InvalidInputError("dds-3d needs rho >= 0, lam >= 0 and 0 <= eta <= 1")

    def check_view(self, view) -> None:
        if len(view.x_shape) != 5:
            raise ShapeError(f"dds-3d reconstructs volumes (B, C, D, H, W), got x shape {tuple(view.image_shape)}; "
                             f"use dds for 2D images")

    def predict_volume(self, view, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eps, x0)`` of the 2D prior on every slice, ``chunk`` slices per network call: ``(B, C, D, H, W)``."""
        eps = stack_slices([view.eps(part, k) for part in volume_slices(x, self.config.chunk)], x)
        a, s = view.coefficients(k)
        return eps, (x - s * eps) / a

    def sample(self, view, generator, callback):
        cfg = self.config
        op, y = view.problem.operator, view.problem.y
        pairs = view.schedule.pairs(cfg.steps, cfg.spacing)
        x = view.initial_state(generator)
        with torch.no_grad():
            aty = op.adjoint(y)
            scale = 0.0 if cfg.slicewise else operator_norm_sq(op, aty)
            rho, lam = cfg.rho * scale, cfg.lam * scale
            state = ADMMState.zeros_like(aty)
            for i, (k, j) in enumerate(pairs):
                eps, x0 = self.predict_volume(view, x, k)
                x0 = view.from_model(x0)
                for _ in range(cfg.admm_iters):
                    x0 = admm_tv_step(op, y, x0, state, rho, lam, cfg.cg_iters, aty=aty)
                x_tilde = view.to_model(x0)
                del x0
                x = dds_renoise(view.schedule, x_tilde, eps, k, j, cfg.eta, cfg.renoise,
                                lambda: view.noise_like(x, generator))
                callback(i + 1, len(pairs), view.nfe)
        return x, {"admm": {"z": state.z, "u": state.u}}

"""CODE — Confident Ordinary Differential Editing (van Delft, Martorella, Alahi, 2024), SAMPLERS.md §7.

Blind restoration without a forward model: the guidance image ``problem.y`` (operator Identity) is
inverted with the probability-flow ODE (DDIM, eta = 0) to an intermediate level, corrected there by
annealed Langevin dynamics on the prior's score, and decoded with DDIM. Confidence-based clipping (CBC)
keeps every state inside the interval a forward-diffused image in the model range can reach,
``[a lo - η s, a hi + η s]`` (``[-a - η s, a + η s]`` for ``[-1, 1]``), which lets the model ignore
implausible pixels. Imagen-style dynamic thresholding (DynThresh) of x0̂ follows the notebook.

Level indices ``i = 0`` (least noisy) .. ``N_s - 1`` (noisiest) refer to the respaced levels. Decoding
returns the denoised x0̂ at level 0 by default; ``official_decode=True`` reproduces the official loop,
whose last DDIM step maps level 0 *up* to level 1 (a slightly re-noised output, SAMPLERS.md §11.15).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError
from ..priors.view import ModelView
from .base import Sampler
from .momentum import Momentum, Velocity, check_momentum, ddim_momentum_step
from .steps import ddim_step


@dataclass(frozen=True)
class CODEConfig:
    """Defaults from the official notebook (``CODE.ipynb``).

    Attributes:
        steps: DDIM levels N_s (notebook 200).
        strength: in (0, 1], the start level as a fraction of the levels, ``K = max(1, round(strength · N_s))``
            (``restore enhance --strength``); 0.2 gives the notebook's K = 40 of 200.
        start_level: K if set (overrides ``strength``): the number of levels decoded, starting at level
            index K-1; 20-40 for fine-grained corruptions (noise, blur), up to N_s for global ones (fog,
            contrast).
        langevin_steps: S Langevin steps per correction level (notebook 250); 0 disables the correction.
        step_size: ε_base at the deepest level; level i uses ``ε_base · 100^((N_s-1-i)/(N_s-1))``
            (larger steps at low noise), in model units².
        n_levels: number of correction levels, ``round(linspace(min_level, K-1, n_levels))``.
        min_level: lowest correction level index.
        annealing: A annealing stages, the step size shrinking by ``annealing_factor`` per stage.
        annealing_factor: 0.8 in the notebook.
        cbc: confidence-based clipping on; ``cbc_eta``: η (notebook 1.7, coverage ≥ 2Φ(η) - 1 ≈ 91 %).
        cbc_stop: clip only at level indices above this one.
        dynamic_threshold: DynThresh on x0̂ (both DDIM and Langevin); ``dt_ratio``: quantile (0.98);
            ``dt_max``: largest threshold (1.3).
        jitter: std (model units) of the noise added to the guidance image; the notebook adds 0.01 twice.
        official_decode: return the official loop's re-noised last state instead of the denoised x0̂.
        momentum: ``hb`` or ``ghvb`` momentum (:mod:`restore.samplers.momentum`) on the decoding DDIM steps,
            restarted after each Langevin correction (the state jumps there).
        beta: momentum β in (0, 1]; 1 is plain DDIM (hb) or PLMS-2 (ghvb); official default 0.8.
    """

    steps: int = 200
    strength: float = 0.2
    start_level: int | None = None
    langevin_steps: int = 250
    step_size: float = 1.15e-5
    n_levels: int = 2
    min_level: int = 20
    annealing: int = 4
    annealing_factor: float = 0.8
    cbc: bool = True
    cbc_eta: float = 1.7
    cbc_stop: int = 0
    dynamic_threshold: bool = True
    dt_ratio: float = 0.98
    dt_max: float = 1.3
    jitter: float = 0.01 * 2**0.5
    official_decode: bool = False
    momentum: Momentum = "none"
    beta: float = 0.8


def dynamic_threshold(x0: torch.Tensor, ratio: float, max_value: float, lo: float, hi: float) -> torch.Tensor:
    """Imagen DynThresh per sample on the model range ``[lo, hi]``: ``q = clamp(quantile(|x̃|, ratio), 1, max)``,
    ``x̃ ← clamp(x̃, -q, q) / q`` with ``x̃`` the range mapped to ``[-1, 1]``. ``(B, ...)`` in, same out."""
    centre, half = (hi + lo) / 2, (hi - lo) / 2
    u = ((x0 - centre) / half).reshape(x0.shape[0], -1)
    q = torch.quantile(u.abs().float(), ratio, dim=1).to(u.dtype).clamp(1.0, max_value).unsqueeze(1)
    u = torch.maximum(torch.minimum(u, q), -q) / q
    return u.reshape(x0.shape) * half + centre


def confidence_interval(a: float, s: float, eta: float, lo: float, hi: float,
                        reference: torch.Tensor | None = None) -> tuple:
    """CBC interval of a state at a level with coefficients ``(a, s)`` (model units).

    Without a reference: ``[a lo - η s, a hi + η s]``; with a reference image ``x_r``: ``a x_r ± η s``.
    """
    if reference is not None:
        return a * reference - eta * s, a * reference + eta * s
    return a * lo - eta * s, a * hi + eta * s


def confidence_clip(x: torch.Tensor, a: float, s: float, eta: float, lo: float, hi: float,
                    reference: torch.Tensor | None = None) -> torch.Tensor:
    """Clip ``x`` to :func:`confidence_interval`; pixels inside are returned unchanged."""
    low, high = confidence_interval(a, s, eta, lo, hi, reference)
    if reference is None:
        return x.clamp(low, high)
    return torch.maximum(torch.minimum(x, high), low)


class CODE(Sampler):
    """CODE blind restoration of ``problem.y`` (Identity operator); ``Result.x`` is the restored image.

    Level index ``i`` maps to the training level ``levels[i]`` of :meth:`levels` (ascending).
    """

    Config = CODEConfig
    requires = ("operator",)

    def validate(self) -> None:
        c = self.config
        if not 0 < c.strength <= 1:
            raise InvalidInputError(f"strength must be in (0, 1], got {c.strength}")
        if c.start_level is not None and not 1 <= c.start_level <= c.steps:
            raise InvalidInputError(f"start_level must be in [1, steps={c.steps}], got {c.start_level}")
        if c.langevin_steps < 0 or c.step_size < 0 or c.n_levels < 1 or c.annealing < 1:
            raise InvalidInputError("need langevin_steps >= 0, step_size >= 0, n_levels >= 1 and annealing >= 1")
        if not 0 < c.annealing_factor <= 1 or c.cbc_eta <= 0 or not 0 < c.dt_ratio <= 1 or c.dt_max < 1:
            raise InvalidInputError("need 0 < annealing_factor <= 1, cbc_eta > 0, 0 < dt_ratio <= 1, dt_max >= 1")
        check_momentum(c.momentum, c.beta)

    # -- pieces ------------------------------------------------------------------------------------------
    def levels(self, view: ModelView) -> list[int]:
        """Training levels of the level indices ``0 .. N_s - 1`` (ascending)."""
        return view.schedule.timesteps(self.config.steps)[::-1]

    def clip(self, view: ModelView, levels: list[int], x: torch.Tensor, i: int) -> torch.Tensor:
        c = self.config
        if not c.cbc or i <= c.cbc_stop:
            return x
        a, s = view.coefficients(levels[i])
        lo, hi = view.data_range
        return confidence_clip(x, a, s, c.cbc_eta, lo, hi)

    def denoise(self, view: ModelView, levels: list[int], x: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0̂, epŝ)`` at level index ``i``, with DynThresh on x0̂ and eps made consistent with it."""
        c = self.config
        eps, x0 = view.predict(x, levels[i])
        if c.dynamic_threshold:
            a, s = view.coefficients(levels[i])
            x0 = dynamic_threshold(x0, c.dt_ratio, c.dt_max, *view.data_range)
            eps = (x - a * x0) / s
        return x0, eps

    def langevin(self, view: ModelView, levels: list[int], x: torch.Tensor, i: int, step: float,
                 generator) -> torch.Tensor:
        """Annealed ULA at level ``i``: ``x ← x + a_j ∇log p + sqrt(2 a_j) z`` with ``a_j = step · factor^j``
        over ``annealing`` stages of ``S / annealing`` steps, then one noise-free step (SAMPLERS.md §7(b))."""
        c = self.config
        _, s = view.coefficients(levels[i])
        per_stage = c.langevin_steps // c.annealing
        a_j = step
        for j in range(c.annealing):
            a_j = step * c.annealing_factor**j
            for _ in range(per_stage):
                x = self.clip(view, levels, x, i)
                score = -self.denoise(view, levels, x, i)[1] / s
                x = x + a_j * score + (2 * a_j) ** 0.5 * view.noise_like(x, generator)
        x = self.clip(view, levels, x, i)
        return x - a_j * self.denoise(view, levels, x, i)[1] / s

    def correction_levels(self, K: int) -> list[int]:
        c = self.config
        if K > c.min_level + c.n_levels and c.n_levels > 1:
            return sorted({int(v) for v in np.linspace(c.min_level, K - 1, c.n_levels).astype(int)})
        return [K - 1]

    def start_index(self) -> int:
        """K: the number of levels decoded."""
        c = self.config
        return c.start_level if c.start_level is not None else max(1, round(c.strength * c.steps))

    def step_size_at(self, i: int) -> float:
        N = self.config.steps
        return self.config.step_size * 100.0 ** ((N - 1 - i) / max(N - 1, 1))

    # -- the algorithm -------------------------------------------------------------------------------------
    def sample(self, view, generator, callback):
        c = self.config
        levels = self.levels(view)
        K = self.start_index()
        corrections = self.correction_levels(K) if c.langevin_steps > 0 else []
        total = (K - 1) + len(corrections) + K
        done = 0
        x = view.to_model(view.y_image().to(view.device, view.dtype))
        if c.jitter > 0:
            x = x + c.jitter * view.noise_like(x, generator)
        with torch.no_grad():
            for i in range(K - 1):  # encode: DDIM inversion from level 0 to level K-1
                x = self.clip(view, levels, x, i)
                x0, eps = self.denoise(view, levels, x, i)
                x = ddim_step(view.schedule, x0, eps, levels[i], levels[i + 1])
                done += 1
                callback(done, total, view.nfe)
            latent = x
            velocity = Velocity(c.momentum, c.beta)
            for i in range(K - 1, -1, -1):  # decode with Langevin corrections
                if i in corrections:
                    x = self.langevin(view, levels, x, i, self.step_size_at(i), generator)
                    velocity = Velocity(c.momentum, c.beta)
                    done += 1
                    callback(done, total, view.nfe)
                x = self.clip(view, levels, x, i)
                x0, eps = self.denoise(view, levels, x, i)
                if i > 0 and c.momentum != "none":
                    x = ddim_momentum_step(view.schedule, x, velocity(eps), levels[i], levels[i - 1])
                elif i > 0:
                    x = ddim_step(view.schedule, x0, eps, levels[i], levels[i - 1])
                elif c.official_decode and c.steps > 1:
                    x = ddim_step(view.schedule, x0, eps, levels[i], levels[1])
                else:
                    x = x0
                done += 1
                callback(done, total, view.nfe)
        return x, {"latent": latent, "correction_levels": corrections}

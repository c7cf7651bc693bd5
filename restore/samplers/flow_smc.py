"""Flow SMC: inference-time scaling of a flow prior by particles scored with the measurement likelihood
(Kim et al., "Inference-Time Scaling for Flow Models via Stochastic Generation and Rollover Budget Forcing",
2025: the stochastic-generation and particle-filtering part).

The deterministic flow is turned into the reverse SDE with the same marginals,
``dx = [v - ½ g_t² ∇log p_t(x)] dt + g_t dW̄``, so particles can branch. ``g_t = diffusion · t²`` by default
(our reading of the paper; the official code implements it as its ``"square"`` coefficient, next to
``"sigma"``, ``g_t = diffusion · σ_t``, the default of its configuration classes: ``coefficient="sigma"`` here). ``N`` particles follow its Euler–Maruyama steps; each
carries the potential ``G_t(x) = N(y; A x0̂(x_t), (σ_y² + r_t²) I)`` with ``r_t² = σ_t² / (α_t² + σ_t²)`` (the
likelihood at the Tweedie estimate, widened by the noise level as in ΠGDM), weights are multiplied by
``G_{t′}(x_{t′}) / G_t(x_t)`` and the last step replaces the potential by the exact likelihood
``N(y; A x_0, σ_y² I)``; particles are resampled systematically when ``ESS < threshold · N``. The NFE budget
is ``N`` per step: ``budget`` NFE buy ``budget // N`` steps. ``--samples N`` sets the particle count; the
weighted particles are the draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import IncompatibleError, InvalidInputError
from ..operators.noise import GaussianNoise
from .flow_steps import FlowSampler, euler_step
from .particles import ParticleWeights, check_particle_options, gather_particles
from .smc import choose, log_likelihood


@dataclass(frozen=True)
class FlowSMCConfig:
    """Attributes:
        steps: SDE steps (NFE = particles · steps); ignored when ``budget`` is set.
        particles: particles ``N`` per problem; ``--samples N`` sets it.
        budget: total NFE to spend; ``steps = budget // particles``. ``None``: use ``steps``.
        diffusion: scale of the SDE's diffusion ``g_t`` (0: deterministic particles, which only the initial
            draws tell apart).
        coefficient: shape of ``g_t``: ``"square"`` (``diffusion · t²``) or ``"sigma"`` (``diffusion · σ_t``).
        ess_threshold: resample when ``ESS < ess_threshold · N``.
        particle_batch: particles per network call; ``None``: all. The result does not depend on it.
    """

    steps: int = 25
    particles: int = 8
    budget: int | None = None
    diffusion: float = 1.0
    coefficient: str = "square"
    ess_threshold: float = 0.5
    particle_batch: int | None = None


class FlowSMC(FlowSampler):
    """Particle filter on the stochastic flow, weighted by the measurement likelihood."""

    Config = FlowSMCConfig
    requires = ("operator",)
    nonnegative = ("diffusion",)
    weighted = True  # one run returns weighted particles (the run plan uses them as the draws)
    chain_batching = False

    def validate(self) -> None:
        cfg = self.config
        check_particle_options("flow-smc", cfg)
        if cfg.coefficient not in ("square", "sigma"):
            raise InvalidInputError(f"coefficient must be 'square' or 'sigma', got {cfg.coefficient!r}")
        if cfg.budget is not None and cfg.budget < cfg.particles:
            raise InvalidInputError(f"budget={cfg.budget} NFE cannot pay for one step of {cfg.particles} particles; "
                                    f"raise the budget or lower particles")

    def check_view(self, view) -> None:
        noise = view.problem.noise
        if not isinstance(noise, GaussianNoise) or noise.sigma <= 0:
            raise IncompatibleError(f"flow-smc weights particles by a Gaussian likelihood and needs a noise level > 0, "
                                    f"got {noise!r}; pass --noise SIGMA (e.g. 0.01)")

    @property
    def steps(self) -> int:
        cfg = self.config
        return cfg.steps if cfg.budget is None else cfg.budget // cfg.particles

    def _velocity(self, view, x: torch.Tensor, t: float, n: int) -> torch.Tensor:
        """Velocities of a particle-major state ``(n·B, ...)``, ``particle_batch`` particles per call, one NFE
        per particle."""
        b = x.shape[0] // n
        chunk = self.config.particle_batch or n
        out = []
        for start in range(0, n, chunk):
            g = min(chunk, n - start)
            out.append(view.velocity(x[start * b:(start + g) * b], t))
            view.nfe += g - 1
        return torch.cat(out)

    def _potential_variance(self, view, t: float) -> float:
        it, ts = view.interpolant, view.snap(t)
        a, s = it.alpha(ts), it.sigma(ts)
        return view.problem.noise.sigma ** 2 + s * s / (a * a + s * s) / view.prior.model_scale ** 2

    def sample(self, view, generator, callback):
        cfg = self.config
        n, b = cfg.particles, view.shape[0]
        it = view.interpolant
        times = view.times(self.steps)
        weights = ParticleWeights(n, b, cfg.ess_threshold)
        shape = (n * b,) + tuple(view.shape[1:])
        x = view.noise_scale(times[0]) * view.noise_like(torch.empty(shape, dtype=view.dtype, device=view.device),
                                                         generator)
        v = self._velocity(view, x, times[0], n)
        with torch.no_grad():
            log_g = log_likelihood(view, view.x0(v, x, times[0]), n, self._potential_variance(view, times[0]))
        weights.add(log_g)
        for i, (t, t_next) in enumerate(zip(times, times[1:])):
            if t_next > 0:
                g = cfg.diffusion * (t * t if cfg.coefficient == "square" else it.sigma(t))
                drift = v - 0.5 * g * g * it.score(v, x, view.snap(t))
                x = euler_step(x, drift, t, t_next)
                if g > 0:
                    x = x + g * (t - t_next) ** 0.5 * view.noise_like(x, generator)
                v = self._velocity(view, x, t_next, n)
                with torch.no_grad():
                    log_next = log_likelihood(view, view.x0(v, x, t_next), n,
                                              self._potential_variance(view, t_next))
            else:  # the last step lands on the clean state; the potential gives way to the likelihood
                x = euler_step(x, v, t, t_next)
                with torch.no_grad():
                    log_next = log_likelihood(view, x, n, view.problem.noise.sigma ** 2)
            weights.add(log_next - log_g)
            log_g = log_next
            ancestors = weights.maybe_resample(i + 1, generator)
            if ancestors is not None:
                x, v, log_g = (gather_particles(q, ancestors) for q in (x, v, log_g))
            callback(i + 1, len(times) - 1, view.nfe)
        w = weights.normalised()
        pick = choose(w, generator)
        x_out = gather_particles(x, pick.reshape(1, b))
        particles = view.result(x).reshape((n, b) + tuple(view.image_shape[1:]))
        return x_out, {"particles": particles, "weights": w, "diagnostics": weights.diagnostics(), "levels": times}

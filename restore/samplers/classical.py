"""Classical reconstructions (zero-filled, SENSE, FBP, TV, …) behind the sampler interface.

They use no prior, so that ``--method fbp`` and a diffusion sampler run through the same task, CLI and
benchmark code without loading a diffusion model: :meth:`Sampler.run` takes ``prior=None`` for them. The
TV baseline (:class:`TV`) solves ``argmin_x ½||A x - y||²/||A||² + λ TV(x)`` with the ADMM solver of
:mod:`restore.operators.tv`; it works on any linear operator, volumes included (TV in the last two axes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..operators.tv import tv_admm
from ..priors.base import Prior
from .base import Sampler


class ClassicalSampler(Sampler):
    """Subclasses implement :meth:`reconstruct` (public units) and may validate in :meth:`operator_for`."""

    requires = ("operator", "linear")
    families = (Prior,)
    uses_prior = False
    deterministic = True

    def operator_for(self, problem):
        """The operator ``reconstruct`` receives; override to unwrap views or refuse other operators."""
        return problem.operator

    def reconstruct(self, op, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, view, generator, callback):
        problem = view.problem
        with torch.no_grad():
            x = self.reconstruct(self.operator_for(problem), problem.y)
        callback(1, 1, 0)
        # Complex reconstructions (MRI) are reported as magnitude images.
        return view.to_model(x.abs() if x.is_complex() else x), {}


@dataclass(frozen=True)
class TVConfig:
    """Attributes:
        steps: ADMM iterations; lam: TV weight; rho: ADMM penalty (image units, data term normalised by
        ``||A||²``); cg_iters: CG steps per x-update.
    """

    steps: int = 50
    lam: float = 0.001
    rho: float = 0.01
    cg_iters: int = 5


class TV(ClassicalSampler):
    Config = TVConfig

    def reconstruct(self, op, y):
        c = self.config
        return tv_admm(op, y, c.lam, c.rho, c.steps, c.cg_iters)

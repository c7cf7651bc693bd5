"""Classical reconstructions (zero-filled, SENSE, FBP, TV, …) behind the sampler interface.

They ignore the prior, so that ``--method fbp`` and a diffusion sampler run through the same task, CLI and
benchmark code; the prior only maps the result into its model space for :meth:`Sampler.run`.
"""
from __future__ import annotations

import torch

from .base import Sampler


class ClassicalSampler(Sampler):
    """Subclasses implement :meth:`reconstruct` (public units) and may validate in :meth:`operator_for`."""

    requires = ("operator", "linear")
    prior_kinds = ("vp", "analytic", "latent", "mean-reverting")

    def operator_for(self, problem):
        """The operator ``reconstruct`` receives; override to unwrap views or refuse other operators."""
        return problem.operator

    def reconstruct(self, op, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample(self, prior, problem, shape, generator, callback, x_init):
        op = self.operator_for(problem)
        with torch.no_grad():
            x = self.reconstruct(op, problem.y)
        callback(1, 1, 0)
        # Complex reconstructions (MRI) are reported as magnitude images.
        return prior.to_model(x.abs() if x.is_complex() else x), {}

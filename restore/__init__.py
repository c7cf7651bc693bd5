"""restore: image restoration and inverse problems with diffusion priors.

Public API (stable names)::

    restore.components(kind); restore.operator(name, **p); restore.prior(name, **p)
    restore.sampler(name, **config); restore.Problem(y, operator, noise); restore.solve(y, op, ...)
    restore.read(path); restore.write(path, image)
"""
from __future__ import annotations

from .api import components, default_prior_name, operator, prior, sampler, solve
from .errors import RestoreError
from .io import Image, read, write
from .operators import GaussianNoise, LinearOperator, Operator, PoissonNoise
from .priors import DiffusionPrior, Prior, VPSchedule
from .problem import Problem
from .samplers.base import Result, Sampler

__version__ = "0.1.0"

__all__ = [
    "components", "operator", "prior", "sampler", "solve", "default_prior_name", "read", "write", "Image",
    "Problem", "GaussianNoise", "PoissonNoise", "Operator", "LinearOperator", "DiffusionPrior", "Prior", "VPSchedule",
    "Sampler", "Result", "RestoreError", "__version__",
]


def __getattr__(name: str):
    # restore.invert arrives with the BDIA sampler; imported lazily to keep `import restore` light.
    if name == "invert":
        from .inversion import invert

        return invert
    raise AttributeError(f"module 'restore' has no attribute {name!r}")

"""restore: image restoration and inverse problems with diffusion priors.

Public API (stable names)::

    restore.components(kind); restore.operator(name, **p); restore.prior(name, **p)
    restore.sampler(name, **config); restore.Problem(y, operator, noise); restore.solve(y, op, ...)
    restore.read(path); restore.write(path, image)

The names are resolved on first use (PEP 562), so ``import restore`` and ``restore --help`` do not import
torch.
"""
from __future__ import annotations

import importlib

from .errors import RestoreError

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "components": ".api", "default_prior_name": ".api", "operator": ".api", "prior": ".api", "sampler": ".api",
    "solve": ".api", "Image": ".io", "read": ".io", "write": ".io", "GaussianNoise": ".operators",
    "LinearOperator": ".operators", "Operator": ".operators", "PoissonNoise": ".operators",
    "DiffusionPrior": ".priors", "Prior": ".priors", "VPSchedule": ".priors", "Problem": ".problem",
    "Result": ".samplers.base", "Sampler": ".samplers.base", "invert": ".inversion",
}

__all__ = sorted(set(_LAZY) - {"invert"}) + ["RestoreError", "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'restore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

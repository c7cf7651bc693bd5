"""Contract tests and analytic fixtures for plugin authors.

Subclass a contract in your plugin's tests (pytest collects your ``Test*`` subclasses)::

    from restore.testing import OperatorContract

    class TestMyOperator(OperatorContract):
        operator = "my-operator"

or call the checks directly (:mod:`restore.testing.checks` for operators, :mod:`restore.testing.model_checks`
for priors, samplers and I/O). Each check raises :class:`ContractError` naming the measured error, e.g.
``adjoint mismatch: relative error 0.5 > 1e-05``. Fixtures (``restore_generator``, ``gaussian_fixture``,
``restore_plugins``, ``restore_distribution``) come from the pytest plugin registered by ``restore``.
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "OperatorContract": "contracts", "PriorContract": "contracts", "SamplerContract": "contracts",
    "IOContract": "contracts", "ContractError": "checks", "check_adjoint": "checks",
    "check_pinv_on_range": "checks", "GaussianFixture": "fixtures", "make_gaussian_fixture": "fixtures",
    "tiny_unet_prior": "fixtures",
    "make_distribution": "distributions", "tweedie_affine": "oracles", "affine_moments": "oracles",
    "check_moments": "oracles",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so that the pytest plugin (imported by every pytest run) does not import torch or pytest-only code.
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""pytest plugin of restore.testing (entry point ``pytest11: restore``): fixtures for plugin authors.

Fixtures:
    restore_generator: a CPU ``torch.Generator`` seeded with 0, fresh for every test.
    gaussian_fixture: :class:`restore.testing.GaussianFixture`, a float64 Gaussian prior with a linear
        measurement and its exact posterior (SAMPLERS.md §1.6).
    restore_plugins: the reloaded plugin host; reloaded again after the test, so a test may install or
        fake plugins freely.
    restore_distribution: ``make(name, entry_points, modules)`` puts a throwaway distribution on
        ``sys.path`` for one test (see :func:`restore.testing.distributions.make_distribution`).

Heavy imports happen inside the fixtures, so this plugin costs nothing for test suites that do not use it.
"""
from __future__ import annotations

import pytest


@pytest.fixture
def restore_generator():
    """A CPU ``torch.Generator`` seeded with 0 (fresh per test, so tests do not depend on their order)."""
    import torch

    return torch.Generator().manual_seed(0)


@pytest.fixture
def gaussian_fixture():
    """A d=4 Gaussian prior in the [0, 1] range with a 2x4 linear measurement and its exact posterior."""
    import torch

    from .fixtures import make_gaussian_fixture

    return make_gaussian_fixture(torch.Generator().manual_seed(1234))


@pytest.fixture
def restore_plugins():
    """The plugin host, reloaded before and after the test."""
    from restore import plugins

    yield plugins.reload()
    plugins.reload()


@pytest.fixture
def restore_distribution(tmp_path, monkeypatch):
    """Factory ``make(name, entry_points, modules) -> dist-info path`` for throwaway plugin distributions.

    The folder is on ``sys.path`` for the test only; call ``restore.plugins.reload()`` to load what you
    made. The plugin host is reloaded after the test, and the test's modules are unloaded.
    """
    import sys

    from restore import plugins

    from .distributions import make_distribution

    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    made: list[str] = []

    def make(name: str, entry_points: dict[str, str], modules: dict[str, str] | None = None):
        made.extend(modules or {})
        return make_distribution(root, name, entry_points, modules)

    yield make
    for module in made:
        sys.modules.pop(module, None)
    monkeypatch.undo()
    plugins.reload()

"""Throwaway installed distributions for plugin-host tests: a ``*.dist-info`` folder plus modules.

``importlib.metadata`` finds a distribution through any ``*.dist-info`` folder on ``sys.path``, so
writing one into a temporary folder and prepending that folder to ``sys.path`` "installs" a plugin for
the duration of a test, without pip.
"""
from __future__ import annotations

import re
from pathlib import Path


def make_distribution(root: str | Path, name: str, entry_points: dict[str, str],
                      modules: dict[str, str] | None = None, version: str = "0.1") -> Path:
    """Write a minimal distribution into ``root`` (which must then be put on ``sys.path``).

    Args:
        root: folder that will be on ``sys.path``.
        name: distribution name, e.g. ``"acme-haze"``.
        entry_points: ``{entry point name: "module"}`` in the ``restore.plugins`` group.
        modules: ``{module name: source}`` written as ``root/<module>.py``.
        version: distribution version.

    Returns:
        The ``*.dist-info`` folder.
    """
    root = Path(root)
    folder = root / f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[restore.plugins]"] + [f"{ep} = {target}" for ep, target in entry_points.items()]
    (folder / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source)
    return folder

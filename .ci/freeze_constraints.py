"""Write constraints.txt: the installed versions of restore's dependency closure (all extras but bench).

Run it in the venv whose suite just passed (``.venv/bin/python .ci/freeze_constraints.py``); the file is
the known-good set that ``.ci/run`` installs with ``pip install -c constraints.txt``.
"""
from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

EXTRAS = ("medical", "dask", "test", "docs")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(pyproject: Path, extras: tuple[str, ...]) -> dict[str, str]:
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    roots = list(project["dependencies"])
    for extra in extras:
        roots += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    todo = [(Requirement(r).name, tuple(Requirement(r).extras)) for r in roots]
    root = project["name"]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        key = canonical(dist.metadata["Name"])
        if key != canonical(root):
            pins[key] = dist.version.split("+")[0]  # torch 2.13.0+cpu -> 2.13.0 (matches the local build)
        for text in dist.requires or []:
            req = Requirement(text)
            env = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(e) for e in env):
                continue
            if canonical(req.name) not in pins:
                todo.append((req.name, tuple(req.extras)))
    return pins


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    pins = closure(repo / "pyproject.toml", EXTRAS)
    lines = ["# Versions the suite last passed with (python .ci/freeze_constraints.py in that venv).",
             "# Install the known-good set: pip install -c constraints.txt -e '.[test,docs]'",
             f"# Python {sys.version.split()[0]}"]
    lines += [f"{name}=={version}" for name, version in sorted(pins.items())]
    repo.joinpath("constraints.txt").write_text("\n".join(lines) + "\n")
    print(f"constraints.txt: {len(pins)} pins")


if __name__ == "__main__":
    main()

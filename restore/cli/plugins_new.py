"""``restore plugins new NAME``: scaffold a plugin package that installs and passes its tests as generated."""
from __future__ import annotations

import keyword
import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidInputError, OutputExistsError

KINDS = ("operator", "prior", "sampler")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_CONTRACTS = {"operator": "OperatorContract", "prior": "PriorContract", "sampler": "SamplerContract"}


def validate_name(name: str) -> str:
    """Component names: lower-case letters and digits, words joined by single hyphens (``acme-haze``)."""
    if not NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"invalid plugin name '{name}': use lower-case letters and digits, words joined by '-', "
            f"starting with a letter (e.g. 'acme-haze')")
    if keyword.iskeyword(name.replace("-", "_")):
        raise InvalidInputError(f"invalid plugin name '{name}': it is a Python keyword; e.g. '{name}-op'")
    return name


def template_values(name: str, kind: str) -> dict[str, str]:
    package = "restore_" + name.replace("-", "_")
    class_name = "".join(part.capitalize() for part in name.split("-"))
    return {"name": name, "kind": kind, "dist": f"restore-{name}", "package": package, "module": kind + "s",
            "class_name": class_name, "contract": _CONTRACTS[kind]}


def _files(kind: str, values: dict[str, str]) -> dict[str, str]:
    """``{relative path: template name}`` of the package to write."""
    package, module = values["package"], values["module"]
    return {
        "pyproject.toml": "common/pyproject.toml.tmpl",
        "README.md": "common/README.md.tmpl",
        f"{package}/__init__.py": "common/init.py.tmpl",
        f"{package}/plugin.py": f"{kind}/plugin.py.tmpl",
        f"{package}/{module}.py": f"{kind}/module.py.tmpl",
        f"tests/test_{module}.py": f"{kind}/test.py.tmpl",
    }


def scaffold(name: str, directory: str | os.PathLike | None = None, kind: str = "operator") -> Path:
    """Write a plugin package for a new component ``name`` of ``kind`` and return its folder.

    The package registers ``name`` through the ``restore.plugins`` entry point, holds a skeleton class
    with docstrings and a test file wired to :mod:`restore.testing`, so that ``pip install -e DIR`` and
    ``pytest DIR`` pass as generated.

    Args:
        name: component name (``restore list operators`` shows it); see :func:`validate_name`.
        directory: target folder (default ``./restore-NAME``); must not exist or be empty.
        kind: ``operator``, ``prior`` or ``sampler``.
    """
    validate_name(name)
    if kind not in KINDS:
        raise InvalidInputError(f"unknown --kind '{kind}'; choose one of {', '.join(KINDS)}")
    from ..plugins import registry

    if any(c.name == name for c in registry().all(kind)):
        owner = registry().get(kind, name).plugin
        raise InvalidInputError(f"a {kind} named '{name}' already exists (plugin '{owner}'); choose another name")
    values = template_values(name, kind)
    target = Path(directory) if directory is not None else Path.cwd() / values["dist"]
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OutputExistsError(f"'{target}' exists and is not an empty folder; choose another -o DIR")
    templates = resources.files("restore.cli").joinpath("templates")
    rendered = {path: templates.joinpath(tmpl).read_text(encoding="utf-8").format(**values)
                for path, tmpl in _files(kind, values).items()}
    for path, text in rendered.items():
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return target


def new(
    name: str = typer.Argument(..., metavar="NAME",
                               help="component name, lower-case words joined by '-' (e.g. acme-haze)"),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="DIR", help="target folder (default: ./restore-NAME)"),
    kind: str = typer.Option("operator", "--kind", metavar="KIND", help="operator | prior | sampler"),
) -> None:
    """Scaffold a plugin package: pyproject entry point, hook, skeleton class, contract tests, README."""
    target = scaffold(name, output, kind)
    print(f"created {target}\nnext: pip install -e {target} && pytest {target} && restore list {kind}s",
          file=sys.stderr)


def register(app: typer.Typer) -> None:
    from .inspect import plugins_app

    if not any(getattr(c, "name", None) == "new" for c in plugins_app.registered_commands):
        plugins_app.command("new")(new)

"""``restore plugins`` and ``restore list KIND``."""
from __future__ import annotations

from typing import Any

import typer

from ..errors import InvalidInputError

plugins_app = typer.Typer(help="Show installed plugins (and scaffold new ones).", invoke_without_command=True,
                          no_args_is_help=False)
KIND_ALIASES = {"operators": "operator", "priors": "prior", "samplers": "sampler", "tasks": "task",
                "readers": "reader", "writers": "writer"}


@plugins_app.callback()
def plugins(ctx: typer.Context) -> None:
    """List plugins with their distribution and status (ok / failed with the error)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from ..plugins import host

    table = Table("plugin", "distribution", "status", "error", box=None)
    for info in host().plugins:
        table.add_row(info.name, info.distribution, info.status, info.error)
    Console().print(table)


def list_components(kind: str = typer.Argument(..., help="operators | priors | samplers | tasks | readers | writers")) -> None:
    """List registered components of one kind with their one-line summaries."""
    from rich.console import Console
    from rich.table import Table

    from ..plugins import registry

    key = KIND_ALIASES.get(kind, kind)
    if key not in KIND_ALIASES.values():
        raise InvalidInputError(f"unknown kind '{kind}'; choose one of {', '.join(KIND_ALIASES)}")
    columns = ["name", "plugin", "summary"]
    extra = {"operator": ["linear", "domain"], "prior": ["kind", "channels", "params", "s/call"],
             "sampler": ["priors", "requires", "cost"],
             "reader": ["extensions"], "writer": ["extensions"], "task": []}[key]
    table = Table(*(columns[:2] + extra + columns[2:]), box=None)
    for comp in registry().all(key):
        meta = dict(comp.metadata)
        if key == "prior":
            meta.update(_prior_cost(comp))
        if key == "sampler":  # what a sampler accepts is declared once, on its class
            meta.update(sampler_declaration(comp))
        values = [meta.get(e, "") for e in extra]
        values = [", ".join(v) if isinstance(v, (tuple, list)) else ("any" if v is None else str(v)) for v in values]
        summary = comp.summary
        if key == "task" and not summary:
            summary = comp.build().summary
        table.add_row(comp.name, comp.plugin, *values, summary)
    Console(width=160).print(table)


def _prior_cost(comp) -> dict:
    """Parameter count and estimated seconds per network call, when the prior's plugin can estimate them
    (metadata ``estimate``: a callable returning ``{"parameters", "seconds_per_call"}``, computed lazily)."""
    estimate = comp.metadata.get("estimate")
    if not callable(estimate):
        return {}
    try:
        est = estimate()
    except Exception:  # noqa: BLE001 - a listing shows what it can
        return {}
    return {"params": f"{est['parameters'] / 1e6:.1f}M", "s/call": f"{est['seconds_per_call']:.3g}"}


def sampler_declaration(comp) -> dict[str, Any]:
    """``priors`` (the prior families it accepts) and ``requires`` as the sampler class declares them
    (``unconditional`` for samplers that refuse a measurement): read from the class's source when it can be (no
    torch import, :mod:`restore.declarations`), else from the imported class."""
    declared = _static_declaration(comp)
    if declared is not None:
        return declared
    from ..priors.base import Prior

    try:
        cls = comp.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin shows as such, the listing goes on
        return {"priors": f"(failed to load: {type(exc).__name__})", "requires": ""}
    families = getattr(cls, "families", ())
    if not getattr(cls, "uses_prior", True):
        names = "none"
    else:
        names = "any" if Prior in families else ", ".join(f.family_label for f in families)
    return {"priors": names, "requires": ("unconditional",) if getattr(cls, "unconditional", False)
            else getattr(cls, "requires", ())}


def _static_declaration(comp) -> dict[str, Any] | None:
    from ..declarations import ClassRef, class_attributes

    if not isinstance(comp.factory, str):
        return None
    attrs = class_attributes(comp.factory, ("families", "requires", "uses_prior", "unconditional"))
    if attrs is None or not {"families", "requires", "uses_prior"} <= set(attrs):
        return None
    families, requires = attrs["families"], attrs["requires"]
    if not (isinstance(families, tuple) and all(isinstance(f, ClassRef) for f in families)):
        return None
    if not attrs["uses_prior"]:
        names = "none"
    elif ClassRef("restore.priors.base", "Prior") in families:
        names = "any"
    else:
        labels = [class_attributes(f"{f.module}:{f.name}", ("family_label",)) for f in families]
        if any(not isinstance(label, dict) or not isinstance(label.get("family_label"), str) for label in labels):
            return None
        names = ", ".join(label["family_label"] for label in labels)
    return {"priors": names, "requires": ("unconditional",) if attrs.get("unconditional") else requires}


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
    app.command("list")(list_components)

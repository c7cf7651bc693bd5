"""Named components registered by plugins: lookup, lazy factories and helpful errors."""
from __future__ import annotations

import dataclasses
import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import DuplicateComponentError, InvalidInputError, UnknownComponentError

KINDS = ("operator", "prior", "sampler", "task", "reader", "writer")


# -- one typed registration record per component kind ------------------------------------------------------
@dataclass(frozen=True)
class OperatorRecord:
    """``linear``: whether the operator is linear; ``domain``: e.g. ``image``, ``mri``, ``ct``."""

    summary: str = ""
    linear: bool | None = None
    domain: str = ""


@dataclass(frozen=True)
class PriorRecord:
    """``kind``: the prior family's name; ``channels``: ``C`` or ``None`` for any; ``default_for``: domains
    this prior is the default of (highest ``rank`` wins); ``per_channel_factory``: the factory takes
    ``channels=``; ``path``: the folder an on-disk prior loads from; ``estimate``: an optional callable
    returning ``{"parameters", "seconds_per_call"}``, called lazily by ``restore list priors``."""

    summary: str = ""
    kind: str = "vp"
    channels: int | None = None
    default_for: tuple[str, ...] = ()
    rank: int = 0
    per_channel_factory: bool = False
    path: str = ""
    estimate: Callable[[], dict] | None = None


@dataclass(frozen=True)
class SamplerRecord:
    """``cost``: network calls per step, for ``restore list samplers``. What a sampler accepts (prior
    families, ``requires``) is declared once, on its class; ``requires`` and ``prior_kinds`` are accepted
    here so that plugins written for the first registration API keep loading, and are not used."""

    summary: str = ""
    cost: str = ""
    requires: tuple[str, ...] = ()
    prior_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskRecord:
    summary: str = ""


@dataclass(frozen=True)
class IORecord:
    """``extensions``: file name endings (``.png``) this reader/writer handles."""

    summary: str = ""
    extensions: tuple[str, ...] = ()


RECORDS: dict[str, type] = {"operator": OperatorRecord, "prior": PriorRecord, "sampler": SamplerRecord,
                            "task": TaskRecord, "reader": IORecord, "writer": IORecord}


def check_record(kind: str, name: str, plugin: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The registration metadata of a ``kind`` checked against its record: unknown keys and values of the
    wrong type are one-line errors naming the plugin."""
    from .samplers.options import allowed, coerce, field_types

    record = RECORDS[kind]
    types = field_types(record)
    unknown = sorted(set(metadata) - set(types))
    if unknown:
        raise InvalidInputError(f"plugin '{plugin}' registered {kind} '{name}' with unknown field(s) "
                                f"{', '.join(unknown)}; a {kind} takes {', '.join(types)}")
    out = {}
    for key, value in metadata.items():
        ok, value = coerce(types[key], tuple(value) if isinstance(value, list) else value)
        if not ok:
            raise InvalidInputError(f"plugin '{plugin}' registered {kind} '{name}' with {key}={metadata[key]!r}; "
                                    f"{key} takes {allowed(types[key])}")
        out[key] = value
    return dataclasses.asdict(record(**out))


def resolve_factory(factory: str | Callable) -> Callable:
    """Turn a lazy ``"package.module:Name"`` string into the object it names."""
    if not isinstance(factory, str):
        return factory
    module_name, _, attr = factory.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Component:
    """One registered component: its name, where it came from, and how to build it."""

    kind: str
    name: str
    factory: str | Callable
    plugin: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return self.metadata.get("summary", "")

    def load(self) -> Callable:
        return resolve_factory(self.factory)

    def build(self, **params: Any) -> Any:
        """The component: the factory called with ``params``, or the object itself when the registration
        names an instance (``"pkg.module:TASK"``). A dataclass built with an empty ``name`` or ``summary``
        takes them from its registration, so that they are written once."""
        target = self.load()
        obj = target(**params) if callable(target) else target
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return obj
        have = {f.name for f in dataclasses.fields(obj)}
        fill = {k: v for k, v in (("name", self.name), ("summary", self.summary)) if k in have and not getattr(obj, k)}
        return dataclasses.replace(obj, **fill) if fill else obj


class Registry:
    """Components by kind and name. Filled by the plugin manager; read by everything else."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` callable handed to a plugin's hook, remembering which plugin calls it."""

        def register(name: str, factory: str | Callable, **metadata: Any) -> None:
            self.add(Component(kind, name, factory, plugin, check_record(kind, name, plugin, metadata)))

        return register

    def add(self, component: Component) -> None:
        table = self._items[component.kind]
        if not component.name or component.name != component.name.strip():
            raise InvalidInputError(f"{component.plugin} registered an empty or padded {component.kind} name")
        existing = table.get(component.name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{component.kind} '{component.name}' is registered by both '{existing.plugin}' and "
                f"'{component.plugin}'; rename one of them or uninstall one plugin"
            )
        table[component.name] = component

    def remove_plugin(self, plugin: str) -> None:
        """Drop everything a plugin registered (used when its hook fails half-way)."""
        for table in self._items.values():
            for name in [n for n, c in table.items() if c.plugin == plugin]:
                del table[name]

    def get(self, kind: str, name: str) -> Component:
        table = self._items[kind]
        if name in table:
            return table[name]
        known = sorted(table)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownComponentError(
            f"unknown {kind} '{name}'.{hint} Known {kind}s: {', '.join(known) or '(none)'}"
        )

    def all(self, kind: str) -> list[Component]:
        if kind not in self._items:
            raise UnknownComponentError(f"unknown component kind '{kind}'; choose one of {', '.join(KINDS)}")
        return sorted(self._items[kind].values(), key=lambda c: c.name)

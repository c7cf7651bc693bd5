"""Named components registered by plugins: lookup, lazy factories and helpful errors."""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import DuplicateComponentError, InvalidInputError, UnknownComponentError

KINDS = ("operator", "prior", "sampler", "task", "reader", "writer")


def resolve_factory(factory: str | Callable) -> Callable:
    """Turn a lazy ``"package.module:Name"`` string into the object it names."""
    if callable(factory):
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
        return self.load()(**params)


class Registry:
    """Components by kind and name. Filled by the plugin manager; read by everything else."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` callable handed to a plugin's hook, remembering which plugin calls it."""

        def register(name: str, factory: str | Callable, **metadata: Any) -> None:
            self.add(Component(kind, name, factory, plugin, metadata))

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

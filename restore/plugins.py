"""Plugin manager: builtins first, then every ``restore.plugins`` entry point, each isolated.

A plugin that fails to import or whose registration hook raises is skipped with one warning line naming
its distribution; ``RESTORE_STRICT_PLUGINS=1`` turns that into a :class:`PluginLoadError`.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from . import hookspecs
from .errors import PluginLoadError
from .registry import KINDS, Registry

ENTRY_POINT_GROUP = "restore.plugins"
BUILTIN_MODULES = ("restore.builtins",)
_HOOK_FOR_KIND = {kind: f"restore_register_{kind}s" for kind in KINDS}


@dataclass
class PluginInfo:
    name: str
    distribution: str
    module: str
    status: str  # "ok" | "failed"
    error: str = ""


class PluginHost:
    """Owns the pluggy manager, the registry and the list of plugins with their status."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("restore")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []
        self._strict = os.environ.get("RESTORE_STRICT_PLUGINS", "") not in ("", "0")

    def load(self) -> None:
        for module_name in BUILTIN_MODULES:
            self._add(module_name, "restore (builtin)", lambda m=module_name: importlib.import_module(m))
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            self._add(ep.name, dist, ep.load, module=ep.value)
        self._register_all()

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.status, info.error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
        message = f"plugin '{info.name}' from {info.distribution} failed and is skipped: {info.error}"
        if self._strict:
            raise PluginLoadError(message + " (RESTORE_STRICT_PLUGINS=1)") from exc
        print(f"warning: {message}", file=sys.stderr)

    def _add(self, name: str, distribution: str, loader, module: str | None = None) -> None:
        info = PluginInfo(name, distribution, module or name, "ok")
        self.plugins.append(info)
        try:
            plugin: ModuleType = loader()
            if self.pm.is_registered(plugin):  # two entry points naming the same module
                return
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            self._fail(info, exc)

    def _register_all(self) -> None:
        by_name = {info.name: info for info in self.plugins}
        for kind, hook_name in _HOOK_FOR_KIND.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = by_name.get(impl.plugin_name)
                if info is None or info.status != "ok":
                    continue
                try:
                    impl.function(register=self.registry.registrar(kind, impl.plugin_name))
                except Exception as exc:  # noqa: BLE001 - includes duplicate names, which name both plugins
                    self._fail(info, exc)
                    self.registry.remove_plugin(impl.plugin_name)

    def add_commands(self, app) -> None:
        for impl in self.pm.hook.restore_register_commands.get_hookimpls():
            try:
                impl.function(app=app)
            except Exception as exc:  # noqa: BLE001
                info = next(p for p in self.plugins if p.name == impl.plugin_name)
                self._fail(info, exc)


_host: PluginHost | None = None


def host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _host
    if _host is None:
        new = PluginHost()
        new.load()
        _host = new
    return _host


def reload() -> PluginHost:
    """Forget loaded plugins and discover them again (tests, and after installing a plugin).

    Re-reads the site-packages ``.pth`` files too, so a plugin installed with ``pip install -e`` while
    this interpreter runs becomes importable.
    """
    import site
    import sysconfig

    global _host
    _host = None
    site.addsitedir(sysconfig.get_paths()["purelib"])
    importlib.invalidate_caches()
    return host()


def registry() -> Registry:
    return host().registry

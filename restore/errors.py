"""Errors raised by restore. Every message names the bad value and says what to do next.

The CLI prints ``str(error)`` as one line on stderr and exits with code 2.
"""
from __future__ import annotations


class RestoreError(Exception):
    """Base class of every error the user can fix; the CLI maps it to exit code 2."""

    exit_code = 2


class UnknownComponentError(RestoreError, KeyError):
    """A name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class DuplicateComponentError(RestoreError):
    """Two plugins registered the same name for the same kind."""


class PluginLoadError(RestoreError):
    """A plugin failed to import or register (raised only with RESTORE_STRICT_PLUGINS=1)."""


class InvalidInputError(RestoreError, ValueError):
    """A value, file or tensor the user passed is not usable."""


class ShapeError(InvalidInputError):
    """A tensor has the wrong shape; the message states the expected shape."""


class IncompatibleError(RestoreError):
    """Two components that cannot work together (e.g. a sampler that needs a linear operator)."""


class MissingDependencyError(RestoreError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""


class OutputExistsError(RestoreError):
    """The output path exists and --overwrite was not given."""


def check_shape(x, ndim: int, what: str, layout: str) -> None:
    """Raise ShapeError unless ``x`` has ``ndim`` dimensions (``layout`` e.g. "(B, C, H, W)")."""
    if x.ndim != ndim:
        raise ShapeError(f"{what} must have shape {layout}, got {tuple(x.shape)}")


def require(module: str, extra: str):
    """Import an optional dependency or raise MissingDependencyError with the fix."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); install it with: pip install 'restore[{extra}]'"
        ) from None

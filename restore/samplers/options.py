"""One validator for sampler options: the config dataclass's field types are the rules.

``Literal[...]`` fields accept one of their values, ``bool`` fields a bool, ``int`` fields an integer,
``float`` fields a number, ``X | None`` also ``None``, ``tuple[...]`` a sequence of that length. Every
error is one line naming the field, the bad value and what is allowed. A positive ``steps`` is checked
here for every sampler that has one; cross-field and range rules stay in ``Sampler.validate``.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Literal, Union

from ..errors import InvalidInputError


@functools.lru_cache(maxsize=None)
def field_types(config_cls: type) -> dict[str, Any]:
    """Resolved annotations of a config dataclass's fields."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls)}


def allowed(tp: Any) -> str:
    """What a field of type ``tp`` accepts, for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(allowed(a) for a in args)
    if tp is type(None):
        return "None"
    if origin is tuple:
        return f"{len(args)} values"
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` fits ``tp``, and the value in the field's type (int -> float,
    list -> tuple)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True, value
    if origin is Literal:
        return value in args and all(type(value) is type(a) or not isinstance(value, bool) for a in args), value
    if origin in (Union, types.UnionType):
        for a in args:
            ok, v = coerce(a, value)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    if origin is tuple:
        if not isinstance(value, (tuple, list)) or (args and args[-1] is not Ellipsis and len(value) != len(args)):
            return False, value
        items = [coerce(args[0] if args[-1] is Ellipsis else a, v) for a, v in zip(
            args if args[-1] is not Ellipsis else [args[0]] * len(value), value)]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    return True, value


def build_config(owner: str, config_cls: type, base: Any | None, overrides: dict[str, Any]) -> Any:
    """``config_cls`` with ``overrides`` applied over ``base`` (default: the paper defaults), every field checked.

    Raises:
        InvalidInputError: an unknown option, or a value its field does not accept (one line).
    """
    types_ = field_types(config_cls)
    unknown = sorted(set(overrides) - set(types_))
    if unknown:
        raise InvalidInputError(f"{owner} has no option {', '.join(unknown)}; options: {', '.join(sorted(types_))}")
    config = dataclasses.replace(base if base is not None else config_cls(), **overrides)
    fixed = {}
    for name, tp in types_.items():
        value = getattr(config, name)
        ok, converted = coerce(tp, value)
        if not ok:
            raise InvalidInputError(f"{owner} option {name}={value!r} is not allowed; {name} takes {allowed(tp)}")
        if converted is not value and converted != value or type(converted) is not type(value):
            fixed[name] = converted
    if "steps" in types_ and not (isinstance(config.steps, int) and config.steps >= 1):
        raise InvalidInputError(f"{owner}: steps must be a positive integer, got {config.steps!r}")
    return dataclasses.replace(config, **fixed) if fixed else config

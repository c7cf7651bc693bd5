"""Command-line usage errors as one line: what was wrong, the fix, and ``--help`` of the command.

typer has shipped click itself (up to 0.2x) and its own copy of click (``typer._click``, 0.29+); an
``except click.UsageError`` silently stops matching when the copy changes. The exception classes are
therefore taken from the package that defines the running command's own classes.
"""
from __future__ import annotations

import difflib
import importlib
import re
from types import ModuleType
from typing import Any


def click_exceptions(command: Any) -> ModuleType:
    """The ``exceptions`` module of the click (or typer-vendored click) that ``command`` is built on."""
    for base in type(command).__mro__:
        if base.__name__ in ("Group", "Command") and base.__module__.endswith(".core"):
            return importlib.import_module(base.__module__.rsplit(".", 1)[0] + ".exceptions")
    raise RuntimeError(f"cannot find the click package behind {type(command).__name__}")


def exception_types(command: Any) -> dict[str, tuple[type, ...]]:
    """``{"usage", "click", "exit", "abort"}`` exception classes, from click's package and from typer's API."""
    import typer

    mod = click_exceptions(command)
    exits = {getattr(mod, "Exit", None), getattr(typer, "Exit", None)} - {None}
    aborts = {getattr(mod, "Abort", None), getattr(typer, "Abort", None)} - {None}
    return {"usage": (mod.UsageError,), "click": (mod.ClickException,), "exit": tuple(exits),
            "abort": tuple(aborts)}


def suggest(word: str, candidates: list[str]) -> str | None:
    """The closest candidate (``--nosie`` -> ``--noise``, ``--kern`` -> ``--kernel``), or None."""
    if not word or not candidates:
        return None
    prefixed = [c for c in candidates if c.startswith(word) and len(word) >= 3]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def _options(ctx: Any) -> list[str]:
    names: list[str] = []
    for param in getattr(ctx.command, "params", []) if ctx is not None else []:
        if getattr(param, "param_type_name", "") == "option" and not getattr(param, "hidden", False):
            names += [o for o in param.opts + param.secondary_opts if o.startswith("--")]
    return names + ["--help"]


def _param_name(param: Any) -> str:
    if param is None:
        return "a value"
    if getattr(param, "param_type_name", "") == "argument":
        return str(getattr(param, "metavar", None) or getattr(param, "name", None) or "ARGUMENT").upper()
    opts = list(getattr(param, "opts", None) or [])
    long = [o for o in opts if o.startswith("--")]
    return (long or opts or [getattr(param, "name", "option")])[0]


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", "; ", text.strip()).rstrip(".")


def format_usage_error(exc: Any, command_path: str = "restore") -> str:
    """One line for a click/typer ``UsageError``: the problem, a did-you-mean when one fits, the help.

    ``command_path`` names the command when the error carries no context. Never raises: a formatting
    failure falls back to click's own message on one line.
    """
    try:
        return _format(exc, command_path)
    except Exception:  # noqa: BLE001 - the error message must not become a traceback itself
        return _one_line(str(exc.format_message())) + f"; see '{command_path} --help'"


def _format(exc: Any, command_path: str) -> str:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else command_path
    kind = type(exc).__name__
    hint = None
    if kind == "NoSuchOption":
        opt = exc.option_name
        msg = f"{path}: no such option '{opt}'"
        guess = suggest(opt, _options(ctx))
        if guess:
            hint = f"did you mean '{guess}'?"
    elif kind == "MissingParameter":
        param = getattr(exc, "param", None)
        what = getattr(param, "param_type_name", "parameter")
        msg = f"{path}: missing {what} {_param_name(param)}"
    elif kind == "BadParameter":
        param = getattr(exc, "param", None)
        detail = re.sub(r"^Value error,\s*", "", _one_line(exc.message))
        msg = f"{path}: invalid value for {_param_name(param)}: {detail}"
        bad = re.search(r"'([^']*)' is not one of (.*)", exc.message)
        if bad:  # a choice: the choices are quoted in click's message whatever the parameter type
            guess = suggest(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)))
            hint = f"did you mean '{guess}'?" if guess else None
    else:
        message = _one_line(re.sub(r"\s*Did you mean.*", "", exc.format_message(), flags=re.S))
        msg = f"{path}: {message[:1].lower() + message[1:]}"
        unknown = re.match(r"No such command '([^']*)'", exc.format_message())
        if unknown and ctx is not None and hasattr(ctx.command, "list_commands"):
            guess = suggest(unknown.group(1), list(ctx.command.list_commands(ctx)))
            if guess:
                hint = f"did you mean '{guess}'?"
    help_hint = f"see '{path} --help'"
    return "; ".join(part for part in (msg, hint, help_hint) if part)

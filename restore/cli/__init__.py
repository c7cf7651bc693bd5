"""The ``restore`` command line: every registered task becomes a command; errors are one line, exit 2."""
from __future__ import annotations

import importlib
import os
import sys
import warnings

import typer

from ..errors import RestoreError
from .tasks import LazyTaskGroup

# Core command groups; each module exposes ``register(app)``.
COMMAND_MODULES = ("restore.cli.inspect", "restore.cli.tasks", "restore.cli.plugins_new", "restore.cli.batch",
                   "restore.cli.inversion")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("restore")
        except PackageNotFoundError:  # run from a checkout without installing
            text = "unknown (not installed)"
        print(f"restore {text}")
        raise typer.Exit(0)


def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    if debug:
        os.environ["RESTORE_DEBUG"] = "1"


def build_app() -> typer.Typer:
    """A new app with every core command and every plugin's commands (tasks become commands)."""
    from ..plugins import host

    app = typer.Typer(
        name="restore",
        cls=LazyTaskGroup,
        help="Image restoration and inverse problems with diffusion priors.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    host().add_commands(app)
    return app


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("RESTORE_DEBUG") == "1"
    with warnings.catch_warnings():
        if not debug:  # a warning is one line, like an error: no source path, no code line
            warnings.showwarning = _one_line_warning
        return _main(argv, debug)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {_one_line(str(message))}", file=file or sys.stderr)


def _main(argv: list[str], debug: bool) -> int:
    from .usage import exception_types, format_usage_error

    try:
        command = typer.main.get_command(build_app())
    except RestoreError as exc:  # e.g. a broken plugin with RESTORE_STRICT_PLUGINS=1
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    # Usage errors are matched by the classes of the click that typer runs on (see restore.cli.usage).
    errors = exception_types(command)
    try:
        code = command.main(args=argv, prog_name="restore", standalone_mode=False)
        return code if isinstance(code, int) else 0  # typer.Exit(n) comes back as the return value
    except RestoreError as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except errors["exit"] as exc:
        return exc.exit_code
    except errors["usage"] as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `restore` / `restore batch`: the help, not an error
            print(exc.ctx.get_help())
            return 0
        print(f"error: {format_usage_error(exc, _command_path(command, argv))}", file=sys.stderr)
        return 2
    except errors["click"] as exc:  # e.g. a FileError raised by a parameter type
        print(f"error: {_one_line(exc.format_message())}", file=sys.stderr)
        return 2
    except errors["abort"]:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug must still not greet the user with a traceback
        if debug:
            raise
        text = " ".join(str(exc).split())[:300]
        print(f"error: internal error {type(exc).__name__}: {text}; rerun with --debug for the traceback "
              "and report it", file=sys.stderr)
        return 1


def _command_path(command, argv: list[str]) -> str:
    """``restore`` plus the sub-command words of ``argv`` (for errors raised without a context)."""
    path, group = ["restore"], command
    for word in argv:
        sub = getattr(group, "commands", {}).get(word)
        if sub is None:
            break
        path.append(word)
        group = sub
    return " ".join(path)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


def run() -> None:  # console-script entry point
    sys.exit(main())

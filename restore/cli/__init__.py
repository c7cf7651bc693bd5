"""The ``restore`` command line: every registered task becomes a command; errors are one line, exit 2."""
from __future__ import annotations

import importlib
import os
import sys

import click
import typer

from ..errors import RestoreError
from .tasks import LazyTaskGroup

# Core command groups; each module exposes ``register(app)``.
COMMAND_MODULES = ("restore.cli.inspect", "restore.cli.tasks", "restore.cli.plugins_new", "restore.cli.batch",
                   "restore.cli.inversion")

app = typer.Typer(
    name="restore",
    cls=LazyTaskGroup,
    help="Image restoration and inverse problems with diffusion priors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")):
    if debug:
        os.environ["RESTORE_DEBUG"] = "1"


def build_app() -> typer.Typer:
    from ..plugins import host

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    host().add_commands(app)
    return app


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("RESTORE_DEBUG") == "1"
    try:
        command = typer.main.get_command(build_app())
        code = command.main(args=argv, prog_name="restore", standalone_mode=False)
        return code if isinstance(code, int) else 0  # typer.Exit(n) comes back as the return value
    except RestoreError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:  # console-script entry point
    sys.exit(main())

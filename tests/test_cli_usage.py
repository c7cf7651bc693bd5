"""CLI usage errors: one line on stderr naming the option and the fix, exit code 2, no output, no traceback.

The table runs through ``restore.cli.main`` with whatever typer/click is installed, so a dependency that
moves its exception classes (typer 0.29 ships its own click) fails here rather than in front of a user.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from restore.cli import main

# (argv with IMG for an existing image, text the one line must contain)
USAGE_ERRORS = [
    (["deblur", "IMG", "--nosuch", "3"], "no such option '--nosuch'"),
    (["deblur", "IMG", "--nosie", "0.1"], "did you mean '--noise'?"),
    (["deblur", "IMG", "--kernal", "gaussian:2"], "did you mean '--kernel'?"),
    (["deblur"], "missing argument INPUT"),
    (["deblur", "IMG", "--steps", "abc"], "invalid value for --steps"),
    (["deblur", "IMG", "--steps"], "'--steps' requires an argument"),
    (["deblur", "IMG", "OTHER"], "unexpected extra argument"),
    (["deblr", "IMG"], "did you mean 'deblur'?"),
    (["super-resolve", "IMG", "--scale", "x2"], "invalid value for --scale"),
    (["dehaze", "IMG", "--beta", "thick"], "invalid value for --beta"),
    (["inpaint", "IMG", "--mask"], "'--mask' requires an argument"),
    (["mri", "IMG", "--acceleration", "fast"], "invalid value for --acceleration"),
    (["denoise", "IMG", "--samples", "1.5"], "invalid value for --samples"),
    (["--nosuch"], "no such option '--nosuch'"),
    (["list"], "missing argument KIND"),
    (["train", "prior", "--preset", "natural-rgb"], "missing option --output"),
    (["invert", "IMG", "--gamma", "abc"], "invalid value for --gamma"),
    (["batch", "deblur", "IMG", "--engine", "dusk"], "did you mean 'dask'?"),
    (["batch", "deblr", "IMG"], "did you mean 'deblur'?"),
    (["batch", "deblur"], "missing argument INPUTS"),
    (["batch", "deblur", "IMG", "--workers", "many"], "invalid value for --workers"),
    (["batch", "deblur", "IMG", "--kernal", "gaussian:1.5"], "did you mean '--kernel'?"),
    (["batch", "IMG", "--task", "deblur", "--kernal", "gaussian:1.5"], "did you mean '--kernel'?"),
    (["batch", "IMG", "--task", "deblur", "--opt", "kernel"], "--opt expects KEY=VALUE"),
    (["batch", "IMG", "--task", "deblr"], "did you mean 'deblur'?"),
    (["batch", "IMG", "--task"], "'--task' requires an argument"),
    (["batch", "IMG"], "no task"),
    (["batch", "super-resolve", "IMG", "--scale", "two"], "invalid value for --scale"),
]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("argv, expected", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_error_is_one_line_exit_2(argv, expected, image, tmp_path, capsys):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main([str(image) if a == "IMG" else a for a in argv])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: plugin")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0] and "--help" in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_version_and_bare_help(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"restore {version('restore')}"
    assert main([]) == 0 and "Commands" in capsys.readouterr().out


def test_usage_errors_are_matched_by_the_click_typer_really_uses():
    import typer

    from restore.cli import build_app
    from restore.cli.usage import click_exceptions, exception_types

    command = typer.main.get_command(build_app())
    mod = click_exceptions(command)
    assert issubclass(mod.NoSuchOption, exception_types(command)["usage"])
    assert typer.Exit in exception_types(command)["exit"]

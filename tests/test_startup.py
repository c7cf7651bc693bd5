"""Start-up stays light: building the CLI's help does not import torch (issue 23)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
from restore.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "diffusers") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["list", "operators"]])
def test_help_does_not_import_torch(args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert "HEAVY:" in out.stdout, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:", out.stdout


def test_lazy_public_api_names():
    import restore

    for name in ("components", "operator", "prior", "sampler", "solve", "Problem", "GaussianNoise", "DiffusionPrior",
                 "read", "write", "Image", "Sampler", "Result", "VPSchedule", "invert", "RestoreError"):
        assert getattr(restore, name) is not None
    assert set(restore.__all__) <= set(dir(restore))
    with pytest.raises(AttributeError):
        restore.not_a_name  # noqa: B018


def test_task_command_still_runs_after_lazy_load(tmp_path):
    from restore.cli import main

    assert main(["deblur", "--help"]) == 0

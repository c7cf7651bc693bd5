"""Plugin kit (issue 10): contract suites, `restore plugins new`, and the example plugin restore-haze.

The round-trip tests install packages into the current environment with ``pip install --no-deps -e`` and
uninstall them afterwards (the example plugin stays when it was installed before, as CI does).
"""
from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
import torch

import restore
from restore import plugins
from restore.cli import main
from restore.operators import Identity, LinearOperator, MatrixOperator
from restore.testing import ContractError, IOContract, OperatorContract, SamplerContract, check_adjoint
from restore.testing.checks import check_pinv_on_range

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "restore-haze"
RESTORE_CLI = "from restore.cli import run; run()"


def _run(args: list[str], timeout: float = 300, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def _restore(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-c", RESTORE_CLI, *args], timeout=timeout)


def _pip(*args: str) -> subprocess.CompletedProcess:
    proc = _run([sys.executable, "-m", "pip", *args, "-q"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


class ScaledAdjoint(LinearOperator):
    """A deliberately wrong operator: its adjoint is off by ``factor``."""

    def __init__(self, factor: float = 1.5) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return torch.roll(x, 1, dims=-1) * 0.5

    def adjoint(self, y):
        return self.factor * torch.roll(y, -1, dims=-1) * 0.5


# -- the contract suites on core components (they are collected here like in any plugin's tests) -----------
def _small_matrix():
    g = torch.Generator().manual_seed(0)
    return MatrixOperator(torch.randn(20, 48, generator=g, dtype=torch.float64), input_shape=(3, 4, 4))


class TestIdentityContract(OperatorContract):
    operator = Identity


class TestMatrixOperatorContract(OperatorContract):
    operator = _small_matrix
    x_shape = (2, 3, 4, 4)


class TestDPSContract(SamplerContract):
    sampler = "dps"
    config = {"steps": 50, "zeta_reference_steps": None}  # the literal per-step ζ of the code
    n_samples = 1000


class TestPNGContract(IOContract):
    extension = ".png"


def test_wrong_adjoint_is_reported_with_the_measured_error(restore_generator):
    x_shape = (2, 3, 8, 8)
    assert check_adjoint(ScaledAdjoint(1.0), x_shape, restore_generator) < 1e-12
    with pytest.raises(ContractError) as info:
        check_adjoint(ScaledAdjoint(1.5), x_shape, restore_generator)
    message = str(info.value)
    match = re.match(r"adjoint mismatch: relative error (\S+) > 1e-05 \(<Ax, y> = (\S+), <x, A\^H y> = (\S+)\)$", message)
    assert match, message
    error, lhs, rhs = (float(v) for v in match.groups())
    assert rhs == pytest.approx(1.5 * lhs, rel=1e-2)  # the factor is visible in the message
    assert error > 1e-3


def test_pinv_check_measures_the_range_residual(restore_generator):
    assert check_pinv_on_range(_small_matrix(), (2, 3, 4, 4), restore_generator) < 1e-10

    class BadPinv(ScaledAdjoint):
        def pinv(self, y):
            return y  # not A⁺

    with pytest.raises(ContractError, match=r"^pinv on the range: .* relative error \d\S* > 0.0001$"):
        check_pinv_on_range(BadPinv(1.0), (2, 3, 8, 8), restore_generator)


def test_wrong_operator_fails_the_contract_suite_naming_the_error(tmp_path):
    (tmp_path / "test_wrong.py").write_text(
        "import torch\n"
        "from restore.operators import LinearOperator\n"
        "from restore.testing import OperatorContract\n\n\n"
        "class Wrong(LinearOperator):\n"
        "    def forward(self, x):\n"
        "        return 2 * x\n\n"
        "    def adjoint(self, y):\n"
        "        return 3 * y  # off by a factor 1.5\n\n\n"
        "class TestWrong(OperatorContract):\n"
        "    operator = Wrong\n"
        "    x_shape = (2, 1, 8, 8)\n")
    proc = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert re.search(r"^E +restore\.testing\.checks\.ContractError: adjoint mismatch: relative error \d\S* > 1e-05 "
                     r"\(<Ax, y> = \S+, <x, A\^H y> = \S+\)$", proc.stdout, re.M), proc.stdout[-3000:]
    failed = set(re.findall(r"^FAILED \S+::TestWrong::(\w+)", proc.stdout, re.M))
    assert failed == {"test_adjoint", "test_composition"}, proc.stdout[-1000:]  # composition re-runs the adjoint test


def test_plugins_new_rejects_bad_input_with_one_line(tmp_path, capsys):
    cases = [(["Bad_Name"], "invalid plugin name 'Bad_Name'"),
             (["class"], "it is a Python keyword"),
             (["gaussian", "--kind", "prior"], "a prior named 'gaussian' already exists"),
             (["fine", "--kind", "model"], "unknown --kind 'model'; choose one of operator, prior, sampler")]
    for args, expected in cases:
        capsys.readouterr()
        assert main(["plugins", "new", *args, "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected in err, err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert main(["plugins", "new", "fine", "-o", str(tmp_path / "full")]) == 2
    assert "is not an empty folder" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_scaffold_installs_passes_its_tests_and_is_listed(tmp_path, capsys):
    target = tmp_path / "restore-kit-demo"
    assert main(["plugins", "new", "kit-demo", "-o", str(target)]) == 0
    assert {p.name for p in target.rglob("*") if p.is_file()} >= {
        "pyproject.toml", "README.md", "__init__.py", "plugin.py", "operators.py", "test_operators.py"}
    if _installed("restore-kit-demo"):  # left over by an interrupted run
        _pip("uninstall", "-y", "restore-kit-demo")
    _pip("install", "--no-deps", "-e", str(target))
    try:
        tests = _run([sys.executable, "-m", "pytest", str(target)], cwd=target)
        assert tests.returncode == 0, tests.stdout[-3000:]
        assert re.search(r"\b\d+ passed", tests.stdout) and "failed" not in tests.stdout
        listed = _restore("list", "operators")
        assert listed.returncode == 0, listed.stderr
        rows = [line for line in listed.stdout.splitlines() if line.split()[:1] == ["kit-demo"]]
        assert len(rows) == 1 and "True" in rows[0]
    finally:
        _pip("uninstall", "-y", "restore-kit-demo")
        plugins.reload()
    assert "kit-demo" not in {c.name for c in restore.components("operator")}


@pytest.fixture(scope="module")
def haze_installed():
    """The example plugin, installed for this module unless it already is (CI installs it first)."""
    installed_here = not _installed("restore-haze")
    if installed_here:
        _pip("install", "--no-deps", "-e", str(EXAMPLE))
        # An editable install adds a .pth file, which this already running interpreter has not read yet.
        site.addsitedir(sysconfig.get_paths()["purelib"])
    plugins.reload()
    yield
    if installed_here:
        _pip("uninstall", "-y", "restore-haze")
    plugins.reload()


def test_example_plugin_is_listed(haze_installed, capsys):
    assert main(["list", "operators"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert "haze" in rows and "False" in rows["haze"] and "vignetting" in rows and "True" in rows["vignetting"]
    assert main(["list", "tasks"]) == 0
    tasks = capsys.readouterr().out
    assert any(line.split()[:2] == ["dehaze", "haze"] for line in tasks.splitlines()), tasks
    assert {"haze", "vignetting"} <= {c.name for c in restore.components("operator")}
    assert restore.operator("haze", beta=0.5).linear is False


def test_dehaze_runs_through_the_cli(haze_installed, tmp_path):
    image = tmp_path / "clean.png"
    restore.write(image, torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)))
    out = tmp_path / "out.png"
    # The stationary Gaussian prior keeps this fast; the default (trained) prior takes the same path.
    proc = _restore("dehaze", str(image), "--simulate", "--steps", "5", "--prior", "stationary-gaussian", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sampler dps" in proc.stderr and "NFE 5" in proc.stderr  # DPS is the task's default sampler
    assert restore.read(out).data.shape == (1, 3, 24, 24)
    again = _restore("dehaze", str(image), "--simulate", "--steps", "5", "--prior", "stationary-gaussian", "-o", str(out))
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr.strip().splitlines()[-1]

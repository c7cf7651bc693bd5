"""The example plugin against restore's contract suites, plus its own oracles."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import restore
from restore.testing import OperatorContract
from restore_haze.operators import Haze, Vignetting


class TestVignetting(OperatorContract):
    operator = "vignetting"
    params = {"strength": 0.6}
    x_shape = (2, 3, 12, 16)


class TestHaze(OperatorContract):
    operator = "haze"
    params = {"beta": 1.2, "airlight": 0.7}
    x_shape = (2, 3, 12, 16)


def test_components_are_registered(restore_plugins):
    names = {c.name: c for c in restore.components("operator")}
    assert names["vignetting"].plugin == "haze" and names["haze"].metadata["linear"] is False
    assert "dehaze" in {c.name for c in restore.components("task")}


def test_haze_matches_the_scattering_model_and_inverts_exactly():
    op = Haze(beta=1.0, airlight=0.8, near=0.0, far=1.0)
    x = torch.rand(1, 3, 5, 4, generator=torch.Generator().manual_seed(0))
    y = op(x)
    assert torch.allclose(y[..., -1, :], x[..., -1, :])  # depth 0: no haze
    t_top = torch.exp(torch.tensor(-1.0))
    assert torch.allclose(y[..., 0, :], x[..., 0, :] * t_top + 0.8 * (1 - t_top))
    assert torch.allclose(op.initial_estimate(y), x, atol=1e-6)


def test_vignetting_prox_is_the_exact_minimiser(restore_generator):
    op = Vignetting(0.5)
    z, y = torch.rand(2, 1, 6, 6, generator=restore_generator, dtype=torch.float64), torch.rand(
        2, 1, 6, 6, generator=restore_generator, dtype=torch.float64)
    x = op.prox(z, y, gamma=3.0)
    grad = (x - z) + 3.0 * op.adjoint(op(x) - y)  # gradient of ½||x - z||² + γ/2 ||Ax - y||²
    assert float(grad.abs().max()) < 1e-12


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(restore.RestoreError, match="strength must be in"):
        Vignetting(1.5)
    with pytest.raises(restore.RestoreError, match="airlight must be in"):
        Haze(airlight=2.0)


def test_dehaze_runs_from_the_cli(tmp_path):
    clean = torch.linspace(0.1, 0.9, 24 * 24).reshape(1, 1, 24, 24).repeat(1, 3, 1, 1)
    restore.write(tmp_path / "clean.png", clean)
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-c", "from restore.cli import run; run()", "dehaze", str(tmp_path / "clean.png"), "--simulate",
                           "--steps", "10", "--prior", "stationary-gaussian", "-o", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert restore.read(out).data.shape == (1, 3, 24, 24)

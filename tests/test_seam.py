"""The sampler/prior seam (issue 15): the bound view, prior families as types, typed registration, one
option validator, and the plugin template on the new seam."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import restore
from restore.cli import main
from restore.errors import IncompatibleError, InvalidInputError
from restore.operators import Identity
from restore.plugins import registry
from restore.priors import GaussianPrior, LatentFamily, MeanRevertingFamily
from restore.priors.base import family_names
from restore.priors.mean_reverting import MeanRevertingGaussianPrior
from restore.registry import Registry

F64 = torch.float64


def _gaussian(d=4):
    return GaussianPrior(torch.full((d,), 0.5, dtype=F64), 0.01 * torch.eye(d, dtype=F64))


def test_predict_is_one_counted_network_call_and_matches_the_prior():
    prior = _gaussian()
    view = prior.bind(shape=(3, 4))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    eps, x0 = view.predict(x, 300)
    assert view.nfe == 1
    torch.testing.assert_close(eps, prior.eps(x, 300), rtol=0, atol=1e-12)  # same call, same numbers
    torch.testing.assert_close(x0, prior.x0(x, 300), rtol=0, atol=1e-12)  # float64: round-off of two formulas


def test_view_pads_y_and_crops_the_result():
    prior = _gaussian(1)
    prior.multiple = 4
    y = torch.rand(1, 1, 5, 6, generator=torch.Generator().manual_seed(1), dtype=F64)
    view = prior.bind(restore.Problem(y, Identity()))
    assert view.x_shape == (1, 1, 8, 8) and view.problem.x_shape == (1, 1, 8, 8)
    padded = view.y_image()
    assert torch.equal(padded[..., :5, :6], y) and torch.equal(padded[..., 7, :6], y[..., 4, :])
    assert view.result(view.to_model(padded)).shape == y.shape


def test_families_are_types_and_list_and_errors_read_one_declaration(capsys):
    mr = MeanRevertingGaussianPrior()
    assert isinstance(mr, MeanRevertingFamily) and not isinstance(mr, restore.DiffusionPrior)
    assert isinstance(_gaussian(), restore.DiffusionPrior) and not issubclass(LatentFamily, restore.DiffusionPrior)
    assert main(["list", "samplers"]) == 0
    listing = capsys.readouterr().out
    for name in ("psld", "ir-sde", "dds"):
        cls = registry().get("sampler", name).load()
        row = next(line for line in listing.splitlines() if line.split()[:1] == [name])
        assert family_names(cls.families).split(" or ")[0] in row
        prior = mr if MeanRevertingFamily not in cls.families else _gaussian()
        with pytest.raises(IncompatibleError) as info:
            cls(steps=2).run(prior, restore.Problem(torch.zeros(1, 4, dtype=F64), Identity()))
        assert f"needs a {family_names(cls.families)} prior" in str(info.value)


def test_registration_is_checked_against_the_kind_record():
    reg = Registry()
    register = reg.registrar("sampler", "demo-plugin")
    with pytest.raises(InvalidInputError, match="demo-plugin.*unknown field.*colour"):
        register("x", "m:X", summary="s", colour="red")
    with pytest.raises(InvalidInputError, match="cost=3"):
        register("x", "m:X", cost=3)
    reg.registrar("prior", "demo-plugin")("p", "m:P", kind="vp", channels=3, default_for=["natural"])
    assert reg.get("prior", "p").metadata["default_for"] == ("natural",)


def test_one_validator_names_field_value_and_allowed_values():
    with pytest.raises(InvalidInputError, match="renoise='sometimes' is not allowed; renoise takes one of code, paper"):
        restore.sampler("dds", renoise="sometimes")
    with pytest.raises(InvalidInputError, match="clip='yes'.*takes bool"):
        restore.sampler("dps", clip="yes")
    with pytest.raises(InvalidInputError, match="order=3"):
        restore.sampler("mrs", order=3)
    assert restore.sampler("dps", zeta=1).config.zeta == 1.0 and isinstance(restore.sampler("dps", zeta=1).config.zeta, float)
    assert restore.sampler("red-diff", betas=[0.8, 0.9]).config.betas == (0.8, 0.9)


def test_a_new_sampler_is_one_file_and_one_registration_line(tmp_path):
    target = tmp_path / "restore-one-file"
    assert main(["plugins", "new", "one-file", "--kind", "sampler", "-o", str(target)]) == 0
    package = next(p for p in target.iterdir() if p.is_dir() and (p / "plugin.py").exists())
    plugin = (package / "plugin.py").read_text()
    assert plugin.count("register(") == 1
    test = tmp_path / "test_contract.py"
    test.write_text(
        f"import {package.name}.plugin as plugin\n"
        f"from {package.name}.samplers import OneFile\n"
        "from restore.registry import Registry\n"
        "from restore.testing import SamplerContract\n\n"
        "def test_registration_line_is_valid():\n"
        "    reg = Registry()\n"
        "    plugin.restore_register_samplers(reg.registrar('sampler', 'one-file'))\n"
        "    assert reg.get('sampler', 'one-file').load() is OneFile\n\n"
        "class TestOneFile(SamplerContract):\n"
        "    sampler = OneFile\n"
        "    config = {'steps': 200}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "failed" not in proc.stdout and "passed" in proc.stdout

"""Start-up stays light: help, task help, listings and ``restore plugins`` import no torch (issue 23)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
from importlib import metadata

import restore.plugins

FIRST_PARTY = sys.argv[1] == "first-party"
if FIRST_PARTY:  # only restore's own plugins (see test_task_help_and_listings_do_not_import_torch)
    restore.plugins.entry_points = lambda group: [
        ep for ep in metadata.entry_points(group=group) if ep.dist is not None and ep.dist.name == "restore"]
from restore.cli import main
code = main(sys.argv[2:])
heavy = sorted(m for m in ("torch", "diffusers") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def probe(*args: str, plugins: str = "all", env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **(env or {}))
    return subprocess.run([sys.executable, "-c", PROBE, plugins, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def heavy_modules(out: subprocess.CompletedProcess) -> str:
    assert "HEAVY:" in out.stdout, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["list", "operators"]])
def test_help_does_not_import_torch(args):
    assert heavy_modules(probe(*args)) == "HEAVY:"


# An installed third-party plugin whose task module imports torch at the top (the example restore-haze does)
# is beyond what restore controls, so these run with restore's own plugins only.
@pytest.mark.parametrize("args", [["deblur", "--help"], ["super-resolve", "--help"], ["inpaint", "--help"],
                                  ["denoise", "--help"], ["mri", "--help"], ["ct", "--help"], ["enhance", "--help"],
                                  ["list", "samplers"], ["list", "tasks"], ["list", "readers"], ["batch", "--help"]])
def test_task_help_and_listings_do_not_import_torch(args):
    assert heavy_modules(probe(*args, plugins="first-party")) == "HEAVY:"


def test_list_priors_reads_cached_estimates_without_torch(tmp_path):
    """The network cost columns come from the estimate cache, keyed without torch: seeded with known values,
    the listing shows them and imports no torch."""
    import json

    from restore_models.architectures.cost import _estimate_key
    from restore_models.architectures.presets import PRESETS

    cache = {}
    for i, spec in enumerate(s for s in PRESETS.values() if s["files"]):
        cache[_estimate_key(spec["architecture"], spec["config"])] = {
            "parameters": (i + 1) * 1e6, "gflops": 1.0, "seconds_per_call": 0.125 * (i + 1)}
    (tmp_path / "architecture_costs.json").write_text(json.dumps(cache))
    out = probe("list", "priors", plugins="first-party", env={"RESTORE_CACHE": str(tmp_path)})
    assert heavy_modules(out) == "HEAVY:"
    header = out.stdout.splitlines()[0].split()
    assert header[:6] == ["name", "plugin", "kind", "channels", "params", "s/call"]
    assert "1.0M" in out.stdout and "0.125" in out.stdout and "0.25" in out.stdout


def test_estimates_are_computed_once_then_cached(tmp_path, monkeypatch):
    from restore_models.architectures import cost

    monkeypatch.setattr(cost, "CACHE", tmp_path / "costs.json")
    calls = []
    monkeypatch.setattr(cost, "_compute_estimate", lambda a, c: calls.append(a) or {"parameters": 7, "gflops": 0.0,
                                                                                    "seconds_per_call": 2.0})
    config = {"image_size": 32}
    assert cost.estimate("adm", config) == cost.estimate("adm", config) == {"parameters": 7, "gflops": 0.0,
                                                                            "seconds_per_call": 2.0}
    assert calls == ["adm"]
    assert cost.estimate("adm", {"image_size": 64})["parameters"] == 7 and len(calls) == 2  # another config


def test_task_help_lists_the_task_options():
    """``restore TASK --help`` is built from the light declaration: every option of the task is shown."""
    from restore.cli.tasks import task_placeholders

    for placeholder in task_placeholders():
        if placeholder.component.plugin == "haze":
            continue
        task = placeholder.component.build()
        params = {p.name for p in placeholder.load().params}
        assert {opt.name for opt in task.options} <= params, task.name


def test_sampler_listing_reads_declarations_as_the_classes_state_them():
    """``restore list samplers`` reads ``families``/``requires``/``uses_prior``/``unconditional`` from the
    source; the imported classes are the truth it must reproduce, for every registered sampler."""
    from restore.cli.inspect import _static_declaration, sampler_declaration
    from restore.plugins import registry
    from restore.priors.base import Prior

    for comp in registry().all("sampler"):
        static = _static_declaration(comp)
        assert static is not None, comp.name  # a builtin the reader cannot follow would import torch again
        cls = comp.load()
        priors = "none" if not cls.uses_prior else (
            "any" if Prior in cls.families else ", ".join(f.family_label for f in cls.families))
        requires = ("unconditional",) if cls.unconditional else tuple(cls.requires)
        assert static == {"priors": priors, "requires": requires}, comp.name
        assert sampler_declaration(comp) == static


def test_static_reader_follows_bases_in_python_order(tmp_path, monkeypatch):
    """C3 order with multiple inheritance, re-exports, and a fallback (None) for what cannot be read."""
    from restore.declarations import ClassRef, class_attributes

    pkg = tmp_path / "declpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .base import Base as Base\n")
    (pkg / "base.py").write_text("class Base:\n    a = 1\n    b = ('x',)\n\nclass Left(Base):\n    pass\n\n"
                                 "class Right(Base):\n    a = 2\n")
    (pkg / "leaf.py").write_text("from declpkg import Base\nfrom .base import Left, Right\nimport declpkg.base as b\n\n"
                                 "class Leaf(Left, Right):\n    c = (Base, b.Left)\n\n"
                                 "def make():\n    return 3\n\nclass Dynamic(Base):\n    a = make()\n\n"
                                 "class Branchy(Base):\n    if make():\n        a = 4\n\n"
                                 "class Patched(Base):\n    pass\n\nPatched.a = 5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    attrs = class_attributes("declpkg.leaf:Leaf", ("a", "b", "c"))
    assert attrs == {"a": 2, "b": ("x",), "c": (ClassRef("declpkg.base", "Base"), ClassRef("declpkg.base", "Left"))}
    import declpkg.leaf

    assert declpkg.leaf.Leaf.a == attrs["a"]  # Python agrees: Right comes before Base in Leaf's MRO
    for name in ("Dynamic", "Branchy", "Patched"):  # a call, a conditional body, a later assignment
        assert class_attributes(f"declpkg.leaf:{name}", ("a",)) is None
    assert class_attributes("declpkg.leaf:Missing", ("a",)) is None


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

"""Plugin host (issue 2 item 2): discovery through entry points, failure isolation, strict mode,
duplicate names and "did you mean" lookups, with throwaway distributions on sys.path (no pip)."""
from __future__ import annotations

import pytest

import restore
from restore import plugins
from restore.cli import main
from restore.errors import PluginLoadError, UnknownComponentError
from restore.testing.distributions import make_distribution

OPERATOR_PLUGIN = '''
from restore.hookspecs import hookimpl
from restore.operators import Identity


@hookimpl
def restore_register_operators(register):
    register("{op}", Identity, linear=True, domain="image", summary="throwaway test operator")
'''

BROKEN_PLUGIN = "raise RuntimeError('boom at import time')\n"


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_operator_of_a_throwaway_distribution_appears_in_restore_list(restore_distribution, capsys):
    restore_distribution("acme-fake", {"acmefake": "acme_fake_plugin"},
                         {"acme_fake_plugin": OPERATOR_PLUGIN.format(op="acme-fake-op")})
    plugins.reload()
    assert main(["list", "operators"]) == 0
    rows = _lines(capsys.readouterr().out, "acme-fake-op")
    assert len(rows) == 1 and "acmefake" in rows[0] and "throwaway test operator" in rows[0]
    assert isinstance(restore.operator("acme-fake-op"), restore.LinearOperator)
    info = next(p for p in plugins.host().plugins if p.name == "acmefake")
    assert (info.distribution, info.status, info.module) == ("acme-fake", "ok", "acme_fake_plugin")


def test_plugin_that_raises_on_import_is_skipped_with_one_warning_line(restore_distribution, capsys):
    restore_distribution("acme-broken", {"acmebroken": "acme_broken_plugin"}, {"acme_broken_plugin": BROKEN_PLUGIN})
    restore_distribution("acme-fine", {"acmefine": "acme_fine_plugin"},
                         {"acme_fine_plugin": OPERATOR_PLUGIN.format(op="acme-fine-op")})
    capsys.readouterr()
    plugins.reload()
    warnings = _lines(capsys.readouterr().err, "acme-broken")
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warning: plugin 'acmebroken' from acme-broken failed")
    assert "RuntimeError: boom at import time" in warnings[0]
    restore.operator("acme-fine-op")  # one broken plugin does not break the others
    assert main(["plugins"]) == 0
    rows = _lines(capsys.readouterr().out, "acmebroken")
    assert len(rows) == 1 and "failed" in rows[0] and "acme-broken" in rows[0]
    assert main(["--help"]) == 0  # nor the CLI


def test_strict_mode_makes_a_broken_plugin_an_error_with_exit_2(restore_distribution, monkeypatch, capsys):
    restore_distribution("acme-broken", {"acmebroken": "acme_broken_plugin"}, {"acme_broken_plugin": BROKEN_PLUGIN})
    monkeypatch.setenv("RESTORE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="acme-broken"):
        plugins.reload()
    capsys.readouterr()
    assert main(["list", "operators"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("error: plugin 'acmebroken' from acme-broken failed") and "RESTORE_STRICT_PLUGINS=1" in err


def test_duplicate_name_fails_loudly_naming_both_plugins(restore_distribution, monkeypatch, capsys):
    restore_distribution("acme-one", {"acmeone": "acme_one_plugin"},
                         {"acme_one_plugin": OPERATOR_PLUGIN.format(op="acme-dup")})
    restore_distribution("acme-two", {"acmetwo": "acme_two_plugin"},
                         {"acme_two_plugin": OPERATOR_PLUGIN.format(op="acme-dup")})
    capsys.readouterr()
    host = plugins.reload()
    warnings = _lines(capsys.readouterr().err, "acme-dup")
    assert len(warnings) == 1
    assert "'acmeone'" in warnings[0] and "'acmetwo'" in warnings[0] and "registered by both" in warnings[0]
    status = {p.name: p.status for p in host.plugins}
    assert (status["acmeone"], status["acmetwo"]) == ("ok", "failed")
    assert restore.components("operator")  # the first registration stays usable
    assert host.registry.get("operator", "acme-dup").plugin == "acmeone"
    monkeypatch.setenv("RESTORE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"registered by both 'acmeone' and 'acmetwo'"):
        plugins.reload()


def test_unknown_names_list_the_known_ones_with_a_did_you_mean_hint(restore_distribution, capsys):
    restore_distribution("acme-fake", {"acmefake": "acme_fake_plugin"},
                         {"acme_fake_plugin": OPERATOR_PLUGIN.format(op="acme-fake-op")})
    plugins.reload()
    with pytest.raises(UnknownComponentError) as info:
        restore.operator("acme-fake-po")
    message = str(info.value)
    assert "Did you mean 'acme-fake-op'?" in message and "Known operators:" in message and "\n" not in message
    with pytest.raises(UnknownComponentError, match="Did you mean 'ddim'"):
        restore.sampler("ddimm")
    capsys.readouterr()
    assert main(["list", "operatorz"]) == 2
    assert "choose one of operators" in capsys.readouterr().err


def test_the_host_is_restored_after_a_throwaway_plugin(tmp_path, monkeypatch):
    make_distribution(tmp_path, "acme-temp", {"acmetemp": "acme_temp_plugin"},
                      {"acme_temp_plugin": OPERATOR_PLUGIN.format(op="acme-temp-op")})
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reload()
    assert "acme-temp-op" in {c.name for c in restore.components("operator")}
    monkeypatch.undo()
    plugins.reload()
    assert "acme-temp-op" not in {c.name for c in restore.components("operator")}
    assert "acmetemp" not in {p.name for p in plugins.host().plugins}


def test_a_task_instance_takes_its_name_and_summary_from_the_registration():
    from restore.hookspecs import file_format_hooks
    from restore.registry import Registry
    from restore.tasks import Task

    reg = Registry()
    task = Task(build=lambda *a, **k: None)
    reg.registrar("task", "demo")("demo-task", task, summary="one line")
    built = reg.get("task", "demo-task").build()
    assert (built.name, built.summary) == ("demo-task", "one line") and (task.name, task.summary) == ("", "")
    own = Task(build=task.build, name="own", summary="its own")
    reg.registrar("task", "demo")("other", lambda: own, summary="registered")
    assert reg.get("task", "other").build() is own  # a Task that names itself keeps its name and summary

    readers, writers = file_format_hooks(("npy", "pkg.npy_io", (".npy",)))
    readers(reg.registrar("reader", "demo"))
    writers(reg.registrar("writer", "demo"))
    assert reg.get("reader", "npy").factory == "pkg.npy_io:read_factory"
    assert reg.get("writer", "npy").metadata["extensions"] == (".npy",)

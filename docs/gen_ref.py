"""Generate the reference and benchmark pages of the documentation from the code and the recorded results.

Run by ``mkdocs build`` (``docs/gen_pages.py`` through the ``gen-files`` plugin), so the pages cannot drift:

* ``reference/cli.md``: every command of the typer app, with its options, defaults and help text;
* ``reference/samplers/<name>.md``: one page per registered sampler; its defaults table is read from the
  sampler's frozen config dataclass (field, default, and the field's line in the ``Attributes:`` docstring);
* ``benchmarks/suites.md`` and ``benchmarks/measurements.md``: tables (and PSNR-vs-NFE plots) from
  ``bench/results/*.json``; ``{{SUMMARY}}`` in a page becomes the summary table (``hooks.py``);
* ``gallery.md``: the strips and their numbers from ``docs/assets/gallery/gallery.json``.

``python docs/gen_ref.py --readme`` rewrites the README's summary table from ``bench/results/task_defaults.json``.
The functions are importable (``tests/test_docs.py`` compares their output with the configs).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
README = os.path.join(ROOT, "README.md")
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"

for path in (ROOT, os.path.join(ROOT, "plugins")):  # the docs build and the tests see this checkout
    if path not in sys.path:
        sys.path.insert(0, path)


# ----------------------------------------------------------------------------------------------- samplers

def format_default(value: Any) -> str:
    """A config default as it is written on the command line (``--set KEY=VALUE`` parses JSON)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    if isinstance(value, str):
        return value
    return repr(value)


def attribute_docs(config: type) -> dict[str, str]:
    """Field descriptions from the Google-style ``Attributes:`` sections of a config's docstring and, for the
    fields it inherits, of its bases' docstrings."""
    names = {f.name for f in dataclasses.fields(config)}
    out: dict[str, str] = {}
    for cls in config.__mro__:
        if dataclasses.is_dataclass(cls):
            out = {**_own_attribute_docs(cls.__doc__, names), **out}
    return out


def _own_attribute_docs(docstring: str | None, names: set[str]) -> dict[str, str]:
    doc = inspect.cleandoc(docstring or "")
    out: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        match = re.match(r"^\s*(?:Attributes:\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?:\s*(.*)$", line)
        if match and match.group(1) in names:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current and line.strip() and not line.strip().endswith(":"):
            out[current] = (out[current] + " " + line.strip()).strip()
        elif not line.strip():
            current = None
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def defaults_table(config: type) -> str:
    """The markdown table of a config dataclass: field, default, description."""
    docs = attribute_docs(config)
    lines = ["| option | default | description |", "|---|---|---|"]
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        lines.append(f"| `{f.name}` | `{_cell(format_default(default))}` | {_cell(docs.get(f.name, ''))} |")
    return "\n".join(lines)


def sampler_page(name: str, cls: type | None = None) -> str:
    """The reference page of one registered sampler (``cls`` overrides the registered class, for tests)."""
    import restore

    comp = next(c for c in restore.components("sampler") if c.name == name)
    cls = cls or comp.load()
    meta = comp.metadata
    module = cls.__module__
    lines = [f"# `{name}`", "", meta.get("summary", "").strip() + ".", ""]
    lines += [f"- **Registered by** `{comp.plugin}` as `{module}.{cls.__name__}`",
              f"- **Needs** {', '.join(f'`{r}`' for r in meta.get('requires', ())) or 'nothing'}",
              f"- **Cost per step** {meta.get('cost', '') or '-'}"]
    if meta.get("prior_kinds"):
        lines.append(f"- **Prior kinds** {', '.join(f'`{k}`' for k in meta['prior_kinds'])}")
    lines.append("")
    module_doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", inspect.getdoc(sys.modules.get(module)) or "")  # Sphinx roles
    if module_doc:
        lines += [module_doc, ""]
    config = getattr(cls, "Config", None)
    lines += ["## Defaults", ""]
    if config is not None and dataclasses.is_dataclass(config):
        lines += [f"Generated from `{config.__module__}.{config.__qualname__}`. Set a field with "
                  f"`restore.sampler(\"{name}\", FIELD=VALUE)` or `--sampler {name} --set FIELD=VALUE` on the CLI.",
                  "", defaults_table(config), ""]
    else:
        lines += ["This sampler has no configuration.", ""]
    lines += ["Choosing between samplers: [Samplers and how to choose](../../concepts/samplers.md).", ""]
    return "\n".join(lines)


def sampler_index() -> str:
    import restore

    lines = ["# Samplers", "",
             "Every registered sampler (builtins and installed plugins), generated from the registry at build "
             "time. `restore list samplers` prints the same list.", "",
             "| sampler | what | needs | cost per step |", "|---|---|---|---|"]
    for c in restore.components("sampler"):
        req = ", ".join(f"`{r}`" for r in c.metadata.get("requires", ()))
        lines.append(f"| [`{c.name}`]({c.name}.md) | {_cell(c.summary)} | {req} | {_cell(c.metadata.get('cost', ''))} |")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------------- CLI

def _param_row(param, ctx) -> str:
    # The help record is what `restore CMD --help` prints (typer ships its own click, so no isinstance checks).
    record = param.get_help_record(ctx)
    if record is None:
        return ""
    names, help_text = record
    return f"| `{_cell(names)}` | {_cell(help_text)} |"


def _command_section(cmd, path: list[str], level: int) -> list[str]:
    title = " ".join(path)
    out = [f"{'#' * level} `{title}`", ""]
    help_text = inspect.cleandoc(cmd.help or cmd.short_help or "")
    if help_text:
        out += [help_text, ""]
    ctx = type(cmd).context_class(cmd, info_name=path[-1])
    pieces = cmd.collect_usage_pieces(ctx)
    out += ["```text", f"{title} {' '.join(pieces)}".rstrip(), "```", ""]
    rows = [row for row in (_param_row(p, ctx) for p in cmd.params if not getattr(p, "hidden", False)) if row]
    if rows:
        out += ["| argument / option | help |", "|---|---|"] + rows + [""]
    if hasattr(cmd, "commands"):  # a group
        for name in sorted(cmd.commands):
            out += _command_section(cmd.commands[name], path + [name], min(level + 1, 4))
    return out


def cli_page() -> str:
    """Every ``restore`` command, generated from the typer application (plugins' commands included)."""
    import typer

    from restore.cli import build_app

    root = typer.main.get_command(build_app())
    # task commands are placeholders until run (restore.cli.tasks.TaskPlaceholder): load them for their options
    root.commands.update({n: c.load() for n, c in root.commands.items() if hasattr(c, "load")})
    lines = ["# Command line", "",
             "Generated from the `restore` typer application at build time; `restore COMMAND --help` prints "
             "the same. Errors are one line on stderr with exit code 2; `restore --debug COMMAND …` shows the "
             "traceback.", ""]
    lines += ["| command | what |", "|---|---|"]
    for name in sorted(root.commands):
        cmd = root.commands[name]
        anchor = "restore-" + name
        lines.append(f"| [`restore {name}`](#{anchor}) | {_cell((cmd.short_help or cmd.help or '').splitlines()[0] if (cmd.short_help or cmd.help) else '')} |")
    lines.append("")
    for name in sorted(root.commands):
        lines += _command_section(root.commands[name], ["restore", name], 2)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- benchmarks

SUITES = ("full", "quick")


def load_result(path: str) -> Any:
    """A results file: one JSON document, or JSON lines."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 and value != 0 else f"{value:.2f}"
    if isinstance(value, (dict, list)):
        return _cell(json.dumps(value))
    return _cell(str(value))


def records_table(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and not isinstance(r[k], (dict, list))]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def result_section(stem: str, data: Any) -> str:
    """A generic rendering of one results file: its scalar settings, then its records as a table."""
    lines = [f"## `{stem}`", "", f"From `bench/results/{stem}.json`.", ""]
    if isinstance(data, list):
        return "\n".join(lines + [records_table(data), ""])
    settings = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
    if settings:
        lines += [", ".join(f"{k}: `{_fmt(v)}`" for k, v in settings.items()) + ".", ""]
    mach = data.get("machine")
    if isinstance(mach, dict):
        lines += ["Machine: " + ", ".join(f"{k} `{_fmt(v)}`" for k, v in mach.items() if not isinstance(v, (dict, list))) + ".", ""]
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            lines += [records_table(value), ""]
        elif isinstance(value, dict) and value and all(isinstance(r, dict) for r in value.values()):
            lines += [records_table([{"": k, **r} for k, r in value.items()]), ""]
    return "\n".join(lines)


def suites_page(results: str = RESULTS) -> tuple[str, list[str]]:
    """The quick and full suites (tables from ``bench.run.markdown``) and the plots they reference."""
    from bench.run import markdown

    lines = ["# Benchmark suites", "",
             "Generated at build time from `bench/results/full.json` and `bench/results/quick.json`, written by "
             "`python -m bench.run --suite quick|full`. Tasks: Gaussian and motion deblurring (noise 0.01), 4× "
             "super-resolution, 50 % random and box inpainting, denoising at 25/255, MRI 4×/8× and CT 30/60 views "
             "on a Shepp–Logan phantom; every compatible sampler at several step budgets next to the classical "
             "baselines on the same degraded inputs. What the columns mean and how to reproduce: "
             "[About the benchmarks](index.md).", ""]
    images = []
    for suite in SUITES:
        path = os.path.join(results, f"{suite}.json")
        if not os.path.exists(path):
            continue
        data = load_result(path)
        lines += [f"## Suite `{suite}`", "", markdown(data, path), ""]
        plots = sorted(f for f in os.listdir(results) if f.startswith(f"{suite}_") and f.endswith(".png"))
        if plots:
            lines += [f"### PSNR against NFE ({suite})", ""]
            lines += [f"![{p[len(suite) + 1:-4]}](plots/{p}){{ width=\"32%\" }}" for p in plots] + [""]
            images += plots
    return "\n".join(lines), images


def measurements_page(results: str = RESULTS) -> str:
    """Every other results file in ``bench/results``, rendered generically (a new benchmark appears by itself)."""
    lines = ["# Other measurements", "",
             "Every other JSON file in `bench/results/`, generated at build time; the script that wrote each one "
             "is named in [About the benchmarks](index.md).", ""]
    for name in sorted(os.listdir(results)):
        stem, ext = os.path.splitext(name)
        if ext != ".json" or stem in SUITES:
            continue
        lines.append(result_section(stem, load_result(os.path.join(results, name))))
    return "\n".join(lines)


def summary_table(path: str = os.path.join(RESULTS, "task_defaults.json")) -> str:
    """Per imaging case: what ``restore TASK`` does by default (its measured default sampler and steps)
    against the best classical baseline, on the held-out validation crops of ``bench.task_defaults``
    (README summary)."""
    from restore_imaging.tasks import GAUSSIAN_DEBLUR_DEFAULT, HOLES_INPAINT_DEFAULT, TASK_DEFAULTS

    from bench.task_defaults import CASES
    from restore.tasks import get_task

    data = load_result(path)
    rows = data["choice"]["table"]
    baselines = data["choice"]["per_case"]
    task_of = {c.name: c.task for c in CASES}
    names = {r["image"] for r in data["runs"]}
    images = " and ".join(f"{sum(n.startswith(kind) for n in names)} {kind}" for kind in ("gray", "rgb"))
    lines = [f"Held-out validation crops ({images}, {data['side']}²; `{os.path.relpath(path, ROOT)}`, "
             f"{data['machine']['date']}):", "",
             "| case | default | PSNR / SSIM | CPU s at 256² | best classical | PSNR / SSIM | margin |",
             "|---|---|---|---|---|---|---|"]
    defaults = {case: TASK_DEFAULTS[task] for case, task in task_of.items()}
    defaults["deblur-gaussian"] = GAUSSIAN_DEBLUR_DEFAULT  # restore deblur picks by the kernel's kind
    defaults["inpaint-box"] = HOLES_INPAINT_DEFAULT  # restore inpaint by the mask's
    for case, sampler_steps in defaults.items():
        sampler, steps = sampler_steps
        default = [r for r in rows if r["case"] == case and r["sampler"] == sampler and r["steps"] == (steps or 1)]
        classical = baselines.get(case, {}).get("baselines", [])
        if not default or not classical:
            continue
        d, c = default[0], max(classical, key=lambda b: b["psnr"])
        # a sampler without steps is described by the task's options for it (denoising: transforms=8)
        options = {k: v for k, v in get_task(task_of[case]).sampler_defaults.get(sampler, {}).items() if k != "steps"}
        how = f" {steps} steps" if steps else "".join(f" {k}={v}" for k, v in options.items())
        lines.append(f"| {case} | `{sampler}`{how}" +
                     f" | {d['psnr']:.2f} / {d['ssim']:.3f} | {d['est_256']:.0f} | {c['method']} | "
                     f"{c['psnr']:.2f} / {c['ssim']:.3f} | {d['psnr'] - c['psnr']:+.2f} dB |")
    return "\n".join(lines)


def readme_summary(readme: str = README) -> str:
    """The summary block currently in the README (between the markers)."""
    text = open(readme).read()
    return text.split(SUMMARY_START, 1)[1].split(SUMMARY_END, 1)[0].strip()


def write_readme_summary(readme: str = README) -> None:
    text = open(readme).read()
    head, rest = text.split(SUMMARY_START, 1)
    tail = rest.split(SUMMARY_END, 1)[1]
    tmp = readme + ".partial"
    with open(tmp, "w") as f:
        f.write(f"{head}{SUMMARY_START}\n{summary_table()}\n{SUMMARY_END}{tail}")
    os.replace(tmp, readme)


# ---------------------------------------------------------------------------------------------- gallery

GALLERY = os.path.join(ROOT, "docs", "assets", "gallery")


def gallery_page(folder: str = GALLERY) -> str:
    """The gallery page from ``docs/assets/gallery/gallery.json`` (written by ``docs/gallery.py``)."""
    index = load_result(os.path.join(folder, "gallery.json"))
    lines = ["# Gallery", "",
             "Each strip is what `restore TASK INPUT --simulate --preview --samples N` writes for your own image: "
             "the clean input, its degraded version, the restored result and the per-pixel standard deviation "
             "of N posterior samples (bright = the prior is unsure), with PSNR/SSIM against the clean input. "
             "Made by `python docs/gallery.py` with the default prior and sampler of each task, seed 0, on the "
             "CPU; the inputs are 128-pixel crops of `sample_images/`, matplotlib's MRI slice `s1045`, pydicom's "
             "`CT_small` (both held out of training) and a Shepp–Logan volume. See [Preview strips](howto/preview.md).",
             ""]
    for name, e in index.items():
        m = e.get("metrics", {})
        score = (f"PSNR {m['psnr_input']:.2f} → {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}" if "psnr_input" in m
                 else f"PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}" if "psnr" in m else "")
        lines += [f"## {name}", "", f"![{e['caption']}](assets/gallery/{e['image']})", "",
                  f"{e['caption']}. {score}; prior `{e['prior']}`, sampler `{e['sampler']}`, {e['nfe']} NFE, "
                  f"{e['seconds']} s.", "", "```bash", e["command"], "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ build

def generate(open_file) -> None:
    """Write every generated page through ``open_file(path, mode)`` (``mkdocs_gen_files.open`` in a build)."""
    import restore

    with open_file("reference/cli.md", "w") as f:
        f.write(cli_page())
    with open_file("reference/samplers/index.md", "w") as f:
        f.write(sampler_index())
    for comp in restore.components("sampler"):
        with open_file(f"reference/samplers/{comp.name}.md", "w") as f:
            f.write(sampler_page(comp.name))
    text, images = suites_page()
    with open_file("benchmarks/suites.md", "w") as f:
        f.write(text)
    for name in images:
        with open(os.path.join(RESULTS, name), "rb") as src, open_file(f"benchmarks/plots/{name}", "wb") as f:
            f.write(src.read())
    with open_file("benchmarks/measurements.md", "w") as f:
        f.write(measurements_page())
    with open_file("gallery.md", "w") as f:
        f.write(gallery_page())


def sampler_nav() -> list[str]:
    import restore

    return [c.name for c in restore.components("sampler")]


if __name__ == "__main__":
    if sys.argv[1:] != ["--readme"]:
        sys.exit("usage: python docs/gen_ref.py --readme   (the pages are written by `mkdocs build`)")
    write_readme_summary()
    print(f"updated the summary table in {README}")

"""The documentation: its Python examples run as written, its generated reference follows the code, the
README's summary follows the benchmark JSON, and ``--preview`` strips show what was written."""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import restore
from restore.cli import main
from restore.preview import Panel, layout, preview_path, render_strip, strip_panels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
MARKER = "<!-- runnable -->"


def load_gen_ref():
    spec = importlib.util.spec_from_file_location("gen_ref", os.path.join(DOCS, "gen_ref.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runnable_blocks(path: str) -> list[str]:
    """The ```python blocks that directly follow a ``<!-- runnable -->`` line."""
    text = open(path, encoding="utf-8").read()
    return re.findall(re.escape(MARKER) + r"\s*\n```python\n(.*?)\n```", text, flags=re.S)


def doc_pages() -> list[str]:
    pages = []
    for folder, _, files in os.walk(DOCS):
        pages += [os.path.relpath(os.path.join(folder, f), DOCS) for f in files if f.endswith(".md")]
    return sorted(p for p in pages if runnable_blocks(os.path.join(DOCS, p)))


def test_docs_have_runnable_examples():
    assert len(doc_pages()) >= 8, doc_pages()
    for page in doc_pages():  # a marker must sit right above a python block, or the example silently stops running
        text = open(os.path.join(DOCS, page), encoding="utf-8").read()
        assert text.count(MARKER) == len(runnable_blocks(os.path.join(DOCS, page))), page


@pytest.mark.parametrize("page", doc_pages())
def test_doc_examples_run(page, tmp_path, monkeypatch):
    """Each page's runnable blocks run in order in one namespace, from a folder with ``sample_images/``."""
    os.symlink(os.path.join(ROOT, "sample_images"), tmp_path / "sample_images")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(runnable_blocks(os.path.join(DOCS, page))):
        exec(compile(block, f"{page}[{i}]", "exec"), namespace)  # noqa: S102 - the docs' own examples


# --------------------------------------------------------------------------------- generated reference

def test_sampler_pages_show_every_config_default():
    gen_ref = load_gen_ref()
    for comp in restore.components("sampler"):
        cls = comp.load()
        page = gen_ref.sampler_page(comp.name)
        config = getattr(cls, "Config", None)
        if config is None:
            continue
        for f in dataclasses.fields(config):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            row = f"| `{f.name}` | `{gen_ref._cell(gen_ref.format_default(default))}` |"
            assert row in page, f"{comp.name}: {row!r} missing from its generated page"


def test_sampler_page_follows_a_changed_default():
    """Change one default of DDS's config: the generated table changes with it, at that row only."""
    gen_ref = load_gen_ref()
    dds = restore.components("sampler")
    cls = next(c for c in dds if c.name == "dds").load()
    fields = [(f.name, f.type, dataclasses.field(default=(12 if f.name == "cg_iters" else f.default)))
              for f in dataclasses.fields(cls.Config)]
    changed = dataclasses.make_dataclass("DDSConfig", fields, frozen=True)
    changed.__doc__, changed.__module__ = cls.Config.__doc__, cls.Config.__module__
    fake = type("DDS", (cls,), {"Config": changed, "__module__": cls.__module__})
    before, after = gen_ref.sampler_page("dds"), gen_ref.sampler_page("dds", cls=fake)
    diff = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(diff) == 1 and diff[0][0].startswith("| `cg_iters` | `5` |") and diff[0][1].startswith("| `cg_iters` | `12` |")


def test_attribute_docs_read_the_config_docstrings():
    gen_ref = load_gen_ref()
    cls = next(c for c in restore.components("sampler") if c.name == "dds").load()
    docs = gen_ref.attribute_docs(cls.Config)
    assert docs["cg_iters"].startswith("CG iterations") and "r_k = s_k / a_k" in docs["gamma_rule"]


def test_cli_page_lists_every_command_and_the_preview_flag():
    gen_ref = load_gen_ref()
    page = gen_ref.cli_page()
    for name in ("deblur", "super-resolve", "inpaint", "denoise", "mri", "ct", "batch", "list", "train"):
        assert f"## `restore {name}`" in page, name
    assert "`--preview`" in page and "`--kernel <str>`" in page


def test_readme_summary_matches_the_benchmark_json():
    gen_ref = load_gen_ref()
    assert gen_ref.readme_summary() == gen_ref.summary_table(), "run: python docs/gen_ref.py --readme"


def test_every_results_file_renders():
    gen_ref = load_gen_ref()
    page = gen_ref.measurements_page()
    stems = [os.path.splitext(f)[0] for f in os.listdir(gen_ref.RESULTS) if f.endswith(".json")]
    for stem in stems:
        if stem not in gen_ref.SUITES:
            assert f"## `{stem}`" in page


def test_mkdocs_nav_points_at_existing_pages():
    """Hand-written pages named in mkdocs.yml exist (generated ones are made by gen_ref at build time)."""
    generated = {"reference/cli.md", "reference/samplers/index.md", "benchmarks/suites.md",
                 "benchmarks/measurements.md", "gallery.md"}
    text = open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8").read()
    nav = text.split("\nnav:", 1)[1]
    for page in re.findall(r"([\w/.-]+\.md)", nav):
        assert page in generated or os.path.exists(os.path.join(DOCS, page)), page


# ------------------------------------------------------------------------------------------ --preview

def _write(path, array: np.ndarray, dtype: str):
    meta = {"dtype": dtype}
    restore.write(str(path), restore.Image(torch.from_numpy(array).float(), meta))


def _panel(strip: np.ndarray, box) -> np.ndarray:
    x, y, w, h = box
    return strip[y:y + h, x:x + w]


@pytest.mark.parametrize("kind", ["gray", "colour", "16-bit"])
def test_preview_strip_with_simulate(kind, tmp_path):
    """The strip has clean | degraded | restored | std; the clean and restored panels are the input and
    the written output, enlarged 4× by pixel replication (64×48 shown at 256 rows)."""
    g = torch.Generator().manual_seed(0)
    channels = 3 if kind == "colour" else 1
    clean = torch.rand(1, channels, 64, 48, generator=g).numpy()
    inp, out = tmp_path / "in.png", tmp_path / "out.png"
    _write(inp, clean, "uint16" if kind == "16-bit" else "uint8")
    assert (PILImage.open(inp).mode in ("I;16", "I")) == (kind == "16-bit")
    # circular keeps the restored frame at the input's size (valid restores only the observed centre)
    code = main(["deblur", str(inp), "-o", str(out), "--simulate", "--preview", "--samples", "2", "--steps", "3",
                 "--prior", "stationary-gaussian", "--quiet", "--boundary", "circular"])
    assert code == 0
    strip = np.asarray(PILImage.open(preview_path(str(out))).convert("RGB")).astype(int)
    panels = [Panel("clean", torch.zeros(1, 1, 64, 48)), Panel("degraded", torch.zeros(1, 1, 64, 48)),
              Panel("restored", torch.zeros(1, 1, 64, 48)), Panel("std", torch.zeros(1, 1, 64, 48), colormap=True)]
    size, boxes = layout(panels, height=256, title="t")
    assert strip.shape[:2] == (size[1], size[0])

    def shown(x: np.ndarray) -> np.ndarray:
        rgb = np.repeat(x[0], 3, 0) if x.shape[1] == 1 else x[0]
        return np.repeat(np.repeat(np.round(rgb.transpose(1, 2, 0) * 255), 4, 0), 4, 1)

    written = restore.read(str(out)).data.numpy()
    ref = restore.read(str(inp)).data.numpy()
    assert np.abs(_panel(strip, boxes[0]) - shown(ref)).max() <= 1  # rounding of the 8-bit display only
    assert np.abs(_panel(strip, boxes[2]) - shown(written)).max() <= 1
    std = _panel(strip, boxes[3])
    assert (std[..., 0] != std[..., 2]).any()  # drawn in colour, not gray


def test_preview_without_simulate_shows_degraded_restored_std(tmp_path):
    """Without --simulate the clean image is unknown: degraded | restored | std, and no error."""
    img = torch.rand(1, 1, 64, 48, generator=torch.Generator().manual_seed(1)).numpy()
    inp, out = tmp_path / "blurred.png", tmp_path / "out.png"
    _write(inp, img, "uint8")
    assert main(["deblur", str(inp), "-o", str(out), "--preview", "--samples", "2", "--steps", "3",
                 "--prior", "stationary-gaussian", "--quiet"]) == 0
    strip = np.asarray(PILImage.open(preview_path(str(out))).convert("RGB")).astype(int)
    panels = [Panel("degraded", torch.zeros(1, 1, 64, 48)), Panel("restored", torch.zeros(1, 1, 64, 48)),
              Panel("std", torch.zeros(1, 1, 64, 48), colormap=True)]
    size, boxes = layout(panels, height=256, title="t")
    assert strip.shape[:2] == (size[1], size[0])
    degraded = np.repeat(np.repeat(np.round(restore.read(str(inp)).data.numpy()[0, 0] * 255), 4, 0), 4, 1)
    assert np.abs(_panel(strip, boxes[0])[..., 0] - degraded).max() <= 1


def test_preview_existing_file_is_a_one_line_error(tmp_path, capsys):
    img = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2)).numpy()
    inp, out = tmp_path / "x.png", tmp_path / "out.png"
    _write(inp, img, "uint8")
    open(preview_path(str(out)), "w").close()
    assert main(["deblur", str(inp), "-o", str(out), "--preview", "--steps", "2", "--prior", "stationary-gaussian",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preview" in err[0] and "--overwrite" in err[0]
    assert not out.exists()  # checked before any work


def test_strip_of_a_volume_and_complex_data_renders():
    """Volumes show their middle slice and complex images their magnitude (CT/MRI previews)."""
    vol = torch.zeros(1, 1, 5, 16, 16)
    vol[:, :, 2] = 1.0
    cplx = torch.full((1, 1, 16, 16), 0.6 + 0.8j, dtype=torch.complex64)  # magnitude 1
    panels = strip_panels(vol, cplx, std=torch.zeros(1, 1, 5, 16, 16), samples=2)
    image = np.asarray(render_strip(panels, height=32))
    _, boxes = layout(panels, height=32)
    assert (_panel(image, boxes[0]) == 255).all() and (_panel(image, boxes[1]) == 255).all()


def test_degraded_view_of_non_image_measurements():
    """A sinogram is shown as its FBP, a low-resolution image enlarged by pixel replication."""
    from restore.preview import degraded_view
    from restore.phantoms import shepp_logan_2d

    x = shepp_logan_2d(32)
    ct = restore.operator("ct-parallel", size=32, views=16)
    shown, note = degraded_view(ct(x), ct, tuple(x.shape))
    assert shown.shape == x.shape and "A⁺y" in note
    assert torch.allclose(shown, ct.initial_estimate(ct(x)).clamp(0, 1))
    small = x[..., ::4, ::4]
    shown, note = degraded_view(small, None, tuple(x.shape))
    assert torch.equal(shown, small.repeat_interleave(4, -2).repeat_interleave(4, -1))

"""Build the documentation's gallery: one ``clean | degraded | restored | per-pixel std`` strip per task.

Each strip is what ``restore TASK INPUT --simulate --preview --samples N`` writes for the user's own
image (the same code, ``restore.preview.run_with_preview``), on 128-pixel crops of ``sample_images/``,
matplotlib's MRI slice ``s1045`` and pydicom's ``CT_small`` (held out of the priors' training), and a
Shepp–Logan volume. Writes ``docs/assets/gallery/*.png`` (palette PNGs, a few tens of KB each) and
``gallery.json`` (command, PSNR/SSIM, prior, sampler, NFE and time per strip), from which the gallery page
is generated. Runs on the CPU in a few minutes::

    python docs/gallery.py                 # all strips
    python docs/gallery.py deblur ct       # only some
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "assets", "gallery")
for path in (ROOT, os.path.join(ROOT, "plugins")):
    if path not in sys.path:
        sys.path.insert(0, path)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import restore  # noqa: E402
from restore.preview import run_with_preview  # noqa: E402
from restore.tasks import RunSettings  # noqa: E402

SAMPLES = 3  # posterior samples behind the std map
# Strips with a std map need a stochastic sampler; several task defaults (pnp-hqs, tweedie) are deterministic.
SAMPLER = "dds"

# name: (task, image source, crop (top, left, side) or None, task options, settings, caption)
ENTRIES = {
    "deblur": ("deblur", "astronaut.png", (20, 70, 128), {"kernel": "gaussian:2.0"}, {},
               "Gaussian blur σ = 2 px, noise 0.01"),
    "deblur-motion": ("deblur", "coffee.png", (60, 90, 128), {"kernel": "motion:15:30"}, {},
                      "motion blur, 15 px at 30°, noise 0.01"),
    "super-resolve": ("super-resolve", "chelsea.png", (40, 80, 128), {"scale": 4}, {},
                      "4× bicubic downsampling, noise 0.01"),
    "inpaint": ("inpaint", "camera.png", (20, 60, 128), {"mask": "random:0.5"}, {},
                "50 % of the pixels missing (grayscale)"),
    "denoise": ("denoise", "astronaut.png", (120, 100, 128), {}, {"samples": 1, "sampler": "tweedie"},
                "Gaussian noise 25/255; one-step Tweedie posterior mean (deterministic: no std map)"),
    "mri": ("mri", "s1045", None, {"acceleration": 4.0, "center_fraction": 0.08}, {},
            "MRI 4×, 8 simulated coils, fastMRI random mask (matplotlib's s1045 slice, 128²)"),
    "ct": ("ct", "ct_small", None, {"views": 30}, {},
           "CT, 30 parallel-beam views (pydicom's CT_small slice, 128²)"),
    "volume": ("ct", "shepp-logan-3d", None, {"views": 8, "chunk": 8}, {"samples": 1, "steps": 30, "sampler": "dds-3d"},
               "CT volume 16×64², 8 views per slice, dds-3d with TV along z; the strip scores the middle slice it shows, the numbers below are over the whole volume"),
}


def source(name: str, crop, tmp: str) -> str:
    """The clean input written to ``tmp`` (a crop as PNG, a medical slice as 16-bit PNG, a volume as .npy)."""
    if name == "shepp-logan-3d":
        from restore.phantoms import shepp_logan_3d

        path = os.path.join(tmp, "volume.npy")
        np.save(path, shepp_logan_3d((16, 64, 64)).numpy().astype(np.float32))
        return path
    if name in ("s1045", "ct_small"):
        from bench import medical

        path = os.path.join(tmp, f"{name}.png")
        restore.write(path, restore.Image(medical.load_image(name, 128, disk=False), {"dtype": "uint16"}))
        return path
    img = restore.read(os.path.join(ROOT, "sample_images", name))
    top, left, side = crop
    path = os.path.join(tmp, name)
    restore.write(path, restore.Image(img.data[..., top:top + side, left:left + side], img.meta))
    return path


def build(names: list[str]) -> dict:
    os.makedirs(OUT, exist_ok=True)
    index_path = os.path.join(OUT, "gallery.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            task, src, crop, options, overrides, caption = ENTRIES[name]
            settings = RunSettings(seed=0, simulate=True, overwrite=True, samples=overrides.get("samples", SAMPLES),
                                   steps=overrides.get("steps"), sampler=overrides.get("sampler", SAMPLER))
            inp = source(src, crop, tmp)
            ext = ".npy" if inp.endswith(".npy") else ".png"
            start = time.perf_counter()
            report, _ = run_with_preview(task, inp, os.path.join(tmp, f"{name}_out{ext}"), settings, dict(options),
                                         height=160, palette=True, path=os.path.join(OUT, f"{name}.png"))
            flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items())
            steps = f" --steps {settings.steps}" if settings.steps else ""
            samples = f" --samples {settings.samples}" if settings.samples > 1 else ""
            index[name] = {
                "task": task, "caption": caption, "image": f"{name}.png", "input": src,
                "command": f"restore {task} INPUT {flags} --sampler {settings.sampler} --simulate --preview{samples}{steps}"
                .replace("  ", " "),
                "prior": report.prior, "sampler": report.sampler, "nfe": report.nfe,
                "seconds": round(time.perf_counter() - start, 1),
                "metrics": {k: round(v, 4) for k, v in report.metrics.items()},
                "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            }
            print(f"{name}: {index[name]['metrics']} in {index[name]['seconds']} s", flush=True)
            tmp_index = index_path + ".partial"
            with open(tmp_index, "w") as f:
                json.dump({k: index[k] for k in ENTRIES if k in index}, f, indent=1, ensure_ascii=False)
            os.replace(tmp_index, index_path)
    return index


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(ENTRIES)
    unknown = [n for n in wanted if n not in ENTRIES]
    if unknown:
        sys.exit(f"unknown gallery entries {unknown}; known: {', '.join(ENTRIES)}")
    build(wanted)

"""Shared by the fuzz tests, the bad-file corpus script and bench/fuzz.py: small valid seed files of every
format restore reads, the CLI command that reads each kind, and the classification of one run.

A run is ``ok`` (exit 0, the output exists), ``clean`` (exit 2, exactly one ``error:`` line on stderr, no
output or partial file) or ``bad`` (anything else: a traceback, another exit code, several lines, a file
left behind) — the fuzz goal is zero ``bad``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

FAST = ["--prior", "stationary-gaussian", "--device", "cpu", "-q", "--max-pixels", "1000000"]


def _png(arr: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((16, 16, 3)) * 255).astype(np.uint8)


def seed_png() -> bytes:
    return _png(_image(), "PNG")


def seed_jpeg() -> bytes:
    return _png(_image(), "JPEG", quality=90)


def seed_bmp() -> bytes:
    return _png(_image(), "BMP")


def seed_webp() -> bytes:
    return _png(_image(), "WEBP", lossless=True)


def seed_tiff() -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, _image())
    return buf.getvalue()


def seed_nifti() -> bytes:
    import nibabel

    vol = np.random.default_rng(1).random((8, 8, 4)).astype(np.float32)
    return nibabel.Nifti1Image(vol, np.eye(4)).to_bytes()


def seed_dicom() -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


def seed_h5() -> bytes:
    import h5py

    rng = np.random.default_rng(2)
    kspace = (rng.standard_normal((2, 16, 16)) + 1j * rng.standard_normal((2, 16, 16))).astype(np.complex64)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("kspace", data=kspace)
            f.attrs["acquisition"] = "CORPD_FBK"
        return Path(path).read_bytes()


def seed_latents() -> bytes:
    import torch
    from safetensors.torch import save

    from restore.inversion import FORMAT

    meta = {"format": FORMAT, "sampler": "bdia", "config": json.dumps({"steps": 2}), "fingerprint": "0",
            "schedule": "linear", "prior": "stationary-gaussian", "shape": json.dumps([1, 3, 8, 8]),
            "dtype": "float32", "nfe": "2", "image_meta": "{}"}
    return save({"z_top": torch.zeros(1, 3, 8, 8)}, metadata=meta)


def seed_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(3).random((16, 16)).astype(np.float32))
    return buf.getvalue()


def seed_kernel() -> bytes:
    x = np.exp(-np.linspace(-2, 2, 5) ** 2)
    return _png((255 * np.outer(x, x) / np.outer(x, x).max()).astype(np.uint8), "PNG")


def seed_mask() -> bytes:
    m = np.full((16, 16), 255, np.uint8)
    m[4:8, 4:8] = 0
    return _png(m, "PNG")


# kind -> (file extension, seed bytes, argv builder(file, good_image, out_dir) -> (argv, output path))
def _image_cmd(f, good, out):
    return ["deblur", f, "--kernel", "gaussian:0.5", "--steps", "1", "-o", f"{out}/o.png", *FAST], f"{out}/o.png"


def _volume_cmd(f, good, out):
    return ["denoise", f, "-o", f"{out}/o.nii.gz", *FAST], f"{out}/o.nii.gz"


KINDS: dict[str, tuple[str, Callable[[], bytes], Callable]] = {
    "png": (".png", seed_png, _image_cmd),
    "jpeg": (".jpg", seed_jpeg, _image_cmd),
    "tiff": (".tif", seed_tiff, _image_cmd),
    "bmp": (".bmp", seed_bmp, _image_cmd),
    "webp": (".webp", seed_webp, _image_cmd),
    "nifti": (".nii", seed_nifti, _volume_cmd),
    "dicom": (".dcm", seed_dicom, _volume_cmd),
    "fastmri": (".h5", seed_h5, lambda f, g, o: (["mri", f, "--method", "zero-filled", "-o", f"{o}/o.h5", *FAST],
                                                f"{o}/o.h5")),
    "latents": (".safetensors", seed_latents,
                lambda f, g, o: (["reconstruct", f, "-o", f"{o}/o.png", "--prior", "stationary-gaussian",
                                  "--device", "cpu", "-q"], f"{o}/o.png")),
    "npy": (".npy", seed_npy, lambda f, g, o: (["ct", f, "--method", "fbp", "--views", "8", "-o", f"{o}/o.npy", *FAST],
                                             f"{o}/o.npy")),
    "kernel": (".png", seed_kernel, lambda f, g, o: (["deblur", g, "--kernel", f, "--steps", "1",
                                                      "-o", f"{o}/o.png", *FAST], f"{o}/o.png")),
    "mask": (".png", seed_mask, lambda f, g, o: (["inpaint", g, "--mask", f, "--steps", "1",
                                                  "-o", f"{o}/o.png", *FAST], f"{o}/o.png")),
}


def good_image(folder: str) -> str:
    path = os.path.join(folder, "good.png")
    if not os.path.exists(path):
        Path(path).write_bytes(seed_png())
    return path


def classify(kind: str, data: bytes, workdir: str) -> tuple[str, str]:
    """Run the CLI on ``data`` as a ``kind`` file in a fresh folder under ``workdir``; ``(verdict, detail)``."""
    from restore.cli import main

    ext, _, command = KINDS[kind]
    folder = tempfile.mkdtemp(dir=workdir)
    src = os.path.join(folder, f"input{ext}")
    Path(src).write_bytes(data)
    out = os.path.join(folder, "out")
    os.mkdir(out)
    argv, output = command(src, good_image(workdir), out)
    return run_cli(main, argv, output, out)


def run_cli(main, argv: list[str], output: str, out_dir: str) -> tuple[str, str]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is a failure we count
        return "bad", f"{type(exc).__name__} escaped main: {exc}"
    lines = [line for line in err.getvalue().splitlines() if line.strip() and not line.startswith("warning: plugin")]
    left = sorted(os.listdir(out_dir))
    if code == 0 and os.path.exists(output):
        return "ok", ""
    if code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and not left:
        return "clean", lines[0]
    return "bad", f"exit {code}, files {left}, stderr {err.getvalue()[:400]!r}"

"""Readers for every Pillow format, limits from headers, NaN/Inf, output safety (umask, links, full disk),
and the checks the CLI makes before any compute."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from restore.cli import main
from restore.errors import InvalidInputError, OutputExistsError
from restore.io import OutputError, check_output, max_pixels, read, write

QUICK = ["--prior", "stationary-gaussian", "--steps", "2", "--device", "cpu"]


def _rgb(h=24, w=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR declares width x height RGB but whose data is a few bytes (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("ext", [".bmp", ".webp", ".gif", ".ppm", ".tga", ".png", ".jpg", ".tif"])
def test_pillow_formats_read_and_write(tmp_path, ext):
    arr = _rgb()
    src = tmp_path / f"in{ext}"
    PILImage.fromarray(arr).save(src, **({"lossless": True} if ext == ".webp" else {}))
    img = read(src)
    assert img.data.shape == (1, 3, 24, 20)
    lossless = ext not in (".jpg", ".gif")
    if lossless:  # exact 8-bit values back
        assert np.array_equal(np.round(img.data[0].numpy().transpose(1, 2, 0) * 255).astype(np.uint8), arr)
    out = tmp_path / f"out{ext}"
    write(out, img)
    back = read(out)
    tol = 0 if lossless else 0.25  # gif palette / jpeg quantisation
    assert float((back.data - img.data).abs().max()) <= tol + 1e-6


def test_folder_of_bmps_in_batch(tmp_path):
    folder = tmp_path / "bmps"
    folder.mkdir()
    for i in range(2):
        PILImage.fromarray(_rgb(16, 16, i)).save(folder / f"p{i}.bmp")
    out = tmp_path / "out"
    assert main(["batch", "deblur", str(folder), "-o", str(out), "-q", *QUICK]) == 0
    assert sorted(p.name for p in out.glob("*.bmp")) == ["p0_deblur.bmp", "p1_deblur.bmp"]


def test_folder_given_to_a_single_image_task_has_its_own_message(tmp_path, capsys):
    assert main(["deblur", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "restore batch" in err and "supported" not in err


def test_missing_output_folder_is_reported_before_any_compute(tmp_path, capsys, monkeypatch):
    import restore.tasks

    PILImage.fromarray(_rgb()).save(tmp_path / "in.png")
    monkeypatch.setattr(restore.tasks, "run_task", lambda *a, **k: pytest.fail("compute started"))
    assert main(["deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "no" / "out.png")]) == 2
    assert "output folder" in capsys.readouterr().err
    assert main(["deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.xyz")]) == 2
    assert "no writer" in capsys.readouterr().err


def test_progress_shows_the_total_from_the_start(tmp_path, monkeypatch):
    import restore.cli.progress as progress

    seen = []
    real = progress.progress_bar

    def spy(description, enabled=None, total=None):
        seen.append(total)
        return real(description, enabled=False, total=total)

    monkeypatch.setattr(progress, "progress_bar", spy)
    PILImage.fromarray(_rgb()).save(tmp_path / "in.png")
    assert main(["deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--samples", "2", *QUICK]) == 0
    assert seen == [4]  # 2 steps x 2 samples, known before the prior loads


def test_super_resolve_simulate_reports_input_and_bicubic_psnr(tmp_path, capsys):
    PILImage.fromarray(_rgb(16, 16)).save(tmp_path / "in.png")
    assert main(["super-resolve", str(tmp_path / "in.png"), "--simulate", "--scale", "2",
                 "-o", str(tmp_path / "o.png"), *QUICK]) == 0
    err = capsys.readouterr().err
    assert "psnr_input" in err and "psnr_bicubic" in err


def test_pixel_limit_is_checked_from_the_header_and_overridable(tmp_path):
    bomb = tmp_path / "bomb.png"
    png_header_only(bomb, 10_000, 10_000)
    with pytest.raises(InvalidInputError, match=r"10000x10000 = 100.0 million pixels.*--max-pixels"):
        read(bomb)
    with max_pixels(10**9), pytest.raises(InvalidInputError, match="cannot read"):
        read(bomb)  # allowed past the limit, then found damaged: still a one-line error
    small = tmp_path / "small.png"
    PILImage.fromarray(_rgb(20, 20)).save(small)
    with max_pixels(399), pytest.raises(InvalidInputError, match="over the limit"):
        read(small)
    with max_pixels(400):
        assert read(small).data.shape[-2:] == (20, 20)


def test_nan_inputs_and_results_are_refused(tmp_path):
    import tifffile

    arr = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    arr[2, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", arr)
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        read(tmp_path / "nan.tif")
    np.save(tmp_path / "inf.npy", np.full((1, 8, 8), np.inf, np.float32))
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        read(tmp_path / "inf.npy")
    with pytest.raises(OutputError, match="NaN"):
        write(tmp_path / "o.png", torch.full((1, 3, 4, 4), float("nan")))
    assert list(tmp_path.glob("o.png*")) == [] and list(tmp_path.glob(".o.png*")) == []


def test_nan_during_sampling_names_the_step():
    from restore.cli.guard import NumericalError, numerical_guard

    calls = []
    net = torch.nn.Conv2d(3, 3, 1)
    with numerical_guard(lambda *a: calls.append(a)) as step:
        net(torch.zeros(1, 3, 4, 4))
        step(1, 5, 1)
        net(torch.full((1, 3, 4, 4), float("inf")) * 0)  # inf * 0 = NaN
        with pytest.raises(NumericalError, match="step 2 of 5.*Conv2d"):
            step(2, 5, 2)
    assert calls == [(1, 5, 1)]


def test_outputs_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write(tmp_path / "a.png", torch.zeros(1, 3, 4, 4))
        os.umask(0o077)
        write(tmp_path / "b.png", torch.zeros(1, 3, 4, 4))
    finally:
        os.umask(old)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.png").stat().st_mode & 0o777 == 0o600


def test_symlinks_in_the_output_folder_are_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "out.png"
    link.symlink_to(victim)
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="symbolic link"):
            write(link, torch.zeros(1, 3, 4, 4), overwrite=overwrite)
    assert victim.read_text() == "keep" and link.is_symlink()
    (tmp_path / "exists.png").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        check_output(tmp_path / "exists.png", overwrite=False)


def test_full_disk_leaves_no_partial_file(tmp_path):
    # A file-size limit makes the write fail half-way exactly as a full disk does (EFBIG instead of ENOSPC).
    code = f"""
import resource, signal, sys, torch
sys.path[:0] = {[p for p in sys.path if p]!r}
from restore.errors import RestoreError
from restore.io import match_extension, write
match_extension("writer", "x.png").build()  # plugins loaded before the limit
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
try:
    write({str(tmp_path / 'big.png')!r}, torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
except RestoreError as exc:
    print(type(exc).__name__, exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.stdout.startswith("OutputError") and "nothing was written" in proc.stdout, proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_metadata_cannot_direct_a_write_outside_the_output_folder(tmp_path):
    """DICOM tags and HDF5 attributes are written as data, never used to name files."""
    pydicom = pytest.importorskip("pydicom")
    pytest.importorskip("h5py")
    from restore.batch.runner import output_path
    from restore.tasks import get_task

    from pydicom.data import get_testdata_file

    series = tmp_path / "series"
    series.mkdir()
    for i in range(2):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.PatientName = ds.SeriesDescription = ds.PatientID = "../../escaped"
        ds.InstanceNumber, ds.ImagePositionPatient = i + 1, [0, 0, float(i)]
        ds.save_as(series / f"{i}.dcm")
    img = read(str(series) + "/")
    out = tmp_path / "out"
    out.mkdir()
    write(str(out / "restored") + "/", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "series"]
    assert sorted(p.name for p in (out / "restored").iterdir()) == ["slice_0000.dcm", "slice_0001.dcm"]
    task = get_task("deblur")
    assert Path(output_path(str(tmp_path / "..evil.png"), task, str(out))).parent == out


def test_large_input_gets_an_estimate_and_a_refusal_when_memory_will_not_fit(tmp_path, capsys, monkeypatch):
    import restore.cli.estimate as est

    big = tmp_path / "big.png"
    png_header_only(big, 3000, 2000)  # only the header is read by the estimate
    monkeypatch.setattr(est, "available_mb", lambda: 1e9)
    est.check_resources(str(big), "dds", 100, quiet=False)
    line = capsys.readouterr().err
    assert line.startswith("estimate: 2000x3000 input, 100 network evaluations") and "GB" in line
    mb, seconds = est.estimate(6_000_000, 100, "dds")
    assert mb > est.estimate(1_000_000, 100, "dds")[0] and seconds == pytest.approx(100 * est.estimate(6e6, 1, "dds")[1])
    monkeypatch.setattr(est, "available_mb", lambda: mb / 2)
    with pytest.raises(est.InsufficientMemoryError, match="needs ~.* GB.*--no-memory-check"):
        est.check_resources(str(big), "dds", 100, quiet=True)
    est.check_resources(str(big), "dds", 100, quiet=True, memory_check=False)
    small = tmp_path / "small.png"
    PILImage.fromarray(_rgb()).save(small)
    est.check_resources(str(small), "dds", 100, quiet=False)
    assert capsys.readouterr().err == ""

"""PNG / JPEG / TIFF round trips keep dtype, range and alpha; broken files give one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage

import restore


def _png(path, arr):
    import png

    H, W = arr.shape[:2]
    C = arr.shape[2] if arr.ndim == 3 else 1
    writer = png.Writer(W, H, greyscale=C in (1, 2), alpha=C in (2, 4), bitdepth=arr.dtype.itemsize * 8)
    with open(path, "wb") as f:
        writer.write(f, arr.reshape(H, W * C))


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_is_exact(tmp_path, channels, dtype):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, np.iinfo(dtype).max + 1, size=(9, 7, channels), dtype=np.int64).astype(dtype)
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    _png(src, arr)
    img = restore.read(src)
    assert img.data.shape == (1, min(channels, 3), 9, 7) and img.meta["dtype"] == np.dtype(dtype).name
    assert ("alpha" in img.meta) == (channels == 4)
    restore.write(dst, img)
    assert np.array_equal(restore.read(dst).data.numpy(), img.data.numpy())
    import png

    _, _, rows, info = png.Reader(filename=str(dst)).asDirect()
    back = np.vstack([np.asarray(r) for r in rows]).reshape(9, 7, channels)
    assert info["bitdepth"] == np.dtype(dtype).itemsize * 8 and np.array_equal(back, arr)


def test_tiff_16bit_and_float_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    u16 = rng.integers(0, 65536, size=(8, 6, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", u16)
    restore.write(tmp_path / "b.tif", restore.read(tmp_path / "a.tif"))
    assert np.array_equal(tifffile.imread(tmp_path / "b.tif"), u16)
    f32 = (rng.standard_normal((8, 6)) * 100).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tiff", f32)
    img = restore.read(tmp_path / "f.tiff")
    assert float(img.data.min()) == 0.0 and float(img.data.max()) == 1.0
    restore.write(tmp_path / "g.tiff", img)
    assert np.allclose(tifffile.imread(tmp_path / "g.tiff"), f32, rtol=1e-5, atol=1e-4)


def test_jpeg_reads_as_rgb_in_unit_range(tmp_path):
    PILImage.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "a.jpg")
    img = restore.read(tmp_path / "a.jpg")
    assert img.data.shape == (1, 3, 8, 8) and abs(float(img.data.mean()) - 200 / 255) < 0.01


def test_a_camera_orientation_tag_is_applied_on_reading(tmp_path):
    """A phone photo stored landscape with "rotate 90° clockwise to display" is restored as it is seen: the
    output (written without the tag) used to come out sideways."""
    arr = np.zeros((16, 24, 3), np.uint8)
    arr[:4, :4] = 255  # a white corner, top left as stored
    exif = PILImage.Exif()
    exif[0x0112] = 6
    PILImage.fromarray(arr).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=100)
    img = restore.read(tmp_path / "phone.jpg")
    assert img.data.shape == (1, 3, 24, 16)  # displayed portrait
    assert float(img.data[0, :, :4, -4:].mean()) > 0.9  # the corner is top right once displayed
    restore.write(tmp_path / "out.jpg", img)
    with PILImage.open(tmp_path / "out.jpg") as out:
        assert out.size == (16, 24) and out.getexif().get(0x0112) in (None, 1)


def test_truncated_and_missing_files_are_clear_errors(tmp_path):
    PILImage.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(restore.RestoreError, match="cut.png"):
        restore.read(tmp_path / "cut.png")
    with pytest.raises(restore.RestoreError, match="does not exist"):
        restore.read(tmp_path / "missing.png")
    with pytest.raises(restore.RestoreError, match="supported extensions"):
        restore.read(tmp_path / "file.xyz")


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    img = restore.Image(torch.rand(1, 3, 4, 4))
    restore.write(tmp_path / "o.png", img)
    with pytest.raises(restore.RestoreError, match="--overwrite"):
        restore.write(tmp_path / "o.png", img, overwrite=False)
    # A writer that fails leaves neither the output nor its temporary file behind.
    bad = restore.Image(torch.rand(2, 3, 4, 4))
    with pytest.raises(restore.RestoreError):
        restore.write(tmp_path / "bad.png", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]

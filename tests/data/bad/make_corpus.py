"""Write the fixed corpus of malformed inputs into this folder (run: python tests/data/bad/make_corpus.py).

Every file must give a one-line error, exit code 2 and no output file; tests/test_fuzz.py checks that
through the CLI command for its kind (the file name starts with the kind: ``png-truncated.png``).
"""
from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for fuzzing.py

from fuzzing import KINDS  # noqa: E402


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes, depth: int = 8, color: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def corpus() -> dict[str, bytes]:
    seed = {kind: spec[1]() for kind, spec in KINDS.items()}
    png, jpg, tif, bmp, webp = seed["png"], seed["jpeg"], seed["tiff"], seed["bmp"], seed["webp"]
    nii, dcm, h5, lat, npy = seed["nifti"], seed["dicom"], seed["fastmri"], seed["latents"], seed["npy"]
    flip = lambda b, i: b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:]  # noqa: E731
    files = {
        "png-empty.png": b"",
        "png-magic-only.png": png[:8],
        "png-truncated-half.png": png[: len(png) // 2],
        "png-bad-crc.png": flip(png, 29),
        "png-bomb-10000x10000.png": _png(10_000, 10_000, zlib.compress(b"\0" * 64)),
        "png-zero-width.png": _png(0, 16, zlib.compress(b"\0" * 64)),
        "png-bad-bitdepth.png": _png(4, 4, zlib.compress(b"\0" * 64), depth=7),
        "png-not-zlib.png": _png(4, 4, b"not zlib data at all"),
        "png-text.png": b"hello, I am not an image\n",
        "jpeg-truncated.jpg": jpg[: len(jpg) // 3],
        "jpeg-soi-only.jpg": b"\xff\xd8",
        "jpeg-garbage-after-soi.jpg": b"\xff\xd8" + bytes(range(256)) * 4,
        "tiff-truncated.tif": tif[: len(tif) // 2],
        "tiff-bad-ifd-offset.tif": tif[:4] + struct.pack("<I", 0x7FFFFFF0) + tif[8:],
        "tiff-header-only.tif": b"II*\x00\x08\x00\x00\x00",
        "bmp-truncated.bmp": bmp[: len(bmp) // 2],
        "bmp-huge-declared.bmp": bmp[:18] + struct.pack("<ii", 100_000, 100_000) + bmp[26:],
        "bmp-bad-bpp.bmp": bmp[:28] + struct.pack("<H", 13) + bmp[30:],
        "webp-truncated.webp": webp[: len(webp) // 2],
        "webp-riff-only.webp": b"RIFF\x10\x00\x00\x00WEBPVP8L",
        "nifti-truncated.nii": nii[: len(nii) // 2],
        "nifti-header-only.nii": nii[:200],
        "nifti-bad-sizeof-hdr.nii": struct.pack("<i", 999) + nii[4:],
        "nifti-huge-dims.nii": nii[:40] + struct.pack("<8h", 3, 32767, 32767, 32767, 1, 1, 1, 1) + nii[56:],
        "dicom-truncated.dcm": dcm[: len(dcm) // 2],
        "dicom-preamble-only.dcm": dcm[:132],
        "dicom-not-dicom.dcm": b"DICM" * 64,
        "fastmri-truncated.h5": h5[: len(h5) // 2],
        "fastmri-not-hdf5.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
        "latents-truncated.safetensors": lat[: len(lat) // 2],
        "latents-huge-header.safetensors": struct.pack("<Q", 2**62) + lat[8:],
        "latents-bad-json.safetensors": struct.pack("<Q", 12) + b"{not json!!}",
        "latents-wrong-format.safetensors": _safetensors_with_meta({"format": "something-else"}),
        "latents-missing-keys.safetensors": _safetensors_with_meta({"format": _latents_format()}),
        "npy-truncated.npy": npy[: len(npy) // 2],
        "npy-bad-magic.npy": b"\x93NUMPX" + npy[6:],
        "npy-object-pickle.npy": _npy_object(),
        "npy-huge-shape.npy": _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"),
        "kernel-truncated.png": seed["kernel"][:40],
        "mask-text.png": b"0101\n1010\n",
    }
    return files


def _latents_format() -> str:
    from restore.inversion import FORMAT

    return FORMAT


def _safetensors_with_meta(meta: dict) -> bytes:
    import torch
    from safetensors.torch import save

    return save({"z_top": torch.zeros(1, 3, 8, 8)}, metadata=meta)


def _npy_header(header: str) -> bytes:
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\0" * 16


def _npy_object() -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def main() -> None:
    for old in HERE.iterdir():
        if old.name != "make_corpus.py" and old.is_file():
            old.unlink()
    files = corpus()
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    print(f"{len(files)} malformed files in {os.path.relpath(HERE)}")


if __name__ == "__main__":
    main()

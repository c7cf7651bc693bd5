"""fastMRI HDF5 files: read k-space (single- and multi-coil) and write reconstructions.

Reader -> :class:`restore.Image` with ``data`` the k-space ``(slices, coils, H, W)`` complex64 (single-coil
files get ``coils = 1``) and ``meta``:

* ``fastmri_multicoil``: bool; ``fastmri_encoded_size`` / ``fastmri_recon_size``: ``(x, y, z)`` from the
  ``ismrmrd_header`` XML (``None`` when absent); ``fastmri_header``: the raw XML string;
* ``fastmri_mask``: the ``mask`` dataset (length ``W``) when present (fastMRI test files);
* ``fastmri_target``: ``reconstruction_rss`` (multi-coil) or ``reconstruction_esc`` (single-coil)
  ``(slices, 1, h, w)`` when present; ``fastmri_attrs``: the file attributes (``acquisition``, ``max``,
  ``norm``, ``patient_id``, ``acceleration``, ``num_low_frequency`` …);
* ``fastmri_filename``: the file name (``restore mri`` seeds masks from it, as fastMRI does).

Writer: one ``.h5`` with dataset ``reconstruction`` ``(slices, h, w)`` float32 from a real
``(slices, 1, H, W)`` image, multiplied by ``meta["kspace_scale"]`` (set by ``restore mri``, back to
the k-space units) and centre-cropped to ``fastmri_recon_size`` when that is smaller (fastMRI's
evaluation size); the header and scalar attributes are copied.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import torch

from restore.errors import InvalidInputError, ShapeError, require
from restore.io import Image


def _h5py():
    return require("h5py", "medical")


def parse_header(xml: str) -> dict[str, tuple[int, int, int] | None]:
    """Encoded and recon matrix sizes ``(x, y, z)`` from an ISMRMRD header (namespaces ignored)."""
    out: dict[str, tuple[int, int, int] | None] = {"encoded_size": None, "recon_size": None}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidInputError(f"ismrmrd_header is not valid XML ({exc})") from None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    for enc in (e for e in root.iter() if local(e.tag) == "encoding"):
        for space, key in (("encodedSpace", "encoded_size"), ("reconSpace", "recon_size")):
            for node in (n for n in enc if local(n.tag) == space):
                for ms in (m for m in node if local(m.tag) == "matrixSize"):
                    vals = {local(v.tag): int(float(v.text)) for v in ms if v.text}
                    out[key] = (vals.get("x", 0), vals.get("y", 0), vals.get("z", 1))
        break
    return out


def read_fastmri(path: str) -> Image:
    """Read a fastMRI ``.h5`` file (see the module docstring)."""
    h5py = _h5py()
    name = os.path.basename(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InvalidInputError(f"cannot read '{path}': not an HDF5 file ({exc})") from None
    with f:
        if "kspace" not in f:
            raise InvalidInputError(f"'{name}' has no 'kspace' dataset (keys: {', '.join(sorted(f.keys())) or 'none'}); "
                                    f"expected a fastMRI file")
        ks = f["kspace"]
        if not np.issubdtype(ks.dtype, np.complexfloating):
            raise InvalidInputError(f"'{name}': kspace must be complex, got {ks.dtype}")
        if ks.ndim == 4:
            multicoil, k = True, np.asarray(ks[()])
        elif ks.ndim == 3:
            multicoil, k = False, np.asarray(ks[()])[:, None]
        elif ks.ndim == 2:
            multicoil, k = False, np.asarray(ks[()])[None, None]
        else:
            raise ShapeError(f"'{name}': kspace must be (slices, coils, H, W) or (slices, H, W), got {ks.shape}")
        meta: dict = {"fastmri_multicoil": multicoil, "fastmri_filename": name,
                      "fastmri_attrs": {k_: (v.item() if hasattr(v, "item") else v) for k_, v in f.attrs.items()}}
        header = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
        if isinstance(header, bytes):
            header = header.decode()
        meta["fastmri_header"] = header
        meta.update({f"fastmri_{k_}": v for k_, v in (parse_header(header) if header else
                                                      {"encoded_size": None, "recon_size": None}).items()})
        if "mask" in f:
            mask = np.asarray(f["mask"][()]).astype(np.float32).reshape(-1)
            if mask.shape[0] != k.shape[-1]:
                raise ShapeError(f"'{name}': mask has length {mask.shape[0]} but kspace has {k.shape[-1]} columns")
            meta["fastmri_mask"] = torch.from_numpy(mask)
        for key in ("reconstruction_rss", "reconstruction_esc"):
            if key in f:
                t = np.asarray(f[key][()], dtype=np.float32)
                if t.ndim == 2:
                    t = t[None]
                if t.ndim != 3 or t.shape[0] != k.shape[0]:
                    raise ShapeError(f"'{name}': {key} must be (slices, h, w) with {k.shape[0]} slices, got {t.shape}")
                meta["fastmri_target"] = torch.from_numpy(t)[:, None]
                meta["fastmri_target_key"] = key
                break
    return Image(torch.from_numpy(np.ascontiguousarray(k)).to(torch.complex64), meta)


def center_crop(x: np.ndarray, h: int, w: int) -> np.ndarray:
    H, W = x.shape[-2:]
    h, w = min(h, H), min(w, W)
    y0, x0 = (H - h) // 2, (W - w) // 2
    return x[..., y0:y0 + h, x0:x0 + w]


def write_fastmri(path: str, image: Image) -> None:
    """Write ``reconstruction`` ``(slices, h, w)`` float32 (see the module docstring)."""
    h5py = _h5py()
    x = image.data
    if x.is_complex():
        x = x.abs()
    if x.ndim != 4 or x.shape[1] != 1:
        raise ShapeError(f"a fastMRI reconstruction must be (slices, 1, H, W) real, got {tuple(x.shape)}")
    rec = x[:, 0].detach().cpu().double().numpy() * float(image.meta.get("kspace_scale", 1.0))
    size = image.meta.get("fastmri_recon_size")
    if size:
        rec = center_crop(rec, int(size[0]), int(size[1]))
    with h5py.File(path, "w") as f:
        f.create_dataset("reconstruction", data=rec.astype(np.float32))
        header = image.meta.get("fastmri_header")
        if header:
            f.create_dataset("ismrmrd_header", data=np.bytes_(header))
        for k, v in (image.meta.get("fastmri_attrs") or {}).items():
            if isinstance(v, (int, float, str, bool, np.number)):
                f.attrs[k] = v


def write_kspace(path: str, kspace: torch.Tensor | np.ndarray, *, header: str | None = None,
                 mask: np.ndarray | None = None, target: np.ndarray | None = None,
                 attrs: dict | None = None) -> None:
    """Write a k-space file in the fastMRI layout (for tests and simulations).

    Args:
        kspace: ``(slices, coils, H, W)`` (multi-coil) or ``(slices, H, W)`` (single-coil) complex.
        target: ``(slices, h, w)`` stored as ``reconstruction_rss`` (multi-coil) or ``_esc``.
    """
    h5py = _h5py()
    k = np.asarray(kspace.cpu().numpy() if isinstance(kspace, torch.Tensor) else kspace).astype(np.complex64)
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=k)
        if header is not None:
            f.create_dataset("ismrmrd_header", data=np.bytes_(header))
        if mask is not None:
            f.create_dataset("mask", data=np.asarray(mask, dtype=bool))
        if target is not None:
            f.create_dataset("reconstruction_rss" if k.ndim == 4 else "reconstruction_esc",
                             data=np.asarray(target, dtype=np.float32))
        for key, v in (attrs or {}).items():
            f.attrs[key] = v


def ismrmrd_header(encoded: tuple[int, int, int], recon: tuple[int, int, int]) -> str:
    """A minimal ISMRMRD header with encoded and recon matrix sizes ``(x, y, z)``."""
    def ms(s):
        return f"<matrixSize><x>{s[0]}</x><y>{s[1]}</y><z>{s[2]}</z></matrixSize>"

    return ('<?xml version="1.0" encoding="utf-8"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">'
            f"<encoding><encodedSpace>{ms(encoded)}</encodedSpace><reconSpace>{ms(recon)}</reconSpace>"
            "</encoding></ismrmrdHeader>")


def read_factory():
    return read_fastmri


def write_factory():
    return write_fastmri

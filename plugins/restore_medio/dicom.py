"""DICOM series (pydicom).

Paths: a single file ``*.dcm`` is one 2D image ``(1, 1, H, W)``; a **folder** is a series and must be
written with a trailing ``/`` or end in ``.dcmdir`` (``scan/`` or ``scan.dcmdir``) — that is how restore
tells a folder input/output from a file. Every file in the folder (hidden files and ``DICOMDIR`` excepted)
must be DICOM.

Reading a folder: files are grouped by ``SeriesInstanceUID`` (a folder mixing series is refused with the
list of series), slices are sorted by their position along the slice normal
``n = row_cos × col_cos`` (``n · ImagePositionPatient``, not ``InstanceNumber``), gaps must be uniform
(within 1 % — uneven gaps are refused, naming them), and the modality LUT (``RescaleSlope``,
``RescaleIntercept``) is applied. ``Image.data`` is ``(1, 1, D, H, W)`` float64 in [0, 1] with the original
``range`` in ``meta``, ``spacing`` ``(dz, dy, dx)`` in mm, and the sorted headers (``dicom_headers``).

Writing a derived series: one file per slice with the source headers, a new ``SeriesInstanceUID``, new
``SOPInstanceUID``s, the study, frame-of-reference and patient modules kept, ``ImageType =
DERIVED\\SECONDARY``; values go back through the inverse modality LUT into the source pixel type. A
DICOM output therefore needs a DICOM input (its headers). Folder outputs are written to a temporary folder
that is renamed when complete.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import torch

from restore.errors import InvalidInputError, ShapeError, require
from restore.io import Image

SPACING_TOLERANCE = 0.01  # relative


def _pydicom():
    return require("pydicom", "medical")


def is_folder_path(path: str) -> bool:
    return path.endswith(("/", os.sep)) or path.lower().rstrip("/").endswith(".dcmdir")


def _read_file(path: str):
    pydicom = _pydicom()
    try:
        return pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises InvalidDicomError and others
        raise InvalidInputError(f"cannot read '{path}' as DICOM ({type(exc).__name__}: {exc})") from None


def _pixels(ds, path: str) -> np.ndarray:
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        raise InvalidInputError(f"'{path}' is a multi-frame DICOM; restore reads single-frame series")
    try:
        arr = ds.pixel_array.astype(np.float64)
    except Exception as exc:
        raise InvalidInputError(f"'{path}' has no readable pixel data ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise ShapeError(f"'{path}' has pixel data of shape {arr.shape}; restore reads gray single-frame images")
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    return arr * slope + intercept


def _normal(ds, path: str) -> np.ndarray:
    iop = getattr(ds, "ImageOrientationPatient", None)
    if iop is None or getattr(ds, "ImagePositionPatient", None) is None:
        raise InvalidInputError(f"'{path}' lacks ImageOrientationPatient/ImagePositionPatient, so slices "
                                f"cannot be ordered")
    row, col = np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float)
    return np.cross(row, col)


def _to_image(volume: np.ndarray, headers: list, spacing: tuple[float, float, float]) -> Image:
    lo, hi = float(volume.min()), float(volume.max())
    norm = (volume - lo) / (hi - lo) if hi > lo else np.zeros_like(volume)
    meta = {"range": (lo, hi), "spacing": spacing, "dicom_headers": headers,
            "modality": str(getattr(headers[0], "Modality", "")), "format": "dicom"}
    return Image(torch.from_numpy(np.ascontiguousarray(norm))[None, None], meta)


def _strip(ds):
    ds = copy.deepcopy(ds)
    if "PixelData" in ds:
        del ds.PixelData
    return ds


def read_series(path: str) -> Image:
    if not os.path.isdir(path):
        if is_folder_path(path):
            raise InvalidInputError(f"DICOM folder '{path}' is not a folder")
        ds = _read_file(path)
        arr = _pixels(ds, path)
        ps = [float(v) for v in getattr(ds, "PixelSpacing", [1.0, 1.0])]
        img = _to_image(arr, [_strip(ds)], (float(getattr(ds, "SliceThickness", 1.0) or 1.0), ps[0], ps[1]))
        return img
    names = sorted(n for n in os.listdir(path) if not n.startswith(".") and n.upper() != "DICOMDIR"
                   and os.path.isfile(os.path.join(path, n)))
    if not names:
        raise InvalidInputError(f"DICOM folder '{path}' contains no files")
    files = [(os.path.join(path, n), _read_file(os.path.join(path, n))) for n in names]
    series: dict[str, list] = {}
    for f, ds in files:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "?")), []).append((f, ds))
    if len(series) > 1:
        desc = "; ".join(f"{uid} ({len(v)} files, e.g. {os.path.basename(v[0][0])})" for uid, v in series.items())
        raise InvalidInputError(f"folder '{path}' mixes {len(series)} DICOM series: {desc}; put each series "
                                f"in its own folder")
    items = next(iter(series.values()))
    normal = _normal(items[0][1], items[0][0])
    keyed = sorted(((float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))), f, ds)
                    for f, ds in items), key=lambda t: t[0])
    positions = np.array([k for k, _, _ in keyed])
    gaps = np.diff(positions)
    if len(gaps):
        dz = float(np.median(gaps))
        if dz <= 0 or np.any(np.abs(gaps - dz) > SPACING_TOLERANCE * dz + 1e-4):
            listed = ", ".join(f"{g:g}" for g in gaps)
            raise InvalidInputError(f"DICOM series in '{path}' has uneven slice gaps ({listed} mm); restore needs "
                                    f"uniform spacing — remove the outlying slices or resample the series")
    else:
        dz = float(getattr(keyed[0][2], "SliceThickness", 1.0) or 1.0)
    slices = [_pixels(ds, f) for _, f, ds in keyed]
    if len({s.shape for s in slices}) > 1:
        raise ShapeError(f"DICOM series in '{path}' has slices of different sizes: {sorted({s.shape for s in slices})}")
    ps = [float(v) for v in getattr(keyed[0][2], "PixelSpacing", [1.0, 1.0])]
    img = _to_image(np.stack(slices), [_strip(ds) for _, _, ds in keyed], (dz, ps[0], ps[1]))
    img.meta["slice_positions"] = positions.tolist()
    return img


def _stored(values: np.ndarray, ds) -> np.ndarray:
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    bits = int(getattr(ds, "BitsAllocated", 16))
    dtype = np.dtype(f"{'int' if signed else 'uint'}{bits}")
    info = np.iinfo(dtype)
    return np.clip(np.round((values - intercept) / slope), info.min, info.max).astype(dtype)


def write_series(path: str, image: Image) -> None:
    """Write a derived series (folder) or one derived file; ``path`` is the (temporary) target."""
    pydicom = _pydicom()
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    headers = image.meta.get("dicom_headers")
    if not headers:
        raise InvalidInputError("DICOM output needs a DICOM input (a derived series keeps the source's study, "
                                "patient and geometry); write .nii.gz instead")
    x = image.data
    if x.is_complex():
        x = x.abs()
    if x.ndim == 4:
        x = x[:, :, None]
    if x.ndim != 5 or x.shape[:2] != (1, 1) or x.shape[2] != len(headers):
        raise ShapeError(f"DICOM output needs (1, 1, D, H, W) with D = {len(headers)} source slices, "
                         f"got {tuple(image.data.shape)}")
    lo, hi = image.meta.get("range", (0.0, 1.0))
    values = x[0, 0].detach().cpu().double().numpy() * (hi - lo) + lo
    series_uid = generate_uid()
    folder = len(headers) > 1 or os.path.isdir(path) or is_folder_path(path)
    path = path.rstrip("/" + os.sep) or path
    if folder:
        if os.path.isfile(path):
            os.unlink(path)  # restore.io.write reserved a temporary file name; we write a folder there
        os.makedirs(path, exist_ok=True)
    for i, (src, plane) in enumerate(zip(headers, values)):
        ds = copy.deepcopy(src)
        sop = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = sop
        if getattr(ds, "file_meta", None) is None:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.SeriesDescription = (str(getattr(ds, "SeriesDescription", "")) + " restored").strip()
        ds.SeriesNumber = int(getattr(ds, "SeriesNumber", 0) or 0) + 1000
        stored = _stored(plane, ds)
        ds.Rows, ds.Columns = stored.shape
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OW"
        target = os.path.join(path, f"slice_{i:04d}.dcm") if folder else path
        ds.save_as(target, enforce_file_format=True)


def read_factory():
    return read_series


def write_factory():
    return write_series

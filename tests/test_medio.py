"""Medical file formats: NIfTI (nibabel) and DICOM series (pydicom) readers and writers."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import restore
from restore.errors import InvalidInputError, ShapeError

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")


def _dicomdir(series: str) -> str:
    # Only files that ship inside pydicom: asking get_testdata_file for a missing one tries to download.
    from pydicom.data import get_testdata_file

    return os.path.join(os.path.dirname(get_testdata_file("CT_small.dcm")), "dicomdirtests", series) + "/"


def _affine():
    a = np.diag([1.5, 2.0, 3.0, 1.0])
    a[:3, 3] = [10.0, -20.0, 5.0]
    return a


@pytest.mark.parametrize("name", ["vol.nii.gz", "vol.nii"])
def test_nifti_round_trip_keeps_affine_and_data_exactly(tmp_path, name):
    arr = (np.random.RandomState(0).randn(6, 5, 4) * 300).astype(np.float32)
    src, out = str(tmp_path / f"in_{name}"), str(tmp_path / f"out_{name}")
    nib.save(nib.Nifti1Image(arr, _affine()), src)
    img = restore.read(src)
    assert tuple(img.data.shape) == (1, 1, 4, 5, 6)  # (B, C, D=Z, H=Y, W=X)
    assert float(img.data.min()) == 0.0 and float(img.data.max()) == 1.0
    assert img.meta["range"] == (float(arr.min()), float(arr.max()))
    a64 = arr.astype(np.float64)
    assert np.allclose(img.data[0, 0, 1].numpy().T, (a64[..., 1] - a64.min()) / (a64.max() - a64.min()), atol=1e-15)
    restore.write(out, img)
    back = nib.load(out)
    assert back.get_data_dtype() == np.float32
    assert np.array_equal(back.affine, _affine()) and np.array_equal(np.asarray(back.dataobj), arr)


def test_nifti_int16_header_is_written_as_float32(tmp_path):
    arr = np.arange(24, dtype=np.int16).reshape(4, 3, 2)
    src = str(tmp_path / "i.nii.gz")
    nib.save(nib.Nifti1Image(arr, _affine()), src)
    img = restore.read(src)
    img.data = img.data * 0.5 + 0.25  # values that int16 would quantise
    restore.write(str(tmp_path / "o.nii.gz"), img)
    out = nib.load(str(tmp_path / "o.nii.gz"))
    assert out.get_data_dtype() == np.float32
    assert np.allclose(out.get_fdata(), arr * 0.5 + 0.25 * 23, atol=1e-4)


def test_nifti_4d_is_refused(tmp_path):
    path = str(tmp_path / "t.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.float32), _affine()), path)
    with pytest.raises(ShapeError, match="4D NIfTI") as err:
        restore.read(path)
    assert "\n" not in str(err.value)


def test_dicom_series_sorted_by_position_with_spacing_and_modality_lut():
    folder = _dicomdir("98892001/CT5N")
    img = restore.read(folder)
    headers = img.meta["dicom_headers"]
    assert tuple(img.data.shape) == (1, 1, 5, 16, 16)
    # Instance numbers run against the slice normal here: sorting by them would reverse the volume.
    assert [int(h.InstanceNumber) for h in headers] == [10, 9, 8, 7, 6]
    assert np.all(np.diff(img.meta["slice_positions"]) > 0)
    assert img.meta["spacing"][0] == pytest.approx(2.5)
    lo, hi = img.meta["range"]
    raw = {int(ds.InstanceNumber): ds for ds in (pydicom.dcmread(os.path.join(folder, n)) for n in os.listdir(folder))}
    hu = raw[8].pixel_array * float(raw[8].RescaleSlope) + float(raw[8].RescaleIntercept)
    assert np.allclose(img.data[0, 0, 2].numpy() * (hi - lo) + lo, hu)


def test_dicom_derived_series_round_trip(tmp_path):
    src = restore.read(_dicomdir("98892001/CT5N"))
    out = str(tmp_path / "derived") + "/"
    restore.write(out, src)
    assert sorted(os.listdir(tmp_path)) == ["derived"]  # no partial folder left behind
    back = restore.read(out)
    assert torch.equal(back.data, src.data) and back.meta["range"] == src.meta["range"]
    new, old = back.meta["dicom_headers"], src.meta["dicom_headers"]
    assert len({h.SeriesInstanceUID for h in new}) == 1 and new[0].SeriesInstanceUID != old[0].SeriesInstanceUID
    assert {h.SOPInstanceUID for h in new}.isdisjoint({h.SOPInstanceUID for h in old})
    assert len({h.SOPInstanceUID for h in new}) == 5
    for a, b in zip(new, old):
        assert a.StudyInstanceUID == b.StudyInstanceUID and a.FrameOfReferenceUID == b.FrameOfReferenceUID
        assert list(a.ImageType) == ["DERIVED", "SECONDARY"] and a.PatientID == b.PatientID
    restore.write(out, back)  # overwriting a folder output replaces it
    assert len(os.listdir(out)) == 5


def test_dicom_single_file_and_bad_inputs(tmp_path):
    from pydicom.data import get_testdata_file

    one = restore.read(get_testdata_file("CT_small.dcm"))
    assert tuple(one.data.shape) == (1, 1, 128, 128)
    with pytest.raises(InvalidInputError, match="mixes 3 DICOM series") as err:
        restore.read(_dicomdir("98892003/MR2"))
    assert "\n" not in str(err.value) and "48.0.136" in str(err.value)
    with pytest.raises(InvalidInputError, match=r"uneven slice gaps \(202.5, 1.25, 1.25 mm\)"):
        restore.read(_dicomdir("77654033/CT2"))
    with pytest.raises(InvalidInputError, match="DICOM output needs a DICOM input"):
        restore.write(str(tmp_path / "x") + "/", restore.Image(torch.zeros(1, 1, 2, 4, 4)))
    src = restore.read(_dicomdir("98892001/CT5N"))
    with pytest.raises(ShapeError, match="D = 5 source slices"):
        restore.write(str(tmp_path / "y.dcmdir"), restore.Image(torch.zeros(1, 1, 3, 16, 16), src.meta))
    assert os.listdir(tmp_path) == []  # failed writes leave nothing

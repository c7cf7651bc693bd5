"""Hook implementations of the medical I/O plugin: NIfTI and DICOM readers and writers.

A DICOM series folder is named with a trailing ``/`` or a ``.dcmdir`` suffix (``scan/``, ``scan.dcmdir``).
"""
from restore.hookspecs import hookimpl


@hookimpl
def restore_register_readers(register):
    register("nifti", "restore_medio.nifti:read_factory", extensions=(".nii", ".nii.gz"))
    register("dicom", "restore_medio.dicom:read_factory", extensions=(".dcm", ".dcmdir", ".dcmdir/", "/"))


@hookimpl
def restore_register_writers(register):
    register("nifti", "restore_medio.nifti:write_factory", extensions=(".nii", ".nii.gz"))
    register("dicom", "restore_medio.dicom:write_factory", extensions=(".dcm", ".dcmdir", ".dcmdir/", "/"))

"""Hook implementations of the medical I/O plugin: NIfTI and DICOM readers and writers.

A DICOM series folder is named with a trailing ``/`` or a ``.dcmdir`` suffix (``scan/``, ``scan.dcmdir``).
"""
from restore.hookspecs import file_format_hooks

restore_register_readers, restore_register_writers = file_format_hooks(
    ("nifti", "restore_medio.nifti", (".nii", ".nii.gz")),
    ("dicom", "restore_medio.dicom", (".dcm", ".dcmdir", ".dcmdir/", "/")),
)

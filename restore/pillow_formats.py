"""Which extensions Pillow reads and writes here: no torch, so that registering readers keeps start-up light."""
from __future__ import annotations

# Pillow formats that only identify a file (stubs needing an external handler), are not raster images we
# can decode everywhere (EPS needs Ghostscript, WMF/EMF Windows), or belong to another reader here
# (TIFF: tifffile; .h5: fastMRI k-space).
_NOT_PILLOW = {".bufr", ".grib", ".h5", ".hdf", ".wmf", ".emf", ".eps", ".ps", ".mpeg", ".mpg", ".pdf",
               ".tif", ".tiff"}
# Formats written by their own writer (png, jpeg, tiff) or that cannot hold an RGB image faithfully.
_NOT_PILLOW_WRITE = _NOT_PILLOW | {".png", ".jpg", ".jpeg", ".xbm", ".ico", ".icns", ".cur", ".mpo",
                                   ".palm", ".pfm", ".msp", ".blp", ".dds", ".apng", ".vst", ".vda", ".icb"}


def _pillow_extensions(mode: str) -> tuple[str, ...]:
    from PIL import Image as PILImage

    PILImage.init()
    table = PILImage.OPEN if mode == "read" else PILImage.SAVE
    skip = _NOT_PILLOW if mode == "read" else _NOT_PILLOW_WRITE
    return tuple(sorted(e for e, fmt in PILImage.registered_extensions().items() if fmt in table and e not in skip))


def pillow_read_extensions() -> tuple[str, ...]:
    """Every extension Pillow opens (``.png`` decoded with pypng), TIFF and stubs excepted."""
    return _pillow_extensions("read")


def pillow_write_extensions() -> tuple[str, ...]:
    """Extensions written through Pillow at 8 bit (PNG, JPEG and TIFF have their own writers)."""
    return _pillow_extensions("write")



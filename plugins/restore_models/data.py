"""Offline training data for the shipped priors, with a fixed train/validation split.

Every source ships inside an installed wheel or is generated here. ``sample_images/`` (README, tests,
benchmarks) and the validation images are never used for training.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

# Images used for evaluation only (sample_images/ is cut from the first four).
EVALUATION_ONLY = ("skimage:astronaut", "skimage:coffee", "skimage:camera", "skimage:chelsea")
NATURAL_VALIDATION = ("skimage:rocket", "skimage:stereo_motorcycle", "matplotlib:grace_hopper")
NATURAL_TRAIN = (
    "skimage:brick", "skimage:grass", "skimage:gravel", "skimage:moon", "skimage:coins", "skimage:clock",
    "skimage:cell", "skimage:page", "skimage:text", "skimage:hubble_deep_field",
    "skimage:immunohistochemistry", "skimage:retina", "skimage:colorwheel", "skimage:cat",
    "pywt:aero", "pywt:ascent", "sklearn:china", "sklearn:flower",
)
MEDICAL_VALIDATION = ("pydicom:CT_small.dcm", "pydicom:MR_small.dcm", "matplotlib:s1045.ima.gz")
MEDICAL_TRAIN = ("nibabel:anatomical.nii", "nibabel:example4d.nii.gz", "nibabel:functional.nii",
                 "pydicom:dicomdirtests",
                 # pydicom-data (the `train` extra): the real CT and MR slices of pydicom's large test files;
                 # its test patterns, ultrasound and radiographs are left out
                 "pydicom-data:693_UNCR.dcm", "pydicom-data:explicit_VR-UN.dcm",
                 "pydicom-data:MR-SIEMENS-DICOM-WithOverlays.dcm", "pydicom-data:MR2_UNCR.dcm",
                 "pydicom-data:emri_small.dcm",
                 # nilearn (the `train` extra): the ICBM 2009a T1 brain template, every third slice along each
                 # axis, the only real 3D MR volume of 1 mm isotropic resolution found in a wheel
                 "nilearn:mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
# A second, independent medical check (``dipy-val``): another scanner, another contrast, never trained on. Its
# t1_coronal_slice.npy is left out: it looks like a slice of the MNI template, which is in MEDICAL_TRAIN.
MEDICAL_EXTRA_VALIDATION = ("dipy:S0_10slices.nii.gz",)

SOURCES_AND_LICENCES = {
    "skimage": "scikit-image data (skimage.data), public domain / CC0 / 'no restrictions' per its README",
    "matplotlib": "matplotlib mpl-data/sample_data (grace_hopper.jpg public domain; s1045 MRI sample)",
    "pywt": "PyWavelets bundled data (aero, ascent), public domain",
    "sklearn": "scikit-learn sample images (china.jpg, flower.jpg), CC-BY 2.0 per sklearn docs",
    "nibabel": "nibabel test data (anatomical.nii, example4d.nii.gz, functional.nii), MIT",
    "pydicom": "pydicom test files, MIT / public test data",
    "pydicom-data": "pydicom-data wheel on PyPI (pydicom's large test files), MIT",
    "nilearn": "nilearn wheel: MNI ICBM152 2009a T1 template, (c) McConnell Brain Imaging Centre, "
               "permissive notice (use, copy, modify, distribute with the copyright notice)",
    "dipy": "dipy wheel data files (S0_10slices.nii.gz: 10 b=0 diffusion MRI brain slices), BSD-3",
    "dead-leaves": "procedural, generated in restore_models.data",
    "phantoms": "procedural Shepp-Logan and random ellipses, generated in restore_models.data",
}


def data_root() -> str:
    """Where prepared collections live: ``$RESTORE_DATA``, else ``data/`` in the working directory."""
    return os.environ.get("RESTORE_DATA", "data")


def _to_float(im: np.ndarray) -> np.ndarray:
    im = np.asarray(im)
    if im.dtype == bool:
        im = im.astype(np.float32)
    elif im.dtype.kind in "ui":
        im = im.astype(np.float32) / np.iinfo(im.dtype).max
    im = im.astype(np.float32)
    if im.ndim == 2:
        im = im[..., None]
    return im[..., :3]


def _normalise(im: np.ndarray) -> np.ndarray:
    im = im.astype(np.float32)
    lo, hi = np.percentile(im, 0.5), np.percentile(im, 99.5)
    return np.clip((im - lo) / max(hi - lo, 1e-6), 0, 1)


def load_natural(key: str) -> np.ndarray:
    """``(H, W, C)`` float32 image in [0, 1] for a key such as ``"skimage:astronaut"``."""
    src, name = key.split(":")
    if src == "skimage":
        import skimage.data

        im = getattr(skimage.data, name)()
        if isinstance(im, tuple):
            im = im[0]
    elif src == "matplotlib":
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "sample_data", f"{name}.jpg")
        from PIL import Image

        im = np.asarray(Image.open(path).convert("RGB"))
    elif src == "pywt":
        import pywt.data

        im = getattr(pywt.data, name)()
        im = im / 255.0
    elif src == "sklearn":
        from sklearn.datasets import load_sample_image

        im = load_sample_image(f"{name}.jpg")
    else:
        raise KeyError(key)
    return _to_float(im)


def dipy_file(filename: str) -> str:
    """Path of a file of the installed ``dipy`` wheel's data, else of the folder ``$RESTORE_DIPY_DATA``."""
    import importlib.util

    # the file itself, not dipy.data.get_fnames: its keys change between dipy releases (S0_10slices -> S0_10)
    spec = importlib.util.find_spec("dipy")
    folder = os.path.join(spec.submodule_search_locations[0], "data", "files") if spec else ""
    path = os.path.join(os.environ.get("RESTORE_DIPY_DATA", folder), filename)
    if not os.path.exists(path):
        raise FileNotFoundError(f"dipy's {filename} not found ({path}): `pip install dipy` or set RESTORE_DIPY_DATA "
                                f"to a folder holding it")
    return path


def load_medical(key: str) -> list[np.ndarray]:
    """2D slices ``(H, W, 1)`` in [0, 1] (per-slice robust min-max) from a packaged file."""
    src, name = key.split(":")
    slices: list[np.ndarray] = []
    if src == "nibabel":
        import nibabel as nib
        from nibabel.testing import data_path

        vol = np.asarray(nib.load(os.path.join(data_path, name)).get_fdata(), dtype=np.float32)
        vol = vol.reshape(vol.shape[:3] + (-1,))
        for t in range(vol.shape[3]):
            for z in range(vol.shape[2]):
                sl = vol[:, :, z, t]
                if sl.std() > 0:
                    slices.append(_normalise(sl))
    elif src in ("pydicom", "pydicom-data"):
        import pydicom

        if src == "pydicom":
            from pydicom.data import get_testdata_file

            base = os.path.dirname(get_testdata_file("CT_small.dcm"))
        else:  # read from the installed wheel: pydicom's own lookup would try to download what is missing
            import data_store

            base = os.path.join(os.path.dirname(data_store.__file__), "data")
        paths = []
        if name == "dicomdirtests":
            for root, _, files in os.walk(os.path.join(base, "dicomdirtests")):
                paths += [os.path.join(root, f) for f in files if not f.upper().startswith("DICOMDIR")]
        else:
            paths = [os.path.join(base, name)]
        for p in sorted(paths):
            try:
                arr = pydicom.dcmread(p).pixel_array.astype(np.float32)
            except Exception:  # noqa: BLE001 - compressed files without a codec are skipped
                continue
            for sl in arr.reshape((-1,) + arr.shape[-2:]):
                if sl.std() > 0:
                    slices.append(_normalise(sl))
    elif src == "nilearn":
        import importlib.util

        import nibabel as nib

        # not imported: only the template file is needed, not nilearn's scikit-learn stack
        package = importlib.util.find_spec("nilearn").submodule_search_locations[0]
        vol = np.asarray(nib.load(os.path.join(package, "datasets", "data", name)).get_fdata(), dtype=np.float32)
        head = vol > 0.05 * vol.max()
        for axis in range(3):
            for index in range(0, vol.shape[axis], 3):
                if np.take(head, index, axis=axis).mean() > 0.1:  # skip slices that only graze the head
                    slices.append(_normalise(np.take(vol, index, axis=axis)))
    elif src == "dipy":
        import nibabel as nib

        vol = np.asarray(nib.load(dipy_file(name)).get_fdata(), dtype=np.float32)
        vol = vol.reshape(vol.shape[:3] + (-1,))[..., 0]  # the first volume (b=0)
        slices += [_normalise(vol[:, :, z].T) for z in range(vol.shape[2])]  # radiological (rows = y) order
    elif src == "matplotlib":
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "sample_data", name)
        raw = np.frombuffer(gzip.open(path).read(), dtype="<u2").astype(np.float32)
        side = int(np.sqrt(raw.size))
        slices.append(_normalise(raw[: side * side].reshape(side, side)))
    return [s[..., None] for s in slices]


def dead_leaves(size: int, channels: int, rng: np.random.Generator, palette: np.ndarray | None) -> np.ndarray:
    """A dead-leaves image: occluding discs with a 1/r³ radius law, textures and random blur."""
    img = np.zeros((size, size, channels), np.float32)
    covered = np.zeros((size, size), bool)
    rmin, rmax = 2.0, size / 2
    for _ in range(300):
        u = rng.random()
        r = (rmin**-2 - u * (rmin**-2 - rmax**-2)) ** -0.5
        cy, cx = rng.uniform(-r, size + r, 2)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, size)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, size)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        if rng.random() < 0.3:  # ellipses and rotated rectangles, not only discs
            ang = rng.uniform(0, np.pi)
            u1, u2 = dy * np.cos(ang) + dx * np.sin(ang), -dy * np.sin(ang) + dx * np.cos(ang)
            ratio = rng.uniform(0.3, 1)
            mask = (np.abs(u1) < r) & (np.abs(u2) < r * ratio) if rng.random() < 0.5 else \
                (u1 / r) ** 2 + (u2 / (r * ratio)) ** 2 < 1
        else:
            mask = dy**2 + dx**2 < r * r
        mask &= ~covered[y0:y1, x0:x1]
        if not mask.any():
            continue
        colour = palette[rng.integers(len(palette))] if palette is not None else rng.random(channels)
        patch = np.broadcast_to(np.asarray(colour, np.float32)[:channels], mask.shape + (channels,)).copy()
        if rng.random() < 0.4:  # oriented sinusoidal or noise texture
            f = rng.uniform(0.05, 0.5)
            ang = rng.uniform(0, np.pi)
            tex = np.sin(2 * np.pi * f * (xx * np.cos(ang) + yy * np.sin(ang)) + rng.uniform(0, 6.3))
            patch += (rng.uniform(0.02, 0.15) * tex)[..., None]
        elif rng.random() < 0.3:
            patch += rng.normal(0, rng.uniform(0.01, 0.06), mask.shape + (1,)).astype(np.float32)
        img[y0:y1, x0:x1][mask] = patch[mask]
        covered[y0:y1, x0:x1] |= mask
        if covered.all():
            break
    if not covered.all():  # the bottom leaf: a smooth gradient fills what the shapes left uncovered
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        c0 = palette[rng.integers(len(palette))] if palette is not None else rng.random(channels)
        c1 = palette[rng.integers(len(palette))] if palette is not None else rng.random(channels)
        t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        background = (1 - t) * np.asarray(c0, np.float32)[:channels] + t * np.asarray(c1, np.float32)[:channels]
        img[~covered] = background[~covered]
    if rng.random() < 0.5:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=(rng.uniform(0.3, 1.5),) * 2 + (0,))
    return np.clip(img, 0, 1)


def ellipse_phantom(size: int, rng: np.random.Generator) -> np.ndarray:
    """Random-ellipse phantom (a head-like outer ellipse with random inner ellipses), ``(H, W, 1)``."""
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    img = np.zeros((size, size), np.float32)
    n = rng.integers(4, 14)
    outer = (rng.uniform(0.6, 0.95), rng.uniform(0.6, 0.95))
    img[(xx / outer[0]) ** 2 + (yy / outer[1]) ** 2 < 1] = rng.uniform(0.6, 1.0)
    img[(xx / (outer[0] - 0.06)) ** 2 + (yy / (outer[1] - 0.06)) ** 2 < 1] -= rng.uniform(0.3, 0.6)
    for _ in range(n):
        a, b = rng.uniform(0.03, 0.4, 2)
        cx, cy = rng.uniform(-0.6, 0.6, 2)
        t = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)) / a
        v = (-(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)) / b
        img[u**2 + v**2 < 1] += rng.uniform(-0.25, 0.35)
    img = np.clip(img, 0, None)
    return (img / max(img.max(), 1e-6))[..., None]


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def scan_folder(folder: str) -> list[str]:
    """Image files under ``folder`` (searched recursively), sorted for a reproducible order."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def read_image_file(path: str) -> np.ndarray:
    """``(H, W, C)`` float32 in [0, 1] from any raster file Pillow or tifffile reads; 16-bit kept."""
    if path.lower().endswith((".tif", ".tiff")):
        import tifffile

        return _to_float(tifffile.imread(path))
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im).astype(np.float32) / (65535.0 if im.mode.startswith("I;16") else max(
                float(np.asarray(im).max()), 1.0))
            return arr[..., None]
        return _to_float(np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im))


def load_training_folders(folders: tuple[str, ...], min_side: int, warn: Callable[[str], None]) -> list[np.ndarray]:
    """Every readable image of ``folders`` at least ``min_side`` on its short side.

    An unreadable file is skipped with one ``warn`` line naming it; an empty result is the caller's error.
    """
    images = []
    for folder in folders:
        for path in scan_folder(folder):
            try:
                im = read_image_file(path)
            except Exception as exc:  # noqa: BLE001 - any decoder failure means "skip this file"
                warn(f"skipping unreadable training image '{path}': {type(exc).__name__}: {exc}".splitlines()[0])
                continue
            if min(im.shape[:2]) >= min_side:
                images.append(im)
    return images


@dataclass
class Preset:
    name: str
    channels: int
    summary: str
    domain: str
    sources: tuple[str, ...]
    validation: tuple[str, ...]
    procedural_fraction: float
    procedural: Callable[[int, np.random.Generator], np.ndarray]
    # Photograph collections (restore_models.prepare) whose train split the recipe trains on and whose
    # val split validates it.
    collections: tuple[str, ...] = ()
    # Held-out images from a source no stage trains on (the ``dipy-val`` set): on the card, never in a ship decision.
    independent: tuple[str, ...] = ()


class PatchSampler:
    """Random ``(C, size, size)`` crops with flips and 90° rotations from real and procedural images."""

    def __init__(self, preset: Preset, size: int, seed: int, folder_images: list[np.ndarray] = (),
                 procedural_fraction: float | None = None, builtin_sources: bool = True) -> None:
        self.preset, self.size = preset, size
        self.procedural_fraction = preset.procedural_fraction if procedural_fraction is None else procedural_fraction
        self.rng = np.random.default_rng(seed)
        self.images: list[np.ndarray] = [self._channels(im) for im in folder_images]
        for key in preset.sources if builtin_sources else ():
            try:
                ims = load_medical(key) if preset.domain == "medical" else [load_natural(key)]
            except Exception:  # noqa: BLE001 - an optional source (e.g. sklearn) may be missing
                continue
            for im in ims:
                if min(im.shape[:2]) >= size:
                    self.images.append(self._channels(im))
        self.palette = None
        if preset.domain == "natural" and self.images:
            pix = np.concatenate([im.reshape(-1, im.shape[2]) for im in self.images])
            self.palette = pix[self.rng.integers(len(pix), size=4096)]
        # Procedural images are costly to draw, so a pool of larger ones is refreshed gradually and cropped.
        self.pool = [self._procedural(2 * size) for _ in range(16)]

    def _procedural(self, size: int) -> np.ndarray:
        rng = self.rng
        if self.preset.domain == "medical":
            return self._channels(self.preset.procedural(size, rng))
        return self._channels(dead_leaves(size, self.preset.channels, rng, self.palette))

    def _channels(self, im: np.ndarray) -> np.ndarray:
        C = self.preset.channels
        if im.shape[2] == C:
            return im
        if C == 1:
            return im @ np.array([[0.299], [0.587], [0.114]], np.float32) if im.shape[2] == 3 else im[..., :1]
        return np.repeat(im[..., :1], C, axis=2)

    def patch(self) -> np.ndarray:
        rng, s = self.rng, self.size
        if not self.images or rng.random() < self.procedural_fraction:
            if rng.random() < 0.1:
                self.pool[rng.integers(len(self.pool))] = self._procedural(2 * s)
            src = self.pool[rng.integers(len(self.pool))]
            y, x = rng.integers(0, s + 1, 2)
            im = src[y:y + s, x:x + s]
        else:
            src = self.images[rng.integers(len(self.images))]
            scale = rng.choice([1, 1, 2]) if min(src.shape[:2]) >= 2 * s else 1
            H, W = src.shape[0] // scale * scale, src.shape[1] // scale * scale
            if scale > 1:
                src = src[:H, :W].reshape(H // scale, scale, W // scale, scale, -1).mean((1, 3))
            y, x = rng.integers(0, src.shape[0] - s + 1), rng.integers(0, src.shape[1] - s + 1)
            im = src[y:y + s, x:x + s]
        im = np.rot90(im, rng.integers(4))
        if rng.random() < 0.5:
            im = im[:, ::-1]
        return np.ascontiguousarray(im.transpose(2, 0, 1))

    def batch(self, n: int) -> np.ndarray:
        return np.stack([self.patch() for _ in range(n)])

    def state_dict(self) -> dict:
        """The data position: generator state and the procedural pool (for an exact resume)."""
        return {"rng": self.rng.bit_generator.state, "pool": [p.copy() for p in self.pool]}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.pool = [np.asarray(p) for p in state["pool"]]


def _medical_procedural(size: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.25:
        from skimage.data import shepp_logan_phantom
        from skimage.transform import rotate, resize

        im = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
        im = rotate(im, rng.uniform(-20, 20))
        return (im / max(im.max(), 1e-6))[..., None].astype(np.float32)
    return ellipse_phantom(size, rng)


PRESETS = {
    "natural-rgb": Preset("natural-rgb", 3, "RGB photographs (default for colour images)", "natural",
                          NATURAL_TRAIN, NATURAL_VALIDATION, 0.5, lambda s, r: None, ("cbsd432",)),
    "natural-gray": Preset("natural-gray", 1, "grayscale photographs (default for 1-channel images)",
                           "natural", NATURAL_TRAIN, NATURAL_VALIDATION, 0.5, lambda s, r: None, ("bsd400",)),
    "medical-gray": Preset("medical-gray", 1, "CT/MRI magnitude slices (default for medical tasks)",
                           "medical", MEDICAL_TRAIN, MEDICAL_VALIDATION, 0.6, _medical_procedural,
                           independent=MEDICAL_EXTRA_VALIDATION),
}

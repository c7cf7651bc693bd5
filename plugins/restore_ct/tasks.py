"""``restore ct INPUT``: sparse-view / limited-angle CT, 2D slices and 3D volumes.

INPUT is a sinogram ``(views, detectors)`` (or a stack ``(slices, views, detectors)`` for a volume) in
``.npy`` (raw line integrals, pixel units as ``skimage.transform.radon``), float ``.tiff`` (original range
kept) or ``.png`` (values in [0, 1] times ``--scale``). With ``--simulate`` INPUT is the image or volume in
[0, 1] (PNG/TIFF/NPY, or NIfTI/DICOM when the medical I/O plugin is installed): the sinogram is simulated,
``--noise`` adds Gaussian noise of std ``noise × max(sinogram)``, PSNR/SSIM are reported against INPUT.

Methods: ``fbp`` (``--filter``), ``tv`` (ADMM), ``diffusion`` (``--sampler``, default ``pnp-hqs``; a volume
is reconstructed slice by slice, ``--chunk`` slices per network call, or with ``--sampler dds-3d``, DDS
with the slices coupled by TV along z).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from restore.errors import InvalidInputError, ShapeError
from restore.tasks import Setup, Task, TaskOption

if TYPE_CHECKING:  # the task declaration imports no torch (restore ct --help); build imports it
    import torch

    from restore.io import Image

METHODS = {"fbp": "ct-fbp", "tv": "ct-tv", "diffusion": None}

# 2D default: DPIR-style plug-and-play HQS (8 denoiser calls, CG proximal steps), measured on held-out
# images (bench/medical.py, bench/results/medical_ct_pnp.json, session 15's medical-gray): at 30 and 60 views it
# beats TV tuned per image by 1.0 and 3.5 dB and DDS with the options below by 0.6 and 1.1 dB, in about half DDS's
# time (when chosen, against DDS with the paper's options: by 3.8 and 4.3 dB).
# --sampler dds: 10 CG steps per diffusion step instead of the paper's 5 (sparse-view Radon normal equations
# converge slowly). Noiseless sinograms take the CG-on-the-normal-equations branch; noisy ones the damped branch
# with the SNR-faded data weight, which on ct_small (128², 30 views) is 32.7 / 27.3 dB at 0.5 % / 2 % sinogram
# noise against 30.5 / 19.3 for the noiseless branch. The imaging tasks' re-noising (η′ = 0.95, quadratic
# spacing) and γ = 2 added 1.5 to 2.4 dB at 30 views on two tuning images (bench/dds_medical.py), and 0.3 to 2.5
# dB on the medical tables' images (bench/results/medical_ct_*.json).
DDS_DEFAULTS = {"noisy": "auto", "gamma_rule": "snr", "gamma": 2.0, "eta": 0.95, "spacing": "quad", "cg_iters": 10}

# --sampler dds-3d (volumes): the same re-noising (η′ = 0.95, quadratic grid) instead of the code's 0.85 / uniform,
# with the code's 5 CG steps per ADMM x-update. Random-ellipse volumes (24 x 32², seed 5, 30 steps, the phantom
# dds-3d's z-TV weights were chosen on): 8 views 32.41 -> 36.37 dB, 90° 25.39 -> 27.21. dipy's test_piesno volume
# (64², 30 steps): noiseless 28.65 -> 29.28 (8 views) and 28.00 -> 28.46 (90°); with 2 % sinogram noise 24.72 ->
# 24.33 and 27.22 -> 27.21. 10 CG steps gained another 0.1-3.2 dB noiseless but lost 1.0-1.5 dB with that noise
# (the CG's early stop is dds-3d's only guard against noise), so they are not the default.
DDS3D_DEFAULTS = {"eta": 0.95, "spacing": "quad"}


def _image_size(n_det: int, size: int | None) -> int:
    if size is not None:
        if size < 2:
            raise InvalidInputError(f"--size must be >= 2, got {size}")
        return size
    guess = int(math.floor(n_det / math.sqrt(2)))
    for h in (guess, guess + 1, guess - 1):
        if h >= 2 and math.ceil(h * math.sqrt(2) - 1e-9) == n_det:
            return h
    raise InvalidInputError(f"cannot infer the image size from {n_det} detectors; pass --size H")


def build(image: Image, noise: float, simulate: bool, generator: torch.Generator, views: int | None = None,
          limited_angle: float | None = None, geometry: str = "parallel", method: str = "diffusion",
          detectors: int | None = None, size: int | None = None, filter: str = "ramp", chunk: int = 8,
          scale: float = 1.0) -> Setup:
    import torch

    from restore.operators import GaussianNoise
    from restore.problem import Problem
    from restore.volumes import SliceOperator

    from .fbp import FILTERS
    from .radon import make_fan, make_parallel

    if method not in METHODS:
        raise InvalidInputError(f"--method must be one of {', '.join(METHODS)}, got '{method}'")
    if geometry not in ("parallel", "fan"):
        raise InvalidInputError(f"--geometry must be parallel or fan, got '{geometry}'")
    if filter not in FILTERS:
        raise InvalidInputError(f"--filter must be one of {', '.join(FILTERS)}, got '{filter}'")
    if views is None and limited_angle is None:
        raise InvalidInputError("give --views N (sparse view) or --limited-angle DEGREES (e.g. --limited-angle 120)")
    if chunk < 1:
        raise InvalidInputError(f"--chunk must be >= 1, got {chunk}")
    data = image.data
    if data.is_complex() or data.ndim not in (4, 5) or data.shape[0] != 1 or data.shape[1] != 1:
        raise ShapeError(f"CT input must be one gray image/sinogram (H, W) or volume/stack (D, H, W), got "
                         f"shape {tuple(data.shape)}")
    data = data.double()
    volume = data.ndim == 5
    make = make_parallel if geometry == "parallel" else make_fan
    reference = None
    if simulate:
        h, w = data.shape[-2:]
        op2d = make((h, w), views=views, limited_angle=limited_angle, detectors=detectors)
        op = SliceOperator(op2d, chunk) if volume else op2d
        with torch.no_grad():
            y = op(data)
        if noise > 0:
            y = y + noise * float(y.abs().max()) * torch.randn(y.shape, generator=generator, dtype=y.dtype)
        reference = data.float()
    else:
        if "range" in image.meta:  # float TIFF: the reader normalised to [0, 1]; sinograms need raw values
            lo, hi = image.meta.pop("range")
            data = data * (hi - lo) + lo
        y = data * scale
        n_det = y.shape[-1]
        h = _image_size(n_det, size)
        op2d = make(h, views=views, limited_angle=limited_angle, detectors=n_det)
        op = SliceOperator(op2d, chunk) if volume else op2d
        if tuple(y.shape[-2:]) != (op2d.n_views, op2d.n_det):
            raise ShapeError(f"sinogram has {y.shape[-2]} views × {y.shape[-1]} detectors, but the geometry has "
                             f"{op2d.n_views} views; check --views/--limited-angle (rows are views)")
        image.meta.update({"dtype": "float32"})
    options = {"ct-fbp": {"filter": filter}, "dds-3d": {"chunk": chunk}, "pnp-hqs": {"chunk": chunk}}
    sigma = noise * float(y.abs().max()) if simulate else noise
    return Setup(Problem(y.float(), op, GaussianNoise(sigma)), reference=reference, sampler_options=options,
                 sampler=METHODS[method])


TASK = Task(
    build=build,
    options=(
        TaskOption("views", int, None, "number of views, uniform over [0, 180) (fan: [0, 360))"),
        TaskOption("limited_angle", float, None, "angular range in degrees (alone: 1° steps, e.g. 120)"),
        TaskOption("geometry", str, "parallel", "parallel | fan"),
        TaskOption("method", str, "diffusion", "fbp | tv | diffusion (--sampler, default pnp-hqs; volumes also dds-3d)"),
        TaskOption("detectors", int, None, "detector count (default ceil(H·√2); sinogram input: its width)"),
        TaskOption("size", int, None, "sinogram input: image size H = W (default: from the detector count)"),
        TaskOption("filter", str, "ramp", "FBP filter: ramp | shepp-logan | cosine | hamming | hann"),
        TaskOption("chunk", int, 8, "volumes: slices per network call (bounds memory)"),
        TaskOption("scale", float, 1.0, "sinogram input: multiply the values read (e.g. PNG sinograms)"),
    ),
    default_sampler="pnp-hqs",
    domain="medical",
    sampler_defaults={"dds": DDS_DEFAULTS, "dds-3d": DDS3D_DEFAULTS},
    default_noise=0.0,
    output_suffix=".png",
)

"""``restore mri KSPACE.h5``: reconstruct undersampled Cartesian MRI.

Data flow: the fastMRI reader gives k-space ``(slices, coils, H, W)``; each slice is one batch entry, and
``--chunk`` slices are reconstructed per sampler run so that memory does not grow with the file's depth
(the random draws, and so DDS's result, depend on the chunk; the baselines do not).
k-space is divided by the maximum of the zero-filled RSS image so that images are in [0, 1] units
(``meta["kspace_scale"]`` restores the original units in ``.h5`` outputs). A mask is applied
retrospectively (``--mask``; a file's own ``mask`` dataset when ``--mask`` is not given).

Unknown seen by the sampler: a real magnitude image ``m`` ``(slices, 1, H, W)`` with a fixed phase ``φ``
(:class:`~restore_mri.operators.PhaseMagnitude`): ``x = m e^{iφ}``, ``φ`` the phase of a low-pass
filtered SENSE-CG image (:func:`smooth_phase`). This lets the 1-channel medical magnitude prior run
pnp-hqs (the default, with the view's prox as data step) and DDS with the exact real adjoint (with a damped, SNR-faded data step, see ``DDS_DEFAULTS``); the baselines (``--method zero-filled|sense|tv``) reconstruct the full
complex image and output its magnitude.

With ``--simulate`` the input is a magnitude image (PNG, or a 2D/one-slice NIfTI): k-space is simulated
with ``--coils`` birdcage coils (``1`` = single-coil; the reconstruction uses those maps unless
``--coil-maps`` says otherwise), undersampled, and complex Gaussian noise of std
``--noise`` (in [0, 1] image units; the FFT is orthonormal) is added; PSNR/SSIM are reported against it.
"""
from __future__ import annotations

import logging
import os
import zlib
from typing import TYPE_CHECKING

from restore.errors import InvalidInputError, ShapeError
from restore.tasks import Setup, Task, TaskOption

if TYPE_CHECKING:  # the task declaration imports no torch (restore mri --help); the builders import it
    import torch

    from restore.io import Image

    from .operators import MultiCoilMRI

log = logging.getLogger("restore.mri")

# CG steps of the SENSE solve that scores estimated coil maps, and the relative data residual above which
# the maps are reported as poor (correct maps leave well under 1 % on noiseless data, failed ones 10-20 %).
RESIDUAL_ITERS = 10
MAPS_RESIDUAL_WARNING = 0.05

# DDS on the magnitude view solves (I + γ_k AᴴA) m = m̂0 + γ_k Aᴴy (the damped branch, also without noise), not the
# exact normal equations: the fixed-phase view's AᴴA has eigenvalues near zero on the unsampled columns, and
# exact CG amplifies the data's small inconsistency with the estimated phase there into stripes (single-coil fell
# to 10 dB below zero-filled). γ_k is the SNR-faded weight 2 r_k² / σ_y² (r_k the Tweedie error scale), with the
# imaging tasks' re-noising (η′ = 0.95, quadratic spacing, 10 CG steps). On two tuning images that are not the
# medical tables' (bench/dds_medical.py, bench/results/dds_medical.json) this beat the earlier constant γ = 10
# with η′ = 0.85 and 5 CG steps by 1.0 to 8.3 dB on every image and case (1 coil 4x, 8 coils 4x and 8x, noiseless
# and k-space noise 0.01); γ = 1 and 4 were within 0.6 dB of 2. The medical tables (other images) gained 0.4-5.4 dB.
DDS_DEFAULTS = {"noisy": "yes", "gamma_rule": "snr", "gamma": 2.0, "eta": 0.95, "spacing": "quad", "cg_iters": 10}

# Default sampler: DPIR-style plug-and-play HQS with the exact/preconditioned magnitude-view prox. Tuned on
# three held-out BSD400 validation crops (test_020/100/160 at 128², noiseless, 1 and 8 coils at 4x and 8x):
# steps 8/20/40 x sigma_start 0.2/0.4/0.8 and sigma_floor 2/255 were within 0.3 dB of DPIR's own values (or
# worse: a larger floor lost 4 dB with 8 coils), at up to 3x the time, so the defaults are DPIR's. Against TV
# (lam 0.003) they gave +0.6 dB (1 coil, 4x), -0.3 (1 coil, 8x), +9 (8 coils, 4x), +3 (8 coils, 8x, two
# images). Bench against TV tuned per image: bench/results/medical_mri_pnp.json.
PNP_DEFAULTS = {"steps": 8, "lam": 0.23, "sigma_start": 49 / 255, "sigma_floor": 0.6 / 255}

# Single-coil k-space leaves most columns to the prior (a real image's Hermitian symmetry recovers at most the
# mirrored columns), and DPIR's 8 levels from 49/255 stop short: on six other held-out BSD400 validation crops
# (test_040/120/200/280/320/360 at 128², noiseless, 4x, medical-gray) they were only level with TV tuned per
# image, while starting at 0.5 and taking 12-40 levels gained about 0.9 dB (a plateau; lam 0.05-1 and floors
# 0.6/255-2/255 changed under 0.1 dB, a floor of 5/255 lost 0.6). 24 levels: natural-gray on the same crops
# gained a further 0.35 dB from 12 to 24. At 8x (same crops) it is 0.15 dB below DPIR's schedule and both
# trail TV by about 1 dB with medical-gray. bench/mri_single_tune.py reproduces the grid.
# max_gamma: with one coil the fixed-phase magnitude view has near-null directions wherever the estimated phase
# varies (e.g. the noise-only background), and the exact data step amplifies noise along them by up to √γ/2:
# s1045 (128², 4x) fell from 30.4 dB noiseless to 5.9 dB at noise 0.002 and 25.9 at 0.01. Capping γ at 1e3 gives
# 30.4 / 30.3 there (1e4: 13.3 at 0.002; 1e2: 30.1 / 30.3), and costs 0.07-0.37 dB noiseless on s1045 and two
# held-out BSD photos; real k-space is never noiseless, and its --noise is often not known, so the cap is always on.
PNP_SINGLE_COIL = {"steps": 24, "sigma_start": 0.5, "max_gamma": 1e3}

METHODS = {"zero-filled": "mri-zero-filled", "sense": "mri-sense", "tv": "mri-tv", "diffusion": None}


def _magnitude_input(image: Image) -> torch.Tensor:
    x = image.data
    if x.ndim == 5 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.is_complex() or x.ndim != 4 or x.shape[1] != 1:
        raise ShapeError(f"--simulate needs a gray magnitude image (1, 1, H, W) (PNG or a one-slice NIfTI), got "
                         f"{tuple(x.shape)} {x.dtype}")
    return x.double()


def _load_npy(path: str, what: str) -> torch.Tensor:
    import numpy as np
    import torch

    if not os.path.exists(path):
        raise InvalidInputError(f"{what} file '{path}' does not exist")
    try:
        return torch.from_numpy(np.load(path))
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"cannot read {what} file '{path}' ({exc})") from None


def _mask(spec: str | None, image: Image, shape: tuple[int, int], acceleration: float, center_fraction: float,
          seed: int | None) -> torch.Tensor:
    from .masks import KINDS, make_mask

    H, W = shape
    if spec is None and "fastmri_mask" in image.meta:
        return image.meta["fastmri_mask"][None, :].double()
    spec = spec or "random"
    if spec.lower().endswith(".npy"):
        m = _load_npy(spec, "mask").double()
        if m.ndim == 1:
            m = m[None]
        if m.ndim != 2 or m.shape[-1] != W or m.shape[0] not in (1, H):
            raise ShapeError(f"mask '{spec}' has shape {tuple(m.shape)}, which does not match k-space of {H}x{W}; "
                             f"need ({W},) or ({H}, {W})")
        return m
    if spec not in KINDS:
        raise InvalidInputError(f"unknown --mask '{spec}'; use one of {', '.join(KINDS)} or a .npy file")
    if seed is None:  # fastMRI seeds per file, so that a file always gets the same mask
        seed = zlib.crc32(str(image.meta.get("fastmri_filename", "")).encode())
    return make_mask(spec, (H, W), acceleration, center_fraction, seed).double()


def _estimate(y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Estimated maps ``(C, H, W)`` of one slice ``(C, H, W)`` and their relative SENSE data residual.

    Both estimators run (ESPIRiT when the calibration region allows it, and the RSS-normalised low-resolution
    coil images); the one whose SENSE solve fits the data better wins: with wrong maps no image explains
    all coils at once, so the residual ``||A x - y|| / ||y||`` is the quality measure the data provide.
    """
    import torch

    from .coils import espirit_maps, lowres_maps
    from .operators import MultiCoilMRI
    from .recon import sense

    candidates = []
    for estimator in (espirit_maps, lowres_maps):
        try:
            candidates.append(estimator(y, mask))
        except InvalidInputError:
            continue
    if not candidates:
        raise InvalidInputError("cannot estimate coil maps: the mask has no fully sampled centre; use a larger "
                                "--center-fraction or --coil-maps FILE.npy")
    scored = []
    for maps in candidates:
        op = MultiCoilMRI(maps, mask)
        x = sense(op, y[None], RESIDUAL_ITERS)
        scored.append((float(torch.linalg.vector_norm(op(x) - y[None]) / torch.linalg.vector_norm(y).clamp_min(1e-30)),
                       maps))
    residual, maps = min(scored, key=lambda t: t[0])
    return maps, residual


def _maps(spec: str, y: torch.Tensor, mask: torch.Tensor, simulated: torch.Tensor | None,
          noise: float) -> torch.Tensor:
    import torch

    from .coils import birdcage_maps

    B, C, H, W = y.shape
    if spec == "auto":
        if simulated is not None:
            log.warning(f"restore mri --simulate: using the {C} birdcage coil maps the simulation used "
                        f"(--coil-maps estimate to estimate them from the data)")
            return simulated.expand(B, C, H, W)
        spec = "estimate"
    if spec == "estimate":
        maps, residuals = zip(*(_estimate(y[b].to(torch.complex128), mask) for b in range(B)))
        # Noise alone leaves a residual of about σ·sqrt(#samples) after a converged SENSE solve.
        samples = float(torch.broadcast_to(mask != 0, (H, W)).sum()) * C
        floor = 2 * noise * samples**0.5 / max(float(torch.linalg.vector_norm(y[b])) for b in range(B))
        worst = max(residuals)
        if worst > max(MAPS_RESIDUAL_WARNING, floor):
            log.warning(f"restore mri: the estimated coil maps explain the data poorly (SENSE residual "
                        f"{worst:.0%} of the k-space norm); the reconstruction may show aliasing: pass measured "
                        f"maps with --coil-maps FILE.npy or a mask with more centre lines (--center-fraction)")
        return torch.stack(maps)
    if spec == "birdcage":
        return birdcage_maps(C, (H, W), dtype=torch.complex128)[None].expand(B, C, H, W)
    if spec.lower().endswith(".npy"):
        m = _load_npy(spec, "coil map").to(torch.complex128)
        if m.ndim == 3:
            m = m[None].expand(B, -1, -1, -1)
        if tuple(m.shape) != (B, C, H, W):
            raise ShapeError(f"coil maps '{spec}' have shape {tuple(m.shape)}; need ({C}, {H}, {W}) or "
                             f"({B}, {C}, {H}, {W}) to match the k-space")
        return m
    raise InvalidInputError(f"unknown --coil-maps '{spec}'; use auto, estimate, birdcage or a .npy file")


def _calibration_radius(mask: torch.Tensor, H: int, W: int) -> tuple[int, int]:
    """Largest ``(r_h, r_w)`` such that rows/columns ``N//2 - r .. N//2 + r`` through the k-space centre are
    sampled: the block where the data are Hermitian-symmetric whenever the image is real."""
    import torch

    m = torch.broadcast_to(mask != 0, (H, W))

    def radius(line: torch.Tensor) -> int:
        c, r = line.shape[0] // 2, 0
        while c - r - 1 >= 0 and c + r + 1 < line.shape[0] and bool(line[c - r - 1]) and bool(line[c + r + 1]):
            r += 1
        return r

    return radius(m[:, W // 2]), radius(m[H // 2, :])


def smooth_phase(op: MultiCoilMRI, y: torch.Tensor, mask: torch.Tensor, iters: int = 10,
                 width: float = 0.125) -> torch.Tensor:
    """Phase ``(B, 1, H, W)`` of a low-pass filtered SENSE-CG image (``iters`` CG steps).

    The k-space of the SENSE image is Hann-windowed over at most the central ``width`` of each axis, so the
    phase is smooth and the aliasing of the undersampled image averages out; combining the calibration data
    with the coil maps directly would give a phase biased by the coil phases across the window. The window
    is symmetric about the k-space centre and stays inside the fully sampled centre: a real image then gets
    an exactly real low-pass image (phase 0 or π). A window over randomly sampled columns, or one shifted by
    half a sample, gives a real image a spurious phase, which the magnitude view cannot explain: the data
    steps of pnp-hqs (large weights early) amplify that inconsistency into stripes.
    """
    import torch

    from .fft import fft2c, ifft2c
    from .recon import sense

    H, W = y.shape[-2:]
    x = sense(op, y, iters)
    r_h, r_w = _calibration_radius(mask, H, W)
    window = torch.zeros(H, W, dtype=torch.float64)
    r_h, r_w = max(min(r_h, round(H * width / 2)), 1), max(min(r_w, round(W * width / 2)), 1)
    hy = torch.hann_window(2 * r_h + 3, periodic=False, dtype=torch.float64)[1:-1]
    hx = torch.hann_window(2 * r_w + 3, periodic=False, dtype=torch.float64)[1:-1]
    window[H // 2 - r_h:H // 2 + r_h + 1, W // 2 - r_w:W // 2 + r_w + 1] = hy[:, None] * hx[None, :]
    return torch.angle(ifft2c(fft2c(x) * window.to(x.real.dtype)))


def build(image: Image, noise: float, simulate: bool, generator: torch.Generator, mask: str | None = None,
          acceleration: float = 4.0, center_fraction: float = 0.08, coil_maps: str = "auto",
          method: str = "diffusion", coils: int = 8, mask_seed: int | None = None, chunk: int = 4) -> Setup:
    import torch

    from restore.operators import GaussianNoise
    from restore.problem import Problem

    from .coils import birdcage_maps
    from .fft import fft2c, ifft2c
    from .operators import MultiCoilMRI, PhaseMagnitude, SingleCoilMRI

    if method not in METHODS:
        raise InvalidInputError(f"unknown --method '{method}'; use {', '.join(METHODS)}")
    if chunk < 1:
        raise InvalidInputError(f"--chunk must be >= 1, got {chunk}")
    reference = truth = None
    if simulate:
        reference = _magnitude_input(image)
        if coils < 1:
            raise InvalidInputError(f"--coils must be >= 1, got {coils}")
        H, W = reference.shape[-2:]
        truth = birdcage_maps(coils, (H, W), dtype=torch.complex128)[None] if coils > 1 else \
            torch.ones(1, 1, H, W, dtype=torch.complex128)
        k = fft2c(truth * reference.to(torch.complex128))
        scale = 1.0
    else:
        k = image.data
        if not k.is_complex() or k.ndim != 4:
            raise ShapeError(f"restore mri needs complex k-space (slices, coils, H, W) such as a fastMRI .h5 file, "
                             f"got {tuple(k.shape)} {k.dtype}; for a magnitude image pass --simulate")
        k = k.to(torch.complex128)
        scale = None
    H, W = k.shape[-2:]
    m = _mask(mask, image, (H, W), acceleration, center_fraction, mask_seed)
    k = k * m
    if simulate:
        k = GaussianNoise(noise).sample(k, generator) * m
    else:
        scale = float((ifft2c(k).abs() ** 2).sum(1).sqrt().max())
        if not scale > 0:
            raise InvalidInputError("the k-space is all zeros")
        k = k / scale
    image.meta["kspace_scale"] = scale
    if k.shape[1] == 1:
        op: MultiCoilMRI = SingleCoilMRI(m, (H, W))
    else:
        op = MultiCoilMRI(_maps(coil_maps, k, m, truth if coils > 1 else None, noise), m)
    # The baselines reconstruct the complex image themselves; only the diffusion path needs the phase.
    phase = smooth_phase(op, k, m) if METHODS[method] is None else torch.zeros(k.shape[0], 1, H, W)
    view = PhaseMagnitude(op, phase)
    y = k.to(torch.complex64)
    options = {"pnp-hqs": PNP_SINGLE_COIL} if k.shape[1] == 1 else {}
    return Setup(Problem(y, view, GaussianNoise(noise)), reference=reference,
                 sampler=METHODS[method], batch_chunk=chunk, sampler_options=options)


TASK = Task(
    build=build,
    options=(
        TaskOption("mask", str, None, "random | equispaced | poisson | gaussian | FILE.npy ((W,) or (H, W)); "
                                      "default: the file's mask, else random"),
        TaskOption("acceleration", float, 4.0, "nominal acceleration R"),
        TaskOption("center_fraction", float, 0.08, "fully sampled centre fraction (0.08 with 4x, 0.04 with 8x)"),
        TaskOption("coil_maps", str, "auto", "auto (--simulate: the simulated maps, else estimate) | estimate "
                                             "(ESPIRiT or RSS-normalised low-res, the better SENSE fit) | "
                                             "birdcage | FILE.npy"),
        TaskOption("method", str, "diffusion", "zero-filled | sense | tv | diffusion (--sampler, default pnp-hqs)"),
        TaskOption("coils", int, 8, "with --simulate: number of birdcage coils (1 = single-coil)"),
        TaskOption("mask_seed", int, None, "mask seed (default: derived from the file name, as fastMRI)"),
        TaskOption("chunk", int, 4, "slices reconstructed together (bounds memory on multi-slice files)"),
    ),
    default_sampler="pnp-hqs",
    domain="medical",
    sampler_defaults={"dds": DDS_DEFAULTS, "pnp-hqs": PNP_DEFAULTS},
    default_noise=0.0,
    output_suffix=".h5",
)

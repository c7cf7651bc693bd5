"""The imaging tasks: ``restore deblur | super-resolve | inpaint | denoise IMG``.

Each ``build`` turns the input image into a :class:`restore.Problem`. With ``simulate=True`` the input is
the clean image: it is degraded by the operator, Gaussian noise is drawn from ``generator``, and the clean
image is returned as the reference for PSNR/SSIM.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from restore.errors import InvalidInputError, ShapeError
from restore.tasks import Setup, Task, TaskOption

from .specs import BOUNDARIES, KERNEL_FORMS, RESIZE_METHODS, check_boundary, parse_kernel, parse_mask

if TYPE_CHECKING:  # the declarations below import no torch (restore TASK --help); the builders import it
    import torch

    from restore.io import Image
    from restore.operators import LinearOperator

#: Boundary model of ``restore deblur`` and ``restore super-resolve``: ``valid``, the physics of a photo (it is
#: the blur of a larger, unknown scene). bench/real_blur.py (DDS, bench/results/real_blur.json), with the priors
#: shipped in session 12: ``valid`` leads ``replicate`` by 0.05 dB on deblurring, and ``reflect``/``replicate``
#: lead ``valid`` by 0.24 dB on 4x SR (three seeds): to be re-measured with the tasks' default samplers before any
#: change.
DEFAULT_BOUNDARY = "valid"
BOUNDARY_HELP = (f"what lies past the image edge: {' | '.join(BOUNDARIES)} (valid: the scene continues, "
                 "unknown; right for photos)")
SIMULATE_BOUNDARY_HELP = "with --simulate: degrade with this boundary model instead of --boundary's"

#: DDS on every imaging task fades the data weight with the Tweedie error (gamma_rule="snr"; see DDSConfig):
#: the code's constant γ = 1 was tuned for MRI k-space units and under-fits blur/SR data by 2–10 dB here.
#: On deblurring, super-resolution and inpainting it also runs 10 CG iterations per step,
#: noise fraction 0.95 and quadratic respacing (more levels at low noise) instead of the code's 5 / 0.85 / uniform.
#: Measured on held-out 96² crops (the 3rd-8th gray and 2nd-6th colour validation images, the cases of
#: bench.task_defaults), mean PSNR of the code's options at 50 steps -> these options at 25 / 50 steps, in dB:
#: deblurring (Gaussian σ = 2 and motion) 23.17 -> 23.64 / 23.88; 4x super-resolution 21.48 -> 21.85 / 21.98;
#: random 50 % inpainting 24.96 -> 25.44 / 26.20; box inpainting 21.03 -> 22.05 / 22.00. Half the network calls
#: give more than the old 50 steps. A DPM-Solver++ step in place of DDS's re-noising is worse at every step count
#: (bench/results/fast_solvers.json, ``dds_deblur``).
DDS_IMAGING = {"dds": {"gamma_rule": "snr", "cg_iters": 10, "eta": 0.95, "spacing": "quad"}}
#: Denoising re-noises with fresh noise alone (η′ = 1; CG on the identity converges in one step, so only η′ and the
#: grid matter). On crops the other tables were not chosen on (gray 9th-14th, colour 7th-10th, 96², σ = 25/255;
#: bench/results/dds_denoise.json), mean PSNR at 25 / 50 steps in dB: the code's options 22.52 / 23.11 (gray) and
#: 23.55 / 24.54 (colour); η′ = 0.95 24.61 / 26.02 and 28.32 / 29.31; η′ = 1 26.49 / 26.65 and 29.84 / 29.86.
#: More steps do not help here: gray at 20 / 50 / 100 steps, η′ = 1 26.56 / 26.65 / 26.27, η′ = 0.98 25.48 / 26.59 /
#: 26.51, η′ = 0.95 24.66 / 26.02 / 26.29 (bench/results/dds_denoise_eta.json); η′ = 1 is best at 20 and 50 steps
#: (0.06 dB above η′ = 0.98 at the CLI's 50).
DDS_DENOISE = {"dds": {**DDS_IMAGING["dds"], "eta": 1.0}}

#: DiffPIR on deblurring and super-resolution with fresh noise at every step (ζ = 1): its official ζ = 0.1
#: collapses at the CLI's step counts (8 dB at 20 steps and 11 dB at 50 on 64² validation crops, blur σ = 2,
#: noise 0.01) and ζ = 1 gives 25.8 (λ = 1) / 27.8 dB (λ = 7, the official deblurring sweep's) at 20 steps.
DIFFPIR_DEBLUR = {"diffpir": {"zeta": 1.0, "lam": 7.0}}
DIFFPIR_SR = {"diffpir": {"zeta": 1.0}}

#: Inpainting options of DiffPIR: its official inpainting config (λ = 1, ζ = 1). pnp-hqs keeps DPIR's levels:
#: it starts from the operator's push-pull fill of the holes (``Inpainting.initial_estimate``).
INPAINT_DEFAULTS = {"diffpir": {"lam": 1.0, "zeta": 1.0}}

#: Default sampler and steps of each task, chosen by measurement (bench/task_defaults.py; table and choice in
#: bench/results/task_defaults.json): the best PSNR averaged over the task's cases on held-out validation crops
#: among runs whose CPU time, scaled to a 256² image, fits 60 s. Deblurring: DiffPIR (ζ = 1, λ = 7) with 50 steps
#: (Gaussian and motion kernels, `valid` boundary); super-resolution and inpainting (random and box masks):
#: pnp-hqs with 20; denoising: Tweedie.
TASK_DEFAULTS = {"deblur": ("diffpir", 50), "super-resolve": ("pnp-hqs", 20), "inpaint": ("pnp-hqs", 20),
                 "denoise": ("tweedie", None)}  # Tweedie is one step and has no steps option

#: Gaussian kernels alone: pnp-hqs with 16 iterations from 0.1 (25.5/255) down, cycling through the flips and
#: rotations. Chosen on 14 validation crops (the 9th-16th gray and 9th-14th colour images, 96², noise 0.01) among
#: 8-32 iterations, λ 0.12-0.4 and first levels 0.06-0.19: +1.30 dB over the best of Wiener / unsupervised
#: Wiener / Richardson-Lucy per image against DPIR's 8 iterations' +1.04 there. On the 14 crops of
#: ``python -m bench.deblur_kernels`` (not used for the choice; bench/results/deblur_kernels.json): +0.95 dB, where
#: DPIR's 8 iterations give +0.89 and DiffPIR-50 +0.56; on the other held-out images at larger crops (12 gray at
#: 176², 13 colour at 256²: deblur_gaussian_gray176.json, deblur_gaussian_rgb256.json) +1.00 and +1.01 dB. On
#: motion blur DiffPIR-50 stays far ahead.
GAUSSIAN_DEBLUR_DEFAULT = ("pnp-hqs", 16)
GAUSSIAN_DEBLUR_OPTIONS = {"sigma_start": 0.1}

#: Holes (a ``box:`` spec or a mask file): DiffPIR with 50 steps; scattered missing pixels (``random:``) keep the
#: task default, pnp-hqs. On held-out crops (``python -m bench.inpaint_holes``, bench/results/inpaint_holes.json)
#: DiffPIR fills every box from 6 to 48 px, drawn strokes 4-8 px wide and blobs better than pnp-hqs (likely
#: because pnp-hqs's flat, noise-free fill of a hole is unlike the noisy inputs its denoiser was trained on, and
#: the denoiser invents structure there), ties on 2 px strokes, and loses 1.6-2.3 dB on random masks of 50-90 %.
HOLES_INPAINT_DEFAULT = ("diffpir", 50)

#: pnp-hqs on deblurring, super-resolution and inpainting denoises the i-th iteration's estimate in the
#: (i mod 8)-th flip/rotation (DPIR's x8): on the crops of bench.deblur_kernels, +0.05 dB on Gaussian
#: deblurring (8 iterations), +0.04 on 4x super-resolution, +0.19 on random and +0.07 on box inpainting (20),
#: with the same calls.
PNP_HQS_IMAGING = {"pnp-hqs": {"cycle_transforms": True}}

#: Denoising averages the Tweedie estimates of the 8 flips/rotations of the input (DPIR's and SwinIR's "x8"), 8
#: network calls instead of 1, still far inside the 60 s budget at 256². On the priors' validation images
#: (bench/results/tweedie_ensemble.json, σ = 15 / 25 / 50): +0.06 / +0.06 / +0.07 dB with natural-gray (23 images)
#: and +0.12 / +0.14 / +0.16 with natural-rgb (24); ``--quality draft`` is the single call.
TWEEDIE_DENOISE = {"tweedie": {"transforms": 8}}

#: ``--quality`` presets from the same table. best: the best PSNR without a time budget (the defaults, except
#: super-resolution: DiffPIR with 100 steps, 0.04 dB above at seven times the time). draft: the best run within
#: a fifth of the default's time where one was measured (deblurring: pnp-hqs with DPIR's 8 iterations, 0.07 dB
#: below the Gaussian default and 2.9 dB below DiffPIR-50 on motion blur at an eighth of its time), else the default sampler with a fifth of its steps.
QUALITY = {"deblur": {"draft": ("pnp-hqs", 8), "best": ("diffpir", 50)},
           "super-resolve": {"draft": ("pnp-hqs", 4), "best": ("diffpir", 100)},
           "inpaint": {"draft": ("pnp-hqs", 4), "best": ("pnp-hqs", 20)},
           "denoise": {"draft": ("tweedie", None, {"transforms": 1})}}

#: CLI step counts of samplers whose paper defaults take far longer than minutes on a 256² image on a CPU
#: (one network evaluation ≈ 0.6 s, with backpropagation ≈ 1.2 s): DPS's and PSLD's 1000 steps with a VJP
#: each, RED-diff's 1000 (its official config runs 50), STSL's 125 steps of two evaluations and two VJPs.
CLI_STEPS = {"dps": 100, "psld": 100, "red-diff": 100, "stsl": 50, "ddpm": 100}


def _defaults(task: str, *tables: dict) -> dict:
    """Per-sampler options of ``task``: ``CLI_STEPS``, the given tables (later tables win), then the steps of
    the task's measured default sampler."""
    out: dict = {name: {"steps": steps} for name, steps in CLI_STEPS.items()}
    for table in tables:
        for name, options in table.items():
            out[name] = {**out.get(name, {}), **options}
    sampler, steps = TASK_DEFAULTS[task]
    if steps is not None:
        out[sampler] = {**out.get(sampler, {}), "steps": steps}
    return out


def _quality(task: str) -> dict:
    """``--quality`` presets of ``task`` (:data:`QUALITY`: ``(sampler, steps[, options])``; steps ``None`` for a
    sampler without them)."""
    presets = {}
    for level, (sampler, steps, *options) in QUALITY[task].items():
        presets[level] = {"sampler": sampler, **({"steps": steps} if steps is not None else {}), **dict(*options)}
    return presets


#: Assumed noise of a photo given to ``restore denoise`` without ``--noise``: σ = 25/255, the standard
#: benchmark level and a visibly noisy photo; pass ``--noise`` for other levels.
DENOISE_NOISE = 25 / 255


def _pixels(image: Image) -> torch.Tensor:
    x = image.data
    if x.ndim != 4 or x.is_complex():
        raise ShapeError(f"imaging tasks need a real 2D image (B, C, H, W), got shape {tuple(x.shape)}")
    return x


def _setup(op: LinearOperator, x: torch.Tensor, noise: float, simulate: bool,
           generator: torch.Generator) -> Setup:
    """Problem from a measured ``x`` (``simulate=False``) or a clean ``x`` degraded here."""
    from restore.operators import GaussianNoise
    from restore.problem import Problem

    noise_model = GaussianNoise(noise)
    if simulate:
        return Setup(Problem(noise_model.sample(op(x), generator), op, noise_model), reference=x)
    return Setup(Problem(x, op, noise_model))


def _boundaries(boundary: str, simulate_boundary: str | None, simulate: bool) -> tuple[str, str]:
    if simulate_boundary is not None and not simulate:
        raise InvalidInputError("--simulate-boundary only applies with --simulate; drop it or add --simulate")
    boundary = check_boundary(boundary)
    return boundary, check_boundary(simulate_boundary) if simulate_boundary is not None else boundary


def _filter_setup(op, sim, x: torch.Tensor, noise: float, simulate: bool, generator: torch.Generator) -> Setup:
    """Problem for a boundary-aware filter ``op``; with ``simulate`` the clean ``x`` is degraded by ``sim``.

    The output is the observation's field of view (``op.view``: a ``valid`` unknown's extension is cropped
    away), so a measured image is restored at its own size. A ``valid`` simulation observes the centre of
    the clean image only (the blur of the larger scene): the reference is then that centre.
    """
    from restore.operators import GaussianNoise
    from restore.problem import Problem

    noise_model = GaussianNoise(noise)
    if not simulate:
        op.forward(x.new_zeros((1, 1) + tuple(op.input_shape(x.shape)[-2:])))  # a filter that does not fit fails here
        return Setup(Problem(x, op, noise_model), view=op.view)
    y = noise_model.sample(sim(x), generator)
    return Setup(Problem(y, op, noise_model), reference=sim.view(x), view=op.view)


def _use_default(setup: Setup, sampler_steps: tuple[str, int], options: dict | None = None) -> None:
    """Make ``(sampler, steps)`` with ``options`` this input's default (the task's stays for the others)."""
    setup.default_sampler, steps = sampler_steps
    setup.sampler_options[setup.default_sampler] = {"steps": steps, **(options or {})}


def build_deblur(image: Image, noise: float, simulate: bool, generator: torch.Generator,
                 kernel: str = "gaussian:2.0", boundary: str = DEFAULT_BOUNDARY,
                 simulate_boundary: str | None = None) -> Setup:
    """Deconvolution with the blur given by ``kernel`` (see :func:`parse_kernel`) and ``boundary`` model;
    ``simulate_boundary`` (with ``simulate``) degrades with another model than the one restored with."""
    from .blur import GaussianBlur

    x = _pixels(image)
    boundary, sim_boundary = _boundaries(boundary, simulate_boundary, simulate)
    op = parse_kernel(kernel, boundary)
    # a kernel larger than the photo is a mistake whatever the model (valid could take it, but would then
    # have to invent more of the scene than it observed)
    op._check_fits(*x.shape[-2:])
    sim = parse_kernel(kernel, sim_boundary) if simulate else op
    setup = _filter_setup(op, sim, x, noise, simulate, generator)
    if isinstance(op, GaussianBlur):
        _use_default(setup, GAUSSIAN_DEBLUR_DEFAULT, GAUSSIAN_DEBLUR_OPTIONS)
    return setup


def build_super_resolve(image: Image, noise: float, simulate: bool, generator: torch.Generator,
                        scale: int = 4, method: str = "bicubic", boundary: str = DEFAULT_BOUNDARY,
                        simulate_boundary: str | None = None) -> Setup:
    """Super-resolution by ``scale`` with the ``boundary`` model of the downsampling filter. With
    ``simulate`` the clean image is first cropped (bottom/right) to a size the degradation maps to whole
    low-res pixels; the reference is the observed field of view of that crop."""
    from .resize import SuperResolution

    x = _pixels(image)
    boundary, sim_boundary = _boundaries(boundary, simulate_boundary, simulate)
    op = SuperResolution(scale, method, boundary)
    sim = SuperResolution(scale, method, sim_boundary) if simulate else op
    f = op.factor
    if simulate:
        eh, ew = sim._extension()
        x = x[..., : x.shape[-2] - (x.shape[-2] - eh) % f, : x.shape[-1] - (x.shape[-1] - ew) % f]
        if x.shape[-2] - eh < f or x.shape[-1] - ew < f:
            size = "x".join(str(n) for n in image.data.shape[-2:])
            raise ShapeError(f"the {size} image is too small for x{f} super-resolution with the {sim_boundary} "
                             "boundary; use a smaller --scale or a larger image")
    return _filter_setup(op, sim, x, noise, simulate, generator)


def build_inpaint(image: Image, noise: float, simulate: bool, generator: torch.Generator,
                  mask: str = "random:0.5") -> Setup:
    """Inpainting with the mask given by ``mask`` (see :func:`parse_mask`); missing pixels are zeroed in
    ``y`` (a measured input's content there is discarded)."""
    x = _pixels(image)
    op = parse_mask(mask)
    setup = _setup(op, x, noise, simulate, generator)
    setup.problem.y = op(setup.problem.y)  # keeps y in the range of A: no noise or content in the holes
    if op.fraction is None:  # a box or a mask file: holes, not scattered pixels
        _use_default(setup, HOLES_INPAINT_DEFAULT)
    return setup


def build_denoise(image: Image, noise: float, simulate: bool, generator: torch.Generator) -> Setup:
    """Gaussian denoising (``A = I``)."""
    from restore.operators import Identity

    return _setup(Identity(), _pixels(image), noise, simulate, generator)


def deblur_task() -> Task:
    return Task(
        name="deblur", build=build_deblur,
        options=(TaskOption("kernel", str, "gaussian:2.0", f"blur kernel: {KERNEL_FORMS}"),
                 TaskOption("boundary", str, DEFAULT_BOUNDARY, BOUNDARY_HELP),
                 TaskOption("simulate_boundary", str, None, SIMULATE_BOUNDARY_HELP)),
        default_sampler=TASK_DEFAULTS["deblur"][0], sampler_defaults=_defaults("deblur", DDS_IMAGING,
                                                                                DIFFPIR_DEBLUR, PNP_HQS_IMAGING),
        default_noise=0.01, estimate_noise="on request", quality=_quality("deblur"))


def super_resolve_task() -> Task:
    return Task(
        name="super-resolve", build=build_super_resolve,
        options=(TaskOption("scale", int, 4, "upscaling factor (integer)"),
                 TaskOption("method", str, "bicubic", f"assumed downsampling: {' | '.join(RESIZE_METHODS)}"),
                 TaskOption("boundary", str, DEFAULT_BOUNDARY, BOUNDARY_HELP),
                 TaskOption("simulate_boundary", str, None, SIMULATE_BOUNDARY_HELP)),
        default_sampler=TASK_DEFAULTS["super-resolve"][0],
        sampler_defaults=_defaults("super-resolve", DDS_IMAGING, DIFFPIR_SR, PNP_HQS_IMAGING),
        default_noise=0.01, quality=_quality("super-resolve"))


def inpaint_task() -> Task:
    # Noiseless by default: the observed pixels are kept as they are (8-bit quantisation is ~0.001), as in
    # the DDS and DiffPIR inpainting configs.
    return Task(
        name="inpaint", build=build_inpaint,
        options=(TaskOption("mask", str, "random:0.5",
                            "mask image (white = observed), random:FRACTION (share missing) or box:TOP,LEFT,H,W"),),
        default_sampler=TASK_DEFAULTS["inpaint"][0],
        sampler_defaults=_defaults("inpaint", {"dps": {"zeta": 0.5}}, DDS_IMAGING, INPAINT_DEFAULTS,
                                   PNP_HQS_IMAGING),
        default_noise=0.0, quality=_quality("inpaint"))


def denoise_task() -> Task:
    return Task(
        name="denoise", build=build_denoise,
        default_sampler=TASK_DEFAULTS["denoise"][0],
        sampler_defaults=_defaults("denoise", DDS_DENOISE, TWEEDIE_DENOISE),
        default_noise=DENOISE_NOISE, estimate_noise="by default", quality=_quality("denoise"))

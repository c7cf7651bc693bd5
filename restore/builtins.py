"""The engine's own components, registered through the same hooks as any plugin."""
from __future__ import annotations

from .hookspecs import hookimpl


#: The engine's samplers: (name, "module:Class", summary, cost per step). What each accepts (prior families,
#: operator requirements) is declared on its class.
SAMPLERS = (
    ("ddim", "restore.samplers.ddim:DDIM",
     "unconditional DDIM (eta)",
     "1 NFE"),
    ("ddpm", "restore.samplers.ddpm:DDPM",
     "unconditional DDPM ancestral sampling",
     "1 NFE"),
    ("dps", "restore.samplers.dps:DPS",
     "diffusion posterior sampling (Chung et al. 2023); any differentiable operator",
     "1 NFE + 1 VJP"),
    ("dds", "restore.samplers.dds:DDS",
     "decomposed diffusion sampler: Tweedie + CG in the Krylov subspace (Chung et al. 2024)",
     "1 NFE + M CG (A, Aᴴ)"),
    ("tweedie", "restore.samplers.tweedie:Tweedie",
     "one-step Tweedie posterior mean for denoising (the PSNR-optimal prior estimate)",
     "1 NFE"),
    # -- variational and second-order samplers (issue 5) --
    ("red-diff", "restore.samplers.red_diff:REDDiff",
     "RED-diff variational optimiser (Mardani et al. 2024): Adam on data fit + denoiser regulariser from "
     "the pseudo-inverse; any differentiable operator",
     "1 NFE, 0 VJP (backprop through the operator only)"),
    ("psld", "restore.samplers.psld:PSLD",
     "latent DPS with the gluing term (Rout et al. 2023); needs a latent prior",
     "1 NFE + 1 VJP (UNet + decoder + encoder)"),
    ("stsl", "restore.samplers.stsl:STSL",
     "second-order Tweedie surrogate (Rout et al. 2024): DPS/PSLD guidance + Hutchinson Hessian-trace "
     "term; latent or pixel priors",
     "fd: 2 NFE + 2 VJP; jvp: 1 NFE + 3 VJP (double backward)"),
    # -- inversion and blind restoration (issue 6) --
    ("bdia", "restore.samplers.bdia:BDIA",
     "BDIA-DDIM: time-reversible DDIM (gamma); exact inversion via restore.invert (Zhang et al. 2024)",
     "1 NFE"),
    ("bdia-edm", "restore.samplers.bdia_edm:BDIAEDM",
     "BDIA on the deterministic EDM/Heun sampler (VP prior viewed as EDM); exact inversion",
     "2 NFE"),
    ("ddim-inversion", "restore.samplers.ddim_inversion:DDIMInversion",
     "naive DDIM inversion + DDIM decoding of the input (inexact baseline for BDIA)",
     "2 NFE (invert + decode)"),
    ("code", "restore.samplers.code:CODE",
     "CODE blind restoration: ODE inversion, Langevin with confidence clipping, decoding",
     "1 NFE (+ Langevin steps)"),
    # -- mean-reverting samplers (issue 7) --
    ("ir-sde", "restore.samplers.ir_sde:IRSDE",
     "IR-SDE reverse sampling (posterior or Euler-Maruyama) for mean-reverting priors (Luo et al. 2023)",
     "1 NFE"),
    ("mrs", "restore.samplers.mrs:MRS",
     "MRS fast ODE/SDE solvers (orders 1-2, data/noise forms) for mean-reverting priors (Li et al. 2025)",
     "1 NFE"),
    # -- plug-and-play and SVD samplers (issue 16) --
    ("diffpir", "restore.samplers.diffpir:DiffPIR",
     "DiffPIR (Zhu et al. 2023): HQS with the Tweedie denoiser and the operator's closed-form prox",
     "1 NFE + 1 prox"),
    ("pnp-hqs", "restore.samplers.pnp_hqs:PnPHQS",
     "DPIR-style plug-and-play HQS (Zhang et al. 2021): the prior as a noise-level-conditioned denoiser, "
     "log-spaced levels",
     "1 NFE + 1 prox per iteration"),
    ("ddrm", "restore.samplers.ddrm:DDRM",
     "DDRM (Kawar et al. 2022): spectral variational sampling; needs the operator's SVD",
     "1 NFE + SVD transforms"),
    ("ddnm", "restore.samplers.ddnm:DDNM",
     "DDNM / DDNM+ (Wang et al. 2023): range-null-space correction; needs the operator's SVD",
     "1 NFE + SVD transforms"),
    ("pigdm", "restore.samplers.pigdm:PiGDM",
     "ΠGDM (Song et al. 2023): pseudo-inverse guidance through the network (VJP)",
     "1 NFE + 1 VJP + 1 prox/pinv"),
    # -- asymptotically exact particle and MCMC samplers (issue 19) --
    ("smc", "restore.samplers.smc:SMC",
     "twisted SMC (Wu et al. 2023): N weighted particles, exact as N grows; --samples N = N particles",
     "N NFE (+ N VJP with proposal=gradient)"),
    ("fkc", "restore.samplers.fkc:FKC",
     "Feynman-Kac correctors (Skreta et al. 2025): SMC for p^beta, CFG between two priors, product of "
     "experts",
     "N NFE (two priors: 2N)"),
    ("dmcmc", "restore.samplers.dmcmc:DMCMC",
     "Denoising MCMC (Kim & Ye 2022): Langevin/HMC on (x, noise level), then a short reverse diffusion; "
     "posterior with a measurement",
     "1 NFE (+1 VJP for the level) per MCMC step, then 1 NFE per reverse step"),
    # -- volume samplers (issue 8) --
    ("dds-3d", "restore.volumes.dds3d:DDS3D",
     "DDS on volumes (B, C, D, H, W) with a 2D prior, slices chunked, TV along z by ADMM "
     "(DiffusionMBIR/DDS 3D); slicewise=True drops the coupling",
     "D/chunk NFE calls + M CG (A, Aᵀ, D_z) per step"),
    # -- fast ODE/SDE solvers and the VE samplers (issue 17) --
    ("dpm-solver", "restore.samplers.dpm_solver:DPMSolver",
     "DPM-Solver-1/2/3 (noise prediction), singlestep or multistep (Lu et al. 2022)",
     "1 NFE per step (multistep) / order NFE per step (singlestep); no VJP"),
    ("dpm-solver++", "restore.samplers.dpm_solver_pp:DPMSolverPP",
     "DPM-Solver++ 2M/3M (data prediction), SDE variant, heavy-ball momentum (Lu et al. 2022)",
     "1 NFE per step; no VJP"),
    ("dpm-solver-v3", "restore.samplers.dpm_solver_v3:DPMSolverV3",
     "DPM-Solver-v3 with empirical model statistics (`restore ems PRIOR`; Zheng et al. 2023)",
     "1 NFE per step; no VJP"),
    ("ve-pc", "restore.samplers.ve_pc:VEPC",
     "VE SDE predictor-corrector: reverse diffusion + annealed Langevin (Song et al. 2021); VP priors "
     "converted exactly",
     "(1 + corrector_steps) NFE per level"),
    ("ve-ode", "restore.samplers.ve_ode:VEODE",
     "VE probability-flow ODE, Heun (Song et al. 2021); VP priors converted exactly",
     "2 NFE per step (Heun)"),
    # -- flows: rectified flow / stochastic interpolants; VP priors reparameterised exactly (issue 18) --
    ("flow-euler", "restore.samplers.flow_euler:FlowEuler",
     "Euler on the flow ODE (rectified flow); on a VP prior this is DDIM",
     "1 NFE per step"),
    ("flow-heun", "restore.samplers.flow_heun:FlowHeun",
     "Heun (second order) on the flow ODE; Euler on the last step",
     "2 NFE per step"),
    ("rf-solver", "restore.samplers.rf_solver:RFSolver",
     "RF-Solver (Wang et al. 2024): second-order Taylor step of the velocity; inversion via restore invert"
     " --sampler rf-solver",
     "2 NFE per step"),
    ("flowchef", "restore.samplers.flowchef:FlowChef",
     "FlowChef (Patel et al. 2024): data-term gradient at x0-hat applied in the vector field, no network "
     "backprop; any differentiable operator",
     "1 NFE per step, no VJP"),
    ("flow-smc", "restore.samplers.flow_smc:FlowSMC",
     "inference-time scaling (Kim et al. 2025): N particles on the stochastic flow weighted by the "
     "likelihood; --samples N = N particles, budget= total NFE",
     "N NFE per step, no VJP"),
)


@hookimpl
def restore_register_samplers(register):
    for name, target, summary, cost in SAMPLERS:
        register(name, target, summary=summary, cost=cost)


@hookimpl
def restore_register_priors(register):
    register("gaussian", "restore.priors.analytic:GaussianPrior", kind="analytic", channels=None,
             summary="analytic Gaussian N(mean, cov), any shape, exact scores (test oracle)")
    register("gmm", "restore.priors.analytic:GMMPrior", kind="analytic", channels=None,
             summary="analytic Gaussian mixture, any shape, exact scores (test oracle)")
    register("mean-reverting-gaussian", "restore.priors.mean_reverting:MeanRevertingGaussianPrior",
             kind="mean-reverting", channels=None,
             summary="analytic mean-reverting Gaussian x0 ~ N(m0, s0^2 I), exact noise (test oracle for ir-sde/mrs)")
    register("stationary-gaussian", "restore.priors.stationary:default_stationary_prior", kind="analytic",
             channels=None, per_channel_factory=True, default_for=("natural", "medical"), rank=0,
             summary="Gaussian with a fitted power-law spectrum (FFT-diagonal); no training, any size")
    register("ve-gaussian", "restore.priors.ve:VEGaussianPrior", kind="analytic-ve", channels=None,
             summary="analytic Gaussian in VE (score) form, exact scores and marginals (test oracle)")
    register("ve-gmm", "restore.priors.ve:VEGMMPrior", kind="analytic-ve", channels=None,
             summary="analytic Gaussian mixture in VE (score) form (test oracle)")
    register("gaussian-flow", "restore.priors.flow:GaussianFlowPrior", kind="analytic-flow", channels=None,
             summary="analytic Gaussian as a flow (rectified or trigonometric interpolant), exact velocity (test oracle)")


@hookimpl
def restore_register_commands(app):
    from .cli.ems import register  # `restore ems PRIOR`: statistics for dpm-solver-v3

    register(app)


@hookimpl
def restore_register_tasks(register):
    # -- blind restoration (issue 6) --
    register("enhance", "restore.enhance_task:TASK",
             summary="blind restoration of a corrupted photo (CODE: ODE inversion, Langevin, confidence clipping)")


@hookimpl
def restore_register_readers(register):
    from .pillow_formats import pillow_read_extensions

    register("pillow", "restore.io.pillow_io:read_pillow_factory", extensions=pillow_read_extensions())
    register("tiff", "restore.io.pillow_io:read_tiff_factory", extensions=(".tif", ".tiff"))


@hookimpl
def restore_register_writers(register):
    from .pillow_formats import pillow_write_extensions

    register("png", "restore.io.pillow_io:write_png_factory", extensions=(".png",))
    register("jpeg", "restore.io.pillow_io:write_jpeg_factory", extensions=(".jpg", ".jpeg"))
    register("tiff", "restore.io.pillow_io:write_tiff_factory", extensions=(".tif", ".tiff"))
    register("pillow", "restore.io.pillow_io:write_pillow_factory", extensions=pillow_write_extensions())

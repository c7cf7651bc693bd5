"""The engine's own components, registered through the same hooks as any plugin."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def restore_register_samplers(register):
    register("ddim", "restore.samplers.ddim:DDIM", summary="unconditional DDIM (eta)",
             cost="1 NFE")
    register("ddpm", "restore.samplers.ddpm:DDPM", summary="unconditional DDPM ancestral sampling",
             cost="1 NFE")
    register("dps", "restore.samplers.dps:DPS",
             summary="diffusion posterior sampling (Chung et al. 2023); any differentiable operator",
             cost="1 NFE + 1 VJP")
    register("dds", "restore.samplers.dds:DDS",
             summary="decomposed diffusion sampler: Tweedie + CG in the Krylov subspace (Chung et al. 2024)",
             cost="1 NFE + M CG (A, Aᴴ)")
    register("tweedie", "restore.samplers.tweedie:Tweedie",
             summary="one-step Tweedie posterior mean for denoising (the PSNR-optimal prior estimate)",
             cost="1 NFE")
    # -- variational and second-order samplers (issue 5) --
    register("red-diff", "restore.samplers.red_diff:REDDiff",
             summary="RED-diff variational optimiser (Mardani et al. 2024): Adam on data fit + denoiser "
                     "regulariser from the pseudo-inverse; any differentiable operator",
             cost="1 NFE, 0 VJP (backprop through the operator only)")
    register("psld", "restore.samplers.psld:PSLD",
             summary="latent DPS with the gluing term (Rout et al. 2023); needs a latent prior",
             cost="1 NFE + 1 VJP (UNet + decoder + encoder)")
    register("stsl", "restore.samplers.stsl:STSL",
             summary="second-order Tweedie surrogate (Rout et al. 2024): DPS/PSLD guidance + Hutchinson "
                     "Hessian-trace term; latent or pixel priors",
             cost="fd: 2 NFE + 2 VJP; jvp: 1 NFE + 3 VJP (double backward)")
    # -- inversion and blind restoration (issue 6) --
    register("bdia", "restore.samplers.bdia:BDIA",
             summary="BDIA-DDIM: time-reversible DDIM (gamma); exact inversion via restore.invert (Zhang et al. 2024)",
             cost="1 NFE")
    register("bdia-edm", "restore.samplers.bdia_edm:BDIAEDM",
             summary="BDIA on the deterministic EDM/Heun sampler (VP prior viewed as EDM); exact inversion",
             cost="2 NFE")
    register("ddim-inversion", "restore.samplers.ddim_inversion:DDIMInversion",
             summary="naive DDIM inversion + DDIM decoding of the input (inexact baseline for BDIA)",
             cost="2 NFE (invert + decode)")
    register("code", "restore.samplers.code:CODE",
             summary="CODE blind restoration: ODE inversion, Langevin with confidence clipping, decoding",
             cost="1 NFE (+ Langevin steps)")
    # -- mean-reverting samplers (issue 7) --
    register("ir-sde", "restore.samplers.ir_sde:IRSDE",
             summary="IR-SDE reverse sampling (posterior or Euler-Maruyama) for mean-reverting priors (Luo et al. 2023)",
             cost="1 NFE")
    register("mrs", "restore.samplers.mrs:MRS",
             summary="MRS fast ODE/SDE solvers (orders 1-2, data/noise forms) for mean-reverting priors (Li et al. 2025)",
             cost="1 NFE")
    # -- plug-and-play and SVD samplers (issue 16) --
    register("diffpir", "restore.samplers.diffpir:DiffPIR",
             summary="DiffPIR (Zhu et al. 2023): HQS with the Tweedie denoiser and the operator's closed-form prox",
             cost="1 NFE + 1 prox")
    register("pnp-hqs", "restore.samplers.pnp_hqs:PnPHQS",
             summary="DPIR-style plug-and-play HQS (Zhang et al. 2021): the prior as a noise-level-conditioned "
                     "denoiser, log-spaced levels",
             cost="1 NFE + 1 prox per iteration")
    register("ddrm", "restore.samplers.ddrm:DDRM",
             summary="DDRM (Kawar et al. 2022): spectral variational sampling; needs the operator's SVD",
             cost="1 NFE + SVD transforms")
    register("ddnm", "restore.samplers.ddnm:DDNM",
             summary="DDNM / DDNM+ (Wang et al. 2023): range-null-space correction; needs the operator's SVD",
             cost="1 NFE + SVD transforms")
    register("pigdm", "restore.samplers.pigdm:PiGDM",
             summary="ΠGDM (Song et al. 2023): pseudo-inverse guidance through the network (VJP)",
             cost="1 NFE + 1 VJP + 1 prox/pinv")
    # -- asymptotically exact particle and MCMC samplers (issue 19) --
    register("smc", "restore.samplers.smc:SMC",
             summary="twisted SMC (Wu et al. 2023): N weighted particles, exact as N grows; --samples N = N particles",
             cost="N NFE + N VJP")
    register("fkc", "restore.samplers.fkc:FKC",
             summary="Feynman-Kac correctors (Skreta et al. 2025): SMC for p^beta, CFG between two priors, "
                     "product of experts",
             cost="N NFE (two priors: 2N)")
    register("dmcmc", "restore.samplers.dmcmc:DMCMC",
             summary="Denoising MCMC (Kim & Ye 2022): Langevin/HMC on (x, noise level), then a short reverse "
                     "diffusion; posterior with a measurement",
             cost="1 NFE (+1 VJP for the level) per MCMC step, then 1 NFE per reverse step")
    # -- volume samplers (issue 8) --
    register("dds-3d", "restore.volumes.dds3d:DDS3D",
             summary="DDS on volumes (B, C, D, H, W) with a 2D prior, slices chunked, TV along z by ADMM "
                     "(DiffusionMBIR/DDS 3D); slicewise=True drops the coupling",
             cost="D/chunk NFE calls + M CG (A, Aᵀ, D_z) per step")
    # -- fast ODE/SDE solvers and the VE samplers (issue 17) --
    register("dpm-solver", "restore.samplers.dpm_solver:DPMSolver",
             summary="DPM-Solver-1/2/3 (noise prediction), singlestep or multistep (Lu et al. 2022)",
             cost="1 NFE per step (multistep) / order NFE per step (singlestep); no VJP")
    register("dpm-solver++", "restore.samplers.dpm_solver_pp:DPMSolverPP",
             summary="DPM-Solver++ 2M/3M (data prediction), SDE variant, heavy-ball momentum (Lu et al. 2022)",
             cost="1 NFE per step; no VJP")
    register("dpm-solver-v3", "restore.samplers.dpm_solver_v3:DPMSolverV3",
             summary="DPM-Solver-v3 with empirical model statistics (`restore ems PRIOR`; Zheng et al. 2023)",
             cost="1 NFE per step; no VJP")
    register("ve-pc", "restore.samplers.ve_pc:VEPC",
             summary="VE SDE predictor-corrector: reverse diffusion + annealed Langevin (Song et al. 2021); "
                     "VP priors converted exactly",
             cost="(1 + corrector_steps) NFE per level")
    register("ve-ode", "restore.samplers.ve_ode:VEODE",
             summary="VE probability-flow ODE, Heun (Song et al. 2021); VP priors converted exactly",
             cost="2 NFE per step (Heun)")
    # -- flows: rectified flow / stochastic interpolants; VP priors reparameterised exactly (issue 18) --
    register("flow-euler", "restore.samplers.flow_euler:FlowEuler", requires=(),
             summary="Euler on the flow ODE (rectified flow); on a VP prior this is DDIM", cost="1 NFE per step")
    register("flow-heun", "restore.samplers.flow_heun:FlowHeun", requires=(),
             summary="Heun (second order) on the flow ODE; Euler on the last step", cost="2 NFE per step")
    register("rf-solver", "restore.samplers.rf_solver:RFSolver", requires=(),
             summary="RF-Solver (Wang et al. 2024): second-order Taylor step of the velocity; inversion via "
                     "restore invert --sampler rf-solver", cost="2 NFE per step")
    register("flowchef", "restore.samplers.flowchef:FlowChef",
             summary="FlowChef (Patel et al. 2024): data-term gradient at x0-hat applied in the vector field, "
                     "no network backprop; any differentiable operator", cost="1 NFE per step, no VJP")
    register("flow-smc", "restore.samplers.flow_smc:FlowSMC",
             summary="inference-time scaling (Kim et al. 2025): N particles on the stochastic flow weighted by the "
                     "likelihood; --samples N = N particles, budget= total NFE", cost="N NFE per step, no VJP")


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

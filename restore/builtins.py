"""The engine's own components, registered through the same hooks as any plugin."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def restore_register_samplers(register):
    register("ddim", "restore.samplers.ddim:DDIM", requires=(), summary="unconditional DDIM (eta)",
             cost="1 NFE")
    register("ddpm", "restore.samplers.ddpm:DDPM", requires=(), summary="unconditional DDPM ancestral sampling",
             cost="1 NFE")
    register("dps", "restore.samplers.dps:DPS", requires=("operator",),
             summary="diffusion posterior sampling (Chung et al. 2023); any differentiable operator",
             cost="1 NFE + 1 VJP")
    register("dds", "restore.samplers.dds:DDS", requires=("operator", "linear"),
             summary="decomposed diffusion sampler: Tweedie + CG in the Krylov subspace (Chung et al. 2024)",
             cost="1 NFE + M CG (A, Aᴴ)")
    # -- variational and second-order samplers (issue 5) --
    # -- inversion and blind restoration (issue 6) --
    register("bdia", "restore.samplers.bdia:BDIA", requires=(),
             summary="BDIA-DDIM: time-reversible DDIM (gamma); exact inversion via restore.invert (Zhang et al. 2024)",
             cost="1 NFE")
    register("bdia-edm", "restore.samplers.bdia_edm:BDIAEDM", requires=(),
             summary="BDIA on the deterministic EDM/Heun sampler (VP prior viewed as EDM); exact inversion",
             cost="2 NFE")
    register("ddim-inversion", "restore.samplers.ddim_inversion:DDIMInversion", requires=("operator",),
             summary="naive DDIM inversion + DDIM decoding of the input (inexact baseline for BDIA)",
             cost="2 NFE (invert + decode)")
    register("code", "restore.samplers.code:CODE", requires=("operator",),
             summary="CODE blind restoration: ODE inversion, Langevin with confidence clipping, decoding",
             cost="1 NFE (+ Langevin steps)")
    # -- mean-reverting samplers (issue 7) --
    # -- volume samplers (issue 8) --


@hookimpl
def restore_register_priors(register):
    register("gaussian", "restore.priors.analytic:GaussianPrior", kind="analytic", channels=None,
             summary="analytic Gaussian N(mean, cov), any shape, exact scores (test oracle)")
    register("gmm", "restore.priors.analytic:GMMPrior", kind="analytic", channels=None,
             summary="analytic Gaussian mixture, any shape, exact scores (test oracle)")
    register("stationary-gaussian", "restore.priors.stationary:default_stationary_prior", kind="analytic",
             channels=None, per_channel_factory=True, default_for=("natural", "medical"), rank=0,
             summary="Gaussian with a fitted power-law spectrum (FFT-diagonal); no training, any size")


@hookimpl
def restore_register_readers(register):
    register("pillow", "restore.io.pillow_io:read_pillow_factory", extensions=(".png", ".jpg", ".jpeg"))
    register("tiff", "restore.io.pillow_io:read_tiff_factory", extensions=(".tif", ".tiff"))


@hookimpl
def restore_register_writers(register):
    register("png", "restore.io.pillow_io:write_png_factory", extensions=(".png",))
    register("jpeg", "restore.io.pillow_io:write_jpeg_factory", extensions=(".jpg", ".jpeg"))
    register("tiff", "restore.io.pillow_io:write_tiff_factory", extensions=(".tif", ".tiff"))

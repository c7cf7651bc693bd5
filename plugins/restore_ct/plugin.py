"""Hook implementations of the CT plugin: Radon operators, FBP/TV baselines, ``.npy`` I/O and ``restore ct``."""
from restore.hookspecs import file_format_hooks, hookimpl


@hookimpl
def restore_register_operators(register):
    register("ct-parallel", "restore_ct.radon:make_parallel", linear=True, domain="ct",
             summary="parallel-beam Radon (size, views=N over [0,180) | angles | limited_angle=120, detectors); "
                     "exact matched adjoint")
    register("ct-fan", "restore_ct.radon:make_fan", linear=True, domain="ct",
             summary="fan-beam Radon, flat detector (size, views=N over [0,360) | angles | limited_angle, "
                     "detectors, source_distance); exact matched adjoint")


@hookimpl
def restore_register_samplers(register):
    register("ct-fbp", "restore_ct.recon:FBP",
             summary="CT baseline: filtered back-projection (ramp, shepp-logan, cosine, hamming, hann); prior unused",
             cost="1 Aᵀ")
    register("ct-tv", "restore_ct.recon:TV",
             summary="CT baseline: TV-regularised least squares by ADMM with CG x-updates; prior unused",
             cost="steps x cg_iters x (A, Aᵀ)")


@hookimpl
def restore_register_tasks(register):
    register("ct", "restore_ct.tasks:TASK",
             summary="sparse-view / limited-angle CT from a sinogram (or --simulate from an image/volume), 2D and 3D")


restore_register_readers, restore_register_writers = file_format_hooks(("npy", "restore_ct.npy_io", (".npy",)))

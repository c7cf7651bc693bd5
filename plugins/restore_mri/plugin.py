"""Hook implementations of the MRI plugin: operators, baselines, the fastMRI reader/writer and ``restore mri``."""
from restore.hookspecs import file_format_hooks, hookimpl


@hookimpl
def restore_register_operators(register):
    register("mri-single", "restore_mri.operators:make_single", linear=True, domain="mri",
             summary="single-coil Cartesian MRI y = M F x (mask, shape); centred orthonormal FFT, complex")
    register("mri-multicoil", "restore_mri.operators:make_multicoil", linear=True, domain="mri",
             summary="multi-coil SENSE y_c = M F S_c x (maps, mask); Hermitian adjoint")


@hookimpl
def restore_register_samplers(register):
    register("mri-zero-filled", "restore_mri.recon:ZeroFilled",
             summary="MRI baseline: RSS of zero-filled coil images (prior unused)", cost="1 A^H")
    register("mri-sense", "restore_mri.recon:Sense",
             summary="MRI baseline: SENSE by CG on the normal equations (prior unused)", cost="steps x (A, A^H)")
    register("mri-tv", "restore_mri.recon:TV",
             summary="MRI baseline: TV-regularised ADMM with CG x-updates (prior unused)",
             cost="steps x cg_iters x (A, A^H)")


@hookimpl
def restore_register_tasks(register):
    register("mri", "restore_mri.tasks:TASK",
             summary="undersampled Cartesian MRI (fastMRI .h5 k-space, or --simulate from a magnitude image)")


restore_register_readers, restore_register_writers = file_format_hooks(("fastmri", "restore_mri.fastmri", (".h5",)))

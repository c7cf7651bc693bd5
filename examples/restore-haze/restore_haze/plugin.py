"""Hook implementations: what this plugin adds to restore.

Factories are lazy ``"module:Name"`` strings, so ``restore --help`` does not import the operators.
"""
from restore.hookspecs import hookimpl


@hookimpl
def restore_register_operators(register):
    register("vignetting", "restore_haze.operators:Vignetting", linear=True, domain="image",
             summary="radial brightness fall-off towards the corners, y = v(r) · x (example plugin)")
    register("haze", "restore_haze.operators:Haze", linear=False, domain="image",
             summary="atmospheric scattering y = x·t + A(1 - t), t = exp(-beta·depth) (example plugin)")


@hookimpl
def restore_register_tasks(register):
    register("dehaze", "restore_haze.task:TASK",
             summary="remove haze (atmospheric scattering model, known beta and airlight); example plugin")

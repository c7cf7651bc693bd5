"""The plugin-author contract: every hook a ``restore`` plugin may implement.

A plugin is a module (or object) exposed through the ``restore.plugins`` entry-point group, e.g.::

    [project.entry-points."restore.plugins"]
    myplugin = "my_package.plugin"

and decorated with :data:`hookimpl`::

    from restore.hookspecs import hookimpl

    @hookimpl
    def restore_register_operators(register):
        register("vignetting", "my_package.ops:Vignetting", linear=True, domain="image",
                 summary="radial brightness fall-off")

Rules shared by every ``restore_register_*`` hook:

* ``register(name, factory, **metadata)`` records a component. ``factory`` is a callable returning the
  component, or a lazy string ``"package.module:Name"`` imported only when the component is used, so that
  ``restore --help`` imports no model code.
* Names are lower-case, words joined by ``-`` (``motion-blur``). A name registered twice for the same kind
  is an error naming both plugins; prefix your names (``acme-haze``) if they may collide.
* A hook that raises, or a plugin module that fails to import, disables only that plugin: a one-line
  warning names it, ``restore plugins`` lists it as failed, and ``RESTORE_STRICT_PLUGINS=1`` turns the
  warning into an error.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("restore")
hookimpl = pluggy.HookimplMarker("restore")


@hookspec
def restore_register_operators(register) -> None:
    """Register degradation operators.

    ``register(name, factory, *, linear: bool, domain: str = "image", summary: str = "")``.
    ``factory(**params)`` returns a :class:`restore.Operator` (a :class:`restore.LinearOperator` when
    ``linear=True``; linear operators must pass :func:`restore.testing.check_adjoint`). ``domain`` is
    ``"image"``, ``"mri"``, ``"ct"`` or your own label.
    """


@hookspec
def restore_register_priors(register) -> None:
    """Register priors.

    ``register(name, factory, *, kind: str, channels: int | None, summary: str = "",
    default_for: tuple[str, ...] = (), rank: int = 0, per_channel_factory: bool = False, path: str = "",
    estimate=None)`` (the fields of :class:`restore.registry.PriorRecord`, checked at ``register``). ``kind``
    is ``"vp"``, ``"mean-reverting"``, ``"latent"`` or ``"analytic"``; ``channels=None`` means any.
    ``default_for`` lists domains (``"natural"``, ``"medical"``) for which the prior may be picked as the
    default; the highest ``rank`` whose channels match wins. ``factory(**params)`` returns a
    :class:`restore.Prior` of one of the families (:class:`restore.DiffusionPrior`,
    :class:`restore.priors.LatentFamily`, :class:`restore.priors.MeanRevertingFamily`). ``estimate``, if given,
    is a cheap callable returning ``{"parameters": int, "seconds_per_call": float}`` for
    ``restore list priors`` (called only when listing).
    """


@hookspec
def restore_register_samplers(register) -> None:
    """Register samplers.

    ``register(name, factory, *, summary: str = "", cost: str = "")`` (:class:`restore.registry.SamplerRecord`,
    checked at ``register``). ``factory(**config_fields)`` returns a :class:`restore.Sampler`; what it
    accepts is declared once, on the class: ``families`` (prior family types) and ``requires``
    (``"operator"``: a measurement, ``"linear"``: a linear operator). ``restore list samplers`` and the
    engine's mismatch errors read that declaration. ``cost`` is a short per-step cost, e.g. ``"1 NFE + 1 VJP"``.
    """


@hookspec
def restore_register_tasks(register) -> None:
    """Register CLI tasks (each becomes a ``restore <name>`` command and is usable by ``restore batch``).

    ``register(name, factory, *, summary)`` where ``factory`` is a :class:`restore.tasks.Task` or a callable
    returning one (lazily, as ``"package.module:TASK"``). A Task that leaves ``name`` and ``summary`` empty
    takes them from this registration. ``restore NAME --help`` imports the factory's module to read the
    task's options: keep torch imports out of its top level (import them in ``build``); ``restore list
    tasks`` shows ``summary`` without importing it.
    """


@hookspec
def restore_register_readers(register) -> None:
    """Register file readers: ``register(name, factory, *, extensions: tuple[str, ...])``.

    ``factory()`` returns a callable ``read(path) -> restore.Image``. Extensions are lower-case with
    the dot (``".nii.gz"``); the longest matching extension wins.
    """


@hookspec
def restore_register_writers(register) -> None:
    """Register file writers: ``register(name, factory, *, extensions: tuple[str, ...])``.

    ``factory()`` returns a callable ``write(path, image: restore.Image) -> None`` that writes the whole
    file at ``path`` (the caller handles atomic renaming).
    """


@hookspec
def restore_register_commands(app) -> None:
    """Escape hatch: add commands to the ``restore`` typer application ``app``."""


def file_format_hooks(*formats: tuple[str, str, tuple[str, ...]]):
    """The reader and writer hooks of file formats whose module has both a ``read_factory`` and a
    ``write_factory``: each ``(name, module, extensions)`` registers the two for the same extensions.
    Assign the pair in the plugin module, which is where pluggy looks for hooks::

        restore_register_readers, restore_register_writers = file_format_hooks(("npy", "my_pkg.npy_io", (".npy",)))
    """

    @hookimpl
    def restore_register_readers(register) -> None:
        for name, module, extensions in formats:
            register(name, f"{module}:read_factory", extensions=extensions)

    @hookimpl
    def restore_register_writers(register) -> None:
        for name, module, extensions in formats:
            register(name, f"{module}:write_factory", extensions=extensions)

    return restore_register_readers, restore_register_writers

"""The ``restore dehaze`` command.

The declaration imports no torch (``restore dehaze --help`` stays fast); ``build`` imports what it runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from restore.tasks import Setup, Task, TaskOption

if TYPE_CHECKING:
    import torch

    from restore import Image


def build(image: Image, noise: float, simulate: bool, generator: torch.Generator, beta: float = 1.0,
          airlight: float = 0.8) -> Setup:
    """Set up dehazing of ``image`` (``(B, C, H, W)`` in [0, 1]); with ``simulate`` haze it first."""
    import torch

    from restore import GaussianNoise, Problem

    from .operators import Haze

    op = Haze(beta=beta, airlight=airlight)
    noise_model = GaussianNoise(noise)
    x = image.data.to(torch.float32)
    if simulate:
        return Setup(Problem(noise_model.sample(op(x), generator), op, noise_model), reference=x)
    return Setup(Problem(x, op, noise_model))


# Name and summary come from the registration in plugin.py.
TASK = Task(
    build=build,
    options=(
        TaskOption("beta", float, 1.0, "scattering coefficient per unit depth (depth 0.2 bottom .. 1.5 top)"),
        TaskOption("airlight", float, 0.8, "atmospheric light A in [0, 1] image units"),
    ),
    default_sampler="dps",  # haze is not linear: DDS/CG samplers do not apply
    sampler_defaults={"dps": {"steps": 100}},
)

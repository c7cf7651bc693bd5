"""Fixed small cases, one per sampler (and per inversion path), for the "outputs unchanged" test.

``python -m tests.golden.sampler_cases`` (from the repository root) records every case's output into
``tests/golden/sampler_outputs.pt``; ``tests/test_golden_outputs.py`` re-runs the cases and compares.
The fixture was generated from the code before the seam refactor of issue 15 (the commit that adds this
file records it). Everything is float32 and small: a random nonlinear network with a size multiple of 4
on 6×6 images (so the engine's padding is exercised), a tiny latent prior, the analytic mean-reverting
prior, and a small volume.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import torch
from torch import nn

import restore
from restore.operators import Identity, LinearOperator
from restore.priors import DiffusionPrior, VPSchedule
from restore.priors.mean_reverting import MeanRevertingGaussianPrior

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "sampler_outputs.pt")


class PaddedNetPrior(DiffusionPrior):
    """``eps = s_k x + 0.1 net(x, k)`` with a random tiny conv net; sizes must be multiples of 4."""

    multiple = 4

    def __init__(self, seed: int = 0) -> None:
        super().__init__(VPSchedule.linear(), channels=2)
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 2, 3, padding=1))
        for p in self.net.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.25

    def model_output(self, x, k):
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError("not padded")
        t = (k.to(x.dtype) / self.schedule.T).reshape(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:])
        s = self.schedule.s(k.cpu()).to(x.device, x.dtype).reshape(-1, 1, 1, 1)
        return s * x + 0.1 * self.net(torch.cat([x, t], 1))


class Blur(LinearOperator):
    """Circular 3-tap box blur along W followed by a fixed mask: a small linear operator in pure torch."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return self.mask * (x + torch.roll(x, 1, -1) + torch.roll(x, -1, -1)) / 3

    def adjoint(self, y):
        y = self.mask * y
        return (y + torch.roll(y, -1, -1) + torch.roll(y, 1, -1)) / 3


def _image(shape, seed):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _pixel_problem(op_name: str = "blur", side: int = 6) -> restore.Problem:
    x = _image((1, 2, side, side), 1)
    if op_name == "identity":
        op = Identity()
    else:
        op = Blur((_image((1, 1, side, side), 2) > 0.3).float())
    y = op(x) + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    return restore.Problem(y, op, restore.GaussianNoise(0.02))


def _run(name: str, prior, problem, **cfg) -> torch.Tensor:
    """Run one sampler with seed 7. The recording was made with the pre-refactor engine path (pad with
    ``api.pad_for``, run, crop); since the refactor, ``Sampler.run`` pads and crops itself."""
    return restore.sampler(name, **cfg).run(prior, problem, generator=torch.Generator().manual_seed(7)).x


def _unconditional(name: str, prior, problem, **cfg) -> torch.Tensor:
    """An unconditional sampler at the shape of ``problem``'s unknown: it was recorded with the problem, which
    it ignores; runs now refuse one."""
    return restore.sampler(name, **cfg).run(prior, shape=problem.x_shape, generator=torch.Generator().manual_seed(7)).x


def _latent_prior(folder: str):
    import json

    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)  # diffusers initialises weights from the global generator
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=4, norm_num_groups=4, sample_size=16)
    unet = UNet2DModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                       norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    vae.save_pretrained(os.path.join(folder, "vae"))
    unet.save_pretrained(os.path.join(folder, "unet"))
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(os.path.join(folder, "scheduler"))
    with open(os.path.join(folder, "restore_prior.json"), "w") as f:
        json.dump({"kind": "latent", "scaling_factor": 0.5}, f)
    return restore.prior(folder)


def _latent_case(name: str, **cfg) -> torch.Tensor:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        prior = _latent_prior(folder)
        x = _image((1, 3, 16, 16), 4)
        op = Blur((_image((1, 1, 16, 16), 5) > 0.3).float())
        problem = restore.Problem(op(x), op, restore.GaussianNoise(0.01))
        return _run(name, prior, problem, **cfg)


def _mr_case(name: str, **cfg) -> torch.Tensor:
    prior = MeanRevertingGaussianPrior(m0=0.5, s0=0.2, T=100).float()
    return _run(name, prior, _pixel_problem("identity"), **cfg)


def _volume_case() -> torch.Tensor:
    prior = PaddedNetPrior()
    x = _image((1, 2, 3, 6, 6), 6)
    op = Blur((_image((1, 1, 1, 6, 6), 8) > 0.3).float())
    problem = restore.Problem(op(x), op, restore.GaussianNoise(0.01))
    return _run("dds-3d", prior, problem, steps=4, chunk=2)


def _inversion_case(sampler: str, **cfg) -> torch.Tensor:
    prior = PaddedNetPrior()
    x = _image((1, 2, 6, 6), 9)
    inv = restore.invert(prior, x, sampler=sampler, **cfg)
    return torch.cat([inv.latents["z_top"].flatten(), inv.reconstruct().flatten()])


def cases() -> dict[str, Callable[[], torch.Tensor]]:
    net = PaddedNetPrior
    blur, ident = _pixel_problem, lambda: _pixel_problem("identity")
    return {
        "ddim": lambda: _unconditional("ddim", net(), blur(), steps=5, eta=0.5),
        "ddim-clip": lambda: _unconditional("ddim", net(), blur(), steps=5, clip=True),
        "ddpm": lambda: _unconditional("ddpm", net(), blur(), steps=5),
        "dps": lambda: _run("dps", net(), blur(), steps=5, zeta=0.5),
        "dps-paper": lambda: _run("dps", net(), blur(), steps=5, zeta=0.5, norm="paper", clip=False),
        "dds": lambda: _run("dds", net(), blur(), steps=5),
        "dds-paper-snr": lambda: _run("dds", net(), blur(), steps=5, renoise="paper", gamma_rule="snr", eta=0.5),
        "tweedie": lambda: _run("tweedie", net(), ident()),
        "red-diff": lambda: _run("red-diff", net(), blur(), steps=5),
        "red-diff-random-sgd": lambda: _run("red-diff", net(), blur(), steps=5, order="random", optimizer="sgd",
                                            lr=0.1),
        "stsl-fd": lambda: _run("stsl", net(), blur(), steps=4, trace_mode="fd"),
        "stsl-jvp": lambda: _run("stsl", net(), blur(), steps=4, trace_mode="jvp", update="ddim", eta=0.3),
        "bdia": lambda: _unconditional("bdia", net(), blur(), steps=5, gamma=0.5),
        "bdia-edm": lambda: _unconditional("bdia-edm", net(), blur(), steps=5),
        # the pre-refactor engine refused a padded ddim-inversion run, hence 8×8 here
        "ddim-inversion": lambda: _run("ddim-inversion", net(), _pixel_problem("identity", 8), steps=5),
        "code": lambda: _run("code", net(), ident(), steps=10, langevin_steps=4, annealing=2, min_level=1,
                             n_levels=2, strength=0.5),
        "psld": lambda: _latent_case("psld", steps=3),
        "stsl-latent": lambda: _latent_case("stsl", steps=3, trace_mode="fd"),
        "ir-sde": lambda: _mr_case("ir-sde", steps=10),
        "ir-sde-euler": lambda: _mr_case("ir-sde", steps=10, method="euler"),
        "mrs": lambda: _mr_case("mrs", steps=6),
        "mrs-sde-noise": lambda: _mr_case("mrs", steps=6, solver="sde", parameterization="noise"),
        "dds-3d": _volume_case,
        "ct-tv": lambda: _run("ct-tv", net(), blur(), steps=5),
        "invert-bdia": lambda: _inversion_case("bdia", steps=5),
        "invert-bdia-edm": lambda: _inversion_case("bdia-edm", steps=5),
        "invert-ddim": lambda: _inversion_case("ddim-inversion", steps=5),
    }


def main() -> int:
    torch.set_num_threads(1)
    out = {name: fn().detach().float().cpu() for name, fn in cases().items()}
    torch.save(out, FIXTURE)
    print(f"wrote {len(out)} outputs to {FIXTURE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

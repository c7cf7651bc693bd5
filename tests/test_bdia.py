"""BDIA-DDIM / BDIA-EDM exact inversion, the naive DDIM-inversion contrast, and latents on disk."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import restore
from restore.errors import IncompatibleError, InvalidInputError
from restore.inversion import Inversion
from restore.priors import DiffusionPrior, GaussianPrior, VPSchedule
from restore.samplers.bdia import BDIA
from restore.samplers.bdia_edm import BDIAEDM
from restore.samplers.ddim import DDIM
from restore.samplers.ddim_inversion import DDIMInversion


class RandomNetPrior(DiffusionPrior):
    """A random nonlinear eps network, images in [-1, 1].

    ``eps = s_k x + 0.1 net(x, k)``: the linear part is the exact eps of white unit-variance data (so the
    scale is that of a trained network), the random tiny conv net with a level input makes it nonlinear.
    """

    def __init__(self, seed: int = 0, dtype=torch.float64, schedule: VPSchedule | None = None) -> None:
        super().__init__(schedule or VPSchedule.linear(), channels=2)
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 2, 3, padding=1))
        for p in self.net.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.25
        self.net.to(dtype)

    def model_output(self, x, k):
        t = (k.to(x.dtype) / self.schedule.T).reshape(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:])
        s = self.schedule.s(k.cpu()).to(x.device, x.dtype).reshape(-1, 1, 1, 1)
        return s * x + 0.1 * self.net(torch.cat([x, t], 1))


def _image(dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 2, 8, 8, generator=g, dtype=dtype) * 2 - 1


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("gamma, steps", [(0.5, 10), (1.0, 20)])
def test_bdia_round_trip_float64_exact(gamma, steps):
    # The inverse map amplifies the parasitic mode by ~(1/γ) per step, hence fewer steps for γ = 0.5.
    prior, z0 = RandomNetPrior(), _image()
    s = BDIA(steps=steps, gamma=gamma)
    view = prior.bind(shape=z0.shape)
    top, nxt = s.invert(view, z0)
    assert view.nfe == steps
    rec = s.reconstruct(view, top, nxt)
    assert float((rec - z0).abs().max()) < 1e-10


def test_bdia_round_trip_float32_and_ddim_inversion_is_not_exact():
    prior32, z32 = RandomNetPrior(dtype=torch.float32), _image(torch.float32)
    s = BDIA(steps=20, gamma=1.0)
    view32 = prior32.bind(shape=z32.shape)
    rec = s.reconstruct(view32, *s.invert(view32, z32))
    assert _rel(rec, z32) < 1e-5
    # Contrast: the naive DDIM inversion on the same network (float64, so round-off is not the cause).
    prior, z0 = RandomNetPrior(), _image()
    naive = DDIMInversion(steps=20)
    view = prior.bind(shape=z0.shape)
    err = _rel(naive.reconstruct(view, naive.invert(view, z0)), z0)
    assert err > 1e-3


def test_bdia_gamma_zero_is_ddim():
    prior = RandomNetPrior()
    zT = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ddim = DDIM(steps=10).run(prior, shape=zT.shape, x_init=zT).x_model
    assert torch.equal(BDIA(steps=10, gamma=0.0).run(prior, shape=zT.shape, x_init=zT).x_model, ddim)
    near = BDIA(steps=10, gamma=1e-7).run(prior, shape=zT.shape, x_init=zT).x_model
    assert float((near - ddim).abs().max()) < 1e-5
    with pytest.raises(InvalidInputError, match="gamma > 0"):
        BDIA(gamma=0.0).invert(prior.bind(shape=zT.shape), zT)


def test_bdia_converges_to_exact_pf_map_on_gaussian():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    prior = GaussianPrior(torch.tensor([0.3, -0.2, 0.1, 0.5], dtype=torch.float64), A @ A.T / 4 + 0.05 * torch.eye(4))
    xT = torch.randn(64, 4, generator=g, dtype=torch.float64)
    errors = []
    for steps in (10, 40, 160):
        top = prior.schedule.timesteps(steps)[0]
        exact = prior.pf_ode_map(xT, top, -1)
        out = BDIA(steps=steps, gamma=1.0).run(prior, shape=xT.shape, x_init=xT).x_model
        errors.append(float((out - exact).norm() / exact.norm()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.25 * errors[0] and errors[2] < 0.01


def test_bdia_edm_round_trip_float64_exact():
    prior, z0 = RandomNetPrior(), _image()
    for gamma in (0.5, 1.0):
        s = BDIAEDM(steps=12, gamma=gamma)
        view = prior.bind(shape=z0.shape)
        rec = s.reconstruct(view, *s.invert(view, z0))
        assert float((rec - z0).abs().max()) < 1e-10
    # gamma -> 0 is the plain deterministic Heun sampler, which does not reproduce the input
    plain = BDIAEDM(steps=12, gamma=0.0)
    view = prior.bind(shape=z0.shape)
    top = BDIAEDM(steps=12, gamma=1.0).invert(view, z0)[0]
    assert _rel(plain.run(prior, shape=z0.shape, x_init=top * float(prior.schedule.a(plain.levels(view)[-1]))).x_model, z0) > 1e-3


def test_invert_api_save_load_and_refuses_other_prior(tmp_path):
    prior = RandomNetPrior()
    x01 = (_image() + 1) / 2
    inv = restore.invert(prior, x01, sampler="bdia", steps=10, gamma=0.9)
    assert float((inv.reconstruct() - x01).abs().max()) < 1e-10
    path = tmp_path / "latents.safetensors"
    inv.save(path)
    loaded = Inversion.load(path)
    assert (loaded.sampler, loaded.steps, loaded.gamma, loaded.shape) == ("bdia", 10, 0.9, (2, 2, 8, 8))
    assert float((loaded.reconstruct(prior) - x01).abs().max()) < 1e-10
    with pytest.raises(IncompatibleError, match="different prior or schedule") as info:
        loaded.reconstruct(RandomNetPrior(seed=5))
    assert "\n" not in str(info.value)
    with pytest.raises(IncompatibleError, match="different prior or schedule"):
        loaded.reconstruct(RandomNetPrior(schedule=VPSchedule.cosine()))

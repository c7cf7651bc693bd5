"""Every registered sampler reports its ``Result.extras`` under the documented keys (``restore.samplers.base.EXTRAS``).

Each sampler runs once on the smallest case it accepts: an analytic Gaussian prior on an 8×8 denoising
problem, the analytic mean-reverting prior for its family, a CT or MRI operator for the baselines that need
one, a volume for DDS-3D, a tiny latent prior for PSLD.
"""
from __future__ import annotations

import warnings

import pytest
import torch

import restore
from restore.operators import Identity
from restore.priors.base import LatentFamily, MeanRevertingFamily
from restore.priors.mean_reverting import MeanRevertingGaussianPrior
from restore.samplers.base import EXTRAS

SIDE = 8


def _gen():
    return torch.Generator().manual_seed(0)


def _gaussian(channels: int = 1):
    n = channels * SIDE * SIDE
    return restore.prior("gaussian", mean=torch.full((channels, SIDE, SIDE), 0.5), cov=0.04 * torch.eye(n))


def _problem(op=None, shape=(1, 1, SIDE, SIDE)) -> restore.Problem:
    op = op or Identity()
    x = torch.rand(*shape, generator=_gen())
    y = op(x)
    return restore.Problem(y + 0.05 * torch.randn(y.shape, generator=_gen(), dtype=y.real.dtype).to(y.dtype),
                           op, restore.GaussianNoise(0.05))


def _run(name: str, tmp_path):
    sampler_cls = next(c for c in restore.components("sampler") if c.name == name).load()
    options = {"steps": 3} if "steps" in sampler_cls.Config.__dataclass_fields__ else {}
    sampler = restore.sampler(name, **options)
    families = tuple(getattr(sampler_cls, "families", ()))
    if name == "fkc" or sampler_cls.unconditional:  # fkc samples a combination of priors, no measurement
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dpm-solver-v3 warns that it falls back without model statistics
            return sampler.run(_gaussian(), shape=(1, 1, SIDE, SIDE), generator=_gen())
    if name == "dds-3d":
        return sampler.run(_gaussian(), _problem(shape=(1, 1, 2, SIDE, SIDE)), generator=_gen())
    if name.startswith("ct-"):
        return sampler.run(None, _problem(restore.operator("ct-parallel", size=SIDE, views=4)), generator=_gen())
    if name.startswith("mri-"):
        op = restore.operator("mri-single", shape=(SIDE, SIDE), mask=(torch.arange(SIDE) % 2 == 0).float())
        return sampler.run(None, _problem(op), generator=_gen())
    if MeanRevertingFamily in families:
        return sampler.run(MeanRevertingGaussianPrior(m0=0.5, s0=0.2, T=100), _problem(), generator=_gen())
    if LatentFamily in families and not any(f for f in families if f is not LatentFamily):
        pytest.importorskip("diffusers")
        from tests.golden.sampler_cases import _latent_prior

        prior = _latent_prior(str(tmp_path))
        return sampler.run(prior, _problem(shape=(1, 3, 16, 16)), generator=_gen())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dpm-solver-v3 warns that it falls back without model statistics
        return sampler.run(_gaussian(), _problem(), generator=_gen())


@pytest.mark.parametrize("name", sorted(c.name for c in restore.components("sampler")))
def test_extras_use_the_documented_keys(name, tmp_path):
    result = _run(name, tmp_path)
    unknown = sorted(set(result.extras) - set(EXTRAS))
    assert not unknown, f"{name} returns undocumented extras {unknown}; document them in EXTRAS or use its keys"


def test_level_grids_share_one_key():
    """The grid a sampler walks is reported as ``levels`` whatever the family (VP level k, mean-reverting t)."""
    tweedie = restore.sampler("tweedie").run(_gaussian(), _problem(), generator=_gen())
    mr = restore.sampler("ir-sde", steps=4).run(MeanRevertingGaussianPrior(m0=0.5, s0=0.2, T=100), _problem(),
                                                generator=_gen())
    assert len(tweedie.extras["levels"]) == 1 and tweedie.nfe == 1
    assert mr.extras["levels"][0] == 100 and mr.extras["levels"][-1] == 0 and len(mr.extras["levels"]) == 5

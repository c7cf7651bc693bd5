"""Volumes: D_z and its adjoint, soft threshold, ADMM-TV, SliceOperator, DDS-3D (z coupling, bounded memory)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import restore
from restore.errors import InvalidInputError, ShapeError
from restore.metrics import psnr
from restore.operators import conjugate_gradient
from restore.phantoms import shepp_logan_3d
from restore.problem import Problem
from restore.operators.tv import tv_objective
from restore.volumes import ADMMState, SliceOperator, admm_tv_step, dz, dz_adjoint, soft_threshold


def test_dz_adjoint_and_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 5, 4, 3, generator=g, dtype=torch.float64)
    u = torch.randn(2, 1, 5, 4, 3, generator=g, dtype=torch.float64)
    assert abs(float((dz(x) * u).sum() - (x * dz_adjoint(u)).sum())) < 1e-12
    assert torch.equal(dz(x)[:, :, 1], x[:, :, 2] - x[:, :, 1])
    assert torch.equal(dz(x)[:, :, -1], x[:, :, 0] - x[:, :, -1])  # circular
    assert torch.equal(dz_adjoint(u)[:, :, 1], u[:, :, 0] - u[:, :, 1])
    with pytest.raises(ShapeError, match="volume"):
        dz(torch.zeros(1, 1, 4, 4))


def test_soft_threshold():
    v = torch.tensor([-3.0, -0.5, 0.0, 0.2, 2.0])
    assert torch.equal(soft_threshold(v, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 1.0]))


def test_slice_operator_adjoint_and_shapes():
    op2d = restore.operator("ct-parallel", size=12, views=5)
    op = SliceOperator(op2d, chunk=2)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 5, 12, 12, generator=g, dtype=torch.float64)
    y = op(x)
    assert y.shape == (2, 1, 5, 5, 17)
    assert torch.allclose(y[:, :, 3], op2d(x[:, :, 3]))
    v = torch.randn(y.shape, generator=g, dtype=torch.float64)
    assert abs(float((y * v).sum() - (x * op.adjoint(v)).sum()) / float((y * v).sum())) < 1e-12
    assert op.input_shape(y.shape) == x.shape


def test_slicewise_cg_is_independent_per_slice():
    op2d = restore.operator("ct-parallel", size=10, views=3)
    op = SliceOperator(op2d)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(1, 1, 3, 10, 10, generator=g, dtype=torch.float64)
    y = torch.randn(1, 1, 3, 3, op2d.n_det, generator=g, dtype=torch.float64)
    out = admm_tv_step(op, y, x0, ADMMState.zeros_like(x0), rho=0.0, lam=0.0, cg_iters=4)
    alone, _ = conjugate_gradient(op2d.normal, op2d.adjoint(y[:, :, 1]), x0=x0[:, :, 1], max_iter=4)
    assert torch.allclose(out[:, :, 1], alone, atol=1e-10)


def test_admm_tv_without_diffusion_decreases_objective():
    """Many ADMM iterations with many CG steps: ½||Ax - y||² + λ||D_z x||₁ decreases after a burn-in and the
    primal residual ||D_z x - z|| goes to zero (SAMPLERS.md §5.2(f))."""
    x_true = shepp_logan_3d((8, 12, 12), torch.float64)
    op = SliceOperator(restore.operator("ct-parallel", size=12, views=4))
    y = op(x_true)
    lam, rho = 0.5, 10.0
    x = op.adjoint(y) * 0
    state = ADMMState.zeros_like(x)
    objective, primal = [], []
    for _ in range(40):
        x = admm_tv_step(op, y, x, state, rho, lam, cg_iters=20)
        objective.append(tv_objective(op, y, x, lam, diff=dz))
        primal.append(float((dz(x) - state.z).norm()))
    tail = objective[10:]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(tail, tail[1:]))
    assert objective[-1] < objective[1]
    assert primal[-1] < 1e-2 * primal[0]


def test_dds3d_beats_slicewise():
    x = shepp_logan_3d((16, 24, 24), torch.float64)
    op = SliceOperator(restore.operator("ct-parallel", size=24, views=6), chunk=4)
    problem = Problem(op(x), op)
    prior = restore.prior("stationary-gaussian", channels=1).double()
    scores = {}
    for name, kw in {"slicewise": {"slicewise": True}, "coupled": {}}.items():
        result = restore.sampler("dds-3d", steps=10, chunk=4, **kw).run(prior, problem,
                                                                      generator=torch.Generator().manual_seed(0))
        assert result.x.shape == x.shape and result.nfe == 10 * 4  # 4 chunks of 4 slices per step
        scores[name] = psnr(result.x, x)
    assert scores["coupled"] > scores["slicewise"] + 0.3, scores


def test_dds3d_errors():
    with pytest.raises(InvalidInputError, match="chunk"):
        restore.sampler("dds-3d", chunk=0)
    op = restore.operator("ct-parallel", size=8, views=3)
    prior = restore.prior("stationary-gaussian", channels=1)
    with pytest.raises(ShapeError, match="volumes"):
        restore.sampler("dds-3d", steps=2).run(prior, Problem(op(torch.zeros(1, 1, 8, 8)), op))


def test_slice_operator_prox_is_the_2d_prox_of_each_slice():
    op2d = restore.operator("ct-parallel", size=10, views=4)
    op = SliceOperator(op2d, chunk=2)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, 1, 5, 10, 10, generator=g, dtype=torch.float64)
    y = torch.randn(1, 1, 5, 4, op2d.n_det, generator=g, dtype=torch.float64)
    out = op.prox(z, y, 3.0)
    for d in (0, 3, 4):
        assert torch.allclose(out[:, :, d], op2d.prox(z[:, :, d], y[:, :, d], 3.0), atol=1e-8)
    normal_eq = out + 3.0 * op.normal(out) - (z + 3.0 * op.adjoint(y))
    assert float(normal_eq.abs().max()) < 1e-4


def test_pnp_hqs_on_a_volume_is_pnp_hqs_on_each_slice():
    x = shepp_logan_3d((5, 16, 16), torch.float64)
    op2d = restore.operator("ct-parallel", size=16, views=6)
    op = SliceOperator(op2d, chunk=2)
    prior = restore.prior("stationary-gaussian", channels=1).double()
    volume = restore.sampler("pnp-hqs", chunk=2).run(prior, Problem(op(x), op, restore.GaussianNoise(0.0)))
    assert volume.x.shape == x.shape and volume.nfe == 8 * 3  # 3 chunks of at most 2 slices per iteration
    stack = x[0].transpose(0, 1)  # the slices as a batch of 2D images
    alone = restore.sampler("pnp-hqs").run(prior, Problem(op2d(stack), op2d, restore.GaussianNoise(0.0)))
    assert torch.allclose(volume.x[0].transpose(0, 1), alone.x, atol=1e-6)


def test_2d_samplers_refuse_volumes_naming_the_ones_that_take_them():
    op = SliceOperator(restore.operator("ct-parallel", size=8, views=3))
    prior = restore.prior("stationary-gaussian", channels=1)
    with pytest.raises(ShapeError, match="reconstructs 2D images.*dds-3d.*pnp-hqs"):
        restore.sampler("dds", steps=2).run(prior, Problem(op(torch.zeros(1, 1, 2, 8, 8)), op))


def test_volumes_are_padded_to_the_network_multiple_and_cropped_back():
    prior = restore.prior("medical-gray", channels=1, domain="medical")
    x = shepp_logan_3d((3, 20, 20))
    op = SliceOperator(restore.operator("ct-parallel", size=20, views=12))
    problem = Problem(op(x), op)
    assert prior.bind(problem).x_shape == (1, 1, 3, 24, 24)
    result = restore.sampler("dds-3d", steps=2, chunk=3).run(prior, problem, generator=torch.Generator().manual_seed(0))
    assert result.x.shape == x.shape and result.x_model.shape == (1, 1, 3, 24, 24)

# A child process measures its own peak RSS (VmHWM, reset through /proc/self/clear_refs before each run) above
# the RSS before the run: the whole DDS-3D run (prior calls, CG, ADMM) with a small convolutional prior whose
# activations (256 channels) dominate per-slice memory, as a real network's do.
_MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    import restore
    from restore.priors.base import DiffusionPrior
    from restore.priors.schedules import VPSchedule
    from restore.problem import Problem
    from restore.volumes import SliceOperator

    class ConvPrior(DiffusionPrior):
        def __init__(self):
            super().__init__(VPSchedule.linear(), channels=1)
            g = torch.Generator().manual_seed(0)
            self.register_buffer("w1", torch.randn(256, 1, 3, 3, generator=g) * 0.1)
            self.register_buffer("w2", torch.randn(1, 256, 3, 3, generator=g) * 0.01)

        def model_output(self, x, k):
            return torch.nn.functional.conv2d(torch.relu(torch.nn.functional.conv2d(x, self.w1, padding=1)),
                                              self.w2, padding=1)

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))

    torch.set_num_threads(1)
    size, runs, out = int(sys.argv[1]), json.loads(sys.argv[2]), []
    prior = ConvPrior()
    for depth, chunk in runs:
        op = SliceOperator(restore.operator("ct-parallel", size=size, views=4), chunk=chunk)
        y = torch.zeros(1, 1, depth, 4, op.op.n_det)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
        restore.sampler("dds-3d", steps=2, chunk=chunk).run(prior, Problem(y, op),
                                                            generator=torch.Generator().manual_seed(0))
        out.append(status("VmHWM") - before)
    print(json.dumps(out))
""")


def peak_memory_kb(runs: list[tuple[int, int]], size: int = 64) -> list[int]:
    """Peak RSS growth (KiB) of DDS-3D runs ``(depth, chunk)`` on ``depth × size²`` volumes (fresh process)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(size), json.dumps(runs)],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc/self/clear_refs")
def test_peak_memory_bounded_by_chunk_not_depth():
    d = 8
    chunked_d, chunked_2d, whole_d, whole_2d = peak_memory_kb([(d, 2), (2 * d, 2), (d, d), (2 * d, 2 * d)])
    # Chunked: doubling the depth adds only the O(volume) sampler state, far from doubling the peak.
    assert chunked_2d < 1.4 * chunked_d, (chunked_d, chunked_2d)
    # Unchunked (chunk = depth): the prior's activations scale with depth, so the peak nearly doubles.
    assert whole_2d > 1.6 * whole_d, (whole_d, whole_2d)

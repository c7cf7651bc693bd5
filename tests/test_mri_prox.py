"""The MRI data steps (``prox``) against the dense regularised least-squares solution, and the
calibration-window phase that keeps a real image real (issue 20: pnp-hqs on MRI)."""
from __future__ import annotations

import pytest
import torch

import restore_mri.operators as ops
from restore_mri.coils import birdcage_maps
from restore_mri.fft import fft2c
from restore_mri.masks import make_mask
from restore_mri.operators import MultiCoilMRI, PhaseMagnitude, SingleCoilMRI
from restore_mri.tasks import smooth_phase

F64, C128 = torch.float64, torch.complex128


def _dense(op, shape, dtype):
    """``A`` as a matrix on the flattened unknown; a real unknown sees ``[Re A; Im A]``."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n, dtype=dtype).reshape((n,) + tuple(shape[1:]))
    A = op(basis).reshape(n, -1).T
    return torch.cat([A.real, A.imag]) if not dtype.is_complex else A


def _prox_truth(op, z, y, gamma):
    A = _dense(op, z.shape, z.dtype)
    yv = y.reshape(-1)
    if not z.dtype.is_complex:
        yv = torch.cat([yv.real, yv.imag])
    lhs = torch.eye(A.shape[1], dtype=A.dtype) + gamma * A.conj().T @ A
    rhs = z.reshape(-1) + gamma * A.conj().T @ yv
    return torch.linalg.solve(lhs, rhs).reshape(z.shape), rhs


def _ops(H, W, coils, phase):
    mask = make_mask("random", (H, W), 4, 0.25, seed=3).to(F64)
    inner = SingleCoilMRI(mask, (H, W)) if coils == 1 else MultiCoilMRI(birdcage_maps(coils, (H, W), dtype=C128), mask)
    return inner if phase is None else PhaseMagnitude(inner, phase)


yy, xx = torch.meshgrid(torch.linspace(-1, 1, 8, dtype=F64), torch.linspace(-1, 1, 7, dtype=F64), indexing="ij")
PHASES = {"zero": torch.zeros(8, 7, dtype=F64), "zero-or-pi": torch.where(xx > 0.3, torch.full_like(xx, torch.pi), 0 * xx),
          "smooth": 1.5 * xx + yy**2}


@pytest.mark.parametrize("coils", [1, 4])
@pytest.mark.parametrize("phase", [None, "zero", "zero-or-pi", "smooth"])
@pytest.mark.parametrize("gamma", [0.7, 1e4])
def test_prox_is_the_regularised_least_squares_solution(coils, phase, gamma):
    g = torch.Generator().manual_seed(0)
    op = _ops(8, 7, coils, None if phase is None else PHASES[phase])
    dtype = C128 if phase is None else F64
    shape = (2, 1, 8, 7)
    z = torch.randn(shape, generator=g, dtype=dtype)
    y = op(torch.randn(shape, generator=g, dtype=dtype)) + 0.1 * torch.randn((2, coils, 8, 7), generator=g, dtype=C128)
    got = op.prox(z, y, gamma)
    for b in range(2):
        want, rhs = _prox_truth(op, z[b:b + 1], y[b:b + 1], gamma)
        # CG stops at a residual of PROX_TOL·‖rhs‖ and I + γAᴴA >= I, so the error is at most that residual
        # (plus the dense solve's round-off, cond·eps <= 1e4·2e-16).
        assert float((got[b:b + 1] - want).norm()) <= 2 * ops.PROX_TOL * float(rhs.norm()) + 1e-9 * float(want.norm())


@pytest.mark.parametrize("phase", ["zero", "zero-or-pi"])
def test_single_coil_magnitude_prox_is_exact_in_one_step_for_a_real_phase(phase, monkeypatch):
    """For φ ∈ {0, π} the preconditioner is the exact inverse, so one preconditioned step solves it."""
    monkeypatch.setattr(ops, "PROX_ITERS", 1)
    g = torch.Generator().manual_seed(1)
    op = _ops(8, 7, 1, PHASES[phase])
    z = torch.randn(1, 1, 8, 7, generator=g, dtype=F64)
    y = op(torch.randn(1, 1, 8, 7, generator=g, dtype=F64))
    want, _ = _prox_truth(op, z, y, 1e6)
    assert torch.allclose(op.prox(z, y, 1e6), want, atol=1e-9 * float(want.norm()))  # dense solve at cond 1e6


@pytest.mark.parametrize("H,W", [(32, 32), (31, 33)])
def test_smooth_phase_of_a_real_image_is_zero_or_pi(H, W):
    """The calibration window is symmetric and inside the sampled centre, so a real image's low-pass image is
    real: a spurious phase would make the magnitude view inconsistent with the data (stripes in pnp-hqs)."""
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 1, H, W, generator=g, dtype=F64)
    mask = make_mask("random", (H, W), 4, 0.08, seed=0).to(F64)
    op = SingleCoilMRI(mask, (H, W))
    phase = smooth_phase(op, fft2c(image.to(C128)) * mask, mask)
    assert float(torch.sin(phase).abs().max()) < 1e-9  # real up to FFT round-off

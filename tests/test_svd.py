"""The optional ``svd`` capability of linear operators: ``U diag(s) Vᵀ x == A x``, orthogonality of ``U`` and
``V`` (float64, 1e-10), the padded composition the engine builds, and the one-line error without an SVD."""
from __future__ import annotations

import pytest
import torch

import restore
from restore.errors import IncompatibleError
from restore.operators import Crop, Identity, MatrixOperator
from restore.operators.svd import require_svd
from tests.operator_cases import IMAGING_OPERATORS

F64 = torch.float64
TOL = 1e-10

# The imaging operators' contract cases but bicubic resampling, which has no SVD (the last test checks its error).
CASES = [case for case in IMAGING_OPERATORS if case[1].get("method") != "bicubic"] + [
    ("super-resolution", {"factor": 3, "method": "avgpool"}, (1, 1, 9, 12)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def _rand(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _inner(u, v):
    return (u.conj() * v).real.sum() if u.is_complex() else (u * v).sum()


def _check_svd(op, x_shape, full_u=True):
    svd = op.svd(x_shape)
    assert svd is not None
    x, x2 = _rand(x_shape, 0), _rand(x_shape, 1)
    y = op(x)
    s = svd.singulars(x)
    assert s.shape[-1] == x[0].numel() and bool((s >= 0).all())
    # A = U diag(s) Vᵀ and Aᵀ = V diag(s) Uᵀ
    assert torch.allclose(svd.A(x), y, atol=TOL, rtol=0)
    yr = _rand(y.shape, 2)
    assert torch.allclose(svd.At(yr), op.adjoint(yr), atol=TOL, rtol=0)
    # V orthogonal: VᵀV = I (isometry, inner products kept) and V Vᵀ = I
    c, c2 = svd.Vt(x), svd.Vt(x2)
    assert abs(float(_inner(c, c2) - _inner(x, x2))) < TOL * x.numel()
    assert torch.allclose(svd.V(c), x, atol=TOL, rtol=0)
    # U has orthonormal columns on the slots it pairs with singular values: Uᵀ U c = c there
    cu = svd.Ut(yr)
    if full_u:  # every direction of y has a slot (not so for a tall matrix: its left null space is dropped)
        assert abs(float(_inner(cu, cu) - _inner(yr, yr))) < TOL * yr.numel()
    active = (s > 0).to(F64)
    c_active = c * active
    assert torch.allclose(svd.Ut(svd.U(c_active)) * active, c_active, atol=TOL, rtol=0)
    assert abs(float(_inner(svd.U(c_active), svd.U(c_active)) - _inner(c_active, c_active))) < TOL * x.numel()
    # the pseudo-inverse from the SVD inverts A on its range
    assert torch.allclose(op(svd.pinv(y)), y, atol=1e-8, rtol=0)
    return svd


@pytest.mark.parametrize("name, params, shape", CASES, ids=IDS)
def test_svd_reproduces_the_operator_and_is_orthogonal(name, params, shape):
    _check_svd(restore.operator(name, **params), shape)


def test_fourier_svd_of_a_real_image_stays_real_through_symmetric_coefficients():
    op = restore.operator("gaussian-blur", sigma=1.5)
    shape = (1, 2, 16, 16)
    svd = op.svd(shape)
    x = _rand(shape, 4)
    s = svd.singulars(x)
    out = svd.V((1 / (1 + s**2)) * svd.Vt(x))  # a filter depending on s only
    ref = op.prox(x, torch.zeros_like(x), 1.0)  # (I + AᵀA)⁻¹ x
    assert torch.allclose(out, ref, atol=TOL, rtol=0)


def test_dense_matrix_svd_wide_and_tall():
    g = torch.Generator().manual_seed(5)
    for m, d in ((3, 6), (6, 4)):
        op = MatrixOperator(torch.randn(m, d, generator=g, dtype=F64))
        _check_svd(op, (3, d), full_u=m <= d)


def test_identity_svd():
    svd = _check_svd(Identity(), (2, 1, 4, 4))
    assert bool((svd.singulars(torch.zeros(1, dtype=F64)) == 1).all())


def test_padded_composition_keeps_the_svd():
    """The engine pads images to the network's multiple (A @ Crop): the pad becomes null-space slots."""
    op = restore.operator("gaussian-blur", sigma=1.0) @ Crop(12, 10, 4, 6)
    svd = _check_svd(op, (2, 3, 16, 16))
    assert int((svd.singulars(torch.zeros(1, dtype=F64)) == 0).sum()) >= 3 * (16 * 16 - 12 * 10)
    masked = restore.operator("inpainting", fraction=0.3) @ Crop(12, 10, 4, 6)
    _check_svd(masked, (2, 3, 16, 16))


def test_operators_without_svd_give_one_line_errors():
    bicubic = restore.operator("super-resolution", factor=2, method="bicubic")
    assert bicubic.svd((1, 1, 8, 8)) is None
    with pytest.raises(IncompatibleError) as info:
        require_svd(bicubic, (1, 1, 8, 8), "ddrm", ("pigdm", "diffpir"))
    msg = str(info.value)
    assert "\n" not in msg and "BicubicSR" in msg and "ddrm" in msg and "pigdm" in msg

"""Contract checks for plugin components, usable from any test framework.

Every check raises :class:`ContractError` (an ``AssertionError``, so pytest reports it as a failed test)
with a one-line message that names the measured error and the tolerance, e.g.
``adjoint mismatch: relative error 0.5 > 1e-05``. Checks return the measured error when they pass.

Shapes follow the engine's convention: images ``(B, C, H, W)``, volumes ``(B, C, D, H, W)``; any
``x_shape`` whose first entry is the batch size works.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch

from ..operators.base import LinearOperator, Operator
from ..operators.cg import inner


class ContractError(AssertionError):
    """A component violates the plugin contract; the message names the measured error."""


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _fail_if(error: float, tol: float, what: str, detail: str = "") -> float:
    if not error <= tol:  # also catches NaN
        raise ContractError(f"{what}: relative error {_fmt(error)} > {tol:g}{detail}")
    return error


def _randn(shape: Sequence[int], generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal draws on the CPU (complex dtypes get unit-variance complex noise)."""
    if dtype.is_complex:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        re = torch.randn(tuple(shape), generator=generator, dtype=real)
        im = torch.randn(tuple(shape), generator=generator, dtype=real)
        return torch.complex(re, im) / 2**0.5
    return torch.randn(tuple(shape), generator=generator, dtype=dtype)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / max(||b||, tiny)`` over all entries."""
    den = float(torch.linalg.vector_norm(b))
    return float(torch.linalg.vector_norm(a - b)) / max(den, torch.finfo(torch.float64).tiny)


def to_precision(op: Operator, dtype: torch.dtype = torch.float64) -> Operator:
    """A copy of ``op`` whose real buffers/parameters are ``dtype`` and complex ones the matching complex type.

    ``nn.Module.to(dtype)`` would drop the imaginary part of complex buffers (MRI coil maps), hence this.
    """
    if dtype.is_complex:  # a complex test dtype (complex128) means float64 real buffers
        dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    clone = copy.deepcopy(op)

    def convert(t: torch.Tensor) -> torch.Tensor:
        if t.is_complex():
            return t.to(complex_dtype)
        return t.to(dtype) if t.is_floating_point() else t

    return clone._apply(convert)


def _require_linear(op: Operator, check: str) -> LinearOperator:
    if not getattr(op, "linear", False) or not hasattr(op, "adjoint"):
        raise ContractError(f"{check} needs a linear operator with an adjoint, got {type(op).__name__} "
                            f"(linear={getattr(op, 'linear', False)})")
    return op  # type: ignore[return-value]


def _linear_case(op: Operator, check: str, x_shape: Sequence[int], generator: torch.Generator,
                 dtype: torch.dtype) -> tuple[LinearOperator, torch.Tensor]:
    """The linear operator at ``dtype`` (on a copy) and a random ``x`` for one of the linear checks."""
    return to_precision(_require_linear(op, check), dtype), _randn(x_shape, generator, dtype)


def check_adjoint(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                  dtype: torch.dtype = torch.float64, tol: float = 1e-5) -> float:
    """Adjoint test ``|<Ax, y> - <x, Aᴴy>| / (||Ax|| ||y||) <= tol`` for random ``x`` and ``y``.

    Args:
        op: a linear operator (converted to ``dtype`` on a copy).
        x_shape: shape of ``x``, e.g. ``(2, 3, 16, 16)`` for ``(B, C, H, W)``.
        generator: CPU generator for ``x`` and ``y``.
        dtype: precision of the test; float64 so that round-off stays far below ``tol``.
        tol: tolerance on the relative error.

    Returns:
        The measured relative error.
    """
    op, x = _linear_case(op, "the adjoint test", x_shape, generator, dtype)
    with torch.no_grad():
        ax = op(x)
        y = _randn(ax.shape, generator, ax.dtype)
        aty = op.adjoint(y)
    if tuple(aty.shape) != tuple(x.shape):
        raise ContractError(f"adjoint shape mismatch: A^H y has shape {tuple(aty.shape)}, x has {tuple(x.shape)}")
    lhs, rhs = inner(ax, y).sum(), inner(x.to(aty.dtype), aty).sum()
    if not x.is_complex() and ax.is_complex():  # real domain, complex range: adjoint for Re<Ax, y>
        lhs = lhs.real
    scale = max(float(torch.linalg.vector_norm(ax) * torch.linalg.vector_norm(y)),
                float(torch.linalg.vector_norm(x) * torch.linalg.vector_norm(aty)), torch.finfo(torch.float64).tiny)
    error = float(abs(lhs - rhs)) / scale
    return _fail_if(error, tol, "adjoint mismatch",
                    f" (<Ax, y> = {_fmt(complex(lhs).real)}, <x, A^H y> = {_fmt(complex(rhs).real)})")


def check_pinv_on_range(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                        dtype: torch.dtype = torch.float64, tol: float = 1e-4) -> float:
    """``A A⁺ y = y`` for ``y = A x`` in the range of ``A``: ``||A pinv(y) - y|| / ||y|| <= tol``.

    Returns:
        The measured relative error.
    """
    op, x = _linear_case(op, "the pinv test", x_shape, generator, dtype)
    with torch.no_grad():
        y = op(x)
        x_hat = op.pinv(y)
        if tuple(x_hat.shape) != tuple(x.shape):
            raise ContractError(f"pinv shape mismatch: pinv(y) has shape {tuple(x_hat.shape)}, x has "
                                f"{tuple(x.shape)}")
        error = _rel(op(x_hat), y)
    return _fail_if(error, tol, "pinv on the range: ||A pinv(Ax) - Ax|| / ||Ax|| mismatch")


def check_normal(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                 dtype: torch.dtype = torch.float64, tol: float = 1e-6) -> float:
    """A fast-path ``normal(x)`` agrees with ``adjoint(forward(x))``."""
    op, x = _linear_case(op, "the normal-operator test", x_shape, generator, dtype)
    with torch.no_grad():
        error = _rel(op.normal(x), op.adjoint(op(x)))
    return _fail_if(error, tol, "normal(x) differs from adjoint(forward(x))")


def check_linearity(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                    dtype: torch.dtype = torch.float64, tol: float = 1e-6) -> float:
    """``A(αx + βz) = αAx + βAz`` for an operator that declares ``linear = True``."""
    op = to_precision(op, dtype)
    x, z = _randn(x_shape, generator, dtype), _randn(x_shape, generator, dtype)
    alpha, beta = 0.7, -1.3
    with torch.no_grad():
        error = _rel(op(alpha * x + beta * z), alpha * op(x) + beta * op(z))
    return _fail_if(error, tol, "operator declares linear=True but is not linear")


def check_shapes_and_dtypes(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                            dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64)) -> None:
    """Forward keeps the input's precision and device, ``input_shape`` inverts the output shape, and
    (linear operators) ``adjoint``/``pinv`` return ``x``-shaped tensors of the same precision."""
    for dtype in dtypes:
        typed = to_precision(op, dtype)
        x = torch.rand(tuple(x_shape), generator=generator, dtype=dtype)
        with torch.no_grad():
            y = typed(x)
        if y.real.dtype != dtype:
            raise ContractError(f"forward changes precision: input {dtype}, output {y.dtype}")
        if y.device != x.device:
            raise ContractError(f"forward moves data: input on {x.device}, output on {y.device}")
        if not bool(torch.isfinite(y).all()):
            raise ContractError(f"forward returns non-finite values for finite {dtype} input")
        back = tuple(typed.input_shape(tuple(y.shape)))
        if back != tuple(x.shape):
            raise ContractError(f"input_shape{tuple(y.shape)} = {back}, expected the x shape {tuple(x.shape)}")
        if getattr(typed, "linear", False):
            with torch.no_grad():
                for method in ("adjoint", "pinv"):
                    out = getattr(typed, method)(y)
                    if tuple(out.shape) != tuple(x.shape) or out.real.dtype != dtype:
                        raise ContractError(f"{method}(y) returns {tuple(out.shape)} {out.dtype}, expected "
                                            f"{tuple(x.shape)} in {dtype}")


def check_device_roundtrip(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                           devices: Sequence[str | torch.device] | None = None, tol: float = 1e-5) -> float:
    """``op.to(device)`` on every available device gives the CPU result (within float32 round-off)."""
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
            ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else [])
    x = torch.rand(tuple(x_shape), generator=generator, dtype=torch.float32)
    with torch.no_grad():
        reference = copy.deepcopy(op).to("cpu")(x)
    worst = 0.0
    for device in devices:
        moved = copy.deepcopy(op).to(device)
        for name, t in list(moved.named_buffers()) + list(moved.named_parameters()):
            if t.device.type != torch.device(device).type:
                raise ContractError(f"after .to('{device}') tensor '{name}' is still on {t.device}; register it "
                                    f"with register_buffer so that it follows the module")
        with torch.no_grad():
            y = moved(x.to(device))
        if y.device.type != torch.device(device).type:
            raise ContractError(f"forward on {device} returns data on {y.device}")
        worst = max(worst, _fail_if(_rel(y.cpu(), reference), tol, f"result on {device} differs from cpu"))
    return worst


def check_batch_independence(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                             dtype: torch.dtype = torch.float64, tol: float = 1e-10) -> float:
    """Each sample of a batch is processed on its own: ``A(x)[i] == A(x[i:i+1])`` (and for ``adjoint``)."""
    if x_shape[0] < 2:
        raise ContractError(f"batch independence needs a batch of at least 2, got x_shape {tuple(x_shape)}")
    op = to_precision(op, dtype)
    x = _randn(x_shape, generator, dtype)
    worst = 0.0
    with torch.no_grad():
        y = op(x)
        singles = torch.cat([op(x[i: i + 1]) for i in range(x.shape[0])])
        worst = max(worst, _fail_if(_rel(y, singles), tol, "forward mixes batch samples"))
        if getattr(op, "linear", False):
            back = op.adjoint(y)
            singles = torch.cat([op.adjoint(y[i: i + 1]) for i in range(y.shape[0])])
            worst = max(worst, _fail_if(_rel(back, singles), tol, "adjoint mixes batch samples"))
    return worst


def check_gradient(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                   dtype: torch.dtype = torch.float64, tol: float = 1e-5, h: float = 1e-6) -> float:
    """Autograd is consistent with finite differences: ``<∇_x <A(x), w>, v>`` vs. a central difference.

    Samplers such as DPS differentiate through the operator, so a nonlinear operator must be
    differentiable in ``x`` (evaluated at ``x`` in (0.25, 0.75), inside the image range).
    """
    op = to_precision(op, dtype)
    x = 0.25 + 0.5 * torch.rand(tuple(x_shape), generator=generator, dtype=dtype)
    v = _randn(x_shape, generator, dtype)
    x.requires_grad_(True)
    y = op(x)
    if not y.requires_grad:
        raise ContractError("forward(x) does not depend differentiably on x (no autograd graph); avoid "
                            "detach(), .numpy() or in-place writes into non-leaf tensors")
    w = _randn(y.shape, generator, y.dtype)
    (grad,) = torch.autograd.grad(inner(w, y).sum().real, x)
    with torch.no_grad():
        fd = (inner(w, op(x + h * v)).sum().real - inner(w, op(x - h * v)).sum().real) / (2 * h)
    ad = (grad * v).sum()
    # Relative to the gradient's size, so that a directional derivative that happens to be ~0 is fine.
    scale = max(float(abs(fd)), 1e-3 * float(torch.linalg.vector_norm(grad) * torch.linalg.vector_norm(v)), 1e-300)
    error = float(abs(ad - fd)) / scale
    return _fail_if(error, tol, "gradient mismatch (autograd vs. finite differences)")


class _Diagonal(LinearOperator):
    """Multiplication by a fixed positive field; a partner for the composition checks."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights.to(x.dtype)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.weights.to(y.dtype)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.weights.to(y.dtype)


def check_composition(op: Operator, x_shape: Sequence[int], generator: torch.Generator,
                      dtype: torch.dtype = torch.float64, tol: float = 1e-8) -> float:
    """``op @ D`` (``D`` a positive diagonal) applies ``D`` then ``op``; for linear operators the
    composition (including any fused fast path from ``_compose_with``) passes the adjoint test."""
    op = to_precision(op, dtype)
    weights = 0.5 + torch.rand(tuple(x_shape[1:]), generator=generator, dtype=dtype)
    diag = _Diagonal(weights)
    composed = op @ diag
    x = _randn(x_shape, generator, dtype)
    with torch.no_grad():
        error = _fail_if(_rel(composed(x), op(diag(x))), tol, "op @ other does not equal op(other(x))")
    if getattr(op, "linear", False):
        if not getattr(composed, "linear", False):
            raise ContractError(f"composing two linear operators gave a non-linear {type(composed).__name__}")
        with torch.no_grad():
            y = _randn(composed(x).shape, generator, composed(x).dtype)
            error = max(error, _fail_if(_rel(composed.adjoint(y), diag.adjoint(op.adjoint(y))), tol,
                                        "(op @ other).adjoint differs from other.adjoint(op.adjoint(y))"))
        error = max(error, check_adjoint(composed, x_shape, generator, dtype))
    return error

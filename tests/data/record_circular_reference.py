"""Recorded at commit 0e70218, before boundary models existed: tests/data/circular_reference.pt holds the outputs
of the circular blur/SR operators and one DDS solve; tests/test_boundaries.py checks that boundary="circular" still
gives them. Do not re-run it to "fix" a failing comparison: the file is the record of the old behaviour."""
import torch, restore
from restore.operators import GaussianNoise
from restore.problem import Problem
F64 = torch.float64
g = torch.Generator().manual_seed(0)
ops = {
    "gauss": (restore.operator("gaussian-blur", sigma=1.5), (1, 2, 20, 18)),
    "motion": (restore.operator("motion-blur", length=7, angle=30), (1, 2, 20, 18)),
    "kernel": (restore.operator("kernel", kernel=torch.arange(12, dtype=F64).reshape(4, 3)), (1, 1, 16, 15)),
    "bicubic": (restore.operator("super-resolution", factor=2, method="bicubic"), (1, 2, 20, 18)),
    "avgpool": (restore.operator("super-resolution", factor=2, method="avgpool"), (1, 2, 20, 18)),
}
out = {}
for name, (op, shape) in ops.items():
    x = torch.randn(shape, generator=g, dtype=F64)
    y = op(x)
    yn = y + 0.01 * torch.randn(y.shape, generator=g, dtype=F64)
    out[name] = {"x": x, "y": yn, "forward": y, "adjoint": op.adjoint(yn), "normal": op.normal(x),
                 "pinv": op.pinv(yn), "prox": op.prox(x, yn, 3.0), "init": op.initial_estimate(yn)}
# one end-to-end solve with the stationary prior
sharp = torch.rand(1, 3, 32, 32, generator=g)
op = restore.operator("gaussian-blur", sigma=1.0)
y = (op(sharp) + 0.01 * torch.randn(sharp.shape, generator=g)).float()
x = restore.solve(y, op, prior="stationary-gaussian", sampler="dds", noise_sigma=0.01, steps=10, seed=0, device="cpu", gamma_rule="snr")
out["solve"] = {"y": y, "x": x}
torch.save(out, "tests/data/circular_reference.pt")
print({k: {kk: tuple(v.shape) for kk, v in d.items() if v is not None} for k, d in out.items()})

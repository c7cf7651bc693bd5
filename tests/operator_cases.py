"""The imaging operators' test cases, shared by the contract tests (tests/test_imaging.py) and the SVD tests
(tests/test_svd.py)."""
from __future__ import annotations

import torch

F64 = torch.float64

# (operator name, parameters, x shape); shapes are small and deliberately non-square where allowed.
IMAGING_OPERATORS = [
    ("gaussian-blur", {"sigma": 2.0}, (2, 3, 32, 32)),
    ("gaussian-blur", {"sigma": 1.0, "size": 5}, (1, 3, 17, 24)),
    ("motion-blur", {"length": 9, "angle": 30}, (2, 3, 24, 20)),
    ("kernel", {"kernel": torch.arange(20, dtype=F64).reshape(5, 4)}, (2, 1, 16, 20)),
    ("super-resolution", {"factor": 4, "method": "avgpool"}, (2, 3, 16, 24)),
    ("super-resolution", {"factor": 4, "method": "bicubic"}, (1, 3, 32, 32)),
    ("super-resolution", {"factor": 3, "method": "bicubic"}, (1, 2, 33, 36)),
    ("inpainting", {"fraction": 0.5}, (2, 3, 16, 16)),
    ("inpainting", {"box": (2, 3, 5, 6)}, (2, 3, 16, 16)),
    ("inpainting", {"mask": torch.rand(12, 10, generator=torch.Generator().manual_seed(3), dtype=F64)},
     (2, 3, 12, 10)),
    ("denoising", {}, (2, 3, 8, 8)),
    ("colorization", {}, (2, 3, 8, 12)),
]

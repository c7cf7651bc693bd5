"""The in-memory image/volume that readers return and writers take."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Image:
    """Pixel data in public units plus what a writer needs to restore the original format.

    Attributes:
        data: ``(B, C, H, W)`` (or ``(B, C, D, H, W)`` for volumes) float in [0, 1], or complex k-space.
        meta: original ``dtype`` and value ``range``, ``alpha`` kept aside for RGBA, format headers
            (NIfTI affine, DICOM tags, spacing) recorded by readers.
    """

    data: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])

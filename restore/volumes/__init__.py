"""Volumes ``(B, C, D, H, W)`` solved slice-batched with a 2D prior and coupled by TV along z (issue 8)."""
from ..operators.tv import ADMMState, admm_tv_step, dz, dz_adjoint, soft_threshold
from .slices import SliceOperator, stack_slices, volume_slices

__all__ = ["SliceOperator", "stack_slices", "volume_slices", "ADMMState", "admm_tv_step", "dz", "dz_adjoint", "soft_threshold"]

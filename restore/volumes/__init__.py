"""Volumes ``(B, C, D, H, W)`` solved slice-batched with a 2D prior and coupled by TV along z (issue 8)."""
from .slices import SliceOperator
from .tv import ADMMState, admm_tv_step, dz, dz_adjoint, soft_threshold, tv_objective

__all__ = ["SliceOperator", "ADMMState", "admm_tv_step", "dz", "dz_adjoint", "soft_threshold", "tv_objective"]

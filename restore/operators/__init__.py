"""Operator base classes, composition, noise models and the CG solver."""
from .base import Crop, Identity, LinearOperator, MatrixOperator, Operator
from .cg import CGInfo, conjugate_gradient, inner, operator_norm_sq, preconditioned_cg
from .compose import compose
from .noise import GaussianNoise, NoiseModel, PoissonNoise

__all__ = [
    "Operator", "LinearOperator", "Identity", "Crop", "MatrixOperator", "compose", "conjugate_gradient", "inner",
    "operator_norm_sq", "preconditioned_cg",
    "CGInfo", "NoiseModel", "GaussianNoise", "PoissonNoise",
]

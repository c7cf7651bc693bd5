"""Operator base classes, composition, noise models and the CG solver."""
from .base import Crop, Identity, LinearOperator, MatrixOperator, Operator
from .cg import CGInfo, conjugate_gradient, inner
from .compose import compose
from .noise import GaussianNoise, NoiseModel, PoissonNoise

__all__ = [
    "Operator", "LinearOperator", "Identity", "Crop", "MatrixOperator", "compose", "conjugate_gradient", "inner",
    "CGInfo", "NoiseModel", "GaussianNoise", "PoissonNoise",
]

"""Priors: the family types (Prior, DiffusionPrior, LatentFamily, MeanRevertingFamily), the bound view, VP schedules, analytic priors and the diffusers adapter."""
from .analytic import GaussianPrior, GMMPrior
from .base import DiffusionPrior, LatentFamily, MeanRevertingFamily, NoPrior, Prior
from .parameterization import PREDICTION_TYPES, to_eps, to_v, to_x0
from .schedules import VPSchedule
from .stationary import StationaryGaussianPrior, default_stationary_prior

__all__ = [
    "Prior", "DiffusionPrior", "LatentFamily", "MeanRevertingFamily", "NoPrior", "VPSchedule", "GaussianPrior", "GMMPrior", "StationaryGaussianPrior",
    "default_stationary_prior", "to_eps", "to_x0", "to_v", "PREDICTION_TYPES",
]

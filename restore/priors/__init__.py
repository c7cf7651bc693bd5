"""Priors: the DiffusionPrior interface, VP schedules, analytic priors and the diffusers adapter."""
from .analytic import GaussianPrior, GMMPrior
from .base import DiffusionPrior
from .parameterization import PREDICTION_TYPES, to_eps, to_v, to_x0
from .schedules import VPSchedule
from .stationary import StationaryGaussianPrior, default_stationary_prior

__all__ = [
    "DiffusionPrior", "VPSchedule", "GaussianPrior", "GMMPrior", "StationaryGaussianPrior",
    "default_stationary_prior", "to_eps", "to_x0", "to_v", "PREDICTION_TYPES",
]

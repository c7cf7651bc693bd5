"""TEMPORARY: the bound-view API of the engine seam (issue 15) over the current Sampler base."""
from __future__ import annotations

import torch

from .base import Sampler, randn


class _View:
    def __init__(self, sampler, prior, problem, shape, x_init):
        self.sampler, self.prior, self.problem = sampler, prior, problem
        self.schedule = prior.schedule
        self.x_shape = tuple(problem.x_shape) if problem is not None else tuple(shape)
        self.shape = self.x_shape
        self.dtype = Sampler.dtype_for(prior, problem)
        self.device = prior.device
        self.x_init = x_init
        self.data_range = prior.data_range

    @property
    def nfe(self):
        return self.sampler.nfe

    @property
    def vjp(self):
        return self.sampler.vjp

    def to_model(self, x):
        return self.prior.to_model(x)

    def from_model(self, x):
        return self.prior.from_model(x)

    def eps(self, x, k):
        self.sampler.nfe += 1
        return self.prior.eps(x, k)

    def coefficients(self, k):
        return float(self.schedule.a(k)), float(self.schedule.s(k))

    def predict(self, x, k):
        eps = self.eps(x, k)
        a, s = self.coefficients(k)
        return eps, (x - s * eps) / a

    def clip(self, x0):
        lo, hi = self.data_range
        return x0.clamp(lo, hi)

    def count_vjp(self, n=1):
        self.sampler.vjp += n

    def initial_state(self, generator):
        if self.x_init is not None:
            return self.x_init
        return randn(self.shape, generator, dtype=self.dtype, device=self.device)

    def noise_like(self, x, generator):
        return randn(x.shape, generator, like=x)


class SeamSampler(Sampler):
    def _sample(self, prior, problem, shape, generator, callback, x_init):
        view = _View(self, prior, problem, shape, x_init)
        self.check_view(view)
        return self.sample(view, generator, callback)

    def check_view(self, view):
        pass
